r"""GTEx GCT v1.2 read-count matrices (``*.gct`` / ``*.gct.gz``).

Layout::

    #1.2
    <n_genes>\t<n_samples>
    Name\tDescription\t<sample 1>\t...\t<sample L>
    ENSG...\t<gene name>\t<count>\t...

``Name`` holds the gene IDs (GENCODE, with version), ``Description`` the gene names.

:func:`read_gct_header` reads the first three lines only; :class:`GctWriter` writes a matrix one
block of genes at a time (:func:`write_gct` is one block of it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..data import validate_counts
from ..errors import InputError
from ._common import (
    StreamedWriter,
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
    writer_block,
)

__all__ = ["GctWriter", "read_gct", "read_gct_descriptions", "read_gct_header", "write_gct"]

logger = logging.getLogger(__name__)


def read_gct_header(path: str | Path) -> tuple[int, int, list[str]]:
    """Read the three header lines of a GCT v1.2 file (no data line is parsed).

    Parameters
    ----------
    path
        The ``.gct`` or ``.gct.gz`` file.

    Returns
    -------
    tuple
        ``(n_rows, n_cols, samples)``: the dimensions line (genes, samples) and the sample IDs
        of the header line, as written (not checked against each other).

    Raises
    ------
    InputError
        Not GCT v1.2, a malformed dimensions line, a header without ``Name``/``Description``.
    """
    path = Path(path)
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
    n_rows, n_cols, all_samples = read_gct_header(path)
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


class GctWriter(StreamedWriter):
    """A GTEx GCT v1.2 matrix written block of genes by block of genes.

    The header (``#1.2``, the dimensions, ``Name Description <samples>``) is written at once;
    :meth:`write` appends rows. The file goes to a temporary sibling renamed onto ``path`` by
    :meth:`close` (gzip when it ends in ``.gz``); on an exception inside ``with`` (or
    :meth:`abort`) nothing is left at ``path``. Values are formatted per block (see
    :func:`~tbeqtl.io._common.write_matrix_text`): integer blocks give the same bytes for any
    split, and so do float blocks unless one block is all integer-valued (written ``1``, not
    ``1.0``).

    Parameters
    ----------
    path
        Destination (``.gct`` or ``.gct.gz``).
    samples
        Sample IDs, the order of the columns.
    n_genes
        Rows that will be written (the dimensions line comes first).

    Raises
    ------
    InputError
        Duplicate sample IDs (named).
    """

    def __init__(self, path: str | Path, samples: Sequence[str], *, n_genes: int):
        self._unit = "genes"
        self.path = Path(path)
        self.samples = pd.Index([str(s) for s in samples])
        self.n_genes = self.n_declared = int(n_genes)
        self.n_written = 0
        check_unique(self.samples, "sample")
        self._seen: set[str] = set()
        self._start()

    def _open(self) -> None:
        self._handle = self._staged.enter_context(open_output(self.path))
        self._handle.write(f"#1.2\n{self.n_genes}\t{len(self.samples)}\n")
        self._handle.write("\t".join(["Name", "Description", *self.samples]) + "\n")

    def write(self, df: pd.DataFrame, *, description: pd.Series | None = None) -> None:
        """Append genes.

        Parameters
        ----------
        df
            Genes x samples values (the writer's samples, in order); integer values are
            written as integers.
        description
            Gene names for the ``Description`` column, indexed by gene ID; missing entries
            (or ``None``) repeat the gene ID, as GTEx does for unnamed genes.

        Raises
        ------
        InputError
            Other columns, gene IDs already written or repeated (named), more rows than ``n_genes``.
        """
        if not isinstance(df, pd.DataFrame):
            raise InputError("GCT blocks must be DataFrames indexed by gene ID", path=str(self.path))
        writer_block(df, columns=self.samples, rows=None, path=self.path)
        ids = pd.Index(df.index.astype(str))
        check_unique(ids, "gene")
        again = [g for g in ids if g in self._seen]
        if again:
            raise InputError("gene IDs written in an earlier block", path=str(self.path), ids=again)
        if self.n_written + len(ids) > self.n_genes:
            raise self._count_error(self.n_written + len(ids))
        names = pd.Series(ids, index=df.index)
        if description is not None:
            given = description.reindex(df.index)
            names = given.where(given.notna() & (given.astype(str) != ""), names).astype(str)
        lead = pd.DataFrame({"Description": names.to_numpy()})
        write_matrix_text(self._handle, df, index_label="Name", lead=lead, header=False)
        self._seen.update(ids)
        self.n_written += len(ids)


def write_gct(df: pd.DataFrame, path: str | Path, *, description: pd.Series | None = None) -> None:
    """Write a genes x samples matrix as GTEx GCT v1.2 (gzip when ``path`` ends in ``.gz``).

    One :class:`GctWriter` block.

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
    with GctWriter(path, df.columns, n_genes=len(df)) as writer:
        writer.write(df, description=description)
