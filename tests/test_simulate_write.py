"""Tests of writing simulated data sets: round trips, truth formats, atomicity, CLI, data/example."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tbeqtl.cli import main
from tbeqtl.errors import InputError
from tbeqtl.io import read_dataset, read_h5ad, read_plink
from tbeqtl.io.ancestry import (
    read_admixture_p,
    read_admixture_q,
    read_terastructure_beta,
    read_terastructure_theta,
)
from tbeqtl.simulate import Simulation, simulate
from tbeqtl.simulate import write as simulate_write

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Simulation, Path]:
    sim = simulate(preset="tiny", seed=7, missing_rate=0.03)
    out = tmp_path_factory.mktemp("sim") / "set"
    sim.write(out)
    return sim, out


def _assert_same_data(a, b) -> None:
    assert a.equals(b)
    for name in ("sample_info_df", "individual_info_df", "gene_info_df", "snp_info_df"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_dtype=False)


def test_written_then_read_gives_the_same_data(written):
    sim, out = written
    _assert_same_data(sim.data, read_dataset(out))
    _assert_same_data(sim.data, read_dataset(out, genotypes="plink", counts="tsv"))


def test_truth_tables_round_trip(written):
    sim, out = written
    t = sim.truth
    tables = {"gene_topics.tsv": t.gene_topics_df, "sample_topics.tsv": t.sample_topics_df,
              "individual_topics.tsv": t.individual_topics_df, "snp_topics.tsv": t.snp_topics_df,
              "ancestry_beta.tsv": t.ancestry_beta_df, "ancestry_tau.tsv": t.ancestry_tau_df,
              "covariate_effects.tsv": t.covariate_effects_df}
    for name, df in tables.items():
        back = pd.read_csv(out / "truth" / name, sep="\t", index_col=0, float_precision="round_trip")
        assert list(back.index) == list(df.index), name
        assert list(back.columns) == [str(c) for c in df.columns], name
        np.testing.assert_array_equal(back.to_numpy(), df.to_numpy(), err_msg=name)
    eq = pd.read_csv(out / "truth" / "eqtls.tsv", sep="\t", float_precision="round_trip")
    pd.testing.assert_frame_equal(eq, t.eqtls_df, check_dtype=False)
    tt = pd.read_csv(out / "truth" / "topic_tissue.tsv", sep="\t", keep_default_na=False)
    assert list(tt["tissue"]) == list(t.topic_tissue_s)
    cell = pd.read_csv(out / "truth" / "cell_type_topics.tsv", sep="\t", index_col=0)["topic"]
    assert cell.to_dict() == t.cell_type_topic_s.to_dict()
    lib = pd.read_csv(out / "truth" / "library_sizes.tsv", sep="\t", index_col=0)["library_size"]
    assert (lib == t.library_size_s).all()
    params = json.loads((out / "truth" / "params.json").read_text())
    assert params["alpha"] == t.alpha == 0.3
    assert params["seed"] == 7 and params["preset"] == "tiny" and params["missing_rate"] == 0.03
    manifest = json.loads((out / simulate_write.MANIFEST).read_text())
    listed = sorted(manifest["files"])
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
                     and p.name != simulate_write.MANIFEST)
    assert listed == on_disk


def test_ancestry_files_load_with_the_tblda_readers(written):
    sim, out = written
    t = sim.truth
    snps, inds = read_plink(out / "genotypes").snp_info_df.index, sim.data.individuals
    beta = read_terastructure_beta(out / "truth" / "terastructure" / "beta.txt", snps)
    tau = read_terastructure_theta(out / "truth" / "terastructure" / "theta.txt", inds)
    np.testing.assert_array_equal(beta.to_numpy(), t.ancestry_beta_df.loc[snps].to_numpy())
    np.testing.assert_array_equal(tau.to_numpy(), t.ancestry_tau_df.loc[inds].to_numpy())
    p = read_admixture_p(out / "truth" / "admixture" / "genotypes.2.P", snps)
    q = read_admixture_q(out / "truth" / "admixture" / "genotypes.2.Q", inds)
    np.testing.assert_allclose(p.to_numpy(), t.ancestry_beta_df.loc[snps].to_numpy(), atol=5e-7)
    np.testing.assert_allclose(q.to_numpy(), t.ancestry_tau_df.loc[inds].to_numpy(), atol=5e-7)
    raw = (out / "truth" / "terastructure" / "beta.txt").read_text().splitlines()[0]
    assert raw.startswith("0\t") and raw.endswith("\t")


def test_gtex_pairs_files(written):
    sim, out = written
    data, eq = sim.data, sim.truth.eqtls_df
    cis = eq[eq["kind"] == "cis"]
    files = sorted((out / "truth" / "gtex").glob("*.v8.signif_variant_gene_pairs.txt.gz"))
    assert len(files) == data.sample_info_df["tissue"].nunique()
    assert {f.name.split(".")[0] for f in files} >= {"Muscle_Skeletal", "Whole_Blood",
                                                      "Skin_Sun_Exposed_Lower_leg"}
    tissue = "Whole Blood"
    with gzip.open(out / "truth" / "gtex" / "Whole_Blood.v8.signif_variant_gene_pairs.txt.gz", "rt") as fh:
        pairs = pd.read_csv(fh, sep="\t")
    assert list(pairs.columns) == simulate_write.GTEX_PAIR_COLUMNS
    assert set(pairs["variant_id"]) <= set(cis["snp"]) and set(pairs["gene_id"]) <= set(cis["gene"])
    # recompute one pair independently: log-CPM over the tissue's samples, OLS on dosage
    row = pairs.iloc[0]
    samples = data.sample_info_df.index[data.sample_info_df["tissue"] == tissue]
    counts = data.counts_df[samples]
    expr = np.log(counts.loc[row["gene_id"]] / counts.sum(axis=0) * 1e6 + 1).to_numpy()
    dosage = data.genotype_df.loc[row["variant_id"], data.sample_map_s[samples]].to_numpy()
    ok = ~np.isnan(dosage)
    ref = stats.linregress(dosage[ok], expr[ok])
    assert row["slope"] == pytest.approx(ref.slope, rel=1e-9)
    assert row["pval_nominal"] == pytest.approx(ref.pvalue, rel=1e-9)
    planted = cis.set_index("snp").loc[row["variant_id"]]
    assert row["tss_distance"] == planted["distance"]
    # the trans table: every planted trans pair in every tissue, statistics as for cis
    with gzip.open(out / "truth" / "gtex" / "trans_eqtls.txt.gz", "rt") as fh:
        trans = pd.read_csv(fh, sep="\t")
    assert list(trans.columns) == ["tissue_id", "variant_id", "gene_id", "maf", "pval", "slope", "slope_se"]
    planted_trans = eq[eq["kind"] == "trans"]
    blood = trans[trans["tissue_id"] == "Whole_Blood"]
    assert sorted(blood["variant_id"]) == sorted(planted_trans["snp"])
    row = blood.iloc[0]
    expr = np.log(counts.loc[row["gene_id"]] / counts.sum(axis=0) * 1e6 + 1).to_numpy()
    dosage = data.genotype_df.loc[row["variant_id"], data.sample_map_s[samples]].to_numpy()
    ok = ~np.isnan(dosage)
    ref = stats.linregress(dosage[ok], expr[ok])
    assert row["slope"] == pytest.approx(ref.slope, rel=1e-9)
    assert row["slope_se"] == pytest.approx(ref.stderr, rel=1e-9)
    assert row["pval"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_non_empty_folder_needs_overwrite(tmp_path, written):
    sim, _ = written
    out = tmp_path / "set"
    out.mkdir()
    (out / "other.txt").write_text("keep me\n")
    with pytest.raises(InputError, match="other.txt"):
        sim.write(out)
    sim.write(out, overwrite=True)
    assert (out / "other.txt").read_text() == "keep me\n"
    _assert_same_data(sim.data, read_dataset(out))
    # overwrite with a different data set replaces every file, truth included
    other = simulate(preset="tiny", seed=8)
    other.write(out, overwrite=True)
    _assert_same_data(other.data, read_dataset(out))
    eq = pd.read_csv(out / "truth" / "eqtls.tsv", sep="\t")
    assert list(eq["snp"]) == list(other.truth.eqtls_df["snp"])


def test_failed_write_leaves_nothing_behind(tmp_path, written, monkeypatch):
    sim, _ = written

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(simulate_write, "write_truth", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        sim.write(tmp_path / "set")
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_a_readable_data_set(tmp_path):
    out = tmp_path / "cli"
    status = main(["simulate", "--out", str(out), "--preset", "tiny", "--seed", "11", "--n-individuals", "20",
                   "--n-samples", "50", "--n-cis", "3", "--n-trans", "2", "--missing-rate", "0.01",
                   "--log-level", "WARNING"])
    assert status == 0
    data = read_dataset(out)
    expected = simulate(preset="tiny", seed=11, n_individuals=20, n_samples=50, n_cis=3, n_trans=2,
                        missing_rate=0.01)
    _assert_same_data(expected.data, data)
    assert (out / "tbeqtl.log").exists()
    assert main(["simulate", "--out", str(out), "--preset", "tiny", "--log-level", "WARNING"]) == 2
    pure = tmp_path / "pure"
    assert main(["simulate", "--out", str(pure), "--preset", "tiny", "--pure", "--log-level", "WARNING"]) == 0
    assert pd.read_csv(pure / "truth" / "eqtls.tsv", sep="\t").empty
    assert main(["simulate", "--out", str(tmp_path / "bad"), "--preset", "tiny", "--n-samples", "5",
                 "--log-level", "WARNING"]) == 2


def test_example_data_regenerates_identically(tmp_path):
    """data/example/README.md's command reproduces the example.

    The truth files (written by the simulator) must match: byte for byte, except the GTEx-style
    truth tables, whose regression statistics are printed at full precision and so differ in the
    last printed digit between BLAS builds (seen between two machines of CI's kind): those must hold
    the same rows, identical text columns and numbers equal to 1e-12 relative. The data files are
    written by tbeqtl.io, whose formats may evolve, so they must load into the same data set.
    """
    readme = (EXAMPLE / "README.md").read_text()
    assert "tbeqtl simulate --preset tiny --seed 0 --out data/example --overwrite" in readme
    out = tmp_path / "example"
    args = ["simulate", "--preset", "tiny", "--seed", "0", "--out", str(out), "--log-level", "WARNING"]
    assert main(args) == 0
    committed = sorted(str(p.relative_to(EXAMPLE)) for p in (EXAMPLE / "truth").rglob("*") if p.is_file())
    regenerated = sorted(str(p.relative_to(out)) for p in (out / "truth").rglob("*") if p.is_file())
    assert committed == regenerated
    for name in committed:
        if name.startswith("truth/gtex/"):
            want = pd.read_csv(EXAMPLE / name, sep="\t")
            got = pd.read_csv(out / name, sep="\t")
            pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12, atol=0, obj=name)
        else:
            assert (EXAMPLE / name).read_bytes() == (out / name).read_bytes(), name
    _assert_same_data(read_dataset(EXAMPLE), read_dataset(out))
    _assert_same_data(read_dataset(EXAMPLE), simulate(preset="tiny", seed=0).data)


def test_single_cell_variant_writes_h5ad(tmp_path):
    sim = simulate(preset="single_cell", seed=2, n_individuals=8, cells_per_donor=30, n_genes=60, n_snps=120)
    out = tmp_path / "sc"
    sim.write(out)
    cells = read_h5ad(out / "cells.h5ad", donor_column="donor")
    pd.testing.assert_frame_equal(cells.counts_df, sim.data.counts_df, check_dtype=False)
    assert (cells.sample_map_s == sim.data.sample_map_s).all()
    assert (cells.cell_info_df["cell_type"] == sim.data.sample_info_df["cell_type"]).all()
    _assert_same_data(sim.data, read_dataset(out))


def test_package_attribute_is_callable():
    import tbeqtl
    import tbeqtl.simulate  # rebinds the package attribute to the submodule

    sim = tbeqtl.simulate(preset="tiny", seed=0)
    assert sim.data.counts_df.shape == (60, 72)
