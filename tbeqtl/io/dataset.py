"""Write and read a whole telescoping data set in real file formats.

On-disk layout of ``write_dataset(data, out_dir)`` (the simulator's output, and what
``read_dataset`` expects)::

    counts.gct.gz              GTEx GCT v1.2, genes x samples raw counts (Description = gene_name)
    counts.tsv.gz              the same counts as a plain TSV (gene_id column, samples header)
    sample_attributes.tsv      GTEx style: SAMPID, SMTSD (tissue), then the other sample columns
    subject_attributes.tsv     GTEx style: SUBJID, SEX, then the other individual columns
    sample_map.tsv             columns sample, individual
    genotypes.bed/.bim/.fam    PLINK 1 hard calls (dosage = number of A1 = alt alleles), NaN kept as missing
    genotypes.dosage.tsv.gz    SNPs x individuals dosages (snp_id column, NA missing), exact values
    genes.bed                  gene annotation (BED, 0-based starts) with gene_type and gene_name

PLINK 1 holds hard calls only: when dosages are fractional the ``.bed`` set is not written
(logged) and the dosage TSV is the genotype source.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import EQTLData
from ..errors import InputError
from .annotation import read_gene_annotation, write_gene_bed
from .counts import read_counts, write_counts
from .dosage import read_dosage_tsv, write_dosage_tsv
from .gct import read_gct, write_gct
from .gtex import (
    gtex_donor_ids,
    read_gtex_sample_attributes,
    read_gtex_subject_phenotypes,
    write_gtex_sample_attributes,
    write_gtex_subject_phenotypes,
)
from .plink import read_bim, read_plink, write_plink
from .sample_map import read_sample_map, write_sample_map

__all__ = ["DATASET_FILES", "read_dataset", "write_dataset"]

logger = logging.getLogger(__name__)

#: File names of the data-set layout.
DATASET_FILES = {
    "counts_gct": "counts.gct.gz",
    "counts_tsv": "counts.tsv.gz",
    "sample_attributes": "sample_attributes.tsv",
    "subject_attributes": "subject_attributes.tsv",
    "sample_map": "sample_map.tsv",
    "plink_prefix": "genotypes",
    "dosage": "genotypes.dosage.tsv.gz",
    "genes": "genes.bed",
}


def write_dataset(data: EQTLData, out_dir: str | Path) -> Path:
    """Write an :class:`~tbeqtl.data.EQTLData` in real formats (GCT, GTEx tables, PLINK, BED).

    Parameters
    ----------
    data
        The data set: counts ``x`` (genes x samples), genotypes ``y`` (SNPs x individuals),
        the sample -> individual map and the annotation tables.
    out_dir
        Output folder (created); every file is written atomically.

    Returns
    -------
    pathlib.Path
        The output folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = None
    if "gene_name" in data.gene_info_df.columns:
        names = data.gene_info_df["gene_name"]
    write_gct(data.counts_df, out / DATASET_FILES["counts_gct"], description=names)
    write_counts(data.counts_df, out / DATASET_FILES["counts_tsv"])
    write_gtex_sample_attributes(
        data.sample_info_df.reindex(data.samples), out / DATASET_FILES["sample_attributes"]
    )
    write_gtex_subject_phenotypes(
        data.individual_info_df.reindex(data.individuals), out / DATASET_FILES["subject_attributes"]
    )
    write_sample_map(data.sample_map_s, out / DATASET_FILES["sample_map"])
    write_dosage_tsv(data.genotype_df, out / DATASET_FILES["dosage"])
    values = data.genotype_df.to_numpy()
    if np.all(np.isnan(values) | np.isin(values, (0.0, 1.0, 2.0))):
        write_plink(
            data.genotype_df,
            out / DATASET_FILES["plink_prefix"],
            snp_info_df=data.snp_info_df,
            individual_info_df=data.individual_info_df,
        )
    else:
        logger.info(
            "genotypes are fractional dosages: PLINK 1 files are not written, use %s", DATASET_FILES["dosage"]
        )
    if len(data.gene_info_df.columns) and "chrom" in data.gene_info_df.columns:
        write_gene_bed(data.gene_info_df, out / DATASET_FILES["genes"])
    logger.info(
        "wrote data set (%d genes x %d samples, %d SNPs x %d individuals) to %s",
        data.counts_df.shape[0],
        data.counts_df.shape[1],
        data.genotype_df.shape[0],
        data.genotype_df.shape[1],
        out,
    )
    return out


