"""Gene annotation from GTF/GFF, BED or TSV files.

Coordinates in memory are **1-based and closed** (GTF/GENCODE convention): BED files
(0-based, half-open) get ``start + 1`` on reading and ``start - 1`` on writing. Chromosome
names are harmonised to the ``chr1`` style.

Gene types: GENCODE renamed ``lincRNA`` (and several other long non-coding subtypes such as
``antisense`` and ``processed_transcript``) to ``lncRNA`` in release 31. GTEx v8 uses
GENCODE v26, where ``lincRNA`` still exists. Readers keep the original type; with
``harmonize_gene_types=True`` the new names are used and the original is kept in
``gene_type_original``.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import harmonize_chrom
from ..errors import InputError
from ._common import (
    check_file,
    check_unique,
    first_line,
    harmonize_chrom_fast,
    integer_column,
    open_output,
    pick_column,
    read_delimited,
)

__all__ = [
    "ENSEMBL_GENE_ID",
    "LNCRNA_LEGACY_TYPES",
    "harmonize_gene_types",
    "normalize_gene_id",
    "read_gene_annotation",
    "strip_version",
    "write_gene_bed",
]

logger = logging.getLogger(__name__)

#: Long non-coding gene types that GENCODE >= 31 merged into ``lncRNA``.
LNCRNA_LEGACY_TYPES = frozenset(
    {
        "lincRNA",
        "antisense",
        "antisense_RNA",
        "sense_intronic",
        "sense_overlapping",
        "processed_transcript",
        "3prime_overlapping_ncRNA",
        "3prime_overlapping_ncrna",
        "bidirectional_promoter_lncRNA",
        "macro_lncRNA",
        "non_coding",
    }
)

#: An Ensembl gene ID (any species prefix), optionally versioned and with GENCODE's ``_PAR_Y``.
ENSEMBL_GENE_ID = re.compile(r"^(ENS[A-Z]*G\d{6,})(\.\d+)?(_PAR_Y)?$")

_GENE_ID = ("gene_id", "geneid", "ensembl_gene_id", "gene", "id", "name", "phenotype_id")
_CHROM = ("chrom", "chr", "chromosome", "chromosome_name", "seqnames", "seqname", "#chr", "#chrom", "contig")
_START = ("start", "left", "start_position", "txstart", "chromstart")
_END = ("end", "right", "end_position", "txend", "chromend")
_STRAND = ("strand",)
_TYPE = ("gene_type", "gene_biotype", "biotype", "type")
_NAME = ("gene_name", "external_gene_name", "symbol", "gene_symbol")


def strip_version(ids: Iterable[object]) -> pd.Index:
    """Remove the ``.N`` version suffix of Ensembl/GENCODE IDs (``ENSG...13`` -> ``ENSG...``).

    ``_PAR_Y`` suffixes of GENCODE chrY copies are kept so that IDs stay unique.
    """
    return pd.Index([re.sub(r"\.\d+(?=$|_PAR_Y$)", "", str(i)) for i in ids])


def normalize_gene_id(gene_id: object) -> str:
    """Strip whitespace, and the version (``.12``) and ``_PAR_Y`` suffix of Ensembl IDs.

    Parameters
    ----------
    gene_id
        The identifier.

    Returns
    -------
    str
        The normalised identifier (``ENSG00000099977.9`` -> ``ENSG00000099977``).
    """
    text = str(gene_id).strip()
    match = ENSEMBL_GENE_ID.match(text)
    return match.group(1) if match else text


def harmonize_gene_types(types: Iterable[object]) -> pd.Index:
    """Map legacy long non-coding gene types (``lincRNA``, ``antisense`` ...) to ``lncRNA``.

    Parameters
    ----------
    types
        Gene types as read (any GENCODE release).

    Returns
    -------
    pandas.Index
        Gene types in the GENCODE >= 31 naming; missing values stay missing.
    """
    return pd.Index([("lncRNA" if t in LNCRNA_LEGACY_TYPES else t) for t in types], dtype=object)


def _strand(values: pd.Series) -> np.ndarray:
    mapping = {"1": "+", "+1": "+", "+": "+", "-1": "-", "-": "-"}
    return np.array([mapping.get(str(v).strip(), ".") for v in values], dtype=object)


def _finish(df: pd.DataFrame, path: Path, *, harmonize: bool, duplicates: str = "error") -> pd.DataFrame:
    if duplicates == "first" and df.index.has_duplicates:
        dup = df.index.duplicated()
        logger.info("kept the first of %d duplicated gene rows in %s", int(dup.sum()), path)
        df = df[~dup].copy()
    check_unique(df.index, "gene", path=path)
    if len(df) == 0:
        raise InputError("gene annotation has no genes", path=str(path))
    df["chrom"] = harmonize_chrom_fast(df["chrom"])
    bad = df["end"] < df["start"]
    if bad.any():
        raise InputError("gene annotation has end < start for", path=str(path), ids=df.index[bad.to_numpy()])
    if "gene_type" in df.columns and harmonize:
        df["gene_type_original"] = df["gene_type"]
        df["gene_type"] = harmonize_gene_types(df["gene_type"]).to_numpy()
    df.index.name = "gene"
    return df


def _gtf_attribute(attrs: pd.Series, key: str, *, gff3: bool) -> pd.Series:
    pattern = rf"(?:^|;)\s*{re.escape(key)}=([^;]*)" if gff3 else rf'(?:^|;)\s*{re.escape(key)} "?([^";]*)"?'
    return attrs.str.extract(pattern, expand=False)


def _fill(values: pd.Series, other: pd.Series) -> pd.Series:
    return pd.Series(np.where(values.isna(), other, values), index=values.index, dtype=object)


def _read_gtf(path: Path, *, harmonize: bool) -> pd.DataFrame:
    df = read_delimited(
        path,
        what="GTF/GFF file",
        sep="\t",
        header=None,
        dtype=str,
        comment=None,
        quoting=csv.QUOTE_NONE,
        names=list(range(9)),
    )
    df = df[~df[0].astype(str).str.startswith("#")]
    if len(df) == 0:
        raise InputError("GTF/GFF file has no feature lines", path=str(path))
    short = df[8].isna()
    if short.any():
        raise InputError(
            "GTF/GFF lines with fewer than 9 tab-separated fields (data lines)",
            path=str(path),
            ids=np.nonzero(short.to_numpy())[0][:10] + 1,
        )
    gff3 = bool(df[8].head(200).str.contains(r"(?:^|;)\s*\w+=", regex=True).any()) and not bool(
        df[8].head(200).str.contains(r'\w+ "', regex=True).any()
    )
    is_gene = (df[2] == "gene") | df[2].str.endswith("_gene") | (df[2] == "pseudogene")
    genes = df[is_gene]
    if len(genes) == 0:
        logger.info("%s has no gene lines: gene spans are taken from all features", path)
        genes = df
    attrs = genes[8]
    gene_id = _gtf_attribute(attrs, "gene_id", gff3=gff3)
    if gff3:
        gene_id = gene_id.fillna(
            _gtf_attribute(attrs, "ID", gff3=True).str.replace(r"^gene:", "", regex=True)
        )
    if gene_id.isna().any():
        raise InputError(
            "GTF/GFF gene lines without gene_id (first lines shown by start)",
            path=str(path),
            ids=genes.loc[gene_id.isna(), 3].head(10),
        )
    gene_type = None
    for key in ("gene_type", "gene_biotype", "biotype"):
        found = _gtf_attribute(attrs, key, gff3=gff3)
        gene_type = found if gene_type is None else _fill(gene_type, found)
    name = _gtf_attribute(attrs, "gene_name", gff3=gff3)
    if gff3:
        name = _fill(name, _gtf_attribute(attrs, "Name", gff3=True))
    out = pd.DataFrame(
        {
            "gene": gene_id.to_numpy(),
            "chrom": genes[0].to_numpy(),
            "start": pd.to_numeric(genes[3], errors="coerce").to_numpy(),
            "end": pd.to_numeric(genes[4], errors="coerce").to_numpy(),
            "strand": _strand(genes[6]),
            "gene_type": gene_type.to_numpy(),
            "gene_name": name.to_numpy(),
        }
    )
    if out[["start", "end"]].isna().any().any():
        raise InputError(
            "GTF/GFF lines with non-numeric start/end for genes",
            path=str(path),
            ids=out.loc[out[["start", "end"]].isna().any(axis=1), "gene"],
        )
    if genes is df or out["gene"].duplicated().any():
        out = out.groupby("gene", sort=False).agg(
            chrom=("chrom", "first"),
            start=("start", "min"),
            end=("end", "max"),
            strand=("strand", "first"),
            gene_type=("gene_type", "first"),
            gene_name=("gene_name", "first"),
        )
    else:
        out = out.set_index("gene")
    out["start"] = out["start"].astype(np.int64)
    out["end"] = out["end"].astype(np.int64)
    if out["gene_type"].isna().all():
        logger.info("%s has no gene_type/gene_biotype attribute: gene_type is missing", path)
    return _finish(out, path, harmonize=harmonize)


def _read_bed_annotation(path: Path, *, zero_based: bool, harmonize: bool) -> pd.DataFrame:
    header = first_line(path)
    has_header = header.startswith("#") or header.lower().startswith("chrom")
    df = read_delimited(
        path,
        what="gene BED file",
        sep="\t",
        header=0 if has_header else None,
        dtype=str,
        comment=None,
        keep_default_na=False,
        na_values=["NA", ""],
    )
    df = df[~df.iloc[:, 0].astype(str).str.startswith(("track", "browser", "#"))]
    if df.shape[1] < 4:
        raise InputError(
            f"gene BED file needs at least 4 columns (chrom start end name), found {df.shape[1]}",
            path=str(path),
        )
    names = ["chrom", "start", "end", "gene", "score", "strand", "gene_type", "gene_name"]
    if has_header:
        extra = [str(c) for c in df.columns[6:]]
        names = names[: min(6, df.shape[1])] + extra
    else:
        names = names[: df.shape[1]] + [f"column{i + 1}" for i in range(len(names), df.shape[1])]
    df.columns = names
    df = df.set_index("gene")
    ids = df.index
    out = pd.DataFrame(index=ids)
    out["chrom"] = df["chrom"].to_numpy()
    out["start"] = integer_column(df["start"], what="start", ids=ids, path=path) + (1 if zero_based else 0)
    out["end"] = integer_column(df["end"], what="end", ids=ids, path=path)
    out["strand"] = _strand(df["strand"]) if "strand" in df.columns else "."
    if "score" in df.columns and not df["score"].isin(["0", ".", np.nan]).all():
        out["score"] = df["score"].to_numpy()
    for col in df.columns:
        if col not in {"chrom", "start", "end", "strand", "score"}:
            out[col] = df[col].to_numpy()
    return _finish(out, path, harmonize=harmonize)


def _read_tsv_annotation(
    path: Path, *, harmonize: bool, columns: dict[str, str], duplicates: str
) -> pd.DataFrame:
    df = read_delimited(
        path, what="gene annotation table", dtype=str, keep_default_na=False, na_values=["NA", ""]
    )
    cols = [str(c) for c in df.columns]
    gid = pick_column(cols, _GENE_ID, given=columns.get("gene_id"), what="gene ID", path=path)
    chrom = pick_column(cols, _CHROM, given=columns.get("chrom"), what="chromosome", path=path)
    start = pick_column(cols, _START, given=columns.get("start"), what="start", path=path)
    end = pick_column(cols, _END, given=columns.get("end"), what="end", path=path, required=False) or start
    strand = pick_column(cols, _STRAND, given=columns.get("strand"), what="strand", path=path, required=False)
    gtype = pick_column(
        cols, _TYPE, given=columns.get("gene_type"), what="gene type", path=path, required=False
    )
    name = pick_column(
        cols, _NAME, given=columns.get("gene_name"), what="gene name", path=path, required=False
    )
    ids = pd.Index(df[gid].astype(str).to_numpy())
    out = pd.DataFrame(index=ids)
    out["chrom"] = df[chrom].to_numpy()
    out["start"] = integer_column(df[start], what="start", ids=ids, path=path)
    out["end"] = integer_column(df[end], what="end", ids=ids, path=path)
    out["strand"] = _strand(df[strand]) if strand else "."
    out["gene_type"] = df[gtype].to_numpy() if gtype else np.nan
    if name:
        out["gene_name"] = df[name].to_numpy()
    used = {gid, chrom, start, end, strand, gtype, name}
    for col in cols:
        if col not in used:
            out[col] = df[col].to_numpy()
    return _finish(out, path, harmonize=harmonize, duplicates=duplicates)


def read_gene_annotation(
    path: str | Path,
    *,
    format: str = "auto",  # noqa: A002 - the natural name for a file format
    harmonize_gene_types: bool = False,
    zero_based: bool = True,
    columns: dict[str, str] | None = None,
    genes: Sequence[str] | None = None,
    strip_versions: bool = False,
    duplicates: str = "error",
) -> pd.DataFrame:
    """Read gene positions and types from GTF/GFF, BED or a TSV table.

    Parameters
    ----------
    path
        GTF/GFF(3) (``.gtf``, ``.gff``, ``.gff3``, optionally ``.gz``): ``gene`` features with
        ``gene_id``, ``gene_name``, ``gene_type`` or ``gene_biotype`` attributes (files without
        gene lines get spans from their transcripts/exons). BED (``.bed``): chrom, start, end,
        name, score, strand, gene_type[, gene_name] (a ``#`` header line names extra columns).
        Anything else: a delimited table whose columns are recognised by name
        (``gene_id``/``ensembl_gene_id``/``geneid``, ``chr``/``chromosome_name``,
        ``start``/``left``/``start_position``, ``end``/``right``, ``strand`` as +/- or 1/-1,
        ``gene_type``/``gene_biotype``, ``gene_name``/``external_gene_name``), e.g. the GENCODE and
        Ensembl tables in ``shared/data/gene_annotation`` and MatrixEQTL ``geneloc`` files.
    format
        ``"auto"`` (from the suffix), ``"gtf"``, ``"bed"`` or ``"tsv"``.
    harmonize_gene_types
        Map legacy long non-coding types (``lincRNA`` ...) to ``lncRNA``; the original is kept
        in ``gene_type_original``.
    zero_based
        BED only: starts are 0-based (the BED standard). Pass ``False`` for files written
        with 1-based starts.
    columns
        TSV only: explicit column names, keys ``gene_id``, ``chrom``, ``start``, ``end``,
        ``strand``, ``gene_type``, ``gene_name``.
    genes
        Keep only these gene IDs (unknown IDs are ignored with a log message).
    strip_versions
        Remove ``.N`` version suffixes from the gene IDs.
    duplicates
        TSV only: ``"error"`` (default) or ``"first"`` to keep the first row of a gene listed
        several times (e.g. once per Entrez ID in the Ensembl GRCh37 table), with a logged count.

    Returns
    -------
    pandas.DataFrame
        Indexed by gene ID: ``chrom`` (``chr`` style), ``start``, ``end`` (1-based, closed),
        ``strand``, ``gene_type`` (NaN when the file has none), ``gene_name`` when known,
        then any other columns.

    Raises
    ------
    InputError
        Unrecognised columns, non-integer positions, end < start, duplicate gene IDs,
        malformed lines, corrupt files.
    """
    path = check_file(path, what="gene annotation")
    name = path.name.lower().removesuffix(".gz")
    if format == "auto":
        if name.endswith((".gtf", ".gff", ".gff3")):
            format = "gtf"  # noqa: A001
        elif name.endswith(".bed"):
            format = "bed"  # noqa: A001
        else:
            format = "tsv"  # noqa: A001
    if duplicates not in {"error", "first"}:
        raise InputError(f"duplicates must be 'error' or 'first', not {duplicates!r}")
    if format == "gtf":
        df = _read_gtf(path, harmonize=harmonize_gene_types)
    elif format == "bed":
        df = _read_bed_annotation(path, zero_based=zero_based, harmonize=harmonize_gene_types)
    elif format == "tsv":
        df = _read_tsv_annotation(
            path, harmonize=harmonize_gene_types, columns=columns or {}, duplicates=duplicates
        )
    else:
        raise InputError(f"unknown annotation format {format!r} (use auto, gtf, bed or tsv)", path=str(path))
    if strip_versions:
        df.index = pd.Index(strip_version(df.index), name="gene")
        check_unique(df.index, "gene (after removing versions)", path=path)
    if genes is not None:
        wanted = pd.Index([str(g) for g in genes])
        missing = wanted.difference(df.index, sort=False)
        if len(missing):
            logger.info("%d requested genes are not in %s", len(missing), path)
        df = df.reindex(wanted.intersection(df.index, sort=False))
    return df


def write_gene_bed(gene_info_df: pd.DataFrame, path: str | Path) -> None:
    """Write gene annotation as BED (0-based starts) with a ``#chrom`` header and ``gene_type``.

    Columns: ``chrom start end gene_id score strand gene_type`` then ``gene_name`` and any other
    columns of ``gene_info_df``. Genes without a position are left out (logged).

    Parameters
    ----------
    gene_info_df
        Indexed by gene ID with ``chrom``, ``start``, ``end`` (1-based, closed) and optionally
        ``strand``, ``gene_type``, ``gene_name``.
    path
        Destination (``.gz`` for gzip), written atomically.
    """
    check_unique(gene_info_df.index, "gene")
    lacking = [c for c in ("chrom", "start", "end") if c not in gene_info_df.columns]
    if lacking:
        raise InputError("gene annotation lacks columns", ids=lacking)
    known = gene_info_df[["chrom", "start", "end"]].notna().all(axis=1)
    if not known.all():
        logger.info("leaving %d genes without a position out of %s", int((~known).sum()), path)
    df = gene_info_df.loc[known]
    out = pd.DataFrame(
        {
            "#chrom": harmonize_chrom(df["chrom"]).to_numpy(),
            "start": df["start"].astype(np.int64).to_numpy() - 1,
            "end": df["end"].astype(np.int64).to_numpy(),
            "gene_id": df.index.astype(str),
            "score": df["score"].to_numpy() if "score" in df.columns else 0,
            "strand": df["strand"].fillna(".").to_numpy() if "strand" in df.columns else ".",
            "gene_type": df["gene_type"].to_numpy() if "gene_type" in df.columns else np.nan,
        }
    )
    for col in df.columns:
        if col not in {"chrom", "start", "end", "score", "strand", "gene_type"}:
            out[str(col)] = df[col].to_numpy()
    with open_output(path) as handle:
        out.to_csv(handle, sep="\t", index=False, na_rep="NA", lineterminator="\n")
