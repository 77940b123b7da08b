"""Covariate tables in either orientation, returned as covariates x samples.

MatrixEQTL and tensorQTL write covariates as rows and samples as columns; many users have
samples as rows. :func:`read_covariates` decides the orientation by matching both the
header and the first column against the known sample IDs, and refuses to guess when both
or neither match.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, format_ids
from ._common import check_not_empty, check_unique, numeric_frame, read_delimited

__all__ = ["read_covariates"]

logger = logging.getLogger(__name__)

ORIENTATIONS = ("auto", "covariates_by_samples", "samples_by_covariates")


def _encode(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """One-hot encode non-numeric covariates (rows), dropping the first level (k-1 columns)."""
    rows = []
    for name, row in df.iterrows():
        numeric = pd.to_numeric(row, errors="coerce")
        if numeric.isna().sum() == row.isna().sum():
            rows.append(numeric.rename(name))
            continue
        levels = sorted(row.dropna().astype(str).unique())
        for level in levels[1:]:
            rows.append(
                pd.Series(
                    np.where(row.isna(), np.nan, (row.astype(str) == level).astype(float)),
                    index=row.index,
                    name=f"{name}_{level}",
                )
            )
        logger.info(
            "encoded categorical covariate %r (%d levels, reference %r) in %s",
            name,
            len(levels),
            levels[0] if levels else None,
            path,
        )
    return pd.DataFrame(rows)


def read_covariates(
    path: str | Path,
    *,
    samples: Sequence[str] | None = None,
    orientation: str = "auto",
    encode_categorical: bool = False,
    drop_constant: bool = True,
) -> pd.DataFrame:
    """Read covariates (sex, genotype PCs, PEER factors, platform ...) as covariates x samples.

    Parameters
    ----------
    path
        Delimited text file (gzip detected from the content): IDs in the first column and
        the header row.
    samples
        The expression sample IDs. They decide the orientation (``"auto"``) and the output
        columns (in this order); every sample must be present.
    orientation
        ``"auto"`` (needs ``samples``), ``"covariates_by_samples"`` (MatrixEQTL/tensorQTL) or
        ``"samples_by_covariates"``.
    encode_categorical
        One-hot encode non-numeric covariates (k-1 indicator rows); otherwise they are an error.
    drop_constant
        Drop covariates constant across the kept samples (logged); they would make the
        design matrix singular.

    Returns
    -------
    pandas.DataFrame
        Covariates x samples, float64.

    Raises
    ------
    InputError
        Ambiguous or undetectable orientation, samples missing from the table, missing or
        non-numeric values (named), duplicate IDs.
    """
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation must be one of {', '.join(ORIENTATIONS)}, not {orientation!r}")
    df = read_delimited(
        path, what="covariate table", index_col=0, dtype=str, keep_default_na=False, na_values=["NA", ""]
    )
    df.index = df.index.astype(str)
    df.columns = df.columns.astype(str)
    check_not_empty(df, "covariate table", path=path)
    if orientation == "auto":
        if samples is None:
            raise InputError(
                "cannot tell the orientation of the covariate table without the sample IDs: pass "
                "samples= or orientation=",
                path=str(path),
            )
        wanted = set(map(str, samples))
        in_columns = len(wanted & set(df.columns))
        in_rows = len(wanted & set(df.index))
        if in_columns and in_rows:
            raise InputError(
                f"ambiguous covariate table: {in_columns} sample IDs in the header and {in_rows} in "
                "the first column; pass orientation=",
                path=str(path),
            )
        if not in_columns and not in_rows:
            raise InputError(
                f"no known sample ID in the header ({format_ids(df.columns, limit=3)}) or the first "
                f"column ({format_ids(df.index, limit=3)}) of the covariate table",
                path=str(path),
            )
        orientation = "covariates_by_samples" if in_columns else "samples_by_covariates"
        logger.info("covariate table %s read as %s", path, orientation)
    if orientation == "samples_by_covariates":
        df = df.T
    check_unique(df.index, "covariate", path=path)
    check_unique(df.columns, "sample", path=path)
    if samples is not None:
        samples = [str(s) for s in samples]
        missing = pd.Index(samples).difference(df.columns, sort=False)
        if len(missing):
            raise InputError("covariate table lacks samples", path=str(path), ids=missing)
        df = df[samples]
    if drop_constant:
        constant = (df.nunique(axis=1, dropna=False) <= 1).to_numpy()
        if constant.any():
            logger.info(
                "dropped %d constant covariates: %s", int(constant.sum()), format_ids(df.index[constant])
            )
            df = df.loc[~constant]
        if df.shape[0] == 0:
            raise InputError("every covariate is constant across the samples", path=str(path))
    if encode_categorical:
        df = _encode(df, Path(path))
    out = numeric_frame(df, what="covariate table", path=path)
    nan = out.isna()
    if nan.any().any():
        cov = out.index[nan.any(axis=1).to_numpy()][0]
        raise InputError(
            f"covariate {cov!r} has missing values for samples",
            path=str(path),
            ids=out.columns[nan.loc[cov].to_numpy()],
        )
    out.index.name = "covariate"
    out.columns.name = "sample"
    return out
