"""Covariate removal as MatrixEQTL does it: row-mean imputation, QR basis, residualise, unit-scale.

Notation (``n`` samples, ``k`` covariates): the design is ``[1, C]`` (an intercept plus the
covariate rows). ``Q`` is an orthonormal basis (n x (k+1)) of its column space. A row ``x`` of
genotypes or expression becomes ``x_res = x - (x Q) Q^T``; rows whose residual sum of squares is
``<= eps * ||x||^2`` are set to exactly 0 (constant genes, monomorphic SNPs, SNPs collinear with
the covariates: they keep counting as tests, with ``r = t = beta = 0`` and ``p = 1``); the other
rows are scaled to unit norm. The partial correlation of a SNP and a gene is then the dot
product of their scaled residuals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["CovariateBasis", "covariate_basis", "impute_row_mean", "residualize_rows"]

logger = logging.getLogger(__name__)

EPS = np.finfo(np.float64).eps


def impute_row_mean(values: np.ndarray) -> np.ndarray:
    """Replace each NaN by the mean of its row's non-missing values (MatrixEQTL's ``SetNanRowMean``).

    An all-NaN row becomes 0. Works in place on a float array and returns it.

    Parameters
    ----------
    values
        Float array, one feature per row.

    Returns
    -------
    numpy.ndarray
        The same array, imputed.
    """
    nan = np.isnan(values)
    if not nan.any():
        return values
    rows = np.flatnonzero(nan.any(axis=1))
    sub = values[rows]
    sub_nan = nan[rows]
    counts = (~sub_nan).sum(axis=1)
    sums = np.where(sub_nan, 0.0, sub).sum(axis=1)
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    sub[sub_nan] = np.broadcast_to(means[:, None], sub.shape)[sub_nan]
    values[rows] = sub
    return values


@dataclass(frozen=True)
class CovariateBasis:
    """Orthonormal basis of the intercept plus covariates.

    Parameters
    ----------
    q
        n x (k+1) array with orthonormal columns spanning ``[1, C]``.
    n_covariates
        ``k``: the number of linearly independent covariates (intercept not counted).
    kept
        Names of the covariates used.
    dropped
        Names of the covariates dropped as linearly dependent (only with ``collinear="drop"``).
    """

    q: np.ndarray
    n_covariates: int
    kept: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def n_samples(self) -> int:
        """Number of samples n."""
        return int(self.q.shape[0])


def covariate_basis(
    covariates: np.ndarray | None, n_samples: int, *, names=None, collinear: str = "error"
) -> CovariateBasis:
    """QR basis of ``[1, C]`` with MatrixEQTL's collinearity cut.

    MatrixEQTL stops with "Colinear or zero covariates detected" when ``min |diag(R)| <
    eps * n`` in the QR decomposition of the n x (k+1) design. That is the default here
    (``collinear="error"``); ``collinear="drop"`` instead drops covariates that are (numerically)
    linear combinations of the intercept and earlier covariates, and counts only the kept ones
    in ``k`` (so ``df = n - 2 - k`` counts linearly independent covariates).

    Parameters
    ----------
    covariates
        k x n array (covariates in rows, MatrixEQTL orientation) or None.
    n_samples
        n.
    names
        Covariate names for messages.
    collinear
        ``"error"`` (MatrixEQTL) or ``"drop"``.

    Returns
    -------
    CovariateBasis
        The basis.

    Raises
    ------
    InputError
        Collinear covariates (``"error"``), or no residual degrees of freedom.
    """
    if covariates is None or covariates.shape[0] == 0:
        design = np.ones((n_samples, 1))
        names = []
    else:
        covariates = np.asarray(covariates, dtype=np.float64)
        names = [str(v) for v in (names if names is not None else range(covariates.shape[0]))]
        design = np.vstack([np.ones((1, n_samples)), covariates]).T
    if design.shape[1] > n_samples:
        raise InputError(
            f"{design.shape[1] - 1} covariates (+ intercept) for only {n_samples} samples: "
            "more covariates than samples"
        )
    tol = EPS * n_samples
    q, r = np.linalg.qr(design)
    diag = np.abs(np.diag(r))
    if diag.min() >= tol:
        return CovariateBasis(q=np.ascontiguousarray(q), n_covariates=design.shape[1] - 1, kept=tuple(names))
    if collinear != "drop":
        bad = [(["(intercept)"] + names)[i] for i in np.flatnonzero(diag < tol)]
        raise InputError(
            "Colinear or zero covariates detected (MatrixEQTL's rule min|diag(R)| < eps*n); "
            "pass collinear='drop' to drop redundant covariates. Offending covariates",
            ids=bad,
        )
    keep = [0]
    for j in range(1, design.shape[1]):
        _, rj = np.linalg.qr(design[:, keep + [j]])
        if abs(rj[-1, -1]) >= tol * max(1.0, np.linalg.norm(design[:, j]) / np.sqrt(n_samples)):
            keep.append(j)
    kept = tuple(names[j - 1] for j in keep[1:])
    dropped = tuple(n for n in names if n not in kept)
    logger.warning("dropped %d linearly dependent covariate(s): %s", len(dropped), ", ".join(dropped))
    q, _ = np.linalg.qr(design[:, keep])
    return CovariateBasis(q=np.ascontiguousarray(q), n_covariates=len(keep) - 1, kept=kept, dropped=dropped)


def residualize_rows(values: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residualise rows on ``Q`` and scale them to unit norm (in place).

    Parameters
    ----------
    values
        m x n float64 array (modified in place).
    q
        n x (k+1) orthonormal basis.

    Returns
    -------
    unit : numpy.ndarray
        The scaled residuals (the same array as ``values``); zeroed rows are exactly 0.
    norms : numpy.ndarray
        ``||x_res||`` per row (0 for zeroed rows).
    """
    raw_ss = np.einsum("ij,ij->i", values, values)
    values -= (values @ q) @ q.T
    res_ss = np.einsum("ij,ij->i", values, values)
    dead = res_ss <= raw_ss * EPS
    norms = np.sqrt(res_ss)
    norms[dead] = 0.0
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=~dead)
    values *= scale[:, None]
    return values, norms
