"""Topic-model figures: sample-topic proportions, loading correlations, ELBO trace.

Paper Fig 1 (sample-topic proportions), Fig 3 (loading correlations across runs), and the ELBO
trace with its convergence statistic.

Each function takes finished tables (as :mod:`tbeqtl.report.load` returns them) and returns a
:class:`~matplotlib.figure.Figure`; nothing is fitted or estimated here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from .style import category_colours, family_shades, grey_shades, new_figure

__all__ = ["elbo_figure", "loading_correlation_figure", "sample_topics_figure", "topic_colours"]


def topic_colours(topic_tissue_s: pd.Series, tissue_colours: dict[str, str]) -> dict[object, str]:
    """Colour topics by their tissue family; topics without a tissue get distinct greys.

    Parameters
    ----------
    topic_tissue_s
        Topic label -> the tissue it is most strongly associated with, or ``""`` / NaN when it
        is not tissue-associated.
    tissue_colours
        Tissue -> base colour.

    Returns
    -------
    dict
        Topic label -> hex colour. Topics of one tissue get shades of that tissue's colour.
    """
    tissues = topic_tissue_s.fillna("").astype(str)
    out: dict[object, str] = {}
    for tissue, topics in tissues.groupby(tissues, sort=True):
        members = list(topics.index)
        if tissue and tissue in tissue_colours:
            shades = family_shades(tissue_colours[tissue], len(members))
        else:
            shades = grey_shades(len(members))
        out.update(zip(members, shades, strict=True))
    return out


def sample_topics_figure(
    sample_topics_df: pd.DataFrame,
    sample_tissue_s: pd.Series,
    topic_tissue_s: pd.Series,
    *,
    title: str = "",
) -> Figure:
    """Draw expected sample-topic proportions E[phi_l], one row per sample, sorted by tissue.

    The paper's Figure 1: a stacked bar per sample (its topic proportions, summing to one);
    tissue-associated topics are coloured in the tissue's colour family, the other topics in
    greys; a strip on the left marks each sample's tissue.

    Parameters
    ----------
    sample_topics_df
        Samples x topics, E[phi] (rows sum to one).
    sample_tissue_s
        Sample ID -> tissue.
    topic_tissue_s
        Topic (a column of ``sample_topics_df``) -> associated tissue or ``""``.
    title
        Axes title (e.g. the chromosome pair of the fit).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    tissue_s = sample_tissue_s.reindex(sample_topics_df.index).fillna("unknown").astype(str)
    tissues = sorted(tissue_s.unique())
    tissue_colours = category_colours(tissues)
    colours = topic_colours(topic_tissue_s.reindex(sample_topics_df.columns), tissue_colours)
    # Order: tissue, then the sample's dominant topic, then the sample ID (stable, input-order free).
    dominant = sample_topics_df.to_numpy().argmax(axis=1)
    order_df = pd.DataFrame({"tissue": tissue_s.to_numpy(), "dominant": dominant,
                             "sample": sample_topics_df.index.astype(str)})
    order = order_df.sort_values(["tissue", "dominant", "sample"]).index.to_numpy()
    props = sample_topics_df.to_numpy(dtype=float)[order]
    n = props.shape[0]

    fig = new_figure(width=7.5, height=6.0)
    grid = fig.add_gridspec(1, 2, width_ratios=[1, 18], wspace=0.01)
    ax_strip = fig.add_subplot(grid[0, 0])
    ax = fig.add_subplot(grid[0, 1], sharey=ax_strip)
    y = np.arange(n + 1)
    cum = np.zeros(n)
    for j, topic in enumerate(sample_topics_df.columns):
        nxt = cum + props[:, j]
        ax.fill_betweenx(y, np.append(cum, cum[-1]), np.append(nxt, nxt[-1]), step="post",
                         color=colours[topic], linewidth=0)
        cum = nxt
    ax.set_xlim(0, 1)
    ax.set_ylim(n, 0)
    ax.set_xlabel("expected sample-topic proportion E[φ]")
    ax.tick_params(axis="y", left=False, labelleft=False)
    if title:
        ax.set_title(title)

    ordered_tissues = tissue_s.to_numpy()[order]
    starts = np.flatnonzero(np.r_[True, ordered_tissues[1:] != ordered_tissues[:-1]])
    ends = np.r_[starts[1:], n]
    for s, e in zip(starts, ends, strict=True):
        ax_strip.axhspan(s, e, color=tissue_colours[ordered_tissues[s]], linewidth=0)
        ax.axhline(s, color="white", linewidth=0.6)
    ax_strip.set_xticks([])
    ax_strip.set_yticks((starts + ends) / 2)
    ax_strip.set_yticklabels([ordered_tissues[s] for s in starts], fontsize=8)
    ax_strip.set_ylabel("samples (sorted by tissue)")

    assoc = topic_tissue_s.reindex(sample_topics_df.columns).fillna("").astype(str)
    handles = [Patch(color=colours[t], label=f"topic {t} ({assoc[t]})") for t in assoc.index if assoc[t]]
    if len(assoc) > len(handles):
        handles.append(Patch(color="#999999", label="topics without a tissue"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return fig


def _cluster_order(corr_df: pd.DataFrame) -> np.ndarray:
    """Leaf order of average-linkage clustering on 1 - r (display order only)."""
    if len(corr_df) < 3:
        return np.arange(len(corr_df))
    dist = 1.0 - np.nan_to_num(corr_df.to_numpy(dtype=float), nan=0.0)
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    dist = np.clip(dist, 0.0, None)
    return leaves_list(linkage(squareform(dist, checks=False), method="average"))


def loading_correlation_figure(
    corr_by_kind: dict[str, pd.DataFrame],
    loading_tissue_s: pd.Series,
) -> Figure:
    """Clustered heatmaps of pairwise correlations between loadings of different runs (paper Fig 3).

    Parameters
    ----------
    corr_by_kind
        Panel title (e.g. ``"SNP loadings (MAF-residualised E[lambda])"``) -> square correlation
        matrix whose index and columns label one loading (e.g. ``"chr1__chr2:k3"``).
    loading_tissue_s
        Loading label -> its strongest tissue association, or ``""`` (the colour bars).

    Returns
    -------
    matplotlib.figure.Figure
        One clustered heatmap per panel with tissue colour bars on both axes.
    """
    panels = [(k, v) for k, v in corr_by_kind.items() if len(v)]
    tissues = sorted({t for t in loading_tissue_s.fillna("").astype(str) if t})
    tissue_colours = category_colours(tissues)
    fig = new_figure(width=5.2 * max(len(panels), 1) + 1.0, height=6.0)
    outer = fig.add_gridspec(1, max(len(panels), 1) + 1,
                             width_ratios=[1] * max(len(panels), 1) + [0.05])
    image = None
    for i, (name, corr_df) in enumerate(panels):
        order = _cluster_order(corr_df)
        mat = corr_df.to_numpy(dtype=float)[np.ix_(order, order)]
        labels = corr_df.index.to_numpy()[order]
        inner = outer[0, i].subgridspec(2, 2, width_ratios=[1, 24], height_ratios=[1, 24],
                                        wspace=0.02, hspace=0.02)
        ax = fig.add_subplot(inner[1, 1])
        image = ax.imshow(mat, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{len(labels)} loadings (clustered)")
        tissue_of = loading_tissue_s.reindex(labels).fillna("").astype(str).to_numpy()
        rgb = np.array([_to_rgb(tissue_colours.get(t, "#FFFFFF")) for t in tissue_of])
        ax_top = fig.add_subplot(inner[0, 1], sharex=ax)
        ax_top.imshow(rgb[None, :, :], aspect="auto", interpolation="nearest")
        ax_top.set_axis_off()
        ax_top.set_title(name, fontsize=10)
        ax_left = fig.add_subplot(inner[1, 0], sharey=ax)
        ax_left.imshow(rgb[:, None, :], aspect="auto", interpolation="nearest")
        ax_left.set_axis_off()
    if image is not None:
        cax = fig.add_subplot(outer[0, -1])
        fig.colorbar(image, cax=cax, label="correlation")
    handles = [Patch(color=tissue_colours[t], label=t) for t in tissues]
    handles.append(Patch(facecolor="#FFFFFF", edgecolor="#999999", label="no tissue"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 4), fontsize=7,
               frameon=False, title="strongest tissue association", title_fontsize=8)
    return fig


def _to_rgb(colour: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


def elbo_figure(elbo_df: pd.DataFrame, convergence_df: pd.DataFrame, *, tol: float | None = None) -> Figure:
    """ELBO trace and the paper's convergence statistic (y - x) / y for every run.

    Parameters
    ----------
    elbo_df
        Long table with columns ``run``, ``step``, ``elbo`` (the evidence lower bound per step).
    convergence_df
        Long table with columns ``run``, ``step``, ``statistic``: |(y - x) / y| where x is the
        mean ELBO over the latest window of steps and y over the window before it.
    tol
        The stopping tolerance (drawn as a dashed line), if known.

    Returns
    -------
    matplotlib.figure.Figure
        Left: ELBO against step; right: convergence statistic (log scale) against step.
    """
    runs = sorted(elbo_df["run"].unique())
    colours = category_colours(runs) if len(runs) <= 14 else {r: "#0072B2" for r in runs}
    fig = new_figure(width=9.0, height=3.6)
    ax_elbo, ax_conv = fig.subplots(1, 2)
    for run in runs:
        part = elbo_df[elbo_df["run"] == run]
        ax_elbo.plot(part["step"], part["elbo"], color=colours[run], linewidth=1,
                     alpha=0.9 if len(runs) <= 14 else 0.3, label=run)
        conv = convergence_df[convergence_df["run"] == run]
        conv = conv[conv["statistic"] > 0]
        if len(conv):
            ax_conv.plot(conv["step"], conv["statistic"], color=colours[run], linewidth=1,
                         alpha=0.9 if len(runs) <= 14 else 0.3)
    ax_elbo.set_xlabel("SVI step")
    ax_elbo.set_ylabel("ELBO")
    ax_elbo.set_title("ELBO trace")
    has_stat = bool(len(convergence_df)) and bool((convergence_df["statistic"] > 0).any())
    if has_stat:
        ax_conv.set_yscale("log")
    else:
        ax_conv.text(0.5, 0.5, "not computed yet:\nfewer steps than two\naveraging windows", ha="center",
                     va="center", transform=ax_conv.transAxes, fontsize=9, color="#555555")
        ax_conv.set_ylim(0, 1)
        ax_conv.set_yticks([])
    ax_conv.set_xlabel("SVI step")
    ax_conv.set_ylabel("|(y − x) / y|")
    ax_conv.set_title("convergence statistic")
    if tol is not None and has_stat:
        ax_conv.axhline(tol, color="black", linestyle="--", linewidth=0.8, label=f"tolerance {tol:g}")
        ax_conv.legend(fontsize=7, frameon=False)
    if len(runs) <= 14:
        ax_elbo.legend(fontsize=7, frameon=False)
    return fig
