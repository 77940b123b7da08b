"""Atomic file writes: write to a temporary file in the same folder, then rename.

A killed process never leaves a half-written output behind: either the old file (or
none) or the complete new one is there.

Files and folders get the permissions that :func:`open` and :func:`os.mkdir` give a new one
(``0o666`` / ``0o777`` less the umask, or what the folder's default ACL says), so results
are readable by the group under the usual 022/002 umask. :func:`tempfile.mkstemp` and
:func:`tempfile.mkdtemp` are not used for that reason: they create 0600 files and 0700
folders, and a rename keeps that mode. The temporary names are created here with
``O_CREAT | O_EXCL`` and mode ``0o666`` instead, so the kernel applies the umask and no
process-wide umask has to be read (reading it with :func:`os.umask` means setting it,
which races with other threads creating files).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

__all__ = [
    "StagedFiles",
    "atomic_path",
    "atomic_write",
    "make_temp_dir",
    "write_json",
    "write_rows_tsv",
    "write_table",
]

_ATTEMPTS = 100


def _temp_name(folder: Path, prefix: str, suffix: str) -> Path:
    return folder / f"{prefix}{secrets.token_hex(6)}{suffix}"


def _create_temp_file(folder: Path, prefix: str, suffix: str) -> Path:
    """Create an empty, new file in ``folder`` with the mode :func:`open` would give it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        candidate = _temp_name(folder, prefix, suffix)
        try:
            fd = os.open(candidate, flags, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"could not create a temporary file in {folder}")  # pragma: no cover


def make_temp_dir(folder: str | Path, *, prefix: str, suffix: str = ".tmp") -> Path:
    """Create a new, uniquely named folder inside ``folder`` with the mode :func:`os.mkdir` gives.

    Use it instead of :func:`tempfile.mkdtemp` (which makes a 0700 folder) to stage a folder
    of outputs that is renamed into place once complete.

    Parameters
    ----------
    folder
        Where to create it (it must exist).
    prefix, suffix
        Start and end of the name; a random part goes between them.

    Returns
    -------
    pathlib.Path
        The new, empty folder. The caller removes it.
    """
    folder = Path(folder)
    for _ in range(_ATTEMPTS):
        candidate = _temp_name(folder, prefix, suffix)
        try:
            os.mkdir(candidate, 0o777)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a temporary folder in {folder}")  # pragma: no cover


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path
        The final destination. Its folder is created if needed.

    Yields
    ------
    pathlib.Path
        Where to write: an empty file created with the mode :func:`open` gives a new file
        (the umask applies), which the rename keeps. On an exception it is removed and
        ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = _create_temp_file(path.parent, f".{path.name}.", ".tmp")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


class _Discarded(Exception):
    """Thrown into the staged contexts by :meth:`StagedFiles.discard`."""


class StagedFiles(contextlib.ExitStack):
    """Outputs written over several calls, renamed into place together (the streamed writers' staging).

    :meth:`stage` gives a temporary path of :func:`atomic_path`; any other context built on it
    (e.g. an open output handle) can be entered with ``enter_context``. :meth:`commit` closes what
    was entered, last first, renaming each temporary onto its destination; :meth:`discard` (or an
    exception inside ``with``) removes every temporary and leaves the destinations untouched.
    """

    def stage(self, path: str | Path) -> Path:
        """Return a temporary path that :meth:`commit` renames onto ``path``.

        Parameters
        ----------
        path
            The final destination (its folder is created if needed).

        Returns
        -------
        pathlib.Path
            The temporary file (empty, mode as :func:`open` gives a new file).
        """
        return self.enter_context(atomic_path(path))

    def commit(self) -> None:
        """Close the staged contexts and rename every temporary onto its destination."""
        self.close()

    def discard(self) -> None:
        """Close the staged contexts and remove every temporary (destinations untouched)."""
        self.__exit__(_Discarded, _Discarded(), None)


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file for writing and atomically move it onto ``path`` when closed.

    Parameters
    ----------
    path
        Final destination.
    mode
        ``"w"`` (text) or ``"wb"`` (binary).
    **open_kwargs
        Passed to :func:`open` (e.g. ``encoding``).

    Yields
    ------
    file object
        The open temporary file.
    """
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON, atomically.

    Parameters
    ----------
    obj
        A JSON-serialisable object (numpy scalars are converted).
    path
        Destination file.
    """

    def default(value: Any) -> Any:
        if hasattr(value, "tolist"):  # numpy arrays and scalars
            return value.tolist()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")

    with atomic_write(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=default)
        handle.write("\n")


