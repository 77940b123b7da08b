"""Bad inputs: each raises InputError whose message names the offending file, row, column or ID."""

from __future__ import annotations

import gzip
import logging

import anndata
import numpy as np
import pandas as pd
import pytest
from test_io_support import make_data

from tbeqtl.errors import InputError
from tbeqtl.io import (
    read_counts,
    read_covariates,
    read_dataset,
    read_dosage_tsv,
    read_expression_bed,
    read_gct,
    read_gene_annotation,
    read_gtex_sample_attributes,
    read_h5ad,
    read_matrixeqtl_matrix,
    read_plink,
    read_sample_map,
    read_vcf,
    write_counts,
    write_dataset,
    write_gct,
    write_plink,
)

COUNTS_TSV = "gene_id\tS1\tS2\tS3\nG1\t1\t2\t3\nG2\t4\t5\t6\nG3\t7\t8\t9\n"


def write(path, text):
    path.write_text(text)
    return path


def raises(call, *needles):
    """Run ``call`` and check that it raises InputError mentioning every needle."""
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    for needle in needles:
        assert str(needle) in message, f"{needle!r} not in {message!r}"
    return info.value


# ----------------------------------------------------------------- files and parsers
def test_missing_file(tmp_path):
    raises(lambda: read_counts(tmp_path / "absent.tsv"), "absent.tsv", "does not exist")


def test_empty_file(tmp_path):
    path = write(tmp_path / "empty.tsv", "")
    raises(lambda: read_counts(path), "empty.tsv", "empty")


def test_header_only_counts(tmp_path):
    path = write(tmp_path / "header.tsv", "gene_id\tS1\tS2\n")
    raises(lambda: read_counts(path), "header.tsv", "empty")


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.tsv.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(range(200)))
    raises(lambda: read_counts(path), "bad.tsv.gz", "corrupt")


