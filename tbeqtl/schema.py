"""The one place that defines every output table: columns, dtypes and meaning.

Every writer in tbeqtl calls :func:`validate_table` before writing, and the README's
output reference is generated from :data:`TABLES`. Adding or renaming a column is a
schema change: bump :data:`SCHEMA_VERSION` and note it in the changelog.

Each layer owns one section below; keep the sections in this order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .errors import InputError

__all__ = [
    "SCHEMA_VERSION", "TABLES", "Column", "TableSchema", "get_schema", "schema_markdown", "validate_table",
]

SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class Column:
    """One column of an output table.

    Parameters
    ----------
    name
        Column name, exactly as written to files.
    dtype
        ``"str"``, ``"int"``, ``"float"`` or ``"bool"``.
    description
        What the column holds, with units and the paper's symbol where there is one.
    required
        Whether every table of this kind has it (optional columns appear only in
        some modes, e.g. ``gene_type`` when gene types are given).
    """

    name: str
    dtype: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class TableSchema:
    """An output table: its name, file name(s) and columns.

    Parameters
    ----------
    name
        Registry key.
    description
        What one row is.
    columns
        The columns, in output order.
    files
        File names this table is written to (relative to its output folder).
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    files: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        """All column names, in order."""
        return [c.name for c in self.columns]

    @property
    def required_names(self) -> list[str]:
        """The names of the required columns."""
        return [c.name for c in self.columns if c.required]


TABLES: dict[str, TableSchema] = {}


def _register(schema: TableSchema) -> TableSchema:
    if schema.name in TABLES:
        raise RuntimeError(f"duplicate table schema {schema.name!r}")
    TABLES[schema.name] = schema
    return schema


def get_schema(name: str) -> TableSchema:
    """Return the schema registered under ``name``.

    Parameters
    ----------
    name
        Table name, a key of :data:`TABLES`.

    Returns
    -------
    TableSchema
        The schema.
    """
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; known: {sorted(TABLES)}") from None


def schema_markdown() -> str:
    """Render every registered table as Markdown (the README's output reference).

    Returns
    -------
    str
        One section per table: its files, what a row is, and a column table.
    """
    parts = [f"Schema version {SCHEMA_VERSION}.", ""]
    for schema in TABLES.values():
        files = ", ".join(f"`{f}`" for f in schema.files) or "(in memory / inside other outputs)"
        parts += [f"#### `{schema.name}` — {files}", "", schema.description, "",
                  "| column | type | required | description |", "|---|---|---|---|"]
        for c in schema.columns:
            parts.append(f"| `{c.name}` | {c.dtype} | {'yes' if c.required else 'no'} | {c.description} |")
        parts.append("")
    return "\n".join(parts)


_KIND_CHECK = {
    "str": lambda s: pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)
    or isinstance(s.dtype, pd.CategoricalDtype),
    "int": pd.api.types.is_integer_dtype,
    "float": lambda s: pd.api.types.is_float_dtype(s) or pd.api.types.is_integer_dtype(s)
    or s.isna().all(),
    "bool": pd.api.types.is_bool_dtype,
}


