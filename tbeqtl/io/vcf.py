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
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import logging
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..data import harmonize_chrom, validate_genotypes
from ..errors import InputError, MissingDependencyError
from ._common import (
    check_file,
    check_unique,
    count_meta_lines,
    harmonize_chrom_fast,
    open_output,
    open_text,
    pick_ids,
    reader_errors,
)
from .genotypes import SamplePlan, StreamedSource

__all__ = ["VCFGenotypes", "VCFSource", "iter_vcf_blocks", "read_vcf", "write_vcf"]

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


def _text_header(path: Path) -> tuple[int, list[str]]:
    """Return the number of ``##`` lines and the checked ``#CHROM`` header fields of a text VCF."""
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
    skip, header = _text_header(path)
    keep = list(pick_ids(pd.Index(header[9:]), samples, "sample", path=path))
    want = _parse_region(region)
    n_multi = 0
    line0 = skip + 2
    with reader_errors(path, what="VCF file"), open_text(path) as handle:
        for _ in range(skip + 1):
            handle.readline()
        for block in _chunks(handle, header, [*FIXED, *keep], chunk_size):
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

    _, header = _text_header(path)
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
    if _is_bcf_path(path):
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


def _is_bcf_path(path: Path) -> bool:
    """Whether ``path`` is a BCF (by name, or by the bytes inside its BGZF blocks)."""
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


def write_vcf(genotype_df: pd.DataFrame, path: str | Path, *, snp_info_df: pd.DataFrame) -> None:
    """Write dosages as a VCF 4.2 with ``GT`` (hard calls) and ``DS`` FORMAT fields.

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
    lacking = [c for c in ("chrom", "pos", "ref", "alt") if c not in snp_info_df.columns]
    if lacking:
        raise InputError("SNP table for the VCF lacks columns", ids=lacking)
    info = snp_info_df.reindex(genotype_df.index)
    if info[["chrom", "pos", "ref", "alt"]].isna().any().any():
        raise InputError("SNPs without position or alleles", ids=info.index[info.isna().any(axis=1)])
    values = genotype_df.to_numpy()
    path = Path(path)
    if path.suffix == ".gz":
        try:
            import pysam
        except ImportError:  # pragma: no cover - plain gzip is still readable by tbeqtl and pandas
            pysam = None
        if pysam is not None:
            with tempfile.TemporaryDirectory(prefix="tbeqtl-vcf-") as tmp:
                plain = Path(tmp) / "out.vcf"
                _write_vcf_text(values, genotype_df, info, plain)
                with atomic_path(path) as out:
                    pysam.tabix_compress(str(plain), str(out), force=True)
            return
    _write_vcf_text(values, genotype_df, info, path)


def _write_vcf_text(values: np.ndarray, genotype_df: pd.DataFrame, info: pd.DataFrame, path: Path) -> None:
    missing = np.isnan(values)
    filled = np.where(missing, 0.0, values)
    gt = np.array(["0/0", "0/1", "1/1"], dtype=object)[np.rint(filled).astype(int)]
    gt[missing] = "./."
    ds = (
        pd.DataFrame(filled).map(lambda v: f"{v:.6g}").to_numpy(dtype=object)
        if not np.all(np.isin(filled, (0.0, 1.0, 2.0)))
        else np.array(["0", "1", "2"], dtype=object)[filled.astype(int)]
    )
    ds[missing] = "."
    cells = gt + ":" + ds
    fixed = pd.DataFrame(
        {
            "#CHROM": info["chrom"].astype(str).to_numpy(),
            "POS": info["pos"].astype(np.int64).astype(str).to_numpy(),
            "ID": genotype_df.index.astype(str),
            "REF": info["ref"].astype(str).to_numpy(),
            "ALT": info["alt"].astype(str).to_numpy(),
            "QUAL": ".",
            "FILTER": "PASS",
            "INFO": ".",
            "FORMAT": "GT:DS",
        }
    ).to_numpy(dtype=object)
    with open_output(path) as handle:
        handle.write("##fileformat=VCFv4.2\n")
        for chrom in pd.unique(info["chrom"]):
            handle.write(f"##contig=<ID={chrom}>\n")
        handle.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        handle.write('##FORMAT=<ID=DS,Number=A,Type=Float,Description="ALT dosage">\n')
        handle.write("\t".join([*FIXED, *map(str, genotype_df.columns)]) + "\n")
        for i in range(len(fixed)):
            handle.write("\t".join([*fixed[i], *cells[i]]) + "\n")


def _scan_sites(path: Path, *, chunk_size: int = 50_000) -> tuple[list[str], pd.DataFrame]:
    """Sample IDs and the kept sites (``chrom pos ref alt`` by variant ID) of a VCF/BCF, in file order."""
    if _is_bcf_path(path):
        return _scan_bcf_sites(path)
    skip, header = _text_header(path)
    frames, n_multi = [], 0
    with reader_errors(path, what="VCF file"), open_text(path) as handle:
        for _ in range(skip + 1):
            handle.readline()
        for block in _chunks(handle, header, FIXED[:5], chunk_size):
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
        plan = SamplePlan(self.samples, samples, what=f"VCF samples of {self.path.name}")
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
