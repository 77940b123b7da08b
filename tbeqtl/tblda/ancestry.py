r"""The private genotype ancestry subspace of TBLDA: ``beta`` (S x Q) and ``tau`` (Q x N).

In equation 8 of the paper, ``rho_ij = alpha * sum_q beta_jq tau_qi + (1 - alpha) * ...``:
``beta_jq`` is the frequency, in ancestral population ``q``, of the allele that ``y`` counts,
and ``tau_qi`` is individual ``i``'s admixture proportion. Both are fixed before the fit.
Here ``beta`` is held as a SNPs x Q DataFrame (``beta_df``) and ``tau`` transposed, as an
individuals x Q DataFrame (``tau_df``), both labelled by ID.

Sources:

- terastructure or ADMIXTURE output, read by :mod:`tbeqtl.io.ancestry`
  (:func:`read_terastructure_beta`, :func:`read_terastructure_theta`, :func:`read_admixture_p`,
  :func:`read_admixture_q`; re-exported here);
- :func:`estimate_ancestry`: when none is given, an internal estimate from the genotypes by
  EM for the ADMIXTURE/STRUCTURE likelihood ``y_ij ~ Binomial(2, sum_q P_jq Q_qi)``
  (Tang et al. 2005, "frappe"; Alexander et al. 2009), with Q chosen by the user.

:func:`check_ancestry` checks ranges, alignment and allele coding against the genotypes.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io.ancestry import (
    read_admixture_p,
    read_admixture_q,
    read_ancestry_matrix,
    read_terastructure_beta,
    read_terastructure_theta,
)
from ..rng import as_generator

__all__ = [
    "ancestry_term",
    "check_ancestry",
    "estimate_ancestry",
    "read_admixture_p",
    "read_admixture_q",
    "read_ancestry_matrix",
    "read_terastructure_beta",
    "read_terastructure_theta",
]

logger = logging.getLogger(__name__)


def check_ancestry(
    beta_df: pd.DataFrame, tau_df: pd.DataFrame, genotype_df: pd.DataFrame, *, flip: str = "error"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check ``beta`` and ``tau`` against the genotypes and align them by ID.

    Checks: every SNP and individual of the genotypes is present; the same number Q of
    ancestral populations in both; frequencies in [0, 1]; admixture proportions in [0, 1]
    with rows summing to 1 (within 1e-3; rows are renormalised); and the allele coding:
    the implied allele frequency ``mean_i (beta tau)_ji`` must be closer to the observed
    ``mean_i y_ij / 2`` than its complement is (the mean absolute difference to the
    complement must not be below half of that to the observed frequencies).

    Parameters
    ----------
    beta_df
        SNPs x Q allele frequencies ``beta``.
    tau_df
        Individuals x Q admixture proportions ``tau`` (transposed).
    genotype_df
        SNPs x individuals dosages (NaN = missing).
    flip
        What to do when ``beta`` counts the other allele: ``"error"`` (default) or ``"flip"``
        (use ``1 - beta``, logged).

    Returns
    -------
    tuple of pandas.DataFrame
        ``(beta_df, tau_df)`` reindexed to the genotypes' SNPs and individuals.

    Raises
    ------
    InputError
        Missing IDs, shape mismatch, out-of-range values or the other allele's frequencies.
    """
    beta_df = beta_df.copy()
    tau_df = tau_df.copy()
    beta_df.index = beta_df.index.astype(str)
    tau_df.index = tau_df.index.astype(str)
    if beta_df.shape[1] != tau_df.shape[1]:
        raise InputError(f"ancestry beta has {beta_df.shape[1]} populations but tau has {tau_df.shape[1]}")
    missing = genotype_df.index.difference(beta_df.index, sort=False)
    if len(missing):
        raise InputError("SNPs of the genotypes have no ancestry allele frequencies (beta)", ids=missing)
    missing = genotype_df.columns.difference(tau_df.index, sort=False)
    if len(missing):
        raise InputError("individuals of the genotypes have no admixture proportions (tau)", ids=missing)
    beta_df = beta_df.loc[genotype_df.index]
    tau_df = tau_df.loc[genotype_df.columns]
    beta = beta_df.to_numpy(dtype=np.float64)
    tau = tau_df.to_numpy(dtype=np.float64)
    bad = ~np.all((beta >= 0) & (beta <= 1), axis=1)
    if bad.any():
        raise InputError("ancestry allele frequencies (beta) outside [0, 1] for SNPs", ids=beta_df.index[bad])
    sums = tau.sum(axis=1)
    bad = ~np.all((tau >= 0) & (tau <= 1), axis=1) | (np.abs(sums - 1) > 1e-3)
    if bad.any():
        raise InputError("admixture proportions (tau) outside [0, 1] or not summing to 1 for individuals",
                         ids=tau_df.index[bad])
    tau_df = tau_df.div(sums, axis=0)
    implied = (beta @ tau.T).mean(axis=1)
    observed = np.nanmean(genotype_df.to_numpy(dtype=np.float64), axis=1) / 2
    same = np.nanmean(np.abs(implied - observed))
    other = np.nanmean(np.abs(1 - implied - observed))
    if other < 0.5 * same:  # clearly closer to the complement (ambiguous when frequencies sit near 0.5)
        message = (f"ancestry allele frequencies (beta) look like those of the other allele (mean "
                   f"|difference| to observed frequencies {same:.3f}, to their complement {other:.3f})")
        if flip != "flip":
            raise InputError(message + "; recode the genotypes or pass flip='flip'")
        logger.warning("%s; using 1 - beta", message)
        beta_df = 1 - beta_df
    return beta_df, tau_df


