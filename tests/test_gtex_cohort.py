"""The simulated GTEx-format cohort (issue 15): files in GTEx's formats, read back by the package's readers.

References: every count below is recomputed here with pandas/numpy from the files themselves (the
generator's truth tables are only used to say which rows were meant to be rare/missing/imputed), the
streamed ``.pgen`` is compared byte for byte with :func:`tbeqtl.io.write_pgen` of the same calls, and
the planted cis-eQTLs are checked by a direct OLS slope.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tbeqtl.cli import main
from tbeqtl.errors import InputError
from tbeqtl.io import (
    PgenSource,
    VCFSource,
    read_gct,
    read_gene_annotation,
    read_gtex_sample_attributes,
    read_gtex_subject_phenotypes,
    read_pvar,
    read_vcf,
    write_pgen,
)
from tbeqtl.pipeline.prepared import PreparedData
from tbeqtl.simulate.gtex_cohort import GtexCohort, write_gtex_cohort

SMALL = dict(
    n_tissues=4,
    n_individuals=120,
    n_extra_donors=10,
    n_samples=400,
    n_genes=300,
    n_snps=400,
    n_chromosomes=3,
    seed=5,
    n_topics=8,
    n_cis=6,
    n_trans=3,
)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> GtexCohort:
    return write_gtex_cohort(tmp_path_factory.mktemp("gtex") / "cohort", **SMALL)


@pytest.fixture(scope="module")
def vcf_geno(cohort) -> pd.DataFrame:
    return read_vcf(cohort.vcf).genotype_df


def _rna_samples(cohort) -> pd.DataFrame:
    attrs = read_gtex_sample_attributes(cohort.sample_attributes)
    return attrs[attrs["SMAFRZE"] == "RNASEQ"]


def test_files_have_gtex_names_and_shapes(cohort):
    names = sorted(p.name for p in cohort.path.iterdir())
    assert "GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9_gene_reads.gct.gz" in names
    assert "GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt" in names
    assert "GTEx_Analysis_v8_Annotations_SubjectPhenotypesDS.txt" in names
    assert "GTEx_Analysis_2017-06-05_v8_WholeGenomeSeq_130Indiv_Analysis_Freeze.vcf.gz.tbi" in names
    for suffix in (".pgen", ".pvar", ".psam"):
        assert f"GTEx_Analysis_2017-06-05_v8_WholeGenomeSeq_130Indiv_Analysis_Freeze{suffix}" in names
    assert "cohort.json" in names and not [n for n in names if n.startswith(".")]
    counts = read_gct(cohort.counts)
    assert counts.shape == (300, 400)
    with gzip.open(cohort.counts, "rt") as handle:
        assert handle.readline() == "#1.2\n" and handle.readline() == "300\t400\n"
        assert handle.readline().startswith("Name\tDescription\tGTEX-")
    rna = _rna_samples(cohort)
    assert set(rna.index) == set(counts.columns)
    assert rna["tissue"].nunique() == 4
    assert rna.groupby(["individual", "tissue"]).size().max() == 1  # one sample per tissue per donor
    assert {"SMTS", "SMRIN", "SMGEBTCHT", "SMTSISCH"} <= set(rna.columns)


def test_extra_donors_only_in_genotypes_and_subjects(cohort, vcf_geno):
    rna = _rna_samples(cohort)
    subjects = read_gtex_subject_phenotypes(cohort.subject_phenotypes)
    assert list(subjects.columns) == ["sex", "AGE", "DTHHRDY"]
    assert set(subjects["sex"]) == {1, 2}
    donors = set(vcf_geno.columns)
    expressed = set(rna["individual"])
    assert len(donors) == 130 and len(expressed) == 120 and expressed < donors
    assert set(subjects.index) == donors
    assert list(vcf_geno.columns) == sorted(vcf_geno.columns)  # genotype files list donors sorted by ID
    wgs = read_gtex_sample_attributes(cohort.sample_attributes)
    assert set(wgs.loc[wgs["SMAFRZE"] == "WGS", "individual"]) == donors


def test_gtf_types_chrx_and_gct_description(cohort):
    genes = read_gene_annotation(cohort.genes)
    counts_genes = read_gct(cohort.counts).index
    assert set(genes.index) == set(counts_genes) and len(genes) == 300
    types = genes["gene_type"].value_counts()
    assert types["protein_coding"] > 100 and types["lincRNA"] > 20
    assert types.drop(["protein_coding", "lincRNA"]).sum() > 30
    assert (genes["chrom"] == "chrX").sum() >= 3
    assert set(genes["chrom"]) == {"chr1", "chr2", "chr3", "chrX"}
    with gzip.open(cohort.counts, "rt") as handle:
        table = pd.read_csv(handle, sep="\t", skiprows=2, usecols=["Name", "Description"], index_col=0)
    assert (table["Description"] == genes["gene_name"].reindex(table.index)).all()


def test_pgen_equals_vcf_and_package_writer(cohort, vcf_geno, tmp_path):
    source = PgenSource(cohort.pgen)
    assert list(source.samples) == list(vcf_geno.columns)
    blocks = [source.read_chrom(c, samples=list(vcf_geno.columns)) for c in source.chromosomes]
    pgen_values = np.vstack(blocks)
    assert list(source.variant_df.index) == list(vcf_geno.index)
    np.testing.assert_array_equal(pgen_values, vcf_geno.to_numpy(dtype=np.float32))
    # the streamed .pgen is the file the package's one-shot writer makes of the same calls
    variant_df, _ = read_pvar(f"{cohort.pgen}.pvar")
    write_pgen(vcf_geno, variant_df, tmp_path / "ref")
    assert (tmp_path / "ref.pgen").read_bytes() == cohort.pgen.with_suffix(".pgen").read_bytes()
    assert VCFSource(cohort.vcf).indexed  # bgzip + tabix
    assert set(source.chromosomes) == {"chr1", "chr2", "chr3", "chrX"}


def _pvar_info(cohort) -> pd.Series:
    pvar = pd.read_csv(f"{cohort.pgen}.pvar", sep="\t", usecols=["ID", "INFO"], index_col=0)
    return pvar["INFO"]


def test_variant_classes_present(cohort, vcf_geno):
    expressed = sorted(set(_rna_samples(cohort)["individual"]))
    y = vcf_geno[expressed].to_numpy()
    freq = np.nanmean(y, axis=1) / 2
    maf = np.minimum(freq, 1 - freq)
    missing = np.isnan(vcf_geno.to_numpy()).mean(axis=1)
    info = _pvar_info(cohort).reindex(vcf_geno.index)
    imputed = info.str.split(";").map(lambda f: "IMPUTED" in f).to_numpy()
    assert 5 <= (maf < 0.01).sum() <= 60
    assert 3 <= (missing > 0.05).sum() <= 40
    assert 20 <= imputed.sum() <= 80
    with gzip.open(cohort.vcf, "rt") as handle:
        vcf_info = [line.split("\t")[7] for line in handle if not line.startswith("#")]
    assert list(info) == vcf_info  # the same INFO flags in both formats


def _ld_pairs(geno: pd.DataFrame, pos: pd.DataFrame, *, window: int = 200_000, r2: float = 0.2) -> int:
    """Pairs of SNPs within ``window`` bp on one chromosome with pairwise-complete r^2 >= ``r2``."""
    n = 0
    for _, rows in pos.groupby("chrom").groups.items():
        sub = pos.loc[rows].sort_values("pos")
        y = geno.loc[sub.index].to_numpy()
        for i in range(len(sub)):
            near = np.flatnonzero(
                (sub["pos"].to_numpy() - sub["pos"].iloc[i] <= window) & (np.arange(len(sub)) > i)
            )
            for j in near:
                ok = ~np.isnan(y[i]) & ~np.isnan(y[j])
                if ok.sum() > 2 and y[i][ok].std() > 0 and y[j][ok].std() > 0:
                    n += np.corrcoef(y[i][ok], y[j][ok])[0, 1] ** 2 >= r2
    return int(n)


def test_ld_structure_gives_pruning_work(cohort, vcf_geno):
    info = read_vcf(cohort.vcf).snp_info_df
    pairs = _ld_pairs(vcf_geno, info)
    assert pairs >= 100  # about two thirds of the SNPs sit in blocks of correlated neighbours


def test_median_filter_has_work(cohort):
    counts = read_gct(cohort.counts)
    rna = _rna_samples(cohort)
    medians = counts.T.groupby(rna["tissue"].reindex(counts.columns)).median().T
    kept = (medians >= 5).any(axis=1)
    assert 10 <= (~kept).sum() <= 120
    assert ((medians >= 5).sum(axis=1) == 1).sum() >= 1  # expressed in one tissue only


def test_planted_cis_eqtls_visible(cohort, vcf_geno):
    eqtls = pd.read_csv(cohort.truth / "eqtls.tsv", sep="\t")
    cis = eqtls[eqtls["kind"] == "cis"]
    counts = read_gct(cohort.counts)
    rna = _rna_samples(cohort)
    logcpm = np.log(counts / counts.sum(axis=0) * 1e6 + 1)
    agree = 0
    for snp, gene, effect in zip(cis["snp"], cis["gene"], cis["effect"], strict=True):
        x = vcf_geno.loc[snp].reindex(rna["individual"].reindex(counts.columns)).to_numpy()
        y = logcpm.loc[gene].to_numpy()
        ok = ~np.isnan(x)
        slope = np.polyfit(x[ok], y[ok], 1)[0]
        agree += np.sign(slope) == np.sign(effect)
    assert agree >= len(cis) - 1


def test_same_seed_same_files_and_reuse(cohort, tmp_path):
    again = write_gtex_cohort(tmp_path / "again", **SMALL)
    for name in ("counts", "sample_attributes", "subject_phenotypes", "genes", "vcf"):
        assert getattr(again, name).read_bytes() == getattr(cohort, name).read_bytes(), name
    stamp = again.counts.stat().st_mtime_ns
    reused = write_gtex_cohort(tmp_path / "again", reuse=True, **SMALL)
    assert reused.counts.stat().st_mtime_ns == stamp


def test_bad_requests(cohort, tmp_path):
    with pytest.raises(InputError, match="not empty"):
        write_gtex_cohort(cohort.path, **SMALL)
    with pytest.raises(InputError, match="formats"):
        write_gtex_cohort(tmp_path / "x", formats=("bgen",), **SMALL)
    with pytest.raises(InputError):
        write_gtex_cohort(tmp_path / "y", **{**SMALL, "n_samples": 500})  # > 120 donors x 4 tissues
    assert not (tmp_path / "y").exists() and not list(tmp_path.glob(".y*"))


# ------------------------------------------------------------------ tbeqtl prepare on the GTEx-format files

AUTOSOMES = {f"chr{i}" for i in range(1, 23)}


def _prepare(cohort, genotypes, out) -> PreparedData:
    argv = [
        "prepare",
        "--counts", str(cohort.counts),
        "--sample-attributes", str(cohort.sample_attributes),
        "--subject-attributes", str(cohort.subject_phenotypes),
        "--genotypes", str(genotypes),
        "--genes", str(cohort.genes),
        "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    return PreparedData.open(out, verify=True)


@pytest.fixture(scope="module")
def prepared(cohort, tmp_path_factory) -> dict[str, PreparedData]:
    root = tmp_path_factory.mktemp("prepared")
    return {fmt: _prepare(cohort, getattr(cohort, fmt), root / fmt) for fmt in ("pgen", "vcf")}


def _expected_selection(cohort, vcf_geno) -> dict:
    """The paper's feature selection computed directly from the files with pandas/numpy."""
    counts = read_gct(cohort.counts)
    attrs = read_gtex_sample_attributes(cohort.sample_attributes).reindex(counts.columns)
    individuals = sorted(set(attrs["individual"]) & set(vcf_geno.columns))
    genes = read_gene_annotation(cohort.genes).reindex(counts.index)
    typed = genes.index[
        genes["gene_type"].isin(["protein_coding", "lincRNA"]) & genes["chrom"].isin(AUTOSOMES)
    ]
    medians = counts.loc[typed].T.groupby(attrs["tissue"]).median().T
    pvar = pd.read_csv(f"{cohort.pgen}.pvar", sep="\t", index_col="ID")
    y = vcf_geno[individuals]
    auto = y.index[pvar["#CHROM"].reindex(y.index).isin(AUTOSOMES)]
    typed_snps = [s for s in auto if "IMPUTED" not in pvar.at[s, "INFO"].split(";")]
    missing = y.loc[typed_snps].isna().mean(axis=1)
    ok_missing = missing.index[missing <= 0.05]
    freq = y.loc[ok_missing].mean(axis=1, skipna=True) / 2
    maf = np.minimum(freq, 1 - freq)
    return {
        "n_samples": counts.shape[1],
        "n_individuals": len(individuals),
        "genes_type_autosome": len(typed),
        "genes": set(medians.index[(medians >= 5).any(axis=1)]),
        "snps_autosomal": len(auto),
        "snps_not_imputed": len(typed_snps),
        "snps_missing_ok": len(ok_missing),
        "snps_filtered": list(maf.index[maf >= 0.01]),
    }


