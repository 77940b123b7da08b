"""Every reader turns garbage input into InputError naming the file (never a parser traceback)."""

from __future__ import annotations

import gzip

import pytest

from tbeqtl.errors import InputError
from tbeqtl.io import (
    read_counts,
    read_covariates,
    read_dosage_tsv,
    read_expression_bed,
    read_gct,
    read_gene_annotation,
    read_gtex_sample_attributes,
    read_gtex_subject_phenotypes,
    read_h5ad,
    read_matrixeqtl_matrix,
    read_plink,
    read_sample_map,
    read_snp_positions,
    read_vcf,
)

READERS = {
    "counts.tsv": read_counts,
    "counts.gct": read_gct,
    "dosage.tsv": read_dosage_tsv,
    "geno.bed": read_plink,
    "geno.bim": lambda p: read_plink(p.with_suffix("")),
    "calls.vcf": read_vcf,
    "SNP.txt": read_matrixeqtl_matrix,
    "covs.tsv": lambda p: read_covariates(p, orientation="covariates_by_samples"),
    "genes.gtf": read_gene_annotation,
    "genes.bed": read_gene_annotation,
    "genes.tsv": read_gene_annotation,
    "snps.tsv": read_snp_positions,
    "expr.bed": read_expression_bed,
    "map.tsv": read_sample_map,
    "attrs.txt": read_gtex_sample_attributes,
    "subjects.txt": read_gtex_subject_phenotypes,
    "cells.h5ad": lambda p: read_h5ad(p, donor_column="donor"),
}

GARBAGE = {
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "one_word": b"hello\n",
    "prose": b"this is not a table, just some words; really\nand a second line\n",
    "truncated_gzip": gzip.compress(b"a\tb\tc\n" + b"x\t1\t2\n" * 5000)[:300],
    "header_only": b"id\tS1\tS2\n",
}


@pytest.mark.parametrize("garbage", list(GARBAGE))
@pytest.mark.parametrize("name", list(READERS))
def test_reader_rejects_garbage(tmp_path, name, garbage):
    path = tmp_path / name
    path.write_bytes(GARBAGE[garbage])
    if name == "geno.bim":  # a PLINK set whose .bim is garbage next to valid-looking siblings
        (tmp_path / "geno.bed").write_bytes(b"\x6c\x1b\x01")
        (tmp_path / "geno.fam").write_text("F I 0 0 1 -9\n")
    if name == "geno.bed":
        (tmp_path / "geno.bim").write_text("1\trs1\t0\t10\tA\tG\n")
        (tmp_path / "geno.fam").write_text("F I 0 0 1 -9\n")
    with pytest.raises(InputError) as info:
        READERS[name](path)
    assert "geno" in str(info.value) or name in str(info.value)
