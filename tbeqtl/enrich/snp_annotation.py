"""SNP-class enrichment: binary LDSC baselineLD-style annotations (the paper's Table S2 / Fig 2 left).

For each binary annotation (SNP class), a one-sided Fisher exact test compares the fraction of
the SNP set in the class with the fraction of the background SNP set in the class; BH FDR is
taken across the classes tested for one set. Annotations come either from LDSC ``.annot(.gz)``
files, parquet or TSV tables (SNP rows x 0/1 columns), or from BED interval files intersected
with SNP positions through ``pybedtools`` (``bedtools intersect -u``).

As in the paper ("We did not consider MAF bin classes"), MAF-bin columns are skipped, and so
are the all-ones ``base`` column and continuous annotations (values other than 0/1).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import harmonize_chrom
from ..errors import InputError
from ..schema import validate_table
from .bedtools import bedtools_session, snps_to_bed_df
from .feature_sets import as_id_index, check_subset, named_sets
from .fisher import bh_fdr, fisher_enrichment
from .genome import check_build, resolve_chrom_sizes

__all__ = ["annotations_from_bed", "read_snp_annotations", "snp_annotation_enrichment", "snp_positions_frame"]

logger = logging.getLogger(__name__)

_ID_COLS = ("snp", "rsid", "rs_id", "variant_id", "id", "snp_id")
_CHROM_COLS = ("chr", "chrom", "chromosome", "#chrom")
_POS_COLS = ("bp", "pos", "position", "variant_pos")
_META_COLS = {"cm", "a1", "a2", "ref", "alt", "maf"}
_SKIP = re.compile(r"(^base$)|(mafbin)|(^maf_)", re.IGNORECASE)
ON_UNKNOWN = ("drop", "error")


def _find(columns: Sequence[str], names: Sequence[str]) -> str | None:
    lower = {str(c).lower(): c for c in columns}
    for name in names:
        if name in lower:
            return lower[name]
    return None


def snp_positions_frame(df: pd.DataFrame, *, path: str | None = None) -> pd.DataFrame:
    """Normalise a SNP position table to an index of SNP IDs with harmonised ``chrom`` and integer ``pos``.

    Parameters
    ----------
    df
        Indexed by SNP ID (or with an ``SNP``/``rsid``/``variant_id`` column) with chromosome
        (``CHR``/``chrom``) and 1-based position (``BP``/``pos``) columns.
    path
        Source file, for messages.

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom`` (``chr1`` style) and ``pos`` (int64), indexed by SNP ID (``snp``).

    Raises
    ------
    InputError
        If the columns are missing, positions are not whole numbers, or SNP IDs repeat.
    """
    id_col = _find(df.columns, _ID_COLS)
    chrom_col, pos_col = _find(df.columns, _CHROM_COLS), _find(df.columns, _POS_COLS)
    if chrom_col is None or pos_col is None:
        raise InputError(
            "SNP table needs chromosome (CHR/chrom) and position (BP/pos) columns; found",
            path=path,
            ids=list(df.columns),
        )
    ids = df[id_col].astype(str) if id_col is not None else df.index.astype(str)
    pos = pd.to_numeric(df[pos_col], errors="coerce")
    if pos.isna().any() or (pos != np.round(pos)).any():
        raise InputError(
            "SNP positions must be whole numbers",
            path=path,
            ids=list(pd.Index(ids)[pos.isna().to_numpy() | (pos != np.round(pos)).to_numpy()]),
        )
    out = pd.DataFrame(
        {"chrom": harmonize_chrom(df[chrom_col]).to_numpy(), "pos": pos.astype("int64").to_numpy()},
        index=pd.Index(ids, name="snp"),
    )
    dup = out.index[out.index.duplicated()]
    if len(dup):
        raise InputError("SNP IDs are repeated", path=path, ids=dup.unique())
    return out


def _read_table(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith((".annot", ".annot.gz")):
        return pd.read_csv(path, sep=r"\s+")
    return pd.read_csv(path, sep="\t")


def read_snp_annotations(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """Read binary SNP annotations from LDSC ``.annot(.gz)`` files, parquet or TSV tables.

    Per-chromosome files (e.g. ``baselineLD.{1..22}.annot.gz``) may be given together. The
    files must carry SNP IDs (``SNP`` column) and positions (``CHR``, ``BP``); thin ``.annot``
    files without them cannot be matched to SNPs and are rejected.

    Parameters
    ----------
    paths
        One file or several.

    Returns
    -------
    pandas.DataFrame
        Indexed by SNP ID: ``chrom``, ``pos``, then one boolean column per binary annotation
        (MAF-bin, ``base`` and non-binary columns are skipped and logged).

    Raises
    ------
    InputError
        Missing files, missing SNP/position columns, files with different annotation columns,
        repeated SNPs, or no binary annotation at all.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    frames, columns = [], None
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise InputError("annotation file not found", path=str(path))
        df = _read_table(path)
        id_col = _find(df.columns, _ID_COLS)
        if id_col is None:
            raise InputError(
                "annotation table has no SNP ID column (thin .annot files need their .bim); columns are",
                path=str(path),
                ids=list(df.columns),
            )
        skip = {id_col, _find(df.columns, _CHROM_COLS), _find(df.columns, _POS_COLS)}
        annot = [c for c in df.columns if c not in skip and str(c).lower() not in _META_COLS]
        # multi-allelic sites share an rsID and position; their (positional) annotations agree
        n_rows = len(df)
        df = df.drop_duplicates(subset=[c for c in df.columns if c in skip or c in annot], ignore_index=True)
        if len(df) < n_rows:
            logger.info(
                "%s: %d repeated rows of multi-allelic SNPs (same ID, position and annotations) merged",
                path.name,
                n_rows - len(df),
            )
        pos_df = snp_positions_frame(df, path=str(path))
        if columns is None:
            columns = annot
        elif annot != columns:
            raise InputError(
                "annotation files have different annotation columns",
                path=str(path),
                ids=sorted(set(annot) ^ set(columns)),
            )
        values = df[annot].set_axis(pos_df.index)
        frames.append(pd.concat([pos_df, values], axis=1))
    table = pd.concat(frames)
    dup = table.index[table.index.duplicated()]
    if len(dup):
        raise InputError("SNP IDs repeated across annotation files", ids=dup.unique())
    keep, skipped = [], []
    for col in columns or []:
        values = pd.to_numeric(table[col], errors="coerce")
        if _SKIP.search(str(col)) or values.isna().any() or not values.isin([0, 1]).all():
            skipped.append(str(col))
        else:
            keep.append(col)
    if skipped:
        logger.info(
            "skipped %d non-binary / MAF-bin / base annotation columns: %s",
            len(skipped),
            ", ".join(skipped[:20]),
        )
    if not keep:
        raise InputError("no binary (0/1) annotation columns found", ids=columns or [])
    out = table[["chrom", "pos"]].copy()
    for col in keep:
        out[str(col)] = table[col].astype(int).astype(bool)
    logger.info("read %d SNPs x %d binary annotations", len(out), len(keep))
    return out


