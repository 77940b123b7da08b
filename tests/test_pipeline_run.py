"""End-to-end pipeline runs in this process (no Dask): outputs, resume, failures and bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from tbeqtl.cli import main
from tbeqtl.errors import InputError
from tbeqtl.layout import RunLayout
from tbeqtl.pipeline import PipelineConfig, orchestrate, run_pipeline
from tbeqtl.schema import validate_table

SIM = {"preset": "tiny", "seed": 1, "n_individuals": 120, "n_samples": 420, "n_tissues": 4, "n_genes": 80,
       "n_snps": 200}
MAP_FAST = {"tissues": ["Whole Blood", "Muscle - Skeletal"]}


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    from tbeqtl.simulate import simulate

    out = tmp_path_factory.mktemp("sim")
    simulate(**SIM).write(out)
    return out


@pytest.fixture(scope="module")
def finished_run(sim_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    config = PipelineConfig.preset("test", data={"path": str(sim_dir), "all_pairs": False,
                                                 "pairs": ["chr1:chr2", "chr2:chr2", "chr1:chr7"]},
                                   mapping=MAP_FAST)
    status = run_pipeline(config, out_dir=out)
    return config, out, status


def test_run_writes_the_layout_and_summary_tables(finished_run):
    config, out, status = finished_run
    layout = RunLayout(out)
    assert status.set_index("pair")["status"].to_dict() == {
        "chr1__chr2": "done", "chr2__chr2": "done", "chr1__chr7": "skipped"}
    assert "no SNPs on chr7" in status.set_index("pair").loc["chr1__chr7", "message"]
    pair = layout.pair("chr1", "chr2")
    assert json.loads(pair.status.read_text()) == {s: "done" for s in (*orchestrate._STAGES, "pair")}
    holdout = pd.read_csv(pair.holdout, sep="\t")
    assert holdout["held_out"].sum() > 0
    for name in ("run.json", "gene_topics.tsv", "sample_topics.tsv", "snp_topics.tsv", "elbo.tsv"):
        assert (pair.fit / name).exists()
    # the fit used the fit samples only
    fitted = pd.read_csv(pair.fit / "sample_topics.tsv", sep="\t", index_col=0).index
    assert not set(fitted) & set(holdout.loc[holdout["held_out"], "sample"])
    assert pair.ranking.exists()
    for name in ("tissue_association", "ancestry", "cell_types", "covariate_factors"):
        assert (pair.factors / f"{name}.tsv").exists()
    for factor_set in ("all", "tissue", "general", "exhaustive"):
        for tissue in MAP_FAST["tissues"]:
            folder = pair.eqtl(factor_set, tissue)
            for name in ("cis.tsv", "trans.tsv", "qq.tsv", "hist.tsv", "run.json", "calls.tsv",
                         "candidates.parquet"):
                assert (folder / name).exists(), folder / name
    summary = {
        "tissue_factors.parquet": "tissue_factors", "ancestry.parquet": "ancestry_factors",
        "cell_types.parquet": "cell_type_factors", "covariate_factors.parquet": "covariate_factors",
        "eqtls.parquet": "pipeline_eqtls", "qq.parquet": "permutation_qq"}
    for filename, schema in summary.items():
        table = pd.read_parquet(layout.summary / filename)
        validate_table(table, schema)
        assert set(table["pair"]) <= {"chr1__chr2", "chr2__chr2"}
    counts = pd.read_csv(layout.summary / "eqtl_counts.tsv", sep="\t")
    validate_table(counts, "eqtl_counts")
    eqtls = pd.read_parquet(layout.summary / "eqtls.parquet")
    eqtls = eqtls[eqtls["called_run"]]  # the per-run calls (the rest are called only genome-wide)
    for (fs, tissue, klass), group in eqtls.groupby(["factor_set", "tissue", "class"]):
        row = counts[(counts.factor_set == fs) & (counts.tissue == tissue) & (counts["class"] == klass)
                     & (counts.gene_type == "all")].iloc[0]
        assert row.n_eqtls == len(group.drop_duplicates(["snp", "gene"]))
        assert row.n_egenes == group["gene"].nunique()
    assert (eqtls["fdr_by_type"] < 0.1).all()
    validate_table(pd.read_csv(layout.robust / "components.tsv", sep="\t"), "robust_members")
    assert (layout.robust / "tissue_genes.tsv").exists()
    run = json.loads(layout.run_json.read_text())
    assert run["pairs"]["chr1__chr7"]["status"] == "skipped"
    assert run["holdout"]["n_held_out"] == int(holdout["held_out"].sum())
    assert run["input_checksums"] and run["versions"]["tbeqtl"]
    assert PipelineConfig.from_toml(layout.config) == config
    assert "provenance" in layout.config.read_text()


def test_gather_writes_what_the_report_draws(finished_run, sim_dir):
    """summary/ holds the report's input-derived tables, so the report never reads the inputs."""
    from tbeqtl.io import read_dataset
    from tbeqtl.pipeline.report_tables import counted_calls
    from tbeqtl.pipeline.robust import maf_residuals

    config, out, _ = finished_run
    layout = RunLayout(out)
    data = read_dataset(sim_dir)
    tissues = validate_table(pd.read_csv(layout.sample_tissues, sep="\t", dtype=str), "sample_tissues")
    expected = data.sample_info_df["tissue"].astype(str).to_dict()
    assert tissues.set_index("sample")["tissue"].to_dict() == expected
    for name in ("chr1__chr2", "chr2__chr2"):  # plumbing: the robust step's own residuals
        loadings = pd.read_csv(layout.pair(*name.split("__")).fit / "snp_topics.tsv", sep="\t", index_col=0)
        loadings.index = loadings.index.astype(str)
        pd.testing.assert_frame_equal(pd.read_parquet(layout.maf_residuals(name)),
                                      maf_residuals(loadings, data.genotype_df))
    assert not layout.maf_residuals("chr1__chr7").exists()
    locus = json.loads(layout.locus.read_text())["locus"]
    calls = counted_calls(pd.read_parquet(layout.summary / "eqtls.parquet"), level=config.mapping.fdr)
    trans = calls[(calls["class"] == "trans") & (calls["factor_set"] != "exhaustive")]
    assert len(trans), "the test run should call trans-eQTLs"
    n_genes = trans.groupby(["pair", "factor_set", "tissue", "snp"])["gene"].nunique()
    assert len(locus["genes"]) == n_genes.max()
    assert n_genes[(locus["pair"], locus["factor_set"], locus["tissue"], locus["snp"])] == n_genes.max()
    expr = pd.read_parquet(layout.locus_expression)
    genotype = validate_table(pd.read_csv(layout.locus_genotype, sep="\t", dtype={"sample": str}),
                              "locus_genotype")
    assert list(expr.index) == locus["genes"] and list(expr.columns) == list(genotype["sample"])
    assert (data.sample_info_df.loc[genotype["sample"], "tissue"] == locus["tissue"]).all()
    assert data.sample_map_s[genotype["sample"]].is_unique
    individuals = data.sample_map_s[genotype["sample"]].to_numpy()
    assert np.array_equal(genotype["dosage"].to_numpy(),
                          data.genotype_df.loc[locus["snp"], individuals].to_numpy(float))
    assert np.allclose(expr.mean(axis=1), 0, atol=1e-9)

