"""Report figures: one function per figure, taking finished tables and returning a Figure.

Only matplotlib on the Agg backend is used, with colour-blind-safe palettes (Okabe-Ito for
categories, viridis / RdBu_r for continuous values); see :mod:`.style`.
"""

from __future__ import annotations

from .enrichment import genomic_bin_manhattan_figure, snp_class_enrichment_figure
from .eqtl import eqtl_count_figure, locus_expression_figure, permutation_qq_figure, pvalue_histogram_figure
from .topics import elbo_figure, loading_correlation_figure, sample_topics_figure

__all__ = [
    "elbo_figure",
    "eqtl_count_figure",
    "genomic_bin_manhattan_figure",
    "loading_correlation_figure",
    "locus_expression_figure",
    "permutation_qq_figure",
    "pvalue_histogram_figure",
    "sample_topics_figure",
    "snp_class_enrichment_figure",
]
