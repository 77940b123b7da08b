"""Shared helpers for the io tests: a small telescoping data set and a full equality check.

This module holds no tests; the other ``tests/test_io*.py`` files import from it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tbeqtl.data import EQTLData


def make_data(seed: int = 0, *, n_genes: int = 20, n_individuals: int = 6, n_snps: int = 15) -> EQTLData:
    """Build a small telescoping data set with every annotation table filled and missing genotypes."""
    rng = np.random.default_rng(seed)
    individuals = [f"GTEX-IND{i}" for i in range(n_individuals)]
    samples, sample_map = [], {}
    for ind in individuals:
        for t in range(1 + i_mod(ind, 3)):
            sample = f"{ind}-{t:04d}-SM-{t}X"
            samples.append(sample)
            sample_map[sample] = ind
    genes = [f"ENSG{g:011d}.{1 + g % 3}" for g in range(n_genes)]
    counts = pd.DataFrame(rng.poisson(20, (n_genes, len(samples))), index=genes, columns=samples)
    geno = rng.integers(0, 3, (n_snps, n_individuals)).astype(float)
    geno[:, :3] = [0, 1, 2]  # no monomorphic SNP
    geno[0, 4] = np.nan
    geno[5, 1] = np.nan
    snps = [f"rs{1000 + s}" for s in range(n_snps)]
    genotype_df = pd.DataFrame(geno, index=snps, columns=individuals)
    sample_info = pd.DataFrame(
        {
            "tissue": rng.choice(["Lung", "Whole Blood", "Muscle - Skeletal"], len(samples)),
            "platform": rng.integers(0, 2, len(samples)),
            "rin": rng.uniform(5, 9, len(samples)).round(3),
        },
        index=samples,
    )
    individual_info = pd.DataFrame(
        {
            "sex": rng.choice([1, 2], n_individuals),
            "ancestry": rng.choice(["EUR", "AFR"], n_individuals),
        },
        index=individuals,
    )
    gene_info = pd.DataFrame(
        {
            "chrom": rng.choice(["chr1", "chr2"], n_genes),
            "start": np.arange(n_genes) * 10_000 + 1,
            "end": np.arange(n_genes) * 10_000 + 5_000,
            "strand": rng.choice(["+", "-"], n_genes),
            "gene_type": rng.choice(["protein_coding", "lincRNA"], n_genes),
            "gene_name": [f"GENE{g}" for g in range(n_genes)],
        },
        index=genes,
    )
    snp_info = pd.DataFrame(
        {
            "chrom": rng.choice(["chr1", "chr2"], n_snps),
            "pos": np.arange(n_snps) * 1_000 + 17,
            "ref": rng.choice(list("AC"), n_snps),
            "alt": rng.choice(list("GT"), n_snps),
        },
        index=snps,
    )
    return EQTLData.from_frames(
        counts,
        genotype_df,
        sample_map,
        sample_info_df=sample_info,
        individual_info_df=individual_info,
        gene_info_df=gene_info,
        snp_info_df=snp_info,
    )


def i_mod(text: str, k: int) -> int:
    """A deterministic small integer from an ID (number of extra samples)."""
    return sum(map(ord, text)) % k


def assert_dataset_equal(left: EQTLData, right: EQTLData) -> None:
    """Assert that two data sets are equal, annotation tables included."""
    assert left.equals(right)
    for name in ("sample_info_df", "individual_info_df", "gene_info_df", "snp_info_df"):
        pd.testing.assert_frame_equal(getattr(left, name), getattr(right, name), check_dtype=False, obj=name)
