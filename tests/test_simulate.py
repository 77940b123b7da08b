"""Tests of the simulator: determinism, shapes, ID structure, and planted truth vs the data.

Statistics of the simulated data are compared with the generating parameters by
independent computations (closed-form moments, least squares with numpy, scipy's
non-negative least squares), never with the simulator's own helpers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from tbeqtl.errors import InputError
from tbeqtl.io.gtex import gtex_donor_ids
from tbeqtl.simulate import PRESETS, Simulation, simulate


@pytest.fixture(scope="module")
def tiny() -> Simulation:
    return simulate(preset="tiny", seed=3)


@pytest.fixture(scope="module")
def small() -> Simulation:
    return simulate(preset="small", seed=0)


@pytest.fixture(scope="module")
def demo() -> Simulation:
    return simulate(preset="demo", seed=1, missing_rate=0.02)


def _assert_same(a: Simulation, b: Simulation) -> None:
    assert a.data.equals(b.data)
    for name in ("sample_info_df", "individual_info_df", "gene_info_df", "snp_info_df"):
        pd.testing.assert_frame_equal(getattr(a.data, name), getattr(b.data, name))
    for name in ("gene_topics_df", "sample_topics_df", "individual_topics_df", "snp_topics_df",
                 "ancestry_beta_df", "ancestry_tau_df", "eqtls_df", "covariate_effects_df"):
        pd.testing.assert_frame_equal(getattr(a.truth, name), getattr(b.truth, name))
    pd.testing.assert_series_equal(a.truth.topic_tissue_s, b.truth.topic_tissue_s)
    pd.testing.assert_series_equal(a.truth.library_size_s, b.truth.library_size_s)


def _rho(sim: Simulation) -> np.ndarray:
    """Equation 8 from the truth tables, in the genotype matrix's order."""
    t = sim.truth
    ancestry = t.ancestry_beta_df.to_numpy() @ t.ancestry_tau_df.loc[sim.data.individuals].to_numpy().T
    shared = t.snp_topics_df.to_numpy() @ t.individual_topics_df.loc[sim.data.individuals].to_numpy().T
    return t.alpha * ancestry + (1 - t.alpha) * shared


def _log_cpm(sim: Simulation) -> pd.DataFrame:
    counts = sim.data.counts_df
    return np.log(counts / counts.sum(axis=0) * 1e6 + 1.0)


# ----------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_data_and_truth(tiny):
    _assert_same(tiny, simulate(preset="tiny", seed=3))


def test_different_seeds_differ(tiny):
    other = simulate(preset="tiny", seed=4)
    assert not tiny.data.counts_df.equals(other.data.counts_df)
    assert list(tiny.data.individuals) != list(other.data.individuals)


def test_global_numpy_state_is_not_used(tiny):
    np.random.seed(12345)  # noqa: NPY002 - checking that the global RNG has no influence
    _assert_same(tiny, simulate(preset="tiny", seed=3))


def test_extras_do_not_change_the_model_draws(tiny):
    pure = simulate(preset="tiny", seed=3, n_cis=0, n_trans=0, covariate_effects=False)
    for name in ("gene_topics_df", "sample_topics_df", "snp_topics_df", "ancestry_beta_df",
                 "ancestry_tau_df"):
        pd.testing.assert_frame_equal(getattr(pure.truth, name), getattr(tiny.truth, name))
    pd.testing.assert_frame_equal(pure.data.genotype_df, tiny.data.genotype_df)
    assert pure.truth.eqtls_df.empty
    assert (pure.truth.covariate_effects_df.to_numpy() == 0).all()
    assert not pure.data.counts_df.equals(tiny.data.counts_df)


# ----------------------------------------------------------------------------- shapes and IDs
def test_small_preset_has_the_tblda_test_sizes(small):
    data, truth = small.data, small.truth
    assert data.counts_df.shape == (200, 300)
    assert data.genotype_df.shape == (500, 100)
    assert truth.gene_topics_df.shape == (200, 10)
    assert truth.sample_topics_df.shape == (300, 10)
    assert truth.individual_topics_df.shape == (100, 10)
    assert truth.snp_topics_df.shape == (500, 10)
    assert truth.ancestry_beta_df.shape == (500, 3)
    assert truth.ancestry_tau_df.shape == (100, 3)
    assert truth.alpha == 0.3
    assert truth.eqtls_df.empty
    assert (truth.topic_tissue_s == "").all()
    assert (truth.covariate_effects_df.to_numpy() == 0).all()
    assert data.counts_df.dtypes.eq(np.int64).all()
    assert not data.genotype_df.isna().any().any()


