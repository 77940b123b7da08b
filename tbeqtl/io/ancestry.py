r"""Readers of ancestry-subspace files: terastructure and ADMIXTURE output (``beta``, ``tau``).

TBLDA's private genotype subspace (:mod:`tbeqtl.tblda.ancestry`) takes allele frequencies
``beta`` (SNPs x Q) and admixture proportions ``tau`` (held transposed, individuals x Q):

- terastructure output (:func:`read_terastructure_beta`, :func:`read_terastructure_theta`):
  ``beta.txt`` rows are ``loc_index<TAB>b1 ... bQ<TAB>`` and ``theta.txt`` rows also end in
  a tab. The reader drops empty fields (the trailing tab) and a leading integer index
  column, which a naive ``genfromtxt(delimiter='\t')`` turns into extra or NaN columns.
- ADMIXTURE output (:func:`read_admixture_p`, :func:`read_admixture_q`): ``.P`` is S x Q,
  ``.Q`` is N x Q, space separated, no index.

Files carry no IDs: rows follow the order of the genotype file the tool was run on. Readers
take those IDs and accept a transposed matrix (with a log message);
:func:`tbeqtl.tblda.ancestry.check_ancestry` checks ranges, alignment and allele coding against
the genotypes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = [
    "read_admixture_p",
    "read_admixture_q",
    "read_ancestry_matrix",
    "read_terastructure_beta",
    "read_terastructure_theta",
]

logger = logging.getLogger(__name__)


def _parse_rows(path: Path) -> list[list[str]]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = [f for f in line.replace(",", " ").split() if f != ""]
            if fields:
                rows.append(fields)
    if not rows:
        raise InputError("ancestry file is empty", path=str(path))
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        bad = [i + 1 for i, r in enumerate(rows) if len(r) != len(rows[0])]
        raise InputError(
            f"ancestry file rows have different numbers of fields ({sorted(widths)}); rows",
            path=str(path),
            ids=bad,
        )
    return rows


def read_ancestry_matrix(path: str | Path, *, index_column: bool | None = None) -> np.ndarray:
    """Read a headerless numeric matrix, dropping trailing tabs and an optional leading index.

    Parameters
    ----------
    path
        Tab-, space- or comma-separated file.
    index_column
        Whether the first column is a row index to drop. ``None`` (default) detects it: a
        first column of consecutive integers (0- or 1-based) followed by values in [0, 1].

    Returns
    -------
    numpy.ndarray
        The values (rows x columns, float64).

    Raises
    ------
    InputError
        Empty file, ragged rows or non-numeric values.
    """
    path = Path(path)
    rows = _parse_rows(path)
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        raise InputError("ancestry file has non-numeric values", path=str(path)) from None
    if index_column is None:
        first = values[:, 0]
        n = len(first)
        index_column = (
            values.shape[1] > 1
            and n > 1
            and bool(
                np.all(first == np.round(first))
                and (np.array_equal(first, np.arange(n)) or np.array_equal(first, np.arange(1, n + 1)))
            )
        )
    if index_column:
        values = values[:, 1:]
    if values.shape[1] == 0:
        raise InputError("ancestry file has no value columns", path=str(path))
    if not np.isfinite(values).all():
        raise InputError("ancestry file has missing or infinite values", path=str(path))
    return values


def _label(values: np.ndarray, ids: pd.Index, what: str, path: Path) -> pd.DataFrame:
    n = len(ids)
    if values.shape[0] != n and values.shape[1] == n:
        logger.info("%s: matrix is %d x %d, read as transposed (%s in columns)", path, *values.shape, what)
        values = values.T
    if values.shape[0] != n:
        raise InputError(
            f"ancestry matrix is {values.shape[0]} x {values.shape[1]} but there are {n} "
            f"{what}; rows must follow the {what} of the genotype file",
            path=str(path),
        )
    columns = pd.Index([f"ancestry_{q}" for q in range(values.shape[1])], name="ancestry")
    return pd.DataFrame(
        values, index=pd.Index(ids, name=what[:-1] if what.endswith("s") else what), columns=columns
    )


def read_terastructure_beta(
    path: str | Path, snp_ids: pd.Index, *, index_column: bool | None = None
) -> pd.DataFrame:
    """Read terastructure's ``beta.txt`` (allele frequencies ``beta``, S x Q).

    Parameters
    ----------
    path
        The file; rows ``loc_index<TAB>b1 ... bQ<TAB>``.
    snp_ids
        SNP IDs in the order terastructure saw them.
    index_column
        See :func:`read_ancestry_matrix` (default: detect).

    Returns
    -------
    pandas.DataFrame
        SNPs x Q frequencies.
    """
    return _label(
        read_ancestry_matrix(path, index_column=index_column),
        pd.Index(snp_ids, dtype=str),
        "snps",
        Path(path),
    )


def read_terastructure_theta(
    path: str | Path, individual_ids: pd.Index, *, index_column: bool | None = None
) -> pd.DataFrame:
    """Read terastructure's ``theta.txt`` (admixture proportions ``tau``, N x Q).

    Parameters
    ----------
    path
        The file; rows end in a tab, optionally start with an index.
    individual_ids
        Individual IDs in the order terastructure saw them.
    index_column
        See :func:`read_ancestry_matrix` (default: detect).

    Returns
    -------
    pandas.DataFrame
        Individuals x Q proportions.
    """
    return _label(
        read_ancestry_matrix(path, index_column=index_column),
        pd.Index(individual_ids, dtype=str),
        "individuals",
        Path(path),
    )


def read_admixture_p(path: str | Path, snp_ids: pd.Index) -> pd.DataFrame:
    """Read an ADMIXTURE ``.P`` file (allele frequencies, S x Q).

    Parameters
    ----------
    path
        The file.
    snp_ids
        SNP IDs in the order of the ``.bim`` file ADMIXTURE read.

    Returns
    -------
    pandas.DataFrame
        SNPs x Q frequencies.
    """
    return _label(
        read_ancestry_matrix(path, index_column=False), pd.Index(snp_ids, dtype=str), "snps", Path(path)
    )


def read_admixture_q(path: str | Path, individual_ids: pd.Index) -> pd.DataFrame:
    """Read an ADMIXTURE ``.Q`` file (admixture proportions, N x Q).

    Parameters
    ----------
    path
        The file.
    individual_ids
        Individual IDs in the order of the ``.fam`` file ADMIXTURE read.

    Returns
    -------
    pandas.DataFrame
        Individuals x Q proportions.
    """
    return _label(
        read_ancestry_matrix(path, index_column=False),
        pd.Index(individual_ids, dtype=str),
        "individuals",
        Path(path),
    )
