"""The paper's gene filter: autosomal protein-coding and lincRNA genes expressed in some tissue.

Extended Methods: "All gencode v26 autosomal lincRNA and protein-coding genes from the 5,781
samples with genotypes were considered. We retained the 19,534 autosomal genes with a median
... read count of at least five in at least one tissue." Here:

1. type and autosome: genes of the counts whose annotation (GTF/BED/TSV) has a ``gene_type``
   in ``gene_types`` (default ``protein_coding``, ``lincRNA`` and ``lncRNA``: GENCODE >= 31
   merged lincRNA into lncRNA, which there also holds antisense and other long non-coding
   genes) on chr1..chr22; genes absent from the annotation are dropped;
2. expression: for each tissue, the median raw count over the kept samples of that tissue
   (samples whose individual is genotyped); a gene is kept when any tissue's median is at
   least ``min_median_count``.

Count IDs are matched to the annotation exactly, then, for the rest, without their version
(``ENSG00000227232.5`` matches ``ENSG00000227232.4``) when that is unambiguous.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import normalize_gene_id

__all__ = ["AUTOSOMES", "annotate_genes", "chrom_key", "expressed_genes", "select_gene_types"]

logger = logging.getLogger(__name__)

#: Harmonised autosome names.
AUTOSOMES = frozenset(f"chr{i}" for i in range(1, 23))


def chrom_key(chrom: str) -> tuple[int, str]:
    """Natural sort key of a harmonised chromosome name (chr2 before chr10, then X, Y, M)."""
    bare = str(chrom)[3:] if str(chrom).lower().startswith("chr") else str(chrom)
    return (int(bare), "") if bare.isdigit() else (10_000, bare)


def annotate_genes(gene_ids: pd.Index, annotation_df: pd.DataFrame) -> pd.DataFrame:
    """Annotation rows for the count matrix's genes (exact ID, else unversioned ID).

    Parameters
    ----------
    gene_ids
        Gene IDs of the counts.
    annotation_df
        :func:`tbeqtl.io.read_gene_annotation` output, indexed by gene ID.

    Returns
    -------
    pandas.DataFrame
        Indexed by the count IDs that were found; columns of ``annotation_df``.
    """
    ids = pd.Index(gene_ids.astype(str))
    exact = ids[ids.isin(annotation_df.index)]
    rest = ids.difference(exact, sort=False)
    out = [annotation_df.loc[exact]]
    if len(rest):
        bare = pd.Series(annotation_df.index, index=[normalize_gene_id(g) for g in annotation_df.index])
        bare = bare[~bare.index.duplicated(keep=False)]
        wanted = pd.Series(rest, index=[normalize_gene_id(g) for g in rest])
        wanted = wanted[~wanted.index.duplicated(keep=False)]
        common = wanted.index.intersection(bare.index)
        if len(common):
            logger.info("%d genes matched to the annotation without their version", len(common))
            out.append(annotation_df.loc[bare[common].to_numpy()].set_axis(wanted[common].to_numpy(), axis=0))
    df = pd.concat(out)
    df.index.name = "gene"
    return df.loc[ids[ids.isin(df.index)]]


def select_gene_types(
    gene_info_df: pd.DataFrame, *, gene_types: Sequence[str], autosomes_only: bool
) -> pd.DataFrame:
    """Keep genes of the wanted types on the autosomes.

    Parameters
    ----------
    gene_info_df
        Annotation of the count genes (``chrom``, ``gene_type``).
    gene_types
        Types kept; empty keeps every type.
    autosomes_only
        Keep chr1..chr22 only.

    Returns
    -------
    pandas.DataFrame
        The kept rows.

    Raises
    ------
    InputError
        Types are requested but the annotation has no ``gene_type`` (e.g. the GTEx v8 GTF
        shipped with rnanorm).
    """
    keep = np.ones(len(gene_info_df), dtype=bool)
    if gene_types:
        has_column = "gene_type" in gene_info_df.columns
        if not has_column or (len(gene_info_df) > 0 and gene_info_df["gene_type"].isna().all()):
            raise InputError(
                "the gene annotation has no gene_type (gene_type/gene_biotype); use an annotation with "
                "types or --gene-types any"
            )
        keep &= gene_info_df["gene_type"].isin(list(gene_types)).to_numpy()
    if autosomes_only:
        keep &= gene_info_df["chrom"].isin(AUTOSOMES).to_numpy()
    return gene_info_df.loc[keep]


def expressed_genes(counts_df: pd.DataFrame, tissue_s: pd.Series, *, min_median_count: float) -> pd.Index:
    """Genes whose median count in at least one tissue is at least ``min_median_count``.

    Parameters
    ----------
    counts_df
        Genes x samples raw counts (the paper's ``x``) of the kept samples.
    tissue_s
        Tissue of each sample (indexed by sample).
    min_median_count
        The threshold (paper: 5).

    Returns
    -------
    pandas.Index
        The kept genes, in ``counts_df`` order.
    """
    tissues = tissue_s.reindex(counts_df.columns).astype(str).to_numpy()
    values = counts_df.to_numpy()
    keep = np.zeros(len(counts_df), dtype=bool)
    for tissue in np.unique(tissues):
        medians = np.median(values[:, tissues == tissue], axis=1)
        keep |= medians >= min_median_count
    return counts_df.index[keep]
