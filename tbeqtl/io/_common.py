"""Helpers shared by the readers and writers: file checks, error wrapping, numeric checks.

Every reader goes through :func:`reader_errors`, which turns parser exceptions (pandas
``ParserError``, ``EOFError`` from a truncated gzip, ``gzip.BadGzipFile``,
``UnicodeDecodeError``, bed-reader errors) into an :class:`~tbeqtl.errors.InputError`
that names the file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import logging
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ..atomic import StagedFiles, atomic_path
from ..errors import InputError, format_ids

logger = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"


def check_file(path: str | Path, *, what: str = "file") -> Path:
    """Return ``path`` as a Path after checking that it is an existing, non-empty file.

    Parameters
    ----------
    path
        The file.
    what
        What the file should hold, for the error message.

    Returns
    -------
    pathlib.Path
        The path.

    Raises
    ------
    InputError
        The file does not exist, is a folder or is empty.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} does not exist", path=str(path))
    if not path.is_file():
        raise InputError(f"{what} is not a file", path=str(path))
    if path.stat().st_size == 0:
        raise InputError(f"{what} is empty (0 bytes)", path=str(path))
    return path


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks (the checksum every ``run.json`` records).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_gzip(path: str | Path) -> bool:
    """Whether the file starts with the gzip magic bytes (bgzip files included)."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


@contextlib.contextmanager
def reader_errors(path: str | Path, *, what: str = "file") -> Iterator[None]:
    """Re-raise parser exceptions inside the block as :class:`InputError` naming ``path``.

    Parameters
    ----------
    path
        The file being read.
    what
        What the file holds (e.g. ``"GCT file"``), for the message.

    Yields
    ------
    None
    """
    try:
        yield
    except InputError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{what} is corrupt or truncated (gzip stream: {exc})", path=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} is not text (cannot decode byte at offset {exc.start}); is it a binary or "
            "compressed file with the wrong name?",
            path=str(path),
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{what} has no data", path=str(path)) from exc
    except pd.errors.ParserError as exc:
        raise InputError(f"{what} is malformed: {str(exc).strip()}", path=str(path)) from exc
    except (OSError, ValueError, IndexError) as exc:
        raise InputError(f"cannot read {what}: {exc}", path=str(path)) from exc


def open_text(path: str | Path) -> IO[str]:
    """Open a text file for reading, decompressing gzip/bgzip when the magic bytes say so."""
    if is_gzip(path):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def first_line(path: str | Path) -> str:
    """Return the first line of a (possibly gzipped) text file, without the newline."""
    with reader_errors(path), open_text(path) as handle:
        return handle.readline().rstrip("\r\n")


def count_meta_lines(path: str | Path, *, prefix: str = "##") -> int:
    """Count the leading meta lines (``##...`` in VCF/pvar files) of a text file."""
    count = 0
    with reader_errors(path), open_text(path) as handle:
        for line in handle:
            if not line.startswith(prefix):
                break
            count += 1
    return count


def sniff_sep(line: str) -> str:
    """Guess the field separator of a header line: tab, else comma, else whitespace."""
    if "\t" in line:
        return "\t"
    if "," in line:
        return ","
    return r"\s+"


def read_delimited(
    path: str | Path, *, what: str = "table", sep: str | None = None, **kwargs: Any
) -> pd.DataFrame:
    """Read a delimited text file (gzip detected from content) with errors wrapped.

    Parameters
    ----------
    path
        The file.
    what
        What it holds, for messages.
    sep
        Separator; guessed from the first line when ``None``.
    **kwargs
        Passed to :func:`pandas.read_csv`.

    Returns
    -------
    pandas.DataFrame
        The table as read.
    """
    path = check_file(path, what=what)
    with reader_errors(path, what=what):
        if sep is None:
            sep = sniff_sep(first_line(path))
        if kwargs.get("header", "infer") in (0, "infer") and not kwargs.get("skiprows") and sep != r"\s+":
            names = [c.strip().strip('"') for c in first_line(path).split(sep)]
            check_unique([n for n in names if n], "column (header)", path=path)
        compression = "gzip" if is_gzip(path) else None
        kwargs.setdefault("low_memory", False)
        kwargs.setdefault("float_precision", "round_trip")
        return pd.read_csv(path, sep=sep, compression=compression, **kwargs)


def check_unique(index: Iterable[object], what: str, *, path: str | Path | None = None) -> None:
    """Raise :class:`InputError` naming duplicated IDs.

    Parameters
    ----------
    index
        The IDs.
    what
        What they identify (``"gene"``, ``"sample"`` ...).
    path
        The file they came from.
    """
    index = pd.Index(index)
    if index.has_duplicates:
        dups = index[index.duplicated()].unique()
        raise InputError(f"duplicate {what} IDs", path=None if path is None else str(path), ids=dups)


def require_columns(df: pd.DataFrame, columns: Sequence[str], *, path: str | Path, what: str) -> None:
    """Raise :class:`InputError` listing the ``columns`` missing from ``df`` (and those it has).

    Parameters
    ----------
    df
        The table.
    columns
        Required column names.
    path
        The file (or a name for an in-memory table).
    what
        What the table is, for the message.
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what} lacks columns {missing}; found", path=str(path), ids=list(df.columns))


class StreamedWriter:
    """Life cycle of the streamed writers (``VcfWriter``, ``PgenWriter``, ``GctWriter``).

    A subclass's ``__init__`` sets its attributes and calls ``_start``, which creates
    ``self._staged`` (a :class:`~tbeqtl.atomic.StagedFiles`) and runs the subclass's ``_open``
    (stage the outputs, write the headers). The subclass counts what it wrote in ``n_written`` and,
    when its header needs the count up front, sets ``n_declared``. :meth:`close` checks the count,
    runs ``_finish`` and renames every output into place; :meth:`abort` runs ``_release`` and
    removes the temporaries. Used in ``with``, an exception aborts and a normal exit closes.
    """

    _staged: StagedFiles
    n_written: int = 0
    n_declared: int | None = None
    _unit = "rows"

    def _open(self) -> None:
        """Stage the outputs on ``self._staged`` and write their headers."""
        raise NotImplementedError

    def _start(self) -> None:
        """Create ``self._staged`` and run :meth:`_open`; on any error remove what it staged."""
        self._staged = StagedFiles()
        try:
            self._open()
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> None:
        """Complete the outputs before they are renamed (flush, close, index)."""

    def _release(self) -> None:
        """Close what is held open outside the staged contexts (errors are ignored)."""

    def _count_error(self, n: int) -> InputError:
        return InputError(
            f"{n} {self._unit} written where {self.n_declared} were declared",
            path=str(getattr(self, "path", "")),
        )

    def close(self) -> None:
        """Finish the outputs and rename them into place.

        Raises
        ------
        InputError
            Fewer rows written than declared (the outputs are removed).
        """
        if self.n_declared is not None and self.n_written != self.n_declared:
            self.abort()
            raise self._count_error(self.n_written)
        self._finish()
        self._staged.commit()

    def abort(self) -> None:
        """Remove the temporary outputs; what was at the destinations stays as it was."""
        with contextlib.suppress(Exception):
            self._release()
        self._staged.discard()

    def __enter__(self) -> StreamedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def writer_block(
    values: np.ndarray | pd.DataFrame, *, columns: pd.Index, rows: pd.Index | None, path: str | Path
) -> np.ndarray:
    """Return a block given to a streamed writer as a 2-D array, checked against the writer's labels.

    Parameters
    ----------
    values
        The block: an array, or a DataFrame whose column labels (as text) must be ``columns``
        and whose row labels must be ``rows`` (when given), in that order.
    columns
        The writer's column IDs (samples).
    rows
        The block's row IDs (variants), or ``None`` to check the columns only.
    path
        The output, for error messages.

    Returns
    -------
    numpy.ndarray
        ``len(rows) x len(columns)`` (any number of rows when ``rows`` is ``None``).

    Raises
    ------
    InputError
        Labels or shape that differ (the differing IDs named).
    """
    if isinstance(values, pd.DataFrame):
        given = pd.Index(values.columns.astype(str))
        if not given.equals(columns):
            differ = given.symmetric_difference(columns)
            raise InputError(
                "block columns differ from the writer's samples (names or order)",
                path=str(path),
                ids=differ if len(differ) else given[given != columns],
            )
        if rows is not None and not pd.Index(values.index.astype(str)).equals(pd.Index(rows.astype(str))):
            raise InputError(
                "block rows differ from the variant table's rows", path=str(path), ids=values.index
            )
        values = values.to_numpy()
    values = np.asarray(values)
    n_rows = len(rows) if rows is not None else (values.shape[0] if values.ndim else -1)
    if values.shape != (n_rows, len(columns)):
        raise InputError(f"block is {values.shape}, expected {(n_rows, len(columns))}", path=str(path))
    return values


def check_not_empty(df: pd.DataFrame, what: str, *, path: str | Path | None = None) -> None:
    """Raise :class:`InputError` if a table has no rows or no columns."""
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InputError(
            f"{what} is empty ({df.shape[0]} rows x {df.shape[1]} columns)",
            path=None if path is None else str(path),
        )


def numeric_frame(df: pd.DataFrame, *, what: str, path: str | Path | None = None) -> pd.DataFrame:
    """Convert every cell to float64, naming the row and column of the first non-numeric cell.

    Parameters
    ----------
    df
        A table whose cells should all be numbers (``NaN`` allowed).
    what
        What the table holds, for messages.
    path
        The file it came from.

    Returns
    -------
    pandas.DataFrame
        The same table as float64.

    Raises
    ------
    InputError
        A cell is not a number: the message gives the row ID, the column and the value.
    """
    try:
        return df.astype(np.float64)
    except (TypeError, ValueError):
        pass
    for column in df.columns:
        values = df[column]
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna() & values.notna()
        if bad.any():
            row = bad.index[np.argmax(bad.to_numpy())]
            n_bad = int(bad.sum())
            raise InputError(
                f"{what} has a non-numeric value {values.loc[row]!r} in row {row!r}, column {column!r} "
                f"({n_bad} non-numeric cells in that column)",
                path=None if path is None else str(path),
                ids=[row],
            )
    raise InputError(f"{what} has non-numeric values", path=None if path is None else str(path))


def pick_ids(
    index: pd.Index, ids: Sequence[object] | None, what: str, *, path: str | Path | None = None
) -> pd.Index:
    """Return the requested IDs (in the requested order) after checking that they all exist.

    Parameters
    ----------
    index
        The available IDs.
    ids
        The requested IDs, or ``None`` for all.
    what
        What they identify.
    path
        The file, for messages.

    Returns
    -------
    pandas.Index
        The IDs to keep.
    """
    if ids is None:
        return index
    wanted = pd.Index([str(i) for i in ids])
    unknown = wanted.difference(index, sort=False)
    if len(unknown):
        raise InputError(
            f"requested {what} IDs are not in the file", path=None if path is None else str(path), ids=unknown
        )
    return wanted


@contextlib.contextmanager
def open_output(path: str | Path) -> Iterator[IO[str]]:
    """Open an output text file atomically; gzip (deterministic, mtime 0) when it ends in ``.gz``.

    Parameters
    ----------
    path
        Destination.

    Yields
    ------
    file object
        A text handle.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            with (
                open(tmp, "wb") as raw,
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=4) as gz,
                io.TextIOWrapper(gz, encoding="utf-8", newline="") as handle,
            ):
                yield handle
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                yield handle