def test_gathered_genome_wide_fdr(finished_run, tmp_path):
    """fdr_genome in summary/eqtls.parquet is BH over each family pooled across the pairs (reference:
    statsmodels on the candidates padded with p = 1 up to the summed n_tests of run.json; the padding
    stands for the tests with p above the level, which cannot change values at or below it)."""
    import shutil

    from statsmodels.stats.multitest import multipletests

    from tbeqtl.association.result import gene_type_group

    config, out, _ = finished_run
    layout = RunLayout(out)
    level = config.mapping.fdr
    cands, counts = [], {}
    for pair_name in ("chr1__chr2", "chr2__chr2"):
        pair = layout.pair(*pair_name.split("__"))
        for folder in sorted((pair.root / "eqtl").glob("*/*")):
            meta = json.loads((folder / "run.json").read_text())
            table = validate_table(pd.read_parquet(folder / "candidates.parquet"), "pipeline_candidates")
            assert (table["p_value"] <= level).all()
            # every written test with p <= level is a candidate (cis.tsv / trans.tsv: p <= 0.05)
            for klass in ("cis", "trans"):
                written = pd.read_csv(folder / f"{klass}.tsv", sep="\t", dtype={"snp": str, "gene": str})
                written = written[written["p_value"] <= level]
                assert set(zip(written.snp, written.gene, strict=True)) <= set(
                    zip(table.snp[table["class"] == klass], table.gene[table["class"] == klass], strict=True))
            fs, tissue = folder.parent.name, meta["tissue"]
            if fs == "exhaustive":  # the candidates go past output_pvalue (0.05) up to the level
                assert (table["p_value"] > config.mapping.output_pvalue).any()
            else:  # all of them: as many as the histogram of every test has below the level
                hist = pd.read_csv(folder / "hist.tsv", sep="\t")
                for klass in ("cis", "trans"):
                    below = hist[(hist["pool"] == klass) & (hist["bin_hi"] <= level + 1e-12)]
                    assert (table["class"] == klass).sum() == below["count"].sum()
            if len(table):
                cands.append(table.assign(pair=pair_name, factor_set=fs, tissue=tissue))
            for key, n in meta["n_tests"].items():
                if ":" in key:
                    family = (fs, tissue, *key.split(":", 1))
                    counts[family] = counts.get(family, 0) + int(n)
    cands = pd.concat(cands, ignore_index=True)
    cands["family_type"] = cands["gene_type"].map(gene_type_group)
    expected = pd.Series(np.nan, index=cands.index)
    for family, group in cands.groupby(["factor_set", "tissue", "class", "family_type"]):
        padded = np.concatenate([group["p_value"], np.ones(counts[family] - len(group))])
        ref = multipletests(padded, method="fdr_bh")[1][:len(group)]
        expected[group.index] = np.where(ref <= level, ref, np.nan)
    key = ["pair", "factor_set", "tissue", "class", "snp", "gene"]
    eqtls = pd.read_parquet(layout.summary / "eqtls.parquet")
    assert eqtls["called_run"].dtype == bool and not eqtls.duplicated(key).any()
    merged = eqtls.merge(cands.assign(expected=expected)[[*key, "expected"]], on=key, how="left",
                         validate="one_to_one")
    np.testing.assert_allclose(merged["fdr_genome"], merged["expected"], rtol=1e-10)
    called_genome = set(map(tuple, cands.loc[expected < level, key].to_numpy()))
    assert called_genome <= set(map(tuple, eqtls[key].to_numpy()))
    extra = eqtls[~eqtls["called_run"]]
    assert (extra["fdr_genome"] < level).all() and (extra["fdr_by_type"] >= level).all()
    summary = pd.read_csv(layout.summary / "eqtl_counts.tsv", sep="\t")
    genome = eqtls[eqtls["fdr_genome"] < level]
    for (fs, tissue, klass), row in summary[summary.gene_type == "all"].set_index(
            ["factor_set", "tissue", "class"]).iterrows():
        part = genome[(genome.factor_set == fs) & (genome["class"] == klass)
                      & ((genome.tissue == tissue) | (tissue == "all"))]
        assert row.n_eqtls_genome == len(part)
        assert row.n_egenes_genome == part["gene"].nunique()

    # a run folder whose pairs have no candidates (an older tbeqtl) gathers without the column
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    for path in (copy / "pairs").rglob("candidates.parquet"):
        path.unlink()
    run_pipeline(config, out_dir=copy)
    old = pd.read_parquet(RunLayout(copy).summary / "eqtls.parquet")
    assert "fdr_genome" not in old.columns and "called_run" not in old.columns
    assert len(old) == int(eqtls["called_run"].sum())
    assert "n_eqtls_genome" not in pd.read_csv(RunLayout(copy).summary / "eqtl_counts.tsv", sep="\t")


