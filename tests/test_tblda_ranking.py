"""Feature ranking: exact and Gaussian 2-Wasserstein between Beta marginals, MAF residuals, top fraction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import integrate, special, stats

from tbeqtl.errors import InputError
from tbeqtl.schema import validate_table
from tbeqtl.tblda.ranking import (
    beta_w2_exact,
    beta_w2_gaussian,
    coded_allele_frequency,
    expression_level_spearman,
    gene_w2_scores,
    snp_maf_residual_scores,
    snp_maf_residuals,
    top_features,
)


def _w2_quad(a1, b1, a2, b2):
    def f(u):
        return (special.betaincinv(a1, b1, u) - special.betaincinv(a2, b2, u)) ** 2

    val, _ = integrate.quad(f, 0, 1, limit=200, epsabs=1e-14, epsrel=1e-10)
    return np.sqrt(val)


@pytest.mark.parametrize(("a1", "b1", "a2", "b2"), [
    (2.0, 5.0, 3.0, 3.0), (30.0, 900.0, 45.0, 880.0), (200.0, 4e4, 260.0, 4e4), (1.5, 1.5, 1.5, 1.5)])
def test_exact_w2_matches_adaptive_quadrature(a1, b1, a2, b2):
    ours = float(beta_w2_exact((a1, b1), (a2, b2)))
    ref = _w2_quad(a1, b1, a2, b2)
    assert ours == pytest.approx(ref, rel=2e-5, abs=1e-12)  # 64-node Gauss-Legendre


def test_exact_w2_for_normal_limit_and_point_shift():
    # two Betas with the same shape shifted: W2 ~ |mean difference| at huge concentration
    w2 = float(beta_w2_exact((5e5, 5e5), (5.1e5, 4.9e5)))
    assert w2 == pytest.approx(0.01, rel=1e-3)


def test_gaussian_shortcut_error_bound_holds(rng):
    a1 = rng.uniform(0.5, 5000, 300)
    b1 = rng.uniform(0.5, 1e5, 300)
    a2 = a1 * rng.uniform(0.5, 1.5, 300)
    b2 = b1 * rng.uniform(0.8, 1.2, 300)
    exact = beta_w2_exact((a1, b1), (a2, b2), n_nodes=200)
    approx, bound = beta_w2_gaussian((a1, b1), (a2, b2))
    assert np.all(np.abs(exact - approx) <= bound * (1 + 1e-6) + 1e-12)
    # the bound shrinks with concentration: near-exact for fitted-topic-like parameters
    w2, b = beta_w2_gaussian((500.0, 1e5), (550.0, 1e5))
    assert b / w2 < 1e-2
    ex = float(beta_w2_exact((500.0, 1e5), (550.0, 1e5), n_nodes=200))
    assert abs(ex - w2) / ex < 1e-4


@pytest.mark.parametrize(("a1", "b1", "a2", "b2"), [
    (30.0, 70.0, 40.0, 60.0), (2.0, 5.0, 3.0, 3.0), (500.0, 1e5, 550.0, 1e5), (9.0, 1.0, 1.0, 9.0)])
def test_gaussian_w2_is_the_w2_of_the_moment_matched_normals(a1, b1, a2, b2):
    """tbeqtl's shortcut equals the W2 distance between normals with the two Betas' means and sds,
    computed here as the quantile integral of scipy's normals (no closed form from tbeqtl)."""
    w2, bound = beta_w2_gaussian((a1, b1), (a2, b2))
    n1 = stats.norm(stats.beta(a1, b1).mean(), stats.beta(a1, b1).std())
    n2 = stats.norm(stats.beta(a2, b2).mean(), stats.beta(a2, b2).std())
    val, _ = integrate.quad(lambda u: (n1.ppf(u) - n2.ppf(u)) ** 2, 0, 1, limit=200, epsabs=1e-14)
    assert float(w2) == pytest.approx(np.sqrt(val), rel=1e-6)
    assert np.isfinite(bound) and bound >= 0


def _concentrations(rng, n_genes=40, k=4, scale=2e4):
    psi = rng.dirichlet(np.full(n_genes, 0.5), size=k)
    return pd.DataFrame((psi * scale).T + 0.05, index=[f"g{i}" for i in range(n_genes)],
                        columns=pd.RangeIndex(k, name="topic"))


def test_gene_scores_auto_equals_exact_and_mean_over_other_topics(rng):
    conc = _concentrations(rng)
    exact = gene_w2_scores(conc, method="exact")
    auto = gene_w2_scores(conc, method="auto", rtol=1e-4)
    np.testing.assert_allclose(auto.to_numpy(), exact.to_numpy(), rtol=2e-4)
    xi = conc.to_numpy()
    a, b = xi, xi.sum(0) - xi
    g, k = 3, 1
    manual = np.mean([float(beta_w2_exact((a[g, k], b[g, k]), (a[g, j], b[g, j])))
                      for j in range(4) if j != k])
    assert exact.iloc[g, k] == pytest.approx(manual, rel=1e-10)


