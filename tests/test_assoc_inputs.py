"""Bad inputs of the association engine: a clear InputError naming the culprit, or a logged, counted rule."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from tbeqtl.association import map_eqtls
from tbeqtl.errors import InputError


@pytest.fixture(autouse=True)
def _propagate_logs(monkeypatch):
    # the CLI (tests run earlier in the same process) stops the tbeqtl logger from propagating
    monkeypatch.setattr(logging.getLogger("tbeqtl"), "propagate", True)


@pytest.fixture
def data(rng):
    n = 30
    samples = [f"S{i}" for i in range(n)]
    geno = pd.DataFrame(
        rng.binomial(2, 0.4, (5, n)).astype(float), index=[f"rs{i}" for i in range(5)], columns=samples
    )
    expr = pd.DataFrame(rng.normal(size=(4, n)), index=[f"G{i}" for i in range(4)], columns=samples)
    cov = pd.DataFrame(rng.normal(size=(2, n)), index=["age", "pc1"], columns=samples)
    snp_pos = pd.DataFrame(
        {"chrom": "chr1", "pos": [100, 2000, 3000, 5_000_000, 9_000_000]}, index=geno.index
    )
    gene_pos = pd.DataFrame(
        {
            "chrom": "chr1",
            "start": [150, 4_000_000, 9_000_500, 50_000_000],
            "end": [900, 4_100_000, 9_001_000, 50_000_100],
        },
        index=expr.index,
    )
    return geno, expr, cov, snp_pos, gene_pos


def test_non_numeric_cells_name_the_rows(data):
    geno, expr, cov, *_ = data
    geno = geno.astype(object)
    geno.iloc[2, 4] = "AA"
    with pytest.raises(InputError, match="non-numeric values in genotype rows: rs2"):
        map_eqtls(geno, expr, cov)
    expr = expr.astype(object)
    expr.iloc[1, 0] = "n/a"
    with pytest.raises(InputError, match="non-numeric values in expression rows: G1"):
        map_eqtls(data[0], expr, cov)


def test_covariates_with_nan_are_an_error_unless_imputed(data):
    geno, expr, cov, *_ = data
    cov.iloc[1, 3] = np.nan
    with pytest.raises(InputError, match="missing values in covariates.*pc1"):
        map_eqtls(geno, expr, cov)
    res = map_eqtls(geno, expr, cov, covariate_missing="mean", pv_trans=1.0)
    imputed = cov.copy()
    imputed.iloc[1, 3] = cov.iloc[1].mean()
    ref = map_eqtls(geno, expr, imputed, pv_trans=1.0)
    pd.testing.assert_frame_equal(res.all, ref.all)


def test_more_covariates_than_samples(data, rng):
    geno, expr, _, *_ = data
    cov = pd.DataFrame(
        rng.normal(size=(40, geno.shape[1])), columns=geno.columns, index=[f"c{i}" for i in range(40)]
    )
    with pytest.raises(InputError, match="more covariates than samples"):
        map_eqtls(geno, expr, cov)
    cov = cov.iloc[:28]  # n - 2 = 28 covariates: df = 30 - 2 - 28 = 0
    with pytest.raises(InputError, match="no residual degrees of freedom"):
        map_eqtls(geno, expr, cov)


def test_zero_variance_snp_and_gene_are_counted_tests_with_p_1(data, caplog):
    geno, expr, cov, *_ = data
    geno.iloc[1] = 1.0
    expr.iloc[3] = 7.0
    with caplog.at_level(logging.WARNING, logger="tbeqtl"):
        res = map_eqtls(geno, expr, cov, pv_trans=1.0)
    assert "1 gene(s) constant" in caplog.text and "G3" in caplog.text
    assert "1 SNP(s) monomorphic" in caplog.text and "rs1" in caplog.text
    assert res.n_tests["all"] == 20 and len(res.all) == 20
    dead = res.all[(res.all["snp"] == "rs1") | (res.all["gene"] == "G3")]
    assert len(dead) == 8
    assert (dead["t_stat"] == 0).all() and (dead["p_value"] == 1).all() and (dead["beta"] == 0).all()
    assert res.params["n_constant_genes"] == 1 and res.params["n_degenerate_snps"] == 1


def test_snp_collinear_with_covariates_is_zeroed(data):
    geno, expr, cov, *_ = data
    cov.loc["dup"] = geno.iloc[0].to_numpy() * 2 + 1
    res = map_eqtls(geno, expr, cov, pv_trans=1.0)
    rows = res.all[res.all["snp"] == "rs0"]
    assert (rows["p_value"] == 1).all()


def test_snps_without_positions_are_never_cis_and_logged(data, caplog):
    geno, expr, cov, snp_pos, gene_pos = data
    snp_pos = snp_pos.drop(index="rs0")
    snp_pos.loc["rs2", "pos"] = 0
    with caplog.at_level(logging.WARNING, logger="tbeqtl"):
        res = map_eqtls(geno, expr, cov, snp_pos_df=snp_pos, gene_pos_df=gene_pos, pv_cis=1.0, pv_trans=1.0)
    assert "2 SNP(s) without a usable position" in caplog.text
    assert res.params["n_snps_without_position"] == 2
    assert not res.cis["snp"].isin(["rs0", "rs2"]).any()
    assert res.n_tests["cis"] + res.n_tests["trans"] == 20


def test_cis_window_is_inclusive_on_both_sides(data):
    geno, expr, cov, snp_pos, gene_pos = data
    gene_pos = gene_pos.copy()
    gene_pos.loc["G0", ["start", "end"]] = [1100, 1900]  # window [100, 2900] with cis_dist 1000
    res = map_eqtls(
        geno, expr, cov, snp_pos_df=snp_pos, gene_pos_df=gene_pos, cis_dist=1000, pv_cis=1.0, pv_trans=1.0
    )
    cis = set(zip(res.cis["snp"], res.cis["gene"], strict=True))
    assert ("rs0", "G0") in cis and ("rs1", "G0") in cis and ("rs2", "G0") not in cis
    # left > right is swapped, and a gene on another chromosome is never cis
    gene_pos.loc["G0", ["start", "end"]] = [1900, 1100]
    gene_pos.loc["G2", "chrom"] = "chr2"
    res = map_eqtls(
        geno, expr, cov, snp_pos_df=snp_pos, gene_pos_df=gene_pos, cis_dist=1000, pv_cis=1.0, pv_trans=1.0
    )
    assert ("rs0", "G0") in set(zip(res.cis["snp"], res.cis["gene"], strict=True))
    assert "G2" not in set(res.cis["gene"])


def test_samples_must_match(data):
    geno, expr, cov, *_ = data
    with pytest.raises(InputError, match="missing from the genotype table: S0"):
        map_eqtls(geno.drop(columns="S0"), expr, cov)
    with pytest.raises(InputError, match="only in the covariate table: X9"):
        map_eqtls(geno, expr, cov.assign(X9=1.0))


def test_duplicate_ids(data):
    geno, expr, cov, *_ = data
    geno.index = ["rs0", "rs0", "rs2", "rs3", "rs4"]
    with pytest.raises(InputError, match="duplicate genotype IDs: rs0"):
        map_eqtls(geno, expr, cov)


def test_threshold_rules(data):
    geno, expr, cov, snp_pos, gene_pos = data
    with pytest.raises(InputError, match="must not exceed pv_cis"):
        map_eqtls(geno, expr, cov, snp_pos_df=snp_pos, gene_pos_df=gene_pos, pv_cis=1e-3, pv_trans=1e-2)
    with pytest.raises(InputError, match=r"pv_cis must lie in \[0, 1\]"):
        map_eqtls(geno, expr, cov, pv_cis=2.0)
    with pytest.raises(InputError, match="both snp_pos_df and gene_pos_df"):
        map_eqtls(geno, expr, cov, snp_pos_df=snp_pos)


def test_anova_rejects_dosages_with_more_than_three_values(data):
    geno, expr, cov, *_ = data
    geno.iloc[3, 2] = 0.7
    with pytest.raises(InputError, match="at most 3 distinct genotype values.*rs3"):
        map_eqtls(geno, expr, cov, model="anova")


def test_linear_cross_needs_a_covariate(data):
    geno, expr, *_ = data
    with pytest.raises(InputError, match="needs at least one covariate"):
        map_eqtls(geno, expr, None, model="linear_cross")


def test_unknown_options(data):
    geno, expr, cov, *_ = data
    with pytest.raises(InputError, match="unknown model"):
        map_eqtls(geno, expr, cov, model="logistic")
    with pytest.raises(InputError, match="precision"):
        map_eqtls(geno, expr, cov, precision="float16")
    with pytest.raises(InputError, match="unknown backend"):
        map_eqtls(geno, expr, cov, backend="tpu")
    with pytest.raises(InputError, match="pvalue_hist"):
        map_eqtls(geno, expr, cov, pvalue_hist="log")


def test_infinite_values(data):
    geno, expr, cov, *_ = data
    expr.iloc[0, 0] = np.inf
    with pytest.raises(InputError, match="infinite values in expression rows: G0"):
        map_eqtls(geno, expr, cov)