def test_truth_tables_are_labelled_like_the_data(tiny):
    data, truth = tiny.data, tiny.truth
    assert truth.gene_topics_df.index.equals(data.genes)
    assert truth.sample_topics_df.index.equals(data.samples)
    assert truth.snp_topics_df.index.equals(data.snps)
    assert truth.individual_topics_df.index.equals(data.individuals)
    assert truth.ancestry_beta_df.index.equals(data.snps)
    assert truth.ancestry_tau_df.index.equals(data.individuals)
    assert truth.library_size_s.index.equals(data.samples)
    assert list(truth.gene_topics_df.columns) == list(range(truth.gene_topics_df.shape[1]))
    assert list(truth.topic_tissue_s.index) == list(truth.gene_topics_df.columns)
    assert list(truth.eqtls_df.columns[:5]) == ["snp", "gene", "kind", "effect", "topic"]
    assert set(truth.eqtls_df["snp"]) <= set(data.snps)
    assert set(truth.eqtls_df["gene"]) <= set(data.genes)
    np.testing.assert_allclose(truth.gene_topics_df.sum(axis=0), 1.0)
    np.testing.assert_allclose(truth.sample_topics_df.sum(axis=1), 1.0)
    np.testing.assert_allclose(truth.individual_topics_df.sum(axis=1), 1.0)
    np.testing.assert_allclose(truth.ancestry_tau_df.sum(axis=1), 1.0)


def test_gtex_ids_telescope_back_to_donors(demo):
    data = demo.data
    donors = gtex_donor_ids(data.samples)
    assert (donors.to_numpy() == data.sample_map_s.to_numpy()).all()
    assert data.individuals.str.fullmatch(r"GTEX-[0-9A-Z]{5}").all()
    assert data.samples.str.fullmatch(r"GTEX-[0-9A-Z]{5}-\d{4}-SM-[0-9A-Z]{5}").all()
    assert data.snps.str.fullmatch(r"chr\d+_\d+_[ACGT]_[ACGT]_b38").all()
    assert data.genes.str.fullmatch(r"ENSG\d{11}\.\d+").all()


def test_annotation_is_gtex_like(demo):
    genes, snps = demo.data.gene_info_df, demo.data.snp_info_df
    assert set(genes["chrom"]) == {"chr1", "chr2", "chr3"} == set(snps["chrom"])
    assert set(genes["gene_type"]) == {"protein_coding", "lincRNA"}
    assert 0.15 < (genes["gene_type"] == "lincRNA").mean() < 0.35
    assert (genes["end"] > genes["start"]).all() and set(genes["strand"]) == {"+", "-"}
    for _, pos in snps.groupby("chrom")["pos"]:
        assert pos.is_monotonic_increasing and pos.is_unique
    assert (snps["ref"] != snps["alt"]).all()
    for part, ids in (("chrom", 0), ("pos", 1), ("ref", 2), ("alt", 3)):
        assert (snps[part].astype(str).to_numpy() == snps.index.str.split("_").str[ids].to_numpy()).all()


def test_telescoping_design_is_gtex_like(demo):
    data = demo.data
    info = data.sample_info_df.assign(individual=data.sample_map_s)
    assert not info.duplicated(["individual", "tissue"]).any()  # one sample per tissue per individual
    spi = data.samples_per_individual
    n_tissues = demo.truth.params["n_tissues"]
    assert spi.min() >= 1 and spi.max() <= n_tissues
    assert (spi >= 4).sum() >= 50  # enough individuals to hold out two samples
    sizes = info["tissue"].value_counts()
    assert len(sizes) == n_tissues and sizes.max() > 1.5 * sizes.min()
    assert data.samples_per_individual.sum() == data.counts_df.shape[1] == 600


def test_single_cell_variant():
    sim = simulate(preset="single_cell", seed=0, n_individuals=6, cells_per_donor=40, n_genes=80, n_snps=100)
    data = sim.data
    spi = data.samples_per_individual
    assert spi.min() >= 20 and len(spi) == 6
    assert data.individuals.str.startswith("DONOR-").all()
    assert (data.samples.str.split("_").str[0].to_numpy() == data.sample_map_s.to_numpy()).all()
    assert (data.sample_info_df["cell_type"] == data.sample_info_df["tissue"]).all()
    assert data.sample_info_df["tissue"].nunique() == 4