def harmonize_chrom_fast(values: Iterable[object]) -> np.ndarray:
    """Harmonise chromosome names like :func:`tbeqtl.data.harmonize_chrom`, once per distinct name."""
    from ..data import harmonize_chrom

    series = pd.Series(values, dtype=object)
    uniques = pd.unique(series)
    mapping = dict(zip(uniques, harmonize_chrom(uniques), strict=True))
    return series.map(mapping).to_numpy(dtype=object)


def _row_formatter(values: np.ndarray, na_rep: str):
    """Return a function turning row ``i`` of a numeric matrix into a list of strings."""
    if values.dtype.kind in "iu":
        if values.size and int(values.max()) - int(values.min()) <= 4096:
            lo = int(values.min())
            table = np.array([str(v) for v in range(lo, int(values.max()) + 1)], dtype=object)
            codes = (values - lo).astype(np.int64)
            return lambda i: table[codes[i]].tolist()
        return lambda i: list(map(str, values[i].tolist()))
    if values.dtype.kind == "b":
        return lambda i: list(map(str, values[i].tolist()))
    if values.dtype.kind != "f":
        return lambda i: [na_rep if pd.isna(v) else str(v) for v in values[i].tolist()]
    finite = values[np.isfinite(values)]
    integral = finite.size == 0 or (np.all(finite == np.round(finite)) and np.abs(finite).max() < 2**53)
    if integral:
        lo = int(finite.min()) if finite.size else 0
        hi = int(finite.max()) if finite.size else 0
        if hi - lo <= 4096:
            # small integer range (dosages 0/1/2, counts of a block): one table lookup per cell
            table = np.array([str(v) for v in range(lo, hi + 1)] + [na_rep], dtype=object)
            codes = np.where(np.isnan(values), hi - lo + 1, np.nan_to_num(values) - lo).astype(np.int64)
            return lambda i: table[codes[i]].tolist()
        return lambda i: [na_rep if v != v else str(int(v)) for v in values[i].tolist()]
    return lambda i: [na_rep if v != v else repr(v) for v in values[i].tolist()]