def write_table(df: pd.DataFrame, path: str | Path, *, index: bool = False) -> None:
    """Write a table atomically as TSV (``.tsv``, ``.tsv.gz``) or parquet (``.parquet``).

    Parameters
    ----------
    df
        The table.
    path
        Destination; the format follows the suffix.
    index
        Whether to write the index as the first column (TSV) or keep it (parquet).
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=index)
        else:
            compression = "gzip" if path.suffix == ".gz" else None
            df.to_csv(tmp, sep="\t", index=index, compression=compression, na_rep="NA")


_CSV_SPECIAL = ("\t", '"', "\n", "\r")


def _csv_plain(values: np.ndarray, *, chunk: int = 1_000_000) -> bool:
    """Whether pandas' ``to_csv`` writes these cells as plain text: float64, or strings it does not quote."""
    if values.dtype == np.float64:
        return True
    if values.dtype != object:
        return False
    present = values[~pd.isna(values)]
    for start in range(0, len(present), chunk):
        try:
            text = "".join(present[start:start + chunk].tolist())
        except TypeError:  # a cell that is not a string
            return False
        if any(c in text for c in _CSV_SPECIAL):
            return False
    return True


def _cell_texts(values: np.ndarray) -> list[str]:
    """Texts of plain cells (:func:`_csv_plain`) as ``write_table``'s ``to_csv`` writes them.

    float64: ``repr`` (pandas writes numpy's shortest round-trip text: the same digits and layout
    as Python's ``repr``), each distinct value (bit pattern) formatted once; strings as they are;
    missing -> ``NA``.
    """
    if values.dtype == np.float64:
        codes, uniques = pd.factorize(values.view(np.int64))  # FDR columns repeat a few thousand values
        uniques = uniques.view(np.float64)
        texts = np.array([*map(repr, uniques.tolist()), "NA"], dtype=object)
        texts[np.flatnonzero(np.isnan(uniques))] = "NA"
        return texts[codes].tolist()
    texts = values.tolist()
    for i in np.flatnonzero(pd.isna(values)).tolist():
        texts[i] = "NA"
    return texts


def write_rows_tsv(table: pd.DataFrame, rows: np.ndarray, path: str | Path, *, columns: list[str],
                   chunk_rows: int = 100_000) -> None:
    """Write ``table.iloc[rows][columns]`` as :func:`write_table` would, in row chunks (a plain ``.tsv``).

    The bytes are those of ``write_table`` (pandas ``to_csv``: tab-separated, header, no index,
    ``NA`` for missing values, float64 in shortest round-trip text); rows are formatted a chunk at
    a time without copying the table. Tables whose cells pandas would quote or format otherwise
    (other dtypes, non-string objects, tabs, quotes, line breaks) go through ``write_table``.

    Parameters
    ----------
    table
        The table.
    rows
        Row positions to write, in order.
    path
        Destination ``.tsv``.
    columns
        Columns to write, in order.
    chunk_rows
        Rows formatted at a time.
    """
    rows = np.asarray(rows, dtype=np.int64)
    arrays = [table[c].to_numpy() for c in columns]
    plain = len(columns) > 1 and not any(ch in str(c) for c in columns for ch in _CSV_SPECIAL)
    if Path(path).suffix != ".tsv" or not (plain and all(_csv_plain(a[rows]) for a in arrays)):
        write_table(table.iloc[rows][columns].reset_index(drop=True), path)
        return
    with atomic_write(path, newline="") as handle:
        handle.write("\t".join(map(str, columns)) + "\n")
        for start in range(0, len(rows), chunk_rows):
            index = rows[start:start + chunk_rows]
            texts = [_cell_texts(a[index]) for a in arrays]
            handle.write("\n".join(map("\t".join, zip(*texts, strict=True))))
            handle.write("\n")
