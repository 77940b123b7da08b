"""Scale-out without broadcasting the data: small pair context, pairs read their own partitions only.

References: pickled sizes measured directly; counts per million computed by numpy from the full count
matrix; the partitions a pair reads recorded by wrapping the prepared folder's readers; a run on a
prepared folder compared with a run on the data set folder it was written from.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from tbeqtl.errors import InputError
from tbeqtl.layout import RunLayout
from tbeqtl.pipeline import PipelineConfig, orchestrate, run_pipeline
from tbeqtl.pipeline import covariates as cov
from tbeqtl.pipeline.prepared import PreparedData, write_prepared

SIM = {
    "preset": "tiny",
    "seed": 3,
    "n_individuals": 60,
    "n_samples": 210,
    "n_tissues": 4,
    "n_genes": 60,
    "n_snps": 150,
    "n_chromosomes": 2,
}
MAP = {"tissues": ["Whole Blood"], "factor_sets": ["all"], "exhaustive": True, "n_permutations": 0}


@pytest.fixture(scope="module")
def sim():
    from tbeqtl.simulate import simulate

    return simulate(**SIM)


@pytest.fixture(scope="module")
def sim_dir(sim, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    sim.write(out)
    return out


def _config(path: str = "", **changes) -> PipelineConfig:
    config = PipelineConfig.preset(
        "test",
        data={
            "path": path,
            "all_pairs": False,
            "pairs": ["chr1:chr2"],
            "ancestry_beta": "",
            "ancestry_tau": "",
        },
        mapping=MAP,
        fit={"max_steps": 30, "n_topics": 4},
    )
    return config.replace(**changes) if changes else config


def _context(config: PipelineConfig, data, tmp_path) -> tuple[orchestrate.PairContext, int]:
    ancestry = (pd.DataFrame({"0": 0.3}, index=data.snps), pd.DataFrame({"0": 1.0}, index=data.individuals))
    prepared = write_prepared(data, tmp_path / "prepared", genotype_pcs=3, ancestry=ancestry)
    config = config.replace(data={"path": str(prepared)})
    ctx, _ = orchestrate._context(
        config, RunLayout(tmp_path / "run"), prepared, in_place=True, pairs=[("chr1", "chr2")]
    )
    data_bytes = data.counts_df.memory_usage().sum() + data.genotype_df.memory_usage().sum()
    return ctx, int(data_bytes)


def test_pickled_context_is_small_whatever_the_data_size(tmp_path):
    """The context grows with the samples only: 30x the genes and SNPs leave its pickle the same size."""
    from tbeqtl.simulate import simulate

    config = _config()
    small = simulate(**{**SIM, "n_genes": 60, "n_snps": 150})
    large = simulate(**{**SIM, "n_genes": 1800, "n_snps": 4500})
    ctx_small, bytes_small = _context(config, small.data, tmp_path / "a")
    ctx_large, bytes_large = _context(config, large.data, tmp_path / "b")
    assert bytes_large > 25 * bytes_small
    size_small, size_large = len(pickle.dumps(ctx_small)), len(pickle.dumps(ctx_large))
    assert abs(size_large - size_small) < 0.02 * size_small, (size_small, size_large)
    assert size_large < 0.2 * bytes_large
    assert not any(isinstance(v, PreparedData) for v in vars(ctx_large).values())


def test_counts_per_million_from_library_sizes_match_all_genes(sim):
    """x / library size * 1e6 on some genes equals the rows of the all-gene cpm (numpy reference)."""
    from tbeqtl.pipeline.covariates import counts_per_million

    counts = sim.data.counts_df.copy()
    counts.iloc[:, 0] = 0  # a sample with no reads gets zeros
    x = counts.to_numpy(float)
    totals = x.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        reference = np.where(totals > 0, x / totals * 1e6, 0.0)
    genes = counts.index[::3]
    got = cov.counts_per_million(counts.loc[genes], library_size_s=counts.sum(axis=0))
    np.testing.assert_allclose(got.to_numpy(), reference[::3], rtol=1e-13, atol=0)
    assert np.array_equal(got.to_numpy(), counts_per_million(counts).loc[genes].to_numpy())  # bitwise
    with pytest.raises(InputError, match="without a library size"):
        cov.counts_per_million(counts, library_size_s=counts.sum(axis=0).iloc[1:])


class _Recorder:
    """Wrap PreparedData.load_counts / load_genotypes and record which chromosomes each reads."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, str]] = []
        for name in ("load_counts", "load_genotypes"):
            original = getattr(PreparedData, name)

            def wrapped(this, chrom, _original=original, _name=name):
                self.calls.append((_name, str(chrom)))
                return _original(this, chrom)

            monkeypatch.setattr(PreparedData, name, wrapped)