def write_matrix_text(
    handle: IO[str],
    df: pd.DataFrame,
    *,
    index_label: str,
    lead: pd.DataFrame | None = None,
    na_rep: str = "NA",
    header: bool = True,
) -> None:
    """Write a numeric matrix as tab-separated text, fast (row-wise joins, not ``DataFrame.to_csv``).

    Integer-valued floats are written as integers, other floats in the shortest form that
    reads back to the same double (``repr``), missing values as ``na_rep``.

    Parameters
    ----------
    handle
        Open text handle.
    df
        The numeric matrix (rows x columns).
    index_label
        Header of the first (row ID) column.
    lead
        Extra text columns written between the row ID and the values (e.g. GCT ``Description``).
    na_rep
        Text for missing values.
    header
        Write the header line.
    """
    values = df.to_numpy()
    fmt = _row_formatter(values, na_rep)
    ids = [str(i) for i in df.index]
    lead_cols = [] if lead is None else [lead[c].astype(str).tolist() for c in lead.columns]
    if header:
        names = [index_label, *([] if lead is None else map(str, lead.columns)), *map(str, df.columns)]
        handle.write("\t".join(names) + "\n")
    buffer: list[str] = []
    for i, row_id in enumerate(ids):
        buffer.append("\t".join([row_id, *(col[i] for col in lead_cols), *fmt(i)]))
        if len(buffer) >= 512:
            handle.write("\n".join(buffer) + "\n")
            buffer = []
    if buffer:
        handle.write("\n".join(buffer) + "\n")


