"""FDR: BH vs statsmodels, MatrixEQTL thresholded BH, per-stratum BH, Storey pi0/q, complete strata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import make_smoothing_spline
from scipy.optimize import brentq
from statsmodels.stats.multitest import multipletests

from tbeqtl.association import (
    AssociationResult,
    bh_fdr,
    bh_fdr_by_group,
    estimate_pi0,
    map_eqtls,
    recompute_fdr,
    storey_qvalue,
)
from tbeqtl.association.fdr import DEFAULT_LAMBDAS, pi0_from_counts, smoothing_spline_df
from tbeqtl.errors import InputError


def test_bh_matches_statsmodels(rng):
    p = np.concatenate([rng.uniform(size=500), rng.beta(0.2, 8, 100)])
    p[:5] = p[5]  # ties
    np.testing.assert_allclose(bh_fdr(p), multipletests(p, method="fdr_bh")[1], rtol=1e-14)


def test_bh_with_more_tests_than_rows_is_the_full_bh_on_the_smallest(rng):
    p = rng.uniform(size=1000)
    full = multipletests(p, method="fdr_bh")[1]
    keep = p <= np.quantile(p, 0.05)
    sub = bh_fdr(p[keep], n_tests=p.size)
    assert np.all(sub >= full[keep] - 1e-15)  # MatrixEQTL's thresholded FDR is never smaller
    # with every row kept it is exactly the full BH
    np.testing.assert_allclose(bh_fdr(p, n_tests=p.size), full, rtol=1e-14)
    with pytest.raises(InputError):
        bh_fdr(p, n_tests=10)
    with pytest.raises(InputError):
        bh_fdr([0.5, 1.5])


def test_bh_by_group_is_bh_within_each_group(rng):
    p = rng.uniform(size=300) ** 2
    groups = np.array(["cis:protein_coding", "cis:lincRNA", "trans:other"])[rng.integers(0, 3, 300)]
    out = bh_fdr_by_group(p, groups)
    for g in np.unique(groups):
        np.testing.assert_allclose(out[groups == g], multipletests(p[groups == g], method="fdr_bh")[1])
    counts = {g: int((groups == g).sum()) * 10 for g in np.unique(groups)}
    out = bh_fdr_by_group(p, groups, n_tests=counts)
    for g in np.unique(groups):
        np.testing.assert_allclose(out[groups == g], bh_fdr(p[groups == g], n_tests=counts[g]))


def _reference_spline_at_df(x, y, df):
    """Independent route: scipy's smoothing spline, with lam found by matching the smoother trace."""
    eye = np.eye(x.size)

    def trace(log_lam):
        return sum(make_smoothing_spline(x, eye[i], lam=np.exp(log_lam))(x[i]) for i in range(x.size)) - df

    lam = np.exp(brentq(trace, -25, 25, xtol=1e-12))
    return make_smoothing_spline(x, y, lam=lam)(x)


def test_smoothing_spline_has_the_requested_df(rng):
    x = DEFAULT_LAMBDAS
    y = 0.7 + 0.05 * np.sin(6 * x) + rng.normal(0, 0.01, x.size)
    fitted, _ = smoothing_spline_df(x, y, df=3.0)
    np.testing.assert_allclose(fitted, _reference_spline_at_df(x, y, 3.0), rtol=1e-7)


def test_pi0_smoother_and_bootstrap(rng):
    pi0_true = 0.8
    m = 20000
    null = rng.uniform(size=int(m * pi0_true))
    alt = rng.beta(0.05, 10, m - null.size)
    p = np.concatenate([null, alt])
    est = estimate_pi0(p)
    assert abs(est - pi0_true) < 0.03
    # the smoother's value at the largest lambda, from pi0(lambda) computed here independently
    pi0_lambda = np.array([(p >= lam).mean() / (1 - lam) for lam in DEFAULT_LAMBDAS])
    np.testing.assert_allclose(
        est, min(_reference_spline_at_df(DEFAULT_LAMBDAS, pi0_lambda, 3.0)[-1], 1), rtol=1e-7
    )
    assert abs(estimate_pi0(p, method="bootstrap") - pi0_true) < 0.05
    assert estimate_pi0(rng.uniform(size=5000)) > 0.9
    np.testing.assert_allclose(estimate_pi0(p, lambdas=[0.5]), (p >= 0.5).mean() / 0.5)


