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

__all__ = ["SCHEMA_VERSION", "TABLES", "Column", "TableSchema", "get_schema", "validate_table"]

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
    files=("enrichment.tsv",),
    columns=(
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

# ---------------------------------------------------------------------------
# From topics to eQTLs (tbeqtl.pipeline): `tbeqtl run`
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Reports (tbeqtl.report)
# ---------------------------------------------------------------------------
