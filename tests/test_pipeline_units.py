"""Unit tests of the pipeline's building blocks on small frames built here.

Statistics are checked against a closed form, a hand-computed case, a brute-force implementation
of the definition written here (Kendall's tau, Spearman's rho, Kruskal-Wallis H) or another
library's implementation (statsmodels OLS, numpy's eigendecomposition). Where the code under test
calls a scipy routine and the test only compares with that same routine, the test's docstring
says it checks plumbing (alignment, masking, which rows get a statistic), not the statistic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from tbeqtl.errors import InputError
from tbeqtl.pipeline import covariates as cov
from tbeqtl.pipeline import factors, holdout, robust
from tbeqtl.pipeline.config import PipelineConfig, parse_pair


# ----------------------------------------------------------------------------- config
def test_config_round_trip(tmp_path):
    config = PipelineConfig().replace(
        data={"path": "some dir/with \"quotes\"", "pairs": ["chr1:chr2", "chr3:chr3"]},
        fit={"max_steps": 17, "options": {"tol": 1e-5, "init_jitter": 0.1}},
        mapping={"factor_sets": ["all", "general"], "fdr": 0.05},
    )
    path = tmp_path / "c.toml"
    config.write(path, provenance={"versions": {"numpy": np.__version__}, "checksums": {"a": "b"}})
    back = PipelineConfig.from_toml(path)
    assert back == config
    assert back.pair_list == [("chr1", "chr2"), ("chr3", "chr3")]
    assert back.fit.options == {"tol": 1e-5, "init_jitter": 0.1}


@pytest.mark.parametrize(("text", "match"), [
    ("[fit]\nmax_stepz = 3\n", "max_stepz"),
    ("[fitt]\n", "fitt"),
    ("[fit]\nmax_steps = \"many\"\n", "fit.max_steps"),
    ("[covariates]\nhidden = \"peer2\"\n", "peer2"),
    ("[mapping]\nfactor_sets = [\"all\", \"other\"]\n", "other"),
    ("[fit\n", "invalid TOML"),
])
def test_config_errors_name_the_option(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        PipelineConfig.from_toml(path)


def test_parse_pair():
    assert parse_pair("1:chr22") == ("chr1", "chr22")
    with pytest.raises(InputError, match="chr1-chr2"):
        parse_pair("chr1-chr2")


# ----------------------------------------------------------------------------- holdout
def test_holdout_rule_and_order_independence(rng, make_sample_map):
    smap = make_sample_map(rng, 30)
    design = holdout.holdout_design(smap, seed=3)
    counts = smap.value_counts()
    held = design.loc[design["held_out"]].groupby("individual").size()
    assert set(held.index) == set(counts.index[counts >= 4])
    assert (held == 2).all()
    shuffled = smap.sample(frac=1.0, random_state=1)
    assert design.equals(holdout.holdout_design(shuffled, seed=3))
    # dropping other individuals does not change an individual's choice
    keep = smap[smap.isin(["I0", "I1", "I2", "I3", "I4"])]
    sub = holdout.holdout_design(keep, seed=3).set_index("sample")["held_out"]
    assert sub.equals(design.set_index("sample")["held_out"].reindex(sub.index))
    assert not design.equals(holdout.holdout_design(smap, seed=4))
    assert len(holdout.fit_samples(design)) + len(holdout.holdout_samples(design)) == len(smap)


def test_holdout_bad_arguments():
    with pytest.raises(InputError, match="n_holdout"):
        holdout.holdout_design(pd.Series({"a": "x"}), min_samples=2, n_holdout=2)


# ----------------------------------------------------------------------------- covariates
def test_inverse_normal_transform_matches_scipy(rng):
    """Rank / (n + 1) through the normal quantile, ties averaged: a hand-ranked case, then many rows."""
    # ranks of [3, 1, 2, 2] are [4, 1, 2.5, 2.5]; / 5 -> [0.8, 0.2, 0.5, 0.5]; Phi^-1(0.8) = 0.841621...
    hand = cov.inverse_normal_transform(pd.DataFrame([[3.0, 1.0, 2.0, 2.0]]))
    np.testing.assert_allclose(hand.iloc[0], [0.8416212335729143, -0.8416212335729143, 0.0, 0.0],
                               rtol=1e-12, atol=1e-15)
    values = pd.DataFrame(rng.poisson(3, size=(5, 40)).astype(float))
    z = cov.inverse_normal_transform(values)
    for g in range(5):
        ref = stats.norm.ppf(stats.rankdata(values.iloc[g]) / 41)
        np.testing.assert_allclose(z.iloc[g], ref)
    cpm = cov.counts_per_million(values)
    np.testing.assert_allclose(cpm.sum(axis=0), 1e6)


def test_genotype_pcs_match_eigendecomposition(rng):
    pop = rng.integers(0, 2, size=60)
    freq = np.where(pop[None, :] == 0, 0.2, 0.7) * np.ones((300, 1))
    geno = rng.binomial(2, freq).astype(float)
    geno[0, 0] = np.nan
    geno_df = pd.DataFrame(geno, index=[f"s{j}" for j in range(300)], columns=[f"i{i}" for i in range(60)])
    pcs = cov.genotype_pcs(geno_df, n_pcs=3)
    x = geno_df.to_numpy()
    x = np.where(np.isnan(x), np.nanmean(x, axis=1, keepdims=True), x)
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    evals, evecs = np.linalg.eigh(x.T @ x)
    top = evecs[:, ::-1][:, :3] * np.sqrt(evals[::-1][:3])
    for k in range(3):
        assert abs(np.corrcoef(top[:, k], pcs.iloc[:, k])[0, 1]) > 0.999
        np.testing.assert_allclose(np.linalg.norm(pcs.iloc[:, k]), np.linalg.norm(top[:, k]), rtol=1e-8)
    assert abs(stats.pointbiserialr(pop, pcs["genoPC1"]).statistic) > 0.9


@pytest.mark.parametrize("method", ["pca", "factor_analysis"])
def test_hidden_factors_recover_planted_factors(rng, method):
    z = rng.standard_normal((3, 80))
    w = rng.standard_normal((200, 3)) * np.array([3.0, 2.0, 1.5])
    y = w @ z + rng.standard_normal((200, 80)) * np.sqrt(rng.uniform(0.5, 2, size=(200, 1)))
    found = cov.hidden_factors(pd.DataFrame(y), n_factors=3, method=method).to_numpy()
    # canonical correlations between planted and found factor spaces
    qa, _ = np.linalg.qr(z.T - z.T.mean(axis=0))
    qb, _ = np.linalg.qr(found - found.mean(axis=0))
    assert np.linalg.svd(qa.T @ qb, compute_uv=False).min() > 0.95
    assert cov.hidden_factors(pd.DataFrame(y), n_factors=3, method="none").shape == (80, 0)


def test_known_covariates_and_tissue_error(rng):
    samples = [f"s{i}" for i in range(12)]
    sample_info = pd.DataFrame({"PLATFORM": ["a", "b", "c"] * 4, "pcr": [1.0, np.nan, 3.0, 2.0] * 3},
                               index=samples)
    individual_info = pd.DataFrame({"sex": ["F", "M", "M"]}, index=["i0", "i1", "i2"])
    smap = pd.Series([f"i{i % 3}" for i in range(12)], index=samples)
    known = cov.encode_known_covariates(samples, columns=["platform", "pcr", "sex", "absent"],
                                        sample_info_df=sample_info, individual_info_df=individual_info,
                                        sample_map_s=smap)
    assert list(known.columns) == ["platform_b", "platform_c", "pcr", "sex_M"]
    assert known["pcr"].iloc[1] == 2.0  # mean-imputed
    np.testing.assert_array_equal(known["sex_M"], [0, 1, 1] * 4)
    expr = pd.DataFrame(rng.standard_normal((30, 12)), columns=samples)
    pcs = pd.DataFrame(rng.standard_normal((3, 5)), index=["i0", "i1", "i2"])
    with pytest.raises(InputError, match="tissue 'Lung' has 12 held-out samples"):
        cov.tissue_covariates(samples, tissue="Lung", expression_df=expr, known_df=known, geno_pcs_df=pcs,
                              sample_map_s=smap, n_hidden=2, hidden_max_fraction=0.5)


def test_tissue_covariates_drop_collinear(rng):
    samples = [f"s{i}" for i in range(40)]
    smap = pd.Series([f"i{i}" for i in range(40)], index=samples)
    known = pd.DataFrame({"a": rng.standard_normal(40)}, index=samples)
    known["b"] = 2 * known["a"] + 1
    pcs = pd.DataFrame(rng.standard_normal((40, 2)), index=smap.to_numpy(), columns=["genoPC1", "genoPC2"])
    expr = pd.DataFrame(rng.standard_normal((50, 40)), columns=samples)
    out = cov.tissue_covariates(samples, tissue="t", expression_df=expr, known_df=known, geno_pcs_df=pcs,
                                sample_map_s=smap, n_hidden=60, hidden_max_fraction=0.1)
    assert list(out.index) == ["a", "genoPC1", "genoPC2", "hidden1", "hidden2", "hidden3", "hidden4"]
    assert list(out.columns) == samples


# ----------------------------------------------------------------------------- factors
def test_tissue_factor_association_closed_form(rng):
    phi = pd.DataFrame(rng.dirichlet(np.ones(4), size=90), index=[f"s{i}" for i in range(90)])
    tissue = pd.Series(["A"] * 50 + ["B"] * 30 + ["C"] * 10, index=phi.index)
    phi.iloc[:50, 0] += 1.0
    phi = phi.div(phi.sum(axis=1), axis=0)
    out = factors.tissue_factor_association(phi, tissue, threshold=20.0)
    row = out[(out.topic == 0) & (out.tissue == "A")].iloc[0]
    assert row.inner_product == pytest.approx(phi.iloc[:50, 0].sum())
    assert row.normalized_score == pytest.approx(phi.iloc[:50, 0].mean() / phi.iloc[50:, 0].mean())
    assert row.associated
    assert out.loc[out.associated, "tissue"].tolist() == ["A"]
    norm = factors.tissue_factor_association(phi, tissue, score="normalized", normalized_threshold=2.0)
    top = norm.sort_values("normalized_score").iloc[-1]
    assert (top.topic, top.tissue) == (0, "A")
    assert norm["associated"].equals(norm["normalized_score"] > 2.0)
    kt = factors.tissue_size_kendall(out)
    # by hand: sizes A, B, C = 50, 30, 10 and associated factors 1, 0, 0; pairs (A,B) and (A,C) are
    # concordant, (B,C) is tied in y only: tau_b = (2 - 0) / sqrt(3 * (3 - 1)) = 2 / sqrt(6)
    assert kt["n_tissues"] == 3
    assert np.isfinite(kt["tau"]) and np.isfinite(kt["p_value"])
    assert kt["tau"] == pytest.approx(2 / np.sqrt(6), rel=1e-12)
    # a constant vector has no tau: reported as NaN, not as a number
    flat = factors.tissue_size_kendall(out.assign(associated=False))
    assert np.isnan(flat["tau"]) and np.isnan(flat["p_value"])


def test_ancestry_and_cell_type_against_references(rng):
    ids = [f"i{i}" for i in range(80)]
    group = pd.Series(np.where(rng.random(80) < 0.4, "EUR", "AFR"), index=ids)
    theta = pd.DataFrame(rng.dirichlet(np.ones(3), size=80), index=ids)
    tau = pd.DataFrame({"q0": (group == "EUR") * 0.8 + rng.random(80) * 0.2}, index=ids)
    tau["q1"] = 1 - tau["q0"]
    out = factors.ancestry_association(theta, group, private_df=tau)
    row = out[(out.kind == "shared") & (out.factor == 1) & (out.group == "EUR")].iloc[0]
    assert row.r == pytest.approx(np.corrcoef((group == "EUR").astype(float), theta[1])[0, 1])
    summary = factors.ancestry_summary(out)
    assert summary["private_min_max_abs_r"] > 0.9
    assert summary["shared_median_abs_r"] < 0.3

    samples = [f"s{i}" for i in range(60)]
    phi = pd.DataFrame(rng.dirichlet(np.ones(3), size=60), index=samples)
    tissue = pd.Series(["T1"] * 30 + ["T2"] * 30, index=samples)
    scores = pd.DataFrame({"neutrophils": np.r_[phi.iloc[:30, 2].to_numpy() + 0.01 * rng.random(30),
                                                [np.nan] * 30]}, index=samples)
    cells = factors.cell_type_association(phi, scores, tissue)
    assert set(cells["tissue"]) == {"T1"}
    best = cells.loc[cells["captured"]]
    assert best["topic"].tolist() == [2]
    # tau on the 30 T1 samples with a score (T2's are NaN), against the definition computed here
    ref = _kendall_tau_no_ties(phi.iloc[:30, 0].to_numpy(), scores.iloc[:30, 0].to_numpy())
    assert cells.loc[cells.topic == 0, "tau"].iloc[0] == pytest.approx(ref, rel=1e-12)
    assert (cells["n_samples"] == 30).all()


def test_covariate_association_flags_batch_factor(rng):
    samples = [f"s{i}" for i in range(120)]
    batch = np.repeat(["b1", "b2", "b3"], 40)
    phi = rng.dirichlet(np.ones(4), size=120)
    phi[:40, 3] += 2.0
    phi = phi / phi.sum(axis=1, keepdims=True)
    phi_df = pd.DataFrame(phi, index=samples)
    attrs = pd.DataFrame({"batch": batch, "rin": rng.standard_normal(120)}, index=samples)
    out = factors.covariate_association(phi_df, attrs)
    flagged = out.loc[out.flagged, ["topic", "covariate"]].values.tolist()
    assert [3, "batch"] in flagged
    assert all(c == "batch" for _, c in flagged)
    row = out[(out.topic == 3) & (out.covariate == "batch")].iloc[0]
    # Kruskal-Wallis without ties: H = 12 / (N (N + 1)) sum_g R_g^2 / n_g - 3 (N + 1), p = chi2_{G-1}(H)
    ranks = _ranks_no_ties(phi[:, 3])
    h = 12 / (120 * 121) * sum(ranks[batch == b].sum() ** 2 / 40 for b in ("b1", "b2", "b3")) - 3 * 121
    assert row.statistic == pytest.approx(h, rel=1e-10)
    assert row.p_value == pytest.approx(np.exp(-h / 2), rel=1e-8)  # chi2 with 2 df: sf(h) = exp(-h/2)
    assert row.effect == pytest.approx(h / 119, rel=1e-10)
    # Spearman's rho is Pearson's r of the ranks
    rho = np.corrcoef(_ranks_no_ties(attrs["rin"].to_numpy()), _ranks_no_ties(phi[:, 0]))[0, 1]
    rin = out[(out.topic == 0) & (out.covariate == "rin")].iloc[0]
    assert rin.statistic == pytest.approx(rho, rel=1e-10)
    assert rin.effect == pytest.approx(rho ** 2, rel=1e-10)
    # BH over every test of the table (statsmodels' implementation as the reference)
    np.testing.assert_allclose(out["fdr"], multipletests(out["p_value"], method="fdr_bh")[1], rtol=1e-12)


def _ranks_no_ties(x):
    ranks = np.empty(len(x))
    ranks[np.argsort(x)] = np.arange(1, len(x) + 1)
    return ranks


def _kendall_tau_no_ties(x, y):
    """Kendall's tau by its definition: mean of sign(x_i - x_j) sign(y_i - y_j) over pairs i < j."""
    i, j = np.triu_indices(len(x), k=1)
    return float(np.mean(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])))