def _snp_info_from_bim(bim_df: pd.DataFrame) -> pd.DataFrame | None:
    """Return the SNP table of a ``.bim``; placeholders for unknown values (chrom/pos/allele 0) become NaN."""
    info = bim_df.copy()
    if (info["cm"] == 0).all():
        info = info.drop(columns=["cm"])
    unplaced = (info["chrom"] == "chr0") & (info["pos"] == 0)
    if unplaced.all():
        return None
    if unplaced.any():
        info["pos"] = info["pos"].astype(float)
        info.loc[unplaced, ["chrom", "pos"]] = np.nan
    for allele in ("ref", "alt"):
        if info[allele].eq("0").all():
            info = info.drop(columns=[allele])
        else:
            info[allele] = info[allele].where(info[allele] != "0")
    return info


def read_dataset(
    data_dir: str | Path,
    *,
    genotypes: str = "auto",
    counts: str = "auto",
    drop_unmatched: bool = False,
    drop_uninformative: bool = False,
    non_integer: str = "error",
) -> EQTLData:
    """Read a data set written by :func:`write_dataset` (or laid out the same way by hand).

    Parameters
    ----------
    data_dir
        The folder.
    genotypes
        ``"auto"`` (the dosage TSV when present, else PLINK), ``"plink"`` or ``"dosage"``.
    counts
        ``"auto"`` (GCT when present, else the TSV), ``"gct"`` or ``"tsv"``.
    drop_unmatched, drop_uninformative, non_integer
        Passed to :meth:`EQTLData.from_frames`. ``drop_uninformative`` is off by default so
        that a written-then-read data set is identical to the original.

    Returns
    -------
    EQTLData
        The aligned data set.

    Raises
    ------
    InputError
        Missing files, or any problem found by the readers and by
        :meth:`EQTLData.from_frames` (named IDs and files).
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise InputError("data set folder does not exist", path=str(folder))

    def file(key: str) -> Path:
        return folder / DATASET_FILES[key]

    gct, tsv = file("counts_gct"), file("counts_tsv")
    if counts == "gct" or (counts == "auto" and gct.exists()):
        counts_df = read_gct(gct, non_integer=non_integer)
    elif counts in {"tsv", "auto"}:
        if not tsv.exists():
            raise InputError(
                f"data set has no counts ({DATASET_FILES['counts_gct']} or {DATASET_FILES['counts_tsv']})",
                path=str(folder),
            )
        counts_df = read_counts(tsv, non_integer=non_integer)
    else:
        raise InputError(f"counts must be auto, gct or tsv, not {counts!r}")

    dosage = file("dosage")
    bed = Path(f"{file('plink_prefix')}.bed")
    snp_info_df = None
    if genotypes == "dosage" or (genotypes == "auto" and dosage.exists()):
        genotype_df = read_dosage_tsv(dosage)
        bim = Path(f"{file('plink_prefix')}.bim")
        if bim.exists():
            snp_info_df = _snp_info_from_bim(read_bim(bim))
    elif genotypes in {"plink", "auto"}:
        if not bed.exists():
            raise InputError(
                "data set has no genotypes (genotypes.dosage.tsv.gz or genotypes.bed)", path=str(folder)
            )
        plink = read_plink(file("plink_prefix"))
        genotype_df = plink.genotype_df
        snp_info_df = _snp_info_from_bim(plink.snp_info_df)
    else:
        raise InputError(f"genotypes must be auto, plink or dosage, not {genotypes!r}")

    if file("sample_map").exists():
        sample_map_s = read_sample_map(file("sample_map"))
    else:
        logger.info(
            "no %s: deriving individuals from sample IDs by the GTEx rule", DATASET_FILES["sample_map"]
        )
        sample_map_s = gtex_donor_ids(counts_df.columns)

    sample_info_df = None
    if file("sample_attributes").exists():
        sample_info_df = read_gtex_sample_attributes(file("sample_attributes"), donor_rule=False)
    individual_info_df = None
    if file("subject_attributes").exists():
        individual_info_df = read_gtex_subject_phenotypes(file("subject_attributes"))
    gene_info_df = read_gene_annotation(file("genes")) if file("genes").exists() else None
    if (
        gene_info_df is not None
        and "gene_type" in gene_info_df.columns
        and gene_info_df["gene_type"].isna().all()
    ):
        gene_info_df = gene_info_df.drop(columns=["gene_type"])

    if sample_info_df is not None and len(sample_info_df.columns) == 0:
        sample_info_df = None
    if individual_info_df is not None and len(individual_info_df.columns) == 0:
        individual_info_df = None
    return EQTLData.from_frames(
        counts_df,
        genotype_df,
        sample_map_s,
        sample_info_df=sample_info_df,
        individual_info_df=individual_info_df,
        gene_info_df=gene_info_df,
        snp_info_df=snp_info_df,
        non_integer=non_integer,
        drop_unmatched=drop_unmatched,
        drop_uninformative=drop_uninformative,
    )
