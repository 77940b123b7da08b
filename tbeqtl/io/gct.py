r"""GTEx GCT v1.2 read-count matrices (``*.gct`` / ``*.gct.gz``).

Layout::

    #1.2
    <n_genes>\t<n_samples>
    Name\tDescription\t<sample 1>\t...\t<sample L>
    ENSG...\t<gene name>\t<count>\t...

``Name`` holds the gene IDs (GENCODE, with version), ``Description`` the gene names.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..data import validate_counts
from ..errors import InputError
from ._common import (
    check_file,
    check_not_empty,
    check_unique,
    numeric_frame,
    open_output,
    open_text,
    pick_ids,
    read_delimited,
    reader_errors,
    write_matrix_text,
)

__all__ = ["read_gct", "read_gct_descriptions", "write_gct"]

logger = logging.getLogger(__name__)


def _read_gct_header(path: Path) -> tuple[int, int, list[str]]:
    with reader_errors(path, what="GCT file"), open_text(path) as handle:
        version = handle.readline().rstrip("\r\n")
        dims = handle.readline().rstrip("\r\n")
        header = handle.readline().rstrip("\r\n")
    if version.strip() != "#1.2":
        raise InputError(
            f"not a GCT v1.2 file: first line is {version[:40]!r}, expected '#1.2'", path=str(path)
        )
    fields = dims.split("\t")
    try:
        n_rows, n_cols = int(fields[0]), int(fields[1])
    except (ValueError, IndexError):
        raise InputError(
            f"GCT dimensions line (line 2) is {dims[:60]!r}, expected '<rows>\\t<columns>'", path=str(path)
        ) from None
    columns = header.split("\t")
    if len(columns) < 3 or columns[0] != "Name" or columns[1] != "Description":
        raise InputError(
            "GCT header (line 3) must start with 'Name\\tDescription' and list samples", path=str(path)
        )
    return n_rows, n_cols, columns[2:]


def _read_gct_frame(path: str | Path, samples: Sequence[str] | None) -> tuple[pd.DataFrame, pd.Series]:
    path = check_file(path, what="GCT file")
    n_rows, n_cols, all_samples = _read_gct_header(path)
    if n_cols != len(all_samples):
        raise InputError(
            f"GCT dimensions line says {n_cols} samples but the header lists {len(all_samples)}",
            path=str(path),
        )
    check_unique(all_samples, "sample", path=path)
    wanted = pick_ids(pd.Index(all_samples), samples, "sample", path=path)
    usecols = ["Name", "Description", *wanted]
    df = read_delimited(
        path,
        what="GCT file",
        sep="\t",
        skiprows=2,
        usecols=usecols,
        dtype={"Name": str, "Description": str},
        keep_default_na=False,
        na_values=["NA", ""],
    )
    if len(df) != n_rows:
        raise InputError(
            f"GCT dimensions line says {n_rows} genes but the file has {len(df)} data rows (truncated file?)",
            path=str(path),
        )
    df = df.set_index("Name")
    df.index.name = "gene"
    check_unique(df.index, "gene", path=path)
    description = df.pop("Description").fillna("")
    return df[list(wanted)], description


def read_gct(
    path: str | Path,
    *,
    samples: Sequence[str] | None = None,
    genes: Sequence[str] | None = None,
    counts: bool = True,
    non_integer: str = "error",
) -> pd.DataFrame:
    """Read a GTEx GCT v1.2 matrix (gzip or plain) as genes x samples.

    Parameters
    ----------
    path
        The ``.gct`` or ``.gct.gz`` file.
    samples
        Sample IDs to read (only these columns are parsed, which keeps memory low for the
        full GTEx matrix); ``None`` reads all.
    genes
        Gene IDs (``Name``) to keep; ``None`` keeps all.
    counts
        If true (default) the values are raw read counts, the paper's ``x``, checked and
        returned as int64 (see ``non_integer``); otherwise floats (e.g. TPM) are returned.
    non_integer
        ``"error"`` or ``"round"`` (round with a warning), for ``counts=True``.

    Returns
    -------
    pandas.DataFrame
        Genes (``Name``) x samples.

    Raises
    ------
    InputError
        Not GCT v1.2, dimensions line disagreeing with the data, duplicate IDs,
        non-numeric cells, negative or non-integer counts, corrupt gzip.
    """
    df, _ = _read_gct_frame(path, samples)
    if genes is not None:
        df = df.loc[pick_ids(df.index, genes, "gene", path=path)]
    check_not_empty(df, "GCT matrix", path=path)
    values = numeric_frame(df, what="GCT matrix", path=path)
    if counts:
        values = validate_counts(values, non_integer=non_integer, path=str(path))
    return values.rename_axis(index="gene", columns="sample")


def read_gct_descriptions(path: str | Path) -> pd.Series:
    """Read the ``Description`` column (gene names) of a GCT file, indexed by ``Name``.

    Parameters
    ----------
    path
        The GCT file.

    Returns
    -------
    pandas.Series
        Gene name per gene ID.
    """
    _, description = _read_gct_frame(path, samples=[])
    description.name = "gene_name"
    return description


def write_gct(df: pd.DataFrame, path: str | Path, *, description: pd.Series | None = None) -> None:
    """Write a genes x samples matrix as GTEx GCT v1.2 (gzip when ``path`` ends in ``.gz``).

    Parameters
    ----------
    df
        Genes x samples values (counts are written as integers).
    path
        Destination, written atomically.
    description
        Gene names for the ``Description`` column, indexed by gene ID; missing entries
        (or ``None``) repeat the gene ID, as GTEx does for unnamed genes.
    """
    check_unique(df.index, "gene")
    check_unique(df.columns, "sample")
    names = pd.Series(df.index.astype(str), index=df.index)
    if description is not None:
        given = description.reindex(df.index)
        names = given.where(given.notna() & (given.astype(str) != ""), names).astype(str)
    with open_output(path) as handle:
        handle.write("#1.2\n")
        handle.write(f"{df.shape[0]}\t{df.shape[1]}\n")
        write_matrix_text(
            handle, df, index_label="Name", lead=pd.DataFrame({"Description": names.to_numpy()})
        )
