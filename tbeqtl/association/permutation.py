"""Permutation checks: the paper's joint expression+covariate permutation QQ, and FastQTL cis permutations.

Both are seeded and independent of the input order: permutations are drawn over the samples
sorted by ID (one :class:`numpy.random.Generator` from the seed), then applied by ID.

* :func:`permutation_qq` (Gewirtz et al. 2022, Fig 4): rerun the same tests with the expression
  and the covariates permuted *jointly* across samples (genotypes fixed), and return the ordered
  true and permuted -log10 p-values of each pool, with the number of true p-values smaller than
  the smallest permuted one; :func:`qq_table` builds that table (schema ``permutation_qq``) from
  p-values in hand, for every caller (the pipeline's factor-set mapping included).
* :func:`map_cis_permutations` (Ongen et al. 2016 FastQTL; tensorQTL ``map_cis``): per gene, the
  best cis SNP's nominal association, ``n_permutations`` permutations of the raw expression
  (each residualised on the unpermuted covariates), the maximum permuted ``r^2`` per
  permutation, and the beta approximation of the minimum-p distribution: an effective ``true_df``
  that makes the moment-matched Beta shape ``a = 1``, then a Beta maximum-likelihood fit; the
  eGene p-value is ``p_beta = Beta_cdf(p(r2_top, true_df); a, b)`` and the eGene q-value is
  Storey's q across genes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ..errors import InputError, format_ids
from ..logs import progress
from ..rng import as_generator
from .cistrans import build_cis_index
from .fdr import storey_qvalue
from .inputs import align_samples, numeric_matrix
from .mapping import map_eqtls
from .models import get_model
from .residualize import covariate_basis, impute_row_mean, residualize_rows

__all__ = [
    "QQResult",
    "beta_approximated_pvalue",
    "beta_mle",
    "canonical_permutations",
    "fit_beta_approximation",
    "map_cis_permutations",
    "permutation_qq",
    "qq_table",
]

logger = logging.getLogger(__name__)


def canonical_permutations(samples, n_permutations: int, *, seed) -> np.ndarray:
    """Permutations of ``samples`` that do not depend on their order.

    Parameters
    ----------
    samples
        Sample IDs in the order of the data columns.
    n_permutations
        How many.
    seed
        Seed or generator.

    Returns
    -------
    numpy.ndarray
        ``n_permutations x n`` column indices: row ``j`` gives, for each data column, the column
        whose values it receives. The draw is made over the samples sorted by ID.
    """
    ids = pd.Index(np.asarray(samples).astype(str))
    if ids.has_duplicates:
        raise InputError("duplicate sample IDs", ids=ids[ids.duplicated()].unique())
    rng = as_generator(seed)
    sorted_pos = np.argsort(ids.to_numpy(), kind="stable")  # column index of the i-th sorted sample
    out = np.empty((n_permutations, ids.size), dtype=np.int64)
    for j in range(n_permutations):
        perm = rng.permutation(ids.size)  # sorted sample i receives sorted sample perm[i]
        out[j, sorted_pos] = sorted_pos[perm]
    return out


@dataclass(frozen=True)
class QQResult:
    """Ordered true vs permuted -log10 p-values.

    Parameters
    ----------
    table
        Schema ``permutation_qq``: ``pool, rank, observed_log10p, permuted_log10p, beyond_permuted``.
    n_beyond
        Pool -> number of true p-values smaller than the smallest permuted p-value.
    n_tests
        Pool -> number of tests.
    """

    table: pd.DataFrame
    n_beyond: dict
    n_tests: dict

    def write(self, path) -> None:
        """Write :attr:`table` (schema ``permutation_qq``) atomically as TSV, e.g. ``<eqtl dir>/qq.tsv``.

        Parameters
        ----------
        path
            Destination file.
        """
        from ..atomic import write_table
        from ..schema import validate_table

        write_table(validate_table(self.table, "permutation_qq"), path)


#: p-values are floored at the smallest normal double before -log10, as the engine floors them.
_P_FLOOR = np.finfo(np.float64).tiny


def _qq_pool(observed: np.ndarray, permuted: np.ndarray, *, max_points: int | None,
             keep_top: int) -> pd.DataFrame:
    """Rank-paired -log10 p of one pool (see :func:`qq_table`)."""
    observed = observed[~np.isnan(observed)]
    permuted = permuted[~np.isnan(permuted)]
    obs = -np.log10(np.clip(np.sort(observed), _P_FLOOR, 1.0))
    perm = -np.log10(np.clip(np.sort(permuted), _P_FLOOR, 1.0))
    n = min(obs.size, perm.size)
    beyond = obs > (perm[0] if perm.size else np.inf)  # below the smallest permuted p-value
    if n and obs.size != perm.size:
        # quantile-match when the permuted pool has another size (several permutations)
        q = (np.arange(1, obs.size + 1) - 0.5) / obs.size
        perm = np.quantile(perm, 1.0 - q, method="linear")
        n = obs.size
    idx = np.arange(n)
    if max_points is not None and n > max_points:
        rest = np.unique(np.linspace(keep_top, n - 1, max_points - keep_top).astype(int))
        idx = np.unique(np.concatenate([np.arange(keep_top), rest]))
    return pd.DataFrame({"rank": (idx + 1).astype(np.int64), "observed_log10p": obs[idx],
                         "permuted_log10p": perm[idx], "beyond_permuted": beyond[idx]})


def qq_table(observed_by_pool: dict, permuted_by_pool: dict, *, max_points: int | None = None,
             keep_top: int = 200) -> pd.DataFrame:
    """Pair the ordered true and permuted -log10 p-values of each pool by rank (schema ``permutation_qq``).

    Parameters
    ----------
    observed_by_pool
        Pool name (``"cis"``, ``"trans"``, ``"all"``) -> true p-values.
    permuted_by_pool
        Pool name -> p-values of the same tests on permuted data. A pool missing here has no row.
        When the sizes differ (several permutations), the permuted -log10 p at rank ``i`` of ``n``
        is the ``1 - (i - 0.5) / n`` quantile of the permuted pool.
    max_points
        Keep at most this many points per pool (None: all): the ``keep_top`` most extreme ranks
        and evenly spaced ranks after them.
    keep_top
        Ranks always kept when thinning.

    Returns
    -------
    pandas.DataFrame
        ``pool, rank, observed_log10p, permuted_log10p, beyond_permuted``; p-values are floored at
        the smallest normal double, NaN ones dropped; ``beyond_permuted`` marks true p-values below
        the smallest permuted one.
    """
    frames = [
        _qq_pool(np.asarray(observed_by_pool[pool], dtype=float), np.asarray(permuted, dtype=float),
                 max_points=max_points, keep_top=keep_top).assign(pool=pool)
        for pool, permuted in permuted_by_pool.items() if pool in observed_by_pool
    ]
    if not frames:
        return pd.DataFrame({"pool": pd.Series(dtype=object), "rank": pd.Series(dtype=np.int64),
                             "observed_log10p": pd.Series(dtype=float),
                             "permuted_log10p": pd.Series(dtype=float),
                             "beyond_permuted": pd.Series(dtype=bool)})
    table = pd.concat(frames, ignore_index=True)
    return table[["pool", "rank", "observed_log10p", "permuted_log10p", "beyond_permuted"]]


def permutation_qq(
    genotype_df: pd.DataFrame,
    expression_df: pd.DataFrame,
    covariates_df: pd.DataFrame | None = None,
    *,
    seed=0,
    max_tests: int = 20_000_000,
    **map_kwargs,
) -> QQResult:
    """Run the paper's permutation check: true vs jointly permuted expression+covariates, ordered -log10 p.

    Parameters
    ----------
    genotype_df, expression_df, covariates_df
        As for :func:`~tbeqtl.association.map_eqtls`.
    seed
        Seed of the permutation (drawn over the samples sorted by ID).
    max_tests
        Refuse inputs with more tests than this (every p-value is kept in memory).
    **map_kwargs
        Passed to :func:`~tbeqtl.association.map_eqtls` (positions, ``model``, ``cis_dist``, ...);
        the output thresholds are set to 1.

    Returns
    -------
    QQResult
        The QQ table and the count of true p-values beyond the most extreme permuted one.
    """
    n_tests = genotype_df.shape[0] * expression_df.shape[0]
    if n_tests > max_tests:
        raise InputError(
            f"{n_tests} tests exceed max_tests={max_tests} for the permutation QQ (every p-value is kept)"
        )
    for key in ("pv_cis", "pv_trans", "pvalue_hist", "min_pvalues", "qvalue"):
        map_kwargs.pop(key, None)
    _, expr_df, cov_df = align_samples(genotype_df, expression_df, covariates_df)
    perm = canonical_permutations(expr_df.columns, 1, seed=seed)[0]
    expr_perm = pd.DataFrame(expr_df.to_numpy()[:, perm], index=expr_df.index, columns=expr_df.columns)
    cov_perm = (
        None
        if cov_df is None
        else pd.DataFrame(cov_df.to_numpy()[:, perm], index=cov_df.index, columns=cov_df.columns)
    )
    pv_cis = 1.0 if (map_kwargs.get("snp_pos_df") is not None) else 0.0
    true = map_eqtls(genotype_df, expr_df, cov_df, pv_cis=pv_cis, pv_trans=1.0, **map_kwargs)
    null = map_eqtls(genotype_df, expr_perm, cov_perm, pv_cis=pv_cis, pv_trans=1.0, **map_kwargs)
    table = qq_table({pool: df["p_value"] for pool, df in true.pairs.items()},
                     {pool: df["p_value"] for pool, df in null.pairs.items()})
    beyond = {pool: int(table.loc[table["pool"] == pool, "beyond_permuted"].sum()) for pool in true.pairs}
    return QQResult(table=table, n_beyond=beyond, n_tests=dict(true.n_tests))


# --------------------------------------------------------------------------------------------
# FastQTL / tensorQTL cis permutations with the beta approximation
# --------------------------------------------------------------------------------------------
def _p_from_r2(r2: np.ndarray, df: float) -> np.ndarray:
    """Two-sided t-test p-value of a correlation with ``df`` degrees of freedom: I_{1-r^2}(df/2, 1/2)."""
    return special.betainc(df / 2.0, 0.5, np.clip(1.0 - r2, 0.0, 1.0))


def _beta_moments(p: np.ndarray) -> tuple[float, float]:
    mean = p.mean()
    var = p.var()
    common = mean * (1 - mean) / var - 1
    return mean * common, (1 - mean) * common


def beta_mle(p: np.ndarray, *, max_iter: int = 100, tol: float = 1e-12) -> tuple[float, float]:
    """Maximum-likelihood Beta(a, b) shapes by Newton's method on the (concave) log-likelihood.

    Starts from the moment estimates; the score is ``S1 - n (psi(a) - psi(a+b))``,
    ``S2 - n (psi(b) - psi(a+b))`` with ``S1 = sum log p``, ``S2 = sum log(1 - p)``; steps are halved
    to keep both shapes positive and the likelihood increasing.

    Parameters
    ----------
    p
        Values in (0, 1).
    max_iter
        Newton iterations.
    tol
        Convergence tolerance on the relative step.

    Returns
    -------
    (a, b)
        The shapes.
    """
    p = np.asarray(p, dtype=float)
    n = p.size
    s1, s2 = np.log(p).sum(), np.log1p(-p).sum()
    a0, b0 = _beta_moments(p)
    x = np.array([max(a0, 1e-3), max(b0, 1e-3)])

    def loglik(v):
        return (v[0] - 1) * s1 + (v[1] - 1) * s2 - n * special.betaln(v[0], v[1])

    current = loglik(x)
    for _ in range(max_iter):
        a, b = x
        dig_ab = special.digamma(a + b)
        grad = np.array([s1 - n * (special.digamma(a) - dig_ab), s2 - n * (special.digamma(b) - dig_ab)])
        tri_ab = special.polygamma(1, a + b)
        tri_a, tri_b = special.polygamma(1, a), special.polygamma(1, b)
        hess = -n * np.array([[tri_a - tri_ab, -tri_ab], [-tri_ab, tri_b - tri_ab]])
        step = np.linalg.solve(hess, -grad)
        t = 1.0
        while t > 1e-10:
            cand = x + t * step
            if np.all(cand > 0):
                value = loglik(cand)
                if value >= current - 1e-12 * abs(current):
                    break
            t /= 2
        else:
            break
        x, current = cand, value
        if np.max(np.abs(t * step) / x) < tol:
            break
    return float(x[0]), float(x[1])


def fit_beta_approximation(r2_perm, df: int) -> tuple[float, float, float]:
    """Fit FastQTL's beta approximation to the permutation maxima of ``r^2``.

    Parameters
    ----------
    r2_perm
        Maximum ``r^2`` over the gene's cis SNPs, one per permutation.
    df
        Nominal degrees of freedom ``n - 2 - k``.

    Returns
    -------
    (true_df, a, b)
        The effective degrees of freedom (moment-matched Beta shape ``a = 1`` for the permutation
        minimum p-values) and the maximum-likelihood Beta shapes at ``true_df`` (:func:`beta_mle`).
    """
    r2 = np.asarray(r2_perm, dtype=float)
    if r2.size < 10 or np.ptp(r2) <= 0:
        raise InputError("the beta approximation needs at least 10 distinct permutation values")

    def shape1_minus_one(log_df: float) -> float:
        p = _p_from_r2(r2, float(np.exp(log_df)))
        if p.var() <= 0:
            return np.inf
        return _beta_moments(p)[0] - 1.0

    from scipy import optimize  # imported here: scipy.optimize/stats cost 0.4 s at import

    # bracket log(true_df) around log(df), widening until the sign changes
    center = np.log(df)
    lo, hi = center - 1.0, center + 1.0
    f_lo, f_hi = shape1_minus_one(lo), shape1_minus_one(hi)
    for _ in range(8):
        if np.isfinite(f_lo) and np.isfinite(f_hi) and f_lo * f_hi < 0:
            break
        lo, hi = lo - 1.0, hi + 1.0
        f_lo, f_hi = shape1_minus_one(lo), shape1_minus_one(hi)
    if np.isfinite(f_lo) and np.isfinite(f_hi) and f_lo * f_hi < 0:
        true_df = float(np.exp(optimize.brentq(shape1_minus_one, lo, hi, xtol=1e-9)))
    else:
        res = optimize.minimize_scalar(lambda v: abs(shape1_minus_one(v)), bounds=(lo, hi), method="bounded")
        true_df = float(np.exp(res.x))
    p = np.clip(_p_from_r2(r2, true_df), 1e-300, 1 - 1e-16)
    a, b = beta_mle(p)
    return true_df, float(a), float(b)


def beta_approximated_pvalue(r2_perm, r2_top: float, df: float) -> dict[str, float]:
    """FastQTL/tensorQTL's beta-approximated permutation p-value of a top association.

    Parameters
    ----------
    r2_perm
        Maximum ``r^2`` over the cis variants, one per permutation.
    r2_top
        ``r^2`` of the observed top variant.
    df
        Nominal residual degrees of freedom.

    Returns
    -------
    dict
        ``beta_shape1``, ``beta_shape2``, ``true_df`` (:func:`fit_beta_approximation`),
        ``pval_true_df = p(r2_top, true_df)`` and ``pval_beta = Beta_cdf(pval_true_df; a, b)``;
        all NaN when the fit is impossible (fewer than 10 distinct permutation maxima).
    """
    try:
        true_df, a, b = fit_beta_approximation(r2_perm, df)
    except InputError:
        nan = float("nan")
        return {"beta_shape1": nan, "beta_shape2": nan, "true_df": nan, "pval_true_df": nan, "pval_beta": nan}
    p_true_df = float(_p_from_r2(np.array([r2_top]), true_df)[0])
    return {
        "beta_shape1": a,
        "beta_shape2": b,
        "true_df": true_df,
        "pval_true_df": p_true_df,
        "pval_beta": float(special.betainc(a, b, p_true_df)),  # the beta CDF
    }


def map_cis_permutations(
    genotype_df: pd.DataFrame,
    expression_df: pd.DataFrame,
    covariates_df: pd.DataFrame | None = None,
    *,
    snp_pos_df: pd.DataFrame,
    gene_pos_df: pd.DataFrame,
    cis_dist: float = 1e6,
    n_permutations: int = 1000,
    seed=0,
    collinear: str = "error",
    pi0: float | None = None,
    show_progress: bool | None = None,
) -> pd.DataFrame:
    """FastQTL/tensorQTL-style cis permutations per gene with the beta approximation.

    One permutation set (drawn over the samples sorted by ID) serves every gene. The raw
    expression is permuted and each permuted vector is residualised on the unpermuted
    covariates, as FastQTL does. Genes with no cis SNP or constant after covariate removal are
    skipped (counted in the log). Missing genotypes/expression are mean-imputed.

    Parameters
    ----------
    genotype_df, expression_df, covariates_df
        As for :func:`~tbeqtl.association.map_eqtls` (linear model).
    snp_pos_df, gene_pos_df
        Positions (required).
    cis_dist
        cis window (bp).
    n_permutations
        Permutations per gene.
    seed
        Seed.
    collinear
        Covariate collinearity rule (see :func:`~tbeqtl.association.map_eqtls`).
    pi0
        Fixed pi0 for the eGene q-values (default: estimated; with fewer than 100 genes pi0 = 1,
        i.e. BH, since the smoother is unreliable there).
    show_progress
        Progress bar over genes.

    Returns
    -------
    pandas.DataFrame
        Schema ``cis_egenes``, one row per gene with at least one cis SNP, sorted by gene ID.
    """
    if n_permutations < 10:
        raise InputError("n_permutations must be at least 10 for the beta approximation")
    geno_df, expr_df, cov_df = align_samples(genotype_df, expression_df, covariates_df)
    snps = pd.Index(geno_df.index.astype(str))
    genes = pd.Index(expr_df.index.astype(str))
    geno = impute_row_mean(numeric_matrix(geno_df, "genotype"))
    expr = impute_row_mean(numeric_matrix(expr_df, "expression"))
    cov = None
    if cov_df is not None and cov_df.shape[0]:
        cov = numeric_matrix(cov_df, "covariate", allow_nan=False)
    n = expr.shape[1]
    basis = covariate_basis(cov, n, names=None if cov_df is None else list(cov_df.index), collinear=collinear)
    df = get_model("linear").df(n, basis.n_covariates)
    if df <= 2:
        raise InputError(f"too few residual degrees of freedom ({df}) for cis permutations")
    x_unit, x_norm = residualize_rows(geno.copy(), basis.q)
    cis_index = build_cis_index(
        snps,
        genes,
        snp_pos_df=snp_pos_df.rename(index=str),
        gene_pos_df=gene_pos_df.rename(index=str),
        cis_dist=cis_dist,
    )
    c_snp, c_gene = cis_index.pairs(0, len(snps))
    order = np.lexsort((snps.to_numpy()[c_snp], c_gene))
    c_snp, c_gene = c_snp[order], c_gene[order]
    bounds = np.searchsorted(c_gene, np.arange(len(genes) + 1))
    perms = canonical_permutations(expr_df.columns, n_permutations, seed=seed)
    q = basis.q
    rows, n_skip_nocis, n_skip_const = [], 0, 0
    for gi in progress(
        np.argsort(genes.to_numpy(), kind="stable"),
        desc="cis permutations",
        total=len(genes),
        enabled=show_progress,
    ):
        idx = c_snp[bounds[gi] : bounds[gi + 1]]
        idx = idx[x_norm[idx] > 0]
        if idx.size == 0:
            n_skip_nocis += 1
            continue
        y = expr[gi]
        y_unit, y_norm = residualize_rows(y[None, :].copy(), q)
        if y_norm[0] == 0:
            n_skip_const += 1
            continue
        xs = x_unit[idx]
        r = xs @ y_unit[0]
        best = int(np.argmax(np.abs(r)))  # SNPs sorted by ID: ties go to the first ID
        r_top = float(r[best])
        yp_unit, _ = residualize_rows(y[perms].copy(), q)
        r2_perm = ((xs @ yp_unit.T) ** 2).max(axis=0)
        r2_top = r_top * r_top
        with np.errstate(divide="ignore"):
            t_top = r_top * np.sqrt(df / (1 - r2_top)) if r2_top < 1 else np.sign(r_top) * np.inf
        p_nom = float(_p_from_r2(np.array([r2_top]), df)[0])
        p_perm = (np.sum(r2_perm >= r2_top) + 1) / (n_permutations + 1)
        fit = beta_approximated_pvalue(r2_perm, r2_top, df)
        true_df, a, b = fit["true_df"], fit["beta_shape1"], fit["beta_shape2"]
        p_true_df, p_beta = fit["pval_true_df"], fit["pval_beta"]
        rows.append(
            {
                "gene": genes[gi],
                "n_snps": int(idx.size),
                "snp": snps[idx[best]],
                "beta": r_top * y_norm[0] / x_norm[idx[best]],
                "t_stat": float(t_top),
                "p_nominal": p_nom,
                "beta_shape1": a,
                "beta_shape2": b,
                "true_df": true_df,
                "p_true_df": p_true_df,
                "p_perm": float(p_perm),
                "p_beta": p_beta,
            }
        )
    if n_skip_nocis:
        logger.info("%d gene(s) without a (non-constant) cis SNP skipped", n_skip_nocis)
    if n_skip_const:
        logger.warning("%d gene(s) constant after covariate removal skipped", n_skip_const)
    table = pd.DataFrame(
        rows,
        columns=[
            "gene",
            "n_snps",
            "snp",
            "beta",
            "t_stat",
            "p_nominal",
            "beta_shape1",
            "beta_shape2",
            "true_df",
            "p_true_df",
            "p_perm",
            "p_beta",
        ],
    )
    table["n_snps"] = table["n_snps"].astype(np.int64)
    table["q_value"] = np.nan
    ok = table["p_beta"].notna().to_numpy()
    if ok.sum():
        bad = table.loc[~ok, "gene"]
        if len(bad):
            logger.warning("beta approximation failed (constant permutation maxima) for %s", format_ids(bad))
        use_pi0 = pi0 if pi0 is not None else (None if ok.sum() >= 100 else 1.0)
        table.loc[ok, "q_value"] = storey_qvalue(table.loc[ok, "p_beta"].to_numpy(), pi0=use_pi0)
    return table.reset_index(drop=True)
