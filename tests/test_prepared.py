"""The prepared data folder (tbeqtl.pipeline.prepared): format, round trip, checks, pickling."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tbeqtl import simulate
from tbeqtl.data import EQTLData
from tbeqtl.errors import InputError, TbeqtlError
from tbeqtl.pipeline.prepared import (
    MANIFEST,
    UNPLACED,
    PreparedData,
    PreparedWriter,
    is_prepared,
    write_prepared,
)
from tbeqtl.tblda.ancestry import estimate_ancestry


@pytest.fixture(scope="module")
def sim_data() -> EQTLData:
    return simulate(preset="tiny", seed=5, missing_rate=0.05).data


@pytest.fixture(scope="module")
def prepared(sim_data, tmp_path_factory) -> Path:
    return write_prepared(sim_data, tmp_path_factory.mktemp("prep") / "prepared")


def _on(info_df: pd.DataFrame, chrom: str) -> pd.Index:
    """IDs annotated on ``chrom``, in data order (computed directly from the data's annotation)."""
    return info_df.index[(info_df["chrom"] == chrom).to_numpy()]


def _assert_same(loaded: EQTLData, expected: EQTLData) -> None:
    assert loaded.equals(expected)
    for name in (
        "counts_df",
        "genotype_df",
        "sample_info_df",
        "individual_info_df",
        "gene_info_df",
        "snp_info_df",
    ):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(expected, name), check_exact=True)
    pd.testing.assert_series_equal(loaded.sample_map_s, expected.sample_map_s)


def _with_genotypes(data: EQTLData, values: np.ndarray, *, gene_chrom=None, snp_chrom=None) -> EQTLData:
    genes = data.gene_info_df.copy()
    snps = data.snp_info_df.copy()
    if gene_chrom is not None:
        genes["chrom"] = gene_chrom
    if snp_chrom is not None:
        snps["chrom"] = snp_chrom
    return EQTLData.from_frames(
        data.counts_df,
        pd.DataFrame(values, index=data.snps, columns=data.individuals),
        data.sample_map_s,
        sample_info_df=data.sample_info_df,
        individual_info_df=data.individual_info_df,
        gene_info_df=genes,
        snp_info_df=snps,
        drop_uninformative=False,
    )


# ------------------------------------------------------------------------------------ round trip
def test_load_pair_equals_subset_of_the_written_data(sim_data, prepared):
    opened = PreparedData.open(prepared)
    assert opened.gene_chromosomes == ["chr1", "chr2"] and opened.snp_chromosomes == ["chr1", "chr2"]
    assert np.isnan(sim_data.genotype_df.to_numpy()).any()  # missing genotypes are part of the check
    for gene_chrom in opened.gene_chromosomes:
        for snp_chrom in opened.snp_chromosomes:
            expected = sim_data.subset(
                genes=_on(sim_data.gene_info_df, gene_chrom), snps=_on(sim_data.snp_info_df, snp_chrom)
            )
            _assert_same(opened.load_pair(gene_chrom, snp_chrom), expected)
    # the whole-folder tables equal the data's
    pd.testing.assert_frame_equal(opened.sample_info_df, sim_data.sample_info_df)
    pd.testing.assert_frame_equal(opened.individual_info_df, sim_data.individual_info_df)
    pd.testing.assert_frame_equal(opened.gene_info_df, sim_data.gene_info_df)
    pd.testing.assert_frame_equal(opened.snp_info_df, sim_data.snp_info_df)
    pd.testing.assert_series_equal(opened.sample_map_s, sim_data.sample_map_s)