# ------------------------------------------------------------------- statistics vs parameters
def test_library_sizes_are_the_column_totals_and_log_normal(demo):
    lib = demo.truth.library_size_s
    assert (demo.data.counts_df.sum(axis=0) == lib).all()
    log_lib = np.log(lib.to_numpy(dtype=float))
    median = 500.0 * demo.truth.params["n_genes"]
    assert abs(log_lib.mean() - np.log(median)) < 4 * 0.35 / np.sqrt(len(lib))
    assert abs(log_lib.std() - 0.35) < 0.05


def test_mean_genotype_matches_twice_rho(small):
    rho = _rho(small)
    y = small.data.genotype_df.to_numpy()
    z = (y.sum(axis=1) - 2 * rho.sum(axis=1)) / np.sqrt((2 * rho * (1 - rho)).sum(axis=1))
    assert abs(z.mean()) < 4 / np.sqrt(len(z))
    assert 0.85 < z.std() < 1.15
    # per-call variance of a Binomial(2, rho)
    pearson = ((y - 2 * rho) ** 2 / (2 * rho * (1 - rho))).mean()
    assert abs(pearson - 1) < 0.03


def test_alpha_is_recovered_by_a_moment_estimate(demo):
    t = demo.truth
    ind = demo.data.individuals
    ancestry = t.ancestry_beta_df.to_numpy() @ t.ancestry_tau_df.loc[ind].to_numpy().T
    shared = t.snp_topics_df.to_numpy() @ t.individual_topics_df.loc[ind].to_numpy().T
    half = demo.data.genotype_df.to_numpy() / 2
    ok = ~np.isnan(half)
    # E[y/2] = alpha * A + (1 - alpha) * B  =>  y/2 - B = alpha * (A - B) + noise
    a, b = (ancestry - shared)[ok], (half - shared)[ok]
    alpha_hat = (a @ b) / (a @ a)
    assert abs(alpha_hat - t.alpha) < 0.02


def test_missing_rate(demo):
    missing = demo.data.genotype_df.isna().to_numpy().mean()
    assert abs(missing - 0.02) < 0.003


def test_topic_proportions_per_tissue_match_the_planted_ones(demo):
    """Pooled counts of each tissue, deconvolved on the true psi, give the planted mean proportions."""
    t, data = demo.truth, demo.data
    p = t.params
    n_topics = p["n_topics"]
    tissues = data.sample_info_df["tissue"]
    psi = t.gene_topics_df.to_numpy()
    for k, tissue in t.topic_tissue_s.items():
        if tissue == "":
            continue
        # planted: Dirichlet mean of a sample of this tissue
        conc = np.full(n_topics, p["sigma"])
        specific = t.topic_tissue_s.to_numpy() != ""
        conc[specific] = p["off_tissue_sigma"]
        conc[k] = p["tissue_sigma"]
        planted = conc / conc.sum()
        samples = tissues.index[tissues == tissue]
        shares = data.counts_df[samples] / data.counts_df[samples].sum(axis=0)
        weights, _ = optimize.nnls(psi, shares.mean(axis=1).to_numpy())
        weights /= weights.sum()
        se = np.sqrt(planted * (1 - planted) / (conc.sum() + 1) / len(samples))
        assert weights.argmax() == k
        assert np.all(np.abs(weights - planted) < 5 * se + 0.02), (tissue, weights.round(3), planted.round(3))


def test_pure_counts_follow_the_multinomial(small):
    """Expected counts C_l * (Psi phi_l)_g; Pearson statistic per cell about 1."""
    t, counts = small.truth, small.data.counts_df
    pi = t.sample_topics_df.loc[counts.columns].to_numpy() @ t.gene_topics_df.to_numpy().T  # L x G
    expected = pi.T * counts.sum(axis=0).to_numpy()[None, :]
    keep = expected > 5
    pearson = ((counts.to_numpy() - expected) ** 2 / (expected * (1 - pi.T)))[keep].mean()
    assert abs(pearson - 1) < 0.02