def drop_uninformative_rows(df: pd.DataFrame, *, what: str) -> pd.DataFrame:
    """Drop rows that are all missing or constant (with a logged count).

    Parameters
    ----------
    df
        A numeric features x samples table (expression or genotypes).
    what
        What a row is, for the log (``"genes"``, ``"SNPs"``).

    Returns
    -------
    pandas.DataFrame
        The informative rows.
    """
    values = df.to_numpy(dtype=np.float64)
    all_missing = np.isnan(values).all(axis=1)
    filled = np.where(np.isnan(values), np.nan, values)
    with np.errstate(invalid="ignore"):
        lo = np.where(all_missing, 0.0, np.nanmin(np.where(all_missing[:, None], 0.0, filled), axis=1))
        hi = np.where(all_missing, 0.0, np.nanmax(np.where(all_missing[:, None], 0.0, filled), axis=1))
    constant = (lo == hi) & ~all_missing
    if all_missing.any() or constant.any():
        logger.info(
            "dropped %d %s: %d all-missing, %d constant: %s",
            int((all_missing | constant).sum()),
            what,
            int(all_missing.sum()),
            int(constant.sum()),
            format_ids(df.index[all_missing | constant]),
        )
    return df.loc[~(all_missing | constant)]


def pick_column(
    columns: Sequence[str],
    names: Sequence[str],
    *,
    given: str | None,
    what: str,
    path: Path,
    required: bool = True,
) -> str | None:
    """Return the column named ``given``, else the first column whose lower-case name is in ``names``."""
    if given is not None:
        if given not in columns:
            raise InputError(
                f"no column {given!r} for the {what} (columns: {', '.join(columns)})", path=str(path)
            )
        return given
    lower = {str(c).lower(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    if required:
        raise InputError(
            f"cannot find the {what} column (tried {', '.join(names)}; columns: "
            f"{', '.join(map(str, columns))})",
            path=str(path),
        )
    return None


def integer_column(values: pd.Series, *, what: str, ids: pd.Index, path: Path) -> np.ndarray:
    """Return a column as int64, naming the IDs of non-integer cells."""
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() | (num != num.round())
    if bad.any():
        raise InputError(f"non-integer {what} for", path=str(path), ids=ids[bad.to_numpy()])
    return num.astype(np.int64).to_numpy()
