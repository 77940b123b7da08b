"""Expression normalisation and covariates of the held-out eQTL tests.

Paper (eQTL pipeline): expression "quantile-normalized as input"; covariates sex, PCR, platform,
the top five genotype principal components and the top 60 PEER factors per tissue.

Rules used here
---------------
- **Expression.** Raw counts are scaled to counts per million with each sample's library size
  taken over all genes of the data set (not only the chromosome being tested), then every gene
  is rank-based inverse-normal transformed across the samples of one tissue:
  ``z = Phi^-1(r / (n + 1))`` with ``r`` the rank (ties get their average rank) and ``n`` the
  number of samples, the rule of GTEx's eQTL pipeline.
- **Genotype PCs.** Dosages are mean-imputed per SNP, SNPs standardised (monomorphic SNPs
  dropped), and the individuals' scores on the top principal components taken from an SVD;
  each component's sign is fixed so that its largest-magnitude individual score is positive.
- **Hidden factors.** ``"pca"``: scores of the samples on the top principal components of the
  normalised expression (genes centred). ``"factor_analysis"``: a PEER-like model, a factor
  analysis ``y_gn = sum_k w_gk z_kn + e_gn`` with per-gene noise variance and an automatic
  relevance determination prior ``w_.k ~ N(0, 1/a_k)`` fitted by EM to a MAP estimate of ``W``
  and ``a`` (Bishop's Bayesian PCA with diagonal noise). PEER fits the same model by
  variational Bayes; the factors are similar but not identical. ``"none"``: no hidden factors.
  The number of hidden factors is the configured count capped at
  ``hidden_max_fraction x n_samples``.
- **Known covariates.** Each configured attribute is looked up (case-insensitively) in the sample
  attributes, then the individual attributes; numeric ones are used as is (missing values get
  the mean), categorical ones become 0/1 dummies of every level but the first (sorted).
  Constant and linearly dependent columns are dropped with a log message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from ..errors import InputError
from .factors import sample_attributes

__all__ = [
    "counts_per_million",
    "encode_known_covariates",
    "genotype_pcs",
    "genotype_pcs_streamed",
    "hidden_factors",
    "inverse_normal_transform",
    "tissue_covariates",
]

logger = logging.getLogger(__name__)


def counts_per_million(counts_df: pd.DataFrame, *, library_size_s: pd.Series | None = None) -> pd.DataFrame:
    """Scale raw counts by each sample's library size.

    Parameters
    ----------
    counts_df
        Genes x samples raw counts (the paper's ``x``).
    library_size_s
        Sample -> library size (column sum over all genes), for a table holding some of the genes
        (a chromosome pair's); default: the column sums of ``counts_df``. Either way the values
        are ``x_gl * (1e6 / library size)``, so a pair's rows are bitwise those of the all-gene table.

    Returns
    -------
    pandas.DataFrame
        Counts per million, same labels; a sample with no reads gets zeros.
    """
    values = counts_df.to_numpy(dtype=float)
    if library_size_s is None:
        totals = values.sum(axis=0)
    else:
        missing = counts_df.columns.difference(library_size_s.index, sort=False)
        if len(missing):
            raise InputError("samples without a library size", ids=missing)
        totals = library_size_s.reindex(counts_df.columns).to_numpy(dtype=float)
    scale = np.divide(1e6, totals, out=np.zeros_like(totals), where=totals > 0)
    return pd.DataFrame(values * scale, index=counts_df.index, columns=counts_df.columns)


def inverse_normal_transform(expression_df: pd.DataFrame) -> pd.DataFrame:
    """Rank-based inverse normal transform of every gene across samples.

    ``z = Phi^-1(r / (n + 1))`` with average ranks for ties.

    Parameters
    ----------
    expression_df
        Genes x samples values.

    Returns
    -------
    pandas.DataFrame
        Normal scores, same labels.
    """
    values = expression_df.to_numpy(dtype=float)
    n = values.shape[1]
    if n == 0:
        return expression_df.astype(float)
    ranks = stats.rankdata(values, axis=1, method="average")
    z = special.ndtri(ranks / (n + 1.0))
    return pd.DataFrame(z, index=expression_df.index, columns=expression_df.columns)


def _svd_scores(matrix: np.ndarray, n_components: int) -> np.ndarray:
    """Scores of the columns of ``matrix`` (features x observations) on its top components."""
    if n_components == 0 or matrix.size == 0:
        return np.zeros((matrix.shape[1], 0))
    _, s, vt = np.linalg.svd(matrix, full_matrices=False)
    n_components = min(n_components, len(s))
    return _orient(vt[:n_components].T * s[:n_components])


def _orient(scores: np.ndarray) -> np.ndarray:
    """Flip each column (in place) so that its largest-magnitude entry (the first, on ties) is positive."""
    for k in range(scores.shape[1]):
        j = np.argmax(np.abs(scores[:, k]))
        if scores[j, k] < 0:
            scores[:, k] = -scores[:, k]
    return scores


def genotype_pcs(genotype_df: pd.DataFrame, *, n_pcs: int = 5) -> pd.DataFrame:
    """Top principal components of the genotypes, one row per individual.

    Parameters
    ----------
    genotype_df
        SNPs x individuals dosages (NaN = missing), the paper's ``y``.
    n_pcs
        Number of components (paper 5).

    Returns
    -------
    pandas.DataFrame
        Individuals x ``genoPC1..genoPC<n>`` scores.
    """
    standardized = _standardized_snps(genotype_df.to_numpy(dtype=float))
    n_pcs = min(n_pcs, max(0, min(standardized.shape) - 1))
    scores = _svd_scores(standardized, n_pcs)
    return pd.DataFrame(
        scores, index=genotype_df.columns, columns=[f"genoPC{k + 1}" for k in range(scores.shape[1])]
    )


def _standardized_snps(values: np.ndarray) -> np.ndarray:
    """Mean-impute, centre and scale every SNP (row) of ``values``; drop rows with sd <= 1e-12."""
    means = np.nanmean(
        np.where(np.isnan(values).all(axis=1, keepdims=True), 0.0, values), axis=1, keepdims=True
    )
    values = np.where(np.isnan(values), means, values) - means
    sd = values.std(axis=1, keepdims=True)
    keep = sd[:, 0] > 1e-12
    return values[keep] / sd[keep]


def _aligned_chunk(chunk: pd.DataFrame, individuals: pd.Index) -> pd.DataFrame:
    """``chunk`` with its columns in the order of ``individuals``; InputError if the sets differ."""
    if chunk.columns.equals(individuals):
        return chunk
    if (
        chunk.columns.has_duplicates
        or len(chunk.columns) != len(individuals)
        or not chunk.columns.isin(individuals).all()
    ):
        odd = chunk.columns.symmetric_difference(individuals, sort=False)
        raise InputError(
            "genotype chunks differ in their individuals (columns)",
            ids=odd if len(odd) else chunk.columns[chunk.columns.duplicated()],
        )
    return chunk[individuals]


def genotype_pcs_streamed(chunks: Iterable[pd.DataFrame], *, n_pcs: int = 5) -> pd.DataFrame:
    """Top genotype principal components from SNP chunks, one chunk in memory at a time.

    The result equals ``genotype_pcs(pd.concat(chunks), n_pcs=n_pcs)`` (to rounding, same signs):
    every SNP of the paper's genotypes ``y`` (SNPs x individuals) is mean-imputed, centred and
    scaled to unit variance (monomorphic SNPs dropped) as in :func:`genotype_pcs`, but instead of
    an SVD of the standardised S x N matrix ``Z`` the N x N Gram matrix ``G = Z^T Z`` is
    accumulated in float64 chunk by chunk. With ``G = V diag(d) V^T`` (eigenvalues ``d``
    decreasing) the scores are ``V_k sqrt(d_k)``, the same as ``V_k s_k`` of the SVD
    ``Z = U diag(s) V^T`` since ``d_k = s_k^2``; each component's sign is fixed so that its
    largest-magnitude individual score is positive. Memory: one chunk plus N x N float64.
    Components whose eigenvalues (nearly) tie are not identified, by this or by the SVD.

    Parameters
    ----------
    chunks
        SNPs x individuals dosages (NaN = missing), e.g. one chromosome each; every chunk has
        the same individuals (in any column order; the first chunk's order is kept).
    n_pcs
        Number of components (paper 5); capped at ``min(S_kept, N) - 1`` as in
        :func:`genotype_pcs`.

    Returns
    -------
    pandas.DataFrame
        Individuals x ``genoPC1..genoPC<k>`` scores, in the first chunk's individual order.

    Raises
    ------
    InputError
        No chunk at all, or chunks whose individuals differ (names the differing IDs).
    """
    individuals: pd.Index | None = None
    gram: np.ndarray | None = None
    n_kept = 0
    for chunk in chunks:
        if individuals is None:
            individuals = chunk.columns
            if individuals.has_duplicates:
                raise InputError(
                    "genotype chunk has duplicate individuals", ids=individuals[individuals.duplicated()]
                )
            gram = np.zeros((len(individuals), len(individuals)))
        standardized = _standardized_snps(_aligned_chunk(chunk, individuals).to_numpy(dtype=float))
        n_kept += standardized.shape[0]
        gram += standardized.T @ standardized
    if individuals is None:
        raise InputError("no genotype chunks to compute genotype PCs from")
    n_pcs = min(n_pcs, max(0, min(n_kept, len(individuals)) - 1))
    scores = np.zeros((len(individuals), 0))
    if n_pcs > 0:
        eigenvalues, eigenvectors = np.linalg.eigh(gram)
        top = np.argsort(-eigenvalues, kind="stable")[:n_pcs]
        scores = _orient(eigenvectors[:, top] * np.sqrt(np.clip(eigenvalues[top], 0.0, None)))
    logger.info(
        "genotype PCs from %d SNPs (monomorphic ones dropped) x %d individuals: %d components",
        n_kept,
        len(individuals),
        scores.shape[1],
    )
    return pd.DataFrame(scores, index=individuals, columns=[f"genoPC{k + 1}" for k in range(scores.shape[1])])


def _factor_analysis_ard(
    y: np.ndarray, n_factors: int, *, n_iter: int = 200, tol: float = 1e-6, seed: int = 0
) -> np.ndarray:
    """MAP factor analysis with ARD priors by EM; ``y`` is genes x samples (centred). Returns samples x K."""
    n_genes, n_samples = y.shape
    gen = np.random.default_rng(seed)
    init = _svd_scores(y, n_factors)  # samples x K
    w = (y @ init) / np.maximum((init**2).sum(axis=0), 1e-12)  # genes x K
    w += 1e-3 * gen.standard_normal(w.shape)
    psi = np.maximum(y.var(axis=1), 1e-6)
    alpha = np.ones(n_factors)
    previous = np.inf
    eye = np.eye(n_factors)
    for _ in range(n_iter):
        # E-step: q(z_n) = N(m_n, S) with S = (I + W^T Psi^-1 W)^-1
        wp = w / psi[:, None]
        s = np.linalg.inv(eye + w.T @ wp)
        m = s @ wp.T @ y  # K x samples
        ezz = n_samples * s + m @ m.T
        # M-step: per-gene MAP rows of W with the ARD prior, then noise, then relevances
        xz = y @ m.T  # genes x K
        systems = ezz[None, :, :] + psi[:, None, None] * np.diag(alpha)[None, :, :]
        w = np.linalg.solve(systems, xz[:, :, None])[:, :, 0]
        psi = np.maximum(((y**2).sum(axis=1) - (w * xz).sum(axis=1)) / n_samples, 1e-6)
        alpha = n_genes / np.maximum((w**2).sum(axis=0), 1e-12)
        change = np.abs(w).max()
        if abs(previous - change) <= tol * max(change, 1.0):
            break
        previous = change
    scores = m.T
    for k in range(n_factors):
        j = np.argmax(np.abs(scores[:, k]))
        if scores[j, k] < 0:
            scores[:, k] = -scores[:, k]
    order = np.argsort(-(w**2).sum(axis=0), kind="stable")
    return scores[:, order]


def hidden_factors(
    expression_df: pd.DataFrame, *, n_factors: int, method: str = "pca", seed: int = 0
) -> pd.DataFrame:
    """Hidden expression factors (the paper's PEER factors) of normalised expression.

    Parameters
    ----------
    expression_df
        Genes x samples normalised expression of one tissue.
    n_factors
        Number of factors.
    method
        ``"pca"``, ``"factor_analysis"`` (PEER-like ARD factor analysis) or ``"none"``.
    seed
        Seed of the factor-analysis initial jitter.

    Returns
    -------
    pandas.DataFrame
        Samples x ``hidden1..hidden<n>``.
    """
    if method not in ("pca", "factor_analysis", "none"):
        raise InputError("hidden-factor method must be pca, factor_analysis or none", ids=[method])
    values = expression_df.to_numpy(dtype=float)
    values = values - values.mean(axis=1, keepdims=True)
    n_factors = 0 if method == "none" else min(n_factors, max(0, min(values.shape) - 1))
    if n_factors == 0:
        scores = np.zeros((values.shape[1], 0))
    elif method == "pca":
        scores = _svd_scores(values, n_factors)
    else:
        scores = _factor_analysis_ard(values, n_factors, seed=seed)
    return pd.DataFrame(
        scores, index=expression_df.columns, columns=[f"hidden{k + 1}" for k in range(scores.shape[1])]
    )


def encode_known_covariates(
    samples: Sequence[str],
    *,
    columns: Sequence[str],
    sample_info_df: pd.DataFrame,
    individual_info_df: pd.DataFrame,
    sample_map_s: pd.Series,
) -> pd.DataFrame:
    """Encode known sample/individual attributes (sex, PCR, platform) as numeric covariates.

    Parameters
    ----------
    samples
        Sample IDs (rows of the result).
    columns
        Attribute names, looked up case-insensitively in ``sample_info_df`` then
        ``individual_info_df``; absent ones are skipped with a log message.
    sample_info_df, individual_info_df, sample_map_s
        As in :class:`tbeqtl.data.EQTLData`.

    Returns
    -------
    pandas.DataFrame
        Samples x covariates (numeric columns as is, categorical ones as dummies
        ``<name>_<level>`` of every level but the first); constant columns dropped.
    """
    samples = pd.Index(samples)
    found_df = sample_attributes(
        samples,
        columns=list(columns),
        sample_info_df=sample_info_df,
        individual_info_df=individual_info_df,
        sample_map_s=sample_map_s,
    )
    parts = []
    for name in columns:
        if name not in found_df.columns:
            logger.info("covariate %r is not a sample or individual attribute; skipped", name)
            continue
        values = found_df[name]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numeric = values.astype(float)
            parts.append(numeric.fillna(numeric.mean()).rename(str(name)).to_frame())
        else:
            text = values.astype("string").fillna("NA")
            levels = sorted(text.unique())
            for level in levels[1:]:
                parts.append((text == level).astype(float).rename(f"{name}_{level}").to_frame())
    if not parts:
        return pd.DataFrame(index=samples)
    out = pd.concat(parts, axis=1)
    constant = out.columns[out.std(axis=0, ddof=0).fillna(0).to_numpy() <= 1e-12]
    return out.drop(columns=constant)


def _drop_dependent(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop covariate columns that are linear combinations of earlier ones (and the intercept)."""
    if frame.shape[1] == 0:
        return frame
    keep: list[str] = []
    basis = np.ones((frame.shape[0], 1)) / np.sqrt(frame.shape[0])
    for column in frame.columns:
        x = frame[column].to_numpy(dtype=float)
        resid = x - basis @ (basis.T @ x)
        norm = np.linalg.norm(resid)
        if norm <= 1e-8 * max(np.linalg.norm(x), 1.0):
            logger.info("covariate %s is constant or collinear with earlier covariates; dropped", column)
            continue
        basis = np.column_stack([basis, resid / norm])
        keep.append(column)
    return frame[keep]


def tissue_covariates(
    samples: Sequence[str],
    *,
    tissue: str,
    expression_df: pd.DataFrame,
    known_df: pd.DataFrame,
    geno_pcs_df: pd.DataFrame,
    sample_map_s: pd.Series,
    n_hidden: int = 60,
    hidden: str = "pca",
    hidden_max_fraction: float = 0.25,
    seed: int = 0,
) -> pd.DataFrame:
    """All covariates of one tissue's held-out samples, in MatrixEQTL orientation.

    Parameters
    ----------
    samples
        The tissue's held-out sample IDs.
    tissue
        Tissue name (for messages).
    expression_df
        Genes x samples normalised expression of these samples (for hidden factors).
    known_df
        Samples x known covariates from :func:`encode_known_covariates`.
    geno_pcs_df
        Individuals x genotype PCs from :func:`genotype_pcs`.
    sample_map_s
        Sample -> individual.
    n_hidden, hidden, hidden_max_fraction, seed
        Hidden factors, see :func:`hidden_factors`; the count is capped at
        ``floor(hidden_max_fraction * n_samples)``.

    Returns
    -------
    pandas.DataFrame
        Covariates x samples.

    Raises
    ------
    InputError
        If the tissue has fewer held-out samples than covariates + 3 (the linear model's
        residual degrees of freedom ``n - 2 - n_cov`` would be below 1); names the tissue.
    """
    samples = pd.Index(samples)
    n = len(samples)
    pcs = geno_pcs_df.reindex(sample_map_s.reindex(samples).to_numpy())
    pcs.index = samples
    n_hidden_used = min(n_hidden, int(np.floor(hidden_max_fraction * n)))
    hidden_df = hidden_factors(
        expression_df[samples], n_factors=max(n_hidden_used, 0), method=hidden, seed=seed
    )
    frame = pd.concat([known_df.reindex(samples), pcs, hidden_df], axis=1)
    n_requested = frame.shape[1]
    if n < n_requested + 3:
        raise InputError(
            f"tissue {tissue!r} has {n} held-out samples, fewer than the {n_requested} covariates + 3 "
            "that the linear model needs (use fewer genotype PCs or hidden factors, or skip the tissue)",
            ids=[tissue],
        )
    frame = _drop_dependent(frame)
    if frame.shape[1] < n_requested:
        logger.info("tissue %s: %d of %d covariates kept", tissue, frame.shape[1], n_requested)
    return frame.T
