"""Enrichment and validation layer: GO, SNP-class and genomic-bin Fisher tests; TF recovery; GTEx comparison.

Every enrichment uses one Fisher exact (hypergeometric) kernel, :func:`fisher_enrichment`,
against an explicit background (the analysis feature set), with Benjamini-Hochberg FDR
(:func:`bh_fdr`) within each tested family, as in the paper:

- :func:`go_enrichment`: GO biological-process terms with >= 3 background genes (Table S1).
- :func:`snp_annotation_enrichment`: binary LDSC baselineLD-style SNP classes, from
  :func:`read_snp_annotations` (``.annot``/parquet/TSV) or :func:`annotations_from_bed` (Table S2).
- :func:`genomic_bin_enrichment`: 250 kb bins sliding by 100 kb (:func:`make_bins`), with the
  Manhattan data product (Table S3, Fig 2).
- :func:`tf_recovery`: tissue-specific TFs recovered per tissue ("whole blood 10/12") and
  cross-tissue contamination.
- :func:`compare_with_gtex`: overlap with GTEx v8 cis/trans lists and a two-sample KS test.
"""

from .bins import genomic_bin_enrichment, make_bins
from .fisher import bh_fdr, fisher_enrichment, odds_ratio
from .gene_ids import GeneIdTable, map_gene_ids, normalize_gene_id, read_gene_list
from .genome import CHROM_SIZES, check_build, read_genome_file
from .go import GeneSetLibrary, go_enrichment, read_gmt, read_go_terms
from .gtex import (
    GtexComparison,
    compare_with_gtex,
    read_gtex_egenes,
    read_gtex_lookup,
    read_gtex_pairs,
    read_gtex_trans,
    read_gtex_v6_zscores,
)
from .snp_annotation import (
    annotations_from_bed,
    read_snp_annotations,
    snp_annotation_enrichment,
    snp_positions_frame,
)
from .tf import read_tf_table, tf_recovery

__all__ = [
    "CHROM_SIZES",
    "GeneIdTable",
    "GeneSetLibrary",
    "GtexComparison",
    "annotations_from_bed",
    "bh_fdr",
    "check_build",
    "compare_with_gtex",
    "fisher_enrichment",
    "genomic_bin_enrichment",
    "go_enrichment",
    "make_bins",
    "map_gene_ids",
    "normalize_gene_id",
    "odds_ratio",
    "read_gene_list",
    "read_genome_file",
    "read_gmt",
    "read_go_terms",
    "read_gtex_egenes",
    "read_gtex_lookup",
    "read_gtex_pairs",
    "read_gtex_trans",
    "read_gtex_v6_zscores",
    "read_snp_annotations",
    "read_tf_table",
    "snp_annotation_enrichment",
    "snp_positions_frame",
    "tf_recovery",
]