def test_pair_reads_only_its_partitions_and_driver_no_genotypes(sim, tmp_path, monkeypatch):
    """Given a prepared folder, the driver reads counts one chromosome at a time (hidden factors) and no
    genotypes before the pairs; a pair reads its gene chromosome's counts and SNP chromosome's genotypes."""
    import tbeqtl.io

    prepared = write_prepared(sim.data, tmp_path / "prepared", genotype_pcs=3, n_ancestry=2, seed=0)
    monkeypatch.setattr(tbeqtl.io, "read_dataset", lambda *a, **k: pytest.fail("the run read a data set"))
    recorder = _Recorder(monkeypatch)
    status = run_pipeline(_config(str(prepared), data={"pairs": ["chr2:chr1"]}), out_dir=tmp_path / "run")
    assert status["status"].tolist() == ["done"]
    calls = recorder.calls
    first_pair = next(i for i, c in enumerate(calls) if c == ("load_genotypes", "chr1"))
    driver = calls[: first_pair - 1]
    assert sorted(driver) == [("load_counts", "chr1"), ("load_counts", "chr2")]  # one pass, no genotypes
    assert calls[first_pair - 1 : first_pair + 1] == [("load_counts", "chr2"), ("load_genotypes", "chr1")]
    gather = calls[first_pair + 1 :]
    assert set(gather) <= {("load_genotypes", "chr1"), ("load_counts", "chr2")}
    assert not (tmp_path / "run" / "data").exists()  # the prepared folder is used in place
    run = json.loads(RunLayout(tmp_path / "run").run_json.read_text())
    assert run["ancestry"] == str(prepared / "ancestry_beta.parquet")
    timing = run["pairs"]["chr2__chr1"]
    assert 0 < timing["seconds_load"] < timing["seconds"] and 0 < timing["seconds_fit"] < timing["seconds"]
    table = pd.read_csv(RunLayout(tmp_path / "run").summary / "pairs.tsv", sep="\t")
    assert table.loc[0, "seconds_load"] == pytest.approx(timing["seconds_load"])


def test_prepared_folder_gives_the_results_of_its_data_set_folder(sim, sim_dir, tmp_path):
    """A run on a prepared folder written from the simulator's folder equals a run on that folder."""
    from tbeqtl.io import read_dataset

    config = _config(str(sim_dir))
    run_pipeline(config, out_dir=tmp_path / "a")
    data = RunLayout(tmp_path / "a").root / "data"  # what the run partitioned the folder into
    prepared = write_prepared(
        read_dataset(sim_dir), tmp_path / "prepared", genotype_pcs=3, n_ancestry=3, seed=0
    )
    run_pipeline(_config(str(prepared)), out_dir=tmp_path / "b")
    assert PreparedData.open(data).manifest["counts"] == PreparedData.open(prepared).manifest["counts"]
    for rel in ("summary/eqtls.parquet", "pairs/chr1__chr2/fit/gene_topics.tsv"):
        a, b = tmp_path / "a" / rel, tmp_path / "b" / rel
        read = pd.read_parquet if rel.endswith(".parquet") else (lambda p: pd.read_csv(p, sep="\t"))
        pd.testing.assert_frame_equal(read(a), read(b), check_exact=True)


def test_in_memory_data_is_partitioned_once_and_reused(sim, tmp_path):
    config = _config()
    run_pipeline(config, out_dir=tmp_path, data=sim.data)
    manifest = tmp_path / "data" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    run_pipeline(config, out_dir=tmp_path, data=sim.data)
    assert manifest.stat().st_mtime_ns == stamp
    changed = sim.data.replace(counts_df=sim.data.counts_df + 1)
    with pytest.raises(InputError, match="holds pairs run on another data set"):
        run_pipeline(config, out_dir=tmp_path, data=changed)


def test_deleted_partition_is_named_before_a_rerun(sim, tmp_path):
    prepared = write_prepared(sim.data, tmp_path / "prepared", genotype_pcs=3, n_ancestry=2, seed=0)
    (prepared / "genotypes" / "chr2.parquet").unlink()
    with pytest.raises(InputError, match="genotypes/chr2.parquet"):
        run_pipeline(_config(str(prepared)), out_dir=tmp_path / "run")


def test_partition_deleted_from_the_run_folder_is_named_on_rerun(sim_dir, tmp_path):
    config = _config(str(sim_dir))
    run_pipeline(config, out_dir=tmp_path)
    (tmp_path / "data" / "counts" / "chr1.parquet").unlink()
    with pytest.raises(InputError, match="counts/chr1.parquet"):
        run_pipeline(config, out_dir=tmp_path)


def test_lost_worker_message_and_status_file(tmp_path):
    """A task that did not return because its worker died is 'worker lost', written to status.json."""
    from types import SimpleNamespace

    from distributed.scheduler import KilledWorker

    worker = SimpleNamespace(address="tcp://10.0.0.7:4321")
    record = orchestrate._lost_record(("chr1", "chr2"), KilledWorker("pair-chr1__chr2-1", worker, 0))
    assert record["status"] == "failed"
    assert record["message"].startswith("worker lost while running pair chr1__chr2: KilledWorker")
    assert "tcp://10.0.0.7:4321" in record["message"] and "out of memory or killed" in record["message"]
    other = orchestrate._lost_record(("chr1", "chr2"), ValueError("bad"))
    assert other["message"] == "ValueError: bad"
    orchestrate._mark_failed(str(tmp_path), record)
    status = json.loads(RunLayout(tmp_path).pair("chr1", "chr2").status.read_text())
    assert status["pair"].startswith("failed: worker lost while running pair chr1__chr2")


