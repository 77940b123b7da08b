"""Held-out design by whole individuals (``holdout.unit = "individuals"``): design, config, pipeline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tbeqtl.errors import InputError
from tbeqtl.layout import RunLayout
from tbeqtl.pipeline import PipelineConfig, run_pipeline
from tbeqtl.pipeline import holdout as hold
from tbeqtl.schema import validate_table


def test_individual_design_holds_out_whole_individuals(rng, make_sample_map):
    smap = make_sample_map(rng, 200)
    design = hold.holdout_design(smap, seed=3, unit="individuals", fraction=0.3)
    validate_table(design, "holdout")
    assert list(design.columns) == ["sample", "individual", "held_out"]
    assert list(design["sample"]) == sorted(smap.index)
    per_individual = design.groupby("individual")["held_out"].agg(["all", "any"])
    assert (per_individual["all"] == per_individual["any"]).all()  # all or none of an individual's samples
    assert int(per_individual["all"].sum()) == round(0.3 * smap.nunique())
    # individuals with fewer than min_samples samples can be held out too (min_samples is not used)
    counts = smap.value_counts()
    assert per_individual.loc[counts.index[counts < 4], "all"].any()
    assert len(hold.fit_samples(design)) + len(hold.holdout_samples(design)) == len(smap)
    fit_individuals = set(smap.reindex(hold.fit_samples(design)))
    assert not fit_individuals & set(smap.reindex(hold.holdout_samples(design)))


def test_individual_design_is_seeded_and_order_independent(rng, make_sample_map):
    smap = make_sample_map(rng, 200)
    design = hold.holdout_design(smap, seed=3, unit="individuals", fraction=0.25)
    shuffled = smap.sample(frac=1.0, random_state=1)
    assert design.equals(hold.holdout_design(shuffled, seed=3, unit="individuals", fraction=0.25))
    assert not design.equals(hold.holdout_design(smap, seed=4, unit="individuals", fraction=0.25))
    # a larger fraction keeps every individual of a smaller one (same per-individual keys)
    small = set(design.loc[design["held_out"], "individual"])
    large = hold.holdout_design(smap, seed=3, unit="individuals", fraction=0.5)
    assert small < set(large.loc[large["held_out"], "individual"])
    # the default unit is the paper's design, unchanged by the new arguments' defaults
    assert hold.holdout_design(smap, seed=3).equals(hold.holdout_design(smap, seed=3, unit="samples",
                                                                        fraction=0.9))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"unit": "tissues"}, "unit"),
    ({"unit": "individuals", "fraction": 0.0}, "fraction"),
    ({"unit": "individuals", "fraction": 1.0}, "fraction"),
])
def test_individual_design_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        hold.holdout_design(pd.Series({"a": "x", "b": "y"}), **kwargs)
    with pytest.raises(InputError, match="leaves none"):
        hold.holdout_design(pd.Series({"a": "x", "b": "y"}), unit="individuals", fraction=0.8)


def test_holdout_config_round_trip(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[holdout]\nunit = "individuals"\nfraction = 0.3\nseed = 2\n')
    config = PipelineConfig.from_toml(path)
    assert (config.holdout.unit, config.holdout.fraction, config.holdout.seed) == ("individuals", 0.3, 2)
    config.write(tmp_path / "back.toml")
    assert PipelineConfig.from_toml(tmp_path / "back.toml") == config
    assert PipelineConfig().holdout.unit == "samples"
    for text, match in (('[holdout]\nunit = "tissue"\n', "tissue"),
                        ("[holdout]\nfraction = 1.5\n", "fraction"),
                        ('[holdout]\nfraction = "a"\n', "holdout.fraction")):
        path.write_text(text)
        with pytest.raises(InputError, match=match):
            PipelineConfig.from_toml(path)


def test_pipeline_fits_without_the_held_out_individuals(tmp_path):
    """The fit sees neither the samples nor the genotypes of the held-out individuals; the tests use
    one held-out sample per individual of the tissue, with that individual's genotypes."""
    from tbeqtl.simulate import simulate

    sim = simulate(preset="tiny", seed=1, n_individuals=120, n_samples=420, n_tissues=4, n_genes=60,
                   n_snps=120)
    sim.write(tmp_path / "sim")
    tissue = "Whole Blood"
    config = PipelineConfig.preset("test", data={"path": str(tmp_path / "sim"), "all_pairs": False,
                                                 "pairs": ["chr1:chr2"]},
                                   holdout={"unit": "individuals", "fraction": 0.4},
                                   mapping={"tissues": [tissue], "exhaustive": False, "factor_sets": ["all"],
                                            "n_permutations": 0},
                                   fit={"max_steps": 20})
    status = run_pipeline(config, out_dir=tmp_path / "out")
    assert (status["status"] == "done").all(), status
    layout = RunLayout(tmp_path / "out")
    pair = layout.pair("chr1", "chr2")
    design = pd.read_csv(pair.holdout, sep="\t", dtype={"sample": str, "individual": str})
    held_individuals = set(design.loc[design["held_out"], "individual"])
    assert len(held_individuals) == round(0.4 * sim.data.sample_map_s.nunique())
    def ids(name: str) -> set[str]:
        return set(pd.read_csv(pair.fit / name, sep="\t", index_col=0).index.astype(str))

    fitted_individuals, fitted_samples = ids("individual_topics.tsv"), ids("sample_topics.tsv")
    assert fitted_individuals and not fitted_individuals & held_individuals
    assert fitted_samples == set(design.loc[~design["held_out"], "sample"])
    meta = json.loads(pair.eqtl("all", tissue).joinpath("run.json").read_text())
    tissue_s = sim.data.sample_info_df["tissue"]
    in_tissue = design[design["held_out"] & (tissue_s.reindex(design["sample"]) == tissue).to_numpy()]
    assert meta["n_samples"] == in_tissue["individual"].nunique() > 0
    run = json.loads(layout.run_json.read_text())
    assert run["holdout"]["unit"] == "individuals" and run["holdout"]["fraction"] == 0.4
    assert run["holdout"]["n_individuals_held_out"] == len(held_individuals)
    assert run["holdout"]["n_individuals_fit"] + len(held_individuals) == sim.data.sample_map_s.nunique()
    assert np.isclose(PipelineConfig.from_toml(layout.config).holdout.fraction, 0.4)
