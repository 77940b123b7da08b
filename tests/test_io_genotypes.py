"""Streamed genotype sources: one cohort written as PLINK 2, PLINK 1, VCF (GT/DS), BCF and dosage TSV.

Every source is checked against the original table (numpy indexing of the DataFrame that was
written, not a tbeqtl reader): same ``variant_df``, same ``read_chrom`` values for any
individual subset/order and variant range. The allele pgenlib counts is checked on a ``.pgen``
made with pgenlib's own allele-code writer, independently of :func:`write_pgen`.
"""

from __future__ import annotations

import gzip
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pgenlib
import pysam
import pytest

from tbeqtl.errors import InputError
from tbeqtl.io import (
    FrameGenotypes,
    genotype_input_files,
    open_genotypes,
    read_genotype_table,
    require_sorted_positions,
    sniff_genotype_format,
    write_dosage_tsv,
    write_pgen,
    write_plink,
    write_vcf,
)

CHROMS = ("chr1", "chr2", "chr22")
N_IND = 30


def _cohort(rng: np.random.Generator, *, per_chrom=(120, 90, 70), fractional=False):
    ids, chrom, pos, ref, alt = [], [], [], [], []
    for c, n in zip(CHROMS, per_chrom, strict=True):
        p = np.sort(rng.choice(np.arange(10_000, 5_000_000), size=n, replace=False))
        if n > 6:
            p[5] = p[6] = p[4]  # three records at one position (a split multi-allelic site)
        for j, x in enumerate(p):
            r, a = rng.choice(list("ACGT"), size=2, replace=False)
            ids.append(f"{c}_{x}_{r}_{a}_{j}")
            chrom.append(c)
            pos.append(int(x))
            ref.append(str(r))
            alt.append(str(a))
    variant_df = pd.DataFrame(
        {"chrom": chrom, "pos": np.array(pos, dtype=np.int64), "ref": ref, "alt": alt},
        index=pd.Index(ids, name="variant_id"),
    )
    maf = rng.uniform(0.05, 0.5, size=len(ids))
    if fractional:
        values = rng.integers(0, 33, size=(len(ids), N_IND)) / 16.0  # multiples of 1/16: exact everywhere
    else:
        values = rng.binomial(2, maf[:, None], size=(len(ids), N_IND)).astype(float)
    values[rng.random(values.shape) < 0.02] = np.nan
    samples = [f"NA{19000 + 7 * i}" for i in range(N_IND)]
    return pd.DataFrame(values, index=variant_df.index, columns=samples), variant_df


def _expected(genotype_df, variant_df, chrom, samples, start=0, stop=None):
    rows = np.flatnonzero(variant_df["chrom"].to_numpy() == chrom)[start:stop]
    cols = [genotype_df.columns.get_loc(s) for s in samples]
    return genotype_df.to_numpy()[rows][:, cols].astype(np.float32)


