"""Streamed writers of :mod:`tbeqtl.io` (VCF, PLINK 2, GCT) and the public header/chunk readers.

References: a whole-frame write (``write_vcf``/``write_pgen``/``write_gct``) and a streamed write of
the same values in two uneven blocks must give the same bytes; the written values are read back by
the package's readers and, independently of tbeqtl, by ``pysam.VariantFile`` / ``pysam.TabixFile``
(VCF), ``pgenlib.PgenReader`` (PLINK 2) and ``pandas.read_csv`` (GCT). The simulated GTEx cohort is
checked against digests recorded with the writers it had before they moved to :mod:`tbeqtl.io`
(compressed files by their decompressed text, the ``.pgen`` by its decoded calls, so that the
digests do not depend on the zlib or pgenlib build).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pgenlib
import pysam
import pytest

from tbeqtl.atomic import StagedFiles
from tbeqtl.errors import InputError
from tbeqtl.io import (
    GctWriter,
    PgenSource,
    PgenWriter,
    VcfWriter,
    is_bcf_file,
    iter_vcf_chunks,
    read_gct,
    read_gct_descriptions,
    read_gct_header,
    read_psam,
    read_pvar,
    read_vcf,
    vcf_contig_lines,
    vcf_text_header,
    write_gct,
    write_pgen,
    write_vcf,
)
from tbeqtl.simulate.gtex_cohort import write_gtex_cohort

SPLIT = 23  # first block of the streamed writes: an uneven split of the 57 variants / 40 genes


@pytest.fixture
def genotypes(rng):
    """57 variants x 13 individuals: hard calls with 5 % missing, on two chromosomes."""
    n, m = 57, 13
    ids = pd.Index([f"rs{i}" for i in range(n)], name="snp")
    geno = pd.DataFrame(
        rng.integers(0, 3, (n, m)).astype(float), index=ids, columns=[f"I{j:02d}" for j in range(m)]
    )
    geno = geno.mask(rng.random((n, m)) < 0.05)
    info = pd.DataFrame(
        {
            "chrom": ["chr1"] * 30 + ["chr2"] * 27,
            "pos": np.r_[np.arange(30) * 100 + 5, np.arange(27) * 50 + 7],
            "ref": rng.choice(list("AC"), n),
            "alt": rng.choice(list("GT"), n),
        },
        index=ids,
    )
    return geno, info


def _dosages(geno: pd.DataFrame, rng) -> pd.DataFrame:
    """Fractional dosages on every third variant (both streamed blocks hold some)."""
    out = geno.copy()
    out.iloc[::3] = rng.uniform(0, 2, out.iloc[::3].shape)
    return out.mask(geno.isna())


def _stream_vcf(path, geno, info, **kwargs):
    contigs = list(pd.unique(info["chrom"]))
    with VcfWriter(path, geno.columns, contigs=contigs, **kwargs) as writer:
        writer.write(geno.iloc[:SPLIT], info.iloc[:SPLIT])
        writer.write(geno.iloc[SPLIT:], info.iloc[SPLIT:])


# -------------------------------------------------------------------------------- VCF


@pytest.mark.parametrize("fractional", [False, True], ids=["hardcalls", "dosages"])
@pytest.mark.parametrize("name", ["g.vcf", "g.vcf.gz"])
def test_vcf_whole_frame_and_two_blocks_give_the_same_bytes(tmp_path, genotypes, rng, fractional, name):
    geno, info = genotypes
    if fractional:
        geno = _dosages(geno, rng)
    write_vcf(geno, tmp_path / f"whole_{name}", snp_info_df=info)
    _stream_vcf(tmp_path / f"streamed_{name}", geno, info)
    whole = (tmp_path / f"whole_{name}").read_bytes()
    assert whole == (tmp_path / f"streamed_{name}").read_bytes()
    if name.endswith(".gz"):
        assert whole[:4] == b"\x1f\x8b\x08\x04"  # BGZF: gzip with the extra field bgzip writes


def test_vcf_int8_codes_and_float_hardcalls_give_the_same_bytes(tmp_path, genotypes):
    geno, info = genotypes
    _stream_vcf(tmp_path / "f.vcf", geno, info)
    codes = geno.fillna(-9).to_numpy().astype(np.int8)
    with VcfWriter(tmp_path / "c.vcf", geno.columns, contigs=["chr1", "chr2"]) as writer:
        writer.write(codes, info)
    assert (tmp_path / "f.vcf").read_bytes() == (tmp_path / "c.vcf").read_bytes()


def test_vcf_read_back_by_pysam_and_read_vcf(tmp_path, genotypes, rng):
    geno, info = genotypes
    dosage = _dosages(geno, rng)
    path = tmp_path / "d.vcf.gz"
    _stream_vcf(path, dosage, info, index=True)
    hard = np.rint(dosage.to_numpy())
    gt, ds = np.full(dosage.shape, np.nan), np.full(dosage.shape, np.nan)
    with pysam.VariantFile(str(path)) as vf:
        assert list(vf.header.samples) == list(dosage.columns)
        records = list(vf)
    assert [r.id for r in records] == list(dosage.index)
    assert [r.pos for r in records] == list(info["pos"])
    assert [(r.ref, r.alts[0]) for r in records] == list(zip(info["ref"], info["alt"], strict=True))
    for i, rec in enumerate(records):
        for j, sample in enumerate(dosage.columns):
            call = rec.samples[sample]
            if None not in call["GT"]:
                gt[i, j] = sum(call["GT"])
            if call["DS"][0] is not None:
                ds[i, j] = call["DS"][0]
    np.testing.assert_array_equal(gt, hard)
    np.testing.assert_allclose(ds, dosage.to_numpy(), rtol=5e-6, atol=0)  # 6 significant digits
    pd.testing.assert_frame_equal(
        read_vcf(path).genotype_df,
        pd.DataFrame(hard, index=dosage.index, columns=pd.Index(dosage.columns, name="individual")),
        check_names=False,
    )
    back = read_vcf(path, field="DS").genotype_df
    np.testing.assert_allclose(back.to_numpy(), dosage.to_numpy(), rtol=5e-6)
    with pysam.TabixFile(str(path)) as tbx:  # the index written at close answers a region
        hits = list(tbx.fetch("chr2", 100, 400))
    expected = info[(info["chrom"] == "chr2") & (info["pos"] > 100) & (info["pos"] <= 400)]
    assert [line.split("\t")[2] for line in hits] == list(expected.index)


def test_vcf_meta_lines_info_and_fields(tmp_path, genotypes):
    geno, info = genotypes
    meta = [
        "##source=test",
        '##INFO=<ID=R2,Number=1,Type=Float,Description="r2">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        *vcf_contig_lines({"chr1": 5000, "chr2": 3000}),
    ]
    flags = [f"R2={v:.2f}" for v in np.linspace(0, 1, len(info))]
    with VcfWriter(tmp_path / "m.vcf", geno.columns, fields=("GT",), meta_lines=meta) as writer:
        writer.write(geno, info, info=flags)
    lines = (tmp_path / "m.vcf").read_text().splitlines()
    assert lines[: len(meta) + 1] == ["##fileformat=VCFv4.2", *meta]
    assert lines[len(meta) + 1].startswith("#CHROM\tPOS")
    skip, header = vcf_text_header(tmp_path / "m.vcf")
    assert skip == len(meta) + 1 and header[9:] == list(geno.columns)
    raw = pd.concat(iter_vcf_chunks(tmp_path / "m.vcf", columns=["ID", "INFO", "FORMAT"], chunk_size=10))
    assert list(raw["ID"]) == list(geno.index) and list(raw["INFO"]) == flags
    assert set(raw["FORMAT"]) == {"GT"}
    with pysam.VariantFile(str(tmp_path / "m.vcf")) as vf:
        assert [round(r.info["R2"], 2) for r in vf] == [float(f[3:]) for f in flags]


def test_vcf_header_readers_and_bcf_detection(tmp_path, genotypes):
    geno, info = genotypes
    write_vcf(geno, tmp_path / "t.vcf.gz", snp_info_df=info)
    with pysam.VariantFile(str(tmp_path / "t.vcf.gz")) as vf:
        with pysam.VariantFile(str(tmp_path / "t.bcf"), "wb", header=vf.header) as out:
            for rec in vf:
                out.write(rec)
    (tmp_path / "t.bcf").rename(tmp_path / "renamed.gz")  # BGZF bytes, a name that does not say BCF
    assert is_bcf_file(tmp_path / "renamed.gz")
    assert not is_bcf_file(tmp_path / "t.vcf.gz")
    chunks = list(iter_vcf_chunks(tmp_path / "t.vcf.gz", chunk_size=20))
    assert [len(c) for c in chunks] == [20, 20, 17]
    assert list(chunks[0].columns[9:]) == list(geno.columns)
    with pytest.raises(InputError, match="no columns"):
        next(iter_vcf_chunks(tmp_path / "t.vcf.gz", columns=["ID", "NOPE"]))


def test_vcf_writer_rejects_bad_blocks_and_leaves_nothing(tmp_path, genotypes):
    geno, info = genotypes
    path = tmp_path / "x.vcf.gz"
    path.write_bytes(b"old")  # an earlier file stays as it was when a write fails
    bad = geno.copy()
    bad.iloc[40, 2] = 2.5
    with pytest.raises(InputError, match="rs40"):
        with VcfWriter(path, geno.columns, contigs=["chr1", "chr2"]) as writer:
            writer.write(geno.iloc[:SPLIT], info.iloc[:SPLIT])
            writer.write(bad.iloc[SPLIT:], info.iloc[SPLIT:])
    with pytest.raises(InputError, match="I12"):
        with VcfWriter(path, geno.columns, contigs=["chr1"]) as writer:
            writer.write(geno[geno.columns[::-1]], info)
    codes = geno.fillna(-9).to_numpy().astype(np.int8)
    codes[3, 0] = 3
    with pytest.raises(InputError, match="rs3"), VcfWriter(path, geno.columns) as writer:
        writer.write(codes, info)
    with pytest.raises(InputError, match="DS"):
        VcfWriter(path, geno.columns, meta_lines=[vcf_contig_lines(["chr1"])[0]])
    with pytest.raises(InputError, match="tabix"):
        VcfWriter(tmp_path / "plain.vcf", geno.columns, index=True)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.vcf.gz"]


# -------------------------------------------------------------------------------- PLINK 2


def test_pgen_whole_frame_and_two_blocks_give_the_same_bytes(tmp_path, genotypes):
    geno, info = genotypes
    write_pgen(geno, info, tmp_path / "whole")
    with PgenWriter(tmp_path / "streamed", geno.columns, n_variants=len(geno)) as writer:
        writer.write(geno.iloc[:SPLIT], info.iloc[:SPLIT])
        writer.write(geno.fillna(-9).iloc[SPLIT:].to_numpy().astype(np.int8), info.iloc[SPLIT:])
    for suffix in (".pgen", ".pvar", ".psam"):
        assert (tmp_path / f"whole{suffix}").read_bytes() == (tmp_path / f"streamed{suffix}").read_bytes()


def test_pgen_read_back_by_pgenlib_and_pgen_source(tmp_path, genotypes):
    geno, info = genotypes
    with PgenWriter(tmp_path / "p.pgen", geno.columns, n_variants=len(geno)) as writer:
        writer.write(geno.iloc[:SPLIT], info.iloc[:SPLIT])
        writer.write(geno.iloc[SPLIT:], info.iloc[SPLIT:])
    calls = np.empty(geno.shape, dtype=np.int8)
    with pgenlib.PgenReader(str(tmp_path / "p.pgen").encode()) as reader:
        assert (reader.get_raw_sample_ct(), reader.get_variant_ct()) == (geno.shape[1], geno.shape[0])
        reader.read_range(0, len(geno), calls)  # ALT allele counts, -9 missing
    np.testing.assert_array_equal(calls, geno.fillna(-9).to_numpy())
    source = PgenSource(tmp_path / "p")
    values = np.vstack([source.read_chrom(c, samples=list(geno.columns)) for c in ("chr1", "chr2")])
    np.testing.assert_array_equal(values, geno.to_numpy(dtype=np.float32))
    variant_df, _ = read_pvar(tmp_path / "p.pvar")
    pd.testing.assert_frame_equal(variant_df, info.rename_axis("variant_id"), check_dtype=False)


def test_pgen_writer_sex_and_info_columns(tmp_path, genotypes):
    geno, info = genotypes
    sex = np.tile([1, 2], geno.shape[1])[: geno.shape[1]]
    flags = ["IMPUTED;R2=0.5" if i % 5 == 0 else "TYPED;R2=1.000" for i in range(len(geno))]
    with PgenWriter(tmp_path / "s", geno.columns, n_variants=len(geno), sex=sex, info_column=True) as writer:
        writer.write(geno.iloc[:SPLIT], info.iloc[:SPLIT], info=flags[:SPLIT])
        writer.write(geno.iloc[SPLIT:], info.iloc[SPLIT:])  # no info: "."
    psam = pd.read_csv(tmp_path / "s.psam", sep="\t")
    assert list(psam.columns) == ["#IID", "SEX"] and list(psam["SEX"]) == list(sex)
    assert list(read_psam(tmp_path / "s.psam")) == list(geno.columns)
    pvar = pd.read_csv(tmp_path / "s.pvar", sep="\t", keep_default_na=False)
    assert list(pvar.columns) == ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    assert list(pvar["INFO"]) == flags[:SPLIT] + ["."] * (len(geno) - SPLIT)
    assert set(pvar["FILTER"]) == {"PASS"}


def test_pgen_writer_counts_and_values_are_checked(tmp_path, genotypes):
    geno, info = genotypes
    with pytest.raises(InputError, match="22 variants written"):
        with PgenWriter(tmp_path / "short", geno.columns, n_variants=len(geno)) as writer:
            writer.write(geno.iloc[:22], info.iloc[:22])
    with pytest.raises(InputError, match="58 variants written"):
        with PgenWriter(tmp_path / "long", geno.columns, n_variants=len(geno)) as writer:
            writer.write(geno, info)
            writer.write(geno.iloc[:1], info.iloc[:1])
    frac = geno.fillna(0)
    frac.loc["rs7", "I03"] = 0.5
    with pytest.raises(InputError, match="rs7"):
        with PgenWriter(tmp_path / "frac", geno.columns, n_variants=len(geno)) as writer:
            writer.write(frac, info)
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------------- GCT


@pytest.fixture
def counts(rng):
    genes = pd.Index([f"ENSG{i:011d}.{i % 3 + 1}" for i in range(40)], name="gene")
    return pd.DataFrame(
        rng.integers(0, 50_000, (40, 9)), index=genes, columns=[f"GTEX-{j}-0001" for j in range(9)]
    )


@pytest.mark.parametrize("name", ["c.gct", "c.gct.gz"])
@pytest.mark.parametrize("kind", ["counts", "tpm"])
def test_gct_whole_frame_and_two_blocks_give_the_same_bytes(tmp_path, counts, rng, name, kind):
    df = counts if kind == "counts" else counts / 7.0  # both blocks hold non-integer values
    description = pd.Series([f"G{i}" if i % 4 else "" for i in range(len(df))], index=df.index)
    write_gct(df, tmp_path / f"whole_{name}", description=description)
    with GctWriter(tmp_path / f"streamed_{name}", df.columns, n_genes=len(df)) as writer:
        writer.write(df.iloc[:SPLIT], description=description)
        writer.write(df.iloc[SPLIT:], description=description)
    assert (tmp_path / f"whole_{name}").read_bytes() == (tmp_path / f"streamed_{name}").read_bytes()


def test_gct_read_back_and_header(tmp_path, counts):
    with GctWriter(tmp_path / "r.gct.gz", counts.columns, n_genes=len(counts)) as writer:
        writer.write(counts.iloc[:SPLIT], description=pd.Series({counts.index[0]: "FIRST"}))
        writer.write(counts.iloc[SPLIT:])
    assert read_gct_header(tmp_path / "r.gct.gz") == (40, 9, list(counts.columns))
    with gzip.open(tmp_path / "r.gct.gz", "rt") as handle:
        assert handle.readline() == "#1.2\n"
        table = pd.read_csv(handle, sep="\t", skiprows=1, index_col=0)
    pd.testing.assert_frame_equal(table.drop(columns="Description"), counts, check_names=False)
    names = table["Description"]
    assert names.iloc[0] == "FIRST" and (names.iloc[1:] == names.index[1:]).all()  # unnamed: the gene ID
    pd.testing.assert_frame_equal(read_gct(tmp_path / "r.gct.gz"), counts.rename_axis(columns="sample"))
    assert read_gct_descriptions(tmp_path / "r.gct.gz").iloc[0] == "FIRST"


def test_gct_writer_checks_genes_and_leaves_nothing(tmp_path, counts):
    path = tmp_path / "g.gct"
    with pytest.raises(InputError, match=counts.index[3].replace(".", r"\.")):
        with GctWriter(path, counts.columns, n_genes=len(counts)) as writer:
            writer.write(counts.iloc[:10])
            writer.write(counts.iloc[3:5])
    with pytest.raises(InputError, match="10 genes written"):
        with GctWriter(path, counts.columns, n_genes=len(counts)) as writer:
            writer.write(counts.iloc[:10])
    with pytest.raises(InputError, match="GTEX-0-0001"):
        with GctWriter(path, counts.columns, n_genes=len(counts)) as writer:
            writer.write(counts.iloc[:, ::-1])
    assert list(tmp_path.iterdir()) == []


# -------------------------------------------------------------------------------- staging


@pytest.fixture
def umask027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_writers_give_files_the_umask_mode(tmp_path, genotypes, counts, umask027):
    geno, info = genotypes
    write_vcf(geno, tmp_path / "u.vcf.gz", snp_info_df=info)
    _stream_vcf(tmp_path / "i.vcf.gz", geno, info, index=True)
    write_pgen(geno, info, tmp_path / "u")
    write_gct(counts, tmp_path / "u.gct.gz")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert len(modes) == 7 and set(modes.values()) == {0o640}, modes


@pytest.mark.parametrize("kind", ["vcf", "pgen", "gct"])
def test_an_error_mid_stream_leaves_the_old_files_and_no_temporaries(tmp_path, genotypes, counts, kind):
    geno, info = genotypes
    if kind == "vcf":
        before = {"o.vcf.gz": b"old vcf", "o.vcf.gz.tbi": b"old index"}
        writer = VcfWriter(tmp_path / "o.vcf.gz", geno.columns, index=True)
        block = (geno.iloc[:SPLIT], info.iloc[:SPLIT])
    elif kind == "pgen":
        before = {"o.pgen": b"old pgen", "o.pvar": b"old pvar", "o.psam": b"old psam"}
        writer = PgenWriter(tmp_path / "o", geno.columns, n_variants=len(geno))
        block = (geno.iloc[:SPLIT], info.iloc[:SPLIT])
    else:
        before = {"o.gct": b"old gct"}
        writer = GctWriter(tmp_path / "o.gct", counts.columns, n_genes=len(counts))
        block = (counts.iloc[:SPLIT],)
    for name, data in before.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(RuntimeError, match="killed"), writer:
        writer.write(*block)
        raise RuntimeError("killed mid-stream")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_staged_files_commit_together_or_not_at_all(tmp_path):
    (tmp_path / "a.txt").write_text("old")
    staged = StagedFiles()
    staged.stage(tmp_path / "a.txt").write_text("new a")
    staged.stage(tmp_path / "b.txt").write_text("new b")
    assert (tmp_path / "a.txt").read_text() == "old" and not (tmp_path / "b.txt").exists()
    staged.discard()
    assert (
        sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old"
    )
    with StagedFiles() as staged:
        staged.stage(tmp_path / "a.txt").write_text("new a")
        staged.stage(tmp_path / "b.txt").write_text("new b")
    assert [(tmp_path / n).read_text() for n in ("a.txt", "b.txt")] == ["new a", "new b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


# -------------------------------------------------------------------------------- GTEx cohort

#: Digests of a small simulated cohort, recorded with the cohort's own writers before they were replaced
#: by VcfWriter/PgenWriter/GctWriter (tbeqtl at 1df7db3): the same seed must give the same files.
_V8, _ANNOT = "GTEx_Analysis_2017-06-05_v8_", "GTEx_Analysis_v8_Annotations_"
COHORT_DIGESTS = {
    f"{_V8}RNASeQCv1.1.9_gene_reads.gct.gz": "79b1d5c04d870f74589633c914ebf5791a353a421ee6035d2011056c614691b0",  # noqa: E501
    f"{_V8}WholeGenomeSeq_44Indiv_Analysis_Freeze.pgen": "acacb31c1c7ac3d6c93a38b531489608e266175992a6e365ee2b165cfd2a79e5",  # noqa: E501
    f"{_V8}WholeGenomeSeq_44Indiv_Analysis_Freeze.psam": "862ff20972475abb4e0f4db5a2644cd171947a6088fb68716d2bec4a989f6b27",  # noqa: E501
    f"{_V8}WholeGenomeSeq_44Indiv_Analysis_Freeze.pvar": "127865d3de4408edea5348ae4874ee2614a671c0823d9d927647f61dea21172e",  # noqa: E501
    f"{_V8}WholeGenomeSeq_44Indiv_Analysis_Freeze.vcf.gz": "dd506a35f80a059fb0a76613eab810658383cdb2a2bc9cc541dd94dee0f32693",  # noqa: E501
    f"{_V8}WholeGenomeSeq_44Indiv_Analysis_Freeze.vcf.gz.tbi": "cd25708e19776a8e7fe8a267f6893a3f56222aac96faa23b30721b2f2edbbddc",  # noqa: E501
    f"{_ANNOT}SampleAttributesDS.txt": "418d7d3a974713c84970c5685ab925d623e92d25a0e2e85f311dbe02c0fbe63f",
    f"{_ANNOT}SubjectPhenotypesDS.txt": "e8ade82c8241cfa7ed916942bd51e81a6950b1cf9c9561abcb353a265a945855",
    "gencode.v26.GRCh38.genes.gtf": "6611af82f545671da9e044c7968c744ca441f4f876d91ba33fb9a6716e2228d7",
    "truth/eqtls.tsv": "61c562eded1994dabe8a0b4867ef998676a37ea998c776c4a6dabae10b954307",
    "truth/genes.tsv": "2f2e1b7dd2ce4bc4ad415add79af04bd5d1c18f4a2e03a221f9439020b668200",
    "truth/individuals.tsv": "aaef129064802cbc09e8502508d4464fcb73e3103793570f2babcdfd0032df72",
    "truth/params.json": "0902eb19383787126244dbad31f320e9597135b0f76318ef439abbc57c7482a8",
    "truth/snps.tsv": "a618e3e782a3116cc0a93e51920aef7e9c82a475d0c2b559199d4d197bcb38bd",
}


def _digest(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith((".gz", ".tbi")):
        data = gzip.decompress(data)  # bgzip/gzip bytes depend on the zlib build: compare the text
    elif path.suffix == ".pgen":  # the .pgen encoding may change with pgenlib: compare the decoded calls
        n_samples = len(path.with_suffix(".psam").read_text().splitlines()) - 1
        n_variants = len(path.with_suffix(".pvar").read_text().splitlines()) - 1
        calls = np.empty((n_variants, n_samples), dtype=np.int8)
        with pgenlib.PgenReader(str(path).encode()) as reader:
            reader.read_range(0, n_variants, calls)
        data = calls.tobytes()
    return hashlib.sha256(data).hexdigest()


def test_gtex_cohort_files_unchanged_for_the_same_seed(tmp_path):
    cohort = write_gtex_cohort(
        tmp_path / "c",
        n_tissues=3,
        n_individuals=40,
        n_extra_donors=4,
        n_samples=100,
        n_genes=120,
        n_snps=150,
        n_chromosomes=2,
        seed=11,
        n_topics=5,
        n_cis=3,
        n_trans=2,
    )
    got = {
        str(p.relative_to(cohort.path)): _digest(p)
        for p in sorted(cohort.path.rglob("*"))
        if p.is_file() and p.name != "cohort.json"
    }
    assert got == COHORT_DIGESTS
