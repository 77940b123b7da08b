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

Published result files are read here too: terastructure/ADMIXTURE ancestry matrices
(:mod:`~tbeqtl.io.ancestry`), GTEx eQTL lists and sample tables (:mod:`~tbeqtl.io.gtex`) and
tissue-specific TF tables (:mod:`~tbeqtl.io.tf`).

Genotype inputs of the cohort workflow are opened as streamed sources by
:func:`open_genotypes` (PLINK 2, PLINK 1, VCF/BCF, dosage TSV; :func:`sniff_genotype_format` is the
one place formats are told apart), see :mod:`tbeqtl.io.genotypes`.
"""

from __future__ import annotations

from .ancestry import (
    read_admixture_p,
    read_admixture_q,
    read_ancestry_matrix,
    read_terastructure_beta,
    read_terastructure_theta,
)
from .annotation import (
    harmonize_gene_types,
    normalize_gene_id,
    read_gene_annotation,
    strip_version,
    write_gene_bed,
)
from .counts import read_counts, write_counts
from .covariates import read_covariates
from .dataset import DATASET_FILES, read_dataset, write_dataset
from .dosage import DosageTSVSource, iter_dosage_tsv_blocks, read_dosage_tsv, write_dosage_tsv
from .expression_bed import ExpressionBed, read_expression_bed, write_expression_bed
from .gct import GctWriter, read_gct, read_gct_descriptions, read_gct_header, write_gct
from .genotypes import (
    FrameGenotypes,
    GenotypeSource,
    genotype_input_files,
    open_genotypes,
    read_genotype_table,
    require_sorted_positions,
    sniff_genotype_format,
)
from .gtex import (
    gtex_donor_ids,
    read_gtex_egenes,
    read_gtex_lookup,
    read_gtex_pairs,
    read_gtex_sample_attributes,
    read_gtex_subject_phenotypes,
    read_gtex_trans,
    read_gtex_v6_zscores,
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
from .pgen import PgenSource, PgenWriter, read_psam, read_pvar, write_pgen
from .plink import PlinkGenotypes, PlinkSource, iter_plink_blocks, read_bim, read_fam, read_plink, write_plink
from .sample_map import read_sample_map, write_sample_map
from .snp_positions import read_snp_positions
from .tf import read_tf_table
from .vcf import (
    VCFGenotypes,
    VCFSource,
    VcfWriter,
    is_bcf_file,
    iter_vcf_blocks,
    iter_vcf_chunks,
    read_vcf,
    vcf_contig_lines,
    vcf_text_header,
    write_vcf,
)

__all__ = [
    "DATASET_FILES",
    "DosageTSVSource",
    "ExpressionBed",
    "FrameGenotypes",
    "GctWriter",
    "GenotypeSource",
    "PgenSource",
    "PgenWriter",
    "PlinkGenotypes",
    "PlinkSource",
    "SingleCellCounts",
    "VCFGenotypes",
    "VCFSource",
    "VcfWriter",
    "genotype_input_files",
    "gtex_donor_ids",
    "harmonize_gene_types",
    "is_bcf_file",
    "iter_dosage_tsv_blocks",
    "iter_plink_blocks",
    "iter_vcf_blocks",
    "iter_vcf_chunks",
    "normalize_gene_id",
    "open_genotypes",
    "read_admixture_p",
    "read_admixture_q",
    "read_ancestry_matrix",
    "read_bim",
    "read_counts",
    "read_covariates",
    "read_dataset",
    "read_dosage_tsv",
    "read_expression_bed",
    "read_fam",
    "read_gct",
    "read_gct_descriptions",
    "read_gct_header",
    "read_gene_annotation",
    "read_genotype_table",
    "read_gtex_egenes",
    "read_gtex_lookup",
    "read_gtex_pairs",
    "read_gtex_sample_attributes",
    "read_gtex_subject_phenotypes",
    "read_gtex_trans",
    "read_gtex_v6_zscores",
    "read_h5ad",
    "read_matrixeqtl_geneloc",
    "read_matrixeqtl_matrix",
    "read_matrixeqtl_snpsloc",
    "read_plink",
    "read_psam",
    "read_pvar",
    "read_sample_map",
    "read_snp_positions",
    "read_terastructure_beta",
    "read_terastructure_theta",
    "read_tf_table",
    "read_vcf",
    "require_sorted_positions",
    "sniff_genotype_format",
    "strip_version",
    "vcf_contig_lines",
    "vcf_text_header",
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
    "write_pgen",
    "write_plink",
    "write_sample_map",
    "write_vcf",
]