def _bcf_copy(vcf: Path, bcf: Path) -> None:
    with pysam.VariantFile(str(vcf)) as src, pysam.VariantFile(str(bcf), "wb", header=src.header) as dst:
        for rec in src:
            dst.write(rec)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    rng = np.random.default_rng(20240514)
    geno, info = _cohort(rng)
    root = tmp_path_factory.mktemp("cohort")
    write_pgen(geno, info, root / "pg")
    write_plink(geno, root / "pl", snp_info_df=info)
    write_vcf(geno, root / "plain.vcf", snp_info_df=info)
    write_vcf(geno, root / "indexed.vcf.gz", snp_info_df=info)
    pysam.tabix_index(str(root / "indexed.vcf.gz"), preset="vcf", force=True)
    shutil.copy(root / "indexed.vcf.gz", root / "bgz.vcf.bgz")
    _bcf_copy(root / "plain.vcf", root / "calls.bcf")
    shutil.copy(root / "calls.bcf", root / "indexed.bcf")
    pysam.tabix_index(str(root / "indexed.bcf"), preset="bcf", csi=True, force=True, keep_original=True)
    write_dosage_tsv(geno, root / "geno.dosage.tsv.gz")
    for suffix in (".bed", ".bim"):
        with open(root / f"pl{suffix}", "rb") as src, gzip.open(root / f"plgz{suffix}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    shutil.copy(root / "pl.fam", root / "plgz.fam")
    paths = {
        "pgen": root / "pg",
        "plink": root / "pl",
        "plink_gz": root / "plgz.bed.gz",
        "vcf": root / "plain.vcf",
        "vcf_indexed": root / "indexed.vcf.gz",
        "vcf_bgz": root / "bgz.vcf.bgz",
        "bcf": root / "calls.bcf",
        "bcf_indexed": root / "indexed.bcf",
        "dosage": root / "geno.dosage.tsv.gz",
    }
    return geno, info, paths


ALL = ["pgen", "plink", "plink_gz", "vcf", "vcf_indexed", "vcf_bgz", "bcf", "bcf_indexed", "dosage"]


@pytest.mark.parametrize("kind", ALL)
def test_variant_df_matches_the_written_table(cohort, kind):
    geno, info, paths = cohort
    with open_genotypes(paths[kind]) as source:
        got = source.variant_df
        assert list(source.samples) == list(geno.columns)
        assert source.chromosomes == list(CHROMS)
    assert got.index.name == "variant_id"
    assert list(got.index) == list(info.index)
    assert got["pos"].dtype == np.int64
    columns = ["chrom", "pos"] if kind == "dosage" else ["chrom", "pos", "ref", "alt"]
    pd.testing.assert_frame_equal(got[columns], info[columns])


RANGES = [(0, None), (5, 17), (6, 7), (0, 1), (-4, None), (30, 1000), (60, 60)]


@pytest.mark.parametrize("kind", ALL)
def test_read_chrom_equals_the_original_values(cohort, kind):
    geno, info, paths = cohort
    rng = np.random.default_rng(7)
    everyone = list(geno.columns)
    subsets = [
        everyone,
        everyone[::-1],
        list(rng.permutation(everyone)[:11]),
        [everyone[3], everyone[0], everyone[3]],  # a repeat (two phenotype samples of one donor)
    ]
    with open_genotypes(paths[kind]) as source:
        frame = FrameGenotypes(geno, info)
        for chrom in CHROMS:
            for samples in subsets:
                for start, stop in RANGES:
                    got = source.read_chrom(chrom, samples=samples, start=start, stop=stop)
                    want = _expected(geno, info, chrom, samples, start, stop)
                    assert got.dtype == np.float32 and got.shape == want.shape
                    np.testing.assert_array_equal(got, want)
                    np.testing.assert_array_equal(
                        frame.read_chrom(chrom, samples=samples, start=start, stop=stop), want
                    )
        assert np.isnan(source.read_chrom("chr1", samples=everyone)).any()
        assert source.read_chrom("chr7", samples=everyone).shape == (0, N_IND)


def test_dosage_sources_read_the_fractional_values(tmp_path):
    geno, info = _cohort(np.random.default_rng(3), per_chrom=(40, 30, 20), fractional=True)
    write_vcf(geno, tmp_path / "ds.vcf", snp_info_df=info)
    write_dosage_tsv(geno, tmp_path / "ds.dosage.tsv")
    _write_pgen_dosages(geno, info, tmp_path / "dspg")
    samples = list(geno.columns[::-2])
    for path, field in (
        (tmp_path / "ds.vcf", "DS"),
        (tmp_path / "ds.dosage.tsv", "GT"),
        (tmp_path / "dspg", "DS"),
    ):
        with open_genotypes(path, dosage_field=field) as source:
            for chrom in CHROMS:
                got = source.read_chrom(chrom, samples=samples, start=2)
                np.testing.assert_array_equal(got, _expected(geno, info, chrom, samples, 2))
    with open_genotypes(tmp_path / "ds.vcf", dosage_field="GT") as source:  # GT: the rounded dosage
        got = source.read_chrom("chr2", samples=samples)
        want = _expected(geno, info, "chr2", samples)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        np.testing.assert_array_equal(got[ok], np.rint(np.where(np.isnan(want), 0, want))[ok])


def _write_pgen_dosages(geno, info, prefix):
    write_pgen(geno.round(), info, prefix)  # .pvar/.psam (and hard calls, replaced below)
    values = np.where(np.isnan(geno.to_numpy()), -9.0, geno.to_numpy())
    writer = pgenlib.PgenWriter(
        f"{prefix}.pgen".encode(),
        geno.shape[1],
        variant_ct=geno.shape[0],
        nonref_flags=False,
        dosage_present=True,
    )
    writer.append_dosages_batch(np.ascontiguousarray(values, dtype=np.float64))
    writer.close()


def test_pgen_counts_the_alt_allele_of_a_hand_made_file(tmp_path):
    """Allele codes written with pgenlib's allele writer (0 = REF, 1 = ALT), read as ALT counts."""
    codes = [
        [0, 0, 0, 1, 1, 1, -9, -9],  # REF/REF, REF/ALT, ALT/ALT, missing -> 0 1 2 NaN
        [1, 1, 1, 0, 0, 0, 0, 1],  # 2 1 0 1
    ]
    writer = pgenlib.PgenWriter(str(tmp_path / "h.pgen").encode(), 4, variant_ct=2, nonref_flags=False)
    for row in codes:
        writer.append_alleles(np.array(row, dtype=np.int32))
    writer.close()
    (tmp_path / "h.pvar").write_text(
        "##fileformat=PVCFv1.0\n#CHROM\tPOS\tID\tREF\tALT\n18\t100\trsA\tA\tG\n18\t200\t.\tC\tT\n"
    )
    (tmp_path / "h.psam").write_text("#FID\tIID\tSEX\nf1\ti1\t1\nf2\ti2\t2\nf3\ti3\t1\nf4\ti4\t2\n")
    with open_genotypes(tmp_path / "h.pgen") as source:
        assert list(source.samples) == ["i1", "i2", "i3", "i4"]
        assert list(source.variant_df.index) == ["rsA", "chr18_200_C_T"]
        assert source.variant_df.loc["rsA", ["chrom", "pos", "ref", "alt"]].tolist() == [
            "chr18",
            100,
            "A",
            "G",
        ]
        got = source.read_chrom("chr18", samples=["i4", "i1", "i2", "i3"])
    np.testing.assert_array_equal(got, np.array([[np.nan, 0, 1, 2], [1, 2, 1, 0]], dtype=np.float32))


def test_write_pgen_round_trip_against_pgenlib_ref_counts(tmp_path):
    geno, info = _cohort(np.random.default_rng(11), per_chrom=(10, 5, 5))
    write_pgen(geno, info, tmp_path / "w")
    reader = pgenlib.PgenReader(str(tmp_path / "w.pgen").encode())
    ref_counts = np.empty(geno.shape, dtype=np.int8)
    reader.read_range(0, geno.shape[0], ref_counts, allele_idx=0)
    want = np.where(np.isnan(geno.to_numpy()), -9, 2 - np.nan_to_num(geno.to_numpy()))
    np.testing.assert_array_equal(ref_counts, want)
    lines = (tmp_path / "w.pvar").read_text().splitlines()
    assert lines[0] == "#CHROM\tPOS\tID\tREF\tALT"
    assert lines[1].split("\t") == [
        info["chrom"].iat[0],
        str(info["pos"].iat[0]),
        info.index[0],
        *info.iloc[0, 2:],
    ]
    with pytest.raises(InputError, match="0/1/2") as err:
        write_pgen(geno + 0.5, info, tmp_path / "bad")
    assert info.index[0] in str(err.value)


def test_tensorqtl_int8_table_is_accepted_by_write_pgen(tmp_path):
    geno, info = _cohort(np.random.default_rng(12), per_chrom=(8, 4, 4))
    int8 = geno.fillna(-9).astype(np.int8)
    write_pgen(int8, info, tmp_path / "t")
    with open_genotypes(tmp_path / "t") as source:
        np.testing.assert_array_equal(
            source.read_chrom("chr1", samples=list(geno.columns)),
            _expected(geno, info, "chr1", list(geno.columns)),
        )


def test_vcf_multiallelic_records_are_skipped_in_every_vcf_form(tmp_path):
    geno, info = _cohort(np.random.default_rng(8), per_chrom=(15, 10, 8))
    write_vcf(geno, tmp_path / "m.vcf", snp_info_df=info)
    lines = (tmp_path / "m.vcf").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    multi = [first + 7, first + 20]  # one on chr1, one on chr2
    for i in multi:
        fields = lines[i].split("\t")
        fields[4] = fields[4] + ",N"
        lines[i] = "\t".join(fields)
    (tmp_path / "m.vcf").write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(tmp_path / "m.vcf"), str(tmp_path / "m.vcf.gz"))
    pysam.tabix_index(str(tmp_path / "m.vcf.gz"), preset="vcf")
    _bcf_copy(tmp_path / "m.vcf", tmp_path / "m.bcf")
    kept = info.drop(index=info.index[[m - first for m in multi]])
    geno = geno.loc[kept.index]
    samples = list(geno.columns[::3])
    for path in (tmp_path / "m.vcf", tmp_path / "m.vcf.gz", tmp_path / "m.bcf"):
        with open_genotypes(path) as source:
            assert list(source.variant_df.index) == list(kept.index)
            for chrom in CHROMS:
                for start, stop in ((0, None), (6, 9)):
                    got = source.read_chrom(chrom, samples=samples, start=start, stop=stop)
                    np.testing.assert_array_equal(got, _expected(geno, kept, chrom, samples, start, stop))


