"""map_eqtls against statsmodels OLS (independent reference) on random data.

Missing genotypes are mean-imputed per SNP (MatrixEQTL's rule) before the reference fit; collinear
covariates are dropped with collinear="drop" and the reference uses the full (rank-deficient)
design through statsmodels' pinv, whose df_resid counts only independent columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.anova import anova_lm

from tbeqtl.association import map_eqtls


def _data(rng, *, n=60, n_snps=12, n_genes=7, n_cov=3, missing=0.05):
    samples = [f"S{i:03d}" for i in range(n)]
    geno = rng.binomial(2, rng.uniform(0.1, 0.5, (n_snps, 1)), (n_snps, n)).astype(float)
    geno[rng.uniform(size=geno.shape) < missing] = np.nan
    cov = rng.normal(size=(n_cov, n))
    expr = rng.normal(size=(n_genes, n)) + 0.3 * cov[0]
    expr[0] += 0.6 * np.nan_to_num(geno[0], nan=1.0)
    geno_df = pd.DataFrame(geno, index=[f"rs{i}" for i in range(n_snps)], columns=samples)
    expr_df = pd.DataFrame(expr, index=[f"G{i}" for i in range(n_genes)], columns=samples)
    cov_df = pd.DataFrame(cov, index=[f"c{i}" for i in range(n_cov)], columns=samples)
    return geno_df, expr_df, cov_df


def _imputed(row: pd.Series) -> np.ndarray:
    return row.fillna(row.mean()).to_numpy()


def _check_linear(res, geno_df, expr_df, cov_design):
    table = res.all.set_index(["snp", "gene"])
    assert len(table) == geno_df.shape[0] * expr_df.shape[0]
    for snp in geno_df.index:
        g = _imputed(geno_df.loc[snp])
        for gene in expr_df.index:
            fit = sm.OLS(expr_df.loc[gene].to_numpy(), np.column_stack([cov_design, g])).fit()
            row = table.loc[(snp, gene)]
            np.testing.assert_allclose(row["beta"], fit.params[-1], rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(row["t_stat"], fit.tvalues[-1], rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(row["p_value"], fit.pvalues[-1], rtol=1e-8)
            assert res.params["df"] == fit.df_resid


def test_linear_matches_ols_with_missing_genotypes(rng):
    geno_df, expr_df, cov_df = _data(rng)
    res = map_eqtls(geno_df, expr_df, cov_df, pv_trans=1.0)
    design = np.column_stack([np.ones(geno_df.shape[1]), cov_df.to_numpy().T])
    _check_linear(res, geno_df, expr_df, design)


# the reference deliberately fits the rank-deficient design (statsmodels warns about it)
@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.SingularMatrixWarning")
def test_collinear_covariates_error_by_default_and_drop_on_request(rng):
    geno_df, expr_df, cov_df = _data(rng, n_cov=3)
    cov_df.loc["c_sum"] = cov_df.loc["c0"] + 2 * cov_df.loc["c1"]
    cov_df.loc["c_const"] = 5.0
    with pytest.raises(ValueError, match="Colinear or zero covariates"):
        map_eqtls(geno_df, expr_df, cov_df, pv_trans=1.0)
    res = map_eqtls(geno_df, expr_df, cov_df, pv_trans=1.0, collinear="drop")
    assert res.params["n_covariates"] == 3
    assert set(res.params["dropped_covariates"]) == {"c_sum", "c_const"}
    # reference: the full rank-deficient design; statsmodels' pinv fit counts independent columns only
    design = np.column_stack([np.ones(geno_df.shape[1]), cov_df.to_numpy().T])
    _check_linear(res, geno_df, expr_df, design)


def test_no_covariates_is_simple_regression(rng):
    geno_df, expr_df, _ = _data(rng, missing=0)
    res = map_eqtls(geno_df, expr_df, None, pv_trans=1.0)
    _check_linear(res, geno_df, expr_df, np.ones((geno_df.shape[1], 1)))
    assert res.params["df"] == geno_df.shape[1] - 2


def test_anova_matches_ols_f_test(rng):
    geno_df, expr_df, cov_df = _data(rng, missing=0.05)
    res = map_eqtls(geno_df, expr_df, cov_df, model="anova", pv_trans=1.0)
    table = res.all.set_index(["snp", "gene"])
    n = geno_df.shape[1]
    base = np.column_stack([np.ones(n), cov_df.to_numpy().T])
    for snp in geno_df.index:
        g = geno_df.loc[snp].to_numpy()
        values, counts = np.unique(g[~np.isnan(g)], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        ref = values[order[0]]
        g = np.where(np.isnan(g), ref, g)  # MatrixEQTL: a missing genotype joins the most frequent group
        # MatrixEQTL keeps F on (2, df) even with 2 genotypes (the empty dummy is zeroed)
        dummies = np.column_stack([(g == values[i]).astype(float) for i in order[1:]])
        for gene in expr_df.index:
            y = expr_df.loc[gene].to_numpy()
            full = sm.OLS(y, np.column_stack([base, dummies])).fit()
            small = sm.OLS(y, base).fit()
            f_ref = ((small.ssr - full.ssr) / 2) / (full.ssr / (n - base.shape[1] - 2))
            row = table.loc[(snp, gene)]
            np.testing.assert_allclose(row["f_stat"], f_ref, rtol=1e-8)
            if values.size == 3:
                table_ref = anova_lm(small, full)
                np.testing.assert_allclose(row["p_value"], table_ref["Pr(>F)"].iloc[1], rtol=1e-7)
            assert np.isnan(row["beta"])


def test_linear_cross_matches_ols_interaction(rng):
    geno_df, expr_df, cov_df = _data(rng, missing=0.05)
    res = map_eqtls(geno_df, expr_df, cov_df, model="linear_cross", pv_trans=1.0)
    table = res.all.set_index(["snp", "gene"])
    n = geno_df.shape[1]
    cov = cov_df.to_numpy().T
    for snp in geno_df.index:
        g = _imputed(geno_df.loc[snp])
        design = np.column_stack([np.ones(n), cov, g, g * cov[:, -1]])
        for gene in expr_df.index:
            fit = sm.OLS(expr_df.loc[gene].to_numpy(), design).fit()
            row = table.loc[(snp, gene)]
            np.testing.assert_allclose(row["beta"], fit.params[-1], rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(row["t_stat"], fit.tvalues[-1], rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(row["p_value"], fit.pvalues[-1], rtol=1e-8)
            assert res.params["df"] == fit.df_resid


def test_missing_expression_is_mean_imputed(rng):
    geno_df, expr_df, cov_df = _data(rng, missing=0)
    expr_df.iloc[2, [3, 10]] = np.nan
    res = map_eqtls(geno_df, expr_df, cov_df, pv_trans=1.0)
    imputed = expr_df.apply(lambda r: r.fillna(r.mean()), axis=1)
    ref = map_eqtls(geno_df, imputed, cov_df, pv_trans=1.0)
    pd.testing.assert_frame_equal(res.all, ref.all)
    assert res.params["n_missing_expression"] == 2


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_thresholded_rows_equal_full_run(rng, precision):
    geno_df, expr_df, cov_df = _data(rng, n=80, n_snps=300, n_genes=40, missing=0.02)
    full = map_eqtls(geno_df, expr_df, cov_df, pv_trans=1.0)
    part = map_eqtls(geno_df, expr_df, cov_df, pv_trans=0.01, precision=precision, block_size=37)
    expected = full.all[full.all["p_value"] <= 0.01]
    assert len(part.all) == len(expected) > 0
    merged = expected.merge(part.all, on=["snp", "gene"], suffixes=("_full", ""))
    np.testing.assert_allclose(merged["t_stat"], merged["t_stat_full"], rtol=1e-12)
    np.testing.assert_allclose(merged["beta"], merged["beta_full"], rtol=1e-12)


def test_memory_is_bounded_by_the_block_not_the_number_of_snps(rng):
    import tracemalloc

    n, n_genes = 100, 300
    samples = [f"S{i}" for i in range(n)]
    expr = pd.DataFrame(rng.normal(size=(n_genes, n)), columns=samples)
    peaks = []
    warm = pd.DataFrame(rng.binomial(2, 0.3, (600, n)).astype(float), columns=samples)
    map_eqtls(warm, expr, None, pv_trans=1e-4, block_size=500)  # first-call caches are not per-SNP memory
    for n_snps in (2_000, 16_000):
        geno = pd.DataFrame(rng.binomial(2, 0.3, (n_snps, n)).astype(float), columns=samples[::-1])
        tracemalloc.start()
        map_eqtls(geno, expr, None, pv_trans=1e-4, block_size=500)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # 8x the SNPs (and a column order that needs reordering) adds only O(#SNPs) scalars (a few per-SNP
    # vectors), never a SNP x gene or SNP x sample matrix (16,000 x 300 doubles would be 38 MB)
    assert peaks[1] < peaks[0] + 16_000 * 128