def test_genome_wide_fdr_against_statsmodels_on_every_test(sim_dir, tmp_path):
    """With output_pvalue = 1 the pairs write every test: fdr_genome is statsmodels' BH on the
    concatenated p-values of each family over the pairs, and the genome-wide list is complete."""
    from statsmodels.stats.multitest import multipletests

    from tbeqtl.association.result import gene_type_group

    pairs = ["chr1:chr2", "chr2:chr2", "chr2:chr1"]
    config = PipelineConfig.preset("test", data={"path": str(sim_dir), "all_pairs": False, "pairs": pairs},
                                   mapping={"tissues": ["Whole Blood"], "output_pvalue": 1.0,
                                            "n_permutations": 0})
    run_pipeline(config, out_dir=tmp_path)
    layout = RunLayout(tmp_path)
    level = config.mapping.fdr
    tests = []
    for pair_name in ("chr1__chr2", "chr2__chr2", "chr2__chr1"):
        for folder in sorted((layout.pair(*pair_name.split("__")).root / "eqtl").glob("*/*")):
            meta = json.loads((folder / "run.json").read_text())
            for klass in ("cis", "trans"):
                table = pd.read_csv(folder / f"{klass}.tsv", sep="\t", dtype={"snp": str, "gene": str})
                assert len(table) == meta["n_tests"][klass]  # every test is written
                if len(table):
                    tests.append(table.assign(**{"pair": pair_name, "factor_set": folder.parent.name,
                                                 "tissue": meta["tissue"], "class": klass}))
    tests = pd.concat(tests, ignore_index=True)
    tests["family_type"] = tests["gene_type"].map(gene_type_group)
    ref = pd.Series(np.nan, index=tests.index)
    for _, group in tests.groupby(["factor_set", "tissue", "class", "family_type"]):
        ref[group.index] = multipletests(group["p_value"].to_numpy(), method="fdr_bh")[1]
    key = ["pair", "factor_set", "tissue", "class", "snp", "gene"]
    eqtls = pd.read_parquet(layout.summary / "eqtls.parquet")
    merged = eqtls.merge(tests.assign(ref=ref)[[*key, "ref"]], on=key, how="left", validate="one_to_one")
    assert merged["ref"].notna().all()
    exact = merged["ref"] <= level
    np.testing.assert_allclose(merged.loc[exact, "fdr_genome"], merged.loc[exact, "ref"], rtol=1e-10)
    assert merged.loc[~exact, "fdr_genome"].isna().all()
    expected = set(map(tuple, tests.loc[ref < level, key].to_numpy()))
    assert set(map(tuple, eqtls.loc[eqtls["fdr_genome"] < level, key].to_numpy())) == expected
    assert len(expected) >= 10