def test_pgen_multiallelic_variants_are_skipped(tmp_path):
    """A 3-allele variant inside a chromosome: skipped (as VCF does); the others read by index list."""
    hard = np.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 0, 0, 2]], dtype=np.int8)
    writer = pgenlib.PgenWriter(
        str(tmp_path / "m.pgen").encode(), 4, variant_ct=4, nonref_flags=False, allele_ct_limit=3
    )
    writer.append_biallelic(hard[0])
    writer.append_alleles(np.array([0, 2, 1, 2, 0, 0, 2, 2], dtype=np.int32), allele_ct=3)
    writer.append_biallelic(hard[1])
    writer.append_biallelic(hard[2])
    writer.close()
    pvar = "#CHROM\tPOS\tID\tREF\tALT\n1\t10\ta\tA\tC\n1\t20\tm\tA\tC,G\n1\t30\tb\tG\tT\n2\t5\tc\tT\tA\n"
    (tmp_path / "m.pvar").write_text(pvar)
    (tmp_path / "m.psam").write_text("#IID\nw\nx\ny\nz\n")
    with open_genotypes(tmp_path / "m") as source:
        assert list(source.variant_df.index) == ["a", "b", "c"]
        np.testing.assert_array_equal(
            source.read_chrom("chr1", samples=list("wxyz")), hard[:2].astype(np.float32)
        )
        np.testing.assert_array_equal(source.read_chrom("chr2", samples=["z", "w"]), [[2, 1]])


