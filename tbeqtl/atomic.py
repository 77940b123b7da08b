"""Atomic file writes: write to a temporary file in the same folder, then rename.

A killed process never leaves a half-written output behind: either the old file (or
none) or the complete new one is there.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

__all__ = ["atomic_path", "atomic_write", "write_json", "write_table"]


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
        Where to write. On an exception it is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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
