"""Planted eQTLs and covariate effects for the GTEx-like simulator.

Effects are multiplicative on a gene's multinomial rate: for every sample ``l`` of individual
``i``, ``pi_lg`` is multiplied by ``exp(effect * (y_ij - mean_j y_j))`` for a planted eQTL
(SNP ``j``, gene ``g``) and by ``exp(b_g * (c - mean c))`` for a covariate ``c`` with an effect
``b_g`` on gene ``g``; rates are then renormalised per sample (see
:func:`tbeqtl.simulate.draw.draw_counts`). ``effect`` is therefore the natural-log fold change of
the gene's expression share per alternative allele.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import InputError
from ..tblda.ranking import snp_maf_residual_scores

__all__ = [
    "choose_cis_eqtls",
    "choose_trans_eqtls",
    "draw_covariate_effects",
    "eqtl_log_multiplier",
    "snp_topic_scores",
    "gene_topic_scores",
]

logger = logging.getLogger(__name__)


def _signed_effects(rng: np.random.Generator, n: int, effect_range: tuple[float, float]) -> np.ndarray:
    magnitude = rng.uniform(effect_range[0], effect_range[1], size=n)
    return np.where(rng.random(n) < 0.5, -magnitude, magnitude)


def snp_topic_scores(lam: np.ndarray, coded_maf: np.ndarray) -> np.ndarray:
    """Per-topic SNP scores: |residual| of ``lambda_.k`` regressed (OLS with intercept) on the coded MAF.

    This is the paper's SNP ranking applied to the true ``Lambda``: it calls
    :func:`tbeqtl.tblda.ranking.snp_maf_residual_scores` on arrays.

    Parameters
    ----------
    lam
        S x K SNP topics.
    coded_maf
        Length-``S`` mean dosage / 2.

    Returns
    -------
    numpy.ndarray
        S x K non-negative scores.
    """
    lam_df = pd.DataFrame(np.asarray(lam, dtype=np.float64))
    maf_s = pd.Series(np.asarray(coded_maf, dtype=np.float64), index=lam_df.index)
    return snp_maf_residual_scores(lam_df, maf_s).to_numpy()


def gene_topic_scores(psi: np.ndarray) -> np.ndarray:
    """Per-topic gene scores: mean over the other topics of ``|psi_kg - psi_k'g|``.

    This is what the 2-Wasserstein gene ranking (issue 4) reduces to when the posterior
    marginals are near point masses.

    Parameters
    ----------
    psi
        G x K gene topics.

    Returns
    -------
    numpy.ndarray
        G x K non-negative scores.
    """
    n_topics = psi.shape[1]
    if n_topics == 1:
        return psi.copy()
    return np.abs(psi[:, :, None] - psi[:, None, :]).sum(axis=2) / (n_topics - 1)


def choose_cis_eqtls(
    rng: np.random.Generator,
    n_cis: int,
    *,
    gene_info_df: pd.DataFrame,
    snp_info_df: pd.DataFrame,
    maf: np.ndarray,
    window: float,
    effect_range: tuple[float, float],
    min_maf: float,
    used_genes: set[int],
) -> list[tuple[int, int, float]]:
    """Plant cis-eQTLs: a random gene and a random SNP within ``window`` bp of its TSS (same chromosome).

    A SNP within ``window`` of the TSS is within ``window`` of the gene body too, so the pair is
    cis under both the tensorQTL (TSS) and MatrixEQTL (gene body) rules.

    Parameters
    ----------
    rng
        Random generator.
    n_cis
        Number of cis-eQTLs.
    gene_info_df, snp_info_df
        Annotation (rows in the order of the arrays).
    maf
        Minor allele frequency of each SNP in the complete genotypes.
    window
        Maximum SNP-TSS distance (bp).
    effect_range
        Range of ``|effect|``; signs are random.
    min_maf
        Only SNPs with at least this MAF are used.
    used_genes
        Gene indices already carrying a planted eQTL (updated in place).

    Returns
    -------
    list of (snp index, gene index, effect)
        The planted pairs.

    Raises
    ------
    InputError
        If fewer than ``n_cis`` genes have a usable SNP in their window.
    """
    if n_cis == 0:
        return []
    tss = np.where(
        gene_info_df["strand"].to_numpy() == "+",
        gene_info_df["start"].to_numpy(),
        gene_info_df["end"].to_numpy(),
    )
    gene_chrom = gene_info_df["chrom"].to_numpy()
    snp_chrom = snp_info_df["chrom"].to_numpy()
    snp_pos = snp_info_df["pos"].to_numpy()
    usable = maf >= min_maf
    out: list[tuple[int, int, float]] = []
    used_snps: set[int] = set()
    for g in rng.permutation(len(gene_info_df)):
        if len(out) == n_cis:
            break
        if g in used_genes:
            continue
        cand = np.flatnonzero((snp_chrom == gene_chrom[g]) & (np.abs(snp_pos - tss[g]) <= window) & usable)
        cand = np.array([j for j in cand if j not in used_snps], dtype=np.int64)
        if cand.size == 0:
            continue
        j = int(rng.choice(cand))
        used_snps.add(j)
        used_genes.add(int(g))
        out.append((j, int(g), float(_signed_effects(rng, 1, effect_range)[0])))
    if len(out) < n_cis:
        raise InputError(
            f"cannot plant {n_cis} cis-eQTLs: only {len(out)} genes have a SNP with MAF >= "
            f"{min_maf} within {window:g} bp of their TSS; lower n_cis or raise n_snps"
        )
    return out


def choose_trans_eqtls(
    rng: np.random.Generator,
    n_trans: int,
    *,
    psi: np.ndarray,
    lam: np.ndarray,
    coded_maf: np.ndarray,
    maf: np.ndarray,
    gene_chrom: np.ndarray,
    snp_chrom: np.ndarray,
    top_fraction: float,
    effect_range: tuple[float, float],
    min_maf: float,
    used_genes: set[int],
    used_snps: set[int],
) -> list[tuple[int, int, float, int]]:
    """Plant trans-eQTLs between a topic's top SNPs and the same topic's top genes on other chromosomes.

    Topics are visited in turn (``k = 0, 1, ..., K-1, 0, ...``). For topic ``k`` the SNP is drawn
    from the ``top_fraction`` of SNPs with the highest :func:`snp_topic_scores` (MAF >= ``min_maf``)
    and the gene from the ``top_fraction`` of genes with the highest :func:`gene_topic_scores`
    whose weight in topic ``k`` is above their mean over topics (genes the topic uses, not
    depleted ones), on a different chromosome than the SNP. So factor-restricted mapping (issue 5) tests these
    pairs when the fit recovers the topic.

    Parameters
    ----------
    rng
        Random generator.
    n_trans
        Number of trans-eQTLs.
    psi, lam
        G x K gene topics and S x K SNP topics.
    coded_maf, maf
        Mean dosage / 2 and minor allele frequency of each SNP.
    gene_chrom, snp_chrom
        Chromosome of each gene / SNP.
    top_fraction
        Fraction of top-scoring features per topic that are candidates.
    effect_range
        Range of ``|effect|``; signs are random.
    min_maf
        Minimum MAF of a planted SNP.
    used_genes, used_snps
        Indices already used by other eQTLs (updated in place).

    Returns
    -------
    list of (snp index, gene index, effect, topic)
        The planted pairs.

    Raises
    ------
    InputError
        If the genes and SNPs are on one chromosome only, or a topic runs out of candidates.
    """
    if n_trans == 0:
        return []
    if len(set(gene_chrom) | set(snp_chrom)) < 2:
        raise InputError("trans-eQTLs need at least two chromosomes (n_chromosomes >= 2)")
    n_snps, n_topics = lam.shape
    n_genes = psi.shape[0]
    snp_scores = snp_topic_scores(lam, coded_maf)
    gene_scores = gene_topic_scores(psi)
    psi_mean = psi.mean(axis=1)
    n_top_snps = max(1, int(np.ceil(top_fraction * n_snps)))
    n_top_genes = max(1, int(np.ceil(top_fraction * n_genes)))
    out: list[tuple[int, int, float, int]] = []
    offset = int(rng.integers(n_topics))
    for i in range(n_trans):
        k = (offset + i) % n_topics
        top_snps = np.argsort(-snp_scores[:, k], kind="stable")[:n_top_snps]
        top_genes = np.argsort(-gene_scores[:, k], kind="stable")[:n_top_genes]
        snp_cand = [j for j in top_snps if maf[j] >= min_maf and j not in used_snps]
        gene_cand = [g for g in top_genes if g not in used_genes and psi[g, k] > psi_mean[g]]
        gene_cand_chrom = gene_chrom[np.asarray(gene_cand, dtype=np.int64)]
        pair = None
        for j in rng.permutation(np.asarray(snp_cand, dtype=np.int64)):
            genes_ok = [g for g, c in zip(gene_cand, gene_cand_chrom, strict=True) if c != snp_chrom[j]]
            if genes_ok:
                pair = (j, genes_ok[int(rng.integers(len(genes_ok)))])
                break
        if pair is None:
            raise InputError(
                f"cannot plant trans-eQTL {i + 1} of {n_trans} in topic {k}: no unused top-"
                f"{top_fraction:.0%} SNP and gene on different chromosomes; lower n_trans or "
                "raise trans_top_fraction"
            )
        j, g = pair
        used_snps.add(int(j))
        used_genes.add(int(g))
        out.append((int(j), int(g), float(_signed_effects(rng, 1, effect_range)[0]), k))
    return out


def draw_covariate_effects(
    rng: np.random.Generator, n_genes: int, *, fraction: float, effect_range: tuple[float, float]
) -> np.ndarray:
    """Draw per-gene covariate effects: a random ``fraction`` of genes gets ``±U(effect_range)``, the rest 0.

    Parameters
    ----------
    rng
        Random generator.
    n_genes
        ``G``.
    fraction
        Fraction of genes with an effect.
    effect_range
        Range of ``|b_g|`` (log fold change per unit of the covariate).

    Returns
    -------
    numpy.ndarray
        Length-``G`` effects.
    """
    effects = np.zeros(n_genes)
    n_hit = int(round(fraction * n_genes))
    if n_hit:
        hit = rng.choice(n_genes, size=n_hit, replace=False)
        effects[hit] = _signed_effects(rng, n_hit, effect_range)
    return effects


def eqtl_log_multiplier(
    genotypes: np.ndarray,
    individual_index: np.ndarray,
    *,
    n_genes: int,
    eqtls: list[tuple[int, int, float]],
) -> np.ndarray:
    """Log rate multipliers ``m_lg = sum over eQTLs (j, g) of effect * (y_j,i(l) - mean_j)``.

    Parameters
    ----------
    genotypes
        S x N complete dosages.
    individual_index
        Individual of each sample (length ``L``).
    n_genes
        ``G``.
    eqtls
        (SNP index, gene index, effect) triples.

    Returns
    -------
    numpy.ndarray
        L x G log multipliers.
    """
    out = np.zeros((individual_index.size, n_genes))
    for j, g, effect in eqtls:
        dosage = genotypes[j]
        out[:, g] += effect * (dosage - dosage.mean())[individual_index]
    return out