def test_prepare_selection_matches_direct_computation(cohort, vcf_geno, prepared):
    want = _expected_selection(cohort, vcf_geno)
    got = prepared["pgen"]
    counts = got.manifest["counts"]
    assert counts["n_samples"] == want["n_samples"] == 400
    assert counts["n_individuals"] == want["n_individuals"] == 120  # the 10 extra donors left out
    assert counts["genes_type_autosome"] == want["genes_type_autosome"]
    assert set(got.gene_info_df.index) == want["genes"]
    assert 0 < len(want["genes"]) < want["genes_type_autosome"]  # the median rule removed genes
    for key in ("snps_autosomal", "snps_not_imputed", "snps_missing_ok"):
        assert counts[key] == want[key], key
    assert counts["snps_maf_ok"] == len(want["snps_filtered"])
    kept = got.snp_info_df.index
    assert set(kept) <= set(want["snps_filtered"]) and len(kept) < 0.8 * len(want["snps_filtered"])
    assert set(got.gene_chromosomes) | set(got.snp_chromosomes) <= AUTOSOMES


def _r2(a: np.ndarray, b: np.ndarray) -> float:
    ok = ~np.isnan(a) & ~np.isnan(b)
    x, y = a[ok], b[ok]
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1] ** 2)


def test_ld_pruning_by_direct_r2(cohort, vcf_geno, prepared):
    """No kept pair within 200 kb has r^2 >= 0.2; every pruned SNP had r^2 > 0.2 with a neighbour."""
    got = prepared["pgen"]
    individuals = list(got.individual_info_df.index)
    want = _expected_selection(cohort, vcf_geno)["snps_filtered"]
    info = read_vcf(cohort.vcf).snp_info_df.loc[want]
    y = vcf_geno.loc[want, individuals]
    kept = set(got.snp_info_df.index)
    n_checked = 0
    for _, sub in info.groupby("chrom"):
        pos, ids = sub["pos"].to_numpy(), list(sub.index)
        for i, a in enumerate(ids):
            near = [b for j, b in enumerate(ids) if j != i and abs(pos[j] - pos[i]) < 200_000]
            r2 = {b: _r2(y.loc[a].to_numpy(), y.loc[b].to_numpy()) for b in near}
            if a in kept:
                assert all(r2[b] < 0.2 for b in near if b in kept), a
                n_checked += sum(b in kept for b in near)
            else:
                assert max(r2.values(), default=0.0) > 0.2, a
    assert n_checked > 0


