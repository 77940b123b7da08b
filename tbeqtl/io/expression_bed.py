"""tensorQTL / FastQTL expression BED files (``#chr start end phenotype_id`` + samples, gzip).

BED coordinates are 0-based half-open; in memory positions are 1-based, so a row with
``start = TSS - 1, end = TSS`` gives ``start = end = TSS``.
"""

from __future__ import annotations

import gzip
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..data import harmonize_chrom
from ..errors import InputError
from ._common import (
    check_not_empty,
    check_unique,
    drop_uninformative_rows,
    numeric_frame,
    open_output,
    pick_ids,
    read_delimited,
)

__all__ = ["ExpressionBed", "read_expression_bed", "write_expression_bed"]

logger = logging.getLogger(__name__)


class ExpressionBed(NamedTuple):
    """Expression values and positions read from a BED file.

    Attributes
    ----------
    expression_df : pandas.DataFrame
        Phenotypes (genes) x samples, float64, NaN missing.
    gene_pos_df : pandas.DataFrame
        Indexed like ``expression_df``: ``chrom`` (``chr`` style), ``start``, ``end`` (1-based).
    """

    expression_df: pd.DataFrame
    gene_pos_df: pd.DataFrame


def read_expression_bed(
    path: str | Path,
    *,
    samples: Sequence[str] | None = None,
    chrom: str | None = None,
    drop_uninformative: bool = False,
) -> ExpressionBed:
    """Read a tensorQTL-style expression BED file.

    Parameters
    ----------
    path
        ``.bed`` or ``.bed.gz`` with header ``#chr start end phenotype_id <samples...>`` (the
        fourth column may be named ``gene_id`` or ``pid``).
    samples
        Sample columns to keep, in this order; ``None`` keeps all.
    chrom
        Keep only this chromosome (any naming style).
    drop_uninformative
        Drop all-missing and constant phenotypes (with a logged count).

    Returns
    -------
    ExpressionBed
        ``(expression_df, gene_pos_df)``.

    Raises
    ------
    InputError
        Fewer than 5 columns, non-integer positions, non-numeric values (row and column
        named), duplicate IDs, empty or corrupt files.
    """
    df = _read_bed_arrow(path)
    if df is None:
        df = read_delimited(path, what="expression BED file", sep="\t", dtype={0: str, 3: str})
    if df.shape[1] < 5:
        raise InputError(
            f"expression BED needs '#chr start end phenotype_id' and samples, found {df.shape[1]} columns",
            path=str(path),
        )
    if not str(df.columns[0]).startswith("#"):
        logger.info("%s: first header cell is %r, expected '#chr'", path, df.columns[0])
    id_col = df.columns[3]
    ids = pd.Index(df[id_col].astype(str).to_numpy(), name="gene")
    check_unique(ids, "phenotype", path=path)
    pos = {}
    for name, col in (("start", df.columns[1]), ("end", df.columns[2])):
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() | (num != num.round())
        if bad.any():
            raise InputError(
                f"expression BED has non-integer {name} positions for",
                path=str(path),
                ids=ids[bad.to_numpy()],
            )
        pos[name] = num.astype(np.int64).to_numpy()
    gene_pos_df = pd.DataFrame(
        {
            "chrom": harmonize_chrom(df[df.columns[0]]).to_numpy(),
            "start": pos["start"] + 1,
            "end": pos["end"],
        },
        index=ids,
    )
    values = df.iloc[:, 4:].set_axis(ids, axis=0)
    values.columns = values.columns.astype(str)
    check_unique(values.columns, "sample", path=path)
    if chrom is not None:
        keep = (gene_pos_df["chrom"] == harmonize_chrom([chrom])[0]).to_numpy()
        values, gene_pos_df = values[keep], gene_pos_df[keep]
    if samples is not None:
        values = values[list(pick_ids(values.columns, samples, "sample", path=path))]
    check_not_empty(values, "expression BED file", path=path)
    expression_df = numeric_frame(values, what="expression BED file", path=path)
    expression_df.columns.name = "sample"
    if drop_uninformative:
        expression_df = drop_uninformative_rows(expression_df, what="phenotypes")
        gene_pos_df = gene_pos_df.loc[expression_df.index]
    return ExpressionBed(expression_df, gene_pos_df)