def test_qvalue_is_pi0_times_bh(rng):
    p = np.concatenate([rng.uniform(size=2000), rng.beta(0.1, 10, 300)])
    q = storey_qvalue(p)
    np.testing.assert_allclose(q, estimate_pi0(p) * multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    np.testing.assert_allclose(storey_qvalue(p, pi0=1.0), multipletests(p, method="fdr_bh")[1])
    counts = [(p >= lam).sum() for lam in DEFAULT_LAMBDAS]
    np.testing.assert_allclose(pi0_from_counts(counts, p.size), estimate_pi0(p))


def _subset_data(rng, n=50, n_snps=60, n_genes=30):
    samples = [f"S{i}" for i in range(n)]
    geno = pd.DataFrame(
        rng.binomial(2, 0.3, (n_snps, n)).astype(float),
        columns=samples,
        index=[f"rs{i:03d}" for i in range(n_snps)],
    )
    expr = pd.DataFrame(
        rng.normal(size=(n_genes, n)), columns=samples, index=[f"G{i:02d}" for i in range(n_genes)]
    )
    for k in range(6):
        expr.iloc[k] += 0.9 * geno.iloc[k * 7].to_numpy()
    snp_pos = pd.DataFrame({"chrom": "chr1", "pos": np.arange(n_snps) * 50_000 + 10}, index=geno.index)
    gene_pos = pd.DataFrame(
        {
            "chrom": "chr1",
            "start": np.arange(n_genes) * 100_000 + 5,
            "end": np.arange(n_genes) * 100_000 + 1000,
        },
        index=expr.index,
    )
    types = pd.Series(
        np.array(["protein_coding", "lincRNA", "snRNA"])[np.arange(n_genes) % 3], index=expr.index
    )
    return geno, expr, snp_pos, gene_pos, types


def test_fdr_over_subsets_equals_the_full_run(rng):
    geno, expr, snp_pos, gene_pos, types = _subset_data(rng)
    kw = dict(
        snp_pos_df=snp_pos,
        gene_pos_df=gene_pos,
        cis_dist=2e5,
        pv_cis=0.05,
        pv_trans=0.01,
        gene_types=types,
        qvalue=True,
        pvalue_hist=True,
    )
    full = map_eqtls(geno, expr, **kw)
    parts = [map_eqtls(geno.iloc[i : i + 17], expr, **kw) for i in range(0, 60, 17)]
    combined = AssociationResult.concat(parts)
    assert combined.n_tests == full.n_tests
    for pool in ("cis", "trans"):
        a = full.pairs[pool].set_index(["snp", "gene"]).sort_index()
        b = combined.pairs[pool].set_index(["snp", "gene"]).sort_index()
        pd.testing.assert_index_equal(a.index, b.index)
        for col in ("p_value", "fdr", "fdr_by_type", "q_value"):
            np.testing.assert_allclose(b[col], a[col], rtol=1e-12, err_msg=col)
    pd.testing.assert_frame_equal(combined.hist, full.hist)
    # a per-chunk FDR would be smaller: the denominators matter
    chunk = parts[0].pairs["trans"]
    assert (
        chunk["fdr"].to_numpy()
        <= combined.pairs["trans"]
        .set_index(["snp", "gene"])
        .loc[list(zip(chunk["snp"], chunk["gene"], strict=True)), "fdr"]
        .to_numpy()
        + 1e-15
    ).all()
    with pytest.raises(InputError, match="disjoint"):
        AssociationResult.concat([parts[0], parts[0]])


def test_per_type_strata_counts_and_fdr(rng):
    geno, expr, snp_pos, gene_pos, types = _subset_data(rng)
    res = map_eqtls(
        geno,
        expr,
        snp_pos_df=snp_pos,
        gene_pos_df=gene_pos,
        cis_dist=2e5,
        pv_cis=1.0,
        pv_trans=1.0,
        gene_types=types,
    )
    for pool in ("cis", "trans"):
        table = res.pairs[pool]
        assert (
            sum(res.n_tests[f"{pool}:{g}"] for g in ("protein_coding", "lincRNA", "other"))
            == res.n_tests[pool]
        )
        for raw, group in (("protein_coding", "protein_coding"), ("lincRNA", "lincRNA"), ("snRNA", "other")):
            sub = table[table["gene_type"] == raw]
            assert len(sub) == res.n_tests[f"{pool}:{group}"]
            np.testing.assert_allclose(
                sub["fdr_by_type"], multipletests(sub["p_value"], method="fdr_bh")[1], rtol=1e-12
            )
        np.testing.assert_allclose(
            table["fdr"], multipletests(table["p_value"], method="fdr_bh")[1], rtol=1e-12
        )
    again = recompute_fdr(res.pairs["cis"].sample(frac=1, random_state=1), res.n_tests, pool="cis")
    pd.testing.assert_frame_equal(again, res.pairs["cis"])


def test_map_qvalues_equal_storey_on_all_pvalues(rng):
    geno, expr, snp_pos, gene_pos, types = _subset_data(rng, n_snps=200)
    res = map_eqtls(
        geno,
        expr,
        snp_pos_df=snp_pos,
        gene_pos_df=gene_pos,
        cis_dist=2e5,
        pv_cis=1.0,
        pv_trans=1.0,
        qvalue=True,
    )
    for pool in ("cis", "trans"):
        table = res.pairs[pool]
        np.testing.assert_allclose(table["q_value"], storey_qvalue(table["p_value"].to_numpy()), rtol=1e-9)
    thresholded = map_eqtls(
        geno,
        expr,
        snp_pos_df=snp_pos,
        gene_pos_df=gene_pos,
        cis_dist=2e5,
        pv_cis=0.05,
        pv_trans=0.01,
        qvalue=True,
    )
    full = res.pairs["trans"].set_index(["snp", "gene"])
    part = thresholded.pairs["trans"].set_index(["snp", "gene"])
    pi0 = estimate_pi0(res.pairs["trans"]["p_value"].to_numpy())
    np.testing.assert_allclose(part["q_value"], pi0 * part["fdr"], rtol=1e-9)
    assert (part["q_value"] >= full.loc[part.index, "q_value"] * (1 - 1e-12)).all()
