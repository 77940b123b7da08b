"""GTEx sample-attribute and subject-phenotype tables, and the GTEx sample -> donor rule.

GTEx sample IDs look like ``GTEX-1117F-0226-SM-5GZZ7``: the donor (subject) ID is the first
two dash-separated fields (``GTEX-1117F``). ``SMTSD`` is the detailed tissue name, ``SEX`` in
the subject phenotypes is 1 = male, 2 = female.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..errors import InputError
from ._common import check_unique, read_delimited

__all__ = [
    "gtex_donor_ids",
    "read_gtex_sample_attributes",
    "read_gtex_subject_phenotypes",
    "write_gtex_sample_attributes",
    "write_gtex_subject_phenotypes",
]

logger = logging.getLogger(__name__)


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