def test_planted_eqtls_are_placed_as_documented(demo):
    eq, genes, snps = demo.truth.eqtls_df, demo.data.gene_info_df, demo.data.snp_info_df
    assert (eq["kind"] == "cis").sum() == 60 and (eq["kind"] == "trans").sum() == 30
    assert eq["gene"].is_unique and eq["snp"].is_unique
    cis, trans = eq[eq["kind"] == "cis"], eq[eq["kind"] == "trans"]
    tss = np.where(genes["strand"] == "+", genes["start"], genes["end"])
    tss_s = pd.Series(tss, index=genes.index)
    assert (snps.loc[cis["snp"], "chrom"].to_numpy() == genes.loc[cis["gene"], "chrom"].to_numpy()).all()
    dist = snps.loc[cis["snp"], "pos"].to_numpy() - tss_s.loc[cis["gene"]].to_numpy()
    assert (np.abs(dist) <= 1e6).all() and (dist == cis["distance"].to_numpy()).all()
    assert (snps.loc[trans["snp"], "chrom"].to_numpy() != genes.loc[trans["gene"], "chrom"].to_numpy()).all()
    assert (cis["topic"] == -1).all() and set(trans["topic"]) <= set(range(12))
    assert cis["effect"].abs().between(0.3, 0.8).all() and trans["effect"].abs().between(0.3, 0.6).all()


def test_trans_eqtls_connect_a_topics_top_snps_and_genes(demo):
    """Recomputed independently: residual of lambda on coded MAF, and psi's gene contrast."""
    t, data = demo.truth, demo.data
    trans = t.eqtls_df[t.eqtls_df["kind"] == "trans"]
    coded_maf = simulate(preset="demo", seed=1, missing_rate=0.0).data.genotype_df.mean(axis=1) / 2
    lam, psi = t.snp_topics_df, t.gene_topics_df
    for row in trans.itertuples():
        fit = stats.linregress(coded_maf.to_numpy(), lam[row.topic].to_numpy())
        resid = np.abs(lam[row.topic] - (fit.intercept + fit.slope * coded_maf))
        assert resid.rank(ascending=False)[row.snp] <= 0.1 * len(resid) + 1
        other = psi.drop(columns=row.topic)
        contrast = other.rsub(psi[row.topic], axis=0).abs().mean(axis=1)
        assert contrast.rank(ascending=False)[row.gene] <= 0.1 * len(contrast) + 1
        assert psi.loc[row.gene, row.topic] > psi.loc[row.gene].mean()
    assert data.snp_info_df.index.equals(lam.index)


def test_planted_effects_are_visible_in_log_cpm_regressions(demo):
    """Slope of log-CPM on dosage (tissue-adjusted OLS over all samples) ~ planted effect."""
    data, eq = demo.data, demo.truth.eqtls_df
    lcpm = _log_cpm(demo)
    tissue = pd.get_dummies(data.sample_info_df["tissue"]).to_numpy(dtype=float)
    slopes = []
    for row in eq.itertuples():
        dosage = data.genotype_df.loc[row.snp, data.sample_map_s.to_numpy()].to_numpy()
        ok = ~np.isnan(dosage)
        design = np.column_stack([dosage[ok], tissue[ok]])
        slopes.append(np.linalg.lstsq(design, lcpm.loc[row.gene].to_numpy()[ok], rcond=None)[0][0])
    slopes = np.array(slopes)
    assert (np.sign(slopes) == np.sign(eq["effect"].to_numpy())).all()
    assert np.corrcoef(slopes, eq["effect"])[0, 1] > 0.95


def test_covariate_effects_are_visible(demo):
    data, effects = demo.data, demo.truth.covariate_effects_df
    lcpm = _log_cpm(demo)
    female = (data.individual_info_df.loc[data.sample_map_s.to_numpy(), "sex"].to_numpy() == 2).astype(float)
    platform = data.sample_info_df["platform"].to_numpy(dtype=float)
    for name, x in (("sex", female), ("platform", platform)):
        hit = effects.index[effects[name] != 0]
        assert 0.05 < len(hit) / len(effects) < 0.15
        slopes = np.array([stats.linregress(x, lcpm.loc[g].to_numpy()).slope for g in hit])
        assert (np.sign(slopes) == np.sign(effects.loc[hit, name].to_numpy())).mean() > 0.9


