"""PLINK 2 genotypes (``.pgen`` / ``.pvar`` / ``.psam``) through pgenlib, the reader tensorQTL uses.

Allele coding: the dosage is the number of **ALT** alleles (``.pvar`` column ``ALT``; pgenlib's
``allele_idx=1``), missing calls are ``NaN`` (pgenlib's -9). With ``dosage_field="DS"`` the
dosage track is read (``read_dosages_range``; a file without one gives its hard calls).

``.pvar``: ``##`` lines are skipped; the header ``#CHROM POS ID REF ALT [...]`` names the
columns (a headerless ``.pvar`` has the ``.bim`` order). Variants whose ID is ``.`` are named
``chrom_pos_ref_alt``. Multi-allelic variants (a comma in ``ALT``) are skipped with a logged
count, as VCF records are (:mod:`tbeqtl.io.vcf`). ``.psam``: ``#IID`` or ``#FID IID`` header (a
headerless ``.psam`` has the ``.fam`` order); individuals are identified by IID.

:class:`PgenSource` reads one chromosome (or a variant range of one) at a time: blocks of at
most 2 MB of int8 codes are decoded into the float32 output, so a read costs the float32
array and a few MB, never a float64 copy. Only the requested individuals are decoded
(pgenlib's ``sample_subset``), then put in the requested order.

Writing: :class:`PgenWriter` appends hard calls one block of variants at a time (optional
``.pvar`` INFO and ``.psam`` SEX columns); :func:`write_pgen` is one block of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, MissingDependencyError
from ._common import (
    StreamedWriter,
    check_file,
    check_unique,
    count_meta_lines,
    harmonize_chrom_fast,
    open_output,
    read_delimited,
    reader_errors,
    writer_block,
)
from .genotypes import (
    SamplePlan,
    StreamedSource,
    _standard_variant_df,
    contiguous,
    decode_hardcalls,
)

__all__ = ["PgenSource", "PgenWriter", "pgen_files", "read_psam", "read_pvar", "write_pgen"]

logger = logging.getLogger(__name__)

#: Bytes of int8 codes decoded per block.
BLOCK_BYTES = 1 << 21

_PVAR_BIM6 = ["#CHROM", "ID", "CM", "POS", "ALT", "REF"]
_PVAR_BIM5 = ["#CHROM", "ID", "POS", "ALT", "REF"]


def _pgenlib():
    try:
        import pgenlib
    except ImportError as exc:  # pragma: no cover - pgenlib is a declared dependency
        raise MissingDependencyError("reading PLINK 2 files needs pgenlib: pip install pgenlib") from exc
    return pgenlib


def pgen_files(path: str | Path) -> tuple[Path, Path, Path]:
    """Resolve the ``.pgen``, ``.pvar`` and ``.psam`` of a PLINK 2 prefix (or of one of its files).

    Parameters
    ----------
    path
        Prefix, or the path of any of the three files.

    Returns
    -------
    tuple of pathlib.Path
        ``(pgen, pvar, psam)``.

    Raises
    ------
    InputError
        A file of the set is missing (named).
    """
    text = str(path)
    for suffix in (".pgen", ".pvar", ".psam"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    out = []
    for suffix in (".pgen", ".pvar", ".psam"):
        candidate = Path(text + suffix)
        if not candidate.is_file():
            raise InputError(f"PLINK 2 file set lacks its {suffix} file", path=str(candidate))
        out.append(candidate)
    return out[0], out[1], out[2]


def read_pvar(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a ``.pvar`` file.

    Parameters
    ----------
    path
        The ``.pvar`` file (plain text).

    Returns
    -------
    tuple
        ``(variant_df, allele_counts)``: every variant in file order, indexed by ``variant_id``
        with ``chrom`` (harmonised, ``chr1`` style), ``pos`` (int64), ``ref``, ``alt``; and the number of
        alleles of each (``max(2, 1 + #ALT)``, what pgenlib needs for multi-allelic files).

    Raises
    ------
    InputError
        Missing header columns, non-integer positions (lines named), missing fields.
    """
    path = check_file(path, what="PLINK 2 .pvar file")
    skip = count_meta_lines(path)
    with reader_errors(path, what="PLINK 2 .pvar file"):
        with open(path, encoding="utf-8") as handle:
            for _ in range(skip):
                handle.readline()
            head = handle.readline().rstrip("\r\n")
    if head.startswith("#CHROM"):
        header = head.split("\t")
        lacking = [c for c in ("#CHROM", "POS", "ID", "REF", "ALT") if c not in header]
        if lacking:
            raise InputError(f"PLINK 2 .pvar header lacks columns {lacking}", path=str(path))
        fast = _read_pvar_arrow(path, skip)
        if fast is not None:
            return fast
        df = read_delimited(
            path,
            what="PLINK 2 .pvar file",
            sep="\t",
            skiprows=skip,
            header=0,
            dtype=str,
            usecols=["#CHROM", "POS", "ID", "REF", "ALT"],
            keep_default_na=False,
            na_filter=False,
        )
    else:
        n = len(head.split())
        if n not in (5, 6):
            raise InputError(
                f"PLINK 2 .pvar without a #CHROM header must have the .bim's 5 or 6 columns, found {n}",
                path=str(path),
            )
        df = read_delimited(
            path,
            what="PLINK 2 .pvar file",
            sep=r"\s+",
            skiprows=skip,
            header=None,
            dtype=str,
            names=_PVAR_BIM6 if n == 6 else _PVAR_BIM5,
            keep_default_na=False,
            na_filter=False,
        )
    empty = (df[["#CHROM", "POS", "ID", "REF", "ALT"]] == "").any(axis=1).to_numpy()
    if empty.any():
        raise InputError(
            "PLINK 2 .pvar has missing fields in data lines", path=str(path), ids=np.flatnonzero(empty) + 1
        )
    pos = pd.to_numeric(df["POS"], errors="coerce")
    bad = (pos.isna() | (pos != pos.round())).to_numpy()
    if bad.any():
        raise InputError(
            "PLINK 2 .pvar has non-integer positions in data lines",
            path=str(path),
            ids=np.flatnonzero(bad) + 1,
        )
    chrom = pd.Series(harmonize_chrom_fast(df["#CHROM"]), index=df.index)
    ids = df["ID"].to_numpy(dtype=object)
    unnamed = ids == "."
    if unnamed.any():
        built = chrom + "_" + df["POS"] + "_" + df["REF"] + "_" + df["ALT"]
        ids[unnamed] = built.to_numpy()[unnamed]
    n_alt = df["ALT"].str.count(",").to_numpy() + 1
    variant_df = pd.DataFrame(
        {
            "chrom": chrom.to_numpy(),
            "pos": pos.astype(np.int64).to_numpy(),
            "ref": df["REF"].to_numpy(),
            "alt": df["ALT"].to_numpy(),
        },
        index=pd.Index(ids, name="variant_id"),
    )
    return variant_df, np.maximum(2, 1 + n_alt).astype(np.uintp)


