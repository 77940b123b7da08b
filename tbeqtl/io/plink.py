"""PLINK 1 binary genotypes (``.bed`` / ``.bim`` / ``.fam``) through ``bed-reader``.

Allele coding: the dosage is the number of **A1** alleles (``.bim`` column 5), PLINK's
default (``count_A1=True``). In :func:`read_plink` the SNP table reports A1 as ``alt`` and
A2 (column 6) as ``ref``; :func:`write_plink` writes ``alt`` as A1, so a written-then-read
dosage counts the same allele. Missing calls (PLINK code ``01``) are ``NaN``.

Gzipped ``.bed.gz``/``.bim.gz``/``.fam.gz`` files are accepted: the ``.bed`` is decompressed
to a temporary folder that is removed after reading.

Positions are 1-based as in the ``.bim`` file. Chromosome names are harmonised to ``chr1``.

:class:`PlinkSource` is the streamed :class:`~tbeqtl.io.genotypes.GenotypeSource` of a file set:
bed-reader decodes the requested variants and individuals straight into the float32 output
(no float64 copy). A ``.bed.gz`` is decompressed once, when the source is opened, to a
temporary file removed by ``close()`` (or when the source is garbage-collected).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..data import harmonize_chrom
from ..errors import InputError, MissingDependencyError
from ._common import (
    check_file,
    check_unique,
    first_line,
    harmonize_chrom_fast,
    is_gzip,
    pick_ids,
    read_delimited,
    reader_errors,
)
from .genotypes import StreamedSource, contiguous

__all__ = [
    "PlinkGenotypes",
    "PlinkSource",
    "iter_plink_blocks",
    "plink_files",
    "read_bim",
    "read_fam",
    "read_plink",
    "write_plink",
]

logger = logging.getLogger(__name__)

BED_MAGIC = b"\x6c\x1b\x01"
FAM_COLUMNS = ("fid", "iid", "father", "mother", "sex", "phenotype")


class PlinkGenotypes(NamedTuple):
    """Genotypes read from a PLINK 1 file set.

    Attributes
    ----------
    genotype_df : pandas.DataFrame
        SNPs x individuals dosages (number of A1 alleles), float64, NaN missing.
    snp_info_df : pandas.DataFrame
        Indexed by SNP ID: ``chrom``, ``pos``, ``cm``, ``ref`` (A2), ``alt`` (A1).
    fam_df : pandas.DataFrame
        Indexed by individual ID (IID): ``fid``, ``father``, ``mother``, ``sex``, ``phenotype``.
    """

    genotype_df: pd.DataFrame
    snp_info_df: pd.DataFrame
    fam_df: pd.DataFrame


def _find(prefix: Path, suffix: str) -> Path:
    for candidate in (Path(f"{prefix}{suffix}"), Path(f"{prefix}{suffix}.gz")):
        if candidate.exists():
            return candidate
    raise InputError(
        f"PLINK file set lacks its {suffix} file (looked for {prefix}{suffix}[.gz])", path=f"{prefix}{suffix}"
    )


def plink_files(prefix: str | Path) -> tuple[Path, Path, Path]:
    """Resolve the ``.bed``, ``.bim`` and ``.fam`` files of a PLINK prefix (``.gz`` allowed).

    Parameters
    ----------
    prefix
        Path without suffix, or the path of any of the three files.

    Returns
    -------
    tuple of pathlib.Path
        ``(bed, bim, fam)``.
    """
    text = str(prefix)
    for suffix in (".bed.gz", ".bim.gz", ".fam.gz", ".bed", ".bim", ".fam"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    base = Path(text)
    return _find(base, ".bed"), _find(base, ".bim"), _find(base, ".fam")


def read_bim(path: str | Path) -> pd.DataFrame:
    """Read a ``.bim`` file (6 whitespace-separated columns, no header).

    Parameters
    ----------
    path
        The ``.bim`` (or ``.bim.gz``) file.

    Returns
    -------
    pandas.DataFrame
        Indexed by SNP ID (``snp``): ``chrom`` (harmonised), ``pos`` (int64), ``cm``, ``ref`` (A2),
        ``alt`` (A1).

    Raises
    ------
    InputError
        Wrong number of columns, non-integer positions, duplicate SNP IDs.

    Notes
    -----
    SNPs whose ID is ``.`` (or ``0``) are named ``chrom_pos_ref_alt`` (e.g. ``chr18_10644_T_G``).
    """
    path = check_file(path, what="PLINK .bim file")
    sep = "\t" if "\t" in first_line(path) else r"\s+"
    typed = {0: str, 1: str, 2: np.float64, 3: np.int64, 4: str, 5: str}
    try:
        df = read_delimited(path, what="PLINK .bim file", sep=sep, header=None, dtype=typed)
    except InputError:
        df = None  # diagnose below from the text
    if df is None or df.shape[1] != 6 or df.isna().any().any():
        df = read_delimited(path, what="PLINK .bim file", sep=sep, header=None, dtype=str)
    if df.shape[1] != 6:
        raise InputError(
            f"PLINK .bim file must have 6 columns (chrom, id, cm, pos, A1, A2), found {df.shape[1]}",
            path=str(path),
        )
    if df.isna().any().any():
        rows = np.nonzero(df.isna().any(axis=1).to_numpy())[0]
        raise InputError("PLINK .bim file has missing fields in lines", path=str(path), ids=rows + 1)
    df.columns = ["chrom", "snp", "cm", "pos", "alt", "ref"]
    pos = pd.to_numeric(df["pos"], errors="coerce")
    bad = pos.isna() | (pos != pos.round())
    if bad.any():
        rows = np.nonzero(bad.to_numpy())[0]
        raise InputError(
            f"PLINK .bim file has non-integer positions (e.g. {df['pos'].iloc[rows[0]]!r}) in lines",
            path=str(path),
            ids=rows + 1,
        )
    cm = pd.to_numeric(df["cm"], errors="coerce")
    if cm.isna().any():
        rows = np.nonzero(cm.isna().to_numpy())[0]
        raise InputError(
            "PLINK .bim file has non-numeric genetic positions in lines", path=str(path), ids=rows + 1
        )
    unnamed = df["snp"].isin([".", "0"]).to_numpy()
    if unnamed.any():
        built = (
            harmonize_chrom_fast(df["chrom"])
            + "_"
            + df["pos"].astype(str)
            + "_"
            + df["ref"]
            + "_"
            + df["alt"]
        )
        df.loc[unnamed, "snp"] = built[unnamed]
        logger.info("named %d SNPs with ID '.' as chrom_pos_ref_alt in %s", int(unnamed.sum()), path)
    check_unique(df["snp"], "SNP", path=path)
    out = pd.DataFrame(
        {
            "chrom": harmonize_chrom_fast(df["chrom"]),
            "pos": pos.astype(np.int64).to_numpy(),
            "cm": cm.to_numpy(),
            "ref": df["ref"].to_numpy(),
            "alt": df["alt"].to_numpy(),
        },
        index=pd.Index(df["snp"].to_numpy(), name="snp"),
    )
    return out


def read_fam(path: str | Path) -> pd.DataFrame:
    """Read a ``.fam`` file (6 whitespace-separated columns, no header).

    Parameters
    ----------
    path
        The ``.fam`` (or ``.fam.gz``) file.

    Returns
    -------
    pandas.DataFrame
        Indexed by individual ID (IID, index name ``individual``): ``fid``, ``father``, ``mother``,
        ``sex`` (1 male, 2 female, 0 unknown), ``phenotype``.

    Raises
    ------
    InputError
        Wrong number of columns or duplicate individual IDs.
    """
    path = check_file(path, what="PLINK .fam file")
    df = read_delimited(path, what="PLINK .fam file", sep=r"\s+", header=None, dtype=str)
    if df.shape[1] != 6:
        raise InputError(
            f"PLINK .fam file must have 6 columns (FID IID father mother sex phenotype), found {df.shape[1]}",
            path=str(path),
        )
    if df.isna().any().any():
        rows = np.nonzero(df.isna().any(axis=1).to_numpy())[0]
        raise InputError("PLINK .fam file has missing fields in lines", path=str(path), ids=rows + 1)
    df.columns = list(FAM_COLUMNS)
    check_unique(df["iid"], "individual (IID)", path=path)
    sex = pd.to_numeric(df["sex"], errors="coerce").fillna(0).astype(np.int64)
    out = df.drop(columns=["iid"]).assign(sex=sex.to_numpy())
    out.index = pd.Index(df["iid"].to_numpy(), name="individual")
    return out


@contextlib.contextmanager
def _plain_bed(bed: Path) -> Iterator[Path]:
    """Yield a path to an uncompressed copy of ``bed`` (itself when it is not gzipped)."""
    if not is_gzip(bed):
        yield bed
        return
    with tempfile.TemporaryDirectory(prefix="tbeqtl-bed-") as tmp:
        out = Path(tmp) / "genotypes.bed"
        with (
            reader_errors(bed, what="PLINK .bed.gz file"),
            gzip.open(bed, "rb") as src,
            open(out, "wb") as dst,
        ):
            shutil.copyfileobj(src, dst, length=1 << 20)
        yield out


def _check_bed(bed: Path, shown: Path, n_snps: int, n_individuals: int) -> None:
    with open(bed, "rb") as handle:
        magic = handle.read(3)
    if magic != BED_MAGIC:
        raise InputError("not a SNP-major PLINK 1 .bed file (bad magic bytes)", path=str(shown))
    expected = 3 + n_snps * ((n_individuals + 3) // 4)
    size = bed.stat().st_size
    if size != expected:
        raise InputError(
            f".bed file has {size} bytes but the .bim ({n_snps} SNPs) and .fam ({n_individuals} "
            f"individuals) imply {expected} (truncated file or mismatched .bim/.fam?)",
            path=str(shown),
        )


def _open_bed(bed: Path, bim_df: pd.DataFrame, fam_df: pd.DataFrame):
    try:
        from bed_reader import open_bed
    except ImportError as exc:  # pragma: no cover - bed-reader is a declared dependency
        raise MissingDependencyError("reading PLINK files needs bed-reader: pip install bed-reader") from exc
    return open_bed(
        bed,
        iid_count=len(fam_df),
        sid_count=len(bim_df),
        properties={"iid": list(fam_df.index), "sid": list(bim_df.index)},
        count_A1=True,
    )


def _snp_positions(bim_df: pd.DataFrame, snps: Sequence[str] | slice | None, path: Path) -> np.ndarray:
    if snps is None:
        return np.arange(len(bim_df))
    if isinstance(snps, slice):
        return np.arange(len(bim_df))[snps]
    wanted = pick_ids(bim_df.index, snps, "SNP", path=path)
    return bim_df.index.get_indexer(wanted)


def read_plink(
    prefix: str | Path,
    *,
    snps: Sequence[str] | slice | None = None,
    individuals: Sequence[str] | None = None,
) -> PlinkGenotypes:
    """Read PLINK 1 genotypes (all, or a subset of SNPs and individuals) as dosages.

    Parameters
    ----------
    prefix
        File set prefix (or the path of the ``.bed``); ``.gz`` copies are accepted.
    snps
        SNP IDs or a positional slice (e.g. ``slice(0, 10000)``) to read; only those bytes
        are decoded, so memory stays bounded. ``None`` reads all.
    individuals
        Individual IDs (IID) to keep; ``None`` keeps all.

    Returns
    -------
    PlinkGenotypes
        ``(genotype_df, snp_info_df, fam_df)``: the paper's ``y`` (SNPs x individuals,
        A1-allele counts, NaN missing), SNP positions and the ``.fam`` table.

    Raises
    ------
    InputError
        Malformed ``.bim``/``.fam``, a ``.bed`` whose size disagrees with them, corrupt
        gzip, unknown requested IDs.
    """
    bed, bim, fam = plink_files(prefix)
    bim_df = read_bim(bim)
    fam_df = read_fam(fam)
    rows = _snp_positions(bim_df, snps, bed)
    cols = (
        np.arange(len(fam_df))
        if individuals is None
        else fam_df.index.get_indexer(pick_ids(fam_df.index, individuals, "individual", path=fam))
    )
    with _plain_bed(bed) as plain:
        _check_bed(plain, bed, len(bim_df), len(fam_df))
        with reader_errors(bed, what="PLINK .bed file"), _open_bed(plain, bim_df, fam_df) as reader:
            values = reader.read(index=np.s_[cols, rows], dtype="float64", order="C")
    genotype_df = pd.DataFrame(values.T, index=bim_df.index[rows], columns=fam_df.index[cols])
    genotype_df.index.name = "snp"
    genotype_df.columns.name = "individual"
    return PlinkGenotypes(genotype_df, bim_df.iloc[rows], fam_df.iloc[cols])


def iter_plink_blocks(
    prefix: str | Path,
    *,
    block_size: int = 10_000,
    individuals: Sequence[str] | None = None,
    chrom: str | None = None,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Stream PLINK genotypes in blocks of consecutive SNPs (for chunked association tests).

    Parameters
    ----------
    prefix
        File set prefix; ``.gz`` copies are accepted (decompressed once to a temporary file).
    block_size
        SNPs per block; memory is about ``8 * block_size * n_individuals`` bytes.
    individuals
        Individual IDs to keep (in this order); ``None`` keeps all.
    chrom
        Only SNPs on this chromosome (any naming style).

    Yields
    ------
    tuple of pandas.DataFrame
        ``(genotype_df, snp_info_df)`` for each block: SNPs x individuals dosages (A1 counts,
        NaN missing) and their positions.
    """
    if block_size < 1:
        raise InputError(f"block_size must be positive, got {block_size}")
    bed, bim, fam = plink_files(prefix)
    bim_df = read_bim(bim)
    fam_df = read_fam(fam)
    positions = np.arange(len(bim_df))
    if chrom is not None:
        positions = positions[(bim_df["chrom"] == harmonize_chrom([chrom])[0]).to_numpy()]
    cols = (
        np.arange(len(fam_df))
        if individuals is None
        else fam_df.index.get_indexer(pick_ids(fam_df.index, individuals, "individual", path=fam))
    )
    with _plain_bed(bed) as plain:
        _check_bed(plain, bed, len(bim_df), len(fam_df))
        with _open_bed(plain, bim_df, fam_df) as reader:
            for start in range(0, len(positions), block_size):
                rows = positions[start : start + block_size]
                with reader_errors(bed, what="PLINK .bed file"):
                    values = reader.read(index=np.s_[cols, rows], dtype="float64", order="C")
                block = pd.DataFrame(values.T, index=bim_df.index[rows], columns=fam_df.index[cols])
                block.index.name = "snp"
                block.columns.name = "individual"
                yield block, bim_df.iloc[rows]