def test_interleaved_chromosomes_are_read_by_row_lists(tmp_path):
    geno, info = _cohort(np.random.default_rng(5), per_chrom=(12, 9, 6))
    order = np.argsort(np.tile(np.arange(9), 3)[: len(info)], kind="stable")  # chr1, chr2, chr22 mixed
    geno, info = geno.iloc[order], info.iloc[order]
    write_pgen(geno, info, tmp_path / "x")
    write_plink(geno, tmp_path / "x", snp_info_df=info)
    write_vcf(geno, tmp_path / "x.vcf", snp_info_df=info)
    write_dosage_tsv(geno, tmp_path / "x.dosage.tsv")
    samples = list(geno.columns[5:20])
    for path in (tmp_path / "x.pgen", tmp_path / "x.bed", tmp_path / "x.vcf", tmp_path / "x.dosage.tsv"):
        with open_genotypes(path) as source:
            assert list(source.variant_df.index) == list(info.index)
            for chrom in CHROMS:
                for start, stop in ((0, None), (2, 7)):
                    got = source.read_chrom(chrom, samples=samples, start=start, stop=stop)
                    np.testing.assert_array_equal(got, _expected(geno, info, chrom, samples, start, stop))


def test_sniffer_on_every_path_form(cohort, tmp_path):
    _, _, paths = cohort
    root = paths["pgen"].parent
    forms = {
        "pgen": [root / "pg", root / "pg.pgen", root / "pg.pvar", root / "pg.psam"],
        "plink": [
            root / "pl",
            root / "pl.bed",
            root / "pl.bim",
            root / "pl.fam",
            root / "plgz",
            root / "plgz.bed.gz",
        ],
        "vcf": [paths["vcf"], paths["vcf_indexed"], paths["vcf_bgz"], paths["bcf"]],
        "dosage": [paths["dosage"]],
    }
    for fmt, candidates in forms.items():
        for path in candidates:
            assert sniff_genotype_format(path) == fmt, path
            assert sniff_genotype_format(str(path)) == fmt, path
    # a prefix holding both sets opens the PLINK 2 one, as tensorQTL does
    for suffix in (".pgen", ".pvar", ".psam", ".bed", ".bim", ".fam"):
        src = root / (("pg" if suffix in (".pgen", ".pvar", ".psam") else "pl") + suffix)
        shutil.copy(src, tmp_path / f"both{suffix}")
    assert sniff_genotype_format(tmp_path / "both") == "pgen"
    assert sniff_genotype_format(tmp_path / "both.bed") == "plink"
    text = tmp_path / "SNP.txt"
    text.write_text("id\ts1\nrs1\t0\n")
    assert sniff_genotype_format(text, text_matrix="matrixeqtl") == "matrixeqtl"
    with pytest.raises(InputError, match="unknown genotype format"):
        sniff_genotype_format(text)
    with pytest.raises(InputError, match="not found") as err:
        sniff_genotype_format(tmp_path / "nothing_here")
    assert "nothing_here" in str(err.value)
    with pytest.raises(InputError, match="not found"):
        open_genotypes(tmp_path / "absent.vcf.gz")