def test_rerun_skips_finished_pairs(finished_run):
    config, out, _ = finished_run
    fit_json = RunLayout(out).pair("chr1", "chr2").fit / "run.json"
    before = fit_json.stat().st_mtime_ns
    status = run_pipeline(config, out_dir=out)
    assert fit_json.stat().st_mtime_ns == before
    assert status.set_index("pair").loc["chr1__chr2", "seconds"] == 0.0
    run = json.loads(RunLayout(out).run_json.read_text())
    assert run["pairs"]["chr1__chr2"]["reused"] is True


def test_rerun_with_other_settings_is_refused(finished_run):
    config, out, _ = finished_run
    with pytest.raises(InputError, match="fit.max_steps"):
        run_pipeline(config.replace(fit={"max_steps": 61}), out_dir=out)


def test_interrupted_pair_resumes_remaining_stages(finished_run, tmp_path):
    """A pair whose status stops after the fit redoes only ranking, factors and mapping."""
    import shutil

    config, out, _ = finished_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    pair = RunLayout(copy).pair("chr2", "chr2")
    status = json.loads(pair.status.read_text())
    for stage in ("ranking", "factors", "eqtl", "pair"):
        status.pop(stage)
    pair.status.write_text(json.dumps(status))
    shutil.rmtree(pair.root / "eqtl")
    fit_mtime = (pair.fit / "run.json").stat().st_mtime_ns
    result = run_pipeline(config, out_dir=copy)
    assert result.set_index("pair").loc["chr2__chr2", "status"] == "done"
    assert (pair.fit / "run.json").stat().st_mtime_ns == fit_mtime
    assert (pair.eqtl("all", "Whole Blood") / "cis.tsv").exists()