def test_truncated_gzip(tmp_path):
    path = tmp_path / "cut.tsv.gz"
    rows = "".join(f"G{i}\t{i}\t{i + 1}\t{i + 2}\n" for i in range(5000))
    full = gzip.compress(("gene_id\tS1\tS2\tS3\n" + rows).encode())
    path.write_bytes(full[: len(full) // 2])
    raises(lambda: read_counts(path), "cut.tsv.gz", "truncated")


def test_binary_file_as_text(tmp_path):
    path = tmp_path / "binary.tsv"
    path.write_bytes(b"gene_id\tS1\n" + bytes([0xFF, 0xFE, 0xFA, 0x80]) * 50)
    raises(lambda: read_counts(path), "binary.tsv")


def test_ragged_rows(tmp_path):
    path = write(tmp_path / "ragged.tsv", COUNTS_TSV + "G4\t1\t2\t3\t4\t5\n")
    raises(lambda: read_counts(path), "ragged.tsv", "malformed")


# ----------------------------------------------------------------- GCT
def test_truncated_gct(tmp_path):
    df = pd.DataFrame({"S1": [1, 2, 3], "S2": [4, 5, 6]}, index=["G1", "G2", "G3"])
    write_gct(df, tmp_path / "ok.gct")
    lines = (tmp_path / "ok.gct").read_text().splitlines()
    path = write(tmp_path / "short.gct", "\n".join(lines[:-1]) + "\n")
    raises(lambda: read_gct(path), "short.gct", "says 3 genes", "2 data rows")


def test_gct_wrong_version_and_dims(tmp_path):
    path = write(tmp_path / "v13.gct", "#1.3\n1\t1\nName\tDescription\tS1\nG1\tg\t1\n")
    raises(lambda: read_gct(path), "v13.gct", "#1.2")
    path = write(tmp_path / "dims.gct", "#1.2\n1\t3\nName\tDescription\tS1\nG1\tg\t1\n")
    raises(lambda: read_gct(path), "dims.gct", "3 samples", "lists 1")


# ----------------------------------------------------------------- counts content
def test_non_numeric_cell_names_row_and_column(tmp_path):
    path = write(tmp_path / "nn.tsv", COUNTS_TSV.replace("\t5\t", "\tfive\t"))
    raises(lambda: read_counts(path), "nn.tsv", "'five'", "'G2'", "'S2'")


def test_duplicate_gene_ids(tmp_path):
    path = write(tmp_path / "dup.tsv", COUNTS_TSV + "G2\t1\t1\t1\n")
    raises(lambda: read_counts(path), "dup.tsv", "duplicate gene", "G2")


def test_duplicate_sample_ids(tmp_path):
    path = write(tmp_path / "dups.tsv", COUNTS_TSV.replace("S3", "S1"))
    raises(lambda: read_counts(path), "dups.tsv", "S1")


def test_negative_counts(tmp_path):
    path = write(tmp_path / "neg.tsv", COUNTS_TSV.replace("\t8\t", "\t-8\t"))
    raises(lambda: read_counts(path), "neg.tsv", "negative", "G3")


def test_non_integer_counts_error_or_round(tmp_path, caplog):
    path = write(tmp_path / "frac.tsv", COUNTS_TSV.replace("\t4\t", "\t4.4\t"))
    raises(lambda: read_counts(path), "frac.tsv", "non-integer", "G2", "round")
    with caplog.at_level(logging.WARNING):
        counts = read_counts(path, non_integer="round")
    assert counts.loc["G2", "S1"] == 4
    assert "rounding non-integer counts in 1 genes: G2" in caplog.text


# ----------------------------------------------------------------- genotypes
def test_dosage_out_of_range(tmp_path):
    path = write(tmp_path / "dos.tsv", "snp\tI1\tI2\nrs1\t0\t2\nrs2\t1\t3\nrs3\tNA\t-0.5\n")
    error = raises(lambda: read_dosage_tsv(path), "dos.tsv", "outside [0, 2]", "rs2", "rs3")
    assert error.ids == ["rs2", "rs3"]


def test_bim_wrong_columns(tmp_path):
    data = make_data()
    write_plink(data.genotype_df, tmp_path / "g", snp_info_df=data.snp_info_df)
    bim = (tmp_path / "g.bim").read_text().splitlines()
    write(tmp_path / "g.bim", "\n".join(" ".join(line.split()[:5]) for line in bim) + "\n")
    raises(lambda: read_plink(tmp_path / "g"), "g.bim", "6 columns")


def test_bim_non_integer_position(tmp_path):
    data = make_data()
    write_plink(data.genotype_df, tmp_path / "g", snp_info_df=data.snp_info_df)
    bim = (tmp_path / "g.bim").read_text().splitlines()
    fields = bim[2].split("\t")
    fields[3] = "12x"
    bim[2] = "\t".join(fields)
    write(tmp_path / "g.bim", "\n".join(bim) + "\n")
    raises(lambda: read_plink(tmp_path / "g"), "g.bim", "'12x'", "lines: 3")


def test_fam_duplicate_individual(tmp_path):
    data = make_data()
    write_plink(data.genotype_df, tmp_path / "g")
    fam = (tmp_path / "g.fam").read_text().splitlines()
    fam[1] = fam[0]
    write(tmp_path / "g.fam", "\n".join(fam) + "\n")
    raises(lambda: read_plink(tmp_path / "g"), "g.fam", "duplicate", "GTEX-IND0")


def test_bed_truncated_or_bad_magic(tmp_path):
    data = make_data()
    write_plink(data.genotype_df, tmp_path / "g")
    raw = (tmp_path / "g.bed").read_bytes()
    (tmp_path / "g.bed").write_bytes(raw[:-3])
    raises(lambda: read_plink(tmp_path / "g"), "g.bed", "truncated")
    (tmp_path / "g.bed").write_bytes(b"\x00\x00\x00" + raw[3:])
    raises(lambda: read_plink(tmp_path / "g"), "g.bed", "magic")


def test_plink_missing_fam(tmp_path):
    data = make_data()
    write_plink(data.genotype_df, tmp_path / "g")
    (tmp_path / "g.fam").unlink()
    raises(lambda: read_plink(tmp_path / "g"), "g.fam")


def test_vcf_bad_calls_and_missing_field(tmp_path):
    head = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\n"
    path = write(tmp_path / "x.vcf", head + "1\t10\trs1\tA\tG\t.\t.\t.\tGT\t0/1\t0/2\n")
    raises(lambda: read_vcf(path), "x.vcf", "'0/2'", "rs1", "sample B")
    raises(lambda: read_vcf(path, field="DS"), "x.vcf", "no DS field", "rs1")
    path = write(tmp_path / "ds.vcf", head + "1\t10\trs9\tA\tG\t.\t.\t.\tDS\t0.5\t2.5\n")
    raises(lambda: read_vcf(path, field="DS"), "ds.vcf", "outside [0, 2]", "rs9")


# ----------------------------------------------------------------- annotation and tables
def test_gene_bed_malformed(tmp_path):
    path = write(tmp_path / "genes.bed", "chr1\t100\t200\tG1\nchr1\tabc\t300\tG2\n")
    raises(lambda: read_gene_annotation(path), "genes.bed", "start", "G2")
    path = write(tmp_path / "short.bed", "chr1\t100\t200\n")
    raises(lambda: read_gene_annotation(path), "short.bed", "at least 4 columns")
    path = write(tmp_path / "rev.bed", "chr1\t500\t200\tG7\n")
    raises(lambda: read_gene_annotation(path), "rev.bed", "end < start", "G7")


def test_expression_bed_non_numeric(tmp_path):
    path = write(tmp_path / "e.bed", "#chr\tstart\tend\tphenotype_id\tS1\tS2\nchr1\t9\t10\tG1\t0.5\tNaNx\n")
    raises(lambda: read_expression_bed(path), "e.bed", "'NaNx'", "'G1'", "'S2'")


def test_sample_map_problems(tmp_path):
    path = write(tmp_path / "map.tsv", "sample\tdonor\nS1\tI1\n")
    raises(lambda: read_sample_map(path), "map.tsv", "individual")
    path = write(tmp_path / "dup.tsv", "sample\tindividual\nS1\tI1\nS1\tI2\n")
    raises(lambda: read_sample_map(path), "dup.tsv", "duplicate", "S1")


def test_gtex_sample_id_not_gtex_style(tmp_path):
    path = write(tmp_path / "attrs.txt", "SAMPID\tSMTSD\nGTEX-1117F-0226-SM-5GZZ7\tLung\nBADID\tLung\n")
    raises(lambda: read_gtex_sample_attributes(path), "attrs.txt", "BADID")


def test_covariates_ambiguous_missing_and_nan(tmp_path):
    path = write(tmp_path / "c.tsv", "id\tS1\tS2\nS1\t1\t2\nage\t30\t40\n")
    raises(lambda: read_covariates(path, samples=["S1", "S2"]), "c.tsv", "ambiguous")
    path = write(tmp_path / "c2.tsv", "id\tS1\tS2\nage\t30\t40\n")
    raises(lambda: read_covariates(path, samples=["S1", "S2", "S3"]), "c2.tsv", "lacks samples", "S3")
    raises(lambda: read_covariates(path, samples=["X1"]), "c2.tsv", "no known sample ID")
    path = write(tmp_path / "c3.tsv", "id\tS1\tS2\tS3\nage\t30\tNA\t50\n")
    raises(lambda: read_covariates(path, samples=["S1", "S2", "S3"]), "c3.tsv", "'age'", "S2")


def test_matrixeqtl_non_numeric(tmp_path):
    path = write(tmp_path / "SNP.txt", "snpid\tS1\tS2\nrs1\t0\t1\nrs2\t2\tAA\n")
    raises(lambda: read_matrixeqtl_matrix(path), "SNP.txt", "'AA'", "'rs2'", "'S2'")


def test_h5ad_problems(tmp_path):
    obs = pd.DataFrame({"donor": ["D1", "D1", None]}, index=["c1", "c2", "c3"])
    adata = anndata.AnnData(
        X=np.ones((3, 2), dtype=np.float32), obs=obs, var=pd.DataFrame(index=["g1", "g2"])
    )
    adata.write_h5ad(tmp_path / "sc.h5ad")
    raises(
        lambda: read_h5ad(tmp_path / "sc.h5ad", donor_column="individual"), "sc.h5ad", "'individual'", "donor"
    )
    raises(lambda: read_h5ad(tmp_path / "sc.h5ad", donor_column="donor"), "sc.h5ad", "without a donor", "c3")
    (tmp_path / "junk.h5ad").write_bytes(b"not an hdf5 file at all" * 10)
    raises(lambda: read_h5ad(tmp_path / "junk.h5ad", donor_column="donor"), "junk.h5ad")


# ----------------------------------------------------------------- data set alignment
def _dataset(tmp_path):
    data = make_data()
    write_dataset(data, tmp_path)
    return data


def test_dataset_sample_not_in_map(tmp_path):
    data = _dataset(tmp_path)
    lines = (tmp_path / "sample_map.tsv").read_text().splitlines()
    dropped = lines.pop(3).split("\t")[0]
    write(tmp_path / "sample_map.tsv", "\n".join(lines) + "\n")
    raises(lambda: read_dataset(tmp_path), "not in the sample map", dropped)
    assert dropped in data.samples
    relaxed = read_dataset(tmp_path, drop_unmatched=True)
    assert dropped not in relaxed.samples


def test_dataset_individual_without_genotypes(tmp_path):
    _dataset(tmp_path)
    text = (tmp_path / "sample_map.tsv").read_text().replace("\tGTEX-IND2\n", "\tGTEX-NOGENO\n")
    write(tmp_path / "sample_map.tsv", text)
    raises(lambda: read_dataset(tmp_path), "no genotypes", "GTEX-NOGENO")


def test_dataset_genotyped_individual_without_samples(tmp_path):
    data = _dataset(tmp_path)
    keep = data.samples[data.sample_map_s.to_numpy() != "GTEX-IND5"]
    write_counts(data.counts_df[keep], tmp_path / "counts.tsv.gz")
    raises(lambda: read_dataset(tmp_path, counts="tsv"), "no expression samples", "GTEX-IND5")


def test_dataset_missing_counts(tmp_path):
    _dataset(tmp_path)
    (tmp_path / "counts.gct.gz").unlink()
    (tmp_path / "counts.tsv.gz").unlink()
    raises(lambda: read_dataset(tmp_path), "no counts", str(tmp_path))


def test_uninformative_features_dropped_with_logged_count(tmp_path, caplog):
    path = write(tmp_path / "d.tsv", "snp\tI1\tI2\tI3\nrs1\t0\t1\t2\nrs2\tNA\tNA\tNA\nrs3\t1\t1\tNA\n")
    with caplog.at_level(logging.INFO, logger="tbeqtl"):
        geno = read_dosage_tsv(path, drop_uninformative=True)
    assert list(geno.index) == ["rs1"]
    assert "dropped 2 SNPs: 1 all-missing, 1 constant: rs2, rs3" in caplog.text
