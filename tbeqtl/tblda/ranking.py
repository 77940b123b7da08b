r"""Post-fit feature ranking (paper, Materials and Methods "Feature ranking").

Genes
    Gene ``g`` in topic ``k`` is scored by the average 2-Wasserstein distance between its
    posterior marginal in topic ``k`` and in every other topic ``k'``:
    ``score_kg = mean_{k' != k} W2(q(psi_kg), q(psi_k'g))``. Under the Dirichlet posterior
    ``q(psi_k) = Dirichlet(xi_q[k])`` the marginal is ``Beta(xi_kg, xi_k0 - xi_kg)`` with
    ``xi_k0 = sum_g xi_kg``.

    *Exact* W2 in one dimension is the L2 distance between quantile functions,
    ``W2^2 = int_0^1 (F_1^{-1}(u) - F_2^{-1}(u))^2 du``, computed with Beta quantiles
    (:func:`scipy.special.betaincinv`) on a Gauss-Legendre grid (:func:`beta_w2_exact`).

    The *Gaussian shortcut* replaces each marginal by the normal with the same mean ``m``
    and sd ``s``: ``W2_N = sqrt((m_1 - m_2)^2 + (s_1 - s_2)^2)`` (:func:`beta_w2_gaussian`).
    Its error is bounded in closed form: with ``W2^2 = (m_1 - m_2)^2 + C^2`` (the centred
    parts are orthogonal to constants), ``|C - |s_1 - s_2|| <= eps = s_1 e_1 + s_2 e_2``
    where ``e_i = W2(standardised Beta_i, N(0, 1)) <= sqrt(2 KL(standardised Beta_i ||
    N(0, 1)))`` by Talagrand's transport inequality, and the KL is closed form from the Beta
    entropy. Hence ``|W2 - W2_N| <= min(eps, eps (2 |s_1 - s_2| + eps) / (W2_N +
    sqrt(dm^2 + max(|s_1 - s_2| - eps, 0)^2)))``. ``method="auto"`` uses the shortcut
    wherever this bound is below ``rtol`` times the shortcut value and the exact W2
    elsewhere. Fitted gene topics have concentrations ``xi_k0`` of 1e4-1e5, so the
    shortcut applies almost everywhere.

    The expression-level caveat: on raw topic weights the W2 score tracks mean expression
    (a gene with a large ``E[psi_kg]`` in some topic has large differences between topics);
    :func:`expression_level_spearman` reports this as a diagnostic. The ``"w2_normalized"``
    score divides the W2 score of gene ``g`` by ``sum_k E[psi_kg]``, which equals the W2
    between the marginals of ``psi_kg / sum_k' E[psi_k'g]`` (W2 is scale-equivariant):
    differences between topics relative to the gene's overall weight.

SNPs
    For each topic, ``E[lambda_jk]`` is regressed (OLS with intercept) on the coded allele
    frequency ``mean_i y_ij / 2`` of SNP ``j``; the score is the absolute residual. This module
    owns that computation (:func:`snp_maf_residuals`): the robust-component step
    (:func:`tbeqtl.pipeline.robust.maf_residuals`) and the simulator's planted trans-eQTLs
    (:func:`tbeqtl.simulate.effects.snp_topic_scores`) call it.

Both kinds keep the top ``top_fraction`` (10% by default, at least one) of features per
topic, ranked within (topic, kind) by score (ties broken by feature ID).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from scipy import special

from ..errors import InputError
from ..schema import validate_table

__all__ = [
    "GENE_SCORES",
    "beta_w2_exact",
    "beta_w2_gaussian",
    "coded_allele_frequency",
    "expression_level_spearman",
    "gene_w2_scores",
    "rank_features",
    "snp_maf_residual_scores",
    "snp_maf_residuals",
    "top_features",
]

logger = logging.getLogger(__name__)

GENE_SCORES = ("w2", "w2_normalized")


def _gauss_legendre_unit(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    return (nodes + 1) / 2, weights / 2


def _beta_quantiles(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    return special.betaincinv(a[..., None], b[..., None], u)


def beta_w2_exact(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], *, n_nodes: int = 64
) -> np.ndarray:
    """Exact 2-Wasserstein distance between Beta(a1, b1) and Beta(a2, b2), elementwise.

    Parameters
    ----------
    first, second
        ``(a1, b1)`` and ``(a2, b2)``: Beta parameters (broadcastable arrays, all > 0).
    n_nodes
        Gauss-Legendre nodes on (0, 1) for the quantile integral.

    Returns
    -------
    numpy.ndarray
        ``sqrt(int_0^1 (F_1^{-1}(u) - F_2^{-1}(u))^2 du)``.
    """
    a1, b1, a2, b2 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (*first, *second)))
    u, w = _gauss_legendre_unit(n_nodes)
    diff = _beta_quantiles(a1, b1, u) - _beta_quantiles(a2, b2, u)
    return np.sqrt((diff * diff) @ w)


def _beta_moments(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = a + b
    mean = a / total
    sd = np.sqrt(a * b / (total * total * (total + 1)))
    return mean, sd


def _standardised_normal_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Upper bound ``sqrt(2 KL)`` on W2 between the standardised Beta(a, b) and N(0, 1)."""
    _, sd = _beta_moments(a, b)
    entropy = (special.betaln(a, b) - (a - 1) * special.digamma(a) - (b - 1) * special.digamma(b)
               + (a + b - 2) * special.digamma(a + b))
    kl = 0.5 * math.log(2 * math.pi * math.e) - entropy + np.log(sd)
    return np.sqrt(2 * np.maximum(kl, 0.0))


