r"""SNP-gene associations implied by the TBLDA generative model of a simulation (beyond planted eQTLs).

In the TBLDA model (paper, equations 1-9) a SNP's allele probability ``rho_ij`` depends on the
individual's topic proportions ``theta_i`` through ``lambda_j`` (equation 8), and a gene's
expression depends on the sample's topic proportions ``phi_l`` through ``Psi`` (equations 3-4);
``theta_i`` is the mean of the individual's ``phi_l`` (equation 5). So a SNP with an extreme
``lambda_jk`` is truly associated with the expression of topic-``k`` genes even when no eQTL
was planted between them. An FDR check that scores calls against the planted eQTLs alone counts
these model-generated associations as false discoveries.

:func:`implied_associations` measures them from the simulation truth on a given set of samples:
for every SNP ``j`` and gene ``g`` it computes the population correlation, across the samples
``l``, between the observed dosage ``y_{j,i(l)}`` and the model's expected log expression
``f_gl = log (Psi phi_l)_g`` (the library size ``C_l`` is removed by the CPM normalisation),
after both are residualised on the mapping covariates:

.. math::

    r_{jg} = \frac{\operatorname{cov}(\tilde m_j, \tilde f_g)}
                  {\sqrt{(\operatorname{var}(\tilde m_j) + \overline{(1 - h) v_j})\,
                          \operatorname{var}(\tilde f_g)}},

with ``m_jl = 2 rho_{j,i(l)}`` the expected dosage, ``v_jl = 2 rho_{j,i(l)} (1 - rho_{j,i(l)})``
its binomial variance (equation 9: genotype noise that does not follow the topics), ``h_l`` the
leverage of sample ``l`` in the covariate design, a tilde for residuals of the OLS fit on an
intercept and the covariates and variances/covariances taken over the samples (divisor ``n``).
So ``r`` is the ratio of the expected residual covariance of the *observed* dosage with ``f`` to
the square root of the expected residual variances, over draws of the genotypes. The expected t
statistic of the association test on ``n`` samples with ``p`` covariates is
``r sqrt(n - p - 2) / sqrt(1 - r^2)``. The expression side is not attenuated for count noise and
planted effects (it is the noise-free topic part), so ``|r|`` is an upper bound and a threshold on
it is lenient toward calling an association real.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["implied_associations"]

logger = logging.getLogger(__name__)


def _residualise(values: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (features x samples) minus their OLS fit on the columns of ``design``."""
    coef, *_ = np.linalg.lstsq(design, values.T, rcond=None)
    return values - (design @ coef).T