def ancestry_term(beta_df: pd.DataFrame, tau_df: pd.DataFrame) -> np.ndarray:
    """Compute the fixed ancestry term ``A_ij = sum_q beta_jq tau_qi`` (S x N, float64).

    Parameters
    ----------
    beta_df
        SNPs x Q frequencies.
    tau_df
        Individuals x Q proportions.

    Returns
    -------
    numpy.ndarray
        ``beta @ tau.T``.
    """
    return beta_df.to_numpy(dtype=np.float64) @ tau_df.to_numpy(dtype=np.float64).T


def estimate_ancestry(
    genotype_df: pd.DataFrame,
    *,
    n_ancestry: int,
    max_iter: int = 300,
    tol: float = 1e-6,
    seed: int | np.random.Generator | None = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Estimate ``beta`` and ``tau`` from the genotypes by EM for the admixture likelihood.

    The model is ADMIXTURE's: ``y_ij ~ Binomial(2, sum_q P_jq Q_qi)`` with allele frequencies
    ``P`` (the paper's ``beta``) and admixture proportions ``Q`` (the paper's ``tau``). Each
    EM step allocates the ``y_ij`` counted and ``2 - y_ij`` other alleles to populations in
    proportion to ``P_jq Q_qi`` and ``(1 - P_jq) Q_qi``, then sets ``Q_qi`` to i's share of
    alleles from ``q`` and ``P_jq`` to the counted share of SNP j's alleles from ``q``; the
    likelihood never decreases. Missing genotypes are left out. Initial values are drawn
    with ``seed`` in ID-sorted order, so the result does not depend on input order.

    Parameters
    ----------
    genotype_df
        SNPs x individuals dosages in [0, 2] (NaN = missing).
    n_ancestry
        Number of ancestral populations Q (chosen by the user, as for ADMIXTURE's K).
    max_iter
        Maximum EM iterations.
    tol
        Stop when the relative log-likelihood gain of an iteration is below this.
    seed
        Seed of the initial values.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(beta_df, tau_df)``: SNPs x Q frequencies and individuals x Q proportions.

    Raises
    ------
    InputError
        ``n_ancestry < 1``.
    """
    if n_ancestry < 1:
        raise InputError(f"the number of ancestral populations must be >= 1, got {n_ancestry}")
    rng = as_generator(seed)
    snp_order = np.argsort(genotype_df.index.to_numpy(dtype=str), kind="stable")
    ind_order = np.argsort(genotype_df.columns.to_numpy(dtype=str), kind="stable")
    y = genotype_df.to_numpy(dtype=np.float64)[np.ix_(snp_order, ind_order)]
    mask = ~np.isnan(y)
    alt = np.where(mask, y, 0.0)
    ref = np.where(mask, 2.0 - y, 0.0)
    n_snps, n_ind = y.shape
    freq = np.clip(rng.uniform(0.2, 0.8, size=(n_snps, n_ancestry)), 1e-6, 1 - 1e-6)
    prop = rng.dirichlet(np.ones(n_ancestry), size=n_ind).T  # Q x N
    eps = 1e-9
    previous = -np.inf
    iteration = 0
    for iteration in range(max_iter):  # noqa: B007 - reported below
        rho = np.clip(freq @ prop, eps, 1 - eps)
        loglik = float((alt * np.log(rho)).sum() + (ref * np.log1p(-rho)).sum())
        if np.isfinite(previous) and abs(loglik - previous) <= tol * abs(previous):
            break
        previous = loglik
        r_alt = alt / rho
        r_ref = ref / (1 - rho)
        a_prop = prop * (freq.T @ r_alt)
        b_prop = prop * ((1 - freq).T @ r_ref)
        a_freq = freq * (r_alt @ prop.T)
        b_freq = (1 - freq) * (r_ref @ prop.T)
        total = a_prop + b_prop
        prop = total / np.maximum(total.sum(axis=0, keepdims=True), eps)
        freq = np.clip(a_freq / np.maximum(a_freq + b_freq, eps), 1e-6, 1 - 1e-6)
    logger.info("ancestry EM (Q=%d): %d iterations, log likelihood %.6g", n_ancestry, iteration + 1, loglik)
    columns = pd.Index([f"ancestry_{q}" for q in range(n_ancestry)], name="ancestry")
    beta = np.empty_like(freq)
    beta[snp_order] = freq
    tau = np.empty((n_ind, n_ancestry))
    tau[ind_order] = prop.T
    beta_df = pd.DataFrame(beta, index=pd.Index(genotype_df.index, name="snp"), columns=columns)
    tau_df = pd.DataFrame(tau, index=pd.Index(genotype_df.columns, name="individual"), columns=columns)
    return beta_df, tau_df