# ----------------------------------------------------------------------------- robust
def test_maf_residuals_match_statsmodels(rng):
    geno = pd.DataFrame(rng.binomial(2, rng.uniform(0.05, 0.5, size=(50, 1)), size=(50, 30)).astype(float),
                        index=[f"s{j}" for j in range(50)])
    lam = pd.DataFrame(rng.beta(1, 1, size=(50, 3)), index=geno.index)
    res = robust.maf_residuals(lam, geno)
    maf = geno.mean(axis=1) / 2
    for k in range(3):
        ref = sm.OLS(lam[k], sm.add_constant(maf)).fit().resid
        np.testing.assert_allclose(res[k], ref, atol=1e-12)


def _planted_runs(rng, *, n_runs=4, n_features=300, n_shared=2, k=5, noise=0.02):
    shared = rng.dirichlet(np.ones(n_features) * 0.3, size=n_shared)
    runs = {}
    for r in range(n_runs):
        cols = [shared[s] + noise * rng.dirichlet(np.ones(n_features)) for s in range(n_shared)]
        cols += [rng.dirichlet(np.ones(n_features) * 0.3) for _ in range(k - n_shared)]
        order = rng.permutation(k)
        runs[f"run{r}"] = pd.DataFrame(np.column_stack(cols)[:, order],
                                       index=[f"g{j}" for j in range(n_features)])
    return runs


