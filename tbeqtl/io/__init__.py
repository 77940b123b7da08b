"""Readers and writers for expression counts, genotypes, annotation and whole data sets.

Conventions shared by every reader:

- tables come back as DataFrames indexed by stable IDs: expression genes x samples,
  genotypes SNPs x individuals (dosage = number of ALT/A1 alleles, float64, NaN missing),
  covariates covariates x samples (MatrixEQTL orientation);
- positions are 1-based and closed in memory (BED starts are shifted on reading and
  writing); chromosome names are harmonised to the ``chr1`` style;
- every problem with an input raises :class:`~tbeqtl.errors.InputError` naming the file
  and the offending IDs, rows or columns; parser exceptions never escape;
- every writer writes atomically (gzip output is deterministic).
"""

from __future__ import annotations

from .annotation import (
    harmonize_gene_types,
    read_gene_annotation,
    strip_version,
    write_gene_bed,
)
from .counts import read_counts, write_counts
from .covariates import read_covariates
from .dataset import DATASET_FILES, read_dataset, write_dataset
from .dosage import iter_dosage_tsv_blocks, read_dosage_tsv, write_dosage_tsv
from .expression_bed import ExpressionBed, read_expression_bed, write_expression_bed
from .gct import read_gct, read_gct_descriptions, write_gct
from .gtex import (
    gtex_donor_ids,
    read_gtex_sample_attributes,
    read_gtex_subject_phenotypes,
    write_gtex_sample_attributes,
    write_gtex_subject_phenotypes,
)
from .h5ad import SingleCellCounts, read_h5ad
from .matrixeqtl import (
    read_matrixeqtl_geneloc,
    read_matrixeqtl_matrix,
    read_matrixeqtl_snpsloc,
    write_matrixeqtl_geneloc,
    write_matrixeqtl_matrix,
    write_matrixeqtl_snpsloc,
)
from .plink import PlinkGenotypes, iter_plink_blocks, read_bim, read_fam, read_plink, write_plink
from .sample_map import read_sample_map, write_sample_map
from .snp_positions import read_snp_positions
from .vcf import VCFGenotypes, iter_vcf_blocks, read_vcf, write_vcf

__all__ = [
    "DATASET_FILES",
    "ExpressionBed",
    "PlinkGenotypes",
    "SingleCellCounts",
    "VCFGenotypes",
    "gtex_donor_ids",
    "harmonize_gene_types",
    "iter_dosage_tsv_blocks",
    "iter_plink_blocks",
    "iter_vcf_blocks",
    "read_bim",
    "read_counts",
    "read_covariates",
    "read_dataset",
    "read_dosage_tsv",
    "read_expression_bed",
    "read_fam",
    "read_gct",
    "read_gct_descriptions",
    "read_gene_annotation",
    "read_gtex_sample_attributes",
    "read_gtex_subject_phenotypes",
    "read_h5ad",
    "read_matrixeqtl_geneloc",
    "read_matrixeqtl_matrix",
    "read_matrixeqtl_snpsloc",
    "read_plink",
    "read_sample_map",
    "read_snp_positions",
    "read_vcf",
    "strip_version",
    "write_counts",
    "write_dataset",
    "write_dosage_tsv",
    "write_expression_bed",
    "write_gct",
    "write_gene_bed",
    "write_gtex_sample_attributes",
    "write_gtex_subject_phenotypes",
    "write_matrixeqtl_geneloc",
    "write_matrixeqtl_matrix",
    "write_matrixeqtl_snpsloc",
    "write_plink",
    "write_sample_map",
    "write_vcf",
]
