"""``map_eqtls``: MatrixEQTL-equivalent SNP x gene tests with cis/trans pools, FDR and histograms."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError, format_ids
from .cistrans import build_cis_index
from .fdr import DEFAULT_LAMBDAS
from .histogram import aggregate_bins, counts_to_pbins, histogram_edges, histogram_table, score_edges
from .inputs import check_samples, genotype_view, numeric_matrix, reorder
from .kernels import KernelOutput, PoolAccumulator, resolve_backend, stream_blocks
from .models import get_model, p_from_stat
from .residualize import CovariateBasis, covariate_basis, impute_row_mean, residualize_rows
from .result import AssociationResult, gene_type_group, recompute_fdr

__all__ = ["map_eqtls"]

logger = logging.getLogger(__name__)

TYPE_GROUPS = ("protein_coding", "lincRNA", "other")


def _auto_backend(backend: str) -> tuple[str, str]:
    # "auto" avoids importing torch unless a GPU driver is present
    if backend == "auto" and "torch" not in sys.modules and not os.path.exists("/proc/driver/nvidia"):
        return "numpy", "cpu"
    return resolve_backend(backend)


def _gene_types(gene_types, genes: pd.Index) -> pd.Series | None:
    if gene_types is None:
        return None
    if isinstance(gene_types, pd.DataFrame):
        if "gene_type" not in gene_types.columns:
            raise InputError("gene type table needs a 'gene_type' column", ids=list(gene_types.columns))
        gene_types = gene_types["gene_type"]
    s = pd.Series(gene_types)
    s.index = s.index.astype(str)
    if s.index.has_duplicates:
        raise InputError("duplicate gene IDs in the gene types", ids=s.index[s.index.duplicated()].unique())
    s = s.reindex(genes)
    if s.isna().any():
        missing = genes[s.isna().to_numpy()]
        logger.warning(
            "%d gene(s) have no gene type and are counted as 'other': %s", len(missing), format_ids(missing)
        )
        s = s.fillna("other")
    return s.astype(str)


def map_eqtls(
    genotype_df: pd.DataFrame,
    expression_df: pd.DataFrame,
    covariates_df: pd.DataFrame | None = None,
    *,
    snp_pos_df: pd.DataFrame | None = None,
    gene_pos_df: pd.DataFrame | None = None,
    model: str = "linear",
    cis_dist: float = 1e6,
    pv_cis: float = 1e-2,
    pv_trans: float = 1e-5,
    gene_types=None,
    collinear: str = "error",
    covariate_missing: str = "error",
    precision: str = "float64",
    backend: str = "auto",
    block_size: int | None = None,
    max_block_bytes: float = 256e6,
    pvalue_hist=None,
    min_pvalues: bool = False,
    qvalue: bool = False,
    show_progress: bool | None = None,
) -> AssociationResult:
    """Test every SNP against every gene as MatrixEQTL 2.3 does (``Matrix_eQTL_main``).

    Genotypes and expression are residualised on the intercept and covariates (QR basis), the
    partial correlation ``r`` of each pair gives ``t = r sqrt(df / (1 - r^2))`` with
    ``df = n - 2 - k`` (``k`` linearly independent covariates; ``n - 3 - k`` for anova and
    linear_cross) and ``p = 2 pt(-|t|, df)``. Pairs are split into a cis and a trans pool by
    MatrixEQTL's ``cisDist`` rule when both position tables are given and ``pv_cis > 0``; a pair is
    output when its statistic reaches the critical value of its pool's threshold. The FDR
    (Benjamini-Hochberg) of each pool uses the number of *all* tests of the pool; with gene types
    it is also computed per stratum (pool x {protein_coding, lincRNA, other}).

    Missing values follow MatrixEQTL: genotype and expression NaNs are replaced by the row mean
    (anova: a missing genotype joins the most frequent genotype group). Constant genes, monomorphic
    SNPs and SNPs collinear with the covariates are zeroed (``t = 0, p = 1, beta = 0``) and still
    count as tests.

    Parameters
    ----------
    genotype_df
        SNPs x samples dosages (the paper's ``y``, expanded to samples), NaN = missing.
    expression_df
        Genes x samples expression (same sample IDs; any column order).
    covariates_df
        Covariates x samples (MatrixEQTL orientation), or None. For ``linear_cross`` the last row
        is the interaction covariate.
    snp_pos_df
        Indexed by SNP ID, columns ``chrom`` (or ``chr``) and ``pos``.
    gene_pos_df
        Indexed by gene ID, columns ``chrom`` (or ``chr``), ``start``/``end`` (or ``left``/``right``).
    model
        ``"linear"`` (additive dosage), ``"anova"`` (3-level factor, F-test) or ``"linear_cross"``
        (interaction of genotype and the last covariate).
    cis_dist
        cis window in bp (MatrixEQTL ``cisDist``), inclusive on both sides.
    pv_cis, pv_trans
        Output p-value thresholds (``pvOutputThreshold.cis``, ``pvOutputThreshold``);
        ``pv_trans <= pv_cis`` is required when both are > 0. ``pv_cis = 0`` or no positions:
        one pool ``all`` with threshold ``pv_trans``.
    gene_types
        Gene -> biotype (Series, mapping or a DataFrame with ``gene_type``): adds ``gene_type`` and
        ``fdr_by_type`` columns.
    collinear
        ``"error"`` (MatrixEQTL: stop on collinear covariates) or ``"drop"`` (drop redundant ones).
    covariate_missing
        ``"error"`` (default: NaN in covariates is an error) or ``"mean"`` (MatrixEQTL's row-mean
        imputation).
    precision
        ``"float64"`` (default) or ``"float32"`` (float32 screen, exact float64 output rows).
    backend
        ``"auto"`` (torch on a CUDA GPU when present, else numpy), ``"numpy"``, ``"torch"``,
        ``"torch-cpu"``.
    block_size
        SNPs per block (default: from ``max_block_bytes``).
    max_block_bytes
        Memory budget of one block's products.
    pvalue_hist
        MatrixEQTL's ``pvalue.hist``: None, True (100 bins), a bin count, edges or ``"qqplot"``.
    min_pvalues
        Also return the smallest p-value per SNP and per gene in each pool (``min.pv.by.genesnp``).
    qvalue
        Add Storey q-values (pi0 estimated from every test of the pool).
    show_progress
        Progress bar over blocks (default: automatic).

    Returns
    -------
    AssociationResult
        Kept pairs per pool, test counts, histograms and parameters.

    Examples
    --------
    >>> res = map_eqtls(geno_df, expr_df, cov_df, snp_pos_df=snp_pos, gene_pos_df=gene_pos,
    ...                 pv_cis=1e-2, pv_trans=1e-5)  # doctest: +SKIP
    >>> res.cis.head()  # doctest: +SKIP
    """
    mdl = get_model(model)
    split = _check_options(
        mdl,
        precision=precision,
        covariate_missing=covariate_missing,
        pv_cis=pv_cis,
        pv_trans=pv_trans,
        snp_pos_df=snp_pos_df,
        gene_pos_df=gene_pos_df,
    )
    data = _align(genotype_df, expression_df, covariates_df)
    design = _design(data, mdl, collinear=collinear, covariate_missing=covariate_missing)
    n_geno_na = _check_genotypes(data, mdl)
    expression = _residual_expression(data, design)
    types_s = _gene_types(gene_types, data.genes)
    cis_index = _cis_index(data, snp_pos_df, gene_pos_df, cis_dist=cis_dist) if split else None
    edges = _histogram_edges(pvalue_hist, mdl, df=design.df, qvalue=qvalue)
    crit, pools = _pools(mdl, data, df=design.df, pv_cis=pv_cis, pv_trans=pv_trans, split=split, edges=edges)
    scan = _scan(
        data,
        design,
        expression,
        mdl,
        cis_index=cis_index,
        pools=pools,
        precision=precision,
        backend=backend,
        block_size=block_size,
        max_block_bytes=max_block_bytes,
        min_pvalues=min_pvalues,
        show_progress=show_progress,
    )
    out = scan.out
    n_tests = _count_tests(out, types_s, n_snps=len(data.snps), split=split)
    pairs, lambda_counts, hist_df = _assemble_pools(
        out,
        mdl,
        data=data,
        df=design.df,
        crit=crit,
        e_norm=expression.norm,
        types_s=types_s,
        n_tests=n_tests,
        edges=edges,
        split=split,
        qvalue=qvalue,
    )
    min_df = (
        _min_pvalue_table(out.pools, mdl, df=design.df, snps=data.snps, genes=data.genes)
        if min_pvalues
        else None
    )
    params = _run_params(
        mdl,
        data=data,
        design=design,
        expression=expression,
        scan=scan,
        cis_index=cis_index,
        crit=crit,
        types_s=types_s,
        n_geno_na=n_geno_na,
        options={
            "cis_dist": cis_dist,
            "pv_cis": pv_cis,
            "pv_trans": pv_trans,
            "split": split,
            "precision": precision,
            "collinear": collinear,
            "covariate_missing": covariate_missing,
            "pvalue_hist": pvalue_hist,
            "qvalue": qvalue,
        },
    )
    return AssociationResult(
        pairs=pairs,
        n_tests=n_tests,
        hist=hist_df,
        min_pvalues=min_df,
        params=params,
        lambda_counts=lambda_counts,
    )


# --- the steps of map_eqtls, in order ----------------------------------------------------------


def _check_options(mdl, *, precision, covariate_missing, pv_cis, pv_trans, snp_pos_df, gene_pos_df) -> bool:
    """Reject invalid options; return whether pairs are split into cis and trans pools."""
    if precision not in ("float64", "float32"):
        raise InputError(f"precision must be 'float64' or 'float32', got {precision!r}")
    if covariate_missing not in ("error", "mean"):
        raise InputError(f"covariate_missing must be 'error' or 'mean', got {covariate_missing!r}")
    for name, val in (("pv_cis", pv_cis), ("pv_trans", pv_trans)):
        if not 0 <= val <= 1:
            raise InputError(f"{name} must lie in [0, 1], got {val}")
    split = snp_pos_df is not None and gene_pos_df is not None and pv_cis > 0
    if split and pv_trans > 0 and pv_trans > pv_cis:
        raise InputError(f"pv_trans ({pv_trans}) must not exceed pv_cis ({pv_cis}) (MatrixEQTL's rule)")
    if (snp_pos_df is None) != (gene_pos_df is None):
        raise InputError("give both snp_pos_df and gene_pos_df for a cis/trans split, or neither")
    return split


@dataclass(frozen=True)
class _Aligned:
    """The inputs on the shared samples, in the canonical sample order."""

    snps: pd.Index
    genes: pd.Index
    geno: np.ndarray  # raw genotype values (a view when possible), columns not yet reordered
    sample_idx: np.ndarray | None  # column order putting ``geno`` in sample order (None: already)
    expr: np.ndarray  # genes x samples, NaN not yet imputed
    cov_df: pd.DataFrame | None

    @property
    def n_samples(self) -> int:
        return self.expr.shape[1]


def _align(genotype_df, expression_df, covariates_df) -> _Aligned:
    samples = check_samples(genotype_df, expression_df, covariates_df)
    expr_df = reorder(expression_df, samples)
    cov_df = reorder(covariates_df, samples)
    snps = pd.Index(genotype_df.index.astype(str))
    genes = pd.Index(expr_df.index.astype(str))
    geno, sample_idx = genotype_view(genotype_df, samples)
    expr = numeric_matrix(expr_df, "expression")
    return _Aligned(snps, genes, geno, sample_idx, expr, cov_df)


@dataclass(frozen=True)
class _Design:
    """Covariate basis, interaction covariate (``linear_cross``) and residual degrees of freedom."""

    basis: CovariateBasis
    cross: np.ndarray | None
    df: int


def _design(data: _Aligned, mdl, *, collinear: str, covariate_missing: str) -> _Design:
    cov_df = data.cov_df
    cov = None
    cov_names: list[str] = []
    if cov_df is not None and cov_df.shape[0]:
        cov = numeric_matrix(cov_df, "covariate")
        cov_names = [str(c) for c in cov_df.index]
        if np.isnan(cov).any():
            bad = cov_df.index[np.isnan(cov).any(axis=1)]
            if covariate_missing == "error":
                raise InputError(
                    "missing values in covariates (pass covariate_missing='mean' for MatrixEQTL's "
                    "row-mean imputation)",
                    ids=bad,
                )
            logger.warning("imputing missing covariate values by the row mean in %s", format_ids(bad))
    cross = None
    if mdl.name == "linear_cross":
        if cov is None:
            raise InputError("model 'linear_cross' needs at least one covariate (the last one interacts)")
        cross = cov[-1].copy()
        if np.isnan(cross).any():
            raise InputError("the interaction covariate (last row) has missing values", ids=[cov_names[-1]])
    if cov is not None:
        cov = impute_row_mean(cov)
    n = data.n_samples
    basis = covariate_basis(cov, n, names=cov_names, collinear=collinear)
    df = mdl.df(n, basis.n_covariates)
    if df <= 0:
        raise InputError(
            f"no residual degrees of freedom: {n} samples, {basis.n_covariates} covariates, "
            f"model {mdl.name} (df = {df})"
        )
    return _Design(basis, cross, df)


def _check_genotypes(data: _Aligned, mdl) -> int:
    """Check genotype values and log how missing ones are filled; return their number."""
    n_geno_na, n_geno_na_rows = _scan_genotypes(data.geno, data.snps, anova=mdl.name == "anova")
    if n_geno_na:
        logger.info(
            "%d missing genotype value(s) in %d SNP(s): %s",
            n_geno_na,
            n_geno_na_rows,
            "imputed by the SNP's mean" if mdl.name != "anova" else "put in the most frequent genotype group",
        )
    return n_geno_na


@dataclass(frozen=True)
class _Expression:
    """Unit residual expression ``E~`` and its norms, with what was imputed or zeroed."""

    unit: np.ndarray
    norm: np.ndarray
    n_missing: int
    n_constant: int


def _residual_expression(data: _Aligned, design: _Design) -> _Expression:
    n_expr_na = int(np.isnan(data.expr).sum())
    if n_expr_na:
        logger.info("%d missing expression value(s) imputed by the gene's mean", n_expr_na)
    expr = impute_row_mean(data.expr)
    e_unit, e_norm = residualize_rows(expr, design.basis.q)
    n_dead_genes = int((e_norm == 0).sum())
    if n_dead_genes:
        logger.warning(
            "%d gene(s) constant after removing covariates: tested with t = 0, p = 1: %s",
            n_dead_genes,
            format_ids(data.genes[e_norm == 0]),
        )
    return _Expression(e_unit, e_norm, n_expr_na, n_dead_genes)


def _cis_index(data: _Aligned, snp_pos_df: pd.DataFrame, gene_pos_df: pd.DataFrame, *, cis_dist: float):
    """Return the cis pairs by MatrixEQTL's ``cisDist`` rule (:func:`~.cistrans.build_cis_index`)."""
    return build_cis_index(
        data.snps,
        data.genes,
        snp_pos_df=snp_pos_df.rename(index=str),
        gene_pos_df=gene_pos_df.rename(index=str),
        cis_dist=cis_dist,
    )


@dataclass(frozen=True)
class _Edges:
    """Histogram edges: ``p`` reported, ``count`` counted during the scan, ``score`` the same in scores."""

    p: np.ndarray | None
    count: np.ndarray | None
    score: np.ndarray | None


def _lambda_edges() -> np.ndarray:
    return np.concatenate([[0.0], DEFAULT_LAMBDAS, [1.0]])


def _histogram_edges(pvalue_hist, mdl, *, df: int, qvalue: bool) -> _Edges:
    p_edges = histogram_edges(pvalue_hist)
    count_edges = p_edges
    if qvalue:
        lam_edges = _lambda_edges()
        count_edges = lam_edges if p_edges is None else np.union1d(p_edges, lam_edges)
    s_edges = None if count_edges is None else score_edges(count_edges, mdl, df=df)
    return _Edges(p_edges, count_edges, s_edges)


def _pools(
    mdl, data: _Aligned, *, df: int, pv_cis: float, pv_trans: float, split: bool, edges: _Edges
) -> tuple[dict[str, float], dict[str, PoolAccumulator | None]]:
    """Return the critical statistic per pool and the empty pools (``cis`` is None without a split)."""
    crit = {"cis": mdl.critical_stat(pv_cis, df=df), "trans": mdl.critical_stat(pv_trans, df=df)}
    crit["all"] = crit["trans"]

    def score_threshold(c: float) -> float:
        s = float(mdl.score_from_stat(np.array([c]), df=df)[0])
        return s * (1 - 1e-9) if s > 0 else s

    n_snps, n_genes = len(data.snps), len(data.genes)
    trans_name = "trans" if split else "all"
    trans_pool = PoolAccumulator(trans_name, score_threshold(crit[trans_name]), edges.score, n_snps, n_genes)
    if pv_trans == 0:
        trans_pool.threshold = np.inf
    cis_pool = (
        PoolAccumulator("cis", score_threshold(crit["cis"]), edges.score, n_snps, n_genes) if split else None
    )
    return crit, {"cis": cis_pool, "trans": trans_pool}


@dataclass(frozen=True)
class _Scan:
    """The streamed tests and how they were run."""

    out: KernelOutput
    backend: str
    device: str
    block_size: int


def _scan(
    data: _Aligned,
    design: _Design,
    expression: _Expression,
    mdl,
    *,
    cis_index,
    pools: dict[str, PoolAccumulator | None],
    precision: str,
    backend: str,
    block_size: int | None,
    max_block_bytes: float,
    min_pvalues: bool,
    show_progress: bool | None,
) -> _Scan:
    """Stream SNP blocks through every test; warn about the SNPs tested with t = 0."""
    snps, genes = data.snps, data.genes
    backend_name, device = _auto_backend(backend)
    bytes_per_row = len(genes) * ((8 if precision == "float64" else 4) * (mdl.n_mats + 1) + 8)
    if block_size is None:
        block_size = int(max(16, min(len(snps), max_block_bytes // max(bytes_per_row, 1))))
    logger.debug(
        "map_eqtls: %d SNPs x %d genes x %d samples, k=%d, df=%d, block %d, %s %s on %s",
        len(snps),
        len(genes),
        data.n_samples,
        design.basis.n_covariates,
        design.df,
        block_size,
        precision,
        backend_name,
        device,
    )
    out = stream_blocks(
        data.geno,
        expression.unit,
        mdl,
        sample_index=data.sample_idx,
        q=design.basis.q,
        df=design.df,
        cis_index=cis_index,
        cis_pool=pools["cis"],
        trans_pool=pools["trans"],
        cross=design.cross,
        block_size=block_size,
        precision=precision,
        backend=backend_name,
        device=device,
        min_pvalues=min_pvalues,
        show_progress=show_progress,
    )
    if out.beta_norm is not None:
        n_dead = int((out.beta_norm == 0).sum())
        if n_dead:
            logger.warning(
                "%d SNP(s) monomorphic or collinear with covariates: tested with t = 0, p = 1: %s",
                n_dead,
                format_ids(snps[out.beta_norm == 0]),
            )
    return _Scan(out, backend_name, device, block_size)


def _count_tests(out: KernelOutput, types_s: pd.Series | None, *, n_snps: int, split: bool) -> dict[str, int]:
    """Count the tests per pool and, with gene types, per pool x type stratum (``cis:lincRNA``...)."""
    n_tests: dict[str, int] = {}
    for name, pool in out.pools.items():
        n_tests[name] = int(pool.n_tests)
    if types_s is not None:
        group_codes = np.array([TYPE_GROUPS.index(gene_type_group(t)) for t in types_s], dtype=np.int64)
        per_type_genes = np.bincount(group_codes, minlength=3)
        cis_per_type = np.bincount(group_codes, weights=out.cis_by_gene, minlength=3).astype(np.int64)
        for i, grp in enumerate(TYPE_GROUPS):
            if split:
                n_tests[f"cis:{grp}"] = int(cis_per_type[i])
                n_tests[f"trans:{grp}"] = int(n_snps * per_type_genes[i] - cis_per_type[i])
            else:
                n_tests[f"all:{grp}"] = int(n_snps * per_type_genes[i])
    return n_tests


def _assemble_pools(
    out: KernelOutput,
    mdl,
    *,
    data: _Aligned,
    df: int,
    crit: dict[str, float],
    e_norm: np.ndarray,
    types_s: pd.Series | None,
    n_tests: dict[str, int],
    edges: _Edges,
    split: bool,
    qvalue: bool,
) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray] | None, pd.DataFrame | None]:
    """Return the kept pairs with FDR per pool, the q-values' lambda counts and the histogram table."""
    pairs = {}
    lambda_counts = {} if qvalue else None
    hist_counts = {}
    for name, pool in out.pools.items():
        table = _pool_table(
            pool,
            mdl,
            df=df,
            crit=crit[name],
            snps=data.snps,
            genes=data.genes,
            e_norm=e_norm,
            beta_norm=out.beta_norm,
            types_s=types_s,
        )
        if edges.score is not None:
            fine = counts_to_pbins(pool.hist_counts, lowest_edge=float(edges.count[0]))
            if edges.p is not None:
                hist_counts[name] = aggregate_bins(fine, edges.count, edges.p)
            if qvalue:
                lam = aggregate_bins(fine, edges.count, _lambda_edges())
                # p >= lambda_i  ~  bins above lambda_i (bins are (lo, hi])
                lambda_counts[name] = np.cumsum(lam[::-1])[::-1][1:]
        pairs[name] = recompute_fdr(
            table, n_tests, pool=name, lambda_counts=None if lambda_counts is None else lambda_counts[name]
        )
    if split and "all" not in hist_counts and hist_counts:
        hist_counts = {"all": hist_counts["cis"] + hist_counts["trans"], **hist_counts}
    hist_df = histogram_table(hist_counts, edges.p) if edges.p is not None else None
    return pairs, lambda_counts, hist_df


def _run_params(
    mdl,
    *,
    data: _Aligned,
    design: _Design,
    expression: _Expression,
    scan: _Scan,
    cis_index,
    crit: dict[str, float],
    types_s: pd.Series | None,
    n_geno_na: int,
    options: dict,
) -> dict:
    """Return the run's parameters and counts (``AssociationResult.params``, JSON-ready)."""
    beta_norm = scan.out.beta_norm
    pvalue_hist = options["pvalue_hist"]
    return {
        "model": mdl.name,
        "n_snps": len(data.snps),
        "n_genes": len(data.genes),
        "n_samples": data.n_samples,
        "n_covariates": design.basis.n_covariates,
        "covariates": list(design.basis.kept),
        "dropped_covariates": list(design.basis.dropped),
        "df": design.df,
        "cis_dist": float(options["cis_dist"]),
        "pv_cis": float(options["pv_cis"]),
        "pv_trans": float(options["pv_trans"]),
        "critical_stat": {k: float(v) for k, v in crit.items()},
        "split": bool(options["split"]),
        "gene_types": types_s is not None,
        "precision": options["precision"],
        "backend": scan.backend,
        "device": scan.device,
        "block_size": int(scan.block_size),
        "collinear": options["collinear"],
        "covariate_missing": options["covariate_missing"],
        "n_missing_genotypes": n_geno_na,
        "n_missing_expression": expression.n_missing,
        "n_constant_genes": expression.n_constant,
        "n_degenerate_snps": None if beta_norm is None else int((beta_norm == 0).sum()),
        "n_snps_without_position": None if cis_index is None else cis_index.n_snps_unplaced,
        "n_genes_without_position": None if cis_index is None else cis_index.n_genes_unplaced,
        "pvalue_hist": None
        if pvalue_hist is None
        else (pvalue_hist if isinstance(pvalue_hist, (str, bool, int)) else list(map(float, pvalue_hist))),
        "qvalue": bool(options["qvalue"]),
    }


def _scan_genotypes(geno: np.ndarray, snps: pd.Index, *, anova: bool, chunk: int = 8192) -> tuple[int, int]:
    """Check genotypes chunk by chunk (no full copy): infinite values, anova categories; count NaNs."""
    n_na = n_na_rows = 0
    values: set = set()
    for start in range(0, geno.shape[0], chunk):
        block = np.asarray(geno[start : start + chunk], dtype=np.float64)
        bad = np.isinf(block)
        if bad.any():
            raise InputError(
                "infinite values in genotype rows", ids=snps[start + np.flatnonzero(bad.any(axis=1))]
            )
        nan = np.isnan(block)
        n_na += int(nan.sum())
        n_na_rows += int(nan.any(axis=1).sum())
        if anova:
            values.update(np.unique(block[~nan]).tolist())
            if len(values) > 3:
                cats = sorted(values)
                extra = cats[3:]
                rows = snps[start + np.flatnonzero(np.isin(block, extra).any(axis=1))]
                raise InputError(
                    f"model 'anova' needs at most 3 distinct genotype values, found {len(cats)}+ "
                    f"({', '.join(f'{v:g}' for v in cats[:6])}); SNPs with values beyond "
                    f"{', '.join(f'{v:g}' for v in cats[:3])}",
                    ids=rows,
                )
    return n_na, n_na_rows


def _pool_table(
    pool: PoolAccumulator, mdl, *, df: int, crit: float, snps, genes, e_norm, beta_norm, types_s
) -> pd.DataFrame:
    if pool.snp:
        s_idx = np.concatenate(pool.snp)
        g_idx = np.concatenate(pool.gene)
        rs = tuple(np.concatenate([r[j] for r in pool.r]) for j in range(mdl.n_mats))
    else:
        s_idx = g_idx = np.empty(0, np.int64)
        rs = tuple(np.empty(0) for _ in range(mdl.n_mats))
    stat = mdl.stat_from_r(rs, df=df)
    keep = np.abs(stat) >= crit
    s_idx, g_idx, stat = s_idx[keep], g_idx[keep], stat[keep]
    rs = tuple(r[keep] for r in rs)
    p = p_from_stat(mdl.name, stat, df=df)
    if mdl.name == "anova":
        beta = np.full(stat.size, np.nan)
    else:
        r = rs[-1]
        denom = beta_norm[s_idx]
        beta = np.divide(r * e_norm[g_idx], denom, out=np.zeros_like(r), where=denom > 0)
    table = pd.DataFrame(
        {
            "snp": snps[s_idx].to_numpy(dtype=object),
            "gene": genes[g_idx].to_numpy(dtype=object),
            "beta": beta,
            mdl.stat_name: stat,
            "p_value": p,
            "fdr": np.nan,
        }
    )
    if types_s is not None:
        table["gene_type"] = types_s.to_numpy(dtype=object)[g_idx]
        table["fdr_by_type"] = np.nan
    return table


def _min_pvalue_table(pools: dict, mdl, *, df: int, snps, genes) -> pd.DataFrame:
    frames = []
    for name, pool in pools.items():
        for kind, best, ids in (("snp", pool.best_snp, snps), ("gene", pool.best_gene, genes)):
            if mdl.name == "linear":
                stat = mdl.stat_from_r((best,), df=df)
            elif mdl.name == "anova":
                stat = mdl.stat_from_r((np.sqrt(best), np.zeros_like(best)), df=df)
            else:
                stat = np.sqrt(best)
            frames.append(
                pd.DataFrame(
                    {
                        "pool": name,
                        "kind": kind,
                        "id": ids.to_numpy(dtype=object),
                        "min_pvalue": p_from_stat(mdl.name, stat, df=df),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
