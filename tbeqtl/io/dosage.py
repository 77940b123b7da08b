"""Dosage tables: SNPs x individuals TSV (optionally gzipped), ``NA`` for missing calls.

The first column holds the SNP IDs and the header the individual IDs. Dosages are the
number of counted (ALT) alleles, 0/1/2 or fractional in [0, 2]: the paper's ``y``.

:class:`DosageTSVSource` is the streamed :class:`~tbeqtl.io.genotypes.GenotypeSource` of a
dosage table. Variant positions come, in this order, from ``chrom``/``chr`` and
``pos``/``position``/``bp`` columns of the table, from ``snp_pos`` (a positions table or file,
see :func:`~tbeqtl.io.read_snp_positions`), or from the IDs when every one reads as
``chrom_pos[_...]`` or ``chrom:pos[:...]`` (``chr18_10644_T_G_b38``, ``18:10644:T:G``). Opening
reads the ID (and position) columns once; each ``read_chrom`` streams the table from the top
to the last variant asked for (the cost of a text format: one parse per call).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import validate_genotypes
from ..errors import InputError
from ._common import (
    check_file,
    check_not_empty,
    check_unique,
    drop_uninformative_rows,
    first_line,
    is_gzip,
    numeric_frame,
    open_output,
    pick_ids,
    read_delimited,
    reader_errors,
    sniff_sep,
    write_matrix_text,
)
from .genotypes import StreamedSource

__all__ = ["DosageTSVSource", "iter_dosage_tsv_blocks", "read_dosage_tsv", "write_dosage_tsv"]

logger = logging.getLogger(__name__)


def read_dosage_tsv(
    path: str | Path,
    *,
    id_column: str | int = 0,
    info_columns: Sequence[str] = (),
    na_values: Sequence[str] = ("NA",),
    snps: Sequence[str] | None = None,
    individuals: Sequence[str] | None = None,
    drop_uninformative: bool = False,
) -> pd.DataFrame:
    """Read a SNPs x individuals dosage table.

    Parameters
    ----------
    path
        Tab- or comma-separated file (gzip detected from the content).
    id_column
        Column with the SNP IDs (name or position; default the first).
    info_columns
        Non-genotype columns to ignore, e.g. ``("chr", "start", "end")`` in the GEUVADIS
        genotype table.
    na_values
        Strings that mark a missing call, e.g. ``("NA", "-1")`` for tables coding missing as -1.
    snps, individuals
        IDs to keep (``None`` keeps all).
    drop_uninformative
        Drop all-missing and monomorphic SNPs (with a logged count).

    Returns
    -------
    pandas.DataFrame
        SNPs x individuals float64 dosages, NaN for missing.

    Raises
    ------
    InputError
        Non-numeric cells (row and column named), dosages outside [0, 2] (SNPs named),
        duplicate IDs, empty or corrupt files.
    """
    df = read_delimited(
        path,
        what="dosage table",
        index_col=id_column,
        keep_default_na=False,
        na_values=list(na_values),
        dtype={id_column: str} if isinstance(id_column, str) else None,
    )
    missing = [c for c in info_columns if c not in df.columns]
    if missing:
        raise InputError(f"dosage table has no columns {missing}", path=str(path))
    df = df.drop(columns=list(info_columns))
    df.index = df.index.astype(str)
    df.columns = df.columns.astype(str)
    check_unique(df.index, "SNP", path=path)
    check_unique(df.columns, "individual", path=path)
    if snps is not None:
        df = df.loc[pick_ids(df.index, snps, "SNP", path=path)]
    if individuals is not None:
        df = df[list(pick_ids(df.columns, individuals, "individual", path=path))]
    check_not_empty(df, "dosage table", path=path)
    df = validate_genotypes(numeric_frame(df, what="dosage table", path=path), path=str(path))
    if drop_uninformative:
        df = drop_uninformative_rows(df, what="SNPs")
    df.index.name = "snp"
    df.columns.name = "individual"
    return df


def iter_dosage_tsv_blocks(
    path: str | Path,
    *,
    block_size: int = 10_000,
    id_column: str | int = 0,
    info_columns: Sequence[str] = (),
    na_values: Sequence[str] = ("NA",),
    individuals: Sequence[str] | None = None,
) -> Iterator[pd.DataFrame]:
    """Stream a dosage table in blocks of SNPs (memory bounded by ``block_size`` rows).

    Parameters
    ----------
    path
        The dosage table (see :func:`read_dosage_tsv`).
    block_size
        SNPs per block.
    id_column, info_columns, na_values
        As in :func:`read_dosage_tsv`.
    individuals
        Individual columns to keep, in this order; ``None`` keeps all.

    Yields
    ------
    pandas.DataFrame
        SNPs x individuals float64 dosages (checked to lie in [0, 2]), NaN for missing.
    """
    if block_size < 1:
        raise InputError(f"block_size must be positive, got {block_size}")
    path = check_file(path, what="dosage table")
    with reader_errors(path, what="dosage table"):
        header = first_line(path)
        sep = sniff_sep(header)
        columns = [c.strip().strip('"') for c in header.split(sep)] if sep != r"\s+" else header.split()
        check_unique(columns, "column (header)", path=path)
        id_name = columns[id_column] if isinstance(id_column, int) else id_column
        if id_name not in columns:
            raise InputError(f"dosage table has no column {id_name!r}", path=str(path))
        missing = [c for c in info_columns if c not in columns]
        if missing:
            raise InputError(f"dosage table has no columns {missing}", path=str(path))
        samples = [c for c in columns if c != id_name and c not in set(info_columns)]
        keep = list(pick_ids(pd.Index(samples), individuals, "individual", path=path))
        reader = pd.read_csv(
            path,
            sep=sep,
            compression="gzip" if is_gzip(path) else None,
            index_col=id_name,
            usecols=[id_name, *keep],
            dtype={id_name: str},
            keep_default_na=False,
            na_values=list(na_values),
            chunksize=block_size,
            float_precision="round_trip",
        )
        seen, seen_ids = 0, set()
        with reader:
            for block in reader:
                block.index = block.index.astype(str)
                check_unique(block.index, "SNP", path=path)
                repeated = [i for i in block.index if i in seen_ids]
                if repeated:
                    raise InputError("duplicate SNP IDs", path=str(path), ids=repeated)
                seen_ids.update(block.index)
                values = validate_genotypes(
                    numeric_frame(block[keep], what="dosage table", path=path), path=str(path)
                )
                values.index.name, values.columns.name = "snp", "individual"
                seen += len(values)
                yield values
        if seen == 0:
            raise InputError("dosage table has a header but no rows", path=str(path))


def write_dosage_tsv(genotype_df: pd.DataFrame, path: str | Path) -> None:
    """Write SNPs x individuals dosages as TSV (gzip if ``path`` ends in ``.gz``), ``NA`` for missing.

    Hard calls are written as integers; fractional dosages with full precision, so that
    reading the file back gives identical values.

    Parameters
    ----------
    genotype_df
        SNPs x individuals dosages.
    path
        Destination, written atomically; the first column is ``snp_id``.
    """
    check_unique(genotype_df.index, "SNP")
    check_unique(genotype_df.columns, "individual")
    if genotype_df.shape[0] == 0 or genotype_df.shape[1] == 0:
        raise InputError(f"refusing to write an empty dosage table ({genotype_df.shape})", path=str(path))
    with open_output(path) as handle:
        write_matrix_text(handle, genotype_df.astype(np.float64), index_label="snp_id")


_CHROM_NAMES = ("chrom", "chr", "#chrom", "#chr", "chromosome")
_POS_NAMES = ("pos", "position", "bp")
_ID_POSITION = re.compile(r"^((?:chr)?[0-9A-Za-z]+)[_:]([0-9]+)(?:[_:].*)?$")


def _positions_from_ids(ids: pd.Index) -> pd.DataFrame | None:
    parts = ids.to_series().str.extract(_ID_POSITION)
    if len(ids) == 0 or parts.isna().any().any():
        return None
    return pd.DataFrame(
        {"chrom": parts[0].to_numpy(), "pos": parts[1].astype(np.int64).to_numpy()}, index=ids
    )


class DosageTSVSource(StreamedSource):
    """A dosage TSV as a :class:`~tbeqtl.io.genotypes.GenotypeSource` (see the module docstring).

    Parameters
    ----------
    path
        The table (tab- or comma-separated, gzip detected): variant IDs in the first column,
        individual IDs in the header, ``NA`` missing.
    snp_pos
        Positions when the table has no position columns: a DataFrame indexed by variant ID with
        ``chrom``/``pos`` (``ref``/``alt`` kept), or a file for :func:`~tbeqtl.io.read_snp_positions`.
    block_size
        Rows parsed at a time.

    Raises
    ------
    InputError
        No positions for some variants (named), duplicate IDs.
    """

    def __init__(self, path: str | Path, *, snp_pos=None, block_size: int = 10_000):
        path = check_file(path, what="dosage table")
        self.block_size = block_size
        header = first_line(path)
        sep = sniff_sep(header)
        columns = [c.strip().strip('"') for c in header.split(sep)] if sep != r"\s+" else header.split()
        check_unique(columns, "column (header)", path=path)
        lower = {c.lower(): c for c in columns[1:]}
        chrom_col = next((lower[n] for n in _CHROM_NAMES if n in lower), None)
        pos_col = next((lower[n] for n in _POS_NAMES if n in lower), None)
        self._info_columns = [c for c in (chrom_col, pos_col) if c is not None]
        in_file = chrom_col is not None and pos_col is not None
        table = read_delimited(
            path,
            what="dosage table",
            sep=sep,
            usecols=[0, *(columns.index(c) for c in self._info_columns)],
            dtype=str,
            keep_default_na=False,
        )
        ids = pd.Index(table.iloc[:, 0].astype(str).to_numpy(), name="variant_id")
        check_unique(ids, "SNP", path=path)
        variant_df = self._positions(path, ids, table, chrom_col, pos_col, snp_pos=snp_pos, in_file=in_file)
        samples = [c for c in columns[1:] if c not in self._info_columns]
        self._set_index(samples, variant_df, path=path)

    @staticmethod
    def _positions(path: Path, ids: pd.Index, table: pd.DataFrame, chrom_col, pos_col, *, snp_pos, in_file):
        if in_file:
            return pd.DataFrame(
                {"chrom": table[chrom_col].to_numpy(), "pos": table[pos_col].to_numpy()}, index=ids
            )
        if snp_pos is not None:
            if not isinstance(snp_pos, pd.DataFrame):
                from .snp_positions import read_snp_positions

                snp_pos = read_snp_positions(snp_pos)
            absent = ids.difference(snp_pos.index.astype(str), sort=False)
            if len(absent):
                raise InputError(
                    "variants of the dosage table have no position in snp_pos", path=str(path), ids=absent
                )
            keep = [c for c in ("chrom", "chr", "pos", "ref", "alt") if c in snp_pos.columns]
            return snp_pos.set_axis(snp_pos.index.astype(str)).loc[ids, keep]
        parsed = _positions_from_ids(ids)
        if parsed is None:
            raise InputError(
                "dosage table has no positions: add chrom and pos columns, pass snp_pos (a positions "
                "table or file), or use IDs of the form chrom_pos_... (e.g. chr18_10644_T_G)",
                path=str(path),
            )
        logger.info("variant positions of %s read from its IDs (chrom_pos_...)", path)
        return parsed

    def read_chrom(
        self, chrom: str, *, samples: Sequence[str], start: int = 0, stop: int | None = None
    ) -> np.ndarray:
        """Dosages of a chromosome's variants ``start:stop`` (float32, NaN missing).

        Parameters
        ----------
        chrom
            Harmonised chromosome name.
        samples
            Individual IDs, in the output column order.
        start, stop
            Variant range among the chromosome's variants (``variant_df`` order).

        Returns
        -------
        numpy.ndarray
            float32, variants x ``samples``.
        """
        rows = self._range_rows(chrom, start, stop)
        plan = self._sample_plan(samples, what=f"dosage table {self.path.name}")
        out = np.empty((len(rows), plan.size), dtype=np.float32)
        if out.size == 0:
            return out
        names = list(self.samples[plan.columns])
        expected = self.variant_df.index[rows]
        offset = 0
        with self._lock:
            blocks = iter_dosage_tsv_blocks(
                self.path, block_size=self.block_size, info_columns=self._info_columns, individuals=names
            )
            for block in blocks:
                lo = np.searchsorted(rows, offset)
                hi = np.searchsorted(rows, offset + len(block))
                if hi > lo:
                    if not block.index[rows[lo:hi] - offset].equals(expected[lo:hi]):
                        raise InputError("dosage table changed since it was opened", path=str(self.path))
                    out[lo:hi] = plan.arrange(block.to_numpy()[rows[lo:hi] - offset])
                offset += len(block)
                if offset > rows[-1]:
                    break
            blocks.close()
        return out
