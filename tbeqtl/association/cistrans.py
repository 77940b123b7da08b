"""The cis/trans split: MatrixEQTL's ``cisDist`` rule.

A SNP-gene pair is *cis* when the SNP and the gene are on the same chromosome (exact string
match of the ``chr`` values) and ``left - cis_dist <= pos <= right + cis_dist``, both ends
inclusive (``left``/``right`` are swapped when ``left > right``). A SNP or gene missing from the
position table, or with a missing or zero position, is never cis. Every other pair is *trans*.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["CisIndex", "build_cis_index"]

logger = logging.getLogger(__name__)


def _col(df: pd.DataFrame, names: tuple[str, ...], what: str) -> pd.Series:
    for name in names:
        if name in df.columns:
            return df[name]
    raise InputError(f"{what} table needs one of the columns", ids=names)


@dataclass(frozen=True)
class CisIndex:
    """Gene intervals sorted per chromosome, for fast cis-pair lookup.

    Parameters
    ----------
    snp_chrom
        Chromosome code per SNP (-1 = no usable position).
    snp_pos
        SNP positions (float).
    gene_order
        Gene indices sorted by chromosome code then window start.
    win_lo, win_hi
        ``left - cis_dist`` and ``right + cis_dist`` per gene, in ``gene_order``.
    chrom_bounds
        For chromosome code c, ``gene_order[chrom_bounds[c]:chrom_bounds[c + 1]]`` are its genes.
    max_span
        Largest ``win_hi - win_lo``.
    n_snps_unplaced, n_genes_unplaced
        How many SNPs/genes have no usable position (never cis).
    """

    snp_chrom: np.ndarray
    snp_pos: np.ndarray
    gene_order: np.ndarray
    win_lo: np.ndarray
    win_hi: np.ndarray
    chrom_bounds: np.ndarray
    max_span: float
    n_snps_unplaced: int
    n_genes_unplaced: int

    def pairs(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """All cis pairs of SNPs ``start:stop``.

        Parameters
        ----------
        start, stop
            SNP index range (a block).

        Returns
        -------
        snp_idx, gene_idx : numpy.ndarray
            Absolute SNP and gene indices of the cis pairs, sorted by SNP then gene.
        """
        chrom = self.snp_chrom[start:stop]
        pos = self.snp_pos[start:stop]
        ok = chrom >= 0
        local = np.flatnonzero(ok)
        if local.size == 0 or self.gene_order.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        c = chrom[local]
        p = pos[local]
        # within each chromosome, genes are sorted by win_lo; candidates have win_lo <= p
        # and win_lo >= p - max_span
        hi = np.empty(local.size, np.int64)
        lo = np.empty(local.size, np.int64)
        for code in np.unique(c):
            sel = c == code
            b0, b1 = self.chrom_bounds[code], self.chrom_bounds[code + 1]
            starts = self.win_lo[b0:b1]
            hi[sel] = b0 + np.searchsorted(starts, p[sel], side="right")
            lo[sel] = b0 + np.searchsorted(starts, p[sel] - self.max_span, side="left")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        rep = np.repeat(np.arange(local.size), counts)
        offs = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        slot = lo[rep] + offs
        keep = self.win_hi[slot] >= p[rep]
        snp_idx = (local[rep[keep]] + start).astype(np.int64)
        gene_idx = self.gene_order[slot[keep]].astype(np.int64)
        order = np.lexsort((gene_idx, snp_idx))
        return snp_idx[order], gene_idx[order]


def build_cis_index(
    snps: pd.Index,
    genes: pd.Index,
    *,
    snp_pos_df: pd.DataFrame,
    gene_pos_df: pd.DataFrame,
    cis_dist: float = 1e6,
) -> CisIndex:
    """Index SNP and gene positions for the cis rule.

    Parameters
    ----------
    snps, genes
        The SNP and gene IDs tested, in the order of the genotype and expression rows.
    snp_pos_df
        Indexed by SNP ID, with ``chrom`` (or ``chr``) and ``pos``.
    gene_pos_df
        Indexed by gene ID, with ``chrom`` (or ``chr``) and ``start``/``end`` (or ``left``/``right``,
        or ``s1``/``s2`` as in MatrixEQTL's geneloc files).
    cis_dist
        The cis window (bp) on each side of the gene (MatrixEQTL ``cisDist``).

    Returns
    -------
    CisIndex
        The index; unplaced SNPs and genes are counted and logged.
    """
    if cis_dist < 0:
        raise InputError(f"cis_dist must be >= 0, got {cis_dist}")
    s_chr = _col(snp_pos_df, ("chrom", "chr"), "SNP position").astype(str)
    s_pos = pd.to_numeric(_col(snp_pos_df, ("pos",), "SNP position"), errors="coerce")
    g_chr = _col(gene_pos_df, ("chrom", "chr"), "gene position").astype(str)
    g_left = pd.to_numeric(_col(gene_pos_df, ("start", "left", "s1"), "gene position"), errors="coerce")
    g_right = pd.to_numeric(_col(gene_pos_df, ("end", "right", "s2"), "gene position"), errors="coerce")
    if snp_pos_df.index.has_duplicates:
        raise InputError(
            "duplicate SNP IDs in the SNP position table",
            ids=snp_pos_df.index[snp_pos_df.index.duplicated()].unique(),
        )
    if gene_pos_df.index.has_duplicates:
        raise InputError(
            "duplicate gene IDs in the gene position table",
            ids=gene_pos_df.index[gene_pos_df.index.duplicated()].unique(),
        )
    s_chr = s_chr.reindex(snps)
    s_pos = s_pos.reindex(snps)
    g_chr = g_chr.reindex(genes)
    g_left = g_left.reindex(genes)
    g_right = g_right.reindex(genes)
    snp_ok = s_chr.notna().to_numpy() & s_pos.notna().to_numpy() & (s_pos.fillna(0).to_numpy() != 0)
    gene_ok = (
        g_chr.notna().to_numpy()
        & g_left.notna().to_numpy()
        & g_right.notna().to_numpy()
        & (g_left.fillna(0).to_numpy() != 0)
        & (g_right.fillna(0).to_numpy() != 0)
    )
    n_snp_bad = int((~snp_ok).sum())
    n_gene_bad = int((~gene_ok).sum())
    if n_snp_bad:
        logger.warning(
            "%d SNP(s) without a usable position are never cis (MatrixEQTL's rule): %s",
            n_snp_bad,
            ", ".join(map(str, snps[~snp_ok][:10])),
        )
    if n_gene_bad:
        logger.warning(
            "%d gene(s) without a usable position are never cis (MatrixEQTL's rule): %s",
            n_gene_bad,
            ", ".join(map(str, genes[~gene_ok][:10])),
        )
    chroms = pd.unique(pd.concat([s_chr[snp_ok], g_chr[gene_ok]]).astype(str))
    code_of = {c: i for i, c in enumerate(sorted(chroms))}
    snp_chrom = np.array(
        [code_of[c] if ok else -1 for c, ok in zip(s_chr.astype(str), snp_ok, strict=True)], dtype=np.int64
    )
    gene_chrom = np.array(
        [code_of[c] if ok else -1 for c, ok in zip(g_chr.astype(str), gene_ok, strict=True)], dtype=np.int64
    )
    left = np.minimum(g_left.to_numpy(float), g_right.to_numpy(float))
    right = np.maximum(g_left.to_numpy(float), g_right.to_numpy(float))
    placed = np.flatnonzero(gene_ok)
    lo_all = left - cis_dist
    hi_all = right + cis_dist
    order = placed[np.lexsort((lo_all[placed], gene_chrom[placed]))]
    bounds = np.searchsorted(gene_chrom[order], np.arange(len(code_of) + 1), side="left")
    span = float((hi_all[order] - lo_all[order]).max()) if order.size else 0.0
    return CisIndex(
        snp_chrom=snp_chrom,
        snp_pos=s_pos.to_numpy(float),
        gene_order=order.astype(np.int64),
        win_lo=lo_all[order],
        win_hi=hi_all[order],
        chrom_bounds=bounds.astype(np.int64),
        max_span=span,
        n_snps_unplaced=n_snp_bad,
        n_genes_unplaced=n_gene_bad,
    )
