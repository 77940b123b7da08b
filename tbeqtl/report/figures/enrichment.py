"""Enrichment figures (paper Fig 2): SNP-class enrichment bars and the genomic-bin Manhattan plot."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .style import LINE_P05, LINE_P10, OKABE_ITO, category_colours, new_figure

__all__ = ["chrom_order_key", "genomic_bin_manhattan_figure", "snp_class_enrichment_figure"]


def chrom_order_key(chrom: str) -> tuple[int, str]:
    """Sort key putting chromosomes in numeric order (chr1 ... chr22, then X, Y, M, others).

    Parameters
    ----------
    chrom
        Chromosome name, with or without the ``chr`` prefix.

    Returns
    -------
    tuple
        A key for :func:`sorted`.
    """
    name = re.sub(r"^chr", "", str(chrom), flags=re.IGNORECASE)
    if name.isdigit():
        return int(name), ""
    return {"X": 100, "Y": 101, "M": 102, "MT": 102}.get(name.upper(), 200), name


def snp_class_enrichment_figure(snp_annot_df: pd.DataFrame, *, max_classes: int = 12) -> Figure:
    """Fisher-test enrichment of SNP classes (LDSC-style annotations) per SNP set (paper Fig 2, left).

    Parameters
    ----------
    snp_annot_df
        Columns ``set`` (SNP set name, e.g. a tissue or ``"union"``), ``annotation``,
        ``odds_ratio``, ``p_value``, ``fdr``.
    max_classes
        Show the classes with the smallest FDR in any set, at most this many.

    Returns
    -------
    matplotlib.figure.Figure
        Horizontal grouped bars of -log10 BH FDR per class, one colour per set, with the
        FDR = 0.1 line.
    """
    df = snp_annot_df.copy()
    best = df.groupby("annotation")["fdr"].min().sort_values(kind="stable")
    classes = list(best.index[:max_classes])
    sets = sorted(df["set"].astype(str).unique())
    colours = category_colours([s for s in sets if s != "union"])
    if "union" in sets:  # the union of every set: black, listed first
        sets = ["union", *[s for s in sets if s != "union"]]
        colours["union"] = "#000000"
    df = df[df["annotation"].isin(classes)]
    fig = new_figure(width=7.0, height=max(3.0, 0.42 * len(classes) * max(1, min(len(sets), 4)) ** 0.5 + 1))
    ax = fig.subplots()
    height = 0.8 / max(len(sets), 1)
    y_of = {c: i for i, c in enumerate(classes)}
    for j, s in enumerate(sets):
        part = df[df["set"].astype(str) == s]
        ys = np.array([y_of[a] for a in part["annotation"]]) - 0.4 + height * (j + 0.5)
        vals = -np.log10(np.clip(part["fdr"].to_numpy(dtype=float), 1e-300, 1))
        ax.barh(ys, vals, height=height, color=colours[s], label=s)
    ax.axvline(1.0, color=LINE_P10, linestyle=":", linewidth=1, label="FDR = 0.1")
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("−log10 BH FDR (Fisher's exact test)")
    ax.set_title("SNP-class enrichment of tissue-associated SNP sets")
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def genomic_bin_manhattan_figure(bins_df: pd.DataFrame) -> Figure:
    """Manhattan plot of genomic-bin localisation p-values (paper Fig 2, right).

    Parameters
    ----------
    bins_df
        Columns ``chrom``, ``start``, ``end``, ``p_value`` and optionally ``set`` (one row per
        tested bin and SNP set) and ``cumulative_position`` (the x axis of table
        ``genomic_bin_enrichment``; otherwise chromosomes are laid end to end by their last bin).

    Returns
    -------
    matplotlib.figure.Figure
        -log10 p per bin along the genome, chromosomes in order and alternately coloured, with
        dotted lines at p = 0.1 (blue) and p = 0.05 (green).
    """
    df = bins_df.copy()
    df["chrom"] = df["chrom"].astype(str)
    chroms = sorted(df["chrom"].unique(), key=chrom_order_key)
    sizes = df.groupby("chrom")["end"].max()
    offsets = {}
    total = 0.0
    for c in chroms:
        offsets[c] = total
        total += float(sizes[c])
    if "cumulative_position" in df.columns:  # the enrichment layer's Manhattan x axis
        x = df["cumulative_position"].to_numpy(dtype=float)
        starts = df.groupby("chrom")["cumulative_position"].min() - (
            (df["start"] + df["end"]) / 2).groupby(df["chrom"]).min()
        offsets = {c: float(starts[c]) for c in chroms}
        total = max(offsets[c] + float(sizes[c]) for c in chroms)
    else:
        mid = (df["start"].to_numpy(dtype=float) + df["end"].to_numpy(dtype=float)) / 2
        x = mid + df["chrom"].map(offsets).to_numpy(dtype=float)
    y = -np.log10(np.clip(df["p_value"].to_numpy(dtype=float), 1e-300, 1))
    alt = ("#555555", OKABE_ITO[0])  # grey / orange, distinct from the blue and green p-value lines
    colour = df["chrom"].map({c: alt[i % 2] for i, c in enumerate(chroms)}).to_numpy()
    fig = new_figure(width=8.0, height=3.4)
    ax = fig.subplots()
    ax.scatter(x, y, s=6, c=colour, linewidths=0)
    ax.axhline(-np.log10(0.1), color=LINE_P10, linestyle=":", linewidth=1.2, label="p = 0.1")
    ax.axhline(-np.log10(0.05), color=LINE_P05, linestyle=":", linewidth=1.2, label="p = 0.05")
    ticks = [offsets[c] + float(sizes[c]) / 2 for c in chroms]
    ax.set_xticks(ticks)
    ax.set_xticklabels([re.sub(r"^chr", "", c) for c in chroms], fontsize=7)
    ax.set_xlim(0, total)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("chromosome (bins in genomic order)")
    ax.set_ylabel("−log10 p (Fisher's exact test)")
    n_sets = df["set"].nunique() if "set" in df else 1
    ax.set_title(f"genomic-bin localisation of SNP sets ({n_sets} set{'s' if n_sets != 1 else ''})")
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    return fig
