"""Plain count matrices: TSV/CSV (optionally gzipped) or parquet, genes x samples.

The first column holds the gene IDs and the header the sample IDs. ``transpose=True``
reads samples x genes files (such as the GTEx lung CSV shipped with rnanorm).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..data import validate_counts
from ..errors import InputError
from ._common import (
    check_file,
    check_not_empty,
    check_unique,
    first_line,
    numeric_frame,
    open_output,
    pick_ids,
    read_delimited,
    reader_errors,
    sniff_sep,
    write_matrix_text,
)

__all__ = ["read_counts", "write_counts"]

logger = logging.getLogger(__name__)


def read_counts(
    path: str | Path,
    *,
    transpose: bool = False,
    id_column: str | int = 0,
    drop_columns: Sequence[str] = (),
    sum_by: str | None = None,
    samples: Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    non_integer: str = "error",
) -> pd.DataFrame:
    """Read a raw count matrix (the paper's ``x``, genes x samples) from TSV, CSV or parquet.

    Parameters
    ----------
    path
        ``.tsv``/``.txt``/``.csv`` (gzip detected from the content) or ``.parquet``.
    transpose
        The file is samples x genes (samples in the first column).
    id_column
        Column holding the row IDs (name or position; default the first column). For
        parquet files with a non-default index the index is used.
    drop_columns
        Annotation columns to ignore (e.g. ``Description``).
    sum_by
        Sum rows by this annotation column, e.g. transcript counts -> gene counts with
        ``sum_by="Gene_Symbol"`` in the GEUVADIS transcript table; the result is indexed by it.
    samples, genes
        IDs to keep (``None`` keeps all).
    non_integer
        ``"error"`` or ``"round"`` (round with a warning, e.g. for expected counts).

    Returns
    -------
    pandas.DataFrame
        Genes x samples int64 counts.

    Raises
    ------
    InputError
        Non-numeric cells (row and column named), duplicate IDs, negative or non-integer
        counts, empty or corrupt files.
    """
    path = check_file(path, what="count matrix")
    if path.suffix == ".parquet":
        with reader_errors(path, what="count matrix"):
            df = pd.read_parquet(path)
        if isinstance(df.index, pd.RangeIndex):
            col = df.columns[id_column] if isinstance(id_column, int) else id_column
            df = df.set_index(col)
    else:
        usecols = None
        if samples is not None and not transpose:
            # parse only the requested sample columns (the full GTEx matrix has ~17,000)
            with reader_errors(path, what="count matrix"):
                header = first_line(path)
            sep = sniff_sep(header)
            names = [c.strip().strip('"') for c in (header.split() if sep == r"\s+" else header.split(sep))]
            id_name = names[id_column] if isinstance(id_column, int) else id_column
            pick_ids(pd.Index(names), samples, "sample", path=path)
            usecols = list(
                dict.fromkeys([id_name, *drop_columns, *([sum_by] if sum_by else []), *map(str, samples)])
            )
            id_column = id_name
        df = read_delimited(
            path,
            what="count matrix",
            usecols=usecols,
            index_col=id_column,
            dtype=None if transpose else {id_column: str} if isinstance(id_column, str) else None,
        )
    if transpose:
        df = df.T
    df.index = df.index.astype(str)
    df.columns = df.columns.astype(str)
    missing = [c for c in [*drop_columns, *([sum_by] if sum_by else [])] if c not in df.columns]
    if missing:
        raise InputError(f"count matrix has no columns {missing}", path=str(path))
    if sum_by is not None:
        check_unique(df.index, "row", path=path)
        keys = df[sum_by].astype(str)
        values = numeric_frame(df.drop(columns=[sum_by, *drop_columns]), what="count matrix", path=path)
        if samples is not None:
            values = values[list(pick_ids(values.columns, samples, "sample", path=path))]
        check_not_empty(values, "count matrix", path=path)
        has_nan = values.isna().any(axis=1)
        if has_nan.any():
            raise InputError(
                "count matrix has missing values in rows", path=str(path), ids=values.index[has_nan]
            )
        df = values.groupby(keys.to_numpy(), sort=False).sum()
        df.index.name = sum_by
        logger.info("summed %d rows into %d %s groups", len(values), len(df), sum_by)
    else:
        df = df.drop(columns=list(drop_columns))
        check_unique(df.index, "gene", path=path)
        if samples is not None:
            df = df[list(pick_ids(df.columns, samples, "sample", path=path))]
        check_not_empty(df, "count matrix", path=path)
        df = numeric_frame(df, what="count matrix", path=path)
    if genes is not None:
        df = df.loc[pick_ids(df.index, genes, "gene", path=path)]
    counts = validate_counts(df, non_integer=non_integer, path=str(path))
    return counts.rename_axis(index="gene", columns="sample")


def write_counts(counts_df: pd.DataFrame, path: str | Path) -> None:
    """Write a genes x samples count matrix as TSV (``.tsv``, ``.tsv.gz``) or parquet.

    Parameters
    ----------
    counts_df
        Genes x samples counts.
    path
        Destination, written atomically; the gene IDs go in the first column (``gene_id``).
    """
    check_unique(counts_df.index, "gene")
    check_unique(counts_df.columns, "sample")
    out = counts_df.copy()
    out.index = pd.Index(out.index.astype(str), name="gene_id")
    out.columns = out.columns.astype(str)
    path = Path(path)
    if path.suffix == ".parquet":
        with atomic_path(path) as tmp:
            out.reset_index().to_parquet(tmp, index=False)
        return
    with open_output(path) as handle:
        write_matrix_text(handle, out, index_label="gene_id")
