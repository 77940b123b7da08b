"""Permutation checks: canonical seeded permutations, the paper's QQ check, FastQTL cis permutations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from tbeqtl.association import map_cis_permutations, map_eqtls, permutation_qq
from tbeqtl.association.histogram import pvalue_histogram
from tbeqtl.association.permutation import beta_mle, canonical_permutations, fit_beta_approximation, qq_table
from tbeqtl.schema import validate_table


def _data(rng, *, n=70, n_snps=120, n_genes=40, planted=5):
    samples = [f"S{i:03d}" for i in range(n)]
    geno = rng.binomial(2, rng.uniform(0.1, 0.5, (n_snps, 1)), (n_snps, n)).astype(float)
    cov = rng.normal(size=(2, n))
    expr = rng.normal(size=(n_genes, n)) + 0.5 * cov[0]
    for k in range(planted):
        expr[k] += 0.8 * geno[3 * k]
    geno_df = pd.DataFrame(geno, columns=samples, index=[f"rs{i:03d}" for i in range(n_snps)])
    expr_df = pd.DataFrame(expr, columns=samples, index=[f"G{i:02d}" for i in range(n_genes)])
    cov_df = pd.DataFrame(cov, columns=samples, index=["c0", "c1"])
    snp_pos = pd.DataFrame({"chrom": "chr1", "pos": np.arange(n_snps) * 10_000 + 1}, index=geno_df.index)
    gene_pos = pd.DataFrame(
        {"chrom": "chr1", "start": np.arange(n_genes) * 30_000 + 1, "end": np.arange(n_genes) * 30_000 + 500},
        index=expr_df.index,
    )
    return geno_df, expr_df, cov_df, snp_pos, gene_pos


def _shuffled(rng, geno, expr, cov):
    cols = list(rng.permutation(geno.columns))
    return (
        geno.loc[rng.permutation(geno.index), cols],
        expr.loc[rng.permutation(expr.index), cols],
        cov[list(rng.permutation(cols))],
    )


def test_canonical_permutations_do_not_depend_on_column_order(rng):
    ids = np.array([f"S{i}" for i in range(25)])
    order = rng.permutation(ids.size)
    a = canonical_permutations(ids, 5, seed=7)
    b = canonical_permutations(ids[order], 5, seed=7)
    # as mappings sample -> source sample they are identical
    for j in range(5):
        assert dict(zip(ids, ids[a[j]], strict=True)) == dict(zip(ids[order], ids[order][b[j]], strict=True))
        assert sorted(a[j]) == list(range(ids.size))
    assert not np.array_equal(a, canonical_permutations(ids, 5, seed=8))


def test_permutation_qq(rng):
    geno, expr, cov, snp_pos, gene_pos = _data(rng)
    kw = dict(snp_pos_df=snp_pos, gene_pos_df=gene_pos, cis_dist=50_000)
    qq = permutation_qq(geno, expr, cov, seed=3, **kw)
    table = validate_table(qq.table, "permutation_qq")
    true = map_eqtls(geno, expr, cov, pv_cis=1.0, pv_trans=1.0, **kw)
    for pool in ("cis", "trans"):
        sub = table[table["pool"] == pool]
        assert len(sub) == true.n_tests[pool] == qq.n_tests[pool]
        np.testing.assert_allclose(
            np.sort(sub["observed_log10p"].to_numpy())[::-1],
            -np.log10(np.sort(true.pairs[pool]["p_value"].to_numpy())),
        )
        assert qq.n_beyond[pool] == int((sub["observed_log10p"] > sub["permuted_log10p"].max()).sum())
    assert qq.n_beyond["cis"] >= 4  # the planted cis effects beat every permuted p-value
    # the permuted run is a real permutation: same multiset of genotypes, permuted expression+covariates
    again = permutation_qq(*_shuffled(rng, geno, expr, cov), seed=3, **kw)
    pd.testing.assert_frame_equal(again.table, qq.table)
    other = permutation_qq(geno, expr, cov, seed=4, **kw)
    assert not np.allclose(other.table["permuted_log10p"], qq.table["permuted_log10p"])


def test_beta_approximation_recovers_the_min_p_distribution(rng):
    df, m = 40, 25
    p_min = rng.uniform(size=(4000, m)).min(axis=1)  # Beta(1, m)
    r2 = 1.0 - special.betaincinv(df / 2, 0.5, p_min)  # correlations whose df-p-value is p_min
    true_df, a, b = fit_beta_approximation(r2, df)
    assert abs(true_df - df) / df < 0.05
    assert abs(a - 1) < 0.06 and abs(b - m) / m < 0.08
    # the MLE beats the moment estimates in likelihood
    p = special.betainc(true_df / 2, 0.5, 1 - r2)
    mle = stats.beta.logpdf(p, a, b).sum()
    mean, var = p.mean(), p.var()
    c = mean * (1 - mean) / var - 1
    assert mle >= stats.beta.logpdf(p, mean * c, (1 - mean) * c).sum() - 1e-6


def test_cis_permutations(rng):
    geno, expr, cov, snp_pos, gene_pos = _data(rng)
    kw = dict(snp_pos_df=snp_pos, gene_pos_df=gene_pos, cis_dist=50_000)
    table = map_cis_permutations(geno, expr, cov, n_permutations=300, seed=11, **kw)
    validate_table(table, "cis_egenes")
    nominal = map_eqtls(geno, expr, cov, pv_cis=1.0, pv_trans=1.0, **kw).cis
    top = nominal.sort_values(["gene", "p_value", "snp"]).groupby("gene").head(1).set_index("gene")
    t = table.set_index("gene")
    assert set(t.index) == set(top.index)
    pd.testing.assert_series_equal(t["snp"], top.loc[t.index, "snp"], check_names=False)
    np.testing.assert_allclose(t["p_nominal"], top.loc[t.index, "p_value"], rtol=1e-10)
    np.testing.assert_allclose(t["beta"], top.loc[t.index, "beta"], rtol=1e-10)
    np.testing.assert_allclose(t["t_stat"], top.loc[t.index, "t_stat"], rtol=1e-10)
    assert (t["n_snps"] == nominal.groupby("gene").size().loc[t.index]).all()
    # planted genes are eGenes, the beta approximation agrees with the empirical p where it is resolved
    assert (t.loc[[f"G{k:02d}" for k in range(5)], "q_value"] < 0.05).all()
    resolved = t["p_perm"] > 0.05
    np.testing.assert_allclose(t.loc[resolved, "p_beta"], t.loc[resolved, "p_perm"], atol=0.08)
    assert (t["p_perm"] >= 1 / 301).all() and (t["p_beta"] <= 1).all()
    # seeded and order independent
    again = map_cis_permutations(*_shuffled(rng, geno, expr, cov), n_permutations=300, seed=11, **kw)
    pd.testing.assert_frame_equal(again, table, rtol=1e-10)


@pytest.mark.slow
def test_cis_permutation_pvalues_are_uniform_under_the_null(rng):
    geno, expr, cov, snp_pos, gene_pos = _data(rng, n_snps=400, n_genes=150, planted=0)
    table = map_cis_permutations(
        geno,
        expr,
        cov,
        snp_pos_df=snp_pos,
        gene_pos_df=gene_pos,
        cis_dist=50_000,
        n_permutations=1000,
        seed=5,
    )
    assert stats.kstest(table["p_beta"], "uniform").pvalue > 1e-3
    assert stats.kstest(table["p_perm"], "uniform").pvalue > 1e-3


def test_beta_mle_matches_scipy_fit(rng):
    p = rng.beta(1.3, 22.0, 3000)
    a, b = beta_mle(p)
    a_ref, b_ref, _, _ = stats.beta.fit(p, floc=0, fscale=1)
    np.testing.assert_allclose([a, b], [a_ref, b_ref], rtol=1e-6)


def test_qq_result_writes_its_table(rng, tmp_path):
    geno, expr, cov, *_ = _data(rng, n_snps=20, n_genes=5)
    qq = permutation_qq(geno, expr, cov, seed=1)
    qq.write(tmp_path / "qq.tsv")
    back = pd.read_csv(tmp_path / "qq.tsv", sep="\t")
    assert list(back.columns) == list(qq.table.columns) and len(back) == 100


def test_qq_table_by_hand():
    """Rank pairing, the beyond flag, quantile matching and thinning on hand-checked numbers."""
    table = validate_table(qq_table({"cis": [0.1, 1e-3, 0.5, np.nan]}, {"cis": [0.2, 0.01, 1.0]}),
                           "permutation_qq")
    assert list(table["rank"]) == [1, 2, 3]
    np.testing.assert_allclose(table["observed_log10p"], [3, 1, -np.log10(0.5)])
    np.testing.assert_allclose(table["permuted_log10p"], [2, -np.log10(0.2), 0])
    assert list(table["beyond_permuted"]) == [True, False, False]  # 1e-3 < 0.01, the smallest permuted p
    # two permuted p-values per test: the permuted value at rank i of n is the 1 - (i - 0.5)/n quantile
    table = qq_table({"trans": [1e-4, 0.5]}, {"trans": [1e-3, 1e-2, 0.1, 1.0], "cis": [0.5]})
    assert list(table["pool"]) == ["trans", "trans"]  # a pool without true p-values has no row
    perm = -np.log10([1e-3, 1e-2, 0.1, 1.0])  # quantiles 0.75 and 0.25 of (3, 2, 1, 0): 2.25 and 0.75
    np.testing.assert_allclose(table["permuted_log10p"], [np.quantile(perm, 0.75), np.quantile(perm, 0.25)])
    np.testing.assert_allclose(table["permuted_log10p"], [2.25, 0.75])
    assert list(table["beyond_permuted"]) == [True, False]
    # p = 0 is floored at the smallest normal double, as the engine floors it
    floored = qq_table({"all": [0.0]}, {"all": [0.5]})["observed_log10p"].iloc[0]
    assert floored == pytest.approx(-np.log10(np.finfo(np.float64).tiny))
    # thinning keeps the most extreme ranks, then evenly spaced ones, always the last
    rng = np.random.default_rng(0)
    thin = qq_table({"all": rng.uniform(size=5000)}, {"all": rng.uniform(size=5000)}, max_points=300,
                    keep_top=50)
    ranks = thin["rank"].to_numpy()
    assert len(ranks) <= 300 and list(ranks[:50]) == list(range(1, 51)) and ranks[-1] == 5000
    assert qq_table({}, {}).empty and list(qq_table({}, {}).columns) == list(table.columns)


def test_pvalue_histogram_bins_like_the_engine(rng):
    """(lo, hi] bins by hand, and the same counts as the engine's own histogram of the same tests."""
    hist = validate_table(pvalue_histogram({"cis": [0.0, 0.25, 0.2500001, 0.5, 1.0, np.nan]}, spec=4),
                          "pvalue_hist")
    assert list(hist["count"]) == [2, 2, 0, 1]  # 0 -> first bin; 0.25 is in (0, 0.25]; NaN not counted
    np.testing.assert_allclose(hist["bin_hi"], [0.25, 0.5, 0.75, 1.0])
    geno, expr, cov, _, _ = _data(rng)
    res = map_eqtls(geno, expr, cov, pv_cis=0.0, pv_trans=1.0, pvalue_hist=True)
    ours = pvalue_histogram({"all": res.pairs["all"]["p_value"].to_numpy()})
    engine = res.hist[res.hist["pool"] == "all"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours[["bin_lo", "bin_hi"]], engine[["bin_lo", "bin_hi"]])
    assert np.abs(ours["count"].to_numpy() - engine["count"].to_numpy()).sum() <= 2  # edge rounding only
    assert ours["count"].sum() == engine["count"].sum() == geno.shape[0] * expr.shape[0]
