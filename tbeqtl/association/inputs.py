"""Validation and alignment of association inputs (DataFrames indexed by ID, samples in columns)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import InputError, format_ids

__all__ = ["align_samples", "check_samples", "genotype_view", "numeric_matrix", "reorder"]

logger = logging.getLogger(__name__)


def numeric_matrix(df: pd.DataFrame, what: str, *, allow_nan: bool = True) -> np.ndarray:
    """Return ``df`` as a float64 array, or raise an InputError naming bad rows.

    Parameters
    ----------
    df
        Features in rows, samples in columns.
    what
        ``"genotype"``, ``"expression"`` or ``"covariate"`` (for messages).
    allow_nan
        Whether missing values are allowed.

    Returns
    -------
    numpy.ndarray
        A copy of the values (callers may modify it in place).
    """
    if df.index.has_duplicates:
        raise InputError(f"duplicate {what} IDs", ids=df.index[df.index.duplicated()].unique())
    try:
        values = np.array(df.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        coerced = df.apply(pd.to_numeric, errors="coerce")
        bad = (coerced.isna() & df.notna()).any(axis=1)
        raise InputError(f"non-numeric values in {what} rows", ids=df.index[bad.to_numpy()]) from None
    if np.isinf(values).any():
        raise InputError(f"infinite values in {what} rows", ids=df.index[np.isinf(values).any(axis=1)])
    if not allow_nan and np.isnan(values).any():
        raise InputError(f"missing values in {what} rows", ids=df.index[np.isnan(values).any(axis=1)])
    return values


def check_samples(
    genotype_df: pd.DataFrame, expression_df: pd.DataFrame, covariates_df: pd.DataFrame | None
) -> pd.Index:
    """Check that the tables hold the same samples and return them in canonical (sorted) order.

    Parameters
    ----------
    genotype_df, expression_df, covariates_df
        The inputs (samples in columns).

    Returns
    -------
    pandas.Index
        The sample IDs, sorted: results do not depend on the input column order.
    """
    frames = {"genotype": genotype_df, "expression": expression_df}
    if covariates_df is not None:
        frames["covariate"] = covariates_df
    for what, df in frames.items():
        if not isinstance(df, pd.DataFrame):
            raise InputError(
                f"{what} input must be a pandas DataFrame (features x samples), got {type(df).__name__}"
            )
        if df.shape[0] == 0 and what != "covariate":
            raise InputError(f"{what} table has no rows")
        if df.columns.has_duplicates:
            raise InputError(
                f"duplicate sample IDs in the {what} table", ids=df.columns[df.columns.duplicated()].unique()
            )
    samples = pd.Index(sorted(expression_df.columns.astype(str)))
    if samples.size < 3:
        raise InputError(f"need at least 3 samples, got {samples.size}")
    for what, df in frames.items():
        cols = pd.Index(df.columns.astype(str))
        missing = samples.difference(cols)
        extra = cols.difference(samples)
        if missing.size or extra.size:
            parts = []
            if missing.size:
                parts.append(f"missing from the {what} table: {format_ids(missing)}")
            if extra.size:
                parts.append(f"only in the {what} table: {format_ids(extra)}")
            raise InputError(
                "samples differ between the expression and the " + what + " table (" + "; ".join(parts) + ")",
                ids=list(missing) + list(extra),
            )
    return samples


def reorder(df: pd.DataFrame | None, samples: pd.Index) -> pd.DataFrame | None:
    """Return ``df`` with string sample columns in the order of ``samples`` (no copy if already so).

    Parameters
    ----------
    df
        A table with samples in columns, or None.
    samples
        The target order.

    Returns
    -------
    pandas.DataFrame or None
        The reordered table.
    """
    if df is None:
        return None
    cols = pd.Index(df.columns.astype(str))
    if cols.equals(samples):
        if df.columns.equals(cols):
            return df
        out = df.copy(deep=False)
        out.columns = cols
        return out
    out = df.copy(deep=False)
    out.columns = cols
    return out[samples]


def genotype_view(genotype_df: pd.DataFrame, samples: pd.Index) -> tuple[np.ndarray, np.ndarray | None]:
    """Genotype values without copying the whole matrix, plus the column order to apply per block.

    Parameters
    ----------
    genotype_df
        SNPs x samples.
    samples
        Canonical sample order.

    Returns
    -------
    values : numpy.ndarray
        The values (a view of a homogeneous numeric frame; a float64 copy otherwise).
    columns : numpy.ndarray or None
        Column indices giving ``samples`` order, or None when already in that order.
    """
    if genotype_df.index.has_duplicates:
        raise InputError(
            "duplicate genotype IDs", ids=genotype_df.index[genotype_df.index.duplicated()].unique()
        )
    dtypes = set(genotype_df.dtypes)
    kind = next(iter(dtypes)) if len(dtypes) == 1 else None
    if isinstance(kind, np.dtype) and kind.kind in "iuf":
        values = genotype_df.to_numpy()
    else:
        values = numeric_matrix(genotype_df, "genotype")
    idx = pd.Index(genotype_df.columns.astype(str)).get_indexer(samples)
    if np.array_equal(idx, np.arange(idx.size)):
        return values, None
    return values, idx


def align_samples(
    genotype_df: pd.DataFrame, expression_df: pd.DataFrame, covariates_df: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Put every table's columns in one canonical sample order (sorted IDs); all must hold the same samples.

    Parameters
    ----------
    genotype_df, expression_df, covariates_df
        The inputs (samples in columns).

    Returns
    -------
    tuple of pandas.DataFrame
        The aligned frames.
    """
    samples = check_samples(genotype_df, expression_df, covariates_df)
    return reorder(genotype_df, samples), reorder(expression_df, samples), reorder(covariates_df, samples)
