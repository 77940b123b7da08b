"""Genome layout and identifiers for simulated data sets.

Draws GTEx-like IDs (donors ``GTEX-1A2B3``, samples ``GTEX-1A2B3-0126-SM-4C5D6`` so that the
GTEx donor rule -- the first two dash-separated fields -- maps a sample back to its donor),
GENCODE-like gene annotation (IDs ``ENSG...``, ``protein_coding``/``lincRNA`` types,
start/end/strand on ``chr1 ... chrN``) and SNP positions sorted per chromosome with ref/alt
alleles and GTEx v8 variant IDs (``chr1_12345_A_G_b38``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "CELL_TYPE_NAMES",
    "CHROM_LENGTHS_B38",
    "TISSUE_NAMES",
    "draw_gene_info",
    "draw_individual_ids",
    "draw_sample_ids",
    "draw_snp_info",
]

#: GRCh38 autosome lengths (bp), chr1 ... chr22.
CHROM_LENGTHS_B38 = (
    248_956_422,
    242_193_529,
    198_295_559,
    190_214_555,
    181_538_259,
    170_805_979,
    159_345_973,
    145_138_636,
    138_394_717,
    133_797_422,
    135_086_622,
    133_275_309,
    114_364_328,
    107_043_718,
    101_991_189,
    90_338_345,
    83_257_441,
    80_373_285,
    58_617_616,
    64_444_167,
    46_709_983,
    50_818_468,
)

#: GTEx v8 tissue names (``SMTSD``), roughly in decreasing order of GTEx sample size.
TISSUE_NAMES = (
    "Muscle - Skeletal",
    "Whole Blood",
    "Skin - Sun Exposed (Lower leg)",
    "Adipose - Subcutaneous",
    "Artery - Tibial",
    "Thyroid",
    "Nerve - Tibial",
    "Skin - Not Sun Exposed (Suprapubic)",
    "Lung",
    "Esophagus - Mucosa",
    "Cells - Cultured fibroblasts",
    "Esophagus - Muscularis",
    "Breast - Mammary Tissue",
    "Adipose - Visceral (Omentum)",
    "Heart - Left Ventricle",
    "Artery - Aorta",
    "Colon - Transverse",
    "Testis",
    "Stomach",
    "Pancreas",
    "Heart - Atrial Appendage",
    "Esophagus - Gastroesophageal Junction",
    "Colon - Sigmoid",
    "Pituitary",
    "Spleen",
    "Prostate",
    "Adrenal Gland",
    "Liver",
    "Ovary",
    "Brain - Cerebellum",
    "Artery - Coronary",
    "Uterus",
    "Vagina",
    "Minor Salivary Gland",
    "Brain - Caudate (basal ganglia)",
    "Brain - Cortex",
    "Small Intestine - Terminal Ileum",
    "Brain - Nucleus accumbens (basal ganglia)",
    "Brain - Frontal Cortex (BA9)",
    "Cells - EBV-transformed lymphocytes",
    "Brain - Hypothalamus",
    "Brain - Putamen (basal ganglia)",
    "Brain - Cerebellar Hemisphere",
    "Brain - Hippocampus",
    "Brain - Anterior cingulate cortex (BA24)",
    "Brain - Spinal cord (cervical c-1)",
    "Brain - Amygdala",
    "Brain - Substantia nigra",
    "Kidney - Cortex",
)

#: Cell-type names for the single-cell variant.
CELL_TYPE_NAMES = (
    "CD4+ T cell",
    "CD14+ monocyte",
    "B cell",
    "CD8+ T cell",
    "NK cell",
    "FCGR3A+ monocyte",
    "Dendritic cell",
    "Megakaryocyte",
    "Plasmacytoid dendritic cell",
    "Regulatory T cell",
)

_ALNUM = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_BASES = np.array(list("ACGT"))


def _random_codes(
    rng: np.random.Generator, n: int, length: int, *, exclude: set[str] | None = None
) -> list[str]:
    """Draw ``n`` distinct upper-case alphanumeric codes of ``length`` characters."""
    seen = set() if exclude is None else set(exclude)
    out: list[str] = []
    while len(out) < n:
        block = rng.choice(_ALNUM, size=(2 * (n - len(out)) + 8, length))
        for row in block:
            code = "".join(row)
            if code not in seen:
                seen.add(code)
                out.append(code)
                if len(out) == n:
                    break
    return out


def draw_individual_ids(rng: np.random.Generator, n: int, *, single_cell: bool = False) -> list[str]:
    """Draw individual (donor) IDs: ``GTEX-1A2B3`` (bulk) or ``DONOR-1A2B3`` (single cell).

    Parameters
    ----------
    rng
        Random generator.
    n
        Number of individuals (the paper's ``N``).
    single_cell
        Use the ``DONOR-`` prefix.

    Returns
    -------
    list of str
        Distinct IDs, in draw order.
    """
    prefix = "DONOR" if single_cell else "GTEX"
    return [f"{prefix}-{code}" for code in _random_codes(rng, n, 5)]


def draw_sample_ids(
    rng: np.random.Generator,
    individual_of_sample: list[str],
    tissue_index: np.ndarray,
    *,
    single_cell: bool = False,
) -> list[str]:
    """Draw sample IDs that telescope back to their individual.

    Bulk: ``<donor>-<tissue code>-SM-<5 chars>`` (GTEx aliquot style, e.g.
    ``GTEX-1A2B3-0226-SM-7XK2Q``); the GTEx donor rule (first two dash-separated fields)
    gives the donor. Single cell: ``<donor>_<16-base barcode>``.

    Parameters
    ----------
    rng
        Random generator.
    individual_of_sample
        Donor ID of each sample.
    tissue_index
        Tissue (or cell type) index of each sample.
    single_cell
        Draw cell barcodes instead of GTEx aliquot IDs.

    Returns
    -------
    list of str
        Distinct sample IDs, aligned with ``individual_of_sample``.
    """
    n = len(individual_of_sample)
    if single_cell:
        barcodes = set()
        out = []
        while len(out) < n:
            for row in rng.choice(_BASES, size=(n - len(out) + 8, 16)):
                code = "".join(row)
                if code not in barcodes:
                    barcodes.add(code)
                    out.append(code)
                    if len(out) == n:
                        break
        return [f"{ind}_{bc}" for ind, bc in zip(individual_of_sample, out, strict=True)]
    codes = _random_codes(rng, n, 5)
    return [
        f"{ind}-{100 * (int(t) + 1) + 26:04d}-SM-{code}"
        for ind, t, code in zip(individual_of_sample, tissue_index, codes, strict=True)
    ]


def _chrom_names(n_chromosomes: int) -> list[str]:
    return [f"chr{c + 1}" for c in range(n_chromosomes)]


def _allocate(rng: np.random.Generator, n: int, n_chromosomes: int) -> np.ndarray:
    """Chromosome index of ``n`` features, proportional to chromosome length, at least one each."""
    lengths = np.array(CHROM_LENGTHS_B38[:n_chromosomes], dtype=float)
    counts = np.ones(n_chromosomes, dtype=np.int64)
    counts += rng.multinomial(n - n_chromosomes, lengths / lengths.sum())
    return np.repeat(np.arange(n_chromosomes), counts)


def draw_gene_info(
    rng: np.random.Generator,
    n_genes: int,
    *,
    n_chromosomes: int,
    lincrna_fraction: float,
) -> pd.DataFrame:
    """Draw GENCODE-like gene annotation on ``chr1 ... chrN``.

    Gene starts are uniform along each chromosome (GRCh38 lengths), lengths are log-normal
    (median 25 kb for protein-coding, 8 kb for lincRNA genes), strands are fair coin flips.
    Rows are sorted by chromosome and start.

    Parameters
    ----------
    rng
        Random generator.
    n_genes
        Number of genes (the paper's ``G``).
    n_chromosomes
        Number of autosomes used (1-22).
    lincrna_fraction
        Fraction of genes of type ``lincRNA`` (the rest are ``protein_coding``).

    Returns
    -------
    pandas.DataFrame
        Index ``gene`` (``ENSG00000xxxxxx.v``); columns ``chrom``, ``start``, ``end``, ``strand``,
        ``gene_type``, ``gene_name``.
    """
    chrom_idx = _allocate(rng, n_genes, n_chromosomes)
    lengths_chr = np.array(CHROM_LENGTHS_B38)[chrom_idx]
    is_linc = rng.random(n_genes) < lincrna_fraction
    median_len = np.where(is_linc, 8_000.0, 25_000.0)
    glen = np.clip(np.round(median_len * np.exp(rng.normal(0.0, 1.0, n_genes))), 500, 500_000)
    glen = glen.astype(np.int64)
    start = (rng.random(n_genes) * (lengths_chr - glen - 1)).astype(np.int64) + 1
    end = start + glen - 1
    strand = np.where(rng.random(n_genes) < 0.5, "+", "-")
    numbers = rng.choice(np.arange(100_000, 300_000), size=n_genes, replace=False)
    versions = rng.integers(1, 15, size=n_genes)
    order = np.lexsort((start, chrom_idx))
    chroms = np.array(_chrom_names(n_chromosomes), dtype=object)
    df = pd.DataFrame(
        {
            "chrom": chroms[chrom_idx[order]],
            "start": start[order],
            "end": end[order],
            "strand": strand[order],
            "gene_type": np.where(is_linc[order], "lincRNA", "protein_coding"),
        },
        index=pd.Index(
            [f"ENSG00000{n:06d}.{v}" for n, v in zip(numbers, versions, strict=True)], name="gene"
        ),
    )
    names = []
    n_pc = n_linc = 0
    for t in df["gene_type"]:
        if t == "lincRNA":
            n_linc += 1
            names.append(f"LINC{n_linc:05d}")
        else:
            n_pc += 1
            names.append(f"SIMG{n_pc}")
    df["gene_name"] = names
    return df


def draw_snp_info(rng: np.random.Generator, n_snps: int, *, n_chromosomes: int) -> pd.DataFrame:
    """Draw SNP positions (sorted per chromosome) with ref/alt alleles.

    Parameters
    ----------
    rng
        Random generator.
    n_snps
        Number of SNPs (the paper's ``S``).
    n_chromosomes
        Number of autosomes used (1-22).

    Returns
    -------
    pandas.DataFrame
        Index ``snp`` as GTEx v8 variant IDs ``chr<c>_<pos>_<ref>_<alt>_b38``; columns ``chrom``,
        ``pos`` (1-based), ``ref``, ``alt``. The genotype dosage counts ``alt`` alleles.
    """
    chrom_idx = _allocate(rng, n_snps, n_chromosomes)
    chroms = _chrom_names(n_chromosomes)
    pos = np.empty(n_snps, dtype=np.int64)
    for c in range(n_chromosomes):
        sel = np.flatnonzero(chrom_idx == c)
        pos[sel] = np.sort(rng.choice(CHROM_LENGTHS_B38[c] - 1, size=len(sel), replace=False) + 1)
    ref_i = rng.integers(0, 4, size=n_snps)
    alt_i = (ref_i + rng.integers(1, 4, size=n_snps)) % 4
    ref, alt = _BASES[ref_i], _BASES[alt_i]
    chrom = np.array(chroms, dtype=object)[chrom_idx]
    ids = [f"{c}_{p}_{r}_{a}_b38" for c, p, r, a in zip(chrom, pos, ref, alt, strict=True)]
    return pd.DataFrame(
        {"chrom": chrom, "pos": pos, "ref": ref.astype(object), "alt": alt.astype(object)},
        index=pd.Index(ids, name="snp"),
    )