def test_vcf_and_pgen_give_the_same_prepared_folder(prepared):
    a, b = prepared["pgen"], prepared["vcf"]
    assert a.gene_chromosomes == b.gene_chromosomes and a.snp_chromosomes == b.snp_chromosomes
    pd.testing.assert_frame_equal(a.snp_info_df, b.snp_info_df)
    pd.testing.assert_frame_equal(a.gene_info_df, b.gene_info_df)
    pd.testing.assert_frame_equal(a.sample_info_df, b.sample_info_df)
    for chrom in a.snp_chromosomes:
        pd.testing.assert_frame_equal(a.load_genotypes(chrom), b.load_genotypes(chrom))
    for chrom in a.gene_chromosomes:
        pd.testing.assert_frame_equal(a.load_counts(chrom), b.load_counts(chrom))


def test_prepared_partitions_hold_the_input_values(cohort, vcf_geno, prepared):
    got = prepared["pgen"]
    counts = read_gct(cohort.counts)
    for chrom in got.gene_chromosomes:
        part = got.load_counts(chrom)
        np.testing.assert_array_equal(part.to_numpy(), counts.loc[part.index, part.columns].to_numpy())
    for chrom in got.snp_chromosomes:
        part = got.load_genotypes(chrom)
        np.testing.assert_array_equal(part.to_numpy(), vcf_geno.loc[part.index, part.columns].to_numpy())


# ------------------------------------------------------------------ tbeqtl run on the prepared folder


@pytest.mark.slow
def test_run_reads_the_prepared_folder(prepared, tmp_path):
    """``tbeqtl run --data DIR`` on the folder ``prepare`` wrote from the GTEx files (no renaming)."""
    folder = prepared["vcf"]
    out = tmp_path / "run"
    argv = ["run", "--preset", "paper", "--data", str(folder.path), "--pairs", "chr1:chr2"]
    assert main([*argv, "--workers", "0", "--max-steps", "20", "--n-topics", "6", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    pair = run["pairs"]["chr1__chr2"]
    assert pair["status"] == "done", pair["message"]
    assert pair["seconds_fit"] > 0 and pair["seconds"] >= pair["seconds_fit"] + pair["seconds_load"]
    assert Path(run["data"]) == folder.path
    status = pd.read_csv(out / "summary" / "pairs.tsv", sep="\t").set_index("pair")
    assert status.at["chr1__chr2", "n_genes"] == len(folder.load_counts("chr1"))
    assert status.at["chr1__chr2", "n_snps"] == len(folder.load_genotypes("chr2"))
    held = run["holdout"]
    assert held["n_samples"] == 400 and 0 < held["n_held_out"] < 400