def test_robust_components_recover_shared_factors(rng):
    runs = _planted_runs(rng)
    members, reps = robust.robust_components(runs, method="r2", threshold=0.9, min_partners=3, merge_r2=0.95)
    assert members["component"].nunique() == 2
    assert (members.groupby("component")["run"].nunique() == 4).all()
    assert reps.shape == (300, 2)
    # kendall on the same loadings finds the same components
    members_k, _ = robust.robust_components(runs, method="kendall", threshold=0.5, min_partners=3)
    assert members_k["component"].nunique() == 2
    # fewer runs than partners needed -> nothing flagged
    three = {k: v for k, v in list(runs.items())[:3]}
    members3, _ = robust.robust_components(three, method="r2", threshold=0.9, min_partners=3)
    assert members3.empty
    edges = robust.loading_partners(three, method="r2", threshold=0.9)
    a, b = runs["run0"], runs["run1"]
    r0 = edges.iloc[0]
    ref = np.corrcoef(three[r0.run_a].iloc[:, r0.topic_a], three[r0.run_b].iloc[:, r0.topic_b])[0, 1] ** 2
    assert r0.similarity == pytest.approx(ref)
    assert a.shape == b.shape


def test_robust_tissue_sets():
    ranking = pd.DataFrame({
        "pair": ["p1"] * 4 + ["p2"] * 4,
        "topic": [0, 0, 1, 1, 0, 0, 1, 1],
        "feature": ["g1", "s1", "g2", "s2", "g3", "s1", "g1", "s3"],
        "kind": ["gene", "snp"] * 4,
    })
    tissue = pd.DataFrame({"pair": ["p1", "p1", "p2", "p2"], "topic": [0, 1, 0, 1],
                           "tissue": ["A", "A", "A", "B"], "associated": [True, False, True, True]})
    genes = robust.robust_tissue_gene_sets(ranking, tissue)
    assert genes[["tissue", "feature"]].values.tolist() == [["A", "g1"], ["A", "g3"], ["B", "g1"]]
    snps = robust.robust_tissue_snp_sets(ranking, tissue, percentile=75)
    # tissue A: s1 top in 2 associated factors; 75th percentile of [2] = 2 -> s1
    assert snps[["tissue", "feature", "n_factors"]].values.tolist() == [["A", "s1", 2], ["B", "s3", 1]]