def test_normalized_variant_is_scale_invariant_per_gene(rng):
    conc = _concentrations(rng, scale=1e7)
    raw = gene_w2_scores(conc, method="gaussian")
    norm = gene_w2_scores(conc, method="gaussian", normalized=True)
    total = (conc / conc.sum(0)).sum(axis=1)
    np.testing.assert_allclose(norm.to_numpy(), (raw.div(total, axis=0)).to_numpy())
    # raw score tracks expression level, the normalised one much less
    mean_count = total * 1000
    raw_rho = expression_level_spearman(raw, mean_count)["mean"]
    assert raw_rho > expression_level_spearman(norm, mean_count)["mean"]


def test_expression_level_spearman_hand_computed():
    """Spearman's rho = 1 - 6 sum d^2 / (n (n^2 - 1)) on hand-ranked values (no ties), genes aligned by ID."""
    genes = [f"g{i}" for i in range(5)]
    # mean counts rank 1..5 along genes; stored in another order to check the alignment by ID
    mean = pd.Series([10.0, 20.0, 400.0, 5000.0, 60000.0], index=genes).iloc[[3, 0, 4, 2, 1]]
    scores = pd.DataFrame({
        0: [0.1, 0.2, 0.3, 0.4, 0.9],       # same ranks: rho = 1
        1: [5.0, 4.0, 3.0, 2.0, 1.0],       # reversed: rho = -1
        2: [2.0, 1.0, 4.0, 3.0, 5.0],       # ranks 2,1,4,3,5: sum d^2 = 4, rho = 1 - 24/120 = 0.8
    }, index=genes)
    out = expression_level_spearman(scores, mean)
    np.testing.assert_allclose(out[[0, 1, 2]].to_numpy(dtype=float), [1.0, -1.0, 0.8], rtol=1e-12)
    assert out["mean"] == pytest.approx((1.0 - 1.0 + 0.8) / 3, rel=1e-12)


def test_snp_residuals_match_statsmodels(rng):
    maf = pd.Series(rng.uniform(0.05, 0.5, 50), index=[f"rs{i}" for i in range(50)])
    lam = pd.DataFrame(rng.random((50, 3)) * 0.3 + maf.to_numpy()[:, None], index=maf.index)
    ours = snp_maf_residual_scores(lam, maf)
    for k in range(3):
        fit = sm.OLS(lam[k].to_numpy(), sm.add_constant(maf.to_numpy())).fit()
        np.testing.assert_allclose(ours[k].to_numpy(), np.abs(fit.resid), atol=1e-12)
    with pytest.raises(InputError, match="rs3"):
        snp_maf_residual_scores(lam, maf.drop("rs3"))


def test_one_maf_residual_implementation_with_one_edge_case(rng):
    """The robust-component step and the simulator use the ranking's MAF residuals, bit for bit."""
    from tbeqtl.pipeline.robust import maf_residuals
    from tbeqtl.simulate.effects import snp_topic_scores

    snps = [f"rs{i}" for i in range(40)]
    geno = pd.DataFrame(rng.binomial(2, rng.uniform(0.05, 0.5, size=(40, 1)), size=(40, 25)).astype(float),
                        index=snps)
    geno.iloc[3, :5] = np.nan
    lam = pd.DataFrame(rng.random((40, 3)), index=snps)
    maf = coded_allele_frequency(geno)
    assert maf["rs3"] == pytest.approx(geno.iloc[3, 5:].mean() / 2)
    core = snp_maf_residuals(lam, maf)
    pd.testing.assert_frame_equal(maf_residuals(lam, geno), core, check_exact=True)
    pd.testing.assert_frame_equal(snp_maf_residual_scores(lam, maf), core.abs(), check_exact=True)
    np.testing.assert_array_equal(snp_topic_scores(lam.to_numpy(), maf.to_numpy()), core.abs().to_numpy())
    # residuals are orthogonal to the design (1, maf): the OLS normal equations
    np.testing.assert_allclose(core.sum(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(core.mul(maf, axis=0).sum(axis=0), 0, atol=1e-12)
    # a SNP without any called genotype is an error everywhere (robust used to impute the mean)
    geno.iloc[7] = np.nan
    with pytest.raises(InputError, match="rs7"):
        maf_residuals(lam, geno)
    with pytest.raises(InputError, match="rs7"):
        snp_maf_residual_scores(lam, coded_allele_frequency(geno))


def test_top_features_table(rng):
    scores = pd.DataFrame(rng.random((25, 2)), index=[f"g{i}" for i in range(25)],
                          columns=pd.RangeIndex(2, name="topic"))
    table = top_features(scores, kind="gene", top_fraction=0.1)
    validate_table(table, "feature_ranking")
    assert len(table) == 2 * 3  # ceil(2.5)
    first = table[table.topic == 0]
    assert list(first["rank"]) == [1, 2, 3]
    assert list(first.feature) == list(scores[0].sort_values(ascending=False).index[:3])
    with pytest.raises(InputError):
        top_features(scores, kind="gene", top_fraction=0)