def beta_w2_gaussian(
    first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian shortcut of the W2 distance between two Beta laws, with its error bound.

    Parameters
    ----------
    first, second
        ``(a1, b1)`` and ``(a2, b2)``: Beta parameters (broadcastable arrays).

    Returns
    -------
    tuple of numpy.ndarray
        ``(w2, bound)``: ``sqrt(dm^2 + ds^2)`` and a guaranteed upper bound on
        ``|w2 - W2_exact|`` (see the module docstring).
    """
    a1, b1, a2, b2 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (*first, *second)))
    m1, s1 = _beta_moments(a1, b1)
    m2, s2 = _beta_moments(a2, b2)
    dm = m1 - m2
    ds = np.abs(s1 - s2)
    w2 = np.sqrt(dm * dm + ds * ds)
    eps = s1 * _standardised_normal_distance(a1, b1) + s2 * _standardised_normal_distance(a2, b2)
    lower = np.sqrt(dm * dm + np.maximum(ds - eps, 0.0) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        second = eps * (2 * ds + eps) / (w2 + lower)
    bound = np.where(w2 + lower > 0, np.minimum(eps, second), eps)
    return w2, bound


def gene_w2_scores(
    gene_concentration_df: pd.DataFrame,
    *,
    method: str = "auto",
    rtol: float = 1e-3,
    normalized: bool = False,
    n_nodes: int = 64,
) -> pd.DataFrame:
    """Mean W2 distance of each gene's topic marginal to its marginals in the other topics.

    Parameters
    ----------
    gene_concentration_df
        Genes x K variational Dirichlet parameters ``xi_q`` (``TBLDA.gene_concentration_``).
    method
        ``"exact"`` (quantile integral everywhere), ``"gaussian"`` (shortcut everywhere) or
        ``"auto"`` (shortcut where its error bound is below ``rtol`` relative, exact elsewhere).
    rtol
        Relative error allowed for the shortcut in ``"auto"`` mode.
    normalized
        Divide each gene's scores by ``sum_k E[psi_kg]`` (the expression-level-free variant).
    n_nodes
        Gauss-Legendre nodes of the exact integral.

    Returns
    -------
    pandas.DataFrame
        Genes x K scores.
    """
    if method not in {"auto", "exact", "gaussian"}:
        raise InputError(f"unknown W2 method {method!r}; choose auto, exact or gaussian")
    xi = gene_concentration_df.to_numpy(dtype=np.float64)  # G x K
    n_genes, k = xi.shape
    if k < 2:
        raise InputError("W2 gene ranking needs at least 2 topics")
    a = xi
    b = xi.sum(axis=0, keepdims=True) - xi
    # pairwise (g, k, k')
    a1, b1 = a[:, :, None], b[:, :, None]
    a2, b2 = a[:, None, :], b[:, None, :]
    w2, bound = beta_w2_gaussian((a1, b1), (a2, b2))
    if method != "gaussian":
        need = np.ones(n_genes, dtype=bool) if method == "exact" else (bound > rtol * w2).any(axis=(1, 2))
        if need.any():
            u, w = _gauss_legendre_unit(n_nodes)
            rows = np.flatnonzero(need)
            for start in range(0, len(rows), 256):
                chunk = rows[start:start + 256]
                q = _beta_quantiles(a[chunk], b[chunk], u)  # g x K x nodes
                diff = q[:, :, None, :] - q[:, None, :, :]
                w2[chunk] = np.sqrt((diff * diff) @ w)
        logger.info("W2 gene scores: exact integral for %d of %d genes", int(need.sum()), n_genes)
    off = ~np.eye(k, dtype=bool)
    scores = (w2 * off).sum(axis=2) / (k - 1)
    if normalized:
        scores = scores / (a / (a + b)).sum(axis=1, keepdims=True)
    return pd.DataFrame(scores, index=gene_concentration_df.index, columns=gene_concentration_df.columns)


def expression_level_spearman(scores_df: pd.DataFrame, mean_count_s: pd.Series) -> pd.Series:
    """Spearman correlation between each topic's gene scores and the genes' mean count.

    Parameters
    ----------
    scores_df
        Genes x K scores (e.g. from :func:`gene_w2_scores`).
    mean_count_s
        Mean count per gene.

    Returns
    -------
    pandas.Series
        Spearman rho per topic, plus ``"mean"`` (their average).
    """
    from scipy.stats import spearmanr  # scipy.stats costs 0.5 s to import; only this needs it

    mean_count = mean_count_s.reindex(scores_df.index).to_numpy(dtype=np.float64)
    out = {}
    for topic in scores_df.columns:
        out[topic] = float(spearmanr(scores_df[topic].to_numpy(), mean_count).statistic)
    series = pd.Series(out, name="spearman_vs_mean_count", dtype=np.float64)
    series.loc["mean"] = float(np.mean(list(out.values())))
    return series


def coded_allele_frequency(genotype_df: pd.DataFrame) -> pd.Series:
    """Coded allele frequency ``mean_i y_ij / 2`` of each SNP over its called genotypes.

    Parameters
    ----------
    genotype_df
        SNPs x individuals dosages in [0, 2] (NaN = missing).

    Returns
    -------
    pandas.Series
        Frequency per SNP (NaN for a SNP without any called genotype), named ``coded_maf``.
    """
    return (genotype_df.mean(axis=1, skipna=True) / 2).rename("coded_maf")


def snp_maf_residuals(snp_topics_df: pd.DataFrame, maf_s: pd.Series) -> pd.DataFrame:
    """Residuals of ``E[lambda_jk]`` regressed (OLS with intercept) on the coded allele frequency.

    The one implementation of the paper's MAF adjustment of SNP loadings, per topic:
    ``E[lambda_.k] ~ 1 + maf``.

    Parameters
    ----------
    snp_topics_df
        SNPs x K posterior means ``E[lambda_jk]`` (or any SNP loadings).
    maf_s
        Coded allele frequency ``mean_i y_ij / 2`` per SNP (:func:`coded_allele_frequency`),
        aligned to ``snp_topics_df`` by SNP ID.

    Returns
    -------
    pandas.DataFrame
        SNPs x K signed residuals, same labels.

    Raises
    ------
    InputError
        A SNP has no frequency (absent from ``maf_s``, or no called genotype).
    """
    maf = maf_s.reindex(snp_topics_df.index).to_numpy(dtype=np.float64)
    if np.isnan(maf).any():
        raise InputError("SNPs have no coded allele frequency", ids=snp_topics_df.index[np.isnan(maf)])
    design = np.column_stack([np.ones_like(maf), maf])
    y = snp_topics_df.to_numpy(dtype=np.float64)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return pd.DataFrame(y - design @ coef, index=snp_topics_df.index, columns=snp_topics_df.columns)


def snp_maf_residual_scores(snp_topics_df: pd.DataFrame, maf_s: pd.Series) -> pd.DataFrame:
    """SNP scores: absolute residuals of ``E[lambda_jk]`` on the coded allele frequency, per topic.

    Parameters
    ----------
    snp_topics_df
        SNPs x K posterior means ``E[lambda_jk]``.
    maf_s
        Coded allele frequency ``mean_i y_ij / 2`` per SNP.

    Returns
    -------
    pandas.DataFrame
        SNPs x K ``|residual|`` of :func:`snp_maf_residuals`.
    """
    return snp_maf_residuals(snp_topics_df, maf_s).abs()


def top_features(scores_df: pd.DataFrame, *, kind: str, top_fraction: float = 0.1) -> pd.DataFrame:
    """Select the top ``top_fraction`` features of each topic as a tidy table.

    Parameters
    ----------
    scores_df
        Features x K scores.
    kind
        ``"gene"`` or ``"snp"``.
    top_fraction
        Fraction of features kept per topic (at least one).

    Returns
    -------
    pandas.DataFrame
        Columns ``topic``, ``feature``, ``kind``, ``score``, ``rank`` (1 = best).
    """
    if not 0 < top_fraction <= 1:
        raise InputError(f"top_fraction must be in (0, 1], got {top_fraction}")
    n_keep = max(1, math.ceil(top_fraction * len(scores_df) - 1e-9))
    parts = []
    for topic in scores_df.columns:
        col = pd.DataFrame({"feature": scores_df.index.astype(str), "score": scores_df[topic].to_numpy()})
        col = col.sort_values(["score", "feature"], ascending=[False, True], kind="mergesort")
        col = col.head(n_keep).copy()
        col.insert(0, "topic", int(topic))
        col.insert(2, "kind", kind)
        col["rank"] = np.arange(1, len(col) + 1, dtype=np.int64)
        parts.append(col)
    out = pd.concat(parts, ignore_index=True)
    return out[["topic", "feature", "kind", "score", "rank"]]


def rank_features(
    model,
    data=None,
    *,
    top_fraction: float = 0.1,
    gene_score: str = "w2",
    w2_method: str = "auto",
) -> pd.DataFrame:
    """Rank genes (W2) and SNPs (MAF residual) per topic and keep the top fraction.

    Parameters
    ----------
    model
        A fitted :class:`~tbeqtl.tblda.TBLDA` (or one loaded with ``TBLDA.load``).
    data
        Optional :class:`~tbeqtl.data.EQTLData`; when given, the coded allele frequencies
        are recomputed from its genotypes, otherwise those stored in the model are used.
    top_fraction
        Fraction of features kept per topic and kind (paper: 0.1).
    gene_score
        ``"w2"`` (as in the paper) or ``"w2_normalized"`` (expression-level effect removed).
    w2_method
        ``"auto"``, ``"exact"`` or ``"gaussian"``, see :func:`gene_w2_scores`.

    Returns
    -------
    pandas.DataFrame
        Table ``feature_ranking`` (``topic``, ``feature``, ``kind``, ``score``, ``rank``).
    """
    if gene_score not in GENE_SCORES:
        raise InputError(f"unknown gene score {gene_score!r}; choose one of {', '.join(GENE_SCORES)}")
    gene_scores = gene_w2_scores(model.gene_concentration_, method=w2_method,
                                 normalized=gene_score == "w2_normalized")
    diag = expression_level_spearman(gene_scores, model.gene_mean_count_)
    logger.info("gene score %s: mean Spearman with mean count %.3f (expression-level diagnostic)", gene_score,
                diag["mean"])
    if data is not None:
        maf_s = coded_allele_frequency(data.genotype_df.reindex(model.snp_topics_.index))
    else:
        maf_s = model.snp_maf_
    snp_scores = snp_maf_residual_scores(model.snp_topics_, maf_s)
    table = pd.concat([top_features(gene_scores, kind="gene", top_fraction=top_fraction),
                       top_features(snp_scores, kind="snp", top_fraction=top_fraction)], ignore_index=True)
    validate_table(table, "feature_ranking")
    return table