def _read_bed(source: str | Path | pd.DataFrame, name: str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        df = source.iloc[:, :3].copy()
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"BED file for annotation {name!r} not found", path=str(path))
        df = pd.read_csv(path, sep="\t", header=None, comment="#", usecols=[0, 1, 2], dtype={0: str})
        df = df[~df[0].astype(str).str.startswith(("track", "browser"))]
    df.columns = ["chrom", "start", "end"]
    start, end = pd.to_numeric(df["start"], errors="coerce"), pd.to_numeric(df["end"], errors="coerce")
    bad = start.isna() | end.isna() | (start < 0) | (end < start)
    if bad.any():
        raise InputError(
            f"BED intervals of annotation {name!r} need 0 <= start <= end",
            path=str(source) if not isinstance(source, pd.DataFrame) else None,
            ids=[f"row {i + 1}" for i in np.flatnonzero(bad.to_numpy())],
        )
    return pd.DataFrame(
        {
            "chrom": harmonize_chrom(df["chrom"]).to_numpy(),
            "start": start.astype("int64").to_numpy(),
            "end": end.astype("int64").to_numpy(),
        }
    ).sort_values(["chrom", "start"], ignore_index=True)


def annotations_from_bed(
    positions_df: pd.DataFrame,
    beds: Mapping[str, str | Path | pd.DataFrame],
    *,
    genome: str | Path | Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Binary SNP annotations from BED interval files: SNP in class if it lies inside an interval.

    Parameters
    ----------
    positions_df
        SNP positions: indexed by SNP ID with ``chrom`` and 1-based ``pos`` (any column
        spelling accepted by :func:`snp_positions_frame`).
    beds
        Annotation name -> BED file (or a DataFrame of chrom, start, end; 0-based half-open).
    genome
        Optional build (``"hg19"``, ``"hg38"``, a ``.genome`` file or sizes) to check that the
        SNP positions fit it.

    Returns
    -------
    pandas.DataFrame
        Indexed by SNP ID: ``chrom``, ``pos`` and one boolean column per annotation.

    Raises
    ------
    MissingDependencyError
        If the ``bedtools`` program is not installed.
    InputError
        Bad BED rows, or SNP positions outside the chromosomes of ``genome``.
    """
    pos_df = snp_positions_frame(positions_df)
    if not beds:
        raise InputError("no BED annotation files given")
    if genome is not None:
        build, sizes = resolve_chrom_sizes(genome)
        check_build(pos_df, sizes, build=build)
    out = pos_df[["chrom", "pos"]].copy()
    with bedtools_session() as pybedtools:
        snp_bed = pybedtools.BedTool.from_dataframe(snps_to_bed_df(pos_df))
        for name in sorted(beds):
            intervals = _read_bed(beds[name], name)
            hits: set[str] = set()
            if len(intervals):
                bed = pybedtools.BedTool.from_dataframe(intervals)
                hit_bed = snp_bed.intersect(bed, u=True)
                hits = {f.name for f in hit_bed}
            out[str(name)] = out.index.isin(list(hits))
            logger.info(
                "annotation %r: %d intervals cover %d of %d SNPs", name, len(intervals), len(hits), len(out)
            )
    return out


def _is_binary(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return True
    return bool(pd.api.types.is_numeric_dtype(values) and values.notna().all() and values.isin([0, 1]).all())


def snp_annotation_enrichment(
    snps: Collection[str] | Mapping[str, Collection[str]],
    background: Collection[str],
    annotations_df: pd.DataFrame,
    *,
    classes: Sequence[str] | None = None,
    on_unknown: str = "drop",
    alternative: str = "greater",
) -> pd.DataFrame:
    """Fisher enrichment of SNP sets in binary SNP classes, BH across classes.

    Parameters
    ----------
    snps
        A SNP set (IDs) or a mapping name -> SNP set (e.g. robust tissue-associated SNP sets).
    background
        The background SNP IDs (every SNP the analysis saw); must contain every set.
    annotations_df
        SNP-indexed boolean (or 0/1) annotation columns (from :func:`read_snp_annotations` or
        :func:`annotations_from_bed`); ``chrom``/``pos`` columns are ignored.
    classes
        Annotation columns to test (default: every boolean or 0/1 column).
    on_unknown
        Background SNPs absent from the annotation table cannot be classed: ``"drop"`` (default;
        they are removed from the set and background, and their counts are logged and kept in
        ``result.attrs["ids"]``) or ``"error"``.
    alternative
        ``"greater"`` (enrichment, default), ``"less"`` or ``"two-sided"``.

    Returns
    -------
    pandas.DataFrame
        Table ``snp_annotation_enrichment``: ``set``, ``annotation``, ``overlap`` (set SNPs in the
        class), ``class_size`` (background SNPs in the class), ``n_set``, ``n_background``,
        ``odds_ratio``, ``p_value``, ``fdr`` (BH across classes within the set); sorted by set then
        p-value.

    Raises
    ------
    InputError
        Empty sets, sets not in the background, unknown SNPs with ``on_unknown="error"``, no
        annotation column, or a set with no SNP left.
    """
    if on_unknown not in ON_UNKNOWN:
        raise InputError(f"on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
    if annotations_df.index.has_duplicates:
        raise InputError(
            "annotation table has repeated SNP IDs",
            ids=annotations_df.index[annotations_df.index.duplicated()].unique(),
        )
    if classes is None:
        classes = [
            c for c in annotations_df.columns if c not in ("chrom", "pos") and _is_binary(annotations_df[c])
        ]
    missing = [c for c in classes if c not in annotations_df.columns]
    if missing:
        raise InputError("annotation classes not in the annotation table", ids=missing)
    if not classes:
        raise InputError("no binary (boolean or 0/1) annotation column to test")
    not_binary = [c for c in classes if not _is_binary(annotations_df[c])]
    if not_binary:
        raise InputError("annotation classes must be boolean or 0/1", ids=not_binary)
    sets = named_sets(snps)
    bg = as_id_index(background, what="background SNP set")
    set_ids = {k: as_id_index(v, what=f"SNP set {k!r}") for k, v in sets.items()}
    for name, ids in set_ids.items():
        check_subset(ids, bg, what=f"SNP set {name!r}")
    annot_index = annotations_df.index.astype(str)
    unknown = bg.difference(annot_index)
    if len(unknown):
        message = f"{len(unknown)} of {len(bg)} background SNPs are not in the annotation table"
        if on_unknown == "error":
            raise InputError(message, ids=unknown)
        logger.warning("%s; dropped from the set(s) and background: %s", message, ", ".join(unknown[:10]))
    used = bg.intersection(annot_index)
    if len(used) == 0:
        raise InputError("no background SNP is in the annotation table (SNP IDs of another kind?)", ids=bg)
    matrix = annotations_df.set_axis(annot_index).loc[used, list(classes)].to_numpy(dtype=bool)
    class_size = matrix.sum(axis=0).astype(np.int64)
    frames = []
    attrs: dict = {
        "ids": {
            "n_background_input": int(len(bg)),
            "n_background_used": int(len(used)),
            "n_unknown": int(len(unknown)),
            "unknown_examples": [str(s) for s in unknown[:20]],
        }
    }
    for name, ids in set_ids.items():
        in_set = used.isin(ids)
        n_set = int(in_set.sum())
        attrs["ids"][f"n_unknown_in_{name}"] = int(len(ids) - n_set)
        if n_set == 0:
            raise InputError(f"SNP set {name!r} has no SNP in the annotation table", ids=ids)
        overlap = matrix[in_set].sum(axis=0).astype(np.int64)
        orr, p = fisher_enrichment(
            overlap, class_size, n_set, background_size=len(used), alternative=alternative
        )
        df = pd.DataFrame(
            {
                "set": name,
                "annotation": [str(c) for c in classes],
                "overlap": overlap,
                "class_size": class_size,
                "n_set": n_set,
                "n_background": int(len(used)),
                "odds_ratio": orr,
                "p_value": p,
                "fdr": bh_fdr(p),
            }
        )
        logger.info(
            "SNP set %r: %d SNPs, %d classes at BH FDR < 0.1", name, n_set, int((df["fdr"] < 0.1).sum())
        )
        frames.append(df.sort_values(["p_value", "annotation"], kind="stable"))
    out = validate_table(pd.concat(frames, ignore_index=True), "snp_annotation_enrichment")
    out.attrs.update(attrs)
    return out
