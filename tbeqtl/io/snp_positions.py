"""SNP positions from ``.bim``, ``.pvar``, MatrixEQTL ``snpsloc`` or any delimited table.

Positions are 1-based; chromosome names are harmonised to the ``chr1`` style.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ._common import (
    check_file,
    check_unique,
    count_meta_lines,
    first_line,
    harmonize_chrom_fast,
    integer_column,
    pick_column,
    pick_ids,
    read_delimited,
)

__all__ = ["read_snp_positions"]

logger = logging.getLogger(__name__)

_SNP_ID = ("snp", "snpid", "snp_id", "id", "rsid", "variant_id", "sid", "marker", "snpname")
_SNP_CHROM = ("chrom", "chr", "chromosome", "#chrom", "#chr", "chromosome_name")
_SNP_POS = ("pos", "position", "bp", "bp_position", "start", "base_pair_location")


def read_snp_positions(
    path: str | Path,
    *,
    id_column: str | None = None,
    chrom_column: str | None = None,
    pos_column: str | None = None,
    snps: Sequence[str] | None = None,
    duplicates: str = "error",
) -> pd.DataFrame:
    """Read SNP positions from a ``.bim``, ``.pvar``, VCF-like or delimited table.

    Parameters
    ----------
    path
        A PLINK ``.bim`` (no header), a ``.pvar``/``#CHROM POS ID`` header table, a MatrixEQTL
        ``snpsloc`` file (``snpid chr pos``), or any table whose SNP ID, chromosome and position
        columns are recognised by name (``snp``/``snpid``/``id``/``rsid``/``variant_id``,
        ``chr``/``chrom``, ``pos``/``bp``/``position``/``start``).
    id_column, chrom_column, pos_column
        Explicit column names.
    snps
        Keep only these SNP IDs (in this order); unknown IDs raise.
    duplicates
        ``"error"`` (default) or ``"first"``: keep the first row of an ID listed several times
        (e.g. one rsID for two ALT alleles of a multi-allelic site), with a logged count.

    Returns
    -------
    pandas.DataFrame
        Indexed by SNP ID (``snp``): ``chrom`` (``chr`` style), ``pos`` (int64, 1-based), plus
        ``ref``/``alt`` when the file has them.
    """
    path = check_file(path, what="SNP position file")
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".bim"):
        from .plink import read_bim

        df = read_bim(path).drop(columns=["cm"])
    else:
        header = first_line(path)
        skip = 0
        if header.startswith("##"):
            skip = count_meta_lines(path)
        df_raw = read_delimited(
            path,
            what="SNP position file",
            dtype=str,
            skiprows=skip,
            keep_default_na=False,
            na_values=["NA", ""],
        )
        cols = [str(c) for c in df_raw.columns]
        sid = pick_column(cols, _SNP_ID, given=id_column, what="SNP ID", path=path)
        chrom = pick_column(cols, _SNP_CHROM, given=chrom_column, what="chromosome", path=path)
        pos = pick_column(cols, _SNP_POS, given=pos_column, what="position", path=path)
        ids = pd.Index(df_raw[sid].astype(str).to_numpy(), name="snp")
        df = pd.DataFrame(
            {
                "chrom": harmonize_chrom_fast(df_raw[chrom]),
                "pos": integer_column(df_raw[pos], what="position", ids=ids, path=path),
            },
            index=ids,
        )
        for allele in ("ref", "alt"):
            col = pick_column(cols, (allele,), given=None, what=allele, path=path, required=False)
            if col:
                df[allele] = df_raw[col].to_numpy()
    if duplicates not in {"error", "first"}:
        raise InputError(f"duplicates must be 'error' or 'first', not {duplicates!r}")
    if duplicates == "first" and df.index.has_duplicates:
        dup = df.index.duplicated()
        logger.info("kept the first of %d duplicated SNP rows in %s", int(dup.sum()), path)
        df = df[~dup]
    check_unique(df.index, "SNP", path=path)
    if snps is not None:
        df = df.loc[pick_ids(df.index, snps, "SNP", path=path)]
    return df
