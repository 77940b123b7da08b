"""Genotype sources for cohort-scale mapping: one protocol, every format, streamed by chromosome.

Every genotype input of the cis/trans workflow is opened here and nowhere else: PLINK 2
(``.pgen/.pvar/.psam``), PLINK 1 (``.bed/.bim/.fam``), VCF/BCF (``GT`` hard calls or ``DS``
dosages) and dosage TSV, told apart by :func:`sniff_genotype_format`, plus an in-memory
DataFrame (:class:`FrameGenotypes`) for the Python API.

A source exposes

- ``samples``: individual IDs in file order (a :class:`pandas.Index` of str);
- ``variant_df``: one row per variant in file order, indexed by ``variant_id`` (str), with
  ``chrom`` (harmonised, ``chr1`` style) and ``pos`` (1-based int64), and ``ref``/``alt`` where
  the format has them; the dosage counts the ``alt`` allele;
- ``chromosomes``: chromosome names in order of first appearance;
- ``read_chrom(chrom, samples=..., start=0, stop=None)``: dosages of the chromosome's variants
  ``start:stop`` (positions among that chromosome's rows of ``variant_df``) as a float32 array
  (variants in ``variant_df`` order x the requested individuals, in the requested order),
  ``NaN`` where a call is missing. Callers hold one chromosome, or one block of it, at a time
  in float32 (4 bytes per call), never the whole matrix in float64.

Hard calls (0/1/2) are exact in float32; dosages (``DS``) are rounded to float32 on reading
(relative error <= 6e-8).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from ..data import harmonize_chrom
from ..errors import InputError

__all__ = ["FrameGenotypes", "GenotypeSource", "as_genotype_source", "sample_indexer"]

logger = logging.getLogger(__name__)


class GenotypeSource(Protocol):
    """What the mapping functions need of a genotype input (see the module docstring)."""

    samples: pd.Index
    variant_df: pd.DataFrame

    @property
    def chromosomes(self) -> list[str]:
        """Chromosome names in order of first appearance."""
        ...

    def read_chrom(
        self, chrom: str, *, samples: Sequence[str], start: int = 0, stop: int | None = None
    ) -> np.ndarray:
        """Dosages of a chromosome's variants ``start:stop``: float32, variants x ``samples``, NaN missing."""
        ...


def sample_indexer(available: pd.Index, wanted: Sequence[str], *, what: str = "genotype file") -> np.ndarray:
    """Column positions of ``wanted`` individual IDs among ``available`` ones.

    Parameters
    ----------
    available
        Individual IDs of the genotype source.
    wanted
        Individual IDs to read, in the output order.
    what
        Name of the source in the error message.

    Returns
    -------
    numpy.ndarray
        int64 positions into ``available``.

    Raises
    ------
    InputError
        Some wanted IDs are absent (named).
    """
    wanted_idx = pd.Index([str(s) for s in wanted])
    pos = pd.Index(available).get_indexer(wanted_idx)
    if (pos < 0).any():
        raise InputError(f"individuals absent from the {what}", ids=wanted_idx[pos < 0])
    return pos.astype(np.int64)


def _standard_variant_df(variant_df: pd.DataFrame) -> pd.DataFrame:
    """Check and normalise a ``variant_df`` (tensorQTL's ``chrom``/``pos`` columns; ``chr`` accepted)."""
    df = variant_df.copy()
    if "chrom" not in df.columns and "chr" in df.columns:
        df = df.rename(columns={"chr": "chrom"})
    missing = [c for c in ("chrom", "pos") if c not in df.columns]
    if missing:
        raise InputError(f"variant_df lacks columns {missing} (found: {', '.join(map(str, df.columns))})")
    df.index = pd.Index(df.index.astype(str), name="variant_id")
    if df.index.has_duplicates:
        raise InputError("duplicate variant IDs", ids=df.index[df.index.duplicated()].unique())
    df["chrom"] = np.asarray(harmonize_chrom(df["chrom"]), dtype=object)
    pos = pd.to_numeric(df["pos"], errors="coerce")
    if pos.isna().any():
        raise InputError(
            "variant_df has missing or non-numeric positions for variants", ids=df.index[pos.isna()]
        )
    df["pos"] = pos.astype(np.int64)
    return df


class FrameGenotypes:
    """An in-memory genotype table as a :class:`GenotypeSource`.

    Parameters
    ----------
    genotype_df
        Variants x individuals dosages (ALT counts; tensorQTL's int8 with -9 missing, or
        float with NaN missing).
    variant_df
        Indexed by variant ID: ``chrom`` (or ``chr``) and ``pos``; every variant of
        ``genotype_df`` must be listed.
    """

    def __init__(self, genotype_df: pd.DataFrame, variant_df: pd.DataFrame):
        self.samples = pd.Index(genotype_df.columns.astype(str), name="individual")
        if self.samples.has_duplicates:
            raise InputError(
                "duplicate individual IDs in genotype_df", ids=self.samples[self.samples.duplicated()]
            )
        variants = pd.Index(genotype_df.index.astype(str))
        info = _standard_variant_df(variant_df)
        missing = variants.difference(info.index, sort=False)
        if len(missing):
            raise InputError("variants of genotype_df absent from variant_df", ids=missing)
        self.variant_df = info.loc[variants]
        self._genotype_df = genotype_df
        self._rows = {
            chrom: np.flatnonzero((self.variant_df["chrom"] == chrom).to_numpy())
            for chrom in self.chromosomes
        }

    @property
    def chromosomes(self) -> list[str]:
        """Chromosome names in order of first appearance."""
        return list(pd.unique(self.variant_df["chrom"]))

    def read_chrom(
        self, chrom: str, *, samples: Sequence[str], start: int = 0, stop: int | None = None
    ) -> np.ndarray:
        """Dosages of one chromosome (float32, NaN missing; tensorQTL's -9 read as missing).

        Parameters
        ----------
        chrom
            Chromosome (harmonised name).
        samples
            Individual IDs, in the output column order.
        start, stop
            Variant range among the chromosome's variants (``variant_df`` order).

        Returns
        -------
        numpy.ndarray
            float32, variants (in ``variant_df`` order) x ``samples``.
        """
        rows = self._rows.get(chrom, np.empty(0, dtype=np.int64))[start:stop]
        cols = sample_indexer(self.samples, samples, what="genotype table")
        values = self._genotype_df.iloc[rows, cols].to_numpy()
        if values.dtype.kind not in "iuf":
            raise InputError(f"genotype_df has non-numeric values on {chrom}")
        out = values.astype(np.float32)
        if values.dtype.kind in "iu":
            out[values < 0] = np.nan
        return out


def as_genotype_source(genotypes, variant_df: pd.DataFrame | None = None) -> GenotypeSource:
    """Wrap ``genotypes`` as a :class:`GenotypeSource`.

    Parameters
    ----------
    genotypes
        A genotype source (returned as is) or a variants x individuals DataFrame.
    variant_df
        Positions; required with a DataFrame.

    Returns
    -------
    GenotypeSource
        The source.
    """
    if isinstance(genotypes, pd.DataFrame):
        if variant_df is None:
            raise InputError("variant_df (chrom, pos per variant) is required with a genotype DataFrame")
        return FrameGenotypes(genotypes, variant_df)
    for attr in ("samples", "variant_df", "read_chrom"):
        if not hasattr(genotypes, attr):
            raise InputError(f"genotypes must be a DataFrame or a genotype source (no {attr!r})")
    return genotypes
