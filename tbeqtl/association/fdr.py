"""Multiple-testing corrections: Benjamini-Hochberg as MatrixEQTL computes it, and Storey q-values.

MatrixEQTL's FDR column (``Matrix_eQTL_engine``) is a Benjamini-Hochberg step-up computed over
the rows it outputs, with the denominator ``m`` equal to the number of *all* tests in the pool
(cis, trans or all), not the number of rows output::

    FDR_(i) = min_{j >= i} p_(j) * m / j,   capped at 1,

with rows sorted by p ascending (|statistic| descending). With an output threshold of 1 this
is exactly R's ``p.adjust(p, "BH")``; with a threshold below 1 the unwritten tests all have
larger p-values than every written row, so the formula is the full-table BH restricted to the
written rows except that the running minimum only sees written rows (it can be larger than the
full BH near the threshold, never smaller). :func:`bh_fdr` implements both: pass ``n_tests``.

Storey's q-value (``qvalue`` R package, Storey & Tibshirani 2003) multiplies the BH values by
an estimate of the null proportion ``pi0``; :func:`estimate_pi0` follows ``qvalue::pi0est``
(``lambda = 0.05, 0.10, ..., 0.95``, ``pi0(lambda) = #{p >= lambda} / (m (1 - lambda))``,
a cubic smoothing spline with 3 degrees of freedom, evaluated at the largest lambda, capped
at 1) or its ``"bootstrap"`` method.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = [
    "DEFAULT_LAMBDAS",
    "bh_fdr",
    "bh_fdr_by_group",
    "estimate_pi0",
    "pi0_from_counts",
    "smoothing_spline_df",
    "storey_qvalue",
]

logger = logging.getLogger(__name__)

#: qvalue's default lambda grid: 0.05, 0.10, ..., 0.95.
DEFAULT_LAMBDAS = np.round(np.arange(0.05, 0.951, 0.05), 2)


def _check_p(p_values: np.ndarray) -> None:
    if p_values.size and (np.isnan(p_values).any() or p_values.min() < 0 or p_values.max() > 1):
        raise InputError("p-values must lie in [0, 1] and not be NaN")


def bh_fdr(p_values, *, n_tests: int | None = None, order_by=None) -> np.ndarray:
    """Benjamini-Hochberg FDR with a known number of tests (MatrixEQTL's FDR column).

    Parameters
    ----------
    p_values
        The p-values of the rows to adjust (any order).
    n_tests
        ``m``, the number of tests in the pool the rows come from. It must be at least the
        number of rows; the tests not given are assumed to have larger p-values (as for
        thresholded MatrixEQTL output). Default: the number of rows (plain ``p.adjust(p, "BH")``).
    order_by
        Optional sort key with the same length, sorted *descending* (e.g. ``|t|``), used
        instead of ascending p to rank the rows, as MatrixEQTL ranks by the statistic.

    Returns
    -------
    numpy.ndarray
        The FDR of each row, in the input order.

    Examples
    --------
    >>> bh_fdr([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=float)
    _check_p(p)
    n = p.size
    m = n if n_tests is None else int(n_tests)
    if m < n:
        raise InputError(f"n_tests ({m}) is smaller than the number of p-values ({n})")
    if n == 0:
        return np.empty(0)
    if order_by is None:
        order = np.argsort(p, kind="stable")
    else:
        key = np.asarray(order_by, dtype=float)
        order = np.lexsort((p, -key))
    ranked = p[order] * m / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    ranked = np.minimum(ranked, 1.0)
    out = np.empty(n)
    out[order] = ranked
    return out


def bh_fdr_by_group(p_values, groups, *, n_tests: dict | None = None, order_by=None) -> np.ndarray:
    """Benjamini-Hochberg FDR computed separately within each group (stratum).

    Parameters
    ----------
    p_values
        The p-values.
    groups
        Group label of each p-value (e.g. ``"cis:protein_coding"``).
    n_tests
        Number of tests in each group's complete stratum (default: the rows given).
    order_by
        Optional descending sort key (see :func:`bh_fdr`).

    Returns
    -------
    numpy.ndarray
        FDR within group, in the input order.
    """
    p = np.asarray(p_values, dtype=float)
    labels = pd.Index(np.asarray(groups, dtype=object))
    key = None if order_by is None else np.asarray(order_by, dtype=float)
    out = np.full(p.size, np.nan)
    for label in pd.unique(labels):
        idx = np.flatnonzero(labels == label)
        m = None
        if n_tests is not None:
            if label not in n_tests:
                raise InputError("no test count for stratum", ids=[label])
            m = n_tests[label]
        out[idx] = bh_fdr(p[idx], n_tests=m, order_by=None if key is None else key[idx])
    return out


def _spline_penalty(x: np.ndarray) -> np.ndarray:
    """Penalty matrix ``K = Q R^-1 Q^T`` of the natural cubic smoothing spline (Green & Silverman 1994)."""
    h = np.diff(x)
    n = x.size
    q = np.zeros((n, n - 2))
    r = np.zeros((n - 2, n - 2))
    for j in range(n - 2):
        q[j, j] = 1.0 / h[j]
        q[j + 1, j] = -1.0 / h[j] - 1.0 / h[j + 1]
        q[j + 2, j] = 1.0 / h[j + 1]
        r[j, j] = (h[j] + h[j + 1]) / 3.0
        if j + 1 < n - 2:
            r[j, j + 1] = r[j + 1, j] = h[j + 1] / 6.0
    return q @ np.linalg.solve(r, q.T)


def smoothing_spline_df(x, y, *, df: float) -> tuple[np.ndarray, float]:
    """Fit the natural cubic smoothing spline of ``y`` on ``x`` with ``df`` equivalent degrees of freedom.

    The fitted values are ``(I + lam K)^-1 y`` (``K`` the roughness penalty matrix, i.e. the minimiser
    of ``sum (y - f)^2 + lam * int f''^2``); ``lam`` is chosen so that the trace of the smoother
    equals ``df``, the criterion of R's ``smooth.spline(x, y, df=df)`` that ``qvalue`` uses.

    Parameters
    ----------
    x
        Distinct, increasing abscissae (at least 3).
    y
        Values.
    df
        Target degrees of freedom, in (2, len(x)).

    Returns
    -------
    fitted : numpy.ndarray
        The fitted values at ``x``.
    lam : float
        The penalty.
    """
    from scipy.optimize import brentq

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if not 2 < df < x.size:
        raise InputError(f"smoothing df must lie in (2, {x.size}), got {df}")
    evals, evecs = np.linalg.eigh(_spline_penalty(x))
    evals = np.clip(evals, 0.0, None)

    def excess(log_lam: float) -> float:
        return float(np.sum(1.0 / (1.0 + np.exp(log_lam) * evals)) - df)

    log_lam = brentq(excess, -50.0, 50.0, xtol=1e-12, rtol=1e-14)
    lam = float(np.exp(log_lam))
    fitted = evecs @ ((evecs.T @ y) / (1.0 + lam * evals))
    return fitted, lam


def pi0_from_counts(
    counts_at_least,
    n_tests: int,
    *,
    lambdas=DEFAULT_LAMBDAS,
    method: str = "smoother",
    smooth_df: float = 3.0,
) -> float:
    """Storey's pi0 from the number of p-values ``>= lambda`` (as ``qvalue::pi0est``).

    Parameters
    ----------
    counts_at_least
        For each lambda, how many of the ``n_tests`` p-values are ``>= lambda``.
    n_tests
        ``m``, the number of tests.
    lambdas
        The lambda grid (default qvalue's 0.05 ... 0.95).
    method
        ``"smoother"`` (qvalue's default) or ``"bootstrap"`` needs the p-values themselves,
        so here only ``"smoother"`` and ``"max_lambda"`` (pi0 at the largest lambda) are accepted.
    smooth_df
        Degrees of freedom of the smoothing spline.

    Returns
    -------
    float
        The estimate of the null proportion pi0, in (0, 1].
    """
    lam = np.asarray(lambdas, dtype=float)
    counts = np.asarray(counts_at_least, dtype=float)
    if n_tests <= 0:
        raise InputError("pi0 needs at least one test")
    pi0_lambda = counts / (n_tests * (1.0 - lam))
    if lam.size == 1 or method == "max_lambda":
        pi0 = float(pi0_lambda[-1])
    elif method == "smoother":
        pi0 = float(smoothing_spline_df(lam, pi0_lambda, df=smooth_df)[0][-1])
    else:
        raise InputError(f"unknown pi0 method {method!r} for counts (use 'smoother' or 'max_lambda')")
    pi0 = min(pi0, 1.0)
    if pi0 <= 0:
        raise InputError("estimated pi0 <= 0: check the p-values or give lambdas / a fixed pi0")
    return pi0


def estimate_pi0(
    p_values,
    *,
    lambdas: Sequence[float] | np.ndarray = DEFAULT_LAMBDAS,
    method: str = "smoother",
    smooth_df: float = 3.0,
) -> float:
    """Estimate the proportion of true null hypotheses pi0 as ``qvalue::pi0est`` does.

    Parameters
    ----------
    p_values
        All p-values of the family.
    lambdas
        Tuning grid (default 0.05, ..., 0.95); a single value gives ``pi0(lambda)`` directly.
    method
        ``"smoother"`` (default): cubic smoothing spline (``smooth_df`` degrees of freedom)
        through ``pi0(lambda)``, evaluated at the largest lambda. ``"bootstrap"``: the lambda
        minimising the bootstrap mean squared error against ``min(pi0(lambda))`` (Storey,
        Taylor & Siegmund 2004), as qvalue does.
    smooth_df
        Degrees of freedom of the smoother.

    Returns
    -------
    float
        pi0 in (0, 1].
    """
    p = np.asarray(p_values, dtype=float)
    _check_p(p)
    lam = np.sort(np.asarray(lambdas, dtype=float))
    if p.size == 0:
        raise InputError("pi0 needs at least one p-value")
    if lam.min() < 0 or lam.max() >= 1:
        raise InputError("lambdas must lie in [0, 1)")
    if lam.size > 1 and lam.size < 4:
        raise InputError("give one lambda or at least 4 of them")
    p_sorted = np.sort(p)
    counts = p.size - np.searchsorted(p_sorted, lam, side="left")
    if method in ("smoother", "max_lambda"):
        return pi0_from_counts(counts, p.size, lambdas=lam, method=method, smooth_df=smooth_df)
    if method != "bootstrap":
        raise InputError(f"unknown pi0 method {method!r}")
    m = p.size
    pi0_lambda = counts / (m * (1.0 - lam))
    min_pi0 = np.quantile(pi0_lambda, 0.1)
    w = counts.astype(float)
    # qvalue's closed-form bootstrap MSE of pi0(lambda)
    mse = (w / (m**2 * (1 - lam) ** 2)) * (1 - w / m) + (pi0_lambda - min_pi0) ** 2
    pi0 = min(float(pi0_lambda[np.argmin(mse)]), 1.0)
    if pi0 <= 0:
        raise InputError("estimated pi0 <= 0: check the p-values")
    return pi0


def storey_qvalue(
    p_values,
    *,
    n_tests: int | None = None,
    pi0: float | None = None,
    lambdas=DEFAULT_LAMBDAS,
    method: str = "smoother",
) -> np.ndarray:
    """Storey q-values: ``pi0 * BH`` (``qvalue::qvalue`` with ``pfdr=FALSE``).

    Parameters
    ----------
    p_values
        The p-values (all tests, unless ``n_tests`` and ``pi0`` are given).
    n_tests
        Number of tests of the family when only some rows are given (then ``pi0`` is required,
        e.g. from :func:`pi0_from_counts` on the histogram of all tests).
    pi0
        A fixed pi0; default: estimated with :func:`estimate_pi0`.
    lambdas, method
        Passed to :func:`estimate_pi0`.

    Returns
    -------
    numpy.ndarray
        q-values in the input order.
    """
    p = np.asarray(p_values, dtype=float)
    if pi0 is None:
        if n_tests is not None and n_tests != p.size:
            raise InputError("with n_tests larger than the rows given, pass pi0 (estimated on all tests)")
        pi0 = estimate_pi0(p, lambdas=lambdas, method=method)
    if not 0 < pi0 <= 1:
        raise InputError(f"pi0 must lie in (0, 1], got {pi0}")
    return pi0 * bh_fdr(p, n_tests=n_tests)
