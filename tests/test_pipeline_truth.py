"""The pipeline on a simulated GTEx-like data set with planted truth (issue 5, done-when).

Several tissues with one planted tissue-specific topic each, shared topics, planted cis- and
trans-eQTLs, a private ancestry subspace (the simulation's beta and tau given as the precomputed
ancestry, as the paper used terastructure's output). Every chromosome pair of a 3 x 3 grid is
fitted; the test checks that

- every tissue has an associated factor in every run, and it is the fitted factor that matches the
  tissue's planted topic;
- ancestry is carried by the private subspace: median |point-biserial r| of the shared factors
  (theta) with the reported groups < 0.1, and every private factor (tau) has |r| > 0.4 with some group;
- robust components recur: for every chromosome, a gene-loading component has members from every
  run that shares the chromosome.

The paper's power argument for factor-restricted mapping is tested in
``test_pipeline_mapping.py`` (with the true topics ranked by the paper's rules).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tbeqtl.layout import RunLayout
from tbeqtl.pipeline import PipelineConfig, run_pipeline
from tbeqtl.tblda.io import read_topic_table

pytestmark = pytest.mark.slow

SIM = {"preset": "demo", "seed": 4, "n_individuals": 200, "n_samples": 800, "n_tissues": 4, "n_topics": 8,
       "n_genes": 240, "n_snps": 600, "n_chromosomes": 3, "n_cis": 20, "n_trans": 30}


@pytest.fixture(scope="module")
def truth_run(tmp_path_factory):
    from tbeqtl.simulate import simulate

    root = tmp_path_factory.mktemp("truth")
    sim = simulate(**SIM)
    sim.write(root / "sim")
    config = PipelineConfig.preset(
        "demo", data={"path": str(root / "sim")}, fit={"n_topics": 8, "max_steps": 400},
        mapping={"factor_sets": ["all"], "exhaustive": False}, run={"workers": 0})
    status = run_pipeline(config, out_dir=root / "out")
    return sim, RunLayout(root / "out"), status


def test_every_pair_finishes(truth_run):
    _, _, status = truth_run
    assert len(status) == 9
    assert (status["status"] == "done").all(), status


def test_tissue_specific_factors_found_for_every_tissue(truth_run):
    sim, layout, status = truth_run
    assoc = pd.read_parquet(layout.summary / "tissue_factors.parquet")
    tissues = sorted(sim.data.sample_info_df["tissue"].unique())
    topic_tissue = sim.truth.topic_tissue_s
    for pair in status["pair"]:
        found = assoc[(assoc["pair"] == pair) & assoc["associated"]]
        assert set(found["tissue"]) == set(tissues), pair
        gene_chrom, snp_chrom = pair.split("__")
        phi = read_topic_table(layout.pair(gene_chrom, snp_chrom).fit / "sample_topics.tsv")
        true_phi = sim.truth.sample_topics_df.loc[phi.index]
        for tissue in tissues:
            k_true = int(topic_tissue.index[topic_tissue == tissue][0])
            corr = [np.corrcoef(true_phi[k_true], phi[k])[0, 1] for k in phi.columns]
            best = int(np.argmax(corr))
            assert corr[best] > 0.8
            assert best in set(found.loc[found["tissue"] == tissue, "topic"]), (pair, tissue)


def test_ancestry_is_carried_by_the_private_subspace(truth_run):
    _, layout, _ = truth_run
    summary = json.loads((layout.summary / "factor_summary.json").read_text())["ancestry"]
    assert summary["shared_median_abs_r"] < 0.1
    assert summary["private_min_max_abs_r"] > 0.4
    table = pd.read_parquet(layout.summary / "ancestry.parquet")
    shared = table.loc[table["kind"] == "shared", "r"].abs()
    assert shared.median() == pytest.approx(summary["shared_median_abs_r"])


def test_robust_components_recur_across_runs(truth_run):
    _, layout, status = truth_run
    members = pd.read_csv(layout.robust / "components.tsv", sep="\t")
    genes = members[members["kind"] == "gene"]
    for chrom in sorted(status["gene_chrom"].unique()):
        runs = set(status.loc[status["gene_chrom"] == chrom, "pair"])
        per_component = genes[genes["chrom"] == chrom].groupby("component")["run"].agg(set)
        assert any(r == runs for r in per_component), chrom
    run = json.loads(layout.run_json.read_text())
    assert run["summary"]["robust"]["tissue_gene_set_sizes"]