def test_ancestry_groups_follow_admixture(demo):
    tau, groups = demo.truth.ancestry_tau_df, demo.data.individual_info_df["ancestry"]
    assert set(groups) == {"EUR", "AFR", "EAS"}
    for q, label in enumerate(["EUR", "AFR", "EAS"]):
        indicator = (groups == label).astype(float)
        r = stats.pointbiserialr(indicator, tau.iloc[:, q]).statistic
        assert r > 0.8
    # the shared individual topics carry no ancestry
    theta = demo.truth.individual_topics_df
    r_shared = [abs(stats.pointbiserialr((groups == "EUR").astype(float), theta[k]).statistic) for k in theta]
    assert np.median(r_shared) < 0.15


def test_cell_type_scores_track_their_topic_within_every_tissue(demo):
    t, info = demo.truth, demo.data.sample_info_df
    assert list(t.cell_type_topic_s.index) == ["Fibroblasts", "Adipocytes"]
    assert (t.topic_tissue_s[t.cell_type_topic_s.to_numpy()] == "").all()  # shared topics
    phi = t.sample_topics_df
    for name, k in t.cell_type_topic_s.items():
        for _, group in info.groupby("tissue"):
            tau_own = stats.kendalltau(group[f"celltype_{name}"], phi.loc[group.index, k]).statistic
            other = next(j for j in phi.columns if j != k and t.topic_tissue_s[j] == "")
            tau_other = stats.kendalltau(group[f"celltype_{name}"], phi.loc[group.index, other]).statistic
            assert tau_own > 0.5 and abs(tau_other) < 0.3


def test_individual_sigma_makes_samples_of_one_individual_alike():
    def within_individual_correlation(sim):
        t, data = sim.truth, sim.data
        shared = [k for k in t.topic_tissue_s.index if t.topic_tissue_s[k] == ""]
        phi = t.sample_topics_df[shared]
        phi = phi.div(phi.sum(axis=1), axis=0)
        first = phi.groupby(data.sample_map_s.to_numpy()).nth(0)
        second = phi.groupby(data.sample_map_s.to_numpy()).nth(1)
        first.index = data.sample_map_s[first.index].to_numpy()
        second.index = data.sample_map_s[second.index].to_numpy()
        both = first.index.intersection(second.index)
        return np.mean([stats.pearsonr(first.loc[both, k], second.loc[both, k]).statistic for k in shared])

    base = simulate(preset="demo", seed=2)
    linked = simulate(preset="demo", seed=2, individual_sigma=3.0)
    assert abs(within_individual_correlation(base)) < 0.1
    assert within_individual_correlation(linked) > 0.4
    pd.testing.assert_frame_equal(base.truth.gene_topics_df, linked.truth.gene_topics_df)
    assert linked.truth.params["individual_sigma"] == 3.0


def test_overdispersion_noise_is_opt_in():
    base = simulate(preset="tiny", seed=5)
    noisy = simulate(preset="tiny", seed=5, expression_noise_sd=0.5)
    pd.testing.assert_frame_equal(base.truth.gene_topics_df, noisy.truth.gene_topics_df)
    assert not base.data.counts_df.equals(noisy.data.counts_df)
    assert base.truth.params["expression_noise_sd"] == 0.0


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("overrides", "match"), [
    ({"n_gens": 10}, "n_gens"),
    ({"n_samples": 10}, "n_samples"),
    ({"n_samples": 10_000}, "one sample per tissue"),
    ({"alpha": 1.5}, "alpha"),
    ({"n_topics": 4}, "n_topics"),
    ({"n_cis": 500}, "cis-eQTLs"),
    ({"n_chromosomes": 1}, "two chromosomes"),
    ({"n_tissues": 100}, "n_tissues"),
    ({"missing_rate": 1.0}, "missing_rate"),
    ({"cells_per_donor": 10, "n_samples": 50}, "not both"),
])
def test_bad_parameters_are_input_errors(overrides, match):
    with pytest.raises(InputError, match=match):
        simulate(preset="tiny", **overrides)


def test_unknown_preset_is_an_input_error():
    with pytest.raises(InputError, match="nosuch"):
        simulate(preset="nosuch")


def test_presets_are_all_listed():
    assert {"tiny", "small", "demo", "chromosome", "single_cell"} <= set(PRESETS)


@pytest.mark.slow
def test_chromosome_preset_size():
    sim = simulate(preset="chromosome", seed=0)
    assert sim.data.counts_df.shape == (1000, 5000)
    assert sim.data.genotype_df.shape == (10000, 800)
    assert len(sim.truth.eqtls_df) == 300