def _sex_codes(values: pd.Series | None, n: int) -> list[int]:
    if values is None:
        return [0] * n
    codes = []
    for value in values:
        text = str(value).strip().lower()
        if text in {"1", "1.0", "m", "male"}:
            codes.append(1)
        elif text in {"2", "2.0", "f", "female"}:
            codes.append(2)
        else:
            codes.append(0)
    return codes


def write_plink(
    genotype_df: pd.DataFrame,
    prefix: str | Path,
    *,
    snp_info_df: pd.DataFrame | None = None,
    individual_info_df: pd.DataFrame | None = None,
) -> None:
    """Write SNPs x individuals hard calls as a PLINK 1 file set (atomically, all three files).

    Parameters
    ----------
    genotype_df
        SNPs x individuals dosages in {0, 1, 2} or NaN (missing). The dosage counts the
        ``alt`` allele, which is written as A1 (``.bim`` column 5).
    prefix
        Output prefix: ``<prefix>.bed``, ``.bim`` and ``.fam`` are written.
    snp_info_df
        Indexed by SNP ID with ``chrom`` and ``pos`` (optional ``alt``, ``ref``, ``cm``);
        chromosome ``0``, position 0 and alleles ``0`` are written when it is missing.
    individual_info_df
        Indexed by individual ID; a ``sex`` column (1/2, ``male``/``female``) fills the ``.fam``.

    Raises
    ------
    InputError
        Fractional dosages (PLINK 1 holds hard calls only; use :func:`write_dosage_tsv`),
        values outside {0, 1, 2}, duplicate IDs.
    """
    try:
        from bed_reader import to_bed
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("writing PLINK files needs bed-reader: pip install bed-reader") from exc
    check_unique(genotype_df.index, "SNP")
    check_unique(genotype_df.columns, "individual")
    values = genotype_df.to_numpy(dtype=np.float64)
    ok = np.isnan(values) | np.isin(values, (0.0, 1.0, 2.0))
    if not ok.all():
        rows = np.unique(np.nonzero(~ok)[0])
        raise InputError(
            "PLINK 1 stores hard calls 0/1/2 only; fractional or out-of-range dosages in SNPs",
            ids=genotype_df.index[rows],
        )
    snps = genotype_df.index.astype(str)
    n_snps = len(snps)
    info = (
        snp_info_df.reindex(genotype_df.index)
        if snp_info_df is not None and len(snp_info_df.columns)
        else pd.DataFrame(index=genotype_df.index)
    )

    def column(name: str, default: object) -> list:
        if name in info.columns:
            return [default if pd.isna(v) else v for v in info[name]]
        return [default] * n_snps

    chrom = [str(c).removeprefix("chr") if str(c) != "0" else "0" for c in column("chrom", "0")]
    chrom = [c if c != "M" else "MT" for c in chrom]
    individuals = genotype_df.columns.astype(str)
    sex = _sex_codes(
        None
        if individual_info_df is None or "sex" not in individual_info_df.columns
        else individual_info_df["sex"].reindex(genotype_df.columns),
        len(individuals),
    )
    properties = {
        "fid": list(individuals),
        "iid": list(individuals),
        "father": ["0"] * len(individuals),
        "mother": ["0"] * len(individuals),
        "sex": sex,
        "pheno": ["-9"] * len(individuals),
        "chromosome": chrom,
        "sid": list(snps),
        "cm_position": [float(v) for v in column("cm", 0.0)],
        "bp_position": [int(v) for v in column("pos", 0)],
        "allele_1": [str(v) for v in column("alt", "0")],
        "allele_2": [str(v) for v in column("ref", "0")],
    }
    base = Path(str(prefix).removesuffix(".bed"))
    base.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_path(f"{base}.bed") as bed_tmp,
        atomic_path(f"{base}.bim") as bim_tmp,
        atomic_path(f"{base}.fam") as fam_tmp,
    ):
        to_bed(
            bed_tmp,
            np.ascontiguousarray(values.T),
            properties=properties,
            count_A1=True,
            fam_filepath=fam_tmp,
            bim_filepath=bim_tmp,
            num_threads=None,  # bed-reader follows MKL_NUM_THREADS, which ``tbeqtl --threads`` sets
        )