def test_prepare_section_is_checked_against_prepare_options():
    config = PipelineConfig.preset("test", prepare={"ld_r2": 0.1, "maf": 0.05})
    assert PipelineConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InputError, match=r"\[prepare\].*ld_r3"):
        PipelineConfig.preset("test", prepare={"ld_r3": 0.1})
    with pytest.raises(InputError, match="prepare.maf"):
        PipelineConfig.preset("test", prepare={"maf": "high"})


def test_raw_inputs_missing_are_named(tmp_path):
    config = PipelineConfig.preset("test", data={"path": "", "counts": str(tmp_path / "counts.gct")})
    with pytest.raises(InputError, match="data.sample_attributes"):
        run_pipeline(config, out_dir=tmp_path / "run")


@pytest.mark.slow
def test_run_on_raw_gtex_inputs_prepares_once(tmp_path):
    """Raw GTEx-format inputs named in [data] are prepared into RUN/data with the [prepare] options,
    the pair runs on them, and a rerun reuses the prepared folder."""
    from tbeqtl.simulate.gtex_cohort import write_gtex_cohort

    cohort = write_gtex_cohort(
        tmp_path / "cohort",
        n_tissues=5,
        n_individuals=60,
        n_extra_donors=2,
        n_samples=260,
        n_genes=300,
        n_snps=1500,
        n_chromosomes=2,
        formats=("pgen",),
        seed=1,
    )
    raw = {
        "path": "",
        "counts": str(cohort.counts),
        "sample_attributes": str(cohort.sample_attributes),
        "subject_attributes": str(cohort.subject_phenotypes),
        "genotypes": str(cohort.pgen),
        "genes": str(cohort.genes),
        "ancestry_beta": "",
        "ancestry_tau": "",
        "pairs": ["chr1:chr2"],
    }
    config = _config(
        data=raw,
        prepare={"ld_r2": 0.5, "min_median_count": 1.0},
        covariates={"known": ["SEX"], "n_hidden": 2},
        mapping={"tissues": [], "min_samples": 10},
    )
    status = run_pipeline(config, out_dir=tmp_path / "run")
    assert status["status"].tolist() == ["done"]
    manifest_path = tmp_path / "run" / "data" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["params"]["run_source"]["prepare"] == {"ld_r2": 0.5, "min_median_count": 1.0}
    prepared = PreparedData.open(tmp_path / "run" / "data")
    assert status.loc[0, "n_genes"] == (prepared.gene_info_df["chrom"] == "chr1").sum()
    assert status.loc[0, "n_snps"] == (prepared.snp_info_df["chrom"] == "chr2").sum()
    run = json.loads(RunLayout(tmp_path / "run").run_json.read_text())
    assert run["input_checksums"] and run["input_checksums"] == manifest["inputs"]
    stamp = manifest_path.stat().st_mtime_ns
    assert run_pipeline(config, out_dir=tmp_path / "run")["status"].tolist() == ["done"]
    assert manifest_path.stat().st_mtime_ns == stamp


def test_ancestry_estimated_once_when_the_prepared_folder_has_none(sim, tmp_path):
    """Without ancestry in the folder or the config, the run estimates it once (all SNPs fit in the
    subset here, so it is the full-data EM of estimate_ancestry) into RUN/ancestry/ and reuses it."""
    from tbeqtl.tblda.ancestry import estimate_ancestry

    prepared = write_prepared(sim.data, tmp_path / "prepared", genotype_pcs=3)
    assert PreparedData.open(prepared).ancestry is None
    config = _config(str(prepared))
    run_pipeline(config, out_dir=tmp_path / "run")
    beta_path = tmp_path / "run" / "ancestry" / "ancestry_beta.parquet"
    beta = pd.read_parquet(beta_path)
    tau = pd.read_csv(tmp_path / "run" / "ancestry" / "ancestry_tau.tsv", sep="\t", index_col=0)
    ref_beta, ref_tau = estimate_ancestry(sim.data.genotype_df, n_ancestry=config.fit.n_ancestry, seed=0)
    np.testing.assert_allclose(beta.loc[ref_beta.index].to_numpy(), ref_beta.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(tau.loc[ref_tau.index].to_numpy(), ref_tau.to_numpy(), atol=1e-8)
    run = json.loads(RunLayout(tmp_path / "run").run_json.read_text())
    assert run["ancestry"] == str(beta_path)
    stamp = beta_path.stat().st_mtime_ns
    run_pipeline(config, out_dir=tmp_path / "run")
    assert beta_path.stat().st_mtime_ns == stamp
