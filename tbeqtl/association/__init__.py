"""Association engine: MatrixEQTL-equivalent eQTL tests, FDR, permutations and p-value histograms.

Public API:

- :func:`map_eqtls`: every SNP x gene test (models ``linear``, ``anova``, ``linear_cross``) with
  MatrixEQTL's missing-value, covariate, cis/trans and FDR rules, streamed in SNP blocks.
- :class:`AssociationResult`: ``.cis``/``.trans`` (or ``.all``) tables, ``.n_tests`` per stratum,
  ``.hist``, ``.write(out_dir)``; :meth:`AssociationResult.concat` and :func:`recompute_fdr`
  compute FDR over runs on subsets with complete-stratum test counts.
- :func:`bh_fdr`, :func:`bh_fdr_by_group`, :func:`storey_qvalue`, :func:`estimate_pi0`.
- :func:`permutation_qq` (the paper's permuted-expression QQ check) and
  :func:`map_cis_permutations` (FastQTL/tensorQTL cis permutations with the beta approximation).
- :func:`histogram_edges`, :func:`qq_from_histogram`: the ``pvalue.hist`` product.
- tensorQTL's cis workflow in exact float64 (:mod:`.cis`, :mod:`.post`): :func:`map_nominal`,
  :func:`map_cis`, :func:`map_independent`, :func:`calculate_qvalues`, :func:`get_significant_pairs`;
  and trans (:mod:`.trans`): :func:`map_trans`, :func:`filter_cis`; the interaction model
  y ~ g + i + g:i (:mod:`.interaction`) and its permutation test, :func:`map_cis_interaction` with
  :func:`interaction_qvalues` (:mod:`.interaction_perm`).
"""

from __future__ import annotations

from .cis import map_cis, map_independent, map_nominal
from .fdr import bh_fdr, bh_fdr_by_group, estimate_pi0, storey_qvalue
from .histogram import histogram_edges, qq_from_histogram
from .interaction import interaction_association, interaction_columns, top_interaction_association
from .interaction_perm import interaction_qvalues, map_cis_interaction
from .mapping import map_eqtls
from .permutation import map_cis_permutations, permutation_qq
from .post import calculate_qvalues, get_significant_pairs
from .result import AssociationResult, gene_type_group, recompute_fdr
from .trans import filter_cis, map_trans

__all__ = [
    "AssociationResult",
    "bh_fdr",
    "bh_fdr_by_group",
    "calculate_qvalues",
    "estimate_pi0",
    "filter_cis",
    "gene_type_group",
    "get_significant_pairs",
    "histogram_edges",
    "interaction_association",
    "interaction_columns",
    "interaction_qvalues",
    "map_cis",
    "map_cis_interaction",
    "map_cis_permutations",
    "map_eqtls",
    "map_independent",
    "map_nominal",
    "map_trans",
    "permutation_qq",
    "qq_from_histogram",
    "recompute_fdr",
    "storey_qvalue",
    "top_interaction_association",
]