def test_genotype_input_files(cohort):
    _, _, paths = cohort
    root = paths["pgen"].parent
    assert genotype_input_files(root / "pg.pvar") == [root / "pg.pgen", root / "pg.pvar", root / "pg.psam"]
    assert genotype_input_files(root / "pl") == [root / "pl.bed", root / "pl.bim", root / "pl.fam"]
    assert genotype_input_files(root / "plgz.bed.gz") == [
        root / "plgz.bed.gz",
        root / "plgz.bim.gz",
        root / "plgz.fam",
    ]
    assert genotype_input_files(paths["vcf_indexed"]) == [paths["vcf_indexed"]]
    assert genotype_input_files(paths["dosage"]) == [paths["dosage"]]


def _copy_set(src_prefix: Path, dst_prefix: Path, suffixes) -> None:
    for suffix in suffixes:
        shutil.copy(f"{src_prefix}{suffix}", f"{dst_prefix}{suffix}")


def test_pgen_without_pvar_or_psam_names_the_missing_file(cohort, tmp_path):
    _, _, paths = cohort
    _copy_set(paths["pgen"], tmp_path / "nopvar", (".pgen", ".psam"))
    _copy_set(paths["pgen"], tmp_path / "nopsam", (".pgen", ".pvar"))
    for prefix, missing in (("nopvar", ".pvar"), ("nopsam", ".psam")):
        for given in (tmp_path / prefix, tmp_path / f"{prefix}.pgen"):
            with pytest.raises(InputError, match=f"lacks its \\{missing} file") as err:
                open_genotypes(given)
            assert f"{prefix}{missing}" in str(err.value)
            with pytest.raises(InputError, match=f"\\{missing}"):
                genotype_input_files(given)