def test_fractional_dosages_round_trip_exactly(sim_data, tmp_path):
    rng = np.random.default_rng(7)
    shape = sim_data.genotype_df.shape
    digits = rng.integers(1, 8, size=shape)  # 1..7 significant digits
    low = np.where(digits == 7, 1e-3, 1e-6)  # 7 digits: exact within [0.001, 2]
    raw = np.exp(rng.uniform(np.log(low), np.log(2.0)))
    # each value is the float64 parse of a decimal string (an independent reference: Python's float())
    values = np.array([float(f"{v:.{d - 1}e}") for v, d in zip(raw.ravel(), digits.ravel(), strict=True)])
    values = np.minimum(values, 2.0).reshape(shape)
    hard = rng.random(shape) < 0.3
    values[hard] = rng.integers(0, 3, size=hard.sum())
    values[rng.random(shape) < 0.05] = np.nan
    data = _with_genotypes(sim_data, values)
    opened = PreparedData.open(write_prepared(data, tmp_path / "p"))
    loaded = pd.concat([opened.load_genotypes(c) for c in opened.snp_chromosomes]).loc[data.snps]
    np.testing.assert_array_equal(loaded.to_numpy(), values)  # bitwise, NaN in the same places
    for chrom in opened.snp_chromosomes:
        expected = data.subset(genes=_on(data.gene_info_df, "chr1"), snps=_on(data.snp_info_df, chrom))
        _assert_same(opened.load_pair("chr1", chrom), expected)


def test_dosages_of_more_digits_read_back_within_float32_precision(sim_data, tmp_path):
    rng = np.random.default_rng(8)
    values = rng.uniform(0, 2, size=sim_data.genotype_df.shape)  # ~16 significant digits
    opened = PreparedData.open(write_prepared(_with_genotypes(sim_data, values), tmp_path / "p"))
    loaded = pd.concat([opened.load_genotypes(c) for c in opened.snp_chromosomes]).loc[sim_data.snps]
    as32 = values.astype(np.float32)
    np.testing.assert_array_equal(loaded.to_numpy().astype(np.float32), as32)  # the stored float32
    assert (np.abs(loaded.to_numpy() - values) <= np.spacing(as32).astype(float)).all()


# ------------------------------------------------------------------------------------ chromosomes
def test_chromosome_lists_natural_order_and_unplaced(sim_data, tmp_path):
    rng = np.random.default_rng(3)
    gene_chrom = rng.choice(
        np.array(["1", "chr10", "2", "X", "22", None], dtype=object), size=len(sim_data.genes)
    )
    snp_chrom = rng.choice(np.array(["chr2", "10", "chr1", "9", "Y"], dtype=object), size=len(sim_data.snps))
    gene_chrom[:3] = ["1", "X", None]
    data = _with_genotypes(
        sim_data, sim_data.genotype_df.to_numpy(), gene_chrom=gene_chrom, snp_chrom=snp_chrom
    )
    opened = PreparedData.open(write_prepared(data, tmp_path / "p"))
    assert opened.gene_chromosomes == ["chr1", "chr2", "chr10", "chr22", "chrX"]
    assert opened.snp_chromosomes == ["chr1", "chr2", "chr9", "chr10", "chrY"]
    unplaced = data.gene_info_df.index[data.gene_info_df["chrom"].isna().to_numpy()]
    assert len(unplaced) and opened.manifest["counts"]["n_unplaced_genes"] == len(unplaced)
    pd.testing.assert_frame_equal(
        opened.load_counts(UNPLACED), data.counts_df.loc[unplaced], check_names=False
    )
    # any naming style reaches the same partition
    pd.testing.assert_frame_equal(opened.load_counts("10"), opened.load_counts("chr10"))
    expected = data.subset(genes=_on(data.gene_info_df, "chr10"), snps=_on(data.snp_info_df, "chrY"))
    _assert_same(opened.load_pair("10", "Y"), expected)
    with pytest.raises(InputError, match="chr3"):
        opened.load_counts("chr3")
    with pytest.raises(InputError, match="chrX"):
        opened.load_genotypes("X")
    with pytest.raises(InputError, match=UNPLACED):
        opened.load_genotypes(UNPLACED)  # every SNP is placed here