def implied_associations(
    truth,
    snps,
    genes,
    *,
    samples,
    sample_map_s: pd.Series,
    covariates_df: pd.DataFrame | None = None,
    genotype_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Model-implied SNP-gene associations on a set of samples, from a simulation's planted truth.

    Parameters
    ----------
    truth
        A :class:`tbeqtl.simulate.SimulationTruth` (``psi`` = ``gene_topics_df``, ``phi`` =
        ``sample_topics_df``, ``theta`` = ``individual_topics_df``, ``lambda`` =
        ``snp_topics_df``, ``alpha``, ``beta`` = ``ancestry_beta_df``, ``tau`` =
        ``ancestry_tau_df``).
    snps, genes
        SNP and gene IDs; every pair is scored.
    samples
        Sample IDs ``l`` (e.g. one tissue's held-out samples as tested).
    sample_map_s
        Sample -> individual ``i(l)``.
    covariates_df
        Covariates x samples used by the association test (None: intercept only).
    genotype_df
        Optional SNPs x individuals observed dosages ``y``. When given, ``m_jl`` is the observed
        dosage ``y_{j,i(l)}`` and ``v = 0``: the *realised* association of these samples'
        genotypes with the noise-free expression, which includes chance correlations of a SNP
        with the topic proportions ``phi_l`` of the tested samples (a gene's expression then
        really tracks the SNP in these samples, although no genetic effect exists). Missing
        dosages are replaced by the SNP's mean over the samples.

    Returns
    -------
    pandas.DataFrame
        One row per SNP-gene pair: ``snp``, ``gene``, ``r`` (the correlation defined in the
        module docstring) and ``expected_t`` (the expected t statistic on these samples).

    Raises
    ------
    InputError
        Unknown IDs, or too few samples for the covariates.
    """
    snps, genes, samples = pd.Index(snps), pd.Index(genes), pd.Index(samples)
    for name, ids, index in (
        ("SNPs", snps, truth.snp_topics_df.index),
        ("genes", genes, truth.gene_topics_df.index),
        ("samples", samples, truth.sample_topics_df.index),
    ):
        missing = ids.difference(index)
        if len(missing):
            raise InputError(f"{name} not in the simulation truth", ids=list(missing))
    individuals = sample_map_s.reindex(samples)
    if individuals.isna().any():
        raise InputError("samples without an individual", ids=list(samples[individuals.isna().to_numpy()]))
    n = len(samples)
    design = np.ones((n, 1))
    if covariates_df is not None and covariates_df.shape[0]:
        design = np.column_stack([design, covariates_df[samples].to_numpy(dtype=float).T])
    dof = n - design.shape[1] - 1
    if dof < 1:
        raise InputError(f"{n} samples leave no degrees of freedom for {design.shape[1] - 1} covariates")
    # equation 8: rho_ij = alpha beta_j tau_i + (1 - alpha) lambda_j theta_i
    theta = truth.individual_topics_df.loc[individuals.to_numpy()].to_numpy(dtype=float)
    tau = truth.ancestry_tau_df.loc[individuals.to_numpy()].to_numpy(dtype=float)
    lam = truth.snp_topics_df.loc[snps].to_numpy(dtype=float)
    beta = truth.ancestry_beta_df.loc[snps].to_numpy(dtype=float)
    alpha = float(truth.alpha)
    rho = alpha * beta @ tau.T + (1.0 - alpha) * lam @ theta.T  # S x n
    mean_dosage = 2.0 * rho
    binomial_var = 2.0 * rho * (1.0 - rho)
    if genotype_df is not None:
        missing = snps.difference(genotype_df.index)
        if len(missing):
            raise InputError("SNPs not in the genotypes", ids=list(missing))
        absent = pd.Index(individuals.unique()).difference(genotype_df.columns)
        if len(absent):
            raise InputError("individuals not in the genotypes", ids=list(absent))
        mean_dosage = genotype_df.loc[snps, individuals.to_numpy()].to_numpy(dtype=float)
        row_mean = np.nanmean(mean_dosage, axis=1, keepdims=True)
        mean_dosage = np.where(np.isnan(mean_dosage), row_mean, mean_dosage)
        binomial_var = np.zeros_like(mean_dosage)
    # equations 3-4: E[x_lg] = C_l (Psi phi_l)_g; the CPM scale removes C_l
    psi = truth.gene_topics_df.loc[genes].to_numpy(dtype=float)
    phi = truth.sample_topics_df.loc[samples].to_numpy(dtype=float)
    log_expr = np.log(psi @ phi.T)  # G x n
    m = _residualise(mean_dosage, design)
    f = _residualise(log_expr, design)
    # leverages h_l: the residual of the binomial noise keeps (1 - h_l) of its variance
    leverage = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
    cov = m @ f.T / n
    var_y = (m**2).mean(axis=1) + (binomial_var * (1.0 - leverage)).mean(axis=1)
    var_f = (f**2).mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(np.outer(var_y, var_f))
    r = np.nan_to_num(r, nan=0.0)
    t = r * np.sqrt(dof) / np.sqrt(np.clip(1.0 - r**2, 1e-12, None))
    logger.debug(
        "implied associations: %d SNPs x %d genes on %d samples, max |r| %.3f",
        len(snps),
        len(genes),
        n,
        float(np.abs(r).max()) if r.size else 0.0,
    )
    return pd.DataFrame(
        {
            "snp": np.repeat(snps.to_numpy(), len(genes)),
            "gene": np.tile(genes.to_numpy(), len(snps)),
            "r": r.ravel(),
            "expected_t": t.ravel(),
        }
    )