def test_pgen_that_disagrees_with_its_psam_is_an_input_error(cohort, tmp_path):
    _, _, paths = cohort
    _copy_set(paths["pgen"], tmp_path / "short", (".pgen", ".pvar"))
    lines = Path(f"{paths['pgen']}.psam").read_text().splitlines()
    (tmp_path / "short.psam").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="does not match") as err:
        open_genotypes(tmp_path / "short")
    assert "short.pgen" in str(err.value)


def test_duplicate_variant_ids_are_named(cohort, tmp_path):
    _, info, paths = cohort
    dup, other = info.index[4], info.index[5]
    _copy_set(paths["pgen"], tmp_path / "dup", (".pgen", ".psam"))
    (tmp_path / "dup.pvar").write_text(Path(f"{paths['pgen']}.pvar").read_text().replace(other, dup))
    (tmp_path / "dup.vcf").write_text(paths["vcf"].read_text().replace(other, dup))
    with gzip.open(paths["dosage"], "rt") as handle:
        (tmp_path / "dup.dosage.tsv").write_text(handle.read().replace(other, dup))
    _copy_set(paths["plink"], tmp_path / "dupl", (".bed", ".fam"))
    (tmp_path / "dupl.bim").write_text(Path(f"{paths['plink']}.bim").read_text().replace(other, dup))
    for path in (tmp_path / "dup", tmp_path / "dup.vcf", tmp_path / "dup.dosage.tsv", tmp_path / "dupl"):
        with pytest.raises(InputError, match="duplicate") as err:
            open_genotypes(path)
        assert dup in str(err.value), path


@pytest.mark.parametrize("kind", ["pgen", "plink", "vcf", "bcf", "dosage"])
def test_requested_individual_absent_is_named(cohort, kind):
    geno, _, paths = cohort
    with open_genotypes(paths[kind]) as source, pytest.raises(InputError, match="absent") as err:
        source.read_chrom("chr1", samples=[geno.columns[0], "GHOST-1", "GHOST-2"])
    assert "GHOST-1" in str(err.value) and "GHOST-2" in str(err.value)


def test_vcf_ds_outside_0_2_is_named(tmp_path):
    geno, info = _cohort(np.random.default_rng(9), per_chrom=(5, 3, 3), fractional=True)
    write_vcf(geno, tmp_path / "o.vcf", snp_info_df=info)
    text = (tmp_path / "o.vcf").read_text().splitlines()
    fields = text[-1].split("\t")
    fields[9] = "1/1:2.5"
    (tmp_path / "o.vcf").write_text("\n".join([*text[:-1], "\t".join(fields)]) + "\n")
    with open_genotypes(tmp_path / "o.vcf", dosage_field="DS") as source, pytest.raises(InputError) as err:
        source.read_chrom("chr22", samples=list(geno.columns))
    assert "outside [0, 2]" in str(err.value) and info.index[-1] in str(err.value)


def test_dosage_tsv_positions_from_columns_or_snp_pos(tmp_path):
    geno, info = _cohort(np.random.default_rng(4), per_chrom=(6, 4, 3))
    plain = geno.set_axis([f"snp{i}" for i in range(len(geno))])
    write_dosage_tsv(plain, tmp_path / "p.dosage.tsv")
    with pytest.raises(InputError, match="no positions"):
        open_genotypes(tmp_path / "p.dosage.tsv")
    write_pgen(geno, info, tmp_path / "p")
    with pytest.raises(InputError, match="dosage TSV files only"):
        open_genotypes(tmp_path / "p", snp_pos=info)
    positions = info.set_axis(plain.index)[["chrom", "pos"]]
    with open_genotypes(tmp_path / "p.dosage.tsv", snp_pos=positions) as source:
        pd.testing.assert_frame_equal(
            source.variant_df[["chrom", "pos"]], positions.rename_axis("variant_id")
        )
        got = source.read_chrom("chr2", samples=list(geno.columns))
        np.testing.assert_array_equal(got, _expected(geno, info, "chr2", list(geno.columns)))
    with_cols = plain.copy()
    with_cols.insert(0, "pos", positions["pos"].astype(float))  # the writer writes integers
    with_cols.insert(0, "chrom", 0.0)
    table = with_cols.astype(object)
    table["chrom"] = positions["chrom"].str.removeprefix("chr")
    table.to_csv(tmp_path / "c.dosage.tsv", sep="\t", index_label="snp_id", na_rep="NA")
    with open_genotypes(tmp_path / "c.dosage.tsv") as source:
        assert list(source.samples) == list(geno.columns)
        pd.testing.assert_frame_equal(
            source.variant_df[["chrom", "pos"]], positions.rename_axis("variant_id")
        )
        np.testing.assert_array_equal(
            source.read_chrom("chr22", samples=list(geno.columns)),
            _expected(geno, info, "chr22", list(geno.columns)),
        )


