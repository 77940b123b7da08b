"""One vectorised Fisher exact (hypergeometric) kernel and BH FDR, shared by every enrichment.

Every enrichment in :mod:`tbeqtl.enrich` (GO terms, SNP annotation classes, genomic bins)
reduces to the same 2x2 table between a feature *set* (e.g. a robust tissue gene set)
and a feature *class* (a GO term, an LDSC annotation, a genomic bin), both taken inside
the analysis *background* (the paper's "analysis feature set")::

                      in class          not in class
    in set            a = overlap       n - a
    not in set        K - a             N - n - K + a

with ``N`` the background size, ``n`` the set size and ``K`` the class size within the
background. Under the null of no association ``a`` is hypergeometric(N, K, n); the
one-sided ("greater") Fisher exact p-value is ``P(A >= a)`` (the paper's Fisher's exact
test for over-representation), which is exactly what ``scipy.stats.fisher_exact(table,
alternative="greater")`` and ``gseapy``'s ``hypergeom.sf(a - 1, N, K, n)`` compute.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import stats

from ..errors import InputError

__all__ = ["ALTERNATIVES", "bh_fdr", "fisher_enrichment", "odds_ratio"]

logger = logging.getLogger(__name__)

ALTERNATIVES = ("greater", "less", "two-sided")

#: Relative tolerance used (as scipy does) to decide which tables are "as or more extreme"
#: in the two-sided test, so that rounding in the pmf does not drop tied tables.
_TWO_SIDED_RTOL = 1 + 1e-7


def _as_counts(name: str, values: object) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise InputError(f"{name} must hold whole counts")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise InputError(f"{name} must be integer counts, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def odds_ratio(
    overlap: object, class_size: object, set_size: object, *, background_size: object
) -> np.ndarray:
    """Sample (unconditional) odds ratio ``a d / (b c)`` of the 2x2 table, as ``scipy.stats.fisher_exact``.

    Parameters
    ----------
    overlap, class_size, set_size, background_size
        ``a``, ``K``, ``n`` and ``N`` of the table (see the module docstring); broadcastable arrays.

    Returns
    -------
    numpy.ndarray
        ``inf`` when ``b c = 0 < a d``, ``0`` when ``a d = 0 < b c``, ``nan`` when a margin is zero
        (scipy's conventions). No pseudo-count is added (``gseapy`` adds 0.5 to every cell).
    """
    a, big_k, n, big_n = np.broadcast_arrays(
        *(
            _as_counts(k, v)
            for k, v in zip("aKnN", (overlap, class_size, set_size, background_size), strict=True)
        )
    )
    a, b = a.astype(float), (n - a).astype(float)
    c, d = (big_k - a).astype(float), (big_n - n - big_k + a).astype(float)
    num, den = a * d, b * c
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(num > 0, np.inf, np.nan))
    zero_margin = (a + b == 0) | (c + d == 0) | (a + c == 0) | (b + d == 0)
    out = np.where(zero_margin, np.nan, out)
    return out


def _two_sided(a: np.ndarray, big_k: np.ndarray, n: np.ndarray, big_n: np.ndarray) -> np.ndarray:
    """Two-sided Fisher p-value: sum of the pmf of all tables no more likely than the observed one."""
    out = np.empty(a.shape, dtype=float)
    margins = np.stack([big_n, big_k, n], axis=1)
    uniq, inverse = np.unique(margins, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for row, (nn, kk, ss) in enumerate(uniq):
        idx = np.flatnonzero(inverse == row)
        lo, hi = max(0, ss - (nn - kk)), min(kk, ss)
        support = np.arange(lo, hi + 1)
        pmf = stats.hypergeom.pmf(support, nn, kk, ss)
        obs = stats.hypergeom.pmf(a[idx], nn, kk, ss)
        # p(obs) = sum_{x: pmf(x) <= pmf(obs)} pmf(x), evaluated for every observed a at once
        order = np.argsort(pmf, kind="stable")
        cum = np.cumsum(pmf[order])
        pos = np.searchsorted(pmf[order], obs * _TWO_SIDED_RTOL, side="right")
        out[idx] = np.where(pos > 0, cum[np.maximum(pos - 1, 0)], 0.0)
    return out


def fisher_enrichment(
    overlap: object,
    class_size: object,
    set_size: object,
    *,
    background_size: object,
    alternative: str = "greater",
) -> tuple[np.ndarray, np.ndarray]:
    """Fisher exact test of many 2x2 tables at once (hypergeometric tail probabilities).

    Parameters
    ----------
    overlap
        ``a``: features of the set that are in the class.
    class_size
        ``K``: features of the background that are in the class.
    set_size
        ``n``: features in the set (all inside the background).
    background_size
        ``N``: features in the background.
    alternative
        ``"greater"`` (over-representation, the paper's test; ``P(A >= a)``), ``"less"``
        (``P(A <= a)``) or ``"two-sided"`` (scipy's definition).

    Returns
    -------
    odds_ratio : numpy.ndarray
        Sample odds ratio (see :func:`odds_ratio`).
    p_value : numpy.ndarray
        Fisher exact p-values, clipped to [0, 1].

    Raises
    ------
    InputError
        If the counts do not form valid 2x2 tables.

    Examples
    --------
    >>> orr, p = fisher_enrichment([3], [5], [4], background_size=[20])
    >>> round(float(p[0]), 6)
    0.031992
    """
    if alternative not in ALTERNATIVES:
        raise InputError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    a, big_k, n, big_n = np.broadcast_arrays(
        *(
            _as_counts(k, v)
            for k, v in zip(
                ("overlap", "class_size", "set_size", "background_size"),
                (overlap, class_size, set_size, background_size),
                strict=True,
            )
        )
    )
    a, big_k, n, big_n = (np.atleast_1d(x).ravel() for x in (a, big_k, n, big_n))
    bad = (a < 0) | (a > big_k) | (a > n) | (n > big_n) | (big_k > big_n) | (n - a > big_n - big_k)
    if bad.any():
        rows = np.flatnonzero(bad)[:5]
        raise InputError(
            "invalid 2x2 tables (need 0 <= overlap <= min(class_size, set_size) and sizes within the "
            "background)",
            ids=[f"#{i}: a={a[i]} K={big_k[i]} n={n[i]} N={big_n[i]}" for i in rows],
        )
    if alternative in ("greater", "less"):
        # P(A >= 0) = P(A <= min(K, n)) = 1 exactly: evaluate the tail only where it can be below 1
        # (most GO terms have no overlap with a given set, so this saves most of the work)
        p = np.ones(a.shape, dtype=float)
        if alternative == "greater":
            idx = np.flatnonzero(a > 0)
            p[idx] = stats.hypergeom.sf(a[idx] - 1, big_n[idx], big_k[idx], n[idx])
        else:
            idx = np.flatnonzero(a < np.minimum(big_k, n))
            p[idx] = stats.hypergeom.cdf(a[idx], big_n[idx], big_k[idx], n[idx])
    else:
        p = _two_sided(a, big_k, n, big_n)
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    return odds_ratio(a, big_k, n, background_size=big_n), p


def bh_fdr(p_values: object) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (the paper's BH FDR) of one family of tests.

    A thin alias kept for scripts that import it from here: it calls
    :func:`tbeqtl.association.fdr.bh_fdr`, the package's one BH implementation, with the
    family's own size as the number of tests. (Imported on first call, so that importing
    :mod:`tbeqtl.enrich` does not load the association engine and torch.)

    Parameters
    ----------
    p_values
        P-values of one family of tests (e.g. all GO terms tested for one set).

    Returns
    -------
    numpy.ndarray
        ``min(1, min_{j >= i} m p_(j) / j)`` in the input order.

    Raises
    ------
    InputError
        If a p-value is missing or outside [0, 1].
    """
    from ..association.fdr import bh_fdr as _bh_fdr

    return _bh_fdr(np.asarray(p_values, dtype=float).ravel())