def validate_table(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Check that ``df`` has the columns and dtypes of table ``name``; return it in schema order.

    Columns not in the schema are an error (so that nothing undocumented is written);
    optional columns may be absent.

    Parameters
    ----------
    df
        The table to check.
    name
        Table name, a key of :data:`TABLES`.

    Returns
    -------
    pandas.DataFrame
        ``df`` with its columns in schema order.

    Raises
    ------
    ValueError
        If a required column is missing, an unknown column is present or a dtype is wrong.
    """
    schema = get_schema(name)
    missing = [c for c in schema.required_names if c not in df.columns]
    if missing:
        raise InputError(f"table {name!r} lacks required columns", ids=missing)
    unknown = [c for c in df.columns if c not in schema.column_names]
    if unknown:
        raise InputError(f"table {name!r} has columns not in its schema", ids=unknown)
    bad = [
        f"{c.name} (expected {c.dtype}, got {df[c.name].dtype})"
        for c in schema.columns
        if c.name in df.columns and len(df) and not _KIND_CHECK[c.dtype](df[c.name])
    ]
    if bad:
        raise InputError(f"table {name!r} has columns of the wrong type", ids=bad)
    return df[[c for c in schema.column_names if c in df.columns]]


# ---------------------------------------------------------------------------
# Association engine (tbeqtl.association): `tbeqtl map`
# ---------------------------------------------------------------------------
_register(TableSchema(
    name="eqtl_pairs",
    description="One SNP-gene test that passed the output p-value threshold (MatrixEQTL output rows).",
    files=("cis.tsv", "trans.tsv", "cis.parquet", "trans.parquet"),
    columns=(
        Column("snp", "str", "SNP ID"),
        Column("gene", "str", "gene ID"),
        Column("beta", "float", "OLS effect of one allele dosage on expression (linear, linear_cross: "
               "the interaction term); empty for anova"),
        Column("t_stat", "float", "t statistic of beta (linear, linear_cross)", required=False),
        Column("f_stat", "float", "F statistic on (2, df) degrees of freedom (anova)", required=False),
        Column("p_value", "float", "nominal p-value"),
        Column("fdr", "float", "Benjamini-Hochberg FDR computed as MatrixEQTL does, over every test of "
               "the pool (cis or trans), not only the rows written"),
        Column("gene_type", "str", "gene biotype (protein_coding, lincRNA, ...)", required=False),
        Column("fdr_by_type", "float", "BH FDR within this gene type and cis/trans class", required=False),
        Column("q_value", "float", "Storey q-value within the pool (optional)", required=False),
    ),
))

_register(TableSchema(
    name="pvalue_hist",
    description="p-value histogram over every test of a pool (MatrixEQTL's pvalue.hist); a bin is (lo, hi].",
    files=("hist.tsv", "eqtl/<factor_set>/<tissue>/hist.tsv"),
    columns=(
        Column("pool", "str", "'cis', 'trans' or 'all'"),
        Column("bin_lo", "float", "lower p-value edge (exclusive)"),
        Column("bin_hi", "float", "upper p-value edge (inclusive)"),
        Column("count", "int", "number of tests with p in (bin_lo, bin_hi]"),
    ),
))

_register(TableSchema(
    name="min_pvalues",
    description="Smallest p-value of each SNP and each gene within a pool (MatrixEQTL's min.pv.by.genesnp); "
                "1 when the SNP or gene has no test in the pool.",
    files=("min_pvalues.tsv",),
    columns=(
        Column("pool", "str", "'cis', 'trans' or 'all'"),
        Column("kind", "str", "'snp' or 'gene'"),
        Column("id", "str", "SNP or gene ID"),
        Column("min_pvalue", "float", "smallest nominal p-value"),
    ),
))

_PAIR_COLS = (
    Column("pair", "str", "chromosome-pair run <gene_chrom>__<snp_chrom> (genome-wide summary tables only)",
           required=False),
    Column("gene_chrom", "str", "gene chromosome of the run (summary tables only)", required=False),
    Column("snp_chrom", "str", "SNP chromosome of the run (summary tables only)", required=False),
)
_register(TableSchema(
    name="permutation_qq",
    description="Ordered true vs permuted -log10 p-values (expression and covariates permuted jointly "
                "across samples), one row per rank within a pool (the pipeline thins each pool to 2,000 "
                "ranks, the 200 most extreme always kept).",
    files=("qq.tsv", "eqtl/<factor_set>/<tissue>/qq.tsv", "summary/qq.parquet"),
    columns=(
        *_PAIR_COLS,
        Column("factor_set", "str", "'all', 'tissue', 'general' (pipeline summary only)", required=False),
        Column("tissue", "str", "tissue (pipeline summary only)", required=False),
        Column("pool", "str", "'cis', 'trans' or 'all'"),
        Column("rank", "int", "1 = smallest p-value"),
        Column("observed_log10p", "float", "-log10 of the rank-th smallest true p-value"),
        Column("permuted_log10p", "float", "-log10 of the rank-th smallest permuted p-value"),
        Column("beyond_permuted", "bool", "true p-value below the smallest permuted p-value"),
    ),
))

_register(TableSchema(
    name="cis_egenes",
    description="One gene: its top cis SNP and the permutation / beta-approximation p-values "
                "(FastQTL, tensorQTL map_cis).",
    files=("egenes.tsv",),
    columns=(
        Column("gene", "str", "gene ID"),
        Column("n_snps", "int", "number of cis SNPs tested (num_var)"),
        Column("snp", "str", "top SNP (largest |r|; ties: first SNP ID)"),
        Column("beta", "float", "OLS effect of the top SNP"),
        Column("t_stat", "float", "t statistic of the top SNP"),
        Column("p_nominal", "float", "nominal p-value of the top SNP (df = n - 2 - k)"),
        Column("beta_shape1", "float", "shape a of the Beta fitted to the permutation minimum p-values"),
        Column("beta_shape2", "float", "shape b of the Beta fitted to the permutation minimum p-values"),
        Column("true_df", "float",
               "effective degrees of freedom making the permuted p-values' Beta shape a = 1"),
        Column("p_true_df", "float", "p-value of the top SNP with true_df"),
        Column("p_perm", "float", "empirical p-value (#perm >= observed + 1) / (n_perm + 1)"),
        Column("p_beta", "float", "beta-approximated permutation p-value (eGene p-value)"),
        Column("q_value", "float", "Storey q-value of p_beta across genes (eGene q-value)"),
    ),
))

# ---------------------------------------------------------------------------
# tensorQTL-style cis workflow (tbeqtl.association.cis, .post): `tbeqtl cis`
# Statistics are exact float64 OLS (tensorQTL stores slopes in float32); integers are int32.
# ---------------------------------------------------------------------------
_CIS_PAIR_ID_COLS = (
    Column("phenotype_id", "str", "phenotype ID"),
    Column("variant_id", "str", "variant ID"),
    Column("start_distance", "int", "variant position - phenotype start (1-based; the TSS for a single "
           "position)"),
    Column("end_distance", "int", "variant position - phenotype end (only when the positions are "
           "intervals)", required=False),
    Column("af", "float", "ALT allele frequency over the analysed samples after mean imputation, "
           "sum(g) / 2n (not the MAF)"),
    Column("ma_samples", "int", "samples carrying the minor allele: #{g > 0.5} if af <= 0.5, else "
           "#{g < 1.5}"),
    Column("ma_count", "int", "minor allele count: int(sum of g > 0.5) if af <= 0.5, else 2n minus it"),
)
_CIS_NOMINAL_STAT_COLS = (
    Column("pval_nominal", "float", "two-sided t-test p-value of the slope, df = n - 2 - k (float64)"),
    Column("slope", "float", "OLS effect of one ALT dosage in y ~ 1 + covariates + g (float64)"),
    Column("slope_se", "float", "standard error of slope (float64)"),
)
_register(TableSchema(
    name="cis_qtl_pairs",
    description="One cis variant-phenotype pair (tensorQTL map_nominal); monomorphic variants and "
                "variants collinear with the covariates have NaN statistics.",
    files=("<prefix>.cis_qtl_pairs.<chrom>.parquet",),
    columns=(*_CIS_PAIR_ID_COLS, *_CIS_NOMINAL_STAT_COLS),
))
#: Statistics of y ~ 1 + covariates + g + i + g:i for one interaction term (cis and trans pair tables).
_INTERACTION_STAT_COLS = (
        Column("b_g", "float", "genotype main effect", required=False),
        Column("b_g_se", "float", "standard error of b_g", required=False),
        Column("pval_g", "float", "p-value of b_g", required=False),
        Column("b_i", "float", "interaction-term main effect", required=False),
        Column("b_i_se", "float", "standard error of b_i", required=False),
        Column("pval_i", "float", "p-value of b_i", required=False),
        Column("b_gi", "float", "genotype x interaction effect", required=False),
        Column("b_gi_se", "float", "standard error of b_gi", required=False),
        Column("pval_gi", "float", "p-value of b_gi", required=False),
)
_register(TableSchema(
    name="cis_qtl_pairs_interaction",
    description="One cis variant-phenotype pair of the interaction model y ~ 1 + covariates + g + i + g:i "
                "(tensorQTL map_nominal with interaction_df); one interaction term shown, several terms "
                "repeat the i / gi columns with the term name (tbeqtl.association.interaction).",
    files=("<prefix>.cis_qtl_pairs.<chrom>.parquet",),
    columns=(
        *_CIS_PAIR_ID_COLS,
        *_INTERACTION_STAT_COLS,
    ),
))
_CIS_TOP_COLS = (
    Column("num_var", "int", "variants tested in the window (monomorphic, filtered and "
           "covariate-collinear variants excluded)"),
    Column("beta_shape1", "float", "Beta shape a fitted (MLE) to the permutation minimum p-values "
           "at true_df"),
    Column("beta_shape2", "float", "Beta shape b"),
    Column("true_df", "float", "degrees of freedom making the moment-matched Beta shape a of the "
           "permutation p-values 1"),
    Column("pval_true_df", "float", "p-value of the top variant with true_df"),
    Column("variant_id", "str", "top variant (largest r^2; first in position order on ties)"),
    Column("start_distance", "int", "top variant position - phenotype start"),
    Column("end_distance", "int", "top variant position - phenotype end"),
    Column("ma_samples", "int", "samples carrying the minor allele (see cis_qtl_pairs)"),
    Column("ma_count", "int", "minor allele count (see cis_qtl_pairs)"),
    Column("af", "float", "ALT allele frequency after imputation"),
    Column("pval_nominal", "float", "nominal p-value of the top variant (df = n - 2 - k)"),
    Column("slope", "float", "OLS effect of the top variant"),
    Column("slope_se", "float", "standard error of slope"),
    Column("pval_perm", "float", "(#{permutation max r^2 >= observed} + 1) / (nperm + 1)"),
    Column("pval_beta", "float", "beta-approximated permutation p-value: Beta_cdf(pval_true_df)"),
)
_register(TableSchema(
    name="cis_qtl",
    description="One phenotype: its top cis variant with permutation and beta-approximated p-values "
                "(tensorQTL map_cis, then calculate_qvalues).",
    files=("<prefix>.cis_qtl.txt.gz",),
    columns=(
        Column("phenotype_id", "str", "phenotype ID (the index in Python)"),
        *_CIS_TOP_COLS,
        Column("qval", "float", "Storey q-value of pval_beta across phenotypes", required=False),
        Column("pval_nominal_threshold", "float", "nominal p-value threshold of the phenotype: "
               "Beta_ppf(p_t; beta_shape1, beta_shape2), p_t the min-p threshold at the FDR", required=False),
    ),
))
_register(TableSchema(
    name="cis_qtl_interaction",
    description="One phenotype and interaction term: the cis variant with the largest genotype x term "
                "t^2 in y ~ 1 + covariates + g + i + g:i (all terms in the model), with permutation and "
                "beta-approximated p-values (tbeqtl.association.interaction_perm.map_cis_interaction; "
                "tensorQTL has no interaction permutations).",
    files=("<prefix>.cis_qtl_interaction.txt.gz",),
    columns=(
        Column("phenotype_id", "str", "phenotype ID (the index in Python; repeated once per term)"),
        Column("num_var", "int", "variants tested in the window (variant filters and the interaction "
               "MAF rule applied, full-rank designs)"),
        Column("beta_shape1", "float", "Beta shape a fitted (MLE) to the permutation p-values at true_df"),
        Column("beta_shape2", "float", "Beta shape b"),
        Column("true_df", "float", "degrees of freedom making the moment-matched Beta shape a of the "
               "permutation p-values 1"),
        Column("pval_true_df", "float", "p-value of the top t_gi with true_df"),
        Column("variant_id", "str", "top variant (largest t_gi^2; first in position order on ties)"),
        Column("start_distance", "int", "top variant position - phenotype start"),
        Column("af", "float", "ALT allele frequency after imputation"),
        Column("ma_samples", "int", "samples carrying the minor allele (see cis_qtl_pairs)"),
        Column("ma_count", "int", "minor allele count (see cis_qtl_pairs)"),
        Column("interaction", "str", "interaction term of the row"),
        *(Column(c.name, c.dtype, c.description) for c in _INTERACTION_STAT_COLS),
        Column("pval_perm", "float", "(#{permutation max t_gi^2 >= observed} + 1) / (nperm + 1)"),
        Column("pval_beta", "float", "beta-approximated permutation p-value: Beta_cdf(pval_true_df)"),
        Column("qval", "float", "Storey q-value of pval_beta across the phenotypes of the term",
               required=False),
        Column("pval_nominal_threshold", "float", "threshold on a pair's pval_gi: Beta_ppf(p_t; "
               "beta_shape1, beta_shape2), p_t the term's min-p threshold at the FDR", required=False),
    ),
))
_register(TableSchema(
    name="cis_independent_qtl",
    description="One conditionally independent cis-QTL of an eGene (tensorQTL map_independent): "
                "statistics of the variant with the other selected variants as covariates.",
    files=("<prefix>.cis_independent_qtl.txt.gz",),
    columns=(
        Column("phenotype_id", "str", "phenotype ID"),
        *_CIS_TOP_COLS,
        Column("rank", "int", "rank of the signal (forward-pass order)"),
    ),
))
_register(TableSchema(
    name="cis_signif_pairs",
    description="One significant cis pair (GTEx signif_variant_gene_pairs): a nominal pair of an eGene "
                "with pval_nominal below the eGene's pval_nominal_threshold.",
    files=("<prefix>.cis_qtl.signif_pairs.parquet",),
    columns=(
        *_CIS_PAIR_ID_COLS,
        *_CIS_NOMINAL_STAT_COLS,
        Column("pval_nominal_threshold", "float", "the eGene's nominal threshold"),
        Column("min_pval_nominal", "float", "the eGene's top nominal p-value"),
        Column("pval_beta", "float", "the eGene's beta-approximated p-value"),
    ),
))

_register(TableSchema(
    name="trans_qtl_pairs",
    description="One variant-phenotype pair with pval <= the threshold (tensorQTL map_trans; exact float64 "
                "OLS, y ~ 1 + covariates + g); the tests run are counted in run.json (trans counts).",
    files=("<prefix>.trans_qtl_pairs.parquet",),
    columns=(
        Column("variant_id", "str", "variant ID"),
        Column("phenotype_id", "str", "phenotype ID"),
        Column("pval", "float", "two-sided t-test p-value, df = n - 2 - k"),
        Column("b", "float", "OLS effect of one ALT dosage"),
        Column("b_se", "float", "standard error of b"),
        Column("af", "float", "ALT allele frequency after mean imputation"),
    ),
))
_register(TableSchema(
    name="trans_qtl_pairs_interaction",
    description="One variant-phenotype pair of the interaction model y ~ 1 + covariates + g + i + g:i whose "
                "smallest genotype x term p-value is <= the threshold (map_trans with interaction_s); one "
                "term shown, several terms repeat the term columns with its name.",
    files=("<prefix>.trans_qtl_pairs.parquet",),
    columns=(
        Column("variant_id", "str", "variant ID"),
        Column("phenotype_id", "str", "phenotype ID"),
        *_INTERACTION_STAT_COLS,
        Column("af", "float", "ALT allele frequency after mean imputation"),
    ),
))

# ---------------------------------------------------------------------------
# TBLDA fitting layer (tbeqtl.tblda): `tbeqtl fit`
# ---------------------------------------------------------------------------
_register(TableSchema(
    name="feature_ranking",
    description="One top-ranked feature (gene or SNP) of one topic.",
    files=("feature_ranking.tsv",),
    columns=(
        Column("topic", "int", "topic index k (0-based)"),
        Column("feature", "str", "gene or SNP ID"),
        Column("kind", "str", "'gene' or 'snp'"),
        Column("score", "float", "genes: mean 2-Wasserstein distance of q(psi_kg) to the other topics; "
               "SNPs: |residual| of E[lambda_jk] regressed on coded MAF"),
        Column("rank", "int", "1 = highest score within (topic, kind)"),
    ),
))

# ---------------------------------------------------------------------------
# Enrichment and validation layer (tbeqtl.enrich)
# ---------------------------------------------------------------------------
_register(TableSchema(
    name="go_enrichment",
    description="One GO term tested for over-representation in a gene set against the analysis background.",
    files=("enrichment.tsv", "go.tsv"),
    columns=(
        Column("set", "str", "name of the tested gene set (e.g. tissue); present when several sets "
               "are tested", required=False),
        Column("term", "str", "GO term ID or gene-set name"),
        Column("overlap", "int", "genes of the set annotated to the term"),
        Column("set_size", "int", "genes of the term within the background"),
        Column("odds_ratio", "float", "sample odds ratio of the 2x2 table"),
        Column("p_value", "float", "one-sided Fisher exact (hypergeometric) p-value"),
        Column("fdr", "float", "Benjamini-Hochberg FDR across tested terms"),
        Column("description", "str", "term name", required=False),
        Column("genes", "str", "overlapping genes, comma-separated", required=False),
    ),
))

_register(TableSchema(
    name="snp_annotation_enrichment",
    description="One binary SNP class (LDSC baselineLD-style annotation) tested for enrichment in a SNP set.",
    files=("enrichment.tsv", "snp_annot.tsv"),
    columns=(
        Column("set", "str", "name of the tested SNP set (e.g. tissue)"),
        Column("annotation", "str", "SNP class (annotation column or BED file name)"),
        Column("overlap", "int", "SNPs of the set in the class"),
        Column("class_size", "int", "background SNPs in the class"),
        Column("n_set", "int", "SNPs of the set with an annotation"),
        Column("n_background", "int", "background SNPs with an annotation"),
        Column("odds_ratio", "float", "sample odds ratio of the 2x2 table (inf when no background-only SNP "
               "is in the class)"),
        Column("p_value", "float", "Fisher exact p-value (one-sided 'greater' unless stated in run.json)"),
        Column("fdr", "float", "Benjamini-Hochberg FDR across the classes tested for this set"),
    ),
))

_register(TableSchema(
    name="genomic_bin_enrichment",
    description="One genomic bin (default 250 kb sliding by 100 kb) tested for localisation of a SNP set; "
                "rows in genome order, ready for a Manhattan plot.",
    files=("enrichment.tsv", "bins.tsv"),
    columns=(
        Column("set", "str", "name of the tested SNP set (e.g. tissue)"),
        Column("bin", "str", "bin ID chrom:start-end (0-based, half-open)"),
        Column("chrom", "str", "chromosome (chr1 style)"),
        Column("start", "int", "bin start (0-based)"),
        Column("end", "int", "bin end (exclusive)"),
        Column("chrom_order", "int", "chromosome rank: chr1..chr22 = 1..22, chrX 23, chrY 24"),
        Column("cumulative_position", "float", "bin centre plus the lengths of the preceding "
               "chromosomes (bp); the Manhattan x axis"),
        Column("overlap", "int", "SNPs of the set in the bin"),
        Column("bin_size", "int", "background SNPs in the bin"),
        Column("n_set", "int", "SNPs in the set"),
        Column("n_background", "int", "SNPs in the background"),
        Column("odds_ratio", "float", "sample odds ratio of the 2x2 table"),
        Column("p_value", "float", "Fisher exact p-value (one-sided 'greater' unless stated in run.json)"),
        Column("fdr", "float", "Benjamini-Hochberg FDR across the bins tested for this set"),
        Column("neg_log10_p", "float", "-log10 p_value (the Manhattan y axis; p = 0 floored at the smallest "
               "positive double)"),
    ),
))

_register(TableSchema(
    name="tf_recovery",
    description="Tissue-specific transcription factors of one tissue (tf_tissue) found in the robust gene "
                "set of one tissue (set_tissue); own-tissue rows give the paper's 'whole blood 10/12', "
                "the others cross-tissue contamination.",
    files=("tf_recovery.tsv",),
    columns=(
        Column("set_tissue", "str", "tissue of the robust gene set"),
        Column("tf_tissue", "str", "tissue whose specific TFs are counted"),
        Column("own_tissue", "bool", "set_tissue == tf_tissue"),
        Column("n_tfs", "int", "tf_tissue-specific TFs present in the analysis feature set "
               "(the denominator)"),
        Column("n_found", "int", "of those, TFs in the set_tissue gene set (for other tissues: TFs that are "
               "not also specific to set_tissue)"),
        Column("fraction", "float", "n_found / n_tfs (NaN when n_tfs = 0)"),
        Column("label", "str", "'n_found/n_tfs', e.g. '10/12'"),
        Column("genes", "str", "the TFs found, comma-separated"),
    ),
))

_register(TableSchema(
    name="gtex_comparison",
    description="Overlap of our eQTL calls with a GTEx list at one level (pair, eGene, eVariant) for one "
                "kind (cis, trans) and tissue.",
    files=("comparison.tsv",),
    columns=(
        Column("tissue", "str", "tissue ('all' when calls are pooled)"),
        Column("kind", "str", "'cis' or 'trans'"),
        Column("level", "str", "'pair' (SNP-gene), 'egene' or 'evariant'"),
        Column("n_ours", "int", "our distinct calls at this level"),
        Column("n_gtex", "int", "GTEx distinct calls at this level"),
        Column("n_shared", "int", "calls in both lists"),
        Column("n_novel", "int", "our calls absent from the GTEx list"),
        Column("n_unmapped", "int", "our calls whose SNP has no GTEx variant ID (not counted as novel)"),
        Column("fraction_shared", "float", "n_shared / (n_ours - n_unmapped)"),
    ),
))

_register(TableSchema(
    name="gtex_pair_status",
    description="One of our eQTL calls annotated with its status in the GTEx list.",
    files=("pairs.tsv",),
    columns=(
        Column("tissue", "str", "tissue ('all' when calls are pooled)"),
        Column("kind", "str", "'cis' or 'trans'"),
        Column("snp", "str", "our SNP ID"),
        Column("gene", "str", "our gene ID"),
        Column("variant_id", "str", "GTEx variant ID chr_pos_ref_alt_b38 (empty when unmapped)"),
        Column("p_value", "float", "our nominal p-value"),
        Column("in_gtex_pair", "bool", "the SNP-gene pair is in the GTEx list"),
        Column("in_gtex_egene", "bool", "the gene is a GTEx eGene of this kind"),
        Column("in_gtex_evariant", "bool", "the variant is a GTEx eVariant of this kind"),
        Column("gtex_p_value", "float", "GTEx nominal p-value of the pair (NaN when absent)"),
        Column("novel", "bool", "the SNP maps to a GTEx variant but the pair is not in the GTEx list"),
    ),
))

_register(TableSchema(
    name="gtex_ks",
    description="Two-sample Kolmogorov-Smirnov test of our call p-values against the GTEx call p-values "
                "(scipy.stats.ks_2samp), per kind and tissue.",
    files=("ks.tsv",),
    columns=(
        Column("tissue", "str", "tissue ('all' when calls are pooled)"),
        Column("kind", "str", "'cis' or 'trans'"),
        Column("n_ours", "int", "our p-values"),
        Column("n_gtex", "int", "GTEx p-values"),
        Column("statistic", "float", "KS statistic D (sup distance between the empirical CDFs)"),
        Column("p_value", "float", "two-sided KS p-value"),
        Column("median_ours", "float", "median of our p-values"),
        Column("median_gtex", "float", "median of the GTEx p-values"),
    ),
))

_register(TableSchema(
    name="gene_id_mapping",
    description="How one input gene identifier was matched to the gene sets' identifiers.",
    files=("id_mapping.tsv",),
    columns=(
        Column("input", "str", "identifier as given (Ensembl version stripped)"),
        Column("id_type", "str", "'ensembl', 'entrez' or 'symbol'"),
        Column("status", "str", "'direct' (same type as the gene sets), 'mapped', 'unmapped' (in the gene "
               "table but without an ID of the gene sets' type) or 'unknown' (not in the gene table)"),
        Column("mapped", "str", "gene-set identifiers it stands for, comma-separated"),
        Column("in_set", "bool", "whether it is in the tested set (else background only)"),
    ),
))

# ---------------------------------------------------------------------------
# From topics to eQTLs (tbeqtl.pipeline): `tbeqtl run`
# ---------------------------------------------------------------------------
_register(TableSchema(
    name="holdout",
    description="One sample: whether it is held out of the TBLDA fit for the eQTL tests.",
    files=("holdout.tsv",),
    columns=(
        Column("sample", "str", "sample ID"),
        Column("individual", "str", "individual ID"),
        Column("held_out", "bool", "held out (2 random samples of each individual with >= 4 samples)"),
    ),
))
_register(TableSchema(
    name="tissue_factors",
    description="One (factor, tissue): association of factor k's sample proportions E[phi_lk] with a tissue.",
    files=("factors/tissue_association.tsv", "summary/tissue_factors.parquet"),
    columns=(
        *_PAIR_COLS,
        Column("topic", "int", "topic index k (0-based)"),
        Column("tissue", "str", "tissue"),
        Column("n_samples", "int", "fit samples of the tissue"),
        Column("inner_product", "float", "sum of E[phi_lk] over the tissue's samples (paper: > 40)"),
        Column("normalized_score", "float", "mean E[phi_lk] in the tissue / mean in other tissues"),
        Column("associated", "bool", "score above the configured threshold"),
    ),
))
_register(TableSchema(
    name="ancestry_factors",
    description="One (factor, ancestry group): point-biserial correlation at the individual level.",
    files=("factors/ancestry.tsv", "summary/ancestry.parquet"),
    columns=(
        *_PAIR_COLS,
        Column("kind", "str", "'shared' (theta, Eq. 5) or 'private' (ancestry tau)"),
        Column("factor", "int", "topic k (shared) or ancestry component q (private), 0-based"),
        Column("group", "str", "reported ancestry group"),
        Column("n_group", "int", "individuals in the group"),
        Column("r", "float", "point-biserial correlation with the group indicator"),
        Column("p_value", "float", "its p-value (scipy.stats.pointbiserialr)"),
    ),
))
_register(TableSchema(
    name="cell_type_factors",
    description="One (tissue, cell type, factor): Kendall tau of E[phi_lk] with a cell-type score.",
    files=("factors/cell_types.tsv", "summary/cell_types.parquet"),
    columns=(
        *_PAIR_COLS,
        Column("tissue", "str", "tissue"),
        Column("cell_type", "str", "cell-type score column"),
        Column("topic", "int", "topic index k"),
        Column("n_samples", "int", "scored samples of the tissue"),
        Column("tau", "float", "Kendall tau-b"),
        Column("p_value", "float", "its p-value"),
        Column("captured", "bool", "|tau| above the threshold (paper 0.5)"),
    ),
))
_register(TableSchema(
    name="covariate_factors",
    description="One (factor, covariate) test; flagged factors can be dropped from the mapping.",
    files=("factors/covariate_factors.tsv", "summary/covariate_factors.parquet"),
    columns=(
        *_PAIR_COLS,
        Column("topic", "int", "topic index k"),
        Column("covariate", "str", "sample or individual attribute"),
        Column("test", "str", "'kruskal' (categorical) or 'spearman' (numeric)"),
        Column("statistic", "float", "H or rho"),
        Column("effect", "float", "epsilon^2 = H/(n-1) or rho^2"),
        Column("p_value", "float", "p-value"),
        Column("fdr", "float", "BH FDR over the table's tests"),
        Column("flagged", "bool", "fdr below the level and effect at least the minimum"),
    ),
))
#: the columns of one mapped test of a factor set and tissue (calls and candidates of a run)
_MAPPED_TEST_COLS = (
    Column("class", "str", "'cis' or 'trans'"),
    Column("snp", "str", "SNP ID"),
    Column("gene", "str", "gene ID"),
    Column("beta", "float", "OLS effect of one allele on inverse-normal expression"),
    Column("t_stat", "float", "t statistic"),
    Column("p_value", "float", "nominal p-value (candidates: at most the FDR level)"),
    Column("fdr", "float", "BH FDR within the class over the factor set's tests of the run"),
    Column("gene_type", "str", "gene biotype", required=False),
    Column("fdr_by_type", "float", "BH FDR within class x gene-type group", required=False),
    Column("topics", "str", "comma-separated topics whose blocks contain the pair (empty: exhaustive)"),
)
_register(TableSchema(
    name="pipeline_eqtls",
    description="One eQTL called at the FDR level in one factor set and tissue of one run (calls.tsv); "
                "in the summary also the candidates called only by a pooled FDR, fdr_genome or fdr_all "
                "(called_run False).",
    files=("summary/eqtls.parquet",),
    columns=(
        *_PAIR_COLS,
        Column("factor_set", "str", "'all', 'tissue', 'general' or 'exhaustive' (all SNP x gene pairs)"),
        Column("tissue", "str", "tissue"),
        *_MAPPED_TEST_COLS,
        Column("fdr_genome", "float", "genome-wide BH FDR: over the family's tests pooled across every "
               "gathered run (factor set x tissue x class x gene-type group, or x class without gene "
               "types); exact when at most the FDR level, NaN above it (summary only)", required=False),
        Column("fdr_all", "float", "BH FDR over every test of the factor set (all tissues, classes, gene "
               "types and runs; mapping.fdr_scope 'all'); exact when at most the FDR level, NaN above it "
               "(summary only)", required=False),
        Column("called_run", "bool", "called by the run's own FDR (fdr_by_type, or fdr); False: a "
               "candidate called only by a pooled FDR (fdr_genome, or fdr_all, below the level; summary "
               "only)", required=False),
    ),
))
_register(TableSchema(
    name="pipeline_candidates",
    description="One test of a factor set and tissue of one run with p at or below the FDR level: "
                "every test a BH over a superset of tests at that level can call (for fdr_genome).",
    files=("eqtl/<set>/<tissue>/candidates.parquet",),
    columns=(
        *_MAPPED_TEST_COLS,
    ),
))
_register(TableSchema(
    name="eqtl_counts",
    description="Counts of called eQTLs by factor set, tissue, class and gene type, summed over runs.",
    files=("summary/eqtl_counts.tsv",),
    columns=(
        Column("factor_set", "str", "'all', 'tissue', 'general' or 'exhaustive'"),
        Column("tissue", "str", "tissue, or 'all'"),
        Column("class", "str", "'cis' or 'trans'"),
        Column("gene_type", "str", "gene-type group, or 'all'"),
        Column("n_tests", "int", "tests (FDR denominators) summed over runs"),
        Column("n_eqtls", "int", "called SNP-gene pairs: the runs' own calls (mapping.fdr_scope 'family'), "
               "or fdr_all below the level ('all')"),
        Column("n_egenes", "int", "unique eGenes"),
        Column("n_evariants", "int", "unique eVariants"),
        Column("n_eqtls_genome", "int", "SNP-gene pairs with fdr_genome below the level (genome-wide "
               "BH over all runs; absent when a run lacks candidates)", required=False),
        Column("n_egenes_genome", "int", "unique eGenes of those pairs", required=False),
        Column("n_evariants_genome", "int", "unique eVariants of those pairs", required=False),
    ),
))
_register(TableSchema(
    name="pair_status",
    description="One chromosome-pair run: its outcome.",
    files=("summary/pairs.tsv",),
    columns=(
        Column("pair", "str", "<gene_chrom>__<snp_chrom>"),
        Column("gene_chrom", "str", "gene chromosome"),
        Column("snp_chrom", "str", "SNP chromosome"),
        Column("status", "str", "'done', 'skipped' (no features) or 'failed'"),
        Column("message", "str", "error or reason; empty when done"),
        Column("n_genes", "int", "genes on the gene chromosome"),
        Column("n_snps", "int", "SNPs on the SNP chromosome"),
        Column("seconds", "float", "wall time of this invocation (0 when already finished)"),
        Column("seconds_load", "float", "of which reading the pair's partitions and subsetting "
               "them to the fit samples (0 when already finished)", required=False),
        Column("seconds_fit", "float", "of which the TBLDA fit (or loading the model)", required=False),
        Column("seconds_map", "float", "of which the eQTL mapping stage", required=False),
    ),
))
_register(TableSchema(
    name="robust_members",
    description="One factor of one run in a robust component (recurring across runs sharing a chromosome).",
    files=("robust/components.tsv",),
    columns=(
        Column("kind", "str", "'snp' (Kendall tau of MAF residuals) or 'gene' (r^2 of E[psi])"),
        Column("chrom", "str", "shared chromosome"),
        Column("component", "int", "robust component within (kind, chrom)"),
        Column("run", "str", "pair"),
        Column("topic", "int", "topic index k"),
        Column("flagged", "bool", "the factor itself has enough partners"),
        Column("n_partners", "int", "partners above the threshold in other runs"),
    ),
))
_register(TableSchema(
    name="robust_tissue_sets",
    description="One feature of a robust tissue gene or SNP set.",
    files=("robust/tissue_genes.tsv", "robust/tissue_snps.tsv"),
    columns=(
        Column("tissue", "str", "tissue"),
        Column("feature", "str", "gene or SNP ID"),
        Column("n_factors", "int", "tissue-associated factors (over runs) where the feature is top-ranked"),
        Column("threshold", "float", "count needed (genes 1; SNPs the tissue's 75th percentile)"),
    ),
))

_register(TableSchema(
    name="sample_tissues",
    description="The tissue of every sample, written by the gather step for the report's Fig 1.",
    files=("summary/sample_tissues.tsv",),
    columns=(
        Column("sample", "str", "sample ID"),
        Column("tissue", "str", "tissue (the config's data.tissue_column)"),
    ),
))
_register(TableSchema(
    name="locus_genotype",
    description="Dosages of the Fig 5 locus SNP in the held-out samples of its tissue (one per individual).",
    files=("summary/locus_genotype.tsv",),
    columns=(
        Column("sample", "str", "sample ID (the columns of summary/locus_expression.parquet, same order)"),
        Column("dosage", "float", "coded-allele dosage of the individual"),
    ),
))
_register(TableSchema(
    name="prepared_library_size",
    description="One sample of a prepared data folder (tbeqtl.pipeline.prepared): its library size.",
    files=("library_size.tsv",),
    columns=(
        Column("sample", "str", "sample ID"),
        Column("library_size", "int", "sum of the sample's raw counts x_gl over every gene of the folder"),
    ),
))

# ---------------------------------------------------------------------------
# Reports (tbeqtl.report)
# ---------------------------------------------------------------------------
