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

Positions are reported as the file has them: sources never sort. Cis mapping needs them sorted
within each chromosome; :func:`require_sorted_positions` (called by the cis code on
``variant_df``) raises naming the chromosome and the first variant out of order.

Formats (:func:`open_genotypes`; :func:`sniff_genotype_format` tells them apart):

- ``pgen``: a prefix, or any of ``.pgen/.pvar/.psam``; :class:`tbeqtl.io.pgen.PgenSource`
  (pgenlib); the dosage counts ALT (``.pvar`` column ``ALT``);
- ``plink``: a prefix, or any of ``.bed/.bim/.fam`` (``.gz`` allowed);
  :class:`tbeqtl.io.plink.PlinkSource` (bed-reader); the dosage counts A1 (``.bim`` column 5);
- ``vcf``: ``.vcf``, ``.vcf.gz``, ``.vcf.bgz``, ``.bcf``; :class:`tbeqtl.io.vcf.VCFSource`;
  ALT counts from ``GT``, or the ``DS`` field;
- ``dosage``: tbeqtl's ``*.dosage.tsv[.gz]`` (``.dosage.`` in the name);
  :class:`tbeqtl.io.dosage.DosageTSVSource`; values as written.

A prefix holding both a PLINK 2 and a PLINK 1 set opens the PLINK 2 set (as tensorQTL does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from ..errors import InputError
from ._common import harmonize_chrom_fast

__all__ = [
    "GENOTYPE_FORMATS",
    "FrameGenotypes",
    "GenotypeSource",
    "StreamedSource",
    "as_genotype_source",
    "genotype_input_files",
    "open_genotypes",
    "read_genotype_table",
    "require_sorted_positions",
    "sample_indexer",
    "sniff_genotype_format",
    "unsorted_chromosomes",
]

#: The formats :func:`open_genotypes` reads.
GENOTYPE_FORMATS = ("pgen", "plink", "vcf", "dosage")

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
    df["chrom"] = harmonize_chrom_fast(df["chrom"])
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


# --------------------------------------------------------------------------- streamed sources
def decode_hardcalls(codes: np.ndarray, out: np.ndarray) -> None:
    """Write int8 hard calls (0/1/2, negative = missing) into float32 ``out`` with NaN for missing.

    Parameters
    ----------
    codes
        int8 codes (pgenlib's -9 or tensorQTL's -9 for missing).
    out
        float32 array of the same shape, filled in place.
    """
    np.copyto(out, codes, casting="unsafe")
    missing = codes < 0
    if missing.any():
        out[missing] = np.nan


class SamplePlan:
    """How to read requested individuals from a file: the sorted distinct columns, then reorder.

    Parameters
    ----------
    available
        Individual IDs of the file, in file order.
    wanted
        Individual IDs to return, in the output order (repeats allowed).
    what
        Name of the source in the error message.

    Attributes
    ----------
    columns : numpy.ndarray
        Sorted distinct int64 file columns to read.
    order : numpy.ndarray or None
        Positions into ``columns`` giving the requested order (``None`` when ``columns`` is
        already that order).
    everyone : bool
        Whether ``columns`` is every individual of the file, in file order.
    size : int
        Number of output columns.
    """

    def __init__(self, available: pd.Index, wanted: Sequence[str], *, what: str):
        positions = sample_indexer(available, wanted, what=what)
        self.size = len(positions)
        self.columns, inverse = np.unique(positions, return_inverse=True)
        same = len(self.columns) == len(positions) and np.array_equal(self.columns, positions)
        self.order = None if same else inverse.astype(np.int64)
        self.everyone = len(self.columns) == len(available)

    def arrange(self, block: np.ndarray) -> np.ndarray:
        """Columns of ``block`` (read in ``columns`` order) in the requested order."""
        return block if self.order is None else block[:, self.order]


def _chrom_rows(chrom: pd.Series) -> dict[str, np.ndarray]:
    codes, uniques = pd.factorize(chrom, sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {str(u): order[bounds[i] : bounds[i + 1]] for i, u in enumerate(uniques)}


class StreamedSource:
    """Shared part of the file-backed sources: IDs, positions, chromosome rows, a read lock.

    Subclasses call :meth:`_set_index` once, then implement ``read_chrom`` with
    :meth:`_range_rows` and :class:`SamplePlan`. Reads are serialised by ``self._lock`` (the
    underlying readers are not thread-safe); ``close()`` releases file handles.
    """

    samples: pd.Index
    variant_df: pd.DataFrame

    def _set_index(self, samples: Sequence[str], variant_df: pd.DataFrame, *, path: Path) -> None:
        self.path = Path(path)
        self.samples = pd.Index([str(s) for s in samples], name="individual", dtype=object)
        if self.samples.has_duplicates:
            raise InputError(
                "duplicate individual IDs",
                path=str(path),
                ids=self.samples[self.samples.duplicated()].unique(),
            )
        try:
            self.variant_df = _standard_variant_df(variant_df)
        except InputError as exc:
            raise InputError(str(exc), path=str(path), ids=exc.ids) from None
        self._rows = _chrom_rows(self.variant_df["chrom"])
        self._lock = threading.Lock()
        self._last_plan: tuple[tuple, SamplePlan] | None = None  # see _sample_plan

    @property
    def chromosomes(self) -> list[str]:
        """Chromosome names in order of first appearance."""
        return list(self._rows)

    def _sample_plan(self, samples: Sequence[str], *, what: str) -> SamplePlan:
        """:class:`SamplePlan` of ``samples``, reused while block reads ask for the same individuals."""
        key = tuple(samples)
        cached = self._last_plan
        if cached is None or cached[0] != key:
            cached = (key, SamplePlan(self.samples, samples, what=what))
            self._last_plan = cached  # one tuple assignment: safe across reading threads
        return cached[1]

    def _range_rows(self, chrom: str, start: int, stop: int | None) -> np.ndarray:
        """Rows of ``variant_df`` (int64) for variants ``start:stop`` of ``chrom`` (empty if unknown)."""
        return self._rows.get(chrom, np.empty(0, dtype=np.int64))[start:stop]

    def close(self) -> None:
        """Release the file handles (reading again reopens nothing: make a new source)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.path)!r}: {len(self.variant_df)} variants on "
            f"{len(self._rows)} chromosomes x {len(self.samples)} individuals)"
        )


def contiguous(rows: np.ndarray) -> bool:
    """Whether ``rows`` are consecutive increasing integers (readable as one range)."""
    return (
        len(rows) > 0 and int(rows[-1]) - int(rows[0]) == len(rows) - 1 and bool(np.all(np.diff(rows) == 1))
    )


# --------------------------------------------------------------------------- positions
def unsorted_chromosomes(variant_df: pd.DataFrame) -> list[str]:
    """Chromosomes whose variant positions decrease somewhere (in ``variant_df`` order).

    Parameters
    ----------
    variant_df
        ``chrom`` and ``pos`` per variant.

    Returns
    -------
    list of str
        The chromosomes that are not sorted by position (empty when all are).
    """
    out = []
    pos = variant_df["pos"].to_numpy()
    for chrom, rows in _chrom_rows(variant_df["chrom"]).items():
        if np.any(np.diff(pos[rows]) < 0):
            out.append(chrom)
    return out


def require_sorted_positions(variant_df: pd.DataFrame, *, what: str = "genotype file") -> None:
    """Raise unless positions are sorted within each chromosome (as cis windows need).

    Sources never sort on their own: a file out of order is a problem to fix upstream
    (``plink2 --sort-vars``, ``bcftools sort``), not something to hide.

    Parameters
    ----------
    variant_df
        ``chrom`` and ``pos`` per variant, indexed by variant ID.
    what
        The source, for the message.

    Raises
    ------
    InputError
        Names each unsorted chromosome and the first variant that comes before a smaller position.
    """
    bad = unsorted_chromosomes(variant_df)
    if not bad:
        return
    pos = variant_df["pos"].to_numpy()
    rows = _chrom_rows(variant_df["chrom"])
    first = []
    for chrom in bad:
        r = rows[chrom]
        k = int(np.flatnonzero(np.diff(pos[r]) < 0)[0])
        first.append(f"{chrom} ({variant_df.index[r[k + 1]]} at {pos[r[k + 1]]} after {pos[r[k]]})")
    raise InputError(
        f"{what}: variant positions are not sorted within chromosomes (sort the file first, e.g. "
        "plink2 --sort-vars or bcftools sort)",
        ids=first,
    )


# --------------------------------------------------------------------------- format sniffing
_PGEN_SUFFIXES = (".pgen", ".pvar", ".psam")
_PLINK_SUFFIXES = (".bed.gz", ".bim.gz", ".fam.gz", ".bed", ".bim", ".fam")
_VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")


def _strip(path: str, suffixes: Sequence[str]) -> str | None:
    for suffix in suffixes:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return None


def _exists_any(base: str, suffix: str) -> bool:
    return Path(base + suffix).is_file() or Path(base + suffix + ".gz").is_file()


def sniff_genotype_format(path: str | Path, *, text_matrix: str | None = None) -> str:
    """Tell which genotype format ``path`` is, from its name and the files beside it.

    Parameters
    ----------
    path
        A PLINK 2 or PLINK 1 prefix (or the path of any file of the set), a VCF/BCF file or a
        dosage TSV (``.dosage.`` in its name).
    text_matrix
        What an existing file of no recognised genotype naming is taken as (``tbeqtl map``:
        ``"matrixeqtl"``); ``None`` makes it an error.

    Returns
    -------
    str
        ``"pgen"``, ``"plink"``, ``"vcf"``, ``"dosage"`` (or ``text_matrix``).

    Raises
    ------
    InputError
        A PLINK 2 set lacking its ``.pgen``, ``.pvar`` or ``.psam`` (the missing file named), a
        path that does not exist, or a file of unknown format.
    """
    text = str(path)
    low = text.lower()
    base = _strip(text, _PGEN_SUFFIXES)
    if base is not None:
        _check_pgen_set(base)
        return "pgen"
    base = _strip(low, _PLINK_SUFFIXES)
    if base is not None:
        return "plink"
    if low.endswith(_VCF_SUFFIXES):
        _require_file(text, "VCF/BCF file")
        return "vcf"
    if not Path(text).exists():
        if Path(text + ".pgen").is_file() or Path(text + ".pvar").is_file():
            _check_pgen_set(text)
            return "pgen"
        if _exists_any(text, ".bed"):
            return "plink"
        raise InputError(
            "genotype input not found (looked for the file, and for a PLINK 2 prefix .pgen/.pvar/.psam "
            "or a PLINK 1 prefix .bed/.bim/.fam)",
            path=text,
        )
    if Path(text).is_dir():
        raise InputError("genotype input is a folder; give a file or a PLINK prefix", path=text)
    if ".dosage." in Path(low).name:
        return "dosage"
    if text_matrix is not None:
        return text_matrix
    raise InputError(
        "unknown genotype format: expected a PLINK 2 (.pgen/.pvar/.psam) or PLINK 1 (.bed/.bim/.fam) "
        "prefix, a VCF/BCF (.vcf, .vcf.gz, .vcf.bgz, .bcf) or a dosage TSV (*.dosage.tsv[.gz])",
        path=text,
    )


def _require_file(path: str, what: str) -> None:
    if not Path(path).is_file():
        raise InputError(f"{what} not found", path=path)


def _check_pgen_set(base: str) -> None:
    for suffix, what in ((".pgen", "genotypes"), (".pvar", "variants"), (".psam", "samples")):
        if not Path(base + suffix).is_file():
            extra = " (.pvar.zst is not supported: decompress it)" if suffix == ".pvar" else ""
            raise InputError(f"PLINK 2 file set lacks its {suffix} file ({what}){extra}", path=base + suffix)


def genotype_input_files(path: str | Path, *, text_matrix: str | None = None) -> list[Path]:
    """List the files a genotype input is read from (what ``run.json`` checksums).

    Parameters
    ----------
    path
        As for :func:`open_genotypes`.
    text_matrix
        As for :func:`sniff_genotype_format`.

    Returns
    -------
    list of pathlib.Path
        ``.pgen, .pvar, .psam``; ``.bed, .bim, .fam`` (``.gz`` where that is the file present);
        or the one file.
    """
    fmt = sniff_genotype_format(path, text_matrix=text_matrix)
    if fmt == "pgen":
        from .pgen import pgen_files

        return list(pgen_files(path))
    if fmt == "plink":
        from .plink import plink_files

        return list(plink_files(path))
    return [Path(path)]


def open_genotypes(path: str | Path, *, dosage_field: str = "GT", snp_pos=None) -> GenotypeSource:
    """Open a genotype file as a :class:`GenotypeSource` (format sniffed; nothing read but the index).

    Parameters
    ----------
    path
        A PLINK 2 prefix (or ``.pgen``/``.pvar``/``.psam`` path), a PLINK 1 prefix (or
        ``.bed``/``.bim``/``.fam`` path, ``.gz`` allowed), a VCF/BCF file or a dosage TSV.
    dosage_field
        ``"GT"`` (hard calls) or ``"DS"`` (dosages; VCF ``DS`` field, PLINK 2 dosage track).
        PLINK 1 and dosage TSV files hold one kind of value and ignore it.
    snp_pos
        Dosage TSV only, when its rows carry no positions: a DataFrame (``chrom``, ``pos`` by
        variant ID) or a positions file (:func:`tbeqtl.io.read_snp_positions`).

    Returns
    -------
    GenotypeSource
        The source; call ``close()`` (or use it in a ``with`` block) when done.
    """
    if dosage_field not in {"GT", "DS"}:
        raise InputError(f"dosage_field must be 'GT' or 'DS', not {dosage_field!r}")
    fmt = sniff_genotype_format(path)
    if snp_pos is not None and fmt != "dosage":
        raise InputError(
            "snp_pos applies to dosage TSV files only (the other formats hold positions)", path=str(path)
        )
    if fmt == "pgen":
        from .pgen import PgenSource

        return PgenSource(path, dosage_field=dosage_field)
    if fmt == "plink":
        from .plink import PlinkSource

        return PlinkSource(path)
    if fmt == "vcf":
        from .vcf import VCFSource

        return VCFSource(path, dosage_field=dosage_field)
    from .dosage import DosageTSVSource

    return DosageTSVSource(path, snp_pos=snp_pos)


def read_genotype_table(
    path: str | Path, *, dosage_field: str = "GT", fmt: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read a whole genotype file as a float64 DataFrame (for the in-memory commands ``map`` and ``fit``).

    Parameters
    ----------
    path
        Any input :func:`open_genotypes` takes.
    dosage_field
        ``"GT"`` or ``"DS"`` (VCF, PLINK 2).
    fmt
        The format when already sniffed.

    Returns
    -------
    tuple
        ``(genotype_df, snp_info_df)``: SNPs x individuals float64 dosages (NaN missing) and the
        positions (``chrom``, ``pos``, ``ref``, ``alt``; ``None`` for a dosage TSV).
    """
    from . import dosage, plink, vcf

    fmt = fmt or sniff_genotype_format(path)
    if fmt == "plink":
        geno = plink.read_plink(path)
        return geno.genotype_df, geno.snp_info_df
    if fmt == "vcf":
        table = vcf.read_vcf(path, field=dosage_field)
        return table.genotype_df, table.snp_info_df
    if fmt == "dosage":
        return dosage.read_dosage_tsv(path), None
    if fmt != "pgen":
        raise InputError(f"unknown genotype format {fmt!r}", path=str(path))
    with open_genotypes(path, dosage_field=dosage_field) as source:
        samples = list(source.samples)
        info = source.variant_df
        values = np.empty((len(info), len(samples)))
        for chrom in source.chromosomes:
            values[source._range_rows(chrom, 0, None)] = source.read_chrom(chrom, samples=samples)
    genotype_df = pd.DataFrame(values, index=info.index.rename("snp"), columns=source.samples)
    genotype_df.columns.name = "individual"
    return genotype_df, info.rename_axis("snp")