_PVAR_COLUMNS = ["#CHROM", "POS", "ID", "REF", "ALT"]


def _read_pvar_arrow(path: Path, skip: int) -> tuple[pd.DataFrame, np.ndarray] | None:
    """:func:`read_pvar` of a ``.pvar`` with a ``#CHROM`` header through pyarrow's multi-threaded CSV reader.

    Columns are parsed as strings, then checked and converted column-wise (no per-row Python).
    Returns None when a position is not a plain integer, so that the pandas path names the lines.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    with reader_errors(path, what="PLINK 2 .pvar file"):
        table = csv.read_csv(
            path,
            read_options=csv.ReadOptions(skip_rows=skip, block_size=1 << 24),
            parse_options=csv.ParseOptions(delimiter="\t", quote_char=False, double_quote=False),
            convert_options=csv.ConvertOptions(
                column_types=dict.fromkeys(_PVAR_COLUMNS, pa.string()),
                include_columns=_PVAR_COLUMNS,
                strings_can_be_null=False,
            ),
        )
    cols = {c: table[c].combine_chunks() for c in _PVAR_COLUMNS}
    empty = np.zeros(table.num_rows, dtype=bool)
    for col in cols.values():
        empty |= pc.equal(pc.utf8_length(col), 0).to_numpy(zero_copy_only=False)
    if empty.any():
        raise InputError(
            "PLINK 2 .pvar has missing fields in data lines", path=str(path), ids=np.flatnonzero(empty) + 1
        )
    try:
        pos = pc.cast(cols["POS"], pa.int64()).to_numpy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    encoded = cols["#CHROM"].dictionary_encode()
    names = harmonize_chrom_fast(encoded.dictionary.to_pylist())
    chrom = np.asarray(names, dtype=object)[encoded.indices.to_numpy(zero_copy_only=False)]
    ids = cols["ID"].to_numpy(zero_copy_only=False)
    ref, alt = cols["REF"].to_numpy(zero_copy_only=False), cols["ALT"].to_numpy(zero_copy_only=False)
    unnamed = np.flatnonzero(ids == ".")
    if unnamed.size:
        ids = ids.copy()
        pos_text = cols["POS"].take(pa.array(unnamed)).to_pylist()
        ids[unnamed] = [f"{chrom[i]}_{p}_{ref[i]}_{alt[i]}" for i, p in zip(unnamed, pos_text, strict=True)]
    n_alt = pc.count_substring(cols["ALT"], ",").to_numpy(zero_copy_only=False) + 1
    variant_df = pd.DataFrame(
        {"chrom": chrom, "pos": pos, "ref": ref, "alt": alt}, index=pd.Index(ids, name="variant_id")
    )
    return variant_df, np.maximum(2, 1 + n_alt).astype(np.uintp)


def read_psam(path: str | Path) -> pd.Index:
    """Read the individual IDs (IID) of a ``.psam`` file.

    Parameters
    ----------
    path
        The ``.psam`` (``#IID`` or ``#FID IID`` header; headerless: ``.fam`` columns).

    Returns
    -------
    pandas.Index
        IIDs in file order (index name ``individual``).

    Raises
    ------
    InputError
        No IID column, duplicate IIDs (named).
    """
    path = check_file(path, what="PLINK 2 .psam file")
    skip = count_meta_lines(path)
    with reader_errors(path, what="PLINK 2 .psam file"), open(path, encoding="utf-8") as handle:
        for _ in range(skip):
            handle.readline()
        head = handle.readline().rstrip("\r\n")
    if head.startswith("#"):
        header = head.split()
        if "IID" not in header and "#IID" not in header:
            raise InputError("PLINK 2 .psam header has no IID column (#IID or #FID IID)", path=str(path))
        column = header.index("#IID") if "#IID" in header else header.index("IID")
        df = read_delimited(
            path,
            what="PLINK 2 .psam file",
            sep=r"\s+",
            skiprows=skip + 1,
            header=None,
            dtype=str,
            keep_default_na=False,
        )
    else:
        column = 1
        df = read_delimited(
            path,
            what="PLINK 2 .psam file",
            sep=r"\s+",
            skiprows=skip,
            header=None,
            dtype=str,
            keep_default_na=False,
        )
    if df.shape[1] <= column:
        raise InputError("PLINK 2 .psam has fewer columns than its header", path=str(path))
    iids = pd.Index(df.iloc[:, column].to_numpy(dtype=object), name="individual")
    if iids.has_duplicates:
        raise InputError(
            "duplicate individual IDs (IID)", path=str(path), ids=iids[iids.duplicated()].unique()
        )
    return iids


class PgenSource(StreamedSource):
    """A PLINK 2 file set as a :class:`~tbeqtl.io.genotypes.GenotypeSource` (streamed by chromosome).

    Parameters
    ----------
    path
        Prefix, or the path of the ``.pgen``, ``.pvar`` or ``.psam``.
    dosage_field
        ``"GT"``: hard calls (``read_range``, int8); ``"DS"``: the dosage track
        (``read_dosages_range``, float32).

    Raises
    ------
    InputError
        Missing files, malformed ``.pvar``/``.psam``, a ``.pgen`` whose sample or variant count
        disagrees with them, duplicate variant or individual IDs.
    """

    def __init__(self, path: str | Path, *, dosage_field: str = "GT"):
        if dosage_field not in {"GT", "DS"}:
            raise InputError(f"dosage_field must be 'GT' or 'DS', not {dosage_field!r}")
        self.dosage_field = dosage_field
        pgen, pvar, psam = pgen_files(path)
        self._pgen = pgen
        variant_df, allele_counts = read_pvar(pvar)
        samples = read_psam(psam)
        multi = allele_counts > 2
        self._file_rows = np.flatnonzero(~multi)
        if multi.any():
            logger.info("skipped %d multi-allelic variants in %s", int(multi.sum()), pvar)
        offsets = None
        if multi.any():
            offsets = np.zeros(len(allele_counts) + 1, dtype=np.uintp)
            np.cumsum(allele_counts, out=offsets[1:])
        self._set_index(samples, variant_df.iloc[self._file_rows], path=pgen)
        with reader_errors(pgen, what="PLINK 2 .pgen file"):
            try:
                self._reader = _pgenlib().PgenReader(
                    str(pgen).encode(),
                    raw_sample_ct=len(samples),
                    variant_ct=len(allele_counts),
                    allele_idx_offsets=offsets,
                )
            except RuntimeError as exc:
                raise InputError(
                    f"PLINK 2 .pgen does not match its .pvar ({len(allele_counts)} variants) and .psam "
                    f"({len(samples)} individuals): {exc}",
                    path=str(pgen),
                ) from None
        self._subset: tuple[int, ...] | None = None

    def close(self) -> None:
        """Close the ``.pgen``."""
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
            self._reader = None

    def _use_columns(self, plan: SamplePlan) -> None:
        key = None if plan.everyone else tuple(plan.columns.tolist())
        if key != self._subset:
            self._reader.change_sample_subset(None if key is None else plan.columns.astype(np.uint32))
            self._subset = key

    def read_chrom(
        self, chrom: str, *, samples: Sequence[str], start: int = 0, stop: int | None = None
    ) -> np.ndarray:
        """ALT dosages of a chromosome's variants ``start:stop`` (float32, NaN missing).

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
            raise InputError("PLINK 2 source is closed", path=str(self._pgen))
        rows = self._file_rows[self._range_rows(chrom, start, stop)]
        plan = self._sample_plan(samples, what=f"PLINK 2 .psam of {self._pgen.name}")
        out = np.empty((len(rows), plan.size), dtype=np.float32)
        if out.size == 0:
            return out
        block = max(1, BLOCK_BYTES // len(plan.columns))
        whole = contiguous(rows)
        with self._lock, reader_errors(self._pgen, what="PLINK 2 .pgen file"):
            self._use_columns(plan)
            for lo in range(0, len(rows), block):
                part = rows[lo : lo + block]
                target = out[lo : lo + len(part)]
                if self.dosage_field == "GT":
                    self._read_hardcalls(part, whole=whole, plan=plan, target=target)
                else:
                    self._read_dosages(part, whole=whole, plan=plan, target=target)
        return out

    def read_chrom_codes(
        self, chrom: str, *, samples: Sequence[str], start: int = 0, stop: int | None = None
    ) -> np.ndarray | None:
        """Hard calls of a chromosome's variants ``start:stop`` as int8 ALT counts (-9 missing).

        pgenlib decodes straight into the int8 output (no float copy). Returns None with
        ``dosage_field="DS"`` (read :meth:`read_chrom` then).

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
        numpy.ndarray or None
            int8, variants x ``samples``.
        """
        if self.dosage_field != "GT":
            return None
        if self._reader is None:
            raise InputError("PLINK 2 source is closed", path=str(self._pgen))
        rows = self._file_rows[self._range_rows(chrom, start, stop)]
        plan = self._sample_plan(samples, what=f"PLINK 2 .psam of {self._pgen.name}")
        codes = np.empty((len(rows), len(plan.columns)), dtype=np.int8)
        if codes.size:
            with self._lock, reader_errors(self._pgen, what="PLINK 2 .pgen file"):
                self._use_columns(plan)
                if contiguous(rows):
                    self._reader.read_range(int(rows[0]), int(rows[-1]) + 1, codes)
                else:
                    self._reader.read_list(np.ascontiguousarray(rows, dtype=np.uint32), codes)
        return np.ascontiguousarray(plan.arrange(codes))

    def _read_hardcalls(self, part: np.ndarray, *, whole: bool, plan: SamplePlan, target: np.ndarray) -> None:
        codes = np.empty((len(part), len(plan.columns)), dtype=np.int8)
        if whole:
            self._reader.read_range(int(part[0]), int(part[-1]) + 1, codes)
        else:
            self._reader.read_list(np.ascontiguousarray(part, dtype=np.uint32), codes)
        decode_hardcalls(plan.arrange(codes), target)

    def _read_dosages(self, part: np.ndarray, *, whole: bool, plan: SamplePlan, target: np.ndarray) -> None:
        values = np.empty((len(part), len(plan.columns)), dtype=np.float32)
        if whole:
            self._reader.read_dosages_range(int(part[0]), int(part[-1]) + 1, values)
        else:
            self._reader.read_dosages_list(np.ascontiguousarray(part, dtype=np.uint32), values)
        target[...] = plan.arrange(values)
        target[target < 0] = np.nan


class PgenWriter(StreamedWriter):
    """A PLINK 2 file set (``.pgen``, ``.pvar``, ``.psam``) written variant block by variant block.

    Hard calls are appended with pgenlib's ``append_biallelic_batch`` (REF is the reference
    allele: ``nonref_flags=False``); ``.pvar`` lines follow each block. The three files are written
    to temporary siblings and renamed by :meth:`close` (mode as a new file gets under the user's
    umask); on an exception inside ``with`` (or :meth:`abort`) nothing is left at the prefix.
    Any split of the variants into blocks gives the same bytes.

    Parameters
    ----------
    prefix
        Output prefix (a trailing ``.pgen`` is dropped).
    samples
        Individual IDs (IID), the order of the columns.
    n_variants
        Variants that will be written (the ``.pgen`` header needs the count up front).
    sex
        PLINK sex code (1 male, 2 female) per individual, in ``samples`` order: adds a ``SEX``
        column to the ``.psam``.
    info_column
        Write ``QUAL FILTER INFO`` columns in the ``.pvar`` (``.``, ``PASS``, the ``info`` of
        :meth:`write`).

    Raises
    ------
    InputError
        No or duplicate individuals, a ``sex`` of another length.
    """

    def __init__(
        self,
        prefix: str | Path,
        samples: Sequence[str],
        *,
        n_variants: int,
        sex: Sequence[int] | None = None,
        info_column: bool = False,
    ):
        self._unit = "variants"
        self.prefix = Path(str(prefix).removesuffix(".pgen"))
        self.samples = pd.Index([str(s) for s in samples])
        self.n_variants = self.n_declared = int(n_variants)
        self.path = Path(f"{self.prefix}.pgen")
        self.info_column = info_column
        self.n_written = 0
        if len(self.samples) == 0:
            raise InputError("a PLINK 2 file set needs at least one individual", path=str(self.prefix))
        check_unique(self.samples, "individual")
        if sex is not None and len(sex) != len(self.samples):
            raise InputError(f"sex has {len(sex)} entries for {len(self.samples)} individuals")
        self._sex = sex
        self._writer = None
        self._start()

    def _open(self) -> None:
        pgen_tmp = self._staged.stage(self.path)
        self._pvar = self._staged.enter_context(open_output(f"{self.prefix}.pvar"))
        self._pvar.write(
            "#CHROM\tPOS\tID\tREF\tALT" + ("\tQUAL\tFILTER\tINFO" if self.info_column else "") + "\n"
        )
        psam = self._staged.enter_context(open_output(f"{self.prefix}.psam"))
        psam.write(_psam_text(self.samples, self._sex))
        self._writer = _pgenlib().PgenWriter(
            str(pgen_tmp).encode(), len(self.samples), variant_ct=self.n_variants, nonref_flags=False
        )

    def write(
        self, values: np.ndarray | pd.DataFrame, variant_df: pd.DataFrame, info: Sequence[str] | None = None
    ) -> None:
        """Append a block of variants.

        Parameters
        ----------
        values
            Variants x individuals ALT counts in {0, 1, 2}, missing as NaN or -9 (int8 codes as
            tensorQTL keeps them are taken as they are). A DataFrame must have ``variant_df``'s
            index and the writer's individuals.
        variant_df
            Indexed by variant ID with ``chrom``, ``pos``, ``ref``, ``alt``.
        info
            The ``INFO`` field of each variant (``info_column=True`` only; default ``.``).

        Raises
        ------
        InputError
            Fractional or out-of-range values (variants named), rows or columns that do not
            match, more variants than ``n_variants``.
        """
        lacking = [c for c in ("chrom", "pos", "ref", "alt") if c not in variant_df.columns]
        if lacking:
            raise InputError(f"variant_df for a .pvar lacks columns {lacking}")
        ids = variant_df.index
        matrix = writer_block(values, columns=self.samples, rows=ids, path=self.path)
        if self.n_written + len(ids) > self.n_variants:
            raise self._count_error(self.n_written + len(ids))
        if info is not None and not self.info_column:
            raise InputError("info given to a PgenWriter without info_column", path=f"{self.prefix}.pvar")
        if self.info_column:
            info = ["."] * len(ids) if info is None else info
        lines = _pvar_lines(variant_df, info, n=len(ids))
        self._writer.append_biallelic_batch(_hardcall_codes(matrix, ids))
        self._pvar.write(lines)
        self.n_written += len(ids)

    def _finish(self) -> None:
        self._writer.close()
        self._writer = None
        logger.info("wrote %d variants x %d individuals to %s", self.n_written, len(self.samples), self.path)

    def _release(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()  # pgenlib refuses when fewer variants than declared; the temp file goes anyway


def _psam_text(samples: pd.Index, sex: Sequence[int] | None) -> str:
    if sex is None:
        return "#IID\n" + "".join(f"{iid}\n" for iid in samples)
    return "#IID\tSEX\n" + "".join(f"{iid}\t{s}\n" for iid, s in zip(samples, sex, strict=True))


def _pvar_lines(variant_df: pd.DataFrame, info: Sequence[str] | None, *, n: int) -> str:
    columns = [variant_df["chrom"], variant_df["pos"], variant_df.index, variant_df["ref"], variant_df["alt"]]
    if info is None:
        return "".join(f"{c}\t{q}\t{i}\t{r}\t{a}\n" for c, q, i, r, a in zip(*columns, strict=True))
    if len(info) != n:
        raise InputError(f"INFO has {len(info)} entries for {n} variants")
    return "".join(
        f"{c}\t{q}\t{i}\t{r}\t{a}\t.\tPASS\t{f}\n" for c, q, i, r, a, f in zip(*columns, info, strict=True)
    )


def write_pgen(genotype_df: pd.DataFrame, variant_df: pd.DataFrame, prefix: str | Path) -> None:
    """Write variants x individuals hard calls as a PLINK 2 file set (``.pgen``, ``.pvar``, ``.psam``).

    One :class:`PgenWriter` block.

    Parameters
    ----------
    genotype_df
        Variants x individuals ALT counts in {0, 1, 2}; missing as NaN or tensorQTL's -9.
    variant_df
        Indexed by variant ID with ``chrom``, ``pos``, ``ref``, ``alt`` for every variant of
        ``genotype_df`` (``chr`` accepted for ``chrom``).
    prefix
        Output prefix; the three files are written atomically (REF is the reference allele:
        ``nonref_flags=False``).

    Raises
    ------
    InputError
        Fractional or out-of-range values (variants named), variants without positions or
        alleles, duplicate IDs.
    """
    info = _standard_variant_df(variant_df)
    lacking = [c for c in ("ref", "alt") if c not in info.columns]
    if lacking:
        raise InputError(f"variant_df for a .pvar lacks columns {lacking}")
    variants = pd.Index(genotype_df.index.astype(str))
    individuals = pd.Index(genotype_df.columns.astype(str))
    for ids, what in ((variants, "variant"), (individuals, "individual")):
        if ids.has_duplicates:
            raise InputError(f"duplicate {what} IDs", ids=ids[ids.duplicated()].unique())
    absent = variants.difference(info.index, sort=False)
    if len(absent):
        raise InputError("variants of genotype_df absent from variant_df", ids=absent)
    if genotype_df.shape[0] == 0 or genotype_df.shape[1] == 0:
        raise InputError(f"refusing to write an empty PLINK 2 file set ({genotype_df.shape})")
    with PgenWriter(prefix, individuals, n_variants=len(variants)) as writer:
        writer.write(genotype_df.to_numpy(), info.loc[variants])


def _hardcall_codes(values: np.ndarray, ids: pd.Index) -> np.ndarray:
    """Return int8 ALT counts (-9 missing) of hard calls; raise naming the variants with other values."""
    if values.dtype == np.int8:
        ok = ((values >= 0) & (values <= 2)) | (values == -9)
        missing = None
    elif values.dtype.kind in "iuf":
        values = values.astype(np.float64)
        missing = np.isnan(values) | (values == -9)
        ok = missing | np.isin(values, (0.0, 1.0, 2.0))
    else:
        raise InputError("genotype_df has non-numeric values")
    if not ok.all():
        rows = np.unique(np.nonzero(~ok)[0])
        raise InputError(
            "PLINK 2 hard calls must be 0/1/2 (NaN or -9 missing); other values in variants", ids=ids[rows]
        )
    if missing is None:
        return np.ascontiguousarray(values)
    return np.ascontiguousarray(np.where(missing, -9, values).astype(np.int8))
