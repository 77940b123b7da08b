"""GTEx files: sample attributes, subject phenotypes, the sample -> donor rule, and eQTL lists.

GTEx sample IDs look like ``GTEX-1117F-0226-SM-5GZZ7``: the donor (subject) ID is the first
two dash-separated fields (``GTEX-1117F``). ``SMTSD`` is the detailed tissue name, ``SEX`` in
the subject phenotypes is 1 = male, 2 = female.

Published eQTL lists (compared with our calls by :func:`tbeqtl.enrich.compare_with_gtex`):

- v8 ``<Tissue>.v8.signif_variant_gene_pairs.txt.gz`` (or parquet): ``variant_id``
  (``chr1_13550_G_A_b38``), ``gene_id`` (versioned ENSG), ``tss_distance``, ``ma_samples``,
  ``ma_count``, ``maf``, ``pval_nominal``, ``slope``, ``slope_se``, ``pval_nominal_threshold``,
  ``min_pval_nominal``, ``pval_beta``: every significant cis pair of one tissue
  (:func:`read_gtex_pairs`).
- v8 ``<Tissue>.v8.egenes.txt.gz``: one row per tested gene with its top variant, ``pval_nominal``,
  ``pval_beta`` and ``qval`` (eGenes: ``qval <= 0.05``; :func:`read_gtex_egenes`).
- a trans-eQTL table (tissue, variant, gene, p-value; column spellings ``tissue_id``/``tissue``,
  ``variant_id``, ``gene_id``, ``pval``/``pval_nominal``/``p_value``; :func:`read_gtex_trans`).
- the v8 variant lookup table (``variant_id``, ``rs_id_dbSNP151_GRCh38p7``, ``variant_id_b37``...)
  used to translate rsIDs to GTEx variant IDs (:func:`read_gtex_lookup`).
- the v6 top-eQTL z-score table in the shared data (``gene_snp`` keys, 44 tissue columns;
  :func:`read_gtex_v6_zscores`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from ..atomic import atomic_path
from ..errors import InputError
from ._common import check_unique, read_delimited, require_columns
from .annotation import normalize_gene_id

__all__ = [
    "GTEX_VARIANT_ID",
    "gtex_donor_ids",
    "read_gtex_egenes",
    "read_gtex_lookup",
    "read_gtex_pairs",
    "read_gtex_sample_attributes",
    "read_gtex_subject_phenotypes",
    "read_gtex_trans",
    "read_gtex_v6_zscores",
    "write_gtex_sample_attributes",
    "write_gtex_subject_phenotypes",
]

logger = logging.getLogger(__name__)

#: A GTEx variant ID, ``chr1_13550_G_A_b38`` (v8) or ``1_13550_G_A_b37`` (v6).
GTEX_VARIANT_ID = re.compile(r"^(chr)?[0-9XYMT]+_\d+_[A-Za-z*]+_[A-Za-z*]+_b3[78]$")


def gtex_donor_ids(sample_ids: Iterable[object]) -> pd.Series:
    """Map GTEx sample IDs to donor IDs (first two dash-separated fields).

    Parameters
    ----------
    sample_ids
        GTEx sample IDs (``SAMPID``), e.g. ``GTEX-1117F-0226-SM-5GZZ7``.

    Returns
    -------
    pandas.Series
        Donor (individual) ID indexed by sample ID, e.g. ``GTEX-1117F``.

    Raises
    ------
    InputError
        An ID has fewer than two dash-separated fields.
    """
    ids = pd.Index([str(s) for s in sample_ids], name="sample")
    parts = ids.str.split("-")
    bad = ids[[len(p) < 2 or not p[0] or not p[1] for p in parts]]
    if len(bad):
        raise InputError(
            "sample IDs do not follow the GTEx pattern <prefix>-<donor>-... (cannot derive the donor)",
            ids=bad,
        )
    return pd.Series(["-".join(p[:2]) for p in parts], index=ids, name="individual")


def _read_ids_table(path: str | Path, id_column: str, what: str) -> pd.DataFrame:
    df = read_delimited(path, what=what, sep="\t", dtype={id_column: str})
    if id_column not in df.columns:
        raise InputError(
            f"{what} has no {id_column!r} column (columns: {', '.join(map(str, df.columns[:10]))})",
            path=str(path),
        )
    if df[id_column].isna().any():
        rows = [int(i) + 2 for i in df.index[df[id_column].isna()]]
        raise InputError(f"{what} has empty {id_column} in lines", path=str(path), ids=rows)
    check_unique(df[id_column], id_column, path=path)
    if len(df) == 0:
        raise InputError(f"{what} has a header but no rows", path=str(path))
    return df.set_index(id_column)


def read_gtex_sample_attributes(
    path: str | Path, *, tissues: Sequence[str] | None = None, donor_rule: bool = True
) -> pd.DataFrame:
    """Read a GTEx sample-attributes table (``SampleAttributesDS.txt`` style).

    Parameters
    ----------
    path
        Tab-separated file with a ``SAMPID`` column and usually ``SMTSD`` (detailed tissue).
    tissues
        Keep only samples whose ``SMTSD`` is one of these.
    donor_rule
        Add an ``individual`` column with the donor derived from ``SAMPID`` by the GTEx rule.

    Returns
    -------
    pandas.DataFrame
        Indexed by sample ID (index name ``sample``); ``SMTSD`` is renamed ``tissue``; the
        other columns are kept as they are.

    Raises
    ------
    InputError
        No ``SAMPID`` column, duplicate sample IDs, unknown tissues, IDs that do not follow
        the GTEx pattern (with ``donor_rule``).
    """
    df = _read_ids_table(path, "SAMPID", "GTEx sample attributes")
    df.index.name = "sample"
    if "SMTSD" in df.columns:
        df = df.rename(columns={"SMTSD": "tissue"})
    if tissues is not None:
        if "tissue" not in df.columns:
            raise InputError("cannot select tissues: the table has no SMTSD column", path=str(path))
        unknown = pd.Index(tissues).difference(pd.Index(df["tissue"].dropna().unique()))
        if len(unknown):
            raise InputError("tissues not in the sample attributes", path=str(path), ids=unknown)
        df = df[df["tissue"].isin(list(tissues))]
    if donor_rule:
        try:
            donors = gtex_donor_ids(df.index)
        except InputError as exc:
            raise InputError(str(exc), path=str(path), ids=exc.ids) from None
        df.insert(0, "individual", donors.to_numpy())
    return df


def read_gtex_subject_phenotypes(path: str | Path) -> pd.DataFrame:
    """Read a GTEx subject-phenotypes table (``SubjectPhenotypesDS.txt`` style).

    Parameters
    ----------
    path
        Tab-separated file with a ``SUBJID`` column and usually ``SEX`` (1 = male, 2 = female),
        ``AGE``, ``DTHHRDY``.

    Returns
    -------
    pandas.DataFrame
        Indexed by donor ID (index name ``individual``); ``SEX`` is renamed ``sex``, the other
        columns are kept.
    """
    df = _read_ids_table(path, "SUBJID", "GTEx subject phenotypes")
    df.index.name = "individual"
    return df.rename(columns={"SEX": "sex"})


def _write_ids_table(df: pd.DataFrame, path: str | Path, id_column: str, renames: dict[str, str]) -> None:
    out = df.rename(columns=renames).copy()
    out.index = pd.Index(out.index.astype(str), name=id_column)
    check_unique(out.index, id_column)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, sep="\t", na_rep="NA", lineterminator="\n")


def write_gtex_sample_attributes(sample_info_df: pd.DataFrame, path: str | Path) -> None:
    """Write per-sample attributes as a GTEx-style table (``SAMPID``, ``SMTSD``, other columns).

    Parameters
    ----------
    sample_info_df
        Indexed by sample ID; a ``tissue`` column becomes ``SMTSD``.
    path
        Destination (tab-separated), written atomically.
    """
    cols = list(sample_info_df.columns)
    if "tissue" in cols:
        cols.remove("tissue")
        sample_info_df = sample_info_df[["tissue", *cols]]
    _write_ids_table(sample_info_df, path, "SAMPID", {"tissue": "SMTSD"})


def write_gtex_subject_phenotypes(individual_info_df: pd.DataFrame, path: str | Path) -> None:
    """Write per-individual attributes as a GTEx-style table (``SUBJID``, ``SEX``, other columns).

    Parameters
    ----------
    individual_info_df
        Indexed by individual ID; a ``sex`` column becomes ``SEX``.
    path
        Destination (tab-separated), written atomically.
    """
    cols = list(individual_info_df.columns)
    if "sex" in cols:
        cols.remove("sex")
        individual_info_df = individual_info_df[["sex", *cols]]
    _write_ids_table(individual_info_df, path, "SUBJID", {"sex": "SEX"})


def _read_any(path: str | Path, *, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found", path=str(path))
    if path.name.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t", dtype={"variant_id": str, "gene_id": str})


def _tissue_from_name(path: str | Path) -> str:
    name = Path(path).name
    return name.split(".v8.")[0] if ".v8." in name else name.split(".")[0]


def _check_variants(ids: pd.Series, *, path: str | Path) -> None:
    bad = ids[~ids.astype(str).str.match(GTEX_VARIANT_ID)]
    if len(bad):
        raise InputError("variant IDs are not GTEx chr_pos_ref_alt_b38 IDs", path=str(path), ids=bad.unique())


def read_gtex_pairs(path: str | Path, *, tissue: str | None = None) -> pd.DataFrame:
    """Read a GTEx v8 ``signif_variant_gene_pairs`` table (TSV, TSV.gz or parquet).

    Parameters
    ----------
    path
        The file, e.g. ``Whole_Blood.v8.signif_variant_gene_pairs.txt.gz``.
    tissue
        Tissue name (default: the file-name prefix before ``.v8.``).

    Returns
    -------
    pandas.DataFrame
        Columns ``tissue``, ``kind`` (``"cis"``), ``variant_id``, ``gene_id`` (unversioned),
        ``p_value`` (``pval_nominal``), ``slope``.
    """
    df = _read_any(path, what="GTEx signif_variant_gene_pairs table")
    require_columns(
        df, ["variant_id", "gene_id", "pval_nominal"], path=path, what="signif_variant_gene_pairs table"
    )
    _check_variants(df["variant_id"], path=path)
    out = pd.DataFrame(
        {
            "tissue": tissue or _tissue_from_name(path),
            "kind": "cis",
            "variant_id": df["variant_id"].astype(str),
            "gene_id": df["gene_id"].map(normalize_gene_id),
            "p_value": pd.to_numeric(df["pval_nominal"], errors="raise").astype(float),
            "slope": pd.to_numeric(df["slope"], errors="coerce") if "slope" in df else np.nan,
        }
    )
    logger.info("%s: %d cis pairs, %d eGenes", Path(path).name, len(out), out["gene_id"].nunique())
    return out


def read_gtex_egenes(path: str | Path, *, tissue: str | None = None, qval: float = 0.05) -> pd.DataFrame:
    """Read a GTEx v8 ``egenes`` table and keep the eGenes (``qval <= qval``).

    Parameters
    ----------
    path
        The file, e.g. ``Whole_Blood.v8.egenes.txt.gz``.
    tissue
        Tissue name (default: the file-name prefix).
    qval
        eGene q-value threshold (GTEx: 0.05).

    Returns
    -------
    pandas.DataFrame
        Columns ``tissue``, ``kind`` (``"cis"``), ``variant_id`` (the top variant), ``gene_id``
        (unversioned), ``p_value`` (``pval_nominal`` of the top variant), ``qval``.
    """
    df = _read_any(path, what="GTEx egenes table")
    require_columns(df, ["gene_id", "variant_id", "pval_nominal", "qval"], path=path, what="egenes table")
    _check_variants(df["variant_id"], path=path)
    df = df[pd.to_numeric(df["qval"], errors="coerce") <= qval]
    return pd.DataFrame(
        {
            "tissue": tissue or _tissue_from_name(path),
            "kind": "cis",
            "variant_id": df["variant_id"].astype(str).to_numpy(),
            "gene_id": df["gene_id"].map(normalize_gene_id).to_numpy(),
            "p_value": df["pval_nominal"].astype(float).to_numpy(),
            "qval": df["qval"].astype(float).to_numpy(),
        }
    )


def read_gtex_trans(path: str | Path, *, tissue: str | None = None) -> pd.DataFrame:
    """Read a GTEx trans-eQTL table (one row per trans pair).

    Parameters
    ----------
    path
        TSV/TSV.gz/parquet with a variant column (``variant_id``), a gene column (``gene_id``), a
        p-value column (``pval``, ``pval_nominal`` or ``p_value``) and a tissue column
        (``tissue_id`` or ``tissue``) unless ``tissue`` is given.
    tissue
        Tissue of every row, when the table has no tissue column.

    Returns
    -------
    pandas.DataFrame
        Columns ``tissue``, ``kind`` (``"trans"``), ``variant_id``, ``gene_id`` (unversioned), ``p_value``.
    """
    df = _read_any(path, what="GTEx trans-eQTL table")
    pcol = next((c for c in ("pval", "pval_nominal", "p_value", "pvalue") if c in df.columns), None)
    tcol = next((c for c in ("tissue_id", "tissue", "tissue_site_detail_id") if c in df.columns), None)
    if "gene_id" not in df.columns and "phenotype_id" in df.columns:
        df = df.rename(columns={"phenotype_id": "gene_id"})
    require_columns(df, ["variant_id", "gene_id"], path=path, what="trans-eQTL table")
    if pcol is None or (tcol is None and tissue is None):
        raise InputError(
            "trans-eQTL table needs a p-value column (pval) and a tissue column (tissue_id) "
            "or tissue=...; found",
            path=str(path),
            ids=list(df.columns),
        )
    _check_variants(df["variant_id"], path=path)
    return pd.DataFrame(
        {
            "tissue": df[tcol].astype(str).to_numpy() if tcol else tissue,
            "kind": "trans",
            "variant_id": df["variant_id"].astype(str).to_numpy(),
            "gene_id": df["gene_id"].map(normalize_gene_id).to_numpy(),
            "p_value": df[pcol].astype(float).to_numpy(),
        }
    )


def read_gtex_lookup(path: str | Path) -> pd.DataFrame:
    """Read the GTEx v8 variant lookup table (variant ID <-> rsID, b37 ID).

    Parameters
    ----------
    path
        ``GTEx_Analysis_2017-06-05_v8_WholeGenomeSeq_866Indiv.lookup_table.txt.gz`` or a subset
        (TSV/parquet) with ``variant_id`` and ``rs_id_dbSNP151_GRCh38p7`` (or ``rs_id``).

    Returns
    -------
    pandas.DataFrame
        Columns ``variant_id``, ``rs_id`` and, when present, ``variant_id_b37``; rows without an
        rsID (``.``) are kept with ``rs_id`` missing.
    """
    df = _read_any(path, what="GTEx lookup table")
    rs_col = next(
        (c for c in ("rs_id_dbSNP151_GRCh38p7", "rs_id_dbSNP150_GRCh38p7", "rs_id") if c in df), None
    )
    if rs_col is None or "variant_id" not in df:
        raise InputError(
            "lookup table needs variant_id and rs_id_dbSNP151_GRCh38p7 columns; found",
            path=str(path),
            ids=list(df.columns),
        )
    out = pd.DataFrame(
        {
            "variant_id": df["variant_id"].astype(str),
            "rs_id": df[rs_col].astype(str).where(df[rs_col].astype(str) != ".", None),
        }
    )
    if "variant_id_b37" in df:
        out["variant_id_b37"] = df["variant_id_b37"].astype(str)
    return out


def read_gtex_v6_zscores(path: str | Path, *, z_threshold: float | None = None) -> pd.DataFrame:
    """Read the GTEx v6 top-eQTL z-score table (``gene_snp`` x 44 tissues) into long pairs.

    Parameters
    ----------
    path
        ``gtex_v6_top_eqtl_zscores_1000x44.tsv.gz``: row key ``ENSG..._chr_pos_ref_alt_b37``.
    z_threshold
        Keep only rows with ``|z| >= z_threshold`` (default: keep all).

    Returns
    -------
    pandas.DataFrame
        Columns ``tissue``, ``kind`` (``"cis"``), ``variant_id`` (``chr_pos_ref_alt_b37``),
        ``gene_id`` (unversioned), ``z``, ``p_value`` (two-sided normal, ``2 * norm.sf(|z|)``).
    """
    df = _read_any(path, what="GTEx v6 z-score table")
    if "gene_snp" not in df.columns:
        raise InputError("expected a gene_snp key column; found", path=str(path), ids=list(df.columns)[:5])
    parts = df["gene_snp"].astype(str).str.split("_", n=1, expand=True)
    if parts.shape[1] != 2 or parts[1].isna().any():
        raise InputError("gene_snp keys must look like ENSG..._chr_pos_ref_alt_b37", path=str(path))
    long = df.drop(columns="gene_snp").assign(gene_id=parts[0].map(normalize_gene_id), variant_id=parts[1])
    long = long.melt(id_vars=["gene_id", "variant_id"], var_name="tissue", value_name="z").dropna(
        subset=["z"]
    )
    if z_threshold is not None:
        long = long[long["z"].abs() >= z_threshold]
    long["p_value"] = special.erfc(long["z"].abs().to_numpy() / np.sqrt(2.0))  # 2 * normal upper tail
    long["kind"] = "cis"
    return long[["tissue", "kind", "variant_id", "gene_id", "z", "p_value"]].reset_index(drop=True)
