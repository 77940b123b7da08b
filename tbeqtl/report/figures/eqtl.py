"""eQTL figures: permutation QQ, per-tissue counts, a locus heatmap and p-value histograms.

Paper Fig 4 (QQ of true vs permuted p-values; cis/trans counts per tissue by gene type) and
Fig 5 (quantile-normalised expression of the trans-eGenes of one locus).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .style import HIGHLIGHT, OKABE_ITO, category_colours, new_figure

__all__ = ["eqtl_count_figure", "locus_expression_figure", "permutation_qq_figure", "pvalue_histogram_figure"]


def permutation_qq_figure(qq_df: pd.DataFrame) -> Figure:
    """Ordered true vs permuted -log10 p, one line per run (paper Fig 4, top).

    Parameters
    ----------
    qq_df
        Long table with columns ``run``, ``kind`` (``"cis"`` / ``"trans"``), ``permuted``
        (ordered -log10 p of the permuted-data tests), ``observed`` (ordered -log10 p of the
        true tests) and ``beyond`` (True where the observed value exceeds the run's maximum
        permuted value).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per kind; points beyond the permuted maximum in vermillion.
    """
    kinds = [k for k in ("cis", "trans") if k in set(qq_df["kind"])] or sorted(qq_df["kind"].unique())
    fig = new_figure(width=4.0 * len(kinds) + 0.5, height=4.0)
    axes = np.atleast_1d(fig.subplots(1, len(kinds)))
    for ax, kind in zip(axes, kinds, strict=True):
        part = qq_df[qq_df["kind"] == kind]
        lim = float(np.nanmax(part[["permuted", "observed"]].to_numpy())) if len(part) else 1.0
        lines = [run_df[["permuted", "observed"]].to_numpy(float)
                 for _, run_df in part.groupby("run", sort=True)]
        ax.add_collection(LineCollection(lines, colors="#555555", linewidths=0.8, alpha=0.6))
        hit = part[part["beyond"].astype(bool)]
        ax.scatter(hit["permuted"], hit["observed"], s=10, color=HIGHLIGHT, zorder=3, linewidths=0)
        ax.plot([0, lim], [0, lim], color="black", linestyle="--", linewidth=0.8)
        ax.set_xlabel("ordered permuted −log10 p")
        ax.set_ylabel("ordered true −log10 p")
        n_runs = part["run"].nunique()
        n_beyond = int(part["beyond"].astype(bool).sum())
        ax.set_title(f"{kind}: {n_runs} run{'s' if n_runs != 1 else ''}, {n_beyond} beyond permuted max",
                     fontsize=9)
    handles = [Line2D([], [], color="#555555", label="one run"),
               Line2D([], [], marker="o", linestyle="", color=HIGHLIGHT, label="true > max permuted"),
               Line2D([], [], color="black", linestyle="--", label="y = x")]
    axes[0].legend(handles=handles, fontsize=7, frameon=False, loc="upper left")
    return fig


def eqtl_count_figure(counts_df: pd.DataFrame, *, fdr: float = 0.1) -> Figure:
    """Per-tissue numbers of trans- and cis-eQTLs, stacked by gene type (paper Fig 4, bottom).

    Parameters
    ----------
    counts_df
        Columns ``tissue``, ``kind`` (``"cis"`` / ``"trans"``), ``gene_type`` and ``n_eqtls``.
    fdr
        The FDR threshold the counts used (for the axis label).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: trans (top) and cis (bottom).
    """
    tissues = sorted(counts_df["tissue"].astype(str).unique())
    gene_types = sorted(counts_df["gene_type"].astype(str).unique())
    colours = category_colours(gene_types)
    fig = new_figure(width=min(9.0, max(5.0, 0.6 * len(tissues) + 3.0)), height=4.2)
    axes = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(tissues))
    for ax, kind in zip(axes, ("trans", "cis"), strict=True):
        table = (counts_df[counts_df["kind"] == kind]
                 .pivot_table(index="tissue", columns="gene_type", values="n_eqtls", aggfunc="sum")
                 .reindex(index=tissues, columns=gene_types).fillna(0))
        bottom = np.zeros(len(tissues))
        for gt in gene_types:
            vals = table[gt].to_numpy(dtype=float)
            ax.bar(x, vals, bottom=bottom, color=colours[gt], width=0.75, label=gt)
            bottom += vals
        ax.set_ylabel(f"{kind}-eQTLs")
        ax.set_title(f"{kind}-eQTLs at FDR < {fdr:g}", fontsize=9)
    axes[1].set_xticks(x)
    axes[1].set_xticklabels(tissues, rotation=45, ha="right", fontsize=8)
    axes[0].legend(handles=[Patch(color=colours[g], label=g) for g in gene_types], fontsize=7,
                   frameon=False, title="gene type", title_fontsize=8, loc="upper left",
                   bbox_to_anchor=(1.01, 1.0))
    return fig


def locus_expression_figure(expression_df: pd.DataFrame, genotype_s: pd.Series, *, title: str = "") -> Figure:
    """Heatmap of quantile-normalised expression of the trans-eGenes of one locus (paper Fig 5, top).

    Parameters
    ----------
    expression_df
        Genes x samples, quantile-normalised expression (the association input).
    genotype_s
        Sample -> dosage of the locus' SNP (0, 1, 2); samples are shown in order of dosage.
    title
        Title naming the SNP and tissue.

    Returns
    -------
    matplotlib.figure.Figure
        A genotype strip above a genes x samples heatmap.
    """
    dosage = genotype_s.reindex(expression_df.columns)
    order = pd.DataFrame({"d": dosage.to_numpy(), "s": expression_df.columns.astype(str)}).sort_values(
        ["d", "s"], na_position="last").index.to_numpy()
    mat = expression_df.to_numpy(dtype=float)[:, order]
    d = dosage.to_numpy(dtype=float)[order]
    fig = new_figure(width=7.5, height=max(3.0, 0.18 * len(expression_df) + 1.8))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, max(4, len(expression_df) / 3)], width_ratios=[30, 1],
                            hspace=0.03)
    ax_g = fig.add_subplot(grid[0, 0])
    ax = fig.add_subplot(grid[1, 0], sharex=ax_g)
    cax = fig.add_subplot(grid[1, 1])
    geno_colours = np.array([[0.9, 0.9, 0.9], [0.34, 0.71, 0.91], [0.0, 0.45, 0.70]])
    rgb = np.array([geno_colours[int(round(v))] if np.isfinite(v) else [1, 1, 1] for v in d])
    ax_g.imshow(rgb[None, :, :], aspect="auto", interpolation="nearest")
    finite = np.isfinite(d)
    for value in np.unique(d[finite]):
        where = np.flatnonzero(d == value)
        ax_g.text(where.mean(), 0, f"{value:g}", ha="center", va="center", fontsize=8,
                  color="white" if value >= 1.5 else "black")
    ax_g.set_yticks([0])
    ax_g.set_yticklabels(["dosage"], fontsize=8)
    ax_g.tick_params(axis="x", bottom=False, labelbottom=False)
    if title:
        ax_g.set_title(title, fontsize=10)
    lim = float(np.nanmax(np.abs(mat))) if mat.size else 1.0
    image = ax.imshow(mat, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_yticks(range(len(expression_df)))
    ax.set_yticklabels(expression_df.index.astype(str), fontsize=7 if len(expression_df) < 40 else 4)
    ax.set_xticks([])
    ax.set_xlabel(f"{expression_df.shape[1]} held-out samples, ordered by dosage (0, 1, 2)")
    fig.colorbar(image, cax=cax, label="quantile-normalised expression")
    return fig


def pvalue_histogram_figure(hist_df: pd.DataFrame) -> Figure:
    """Histograms of all association p-values by cis/trans (what MatrixEQTL's ``pvalue.hist`` gives).

    Parameters
    ----------
    hist_df
        Columns ``kind``, ``bin_start``, ``bin_end``, ``count`` (summed over runs by the loader).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per kind, with the uniform expectation as a dashed line.
    """
    kinds = [k for k in ("cis", "trans") if k in set(hist_df["kind"])] or sorted(hist_df["kind"].unique())
    fig = new_figure(width=4.0 * len(kinds) + 0.5, height=3.2)
    axes = np.atleast_1d(fig.subplots(1, len(kinds)))
    for ax, kind in zip(axes, kinds, strict=True):
        part = hist_df[hist_df["kind"] == kind].sort_values("bin_start")
        widths = (part["bin_end"] - part["bin_start"]).to_numpy(dtype=float)
        ax.bar(part["bin_start"], part["count"], width=widths, align="edge", color=OKABE_ITO[1],
               edgecolor="white", linewidth=0.3)
        total = float(part["count"].sum())
        if total and (part["bin_end"].max() - part["bin_start"].min()) > 0:
            span = float(part["bin_end"].max() - part["bin_start"].min())
            ax.plot([part["bin_start"].min(), part["bin_end"].max()], [total * widths.mean() / span] * 2,
                    color="black", linestyle="--", linewidth=0.8, label="uniform")
            ax.legend(fontsize=7, frameon=False)
        ax.set_xlabel("p-value")
        ax.set_ylabel("tests")
        ax.set_title(f"{kind} p-values ({int(total):,} tests)", fontsize=9)
    return fig
