"""Calibration: uniform p-values under the null, BH FDR control, and recovery of planted eQTLs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tbeqtl.association import map_eqtls
from tbeqtl.simulate import simulate


def _null_data(rng, *, n=80, n_snps=2000, n_genes=5, n_cov=4, missing=0.03):
    samples = [f"S{i}" for i in range(n)]
    geno = rng.binomial(2, rng.uniform(0.05, 0.5, (n_snps, 1)), (n_snps, n)).astype(float)
    geno[rng.uniform(size=geno.shape) < missing] = np.nan
    cov = rng.normal(size=(n_cov, n))
    expr = rng.normal(size=(n_genes, n)) + cov[:2].sum(axis=0)
    return (
        pd.DataFrame(geno, columns=samples, index=[f"rs{i}" for i in range(n_snps)]),
        pd.DataFrame(expr, columns=samples, index=[f"G{i}" for i in range(n_genes)]),
        pd.DataFrame(cov, columns=samples, index=[f"c{i}" for i in range(n_cov)]),
    )


@pytest.mark.parametrize("model", ["linear", "anova", "linear_cross"])
def test_null_pvalues_are_uniform(rng, model):
    geno, expr, cov = _null_data(rng)
    res = map_eqtls(geno, expr, cov, model=model, pv_trans=1.0, pvalue_hist=10)
    p = res.all["p_value"].to_numpy()
    assert p.size == 10_000
    if model == "anova":
        # MatrixEQTL keeps F on (2, df) for SNPs showing only 2 genotypes, which is conservative
        # for them: check uniformity on SNPs with all 3 genotypes
        three = geno.index[geno.nunique(axis=1) == 3]
        p3 = res.all.loc[res.all["snp"].isin(three), "p_value"].to_numpy()
        assert p3.size > 5000
        assert stats.kstest(p3, "uniform").pvalue > 1e-3
        two = res.all.loc[~res.all["snp"].isin(three), "p_value"].to_numpy()
        assert two.size == 0 or np.mean(two) >= 0.5
    else:
        assert stats.kstest(p, "uniform").pvalue > 1e-3
    counts = res.hist.loc[res.hist["pool"] == "all", "count"].to_numpy()
    assert counts.sum() == p.size
    np.testing.assert_array_equal(counts, np.histogram(p, bins=np.linspace(0, 1, 11))[0])


def test_bh_controls_fdr_over_repeated_simulations(rng):
    """Observed FDP at BH 0.1, averaged over 150 simulations with 2% planted effects.

    BH guarantees FDR = pi0 * 0.1 <= 0.1 for independent tests; the mean of 150 FDPs is checked
    against 0.1 plus three standard errors of that mean.
    """
    n, n_snps, n_genes = 60, 200, 10
    fdps = []
    for _ in range(150):
        geno = rng.binomial(2, 0.3, (n_snps, n)).astype(float)
        expr = rng.normal(size=(n_genes, n))
        truth = np.zeros((n_snps, n_genes), dtype=bool)
        for g in range(n_genes):
            s = rng.choice(n_snps, 4, replace=False)
            truth[s, g] = True
            expr[g] += geno[s].T @ rng.uniform(0.3, 0.6, 4)
        geno_df = pd.DataFrame(geno, index=[f"rs{i}" for i in range(n_snps)])
        expr_df = pd.DataFrame(expr, index=[f"G{i}" for i in range(n_genes)])
        res = map_eqtls(geno_df, expr_df, pv_trans=0.05)
        hits = res.all[res.all["fdr"] < 0.1]
        if len(hits) == 0:
            fdps.append(0.0)
            continue
        si = hits["snp"].str[2:].astype(int).to_numpy()
        gi = hits["gene"].str[1:].astype(int).to_numpy()
        fdps.append(float((~truth[si, gi]).mean()))
    fdps = np.array(fdps)
    assert fdps.mean() <= 0.1 + 3 * fdps.std(ddof=1) / np.sqrt(fdps.size)
    assert fdps.mean() > 0  # the test has power to make false discoveries at all


def test_planted_eqtls_from_the_simulator_are_recovered():
    sim = simulate(preset="small", seed=1, n_cis=20, n_trans=8, covariate_effects=True)
    data = sim.data
    counts = data.counts_df
    log_cpm = np.log1p(counts / counts.sum(axis=0) * 1e6)
    individual = data.sample_map_s.reindex(counts.columns).to_numpy()
    geno = data.genotype_df[individual]
    geno.columns = counts.columns
    info = data.sample_info_df.loc[counts.columns]
    cov = pd.concat(
        [pd.get_dummies(info["tissue"], drop_first=True).T.astype(float), info[["platform"]].T.astype(float)]
    )
    res = map_eqtls(
        geno,
        log_cpm,
        cov,
        snp_pos_df=data.snp_info_df,
        gene_pos_df=data.gene_info_df,
        pv_cis=1e-2,
        pv_trans=1e-4,
        gene_types=data.gene_info_df,
    )
    truth = sim.truth.eqtls_df
    for kind in ("cis", "trans"):
        planted = truth[truth["kind"] == kind]
        table = res.pairs[kind].set_index(["snp", "gene"])
        found = [
            (s, g) in table.index and table.loc[(s, g), "fdr"] < 0.1
            for s, g in zip(planted["snp"], planted["gene"], strict=True)
        ]
        assert np.mean(found) >= 0.9, (kind, np.mean(found))


def test_histogram_with_partial_edges_counts_only_inside(rng):
    geno, expr, cov = _null_data(rng, n_snps=500)
    edges = [0.01, 0.2, 0.5]
    res = map_eqtls(geno, expr, cov, pv_trans=1.0, pvalue_hist=edges)
    p = res.all["p_value"].to_numpy()
    counts = res.hist.loc[res.hist["pool"] == "all", "count"].to_numpy()
    expected = [((p > lo) & (p <= hi)).sum() for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    np.testing.assert_array_equal(counts, expected)