def test_unsafe_chromosome_name_is_refused(sim_data, tmp_path):
    data = _with_genotypes(sim_data, sim_data.genotype_df.to_numpy(), gene_chrom="chr1/../x")
    with pytest.raises(InputError, match="chr1/../x"):
        write_prepared(data, tmp_path / "p")


# ------------------------------------------------------------------------------------ manifest
def test_manifest_checksums_and_file_list(prepared):
    manifest = json.loads((prepared / MANIFEST).read_text())
    on_disk = sorted(
        str(Path(root, name).relative_to(prepared)) for root, _, names in os.walk(prepared) for name in names
    )
    assert sorted([*manifest["files"], MANIFEST]) == on_disk
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((prepared / rel).read_bytes()).hexdigest() == digest
    assert manifest["format"] == "tbeqtl-prepared" and manifest["format_version"] == 1
    assert manifest["counts"]["n_genes"] == 60 and manifest["counts"]["n_snps"] == 150
    assert manifest["params"]["genotype_pcs"] == 5
    assert is_prepared(prepared) and not is_prepared(prepared / "counts")


def test_library_size_is_the_column_sums_of_the_counts(sim_data, prepared):
    opened = PreparedData.open(prepared)
    expected = sim_data.counts_df.to_numpy().sum(axis=0)
    np.testing.assert_array_equal(opened.library_size_s.to_numpy(), expected)
    assert list(opened.library_size_s.index) == list(sim_data.samples)
    assert opened.library_size_s.dtype == np.int64