def _read_bed_arrow(path: str | Path) -> pd.DataFrame | None:
    """Read the BED table with pyarrow's multi-threaded CSV reader (as :func:`read_delimited` returns it).

    Column 0 and the ID column are read as strings, positions must parse as integers and samples
    as numbers (``NA`` and empty cells missing); any other content returns None so that the pandas
    path reads the file and names the offending rows.
    """
    import pyarrow as pa
    from pyarrow import csv

    from ._common import is_gzip

    path = Path(path)
    if not path.is_file():
        return None
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            header = handle.readline().rstrip("\r\n").split("\t")
        if len(header) < 5 or len(set(header)) != len(header):
            return None
        table = csv.read_csv(
            path,
            read_options=csv.ReadOptions(block_size=1 << 24),
            parse_options=csv.ParseOptions(delimiter="\t"),
            convert_options=csv.ConvertOptions(
                column_types={header[0]: pa.string(), header[3]: pa.string()}, strings_can_be_null=False
            ),
        )
    except (OSError, UnicodeDecodeError, EOFError, pa.ArrowException):
        return None
    types = table.schema.types
    if table.num_rows == 0 or not all(pa.types.is_integer(t) for t in types[1:3]):
        return None
    if not all(pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_null(t) for t in types[4:]):
        return None
    values = np.empty((table.num_rows, len(header) - 4))
    for j, column in enumerate(table.columns[4:]):
        values[:, j] = column.to_numpy(zero_copy_only=False) if column.null_count == 0 else column.to_pandas()
    head = pd.DataFrame({name: table[name].to_numpy(zero_copy_only=False) for name in header[:4]})
    return pd.concat([head, pd.DataFrame(values, columns=header[4:])], axis=1)


def write_expression_bed(
    expression_df: pd.DataFrame,
    gene_pos_df: pd.DataFrame,
    path: str | Path,
    *,
    tss: bool = False,
    tabix: bool = True,
) -> None:
    """Write expression as a tensorQTL BED file, sorted by chromosome and start.

    Parameters
    ----------
    expression_df
        Phenotypes x samples values.
    gene_pos_df
        Indexed by phenotype ID with ``chrom`` and either ``pos`` (a TSS) or ``start``/``end``
        (1-based, closed; a ``strand`` column is used with ``tss``).
    path
        Destination, written atomically. A ``.bed.gz`` is compressed with bgzip and indexed
        (``.bed.gz.tbi``) through pysam when ``tabix`` is true, as FastQTL requires.
    tss
        Write ``start = TSS - 1, end = TSS`` (tensorQTL's convention) with the TSS taken from
        ``start`` on ``+`` strands and ``end`` on ``-`` strands.
    tabix
        For ``.gz`` output: bgzip and tabix-index when pysam is installed (plain gzip otherwise).

    Raises
    ------
    InputError
        Phenotypes without a position, duplicate IDs.
    """
    check_unique(expression_df.index, "phenotype")
    check_unique(expression_df.columns, "sample")
    pos = gene_pos_df.reindex(expression_df.index)
    if "pos" in pos.columns:
        ends = pos["pos"]
        starts = ends - 1
    elif {"start", "end"} <= set(pos.columns):
        if tss:
            plus = pos["strand"].ne("-") if "strand" in pos.columns else pd.Series(True, index=pos.index)
            ends = pos["start"].where(plus, pos["end"])
            starts = ends - 1
        else:
            starts, ends = pos["start"] - 1, pos["end"]
    else:
        raise InputError("gene positions need 'pos' or 'start' and 'end' columns")
    unknown = pos["chrom"].isna() | starts.isna() | ends.isna()
    if unknown.any():
        raise InputError("phenotypes without a position", ids=expression_df.index[unknown.to_numpy()])
    chrom = harmonize_chrom(pos["chrom"])
    key = [_chrom_key(c) for c in chrom]
    head = pd.DataFrame(
        {
            "#chr": chrom.to_numpy(),
            "start": starts.astype(np.int64).to_numpy(),
            "end": ends.astype(np.int64).to_numpy(),
            "phenotype_id": expression_df.index.astype(str),
        }
    )
    out = pd.concat(
        [head, expression_df.reset_index(drop=True).set_axis(expression_df.columns.astype(str), axis=1)],
        axis=1,
    )
    out["_key"] = key
    out = out.sort_values(["_key", "start", "end"], kind="stable").drop(columns="_key")
    path = Path(path)
    pysam = _pysam() if tabix and path.suffix == ".gz" else None
    if pysam is None:
        with open_output(path) as handle:
            out.to_csv(handle, sep="\t", index=False, na_rep="NA", lineterminator="\n", float_format="%.17g")
        return
    with tempfile.TemporaryDirectory(prefix="tbeqtl-bed-") as tmp:
        plain = Path(tmp) / "expression.bed"
        out.to_csv(plain, sep="\t", index=False, na_rep="NA", lineterminator="\n", float_format="%.17g")
        compressed = pysam.tabix_index(str(plain), preset="bed", force=True, keep_original=False)
        with atomic_path(f"{path}.tbi") as tbi_tmp, atomic_path(path) as bed_tmp:
            shutil.move(compressed, bed_tmp)
            shutil.move(f"{compressed}.tbi", tbi_tmp)


def _pysam():
    try:
        import pysam
    except ImportError:  # pragma: no cover - pysam comes with pybedtools
        logger.info("pysam is not installed: writing plain gzip without a tabix index")
        return None
    return pysam


def _chrom_key(chrom: str) -> tuple[int, str]:
    bare = chrom.removeprefix("chr")
    if bare.isdigit():
        return (int(bare), "")
    return (100 + {"X": 0, "Y": 1, "M": 2}.get(bare, 3), bare)
