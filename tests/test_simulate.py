"""Tests of the simulator: determinism, shapes, ID structure and planted truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tbeqtl.errors import InputError
from tbeqtl.simulate import PRESETS, Simulation, simulate


@pytest.fixture(scope="module")
def tiny() -> Simulation:
    return simulate(preset="tiny", seed=3)


@pytest.fixture(scope="module")
def small() -> Simulation:
    return simulate(preset="small", seed=0)


def _assert_same(a: Simulation, b: Simulation) -> None:
    assert a.data.equals(b.data)
    pd.testing.assert_frame_equal(a.data.sample_info_df, b.data.sample_info_df)
    pd.testing.assert_frame_equal(a.data.individual_info_df, b.data.individual_info_df)
    pd.testing.assert_frame_equal(a.data.gene_info_df, b.data.gene_info_df)
    pd.testing.assert_frame_equal(a.data.snp_info_df, b.data.snp_info_df)
    for name in ("gene_topics_df", "sample_topics_df", "individual_topics_df", "snp_topics_df",
                 "ancestry_beta_df", "ancestry_tau_df", "eqtls_df", "covariate_effects_df"):
        pd.testing.assert_frame_equal(getattr(a.truth, name), getattr(b.truth, name))
    pd.testing.assert_series_equal(a.truth.topic_tissue_s, b.truth.topic_tissue_s)


def test_same_seed_gives_identical_data_and_truth(tiny):
    _assert_same(tiny, simulate(preset="tiny", seed=3))


def test_different_seeds_differ(tiny):
    other = simulate(preset="tiny", seed=4)
    assert not tiny.data.counts_df.equals(other.data.counts_df)
    assert list(tiny.data.individuals) != list(other.data.individuals)


def test_global_numpy_state_is_not_used(tiny):
    np.random.seed(12345)  # noqa: NPY002 - checking that the global RNG has no influence
    _assert_same(tiny, simulate(preset="tiny", seed=3))


def test_small_preset_has_the_tblda_test_sizes(small):
    data, truth = small.data, small.truth
    assert data.counts_df.shape == (200, 300)
    assert data.genotype_df.shape == (500, 100)
    assert truth.gene_topics_df.shape == (200, 10)
    assert truth.sample_topics_df.shape == (300, 10)
    assert truth.snp_topics_df.shape == (500, 10)
    assert truth.ancestry_beta_df.shape == (500, 3)
    assert truth.ancestry_tau_df.shape == (100, 3)
    assert truth.alpha == 0.3
    assert truth.eqtls_df.empty
    assert (truth.topic_tissue_s == "").all()
    assert (truth.covariate_effects_df.to_numpy() == 0).all()
    assert data.counts_df.dtypes.eq(np.int64).all()


def test_truth_tables_are_labelled_like_the_data(tiny):
    data, truth = tiny.data, tiny.truth
    assert truth.gene_topics_df.index.equals(data.genes)
    assert truth.sample_topics_df.index.equals(data.samples)
    assert truth.snp_topics_df.index.equals(data.snps)
    assert truth.individual_topics_df.index.equals(data.individuals)
    assert truth.ancestry_beta_df.index.equals(data.snps)
    assert truth.ancestry_tau_df.index.equals(data.individuals)
    assert set(truth.eqtls_df.columns) >= {"snp", "gene", "kind", "effect", "topic"}
    assert set(truth.eqtls_df["snp"]) <= set(data.snps)
    assert set(truth.eqtls_df["gene"]) <= set(data.genes)
    np.testing.assert_allclose(truth.gene_topics_df.sum(axis=0), 1.0)
    np.testing.assert_allclose(truth.sample_topics_df.sum(axis=1), 1.0)
    np.testing.assert_allclose(truth.ancestry_tau_df.sum(axis=1), 1.0)


def test_unknown_preset_and_parameter_are_input_errors():
    with pytest.raises(InputError, match="nosuch"):
        simulate(preset="nosuch")
    with pytest.raises(InputError, match="n_gens"):
        simulate(preset="tiny", n_gens=10)
    with pytest.raises(InputError, match="n_samples"):
        simulate(preset="tiny", n_samples=10)


def test_presets_are_all_listed():
    assert {"tiny", "small", "demo", "chromosome", "single_cell"} <= set(PRESETS)
