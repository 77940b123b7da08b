"""VCF / BCF genotypes as ALT-allele dosages from the ``GT`` or ``DS`` field.

Plain-text VCF (``.vcf``, ``.vcf.gz``, bgzip included) is parsed in chunks with pandas, so
memory stays bounded by ``chunk_size`` records plus the kept output; BCF is read through
``pysam`` (installed with pybedtools). Records with several ALT alleles are skipped (logged):
a single dosage is only defined for bi-allelic sites. Variant IDs ``.`` are replaced by
``chrom_pos_ref_alt``.

Dosage coding: ``GT`` ``0/0`` -> 0, ``0/1`` -> 1, ``1/1`` -> 2 (phase ignored, haploid calls
count 0/1), any ``.`` allele -> missing; ``DS`` is the expected ALT count in [0, 2].

:class:`VCFSource` is the streamed :class:`~tbeqtl.io.genotypes.GenotypeSource` of a VCF/BCF.
Opening it scans the file once for the sites (the fixed columns; text files are still tokenised
in full, so this costs about one parse of the file). A chromosome (or a variant range of it) is
then read

- from an indexed file (``.tbi``/``.csi`` beside it, pysam installed) by region: only that
  region's records are decompressed (text VCF lines fetched through tabix and parsed as text;
  BCF records through pysam, one Python call per call, slow for large cohorts);
- from a file without an index by a streamed scan from the top of the file to the last variant
  asked for (records outside the range's positions are dropped before their calls are parsed,
  but every line is still decompressed and split): each ``read_chrom`` call costs up to one pass
  over the file. Index a large VCF
  (``bgzip`` + ``tabix -p vcf``) or convert it to PLINK 2 (``plink2 --vcf ... --make-pgen``).

Memory is the float32 output plus one block of ``chunk_size`` records.

Writing: :class:`VcfWriter` streams a VCF 4.2 (``GT`` or ``GT:DS``; bgzip through pysam for
``.gz``, optional tabix index) one block of records at a time; :func:`write_vcf` is one block of
it. :func:`vcf_text_header` and :func:`iter_vcf_chunks` give the raw header and records of a text
VCF to readers of other fields (``INFO``), :func:`is_bcf_file` tells BCF from text.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..data import harmonize_chrom, validate_genotypes
from ..errors import InputError, MissingDependencyError
from ._common import (
    StreamedWriter,
    check_file,
    check_unique,
    count_meta_lines,
    harmonize_chrom_fast,
    open_text,
    pick_ids,
    reader_errors,
    writer_block,
)
from .genotypes import StreamedSource

__all__ = [
    "FORMAT_LINES",
    "VCFGenotypes",
    "VCFSource",
    "VcfWriter",
    "is_bcf_file",
    "iter_vcf_blocks",
    "iter_vcf_chunks",
    "read_vcf",
    "vcf_contig_lines",
    "vcf_text_header",
    "write_vcf",
]

logger = logging.getLogger(__name__)

FIXED = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
_GT_DOSAGE = {
    "0/0": 0.0,
    "0/1": 1.0,
    "1/0": 1.0,
    "1/1": 2.0,
    "0": 0.0,
    "1": 1.0,
}


class VCFGenotypes(NamedTuple):
    """Genotypes read from a VCF/BCF file.

    Attributes
    ----------
    genotype_df : pandas.DataFrame
        SNPs x individuals ALT dosages (float64, NaN missing): the paper's ``y``.
    snp_info_df : pandas.DataFrame
        Indexed by variant ID: ``chrom`` (``chr`` style), ``pos`` (1-based), ``ref``, ``alt``.
    """

    genotype_df: pd.DataFrame
    snp_info_df: pd.DataFrame


def _parse_region(region: str | None) -> tuple[str, int, float] | None:
    if region is None:
        return None
    match = re.fullmatch(r"([^:]+)(?::([\d,]+)-([\d,]+))?", region.strip())
    if not match:
        raise InputError(f"region must be 'chrom' or 'chrom:start-end', not {region!r}")
    chrom = harmonize_chrom([match.group(1)])[0]
    if match.group(2) is None:
        return chrom, 1, np.inf
    return chrom, int(match.group(2).replace(",", "")), float(match.group(3).replace(",", ""))


def _parse_call(cell: str, k: int, field: str) -> float | None:
    """Dosage of one sample cell (``None`` when it is not a valid bi-allelic value)."""
    parts = cell.split(":")
    value = parts[k] if k < len(parts) else "."
    if field == "GT":
        alleles = re.split(r"[/|]", value)
        if any(a == "." for a in alleles):
            return np.nan
        if len(alleles) > 2 or any(a not in {"0", "1"} for a in alleles):
            return None
        return float(sum(a == "1" for a in alleles))
    if value in {".", ""}:
        return np.nan
    try:
        return float(value)
    except ValueError:
        return None


def _format_field(block: pd.DataFrame, samples: list[str], field: str, path: Path) -> np.ndarray:
    out = np.full((len(block), len(samples)), np.nan)
    ids_all = block["ID"].to_numpy()
    for fmt, rows in block.groupby("FORMAT", sort=False).indices.items():
        keys = str(fmt).split(":")
        if field not in keys:
            raise InputError(
                f"VCF records have no {field} field in FORMAT {fmt!r}", path=str(path), ids=ids_all[rows]
            )
        k = keys.index(field)
        cells = block[samples].to_numpy()[rows].ravel()
        # few distinct cell strings: parse each once (fast for millions of calls)
        codes, uniques = pd.factorize(cells)
        parsed = [_parse_call(str(u), k, field) for u in uniques]
        bad = [i for i, v in enumerate(parsed) if v is None]
        if bad:
            first = int(np.nonzero(codes == bad[0])[0][0])
            row, col = divmod(first, len(samples))
            raise InputError(
                f"VCF {field} value {uniques[bad[0]]!r} is not a bi-allelic dosage (variant "
                f"{ids_all[rows][row]}, sample {samples[col]})",
                path=str(path),
                ids=[ids_all[rows][row]],
            )
        values = np.asarray(parsed, dtype=np.float64)[codes]
        out[rows] = values.reshape(len(rows), len(samples))
    return out


def vcf_text_header(path: str | Path) -> tuple[int, list[str]]:
    """Read and check the header of a text VCF.

    Parameters
    ----------
    path
        ``.vcf`` or ``.vcf.gz`` (gzip or bgzip).

    Returns
    -------
    tuple
        ``(n_meta, header)``: the number of ``##`` lines and the fields of the ``#CHROM`` line
        (the nine fixed columns, then the sample IDs).

    Raises
    ------
    InputError
        A ``#CHROM`` line without the fixed columns, no FORMAT column or samples, duplicate
        sample IDs (named), an unreadable file.
    """
    path = Path(path)
    skip = count_meta_lines(path)
    with reader_errors(path, what="VCF file"), open_text(path) as handle:
        for _ in range(skip):
            handle.readline()
        header = handle.readline().rstrip("\r\n").split("\t")
    if header[:8] != FIXED[:8]:
        raise InputError(
            "VCF header line must start with #CHROM POS ID REF ALT QUAL FILTER INFO", path=str(path)
        )
    if len(header) < 10 or header[8] != "FORMAT":
        raise InputError("VCF file has no FORMAT column and no samples", path=str(path))
    check_unique(header[9:], "sample", path=path)
    return skip, header


def iter_vcf_chunks(
    path: str | Path, *, columns: Sequence[str] | None = None, chunk_size: int = 100_000
) -> Iterator[pd.DataFrame]:
    """Yield the data lines of a text VCF as DataFrames of strings, ``chunk_size`` records at a time.

    Nothing is parsed beyond splitting the fields (no dosages, no ID or chromosome rewriting):
    the raw text of the records, for readers of fields other than the calls (``INFO``...).

    Parameters
    ----------
    path
        ``.vcf`` or ``.vcf.gz`` (gzip or bgzip).
    columns
        Header fields to keep (e.g. ``FIXED[:8]``); ``None`` keeps all.
    chunk_size
        Records per DataFrame.

    Yields
    ------
    pandas.DataFrame
        Columns named by the header; a record with fewer fields than the header has missing
        values (NaN) in the last ones.

    Raises
    ------
    InputError
        A bad header (see :func:`vcf_text_header`), unknown ``columns`` (named), an unreadable file.
    """
    if chunk_size < 1:
        raise InputError(f"chunk_size must be positive, got {chunk_size}")
    skip, header = vcf_text_header(path)
    wanted = header if columns is None else list(columns)
    unknown = [c for c in wanted if c not in header]
    if unknown:
        raise InputError("VCF header has no columns", path=str(path), ids=unknown)
    with reader_errors(path, what="VCF file"), open_text(path) as handle:
        for _ in range(skip + 1):
            handle.readline()
        yield from _chunks(handle, header, wanted, chunk_size)


def _chunks(source, header: list[str], columns: list[str], chunk_size: int) -> Iterator[pd.DataFrame]:
    """Read the data lines of a text VCF as string DataFrames of ``chunk_size`` rows (``columns`` only)."""
    return pd.read_csv(
        source,
        sep="\t",
        header=None,
        names=header,
        dtype=str,
        chunksize=chunk_size,
        quoting=csv.QUOTE_NONE,
        keep_default_na=False,
        na_filter=False,
        usecols=columns,
    )


def _kept_records(
    block: pd.DataFrame, want: tuple[str, int, float] | None, *, last: str, line0: int | None, path: Path
) -> tuple[pd.DataFrame, int]:
    """Harmonise ``#CHROM``, keep the region's bi-allelic records; return them and the multi-allelic count."""
    short = block[last].isna() | block[last].eq("")
    if short.any():
        where = np.nonzero(short.to_numpy())[0][:10]
        raise InputError(
            "VCF data lines have fewer fields than the header",
            path=str(path),
            ids=where + line0 if line0 is not None else block["ID"].to_numpy()[where],
        )
    block = block.assign(**{"#CHROM": harmonize_chrom_fast(block["#CHROM"])})
    if want is not None:
        pos = pd.to_numeric(block["POS"], errors="coerce")
        block = block[(block["#CHROM"] == want[0]) & (pos >= want[1]) & (pos <= want[2])]
    multi = block["ALT"].str.contains(",", regex=False)
    return block[~multi], int(multi.sum())


