"""Sample -> individual maps (the telescoping map): TSV with columns ``sample`` and ``individual``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..errors import InputError
from ._common import check_unique, read_delimited

__all__ = ["read_sample_map", "write_sample_map"]


def read_sample_map(path: str | Path) -> pd.Series:
    """Read a sample -> individual map.

    Parameters
    ----------
    path
        Tab-separated file with a header holding the columns ``sample`` and ``individual``
        (other columns are ignored). Each expression sample (or single cell) belongs to one
        individual (donor): the telescoping map ``l -> i`` of the paper.

    Returns
    -------
    pandas.Series
        Individual ID indexed by sample ID (index name ``sample``, name ``individual``).

    Raises
    ------
    InputError
        Missing columns, empty cells, duplicate samples, no rows.
    """
    df = read_delimited(path, what="sample map", sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in ("sample", "individual") if c not in df.columns]
    if missing:
        raise InputError(
            f"sample map lacks columns {missing} (found: {', '.join(map(str, df.columns))})", path=str(path)
        )
    if len(df) == 0:
        raise InputError("sample map has a header but no rows", path=str(path))
    empty = (df["sample"].str.strip() == "") | (df["individual"].str.strip() == "")
    if empty.any():
        raise InputError(
            "sample map has empty sample or individual cells in lines",
            path=str(path),
            ids=[int(i) + 2 for i in df.index[empty]],
        )
    check_unique(df["sample"], "sample", path=path)
    out = pd.Series(
        df["individual"].to_numpy(), index=pd.Index(df["sample"].to_numpy(), name="sample"), name="individual"
    )
    return out


def write_sample_map(sample_map_s: pd.Series, path: str | Path) -> None:
    """Write a sample -> individual map as a TSV with columns ``sample`` and ``individual``.

    Parameters
    ----------
    sample_map_s
        Individual ID indexed by sample ID.
    path
        Destination, written atomically.
    """
    check_unique(sample_map_s.index, "sample")
    df = pd.DataFrame(
        {"sample": sample_map_s.index.astype(str), "individual": sample_map_s.astype(str).to_numpy()}
    )
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