def _decompress_bed(bed: Path) -> tempfile.TemporaryDirectory:
    """Gunzip ``bed`` into a new temporary folder (as ``genotypes.bed``) and return the folder."""
    tmp = tempfile.TemporaryDirectory(prefix="tbeqtl-bed-")
    try:
        with (
            reader_errors(bed, what="PLINK .bed.gz file"),
            gzip.open(bed, "rb") as src,
            open(Path(tmp.name) / "genotypes.bed", "wb") as dst,
        ):
            shutil.copyfileobj(src, dst, length=1 << 20)
    except BaseException:
        tmp.cleanup()
        raise
    return tmp


class PlinkSource(StreamedSource):
    """A PLINK 1 file set as a :class:`~tbeqtl.io.genotypes.GenotypeSource` (streamed by chromosome).

    Parameters
    ----------
    prefix
        Prefix, or the path of the ``.bed``, ``.bim`` or ``.fam`` (``.gz`` copies accepted).

    Notes
    -----
    The dosage counts A1 (``.bim`` column 5, reported as ``alt``; A2 is ``ref``), as
    :func:`read_plink` does. ``variant_df`` holds ``chrom``, ``pos``, ``ref``, ``alt``.
    """

    def __init__(self, prefix: str | Path):
        bed, bim, fam = plink_files(prefix)
        bim_df = read_bim(bim)
        fam_df = read_fam(fam)
        variant_df = bim_df[["chrom", "pos", "ref", "alt"]].rename_axis("variant_id")
        self._set_index(fam_df.index, variant_df, path=bed)
        self._bed = bed
        self._tmp = None
        plain = bed
        if is_gzip(bed):
            self._tmp = _decompress_bed(bed)
            weakref.finalize(self, self._tmp.cleanup)
            plain = Path(self._tmp.name) / "genotypes.bed"
        _check_bed(plain, bed, len(bim_df), len(fam_df))
        with reader_errors(bed, what="PLINK .bed file"):
            self._reader = _open_bed(plain, bim_df, fam_df)

    def close(self) -> None:
        """Close the ``.bed`` and remove a decompressed copy."""
        if getattr(self, "_reader", None) is not None:
            self._reader.__exit__(None, None, None)
            self._reader = None
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()
            self._tmp = None

    def read_chrom(
        self, chrom: str, *, samples: Sequence[str], start: int = 0, stop: int | None = None
    ) -> np.ndarray:
        """A1 dosages of a chromosome's variants ``start:stop`` (float32, NaN missing).

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
        if self._reader is None:
            raise InputError("PLINK 1 source is closed", path=str(self._bed))
        rows = self._range_rows(chrom, start, stop)
        plan = self._sample_plan(samples, what=f"PLINK .fam of {self._bed.name}")
        if len(rows) == 0 or plan.size == 0:
            return np.empty((len(rows), plan.size), dtype=np.float32)
        snps = np.s_[int(rows[0]) : int(rows[-1]) + 1] if contiguous(rows) else rows
        cols = plan.columns if plan.order is None else plan.columns[plan.order]
        with self._lock, reader_errors(self._bed, what="PLINK .bed file"):
            values = self._reader.read(index=np.s_[cols, snps], dtype="float32", order="F")
        return values.T