def _text_blocks(
    path: Path, *, field: str, samples: Sequence[str] | None, region: str | None, chunk_size: int
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    skip, header = vcf_text_header(path)
    keep = list(pick_ids(pd.Index(header[9:]), samples, "sample", path=path))
    want = _parse_region(region)
    n_multi = 0
    line0 = skip + 2
    with reader_errors(path, what="VCF file"):
        for block in iter_vcf_chunks(path, columns=[*FIXED, *keep], chunk_size=chunk_size):
            n_rows = len(block)
            block, multi = _kept_records(
                block, want, last=keep[-1] if keep else "FORMAT", line0=line0, path=path
            )
            line0 += n_rows
            n_multi += multi
            if len(block):
                yield _finish_block(block, keep, field, path)
    if n_multi:
        logger.info("skipped %d multi-allelic VCF records in %s", n_multi, path)


def _tabix_blocks(
    path: Path, *, field: str, samples: Sequence[str] | None, region: str, chunk_size: int
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Yield a region of an indexed text VCF: lines fetched through tabix, parsed as text (no full scan)."""
    import pysam

    _, header = vcf_text_header(path)
    keep = list(pick_ids(pd.Index(header[9:]), samples, "sample", path=path))
    want = _parse_region(region)
    n_multi = 0
    with reader_errors(path, what="VCF file"), pysam.TabixFile(str(path), index=str(_index_of(path))) as tbx:
        contigs = [c for c in tbx.contigs if harmonize_chrom([c])[0] == want[0]]
        stop = None if np.isinf(want[2]) else int(want[2])
        lines = (line for c in contigs for line in tbx.fetch(c, want[1] - 1, stop))
        while batch := list(itertools.islice(lines, chunk_size)):
            text = io.StringIO("\n".join(batch) + "\n")
            for block in _chunks(text, header, [*FIXED, *keep], chunk_size):
                block, multi = _kept_records(
                    block, want, last=keep[-1] if keep else "FORMAT", line0=None, path=path
                )
                n_multi += multi
                if len(block):
                    yield _finish_block(block, keep, field, path)
    if n_multi:
        logger.info("skipped %d multi-allelic VCF records in %s (%s)", n_multi, path, region)


def _finish_block(
    block: pd.DataFrame, keep: list[str], field: str, path: Path
) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = block["ID"].to_numpy().astype(object)
    unnamed = (ids == ".") | (ids == "")
    if unnamed.any():
        ids[unnamed] = (
            block["#CHROM"] + "_" + block["POS"] + "_" + block["REF"] + "_" + block["ALT"]
        ).to_numpy()[unnamed]
    block = block.assign(ID=ids)
    pos = pd.to_numeric(block["POS"], errors="coerce")
    if pos.isna().any():
        raise InputError("VCF records with a non-integer POS", path=str(path), ids=ids[pos.isna().to_numpy()])
    values = _format_field(block, keep, field, path)
    index = pd.Index(ids, name="snp")
    geno = pd.DataFrame(values, index=index, columns=pd.Index(keep, name="individual"))
    info = pd.DataFrame(
        {
            "chrom": block["#CHROM"].to_numpy(),
            "pos": pos.astype(np.int64).to_numpy(),
            "ref": block["REF"].to_numpy(),
            "alt": block["ALT"].to_numpy(),
        },
        index=index,
    )
    return geno, info


def _bcf_blocks(
    path: Path, *, field: str, samples: Sequence[str] | None, region: str | None, chunk_size: int
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    try:
        import pysam
    except ImportError as exc:  # pragma: no cover - pysam comes with pybedtools
        raise MissingDependencyError("reading BCF needs pysam: pip install pysam") from exc
    with reader_errors(path, what="VCF/BCF file"):
        vf = pysam.VariantFile(str(path))
    with vf:
        all_samples = list(vf.header.samples)
        if not all_samples:
            raise InputError("VCF/BCF file has no samples", path=str(path))
        check_unique(all_samples, "sample", path=path)
        keep = list(pick_ids(pd.Index(all_samples), samples, "sample", path=path))
        if field not in vf.header.formats:
            raise InputError(f"VCF/BCF header defines no {field} FORMAT field", path=str(path))
        want = _parse_region(region)
        rows, infos, n_multi = [], [], 0
        records = vf
        if want is not None and _index_of(path) is not None:
            # indexed file: jump to the region instead of scanning every record
            contigs = [c for c in vf.header.contigs if harmonize_chrom([c])[0] == want[0]]
            stop = None if np.isinf(want[2]) else int(want[2])
            records = (rec for c in contigs for rec in vf.fetch(c, want[1] - 1, stop))
        with reader_errors(path, what="VCF/BCF file"):
            for rec in records:
                chrom = harmonize_chrom([rec.chrom])[0]
                if want is not None and not (chrom == want[0] and want[1] <= rec.pos <= want[2]):
                    continue
                if rec.alts is None or len(rec.alts) != 1:
                    n_multi += rec.alts is not None
                    continue
                vid = rec.id or f"{chrom}_{rec.pos}_{rec.ref}_{rec.alts[0]}"
                row = np.full(len(keep), np.nan)
                for j, sample in enumerate(keep):
                    value = rec.samples[sample].get(field)
                    if field == "GT":
                        if value is not None and None not in value and len(value):
                            if any(a not in (0, 1) for a in value):
                                raise InputError(
                                    f"BCF GT {value} is not bi-allelic (sample {sample})",
                                    path=str(path),
                                    ids=[vid],
                                )
                            row[j] = float(sum(value))
                    elif value is not None:
                        row[j] = float(value[0] if isinstance(value, tuple) else value)
                rows.append(row)
                infos.append((vid, chrom, rec.pos, rec.ref, rec.alts[0]))
                if len(rows) == chunk_size:
                    yield _bcf_frames(rows, infos, keep)
                    rows, infos = [], []
        if rows:
            yield _bcf_frames(rows, infos, keep)
        if n_multi:
            logger.info("skipped %d multi-allelic BCF records in %s", n_multi, path)


def _bcf_frames(
    rows: list[np.ndarray], infos: list[tuple], keep: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    index = pd.Index([i[0] for i in infos], name="snp")
    geno = pd.DataFrame(np.vstack(rows), index=index, columns=pd.Index(keep, name="individual"))
    info = pd.DataFrame(
        {
            "chrom": [i[1] for i in infos],
            "pos": np.array([i[2] for i in infos], dtype=np.int64),
            "ref": [i[3] for i in infos],
            "alt": [i[4] for i in infos],
        },
        index=index,
    )
    return geno, info


def iter_vcf_blocks(
    path: str | Path,
    *,
    field: str = "GT",
    samples: Sequence[str] | None = None,
    region: str | None = None,
    chunk_size: int = 10_000,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Stream a VCF/BCF file as blocks of dosages (memory bounded by ``chunk_size``).

    Parameters
    ----------
    path
        ``.vcf``, ``.vcf.gz`` or ``.bcf``.
    field
        ``"GT"`` (hard calls) or ``"DS"`` (imputed dosage).
    samples
        Samples to keep, in this order; ``None`` keeps all.
    region
        ``"chr1"`` or ``"chr1:1000-2000"`` (1-based, inclusive; any chromosome naming). With a
        ``.tbi``/``.csi`` index beside the file the region is fetched through pysam without
        scanning the whole file; otherwise the file is streamed and filtered.
    chunk_size
        Records per block.

    Yields
    ------
    tuple of pandas.DataFrame
        ``(genotype_df, snp_info_df)`` per block (dosages not yet range-checked).
    """
    if field not in {"GT", "DS"}:
        raise InputError(f"field must be 'GT' or 'DS', not {field!r}")
    if chunk_size < 1:
        raise InputError(f"chunk_size must be positive, got {chunk_size}")
    path = check_file(path, what="VCF/BCF file")
    indexed = region is not None and _index_of(path) is not None and _has_pysam()
    if is_bcf_file(path):
        yield from _bcf_blocks(path, field=field, samples=samples, region=region, chunk_size=chunk_size)
    elif indexed:
        yield from _tabix_blocks(path, field=field, samples=samples, region=region, chunk_size=chunk_size)
    else:
        yield from _text_blocks(path, field=field, samples=samples, region=region, chunk_size=chunk_size)


def _index_of(path: Path) -> Path | None:
    for suffix in (".tbi", ".csi"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            return candidate
    return None


def _has_pysam() -> bool:
    try:
        import pysam  # noqa: F401
    except ImportError:  # pragma: no cover
        return False
    return True


def is_bcf_file(path: str | Path) -> bool:
    """Whether a genotype file is a BCF rather than a text VCF.

    Parameters
    ----------
    path
        An existing ``.vcf``, ``.vcf.gz`` or ``.bcf`` file.

    Returns
    -------
    bool
        True for a ``.bcf`` name, or a gzip/BGZF file whose decompressed bytes start with ``BCF``.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(2)
    return path.name.lower().endswith(".bcf") or (head == b"\x1f\x8b" and _is_bcf(path))


def _is_bcf(path: Path) -> bool:
    with reader_errors(path, what="VCF/BCF file"), gzip.open(path, "rb") as handle:
        return handle.read(3) == b"BCF"


def read_vcf(
    path: str | Path,
    *,
    field: str = "GT",
    samples: Sequence[str] | None = None,
    region: str | None = None,
    snps: Sequence[str] | None = None,
    chunk_size: int = 10_000,
) -> VCFGenotypes:
    """Read VCF/BCF genotypes as ALT-allele dosages (the paper's ``y``, SNPs x individuals).

    Parameters
    ----------
    path
        ``.vcf``, ``.vcf.gz`` (gzip or bgzip) or ``.bcf``.
    field
        ``"GT"`` (hard calls -> 0/1/2) or ``"DS"`` (expected ALT count).
    samples
        Samples to keep (in this order); ``None`` keeps all.
    region
        Only records in ``"chrom"`` or ``"chrom:start-end"`` (streamed, no index needed).
    snps
        Only these variant IDs (in this order); unknown IDs raise.
    chunk_size
        Records parsed at a time.

    Returns
    -------
    VCFGenotypes
        ``(genotype_df, snp_info_df)``.

    Raises
    ------
    InputError
        Bad header, missing FORMAT field, non bi-allelic calls, dosages outside [0, 2],
        duplicate variant IDs, no records, corrupt files.
    """
    wanted = None if snps is None else set(map(str, snps))
    genos, infos = [], []
    for geno, info in iter_vcf_blocks(
        path, field=field, samples=samples, region=region, chunk_size=chunk_size
    ):
        if wanted is not None:
            mask = geno.index.isin(wanted)
            geno, info = geno[mask], info[mask]
        genos.append(geno)
        infos.append(info)
    if not genos:
        raise InputError(
            "VCF/BCF file has no bi-allelic records" + (f" in region {region}" if region else ""),
            path=str(path),
        )
    genotype_df = pd.concat(genos)
    snp_info_df = pd.concat(infos)
    check_unique(genotype_df.index, "variant", path=path)
    if snps is not None:
        order = pick_ids(genotype_df.index, snps, "variant", path=path)
        genotype_df, snp_info_df = genotype_df.loc[order], snp_info_df.loc[order]
    genotype_df = validate_genotypes(genotype_df, path=str(path))
    genotype_df.index.name, genotype_df.columns.name = "snp", "individual"
    snp_info_df.index.name = "snp"
    return VCFGenotypes(genotype_df, snp_info_df)


#: ``##FORMAT`` lines of the fields :class:`VcfWriter` writes.
FORMAT_LINES = {
    "GT": '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    "DS": '##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dosage">',
}
_SITE_COLUMNS = ["chrom", "pos", "ref", "alt"]
#: Fixed-width call cells by code (0, 1, 2 ALT alleles; 3 missing), with the tab that follows.
_GT_CELLS = np.array([b"0/0\t", b"0/1\t", b"1/1\t", b"./.\t"], dtype="S4")
_GT_DS_CELLS = np.array([b"0/0:0\t", b"0/1:1\t", b"1/1:2\t", b"./.:.\t"], dtype="S6")


def vcf_contig_lines(contigs: Sequence[str] | Mapping[str, int]) -> list[str]:
    """Return the ``##contig`` header lines of a VCF.

    Parameters
    ----------
    contigs
        Contig names, or names mapped to their lengths (then written as ``length=``).

    Returns
    -------
    list of str
        One ``##contig=<ID=...>`` line per contig, in the given order.
    """
    if isinstance(contigs, Mapping):
        return [f"##contig=<ID={c},length={n}>" for c, n in contigs.items()]
    return [f"##contig=<ID={c}>" for c in contigs]


def _check_sites(variant_df: pd.DataFrame) -> pd.DataFrame:
    """Return ``chrom pos ref alt`` of the variants to write (``pos`` as int64), or raise naming them."""
    lacking = [c for c in _SITE_COLUMNS if c not in variant_df.columns]
    if lacking:
        raise InputError("SNP table for the VCF lacks columns", ids=lacking)
    sites = variant_df[_SITE_COLUMNS]
    if sites.isna().any().any():
        raise InputError("SNPs without position or alleles", ids=sites.index[sites.isna().any(axis=1)])
    return sites.assign(pos=sites["pos"].astype(np.int64))


def _call_codes(values: np.ndarray, ids: pd.Index) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the GT code of every call (0/1/2 ALT alleles, 3 missing) and the dosages if fractional.

    Integer input holds ALT counts with -9 missing; float input dosages in [0, 2] with NaN missing
    (``GT`` is the rounded dosage). The dosages are returned only when some are not 0, 1 or 2.
    """
    if values.dtype.kind in "iu":
        missing = values == -9
        bad = ~missing & ((values < 0) | (values > 2))
        if bad.any():
            raise InputError(
                "VCF hard calls must be 0/1/2 (-9 missing); other values in SNPs",
                ids=ids[np.unique(np.nonzero(bad)[0])],
            )
        return np.where(missing, 3, values).astype(np.int8), None
    if values.dtype.kind != "f":
        raise InputError(f"genotypes for the VCF must be numeric, not {values.dtype}")
    missing = np.isnan(values)
    with np.errstate(invalid="ignore"):
        bad = (values < 0) | (values > 2)
    if bad.any():
        raise InputError("dosages outside [0, 2] in SNPs", ids=ids[np.unique(np.nonzero(bad)[0])])
    filled = np.where(missing, 0.0, values)
    codes = np.where(missing, 3, np.rint(filled)).astype(np.int8)
    return codes, None if np.all(np.isin(filled, (0.0, 1.0, 2.0))) else np.where(missing, np.nan, filled)


def _fixed_width_rows(codes: np.ndarray, table: np.ndarray) -> list[bytes]:
    """Call cells of each record as one byte string ending in a newline (one table lookup per call)."""
    cells = np.ascontiguousarray(table[codes])
    body = cells.view(np.uint8).reshape(codes.shape[0], -1).copy()
    body[:, -1] = ord("\n")
    return [row.tobytes() for row in body]


def _dosage_rows(codes: np.ndarray, dosage: np.ndarray) -> list[bytes]:
    """``GT:DS`` cells of fractional dosages (``DS`` to 6 significant digits), one byte string per record."""
    uniques, inverse = np.unique(np.nan_to_num(dosage, nan=0.0), return_inverse=True)
    ds = np.array([f"{v:.6g}" for v in uniques], dtype=object)[inverse.reshape(dosage.shape)]
    ds[codes == 3] = "."
    cells = np.array(["0/0:", "0/1:", "1/1:", "./.:"], dtype=object)[codes] + ds
    return [("\t".join(row) + "\n").encode() for row in cells]


class VcfWriter(StreamedWriter):
    """A VCF 4.2 written record block by record block: header once, then :meth:`write` per block.

    Every call is written as ``GT`` (the rounded dosage, unphased; ``./.`` missing) and, with
    ``fields=("GT", "DS")``, ``DS`` (the dosage to 6 significant digits; ``.`` missing). The file
    is written to a temporary sibling and renamed onto ``path`` by :meth:`close`, with the mode a
    new file gets under the user's umask; on an exception inside ``with`` (or :meth:`abort`) nothing
    is left at ``path``. Blocks are formatted cell by cell, so any split of the records gives
    the same bytes.

    Parameters
    ----------
    path
        ``.vcf``, or ``.vcf.gz`` compressed with bgzip through pysam (htslib tools can index it).
    samples
        Sample IDs, the order of the call columns.
    contigs
        Contigs for the default header (``##contig`` lines, see :func:`vcf_contig_lines`).
    fields
        ``("GT",)`` or ``("GT", "DS")``.
    meta_lines
        The ``##`` lines after ``##fileformat=VCFv4.2``, replacing the default ones (the contig
        lines, then the ``FORMAT_LINES`` of ``fields``); they must define every field (not with
        ``contigs``).
    index
        Write a tabix index ``<path>.tbi`` at :meth:`close` (``.gz`` paths only).

    Raises
    ------
    InputError
        No or duplicate samples, unknown fields, ``meta_lines`` without a field's ``##FORMAT``
        line, an index asked for a plain-text path.
    """

    def __init__(
        self,
        path: str | Path,
        samples: Sequence[str],
        *,
        contigs: Sequence[str] | Mapping[str, int] = (),
        fields: Sequence[str] = ("GT", "DS"),
        meta_lines: Sequence[str] | None = None,
        index: bool = False,
    ):
        self._unit = "records"
        self.path = Path(path)
        self.samples = pd.Index([str(s) for s in samples])
        self.fields = tuple(fields)
        self.bgzip = self.path.suffix == ".gz"
        self.index = index
        self.n_written = 0
        self._lines = self._meta_lines(contigs, meta_lines)
        if index and not self.bgzip:
            raise InputError("a tabix index needs a bgzipped VCF (.gz path)", path=str(self.path))
        self._start()

    def _open(self) -> None:
        self._tbi = self._staged.stage(f"{self.path}.tbi") if self.index else None
        self._tmp = self._staged.stage(self.path)
        self._handle = _open_binary(self._tmp, bgzip=self.bgzip)
        header = ["##fileformat=VCFv4.2", *self._lines, "\t".join([*FIXED, *self.samples])]
        self._handle.write(("\n".join(header) + "\n").encode())

    def _meta_lines(self, contigs, meta_lines: Sequence[str] | None) -> list[str]:
        if self.fields not in {("GT",), ("GT", "DS")}:
            raise InputError("VCF fields must be ('GT',) or ('GT', 'DS')", ids=list(self.fields))
        if len(self.samples) == 0:
            raise InputError("a VCF needs at least one sample", path=str(self.path))
        check_unique(self.samples, "sample", path=self.path)
        if meta_lines is None:
            return [*vcf_contig_lines(contigs), *(FORMAT_LINES[f] for f in self.fields)]
        if len(contigs):
            raise InputError("give the contigs in meta_lines or in contigs, not both", path=str(self.path))
        defined = {m.split(",", 1)[0].removeprefix("##FORMAT=<ID=") for m in meta_lines}
        undefined = [f for f in self.fields if f not in defined]
        if undefined:
            raise InputError("VCF meta_lines define no ##FORMAT line for fields", ids=undefined)
        return list(meta_lines)

    def write(
        self, values: np.ndarray | pd.DataFrame, variant_df: pd.DataFrame, info: Sequence[str] | None = None
    ) -> None:
        """Append a block of records.

        Parameters
        ----------
        values
            Variants x samples: integer ALT counts (-9 missing) or float dosages in [0, 2] (NaN
            missing). A DataFrame must have ``variant_df``'s index and the writer's samples.
        variant_df
            Indexed by variant ID (the ``ID`` column) with ``chrom``, ``pos``, ``ref``, ``alt``.
        info
            The ``INFO`` field of each record (default ``.``).

        Raises
        ------
        InputError
            Missing site columns or values, rows or columns that do not match, calls outside
            0/1/2 or [0, 2] (variants named).
        """
        sites = _check_sites(variant_df)
        matrix = writer_block(values, columns=self.samples, rows=sites.index, path=self.path)
        codes, dosage = _call_codes(matrix, sites.index)
        if dosage is not None and "DS" in self.fields:
            rows = _dosage_rows(codes, dosage)
        else:
            rows = _fixed_width_rows(codes, _GT_CELLS if self.fields == ("GT",) else _GT_DS_CELLS)
        info = ["."] * len(sites) if info is None else list(info)
        if len(info) != len(sites):
            raise InputError(f"INFO has {len(info)} entries for {len(sites)} variants", path=str(self.path))
        fmt = ":".join(self.fields)
        lead = [
            f"{c}\t{q}\t{i}\t{r}\t{a}\t.\tPASS\t{f}\t{fmt}\t".encode()
            for c, q, i, r, a, f in zip(
                sites["chrom"], sites["pos"], sites.index, sites["ref"], sites["alt"], info, strict=True
            )
        ]
        self._handle.write(b"".join(x + row for x, row in zip(lead, rows, strict=True)))
        self.n_written += len(sites)

    def _finish(self) -> None:
        self._handle.close()
        if self.index:
            import pysam

            pysam.tabix_index(str(self._tmp), preset="vcf", force=True, index=str(self._tbi))
        logger.info("wrote %d VCF records to %s", self.n_written, self.path)

    def _release(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()


def _open_binary(path: Path, *, bgzip: bool):
    """Open ``path`` for writing bytes, through pysam's BGZF writer when ``bgzip``."""
    if not bgzip:
        return open(path, "wb")
    try:
        import pysam
    except ImportError as exc:  # pragma: no cover - pysam comes with pybedtools
        raise MissingDependencyError("writing a .vcf.gz needs pysam (bgzip): pip install pysam") from exc
    return pysam.BGZFile(str(path), "wb")


def write_vcf(genotype_df: pd.DataFrame, path: str | Path, *, snp_info_df: pd.DataFrame) -> None:
    """Write dosages as a VCF 4.2 with ``GT`` (hard calls) and ``DS`` FORMAT fields.

    One :class:`VcfWriter` block: the header lists the contigs of ``snp_info_df`` in order of
    appearance.

    Parameters
    ----------
    genotype_df
        SNPs x individuals ALT dosages in [0, 2] (NaN missing). ``GT`` is the rounded dosage
        (unphased), ``DS`` the value to 6 significant digits.
    path
        Destination (``.vcf``, or ``.vcf.gz`` compressed with bgzip through pysam so that
        htslib tools can index it), written atomically.
    snp_info_df
        Indexed by SNP ID with ``chrom``, ``pos``, ``ref``, ``alt``.
    """
    genotype_df = validate_genotypes(genotype_df)
    lacking = [c for c in _SITE_COLUMNS if c not in snp_info_df.columns]
    if lacking:
        raise InputError("SNP table for the VCF lacks columns", ids=lacking)
    info = snp_info_df.reindex(genotype_df.index)
    contigs = [str(c) for c in pd.unique(info["chrom"].dropna())]
    with VcfWriter(path, genotype_df.columns, contigs=contigs) as writer:
        writer.write(genotype_df, info)


def _scan_sites(path: Path, *, chunk_size: int = 50_000) -> tuple[list[str], pd.DataFrame]:
    """Sample IDs and the kept sites (``chrom pos ref alt`` by variant ID) of a VCF/BCF, in file order."""
    if is_bcf_file(path):
        return _scan_bcf_sites(path)
    _, header = vcf_text_header(path)
    frames, n_multi = [], 0
    with reader_errors(path, what="VCF file"):
        for block in iter_vcf_chunks(path, columns=FIXED[:5], chunk_size=chunk_size):
            block, multi = _kept_records(block, None, last="ALT", line0=None, path=path)
            n_multi += multi
            frames.append(block)
    if n_multi:
        logger.info("skipped %d multi-allelic VCF records in %s", n_multi, path)
    sites = pd.concat(frames) if frames else pd.DataFrame(columns=FIXED[:5])
    ids = sites["ID"].to_numpy().astype(object)
    unnamed = (ids == ".") | (ids == "")
    if unnamed.any():
        built = sites["#CHROM"] + "_" + sites["POS"] + "_" + sites["REF"] + "_" + sites["ALT"]
        ids[unnamed] = built.to_numpy()[unnamed]
    pos = pd.to_numeric(sites["POS"], errors="coerce")
    if pos.isna().any():
        raise InputError("VCF records with a non-integer POS", path=str(path), ids=ids[pos.isna().to_numpy()])
    info = pd.DataFrame(
        {
            "chrom": sites["#CHROM"].to_numpy(),
            "pos": pos.to_numpy(dtype=np.int64),
            "ref": sites["REF"].to_numpy(),
            "alt": sites["ALT"].to_numpy(),
        },
        index=pd.Index(ids, name="variant_id"),
    )
    return header[9:], info


def _scan_bcf_sites(path: Path) -> tuple[list[str], pd.DataFrame]:
    import pysam

    with reader_errors(path, what="VCF/BCF file"):
        with pysam.VariantFile(str(path)) as vf:
            samples = list(vf.header.samples)
        rows, n_multi, names = [], 0, {}
        with pysam.VariantFile(str(path), drop_samples=True) as vf:
            for rec in vf:
                if rec.alts is None or len(rec.alts) != 1:
                    n_multi += rec.alts is not None
                    continue
                chrom = names.get(rec.chrom) or names.setdefault(rec.chrom, harmonize_chrom([rec.chrom])[0])
                vid = rec.id or f"{chrom}_{rec.pos}_{rec.ref}_{rec.alts[0]}"
                rows.append((vid, chrom, rec.pos, rec.ref, rec.alts[0]))
    if not samples:
        raise InputError("VCF/BCF file has no samples", path=str(path))
    if n_multi:
        logger.info("skipped %d multi-allelic BCF records in %s", n_multi, path)
    info = pd.DataFrame(rows, columns=["variant_id", "chrom", "pos", "ref", "alt"]).set_index("variant_id")
    info["pos"] = info["pos"].astype(np.int64)
    return samples, info


class VCFSource(StreamedSource):
    """A VCF/BCF file as a :class:`~tbeqtl.io.genotypes.GenotypeSource` (see the module docstring).

    Parameters
    ----------
    path
        ``.vcf``, ``.vcf.gz``/``.vcf.bgz`` (gzip or bgzip) or ``.bcf``.
    dosage_field
        ``"GT"`` (hard calls) or ``"DS"`` (expected ALT count).
    chunk_size
        Records parsed at a time.

    Raises
    ------
    InputError
        Bad header, no samples, duplicate variant IDs (named), non-integer positions.
    """

    def __init__(self, path: str | Path, *, dosage_field: str = "GT", chunk_size: int = 10_000):
        if dosage_field not in {"GT", "DS"}:
            raise InputError(f"dosage_field must be 'GT' or 'DS', not {dosage_field!r}")
        path = check_file(path, what="VCF/BCF file")
        self.dosage_field = dosage_field
        self.chunk_size = chunk_size
        samples, sites = _scan_sites(path)
        self._set_index(samples, sites, path=path)
        self.indexed = _index_of(path) is not None and _has_pysam()

    def _region(self, chrom: str, rows: np.ndarray) -> tuple[str, int]:
        """Return the region holding ``rows`` of ``chrom`` and the number of its records before them.

        The region spans the rows' positions, so records outside it are dropped before their
        calls are parsed; the records of the region that come before the first row (same
        positions, or an unsorted file) are counted and skipped.
        """
        chrom_rows = self._rows[chrom]
        first = int(np.searchsorted(chrom_rows, rows[0]))
        chrom_pos = self.variant_df["pos"].to_numpy()[chrom_rows]
        wanted = chrom_pos[first : first + len(rows)]
        lo, hi = int(wanted.min()), int(wanted.max())
        before = chrom_pos[:first]
        return f"{chrom}:{lo}-{hi}", int(np.count_nonzero((before >= lo) & (before <= hi)))

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

        Raises
        ------
        InputError
            ``DS`` values outside [0, 2], or a file that no longer matches the sites read at opening.
        """
        rows = self._range_rows(chrom, start, stop)
        plan = self._sample_plan(samples, what=f"VCF samples of {self.path.name}")
        out = np.empty((len(rows), plan.size), dtype=np.float32)
        if out.size == 0:
            return out
        region, skip = self._region(chrom, rows)
        expected = self.variant_df.index[rows]
        names = list(self.samples[plan.columns])
        filled = 0
        with self._lock:
            blocks = iter_vcf_blocks(
                self.path, field=self.dosage_field, samples=names, region=region, chunk_size=self.chunk_size
            )
            for geno, _ in blocks:
                if skip >= len(geno):
                    skip -= len(geno)
                    continue
                geno = geno.iloc[skip : skip + len(rows) - filled]
                skip = 0
                self._check_block(geno, expected[filled : filled + len(geno)])
                out[filled : filled + len(geno)] = plan.arrange(geno.to_numpy())
                filled += len(geno)
                if filled == len(rows):
                    break
            blocks.close()
        if filled != len(rows):
            raise InputError(
                f"VCF/BCF has {filled} of the {len(rows)} {chrom} records read when it was opened "
                "(file changed, or a stale index?)",
                path=str(self.path),
            )
        return out

    def _check_block(self, geno: pd.DataFrame, expected: pd.Index) -> None:
        if not np.array_equal(geno.index.to_numpy(), expected.to_numpy()):
            raise InputError(
                "VCF/BCF records differ from those read when it was opened (file changed, or a stale "
                "index?); first different variant",
                path=str(self.path),
                ids=[geno.index[np.argmax(geno.index.to_numpy() != expected.to_numpy())]],
            )
        with np.errstate(invalid="ignore"):
            bad = ((geno < 0) | (geno > 2)).any(axis=1).to_numpy()
        if bad.any():
            raise InputError(
                f"VCF {self.dosage_field} dosages outside [0, 2] in variants",
                path=str(self.path),
                ids=geno.index[bad],
            )
