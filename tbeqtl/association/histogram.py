"""p-value histograms and QQ data over every test, as MatrixEQTL's ``pvalue.hist`` gives them.

Bin specifications (``pvalue_hist=``), as MatrixEQTL accepts them:

* ``True``: 100 equal bins on [0, 1];
* an integer k: k equal bins;
* a sequence of edges: those edges (sorted);
* ``"qqplot"``: edges ``0`` and ``10^seq(0, log10(double.xmin) - 1, by = -0.05)``
  (6,174 log-spaced bins), for QQ plots of very small p-values.

Counts cover every test of a pool (not only the rows output). A bin is ``(lo, hi]`` in p; the
binning is done on the statistic against the statistic values of the edges (so a p-value within
rounding of an edge may land on either side, as in MatrixEQTL).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from .models import Model

__all__ = ["histogram_edges", "histogram_table", "pvalue_histogram", "qq_from_histogram", "score_edges"]

XMIN = np.finfo(np.float64).tiny


def histogram_edges(spec) -> np.ndarray | None:
    """p-value bin edges for a ``pvalue_hist`` specification.

    Parameters
    ----------
    spec
        ``None``/``False`` (no histogram), ``True``, an integer, a sequence of edges or ``"qqplot"``.

    Returns
    -------
    numpy.ndarray or None
        Ascending edges in [0, 1].
    """
    if spec is None or spec is False:
        return None
    if isinstance(spec, str):
        if spec != "qqplot":
            raise InputError(f"unknown pvalue_hist {spec!r}: use True, a number of bins, edges or 'qqplot'")
        stop = np.log10(XMIN) - 1
        n = int(np.floor(-stop / 0.05 + 1e-10)) + 1
        exps = np.arange(n) * -0.05
        return np.concatenate([[0.0], 10.0 ** exps[::-1]])
    if spec is True:
        return np.linspace(0.0, 1.0, 101)
    if np.isscalar(spec):
        k = int(spec)
        if k < 1:
            raise InputError("pvalue_hist needs at least one bin")
        return np.linspace(0.0, 1.0, k + 1)
    edges = np.sort(np.asarray(spec, dtype=float))
    if edges.size < 2 or edges[0] < 0 or edges[-1] > 1 or np.any(np.diff(edges) <= 0):
        raise InputError("pvalue_hist edges must be at least two distinct values in [0, 1]")
    return edges


def score_edges(p_edges: np.ndarray, model: Model, *, df: int) -> np.ndarray:
    """Ascending model scores of the p-value edges (reversed order: p = 1 first).

    Parameters
    ----------
    p_edges
        Ascending p-value edges.
    model
        The model (its score: |r|, R^2 or t^2).
    df
        Degrees of freedom.

    Returns
    -------
    numpy.ndarray
        ``score(critical_stat(p))`` for ``p`` in ``p_edges[::-1]``.
    """
    stat = model.critical_stats(p_edges[::-1], df=df)
    return np.asarray(model.score_from_stat(stat, df=df), dtype=float)


def counts_to_pbins(kernel_counts: np.ndarray, *, lowest_edge: float = 0.0) -> np.ndarray:
    """Map the kernel's score-bin counts (``searchsorted(score_edges, s, 'right')``) to p-bins.

    Parameters
    ----------
    kernel_counts
        Length ``E + 1`` counts for ``E`` score edges.
    lowest_edge
        The smallest p-value edge. When it is 0, scores at or above the top score edge (``|r| = 1``,
        p floored at the smallest double) go to the first bin; otherwise they lie outside the edges.

    Returns
    -------
    numpy.ndarray
        Length ``E - 1`` counts of the p-bins ``(p_edges[j], p_edges[j + 1]]``.
    """
    n_edges = kernel_counts.size - 1
    out = kernel_counts[1:n_edges][::-1].astype(np.int64).copy()
    if lowest_edge <= 0:
        out[0] += kernel_counts[n_edges]
    return out


def aggregate_bins(counts: np.ndarray, fine_edges: np.ndarray, coarse_edges: np.ndarray) -> np.ndarray:
    """Sum counts of fine bins into coarser bins whose edges are a subset of the fine edges.

    Parameters
    ----------
    counts
        Counts of the fine bins.
    fine_edges, coarse_edges
        Ascending edges.

    Returns
    -------
    numpy.ndarray
        Counts of the coarse bins.
    """
    pos = np.searchsorted(fine_edges, coarse_edges)
    cum = np.concatenate([[0], np.cumsum(counts)])
    return cum[pos[1:]] - cum[pos[:-1]]


def histogram_table(counts_by_pool: dict, p_edges: np.ndarray) -> pd.DataFrame:
    """Long table of histogram counts (schema ``pvalue_hist``).

    Parameters
    ----------
    counts_by_pool
        Pool name -> counts of the p-bins.
    p_edges
        Ascending p-value edges.

    Returns
    -------
    pandas.DataFrame
        Columns ``pool, bin_lo, bin_hi, count``.
    """
    frames = [
        pd.DataFrame(
            {
                "pool": pool,
                "bin_lo": p_edges[:-1],
                "bin_hi": p_edges[1:],
                "count": np.asarray(c, dtype=np.int64),
            }
        )
        for pool, c in counts_by_pool.items()
    ]
    if not frames:
        return pd.DataFrame({"pool": [], "bin_lo": [], "bin_hi": [], "count": []})
    return pd.concat(frames, ignore_index=True)


def pvalue_histogram(p_by_pool: dict, *, spec=True) -> pd.DataFrame:
    """Histogram of given p-values per pool (schema ``pvalue_hist``), binned as the engine bins them.

    The engine's :func:`~tbeqtl.association.map_eqtls` counts its own tests while it streams them;
    this bins p-values already in hand (e.g. the tests of one factor set) with the same edges and
    the same ``(lo, hi]`` bins.

    Parameters
    ----------
    p_by_pool
        Pool name (``"cis"``, ``"trans"``, ``"all"``) -> p-values; NaN ones are not counted.
    spec
        Bin specification as :func:`histogram_edges` takes it (``True``: 100 equal bins).

    Returns
    -------
    pandas.DataFrame
        Columns ``pool, bin_lo, bin_hi, count``, pools in the given order. A p-value of 0 falls in
        the first bin when the lowest edge is 0; p-values outside the edges are not counted.
    """
    edges = histogram_edges(spec)
    if edges is None:
        raise InputError("pvalue_histogram needs bins: use True, a number of bins, edges or 'qqplot'")
    counts = {}
    for pool, values in p_by_pool.items():
        p = np.asarray(values, dtype=float)
        p = p[~np.isnan(p)]
        p = p[(p <= edges[-1]) & ((p > edges[0]) | (edges[0] <= 0))]
        idx = np.clip(np.searchsorted(edges, p, side="left"), 1, edges.size - 1)  # edges[i-1] < p <= edges[i]
        counts[pool] = np.bincount(idx - 1, minlength=edges.size - 1)
    if not counts:
        return pd.DataFrame({"pool": pd.Series(dtype=object), "bin_lo": pd.Series(dtype=float),
                             "bin_hi": pd.Series(dtype=float), "count": pd.Series(dtype=np.int64)})
    return histogram_table(counts, edges)


def qq_from_histogram(hist_df: pd.DataFrame, *, pool: str) -> pd.DataFrame:
    """QQ points (expected vs observed -log10 p) from cumulative histogram counts.

    As MatrixEQTL's ``plot(me)`` in "qqplot" mode: at each upper bin edge ``p``, the observed
    -log10 ``p`` is plotted against the expected -log10 of the fraction of tests at or below it.

    Parameters
    ----------
    hist_df
        Output of :func:`histogram_table`.
    pool
        Which pool.

    Returns
    -------
    pandas.DataFrame
        Columns ``expected_log10p, observed_log10p, n_at_or_below`` for edges with a new count.
    """
    sub = hist_df[hist_df["pool"] == pool].sort_values("bin_hi")
    total = sub["count"].sum()
    if total == 0:
        return pd.DataFrame({"expected_log10p": [], "observed_log10p": [], "n_at_or_below": []})
    cum = sub["count"].cumsum().to_numpy()
    hi = sub["bin_hi"].to_numpy()
    keep = (sub["count"].to_numpy() > 0) & (hi > 0)
    return pd.DataFrame(
        {
            "expected_log10p": -np.log10(cum[keep] / total),
            "observed_log10p": -np.log10(hi[keep]),
            "n_at_or_below": cum[keep],
        }
    )