def test_failed_pair_does_not_stop_the_others(sim_dir, tmp_path, monkeypatch):
    original = orchestrate._eqtl_stage

    def flaky(ctx, layout, *args, **kwargs):
        if layout.name == "chr1__chr1":
            raise RuntimeError("boom in chr1__chr1")
        return original(ctx, layout, *args, **kwargs)

    monkeypatch.setattr(orchestrate, "_eqtl_stage", flaky)
    config = PipelineConfig.preset("test", data={"path": str(sim_dir), "all_pairs": False,
                                                 "pairs": ["chr1:chr1", "chr2:chr1"]},
                                   mapping={"tissues": ["Whole Blood"], "factor_sets": ["all"],
                                            "exhaustive": False})
    status = run_pipeline(config, out_dir=tmp_path).set_index("pair")
    assert status.loc["chr1__chr1", "status"] == "failed"
    assert "boom in chr1__chr1" in status.loc["chr1__chr1", "message"]
    assert status.loc["chr2__chr1", "status"] == "done"
    pair_status = json.loads(RunLayout(tmp_path).pair("chr1", "chr1").status.read_text())
    assert pair_status["pair"].startswith("failed: RuntimeError: boom")
    assert pair_status["fit"] == "done"


def test_tissue_with_too_few_held_out_samples_is_named(tmp_path):
    from tbeqtl.simulate import simulate

    sim = simulate(preset="tiny", seed=1)
    config = PipelineConfig.preset("test", data={"all_pairs": True}, mapping={"min_samples": 0})
    with pytest.raises(InputError, match=r"Whole Blood \(\d+ held-out samples, \d+ covariates\)"):
        run_pipeline(config.replace(data={"ancestry_beta": "", "ancestry_tau": ""}), out_dir=tmp_path,
                     data=sim.data)
    assert not (tmp_path / "pairs").exists()


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    config = PipelineConfig.preset("test", run={"connect_timeout": 2.0})
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run_pipeline(config, out_dir=tmp_path, scheduler="tcp://127.0.0.1:9")


def test_cli_run_with_config_file(sim_dir, tmp_path):
    config = PipelineConfig.preset("test", data={"path": str(sim_dir), "all_pairs": False},
                                   mapping={"tissues": ["Whole Blood"], "factor_sets": ["general"],
                                            "exhaustive": False})
    config.write(tmp_path / "run.toml")
    out = tmp_path / "out"
    argv = ["run", "--config", str(tmp_path / "run.toml"), "--pairs", "chr2:chr1", "--out", str(out)]
    assert main(argv) == 0
    assert (out / "tbeqtl.log").exists()
    written = PipelineConfig.from_toml(out / "config.toml")
    assert written.pair_list == [("chr2", "chr1")]
    assert (RunLayout(out).pair("chr2", "chr1").eqtl("general", "Whole Blood") / "calls.tsv").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text("[fit]\nmax_step = 3\n")
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "bad")]) == 2
    assert os.path.exists(tmp_path / "bad" / "tbeqtl.log")


def test_pair_with_no_features_after_filtering_is_skipped(sim_dir, tmp_path):
    from tbeqtl.io import read_dataset
    from tbeqtl.pipeline import holdout as hold

    data = read_dataset(sim_dir)
    config = PipelineConfig.preset("test", data={"path": str(sim_dir), "all_pairs": False,
                                                 "pairs": ["chr2:chr1"]},
                                   mapping={"tissues": ["Whole Blood"]})
    design = hold.holdout_design(data.sample_map_s, seed=config.holdout.seed)
    counts = data.counts_df.copy()
    chr2 = data.gene_info_df.index[data.gene_info_df["chrom"] == "chr2"]
    counts.loc[chr2, hold.fit_samples(design)] = 0  # reads only in held-out samples
    status = run_pipeline(config, out_dir=tmp_path, data=data.replace(counts_df=counts)).set_index("pair")
    assert status.loc["chr2__chr1", "status"] == "skipped"
    assert "no gene with reads" in status.loc["chr2__chr1", "message"]