def test_genotype_pcs_and_ancestry_are_stored(sim_data, tmp_path):
    beta, tau = estimate_ancestry(sim_data.genotype_df, n_ancestry=2, seed=1)
    opened = PreparedData.open(write_prepared(sim_data, tmp_path / "p", genotype_pcs=3, ancestry=(beta, tau)))
    # genotype PCs against a direct SVD of the standardised, mean-imputed genotypes
    y = sim_data.genotype_df.to_numpy()
    y = np.where(np.isnan(y), np.nanmean(y, axis=1, keepdims=True), y)
    z = (y - y.mean(axis=1, keepdims=True)) / y.std(axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    direct = vt[:3].T * s[:3]
    got = opened.genotype_pcs_df.to_numpy()
    assert list(opened.genotype_pcs_df.columns) == ["genoPC1", "genoPC2", "genoPC3"]
    np.testing.assert_allclose(np.abs(got), np.abs(direct), atol=1e-9)
    got_beta, got_tau = opened.ancestry
    pd.testing.assert_frame_equal(got_beta, beta)
    pd.testing.assert_frame_equal(got_tau, tau)
    assert PreparedData.open(write_prepared(sim_data, tmp_path / "q")).ancestry is None


def test_ancestry_estimated_when_asked(sim_data, tmp_path):
    opened = PreparedData.open(write_prepared(sim_data, tmp_path / "p", n_ancestry=2, seed=4))
    beta, tau = estimate_ancestry(sim_data.genotype_df, n_ancestry=2, seed=4)  # all SNPs fit in the subset
    got_beta, got_tau = opened.ancestry
    # every SNP is in the EM's subset (150 < 40,000): exactly the all-SNP estimate (estimate_ancestry_subset)
    pd.testing.assert_frame_equal(got_beta, beta, check_exact=True)
    pd.testing.assert_frame_equal(got_tau, tau, check_exact=True)
    # a subset of 60 SNPs: still one beta row per SNP, tau a proportion per individual
    sub_beta, sub_tau = PreparedData.open(
        write_prepared(sim_data, tmp_path / "q", n_ancestry=2, ancestry_snps=60, seed=4)
    ).ancestry
    assert list(sub_beta.index) == list(sim_data.snps) and list(sub_tau.index) == list(sim_data.individuals)
    np.testing.assert_allclose(sub_tau.sum(axis=1), 1.0, rtol=1e-12)
    assert not np.allclose(sub_beta.to_numpy(), beta.to_numpy())


def test_attribute_dtypes_survive(sim_data, tmp_path):
    info = sim_data.sample_info_df.copy()
    n = len(info)
    info["flag"] = np.arange(n) % 2 == 0
    info["code"] = [f"{i:03d}" for i in range(n)]  # numeric-looking text stays text
    info["batch"] = pd.Categorical(np.where(np.arange(n) % 3 == 0, "b1", "b2"))
    info["maybe"] = pd.array([None if i % 5 == 0 else i for i in range(n)], dtype="Int64")
    info["rin"] = np.where(np.arange(n) % 7 == 0, np.nan, np.linspace(0.1, 9.7, n) / 3)
    info["tiny_huge"] = np.random.default_rng(1).random(n) * 10.0 ** np.arange(-150, 150, 300 / n)[:n]
    info["single"] = np.linspace(0, 1, n).astype(np.float32) / 3
    info["note"] = [None if i % 4 == 0 else ("" if i % 4 == 1 else f"n{i}") for i in range(n)]
    data = sim_data.replace(sample_info_df=info)
    opened = PreparedData.open(write_prepared(data, tmp_path / "p"))
    pd.testing.assert_frame_equal(opened.sample_info_df, data.sample_info_df, check_exact=True)


# ------------------------------------------------------------------------------------ refusals
def test_deleted_partition_is_named(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p")
    (folder / "counts" / "chr2.parquet").unlink()
    with pytest.raises(InputError, match=r"counts/chr2\.parquet"):
        PreparedData.open(folder)


def test_corrupt_file_is_named_with_verify(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p")
    target = folder / "genotypes" / "chr1.parquet"
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    PreparedData.open(folder)  # a plain open reads no partition
    with pytest.raises(InputError, match=r"genotypes/chr1\.parquet"):
        PreparedData.open(folder, verify=True)


def test_unfinished_folder_is_refused(sim_data, tmp_path):
    writer = PreparedWriter(tmp_path / "p")
    writer.write_tables(
        sample_map_s=sim_data.sample_map_s,
        individual_info_df=sim_data.individual_info_df,
        gene_info_df=sim_data.gene_info_df,
        snp_info_df=sim_data.snp_info_df,
    )
    writer.write_counts("chr1", sim_data.counts_df.loc[_on(sim_data.gene_info_df, "chr1")])
    with pytest.raises(InputError, match="unfinished.*rerun tbeqtl prepare"):
        PreparedData.open(tmp_path / "p")
    assert not is_prepared(tmp_path / "p")
    with pytest.raises(InputError, match=r"counts/chr2\.parquet"):
        writer.finish()
    with pytest.raises(InputError, match="not a prepared folder"):
        PreparedData.open(tmp_path)


def test_rewriting_a_folder_unfinishes_it_first(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p")
    PreparedWriter(folder)  # a new writer (e.g. a rerun that is then killed)
    assert not is_prepared(folder)
    with pytest.raises(InputError, match="unfinished"):
        PreparedData.open(folder)


def test_writer_refuses_a_partition_that_does_not_match_the_tables(sim_data, tmp_path):
    writer = PreparedWriter(tmp_path / "p")
    writer.write_tables(
        sample_map_s=sim_data.sample_map_s,
        individual_info_df=sim_data.individual_info_df,
        gene_info_df=sim_data.gene_info_df,
        snp_info_df=sim_data.snp_info_df,
    )
    chr1 = _on(sim_data.gene_info_df, "chr1")
    wrong = sim_data.counts_df.loc[chr1[:-1]]
    with pytest.raises(InputError, match=chr1[-1]):
        writer.write_counts("chr1", wrong)
    with pytest.raises(InputError, match="chr7"):
        writer.write_counts("chr7", wrong)


def test_resumed_writer_reuses_partitions(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p")
    first = PreparedData.open(folder)
    writer = PreparedWriter(folder)  # resume: tables again, partitions already there
    writer.write_tables(
        sample_map_s=sim_data.sample_map_s,
        individual_info_df=sim_data.individual_info_df,
        gene_info_df=sim_data.gene_info_df,
        snp_info_df=sim_data.snp_info_df,
        sample_info_df=sim_data.sample_info_df,
    )
    writer.finish(params={"genotype_pcs_requested": 5})
    again = PreparedData.open(folder, verify=True)
    pd.testing.assert_series_equal(again.library_size_s, first.library_size_s)
    assert again.manifest["files"] == first.manifest["files"]


# ------------------------------------------------------------------------------------ pickling
def test_pickle_is_small_and_works(sim_data, prepared):
    opened = PreparedData.open(prepared)
    blob = pickle.dumps(opened)
    assert len(blob) < 4096 < sim_data.counts_df.to_numpy().nbytes + sim_data.genotype_df.to_numpy().nbytes
    copy = pickle.loads(blob)
    assert copy.gene_chromosomes == opened.gene_chromosomes
    _assert_same(copy.load_pair("chr2", "chr1"), opened.load_pair("chr2", "chr1"))


def test_pickle_size_does_not_grow_with_the_data(tmp_path):
    big = simulate(preset="tiny", seed=2, n_genes=400, n_snps=1200).data
    small = simulate(preset="tiny", seed=2).data
    sizes = [
        len(pickle.dumps(PreparedData.open(write_prepared(d, tmp_path / n))))
        for d, n in ((small, "s"), (big, "b"))
    ]
    assert abs(sizes[0] - sizes[1]) < 200  # the manifest's few numbers; no table, no partition


def test_unpickled_copy_notices_a_rewritten_folder(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p")
    blob = pickle.dumps(PreparedData.open(folder))
    write_prepared(sim_data, folder, genotype_pcs=2)
    with pytest.raises(InputError, match="rewritten"):
        _ = pickle.loads(blob).sample_map_s


# ------------------------------------------------------------------------------------ input order
def _shuffled(data: EQTLData, seed: int) -> EQTLData:
    rng = np.random.default_rng(seed)
    genes, samples = rng.permutation(data.genes), rng.permutation(data.samples)
    snps, individuals = rng.permutation(data.snps), rng.permutation(data.individuals)
    return EQTLData.from_frames(
        data.counts_df.loc[genes, samples],
        data.genotype_df.loc[snps, individuals],
        data.sample_map_s.loc[samples],
        sample_info_df=data.sample_info_df.loc[samples],
        individual_info_df=data.individual_info_df.loc[individuals],
        gene_info_df=data.gene_info_df.loc[genes],
        snp_info_df=data.snp_info_df.loc[snps],
        drop_uninformative=False,
    )


def _by_id(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_index(axis=0).sort_index(axis=1)


def test_content_does_not_depend_on_input_order(sim_data, tmp_path):
    a = PreparedData.open(write_prepared(sim_data, tmp_path / "a", n_ancestry=2))
    b = PreparedData.open(write_prepared(_shuffled(sim_data, 11), tmp_path / "b", n_ancestry=2))
    assert sorted(a.manifest["files"]) == sorted(b.manifest["files"])
    assert a.gene_chromosomes == b.gene_chromosomes and a.snp_chromosomes == b.snp_chromosomes
    assert a.manifest["counts"] == b.manifest["counts"]
    for name in ("sample_info_df", "individual_info_df", "gene_info_df", "snp_info_df"):
        pd.testing.assert_frame_equal(_by_id(getattr(a, name)), _by_id(getattr(b, name)))
    pd.testing.assert_series_equal(a.sample_map_s.sort_index(), b.sample_map_s.sort_index())
    pd.testing.assert_series_equal(a.library_size_s.sort_index(), b.library_size_s.sort_index())
    for chrom in a.gene_chromosomes:
        pd.testing.assert_frame_equal(_by_id(a.load_counts(chrom)), _by_id(b.load_counts(chrom)))
    for chrom in a.snp_chromosomes:
        pd.testing.assert_frame_equal(_by_id(a.load_genotypes(chrom)), _by_id(b.load_genotypes(chrom)))
    pd.testing.assert_frame_equal(_by_id(a.genotype_pcs_df), _by_id(b.genotype_pcs_df), atol=1e-10, rtol=0)
    for got_a, got_b in zip(a.ancestry, b.ancestry, strict=True):
        pd.testing.assert_frame_equal(_by_id(got_a), _by_id(got_b), atol=1e-10, rtol=0)


def test_load_pair_leaves_the_folder_tables_as_they_were(prepared):
    opened = PreparedData.open(prepared)
    before = {n: getattr(opened, n).copy() for n in ("sample_map_s", "sample_info_df", "gene_info_df")}
    opened.load_pair("chr1", "chr2")
    for name, value in before.items():
        got = getattr(opened, name)
        assert got.index.name == value.index.name
        assert got.equals(value)
    assert opened.sample_map_s.name == "individual" and opened.gene_info_df.index.name == "gene"


def test_load_pair_reads_only_its_two_partitions(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p")
    opened = PreparedData.open(folder)
    (folder / "counts" / "chr2.parquet").unlink()  # after open: only a load touching them would notice
    (folder / "genotypes" / "chr1.parquet").unlink()
    expected = sim_data.subset(
        genes=_on(sim_data.gene_info_df, "chr1"), snps=_on(sim_data.snp_info_df, "chr2")
    )
    _assert_same(opened.load_pair("chr1", "chr2"), expected)


def test_truncated_or_garbled_partition_is_named(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p")
    target = folder / "counts" / "chr1.parquet"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(InputError, match=r"counts/chr1\.parquet"):
        PreparedData.open(folder)  # the size differs from the manifest's: no hashing needed
    folder = write_prepared(sim_data, tmp_path / "q")
    opened = PreparedData.open(folder)
    target = folder / "genotypes" / "chr2.parquet"
    target.write_bytes(b"\0" * target.stat().st_size)  # same size, not parquet
    with pytest.raises(InputError, match=r"genotypes/chr2\.parquet"):
        opened.load_genotypes("chr2")


def test_corrupt_manifest_is_refused(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p")
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(InputError, match="manifest"):
        PreparedData.open(folder)
    assert not is_prepared(folder) and not is_prepared(tmp_path / "nowhere")


def test_data_without_annotation_is_all_unplaced(sim_data, tmp_path):
    data = EQTLData.from_frames(sim_data.counts_df, sim_data.genotype_df, sim_data.sample_map_s)
    opened = PreparedData.open(write_prepared(data, tmp_path / "p", genotype_pcs=2))
    assert opened.gene_chromosomes == [] and opened.snp_chromosomes == []
    pd.testing.assert_frame_equal(opened.load_counts(UNPLACED), data.counts_df)
    pd.testing.assert_frame_equal(opened.load_genotypes(UNPLACED), data.genotype_df)
    np.testing.assert_array_equal(opened.library_size_s.to_numpy(), data.counts_df.to_numpy().sum(axis=0))
    assert opened.manifest["params"]["genotype_pcs"] == 2 == opened.genotype_pcs_df.shape[1]
    with pytest.raises(InputError, match="chr1"):
        opened.load_pair("chr1", "chr1")


def test_sample_attribute_individual_must_match_the_map(sim_data, tmp_path):
    info = sim_data.sample_info_df.assign(individual=sim_data.sample_map_s)
    opened = PreparedData.open(write_prepared(sim_data.replace(sample_info_df=info), tmp_path / "p"))
    pd.testing.assert_frame_equal(opened.sample_info_df, info)
    odd = info.index[(sim_data.sample_map_s != sim_data.individuals[-1]).to_numpy()][3]
    info.loc[odd, "individual"] = sim_data.individuals[-1]
    with pytest.raises(InputError, match=odd):
        write_prepared(sim_data.replace(sample_info_df=info), tmp_path / "q")


def test_writer_checks_values(sim_data, tmp_path):
    writer = PreparedWriter(tmp_path / "p")
    with pytest.raises(TbeqtlError, match="write_tables"):
        writer.finish()
    writer.write_tables(
        sample_map_s=sim_data.sample_map_s,
        individual_info_df=sim_data.individual_info_df,
        gene_info_df=sim_data.gene_info_df,
        snp_info_df=sim_data.snp_info_df,
    )
    counts = sim_data.counts_df.loc[_on(sim_data.gene_info_df, "chr1")].copy()
    counts.iloc[2, 5] = -1
    with pytest.raises(InputError, match=counts.index[2]):
        writer.write_counts("chr1", counts)
    geno = sim_data.genotype_df.loc[_on(sim_data.snp_info_df, "chr2")].copy()
    geno.iloc[4, 1] = 2.5
    with pytest.raises(InputError, match=geno.index[4]):
        writer.write_genotypes("chr2", geno)


def test_writer_harmonises_chromosomes_and_checks_sample_attributes(sim_data, tmp_path):
    genes = sim_data.gene_info_df.assign(chrom=sim_data.gene_info_df["chrom"].str.replace("chr", ""))
    writer = PreparedWriter(tmp_path / "p")
    with pytest.raises(InputError, match=sim_data.samples[0]):
        writer.write_tables(
            sample_map_s=sim_data.sample_map_s,
            individual_info_df=sim_data.individual_info_df,
            gene_info_df=genes,
            snp_info_df=sim_data.snp_info_df,
            sample_info_df=sim_data.sample_info_df.iloc[1:],
        )
    writer.write_tables(
        sample_map_s=sim_data.sample_map_s,
        individual_info_df=sim_data.individual_info_df,
        gene_info_df=genes,
        snp_info_df=sim_data.snp_info_df,
        sample_info_df=sim_data.sample_info_df,
    )
    for chrom in ("1", "chr2"):
        writer.write_counts(chrom, sim_data.counts_df.loc[_on(sim_data.gene_info_df, f"chr{chrom[-1]}")])
        writer.write_genotypes(chrom, sim_data.genotype_df.loc[_on(sim_data.snp_info_df, f"chr{chrom[-1]}")])
    writer.write_genotype_pcs(pd.DataFrame(index=sim_data.individuals))
    opened = PreparedData.open(writer.finish(), verify=True)
    pd.testing.assert_frame_equal(opened.gene_info_df, sim_data.gene_info_df)  # "1" -> "chr1"
    assert sorted(os.listdir(opened.path / "counts")) == ["chr1.parquet", "chr2.parquet"]
    assert opened.genotype_pcs_df.shape == (len(sim_data.individuals), 0)


def test_finish_refuses_stale_small_files(sim_data, tmp_path):
    folder = write_prepared(sim_data, tmp_path / "p", n_ancestry=2)
    fewer = sim_data.subset(samples=sim_data.samples[sim_data.sample_map_s != sim_data.individuals[0]])
    writer = PreparedWriter(folder)  # not clean: the earlier run's files stay
    writer.write_tables(
        sample_map_s=fewer.sample_map_s,
        individual_info_df=fewer.individual_info_df,
        gene_info_df=fewer.gene_info_df,
        snp_info_df=fewer.snp_info_df,
    )
    for chrom in ("chr1", "chr2"):
        writer.write_counts(chrom, fewer.counts_df.loc[_on(fewer.gene_info_df, chrom)])
        writer.write_genotypes(chrom, fewer.genotype_df.loc[_on(fewer.snp_info_df, chrom)])
    with pytest.raises(InputError, match="genotype_pcs.tsv"):
        writer.finish()
    writer.write_genotype_pcs(pd.DataFrame(index=fewer.individuals))
    with pytest.raises(InputError, match="ancestry_tau.tsv"):
        writer.finish()
