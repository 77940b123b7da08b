"""Variant filters of ``tbeqtl prepare``: autosomes, imputed flag, missingness, MAF.

Applied in this order, each over the kept individuals only (the individuals of the kept
samples, not the whole genotype file):

- autosome: chr1..chr22 (harmonised names);
- imputed: removed when the input flags it and ``drop_imputed`` is set. Honoured flags: the
  INFO flags ``IMP`` (Beagle) and ``IMPUTED`` (Minimac4) of a VCF/BCF, and the same flags in the
  ``INFO`` column of a PLINK 2 ``.pvar``. PLINK 1 ``.bim`` and dosage TSV files have no such
  field: nothing is removed and the manifest says the flag was not available. (The data in
  ``shared/data`` carry no INFO field: the GEUVADIS ``.pvar`` has ``#CHROM POS ID REF ALT`` only.)
- missingness: the fraction of missing calls is at most ``max_missing``;
- MAF: ``min(p, 1 - p) >= maf`` with ``p`` the mean dosage over the non-missing calls / 2
  (monomorphic SNPs have MAF 0 and go whenever ``maf > 0``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import is_bcf_file, iter_vcf_chunks
from ..io._common import count_meta_lines, read_delimited, reader_errors
from ..io.vcf import FIXED

__all__ = ["IMPUTED_FLAGS", "allele_stats", "imputed_flags", "info_is_imputed"]

logger = logging.getLogger(__name__)

#: INFO flags that mark a record as imputed.
IMPUTED_FLAGS = ("IMP", "IMPUTED")


def info_is_imputed(info: pd.Series) -> np.ndarray:
    """Whether each INFO string holds one of :data:`IMPUTED_FLAGS` as a key.

    Parameters
    ----------
    info
        INFO fields (``KEY=value;FLAG;...``).

    Returns
    -------
    numpy.ndarray
        Boolean per record.
    """
    keys = info.fillna("").astype(str).str.split(";")
    flags = set(IMPUTED_FLAGS)
    return np.array([any(k.split("=", 1)[0] in flags for k in row) for row in keys], dtype=bool)


def _vcf_info(path: Path) -> pd.Series:
    frames = [
        block.loc[~block["ALT"].str.contains(",", regex=False), "INFO"]
        for block in iter_vcf_chunks(path, columns=FIXED[:8], chunk_size=100_000)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.Series([], dtype=object)


def _bcf_info(path: Path) -> pd.Series:
    import pysam

    with reader_errors(path, what="BCF file"), pysam.VariantFile(str(path), drop_samples=True) as vf:
        rows = [
            ";".join(k for k in IMPUTED_FLAGS if k in rec.info)
            for rec in vf
            if rec.alts is not None and len(rec.alts) == 1
        ]
    return pd.Series(rows, dtype=object)


def _pvar_info(path: Path) -> pd.Series | None:
    skip = count_meta_lines(path)
    with reader_errors(path, what="PLINK 2 .pvar file"), open(path, encoding="utf-8") as handle:
        for _ in range(skip):
            handle.readline()
        header = handle.readline().rstrip("\r\n").split("\t")
    if not header or header[0] != "#CHROM" or "INFO" not in header:
        return None
    df = read_delimited(
        path,
        what="PLINK 2 .pvar file",
        sep="\t",
        skiprows=skip,
        header=0,
        dtype=str,
        usecols=["ALT", "INFO"],
        keep_default_na=False,
        na_filter=False,
    )
    return df.loc[~df["ALT"].str.contains(",", regex=False), "INFO"].reset_index(drop=True)


def imputed_flags(path: str | Path, fmt: str, variant_df: pd.DataFrame) -> pd.Series | None:
    """Imputed flag of every variant of a genotype source, where the format has one.

    Parameters
    ----------
    path
        The genotype input (as given to :func:`tbeqtl.io.open_genotypes`).
    fmt
        Its format (:func:`tbeqtl.io.sniff_genotype_format`).
    variant_df
        The source's ``variant_df`` (bi-allelic records in file order).

    Returns
    -------
    pandas.Series or None
        Boolean per variant ID; ``None`` when the format carries no INFO field.

    Raises
    ------
    InputError
        The file's records no longer match the source's variants.
    """
    path = Path(path)
    if fmt == "vcf":
        info = _bcf_info(path) if is_bcf_file(path) else _vcf_info(path)
    elif fmt == "pgen":
        from ..io.pgen import pgen_files

        info = _pvar_info(pgen_files(path)[1])
        if info is None:
            return None
    else:
        return None
    if len(info) != len(variant_df):
        raise InputError(
            f"genotype file has {len(info)} bi-allelic records but {len(variant_df)} were read at opening "
            "(file changed?)",
            path=str(path),
        )
    flags = pd.Series(info_is_imputed(info), index=variant_df.index, name="imputed")
    logger.info(
        "%s: %d of %d variants flagged imputed (INFO %s)",
        path.name,
        int(flags.sum()),
        len(flags),
        "/".join(IMPUTED_FLAGS),
    )
    return flags


def allele_stats(dosages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minor allele frequency and missing fraction of each variant.

    Parameters
    ----------
    dosages
        Variants x individuals dosages in [0, 2] (float, NaN missing).

    Returns
    -------
    tuple of numpy.ndarray
        ``(maf, missing)``: ``min(p, 1 - p)`` with ``p`` the mean non-missing dosage / 2 (0 for
        an all-missing variant) and the fraction of missing calls.
    """
    n = dosages.shape[1]
    present = ~np.isnan(dosages)
    n_present = present.sum(axis=1)
    total = np.where(present, dosages, 0.0).sum(axis=1, dtype=np.float64)
    p = np.divide(total, 2.0 * n_present, out=np.zeros(len(dosages)), where=n_present > 0)
    missing = 1.0 - n_present / n if n else np.ones(len(dosages))
    return np.minimum(p, 1.0 - p), missing