def test_sources_do_not_sort_and_unsorted_positions_are_reported(tmp_path):
    geno, info = _cohort(np.random.default_rng(6), per_chrom=(6, 4, 3))
    require_sorted_positions(info)
    swapped = info.copy()
    swapped.iloc[[1, 2], swapped.columns.get_loc("pos")] = swapped["pos"].iloc[[2, 1]].to_numpy()
    write_pgen(geno, swapped, tmp_path / "u")
    with open_genotypes(tmp_path / "u") as source:
        assert list(source.variant_df["pos"]) == list(swapped["pos"])  # as in the file
        with pytest.raises(InputError, match="not sorted") as err:
            require_sorted_positions(source.variant_df)
    assert "chr1" in str(err.value) and info.index[2] in str(err.value)
    assert "chr2 " not in str(err.value)
    write_vcf(geno, tmp_path / "u.vcf", snp_info_df=swapped)  # an unsorted file still reads by range
    with open_genotypes(tmp_path / "u.vcf") as source:
        for start, stop in ((0, None), (1, 3), (2, 3), (2, 5)):
            got = source.read_chrom("chr1", samples=list(geno.columns), start=start, stop=stop)
            np.testing.assert_array_equal(
                got, _expected(geno, swapped, "chr1", list(geno.columns), start, stop)
            )


def test_read_genotype_table_of_a_pgen(cohort):
    geno, info, paths = cohort
    table, snp_info = read_genotype_table(paths["pgen"])
    pd.testing.assert_frame_equal(
        table, geno.rename_axis(index="snp", columns="individual"), check_names=True
    )
    assert list(snp_info.index) == list(info.index)


CHR18 = Path("/work/shared/data/geuvadis_chr18/synthetic/SYNTH_GEUV.445_samples.chr18")


@pytest.mark.slow
def test_chr18_pgen_reads_float32_in_bounded_memory_and_equals_plink1():
    if not Path(f"{CHR18}.pgen").is_file():
        pytest.skip("GEUVADIS chr18 synthetic data not present")
    with open_genotypes(CHR18) as source:
        assert len(source.variant_df) == 367_759 and len(source.samples) == 445
        samples = list(source.samples)
        tracemalloc.start()
        t0 = time.perf_counter()
        pgen = source.read_chrom("chr18", samples=samples)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert pgen.dtype == np.float32 and pgen.shape == (367_759, 445)
    assert peak < pgen.nbytes + 32 * 2**20, (peak, pgen.nbytes)  # no float64 (1.3 GB) copy
    assert int(np.isnan(pgen).sum()) == 39_596  # the README's missing calls
    mib = 2**20
    print(
        f"chr18 pgen read: {seconds:.2f} s, peak traced {peak / mib:.0f} MiB for {pgen.nbytes / mib:.0f} MiB"
    )
    with open_genotypes(f"{CHR18}.bed.gz") as plink:
        pd.testing.assert_frame_equal(plink.variant_df, source.variant_df)
        order = samples[::-1]
        for start, stop in ((0, 120_000), (120_000, 250_000), (250_000, None)):
            block = plink.read_chrom("chr18", samples=order, start=start, stop=stop)
            np.testing.assert_array_equal(block, pgen[start:stop, ::-1])
