"""MatrixEQTL text inputs: SNP.txt, GE.txt, Covariates.txt, snpsloc and geneloc.

Matrices are tab-separated with a header row whose first cell is a label (``id``,
``snpid``, ``geneid``) followed by the sample IDs; each following row is one feature (SNP,
gene or covariate) with ``NA`` for missing values. ``snpsloc`` has columns
``snpid chr pos``; ``geneloc`` has ``geneid chr left right`` (1-based, inclusive).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import harmonize_chrom
from ..errors import InputError
from ._common import (
    check_not_empty,
    check_unique,
    numeric_frame,
    open_output,
    pick_ids,
    read_delimited,
    write_matrix_text,
)
from .annotation import read_gene_annotation
from .snp_positions import read_snp_positions

__all__ = [
    "read_matrixeqtl_geneloc",
    "read_matrixeqtl_matrix",
    "read_matrixeqtl_snpsloc",
    "write_matrixeqtl_geneloc",
    "write_matrixeqtl_matrix",
    "write_matrixeqtl_snpsloc",
]

logger = logging.getLogger(__name__)


def read_matrixeqtl_matrix(
    path: str | Path,
    *,
    what: str = "MatrixEQTL matrix",
    samples: Sequence[str] | None = None,
    na_values: Sequence[str] = ("NA",),
) -> pd.DataFrame:
    """Read a MatrixEQTL matrix (SNP.txt, GE.txt or Covariates.txt) as features x samples.

    Parameters
    ----------
    path
        Tab-separated file (gzip detected from the content) with an ID header cell and
        sample IDs in the header row.
    what
        What the file holds (``"genotype matrix"``, ...), for messages.
    samples
        Sample columns to keep, in this order; ``None`` keeps all.
    na_values
        Strings marking missing values.

    Returns
    -------
    pandas.DataFrame
        Features x samples, float64, NaN for missing. For SNP.txt these are the dosages ``y``
        (SNPs x samples); for GE.txt expression values; for Covariates.txt covariates x samples.

    Raises
    ------
    InputError
        Non-numeric cells (row and column named), duplicate IDs, empty or corrupt files.
    """
    df = read_delimited(
        path,
        what=what,
        sep="\t",
        index_col=0,
        dtype={0: str},
        keep_default_na=False,
        na_values=list(na_values),
    )
    df.index = df.index.astype(str)
    df.columns = df.columns.astype(str)
    check_unique(df.index, "row", path=path)
    check_unique(df.columns, "sample", path=path)
    if samples is not None:
        df = df[list(pick_ids(df.columns, samples, "sample", path=path))]
    check_not_empty(df, what, path=path)
    out = numeric_frame(df, what=what, path=path)
    out.columns.name = "sample"
    return out


def write_matrixeqtl_matrix(df: pd.DataFrame, path: str | Path, *, id_header: str = "id") -> None:
    """Write features x samples as a MatrixEQTL text matrix (``NA`` for missing).

    Parameters
    ----------
    df
        Features (SNPs, genes or covariates) x samples.
    path
        Destination (``.gz`` for gzip), written atomically.
    id_header
        Header of the ID column (``id``, ``snpid``, ``geneid``).
    """
    check_unique(df.index, "row")
    check_unique(df.columns, "sample")
    with open_output(path) as handle:
        write_matrix_text(handle, df.astype(np.float64), index_label=id_header)


def read_matrixeqtl_snpsloc(path: str | Path) -> pd.DataFrame:
    """Read a MatrixEQTL ``snpsloc`` file (``snpid chr pos``).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    pandas.DataFrame
        Indexed by SNP ID: ``chrom`` (``chr`` style), ``pos`` (int64).
    """
    return read_snp_positions(path)


def read_matrixeqtl_geneloc(path: str | Path) -> pd.DataFrame:
    """Read a MatrixEQTL ``geneloc`` file (``geneid chr left right``).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene ID: ``chrom``, ``start`` (= left), ``end`` (= right), ``strand`` (``.``),
        ``gene_type`` (NaN).
    """
    return read_gene_annotation(path, format="tsv")


def write_matrixeqtl_snpsloc(snp_info_df: pd.DataFrame, path: str | Path) -> None:
    """Write SNP positions as a MatrixEQTL ``snpsloc`` file.

    Parameters
    ----------
    snp_info_df
        Indexed by SNP ID with ``chrom`` and ``pos``.
    path
        Destination, written atomically.
    """
    _write_loc(snp_info_df, path, {"chrom": "chr", "pos": "pos"}, "snpid")


def write_matrixeqtl_geneloc(gene_info_df: pd.DataFrame, path: str | Path) -> None:
    """Write gene positions as a MatrixEQTL ``geneloc`` file (``geneid chr left right``).

    Parameters
    ----------
    gene_info_df
        Indexed by gene ID with ``chrom``, ``start``, ``end`` (1-based).
    path
        Destination, written atomically.
    """
    _write_loc(gene_info_df, path, {"chrom": "chr", "start": "left", "end": "right"}, "geneid")


def _write_loc(df: pd.DataFrame, path: str | Path, columns: dict[str, str], id_header: str) -> None:
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        raise InputError("position table lacks columns", ids=lacking)
    check_unique(df.index, id_header)
    out = df[list(columns)].rename(columns=columns).dropna()
    if len(out) < len(df):
        logger.info("left %d rows without a position out of %s", len(df) - len(out), path)
    out["chr"] = harmonize_chrom(out["chr"]).to_numpy()
    for col in out.columns[1:]:
        out[col] = out[col].astype(np.int64)
    out.index = pd.Index(out.index.astype(str), name=id_header)
    with open_output(path) as handle:
        out.to_csv(handle, sep="\t", lineterminator="\n")
