"""A simulated cohort in GTEx's own file formats, written streamed (GTEx scale in bounded memory).

:func:`write_gtex_cohort` draws a telescoping data set from the TBLDA generative model (the draws of
:mod:`tbeqtl.simulate.draw`, planted eQTLs of :mod:`tbeqtl.simulate.effects`, IDs of
:mod:`tbeqtl.simulate.genome`; see :mod:`tbeqtl.simulate.core` for the model, equations 1-9) and
writes it the way a GTEx user receives it, under GTEx's file names::

    GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9_gene_reads.gct.gz   GCT v1.2, every tissue, Name/Description
    GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt           SAMPID, SMATSSCR, SMCENTER, SMRIN, SMTS,
                                                                  SMTSD, SMUBRID, SMTSISCH, SMGEBTCH,
                                                                  SMGEBTCHT, SMAFRZE (+ one WGS row per donor)
    GTEx_Analysis_v8_Annotations_SubjectPhenotypesDS.txt          SUBJID, SEX, AGE, DTHHRDY (every donor)
    GTEx_Analysis_2017-06-05_v8_WholeGenomeSeq_<N>Indiv_Analysis_Freeze.vcf.gz (+ .tbi)
                                                                  bgzipped VCF 4.2, GT, INFO IMPUTED/TYPED;R2
    GTEx_Analysis_2017-06-05_v8_WholeGenomeSeq_<N>Indiv_Analysis_Freeze.pgen/.pvar/.psam
                                                                  the same genotypes as a PLINK 2 set
    gencode.v26.GRCh38.genes.gtf                                  GENCODE-style gene/transcript/exon lines
    truth/eqtls.tsv, truth/snps.tsv, truth/genes.tsv, truth/individuals.tsv, truth/params.json
    cohort.json                                                   written last: parameters, files, sizes

What makes it a test of feature selection (the paper's Extended Methods):

- genes of GENCODE v26 types ``protein_coding`` and ``lincRNA`` and of other types
  (pseudogenes, small RNAs, ``antisense``, ``TEC``) that the paper's filter drops; a fraction
  on ``chrX``; a fraction of genes with their rate divided by ``low_expression_factor``, so that
  the "median count >= 5 in at least one tissue" rule removes them;
- genotypes for ``n_individuals + n_extra_donors`` donors, the extra donors without any RNA-seq
  sample (in the genotype files and the subject table only), columns sorted by donor ID;
- SNPs in LD blocks: ``1 + Poisson(mean_ld_block - 1)`` SNPs placed ``Geometric(1 / ld_spacing)``
  bp apart; a block's later SNPs copy the first SNP's genotype for each donor with probability
  ``c ~ U(0.5, 1)`` (r^2 about c^2), so LD pruning has something to do. The copy is outside the
  TBLDA model (the first SNP of each block is a draw of equations 8-9);
- rare variants (``rare_fraction``, allele frequency ``U(0.0005, 0.008)``, drawn outside the
  model and never copied from their block's first SNP), variants with many missing calls
  (``high_missing_fraction``, missing rate ``U(0.1, 0.3)``; every call is missing with
  probability ``missing_rate`` besides), and
  variants flagged ``IMPUTED`` in the INFO field (``imputed_fraction``; the others ``TYPED``,
  as the Michigan imputation server writes them), in both the VCF and the ``.pvar``.

Memory: genotypes are drawn one chromosome at a time and kept as int8 (``S x N`` bytes, 168 MB at
200,000 SNPs x 838 donors); counts are drawn in blocks of samples into an int32 genes x samples
matrix (462 MB at 20,000 x 5,781) and the text files are written in blocks. Everything is written
into a temporary sibling folder that is renamed onto ``out_dir`` at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..atomic import make_temp_dir, write_json, write_table
from ..errors import InputError
from ..io._common import open_output
from ..io.gct import GctWriter
from ..io.gtex import write_gtex_sample_attributes, write_gtex_subject_phenotypes
from ..io.pgen import PgenWriter
from ..io.vcf import FORMAT_LINES, VcfWriter, vcf_contig_lines
from . import draw
from .core import SimulationParams, resolve_params
from .effects import choose_cis_eqtls, choose_trans_eqtls, draw_covariate_effects, eqtl_log_multiplier
from .genome import CHROM_LENGTHS_B38, TISSUE_NAMES, draw_gene_info, draw_individual_ids, draw_sample_ids

__all__ = ["COHORT_MANIFEST", "GTEX_FILE_NAMES", "GtexCohort", "write_gtex_cohort"]

logger = logging.getLogger(__name__)

#: Written last; its presence marks a complete cohort.
COHORT_MANIFEST = "cohort.json"

#: GTEx v8 file names (the genotype stem gets the number of donors).
GTEX_FILE_NAMES = {
    "counts": "GTEx_Analysis_2017-06-05_v8_RNASeQCv1.1.9_gene_reads.gct.gz",
    "sample_attributes": "GTEx_Analysis_v8_Annotations_SampleAttributesDS.txt",
    "subject_phenotypes": "GTEx_Analysis_v8_Annotations_SubjectPhenotypesDS.txt",
    "genes": "gencode.v26.GRCh38.genes.gtf",
    "genotypes": "GTEx_Analysis_2017-06-05_v8_WholeGenomeSeq_{n}Indiv_Analysis_Freeze",
}

CHRX_LENGTH_B38 = 156_040_895

#: Gene types other than protein_coding/lincRNA (GENCODE v26 names) and their relative weights.
OTHER_GENE_TYPES = {
    "processed_pseudogene": 0.35,
    "unprocessed_pseudogene": 0.1,
    "antisense": 0.2,
    "misc_RNA": 0.08,
    "snRNA": 0.08,
    "miRNA": 0.1,
    "TEC": 0.09,
}

#: SMTS (tissue type) of the SMTSD names the simulator uses; other names take the part before " - ".
_SMTS = {
    "Whole Blood": "Blood",
    "Artery - Tibial": "Blood Vessel",
    "Artery - Aorta": "Blood Vessel",
    "Artery - Coronary": "Blood Vessel",
    "Adipose - Subcutaneous": "Adipose Tissue",
    "Adipose - Visceral (Omentum)": "Adipose Tissue",
    "Cells - Cultured fibroblasts": "Skin",
    "Cells - EBV-transformed lymphocytes": "Blood",
    "Breast - Mammary Tissue": "Breast",
}
_AGE_BINS = ("20-29", "30-39", "40-49", "50-59", "60-69", "70-79")
_STREAMS = ("layout", "genes", "model", "genotypes", "missing", "covariates", "eqtls", "counts", "tables")
_SAMPLE_BLOCK = 256
_GENE_BLOCK = 1000


@dataclass(frozen=True)
class CohortOptions:
    """Knobs of the cohort beyond the TBLDA model (see the module docstring).

    Attributes
    ----------
    n_extra_donors
        Donors with genotypes but no RNA-seq sample.
    chrx_gene_fraction, chrx_snp_fraction
        Fractions of genes and SNPs placed on chrX.
    other_type_fraction
        Fraction of genes of a type other than protein_coding/lincRNA.
    low_expression_fraction, low_expression_factor
        Fraction of genes whose rate is divided by the factor.
    mean_ld_block, ld_spacing
        Mean SNPs per LD block and mean distance (bp) between neighbouring SNPs of a block.
    rare_fraction, imputed_fraction, high_missing_fraction, missing_rate
        Variant classes (see the module docstring).
    wgs_rows
        Add a WGS row per genotyped donor to the sample attributes (SMAFRZE ``WGS``), as GTEx has.
    """

    n_extra_donors: int = 7
    chrx_gene_fraction: float = 0.04
    chrx_snp_fraction: float = 0.03
    other_type_fraction: float = 0.25
    low_expression_fraction: float = 0.15
    low_expression_factor: float = 300.0
    mean_ld_block: float = 3.0
    ld_spacing: float = 3000.0
    rare_fraction: float = 0.04
    imputed_fraction: float = 0.1
    high_missing_fraction: float = 0.02
    missing_rate: float = 0.002
    wgs_rows: bool = True


@dataclass(frozen=True)
class GtexCohort:
    """Paths of a written cohort (``None`` for a genotype format not written)."""

    path: Path
    counts: Path
    sample_attributes: Path
    subject_phenotypes: Path
    genes: Path
    vcf: Path | None
    pgen: Path | None
    truth: Path
    manifest: dict

    @classmethod
    def open(cls, path: str | Path) -> GtexCohort:
        """Open a finished cohort folder (one with ``cohort.json``).

        Raises
        ------
        InputError
            The folder has no ``cohort.json`` (unfinished or not a cohort).
        """
        path = Path(path)
        manifest_path = path / COHORT_MANIFEST
        if not manifest_path.is_file():
            raise InputError("not a finished simulated GTEx cohort (no cohort.json)", path=str(path))
        manifest = json.loads(manifest_path.read_text())
        names = manifest["paths"]
        return cls(
            path=path,
            counts=path / names["counts"],
            sample_attributes=path / names["sample_attributes"],
            subject_phenotypes=path / names["subject_phenotypes"],
            genes=path / names["genes"],
            vcf=path / names["vcf"] if names.get("vcf") else None,
            pgen=path / names["pgen"] if names.get("pgen") else None,
            truth=path / "truth",
            manifest=manifest,
        )


def _spawn(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """Return the generator of one stream (and chunk), independent of every other draw and of chunk sizes."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_STREAMS.index(stream), *keys)))


def write_gtex_cohort(
    out_dir: str | Path,
    *,
    n_tissues: int = 10,
    n_individuals: int = 831,
    n_extra_donors: int = 7,
    n_samples: int = 5781,
    n_genes: int = 20_000,
    n_snps: int = 200_000,
    n_chromosomes: int = 22,
    seed: int = 0,
    formats: Sequence[str] = ("vcf", "pgen"),
    reuse: bool = False,
    options: CohortOptions | None = None,
    **model: Any,
) -> GtexCohort:
    """Simulate a cohort and write it in GTEx's formats (see the module docstring for the files).

    Parameters
    ----------
    out_dir
        Destination folder; must not exist or be empty (unless ``reuse`` finds the same cohort).
    n_tissues, n_individuals, n_samples
        ``T``, ``N`` (donors with RNA-seq samples) and ``L`` (``N <= L <= N T``; at most one sample
        per tissue per donor).
    n_extra_donors
        Genotyped donors without RNA-seq (overrides ``options.n_extra_donors``).
    n_genes, n_snps
        ``G`` (all types, chrX included) and ``S`` (before any filter).
    n_chromosomes
        Autosomes ``chr1 ... chrN`` (plus chrX per ``options``).
    seed
        Seed of every draw; the files depend on nothing else.
    formats
        Genotype formats: any of ``"vcf"`` and ``"pgen"``.
    reuse
        If ``out_dir`` holds a finished cohort with the same parameters, return it unchanged.
    options
        :class:`CohortOptions`.
    **model
        Fields of :class:`~tbeqtl.simulate.SimulationParams` (preset ``chromosome``: ``K = 20``,
        one tissue topic per tissue), e.g. ``alpha``, ``n_topics``, ``n_cis``, ``n_trans``.

    Returns
    -------
    GtexCohort
        The written paths.

    Raises
    ------
    InputError
        Inconsistent sizes, unknown formats or model parameters, a non-empty ``out_dir``.
    """
    options = dataclasses.replace(options or CohortOptions(), n_extra_donors=int(n_extra_donors))
    formats = tuple(sorted(set(formats)))
    unknown = [f for f in formats if f not in {"vcf", "pgen"}]
    if unknown or not formats:
        raise InputError("genotype formats must be 'vcf' and/or 'pgen'", ids=unknown or ["(none)"])
    model.setdefault("n_cis", min(200, max(1, n_genes // 20)))
    model.setdefault("n_trans", min(100, max(1, n_genes // 40)))
    params = resolve_params(
        "chromosome",
        n_tissues=n_tissues,
        n_individuals=n_individuals,
        n_samples=n_samples,
        n_genes=n_genes,
        n_snps=n_snps,
        n_chromosomes=n_chromosomes,
        **model,
    )
    record = {"seed": int(seed), "formats": list(formats), "model": params.to_dict()}
    record["options"] = dataclasses.asdict(options)
    out = Path(out_dir)
    if reuse and (out / COHORT_MANIFEST).is_file():
        existing = GtexCohort.open(out)
        if existing.manifest.get("params") == _jsonable(record):
            logger.info("reusing the simulated GTEx cohort in %s", out)
            return existing
    if out.exists() and any(out.iterdir()):
        raise InputError("output folder for the simulated cohort is not empty", path=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, prefix=f".{out.name}.")
    try:
        _write_all(tmp, params, options, seed=int(seed), formats=formats, record=record)
        if out.exists():
            out.rmdir()
        os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return GtexCohort.open(out)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


def _write_all(
    tmp: Path, p: SimulationParams, o: CohortOptions, *, seed: int, formats: tuple, record: dict
) -> None:
    started = time.perf_counter()
    layout = _draw_layout(p, o, seed)
    model = _draw_topics(p, o, seed, layout)
    geno = _draw_genotypes(p, o, seed, layout, model)
    n_donors = len(layout["donors"])
    stem = GTEX_FILE_NAMES["genotypes"].format(n=n_donors)
    paths = {k: GTEX_FILE_NAMES[k] for k in ("counts", "sample_attributes", "subject_phenotypes", "genes")}
    logger.info("drew %d x %d genotypes in %.1f s", *geno.shape, time.perf_counter() - started)
    covariates = _draw_covariates(p, seed, layout)
    missing = _write_genotypes(tmp, stem, geno, p, o, seed, layout, formats=formats)
    paths.update(vcf=f"{stem}.vcf.gz" if "vcf" in formats else None, pgen=stem if "pgen" in formats else None)
    eqtls_df, counts = _draw_expression(p, o, seed, layout, model, geno, covariates)
    del geno
    _write_gct(tmp / paths["counts"], counts, layout)
    del counts
    _write_tables(tmp, paths, p, o, seed, layout)
    _write_gtf(tmp / paths["genes"], layout["genes"])
    _write_truth(tmp / "truth", layout, eqtls_df, missing, record)
    sizes = {
        "n_tissues": p.n_tissues,
        "n_samples": int(len(layout["samples"])),
        "n_individuals": p.n_individuals,
        "n_donors_genotyped": n_donors,
        "n_genes": p.n_genes,
        "n_snps": p.n_snps,
    }
    write_json(
        {
            "format": "tbeqtl-gtex-cohort",
            "tbeqtl_version": __version__,
            "params": _jsonable(record),
            "paths": paths,
            "sizes": sizes,
            "seconds": round(time.perf_counter() - started, 1),
        },
        tmp / COHORT_MANIFEST,
    )
    logger.info("wrote a simulated GTEx cohort %s in %.1f s", sizes, time.perf_counter() - started)


# --------------------------------------------------------------------------------------------- layout


def _draw_genes(p: SimulationParams, o: CohortOptions, seed: int) -> pd.DataFrame:
    rng = _spawn(seed, "genes")
    genes = draw_gene_info(rng, p.n_genes, n_chromosomes=p.n_chromosomes, lincrna_fraction=p.lincrna_fraction)
    n = len(genes)
    other = rng.random(n) < o.other_type_fraction
    names = list(OTHER_GENE_TYPES)
    weights = np.array(list(OTHER_GENE_TYPES.values()))
    types = genes["gene_type"].to_numpy(dtype=object).copy()
    types[other] = np.array(names, dtype=object)[rng.choice(len(names), size=int(other.sum()), p=weights)]
    genes["gene_type"] = types
    on_x = rng.random(n) < o.chrx_gene_fraction
    length = (genes["end"] - genes["start"]).to_numpy()
    start = (rng.random(n) * (CHRX_LENGTH_B38 - length - 1)).astype(np.int64) + 1
    genes.loc[on_x, "chrom"] = "chrX"
    genes.loc[on_x, "start"] = start[on_x]
    genes.loc[on_x, "end"] = start[on_x] + length[on_x]
    order = np.lexsort((genes["start"].to_numpy(), [_chrom_rank(c) for c in genes["chrom"]]))
    return genes.iloc[order]


def _chrom_rank(chrom: str) -> int:
    bare = chrom.removeprefix("chr")
    return int(bare) if bare.isdigit() else 100


def _draw_snps(p: SimulationParams, o: CohortOptions, rng: np.random.Generator) -> pd.DataFrame:
    """SNPs in LD blocks: chrom, pos, ref, alt, block, founder row, rare/imputed/high-missing flags."""
    sizes = 1 + rng.poisson(max(o.mean_ld_block - 1.0, 0.0), size=p.n_snps)
    n_blocks = int(np.searchsorted(np.cumsum(sizes), p.n_snps)) + 1
    sizes = sizes[:n_blocks]
    sizes[-1] -= int(sizes.sum()) - p.n_snps
    chroms = [f"chr{c + 1}" for c in range(p.n_chromosomes)]
    lengths = list(CHROM_LENGTHS_B38[: p.n_chromosomes])
    if o.chrx_snp_fraction > 0:
        chroms.append("chrX")
        lengths.append(CHRX_LENGTH_B38)
    weights = np.array(lengths, dtype=float)
    if o.chrx_snp_fraction > 0:
        weights[-1] = o.chrx_snp_fraction / (1 - o.chrx_snp_fraction) * weights[:-1].sum()
    per_chrom = np.ones(len(chroms), dtype=np.int64) + rng.multinomial(
        n_blocks - len(chroms), weights / weights.sum()
    )
    block_chrom = np.repeat(np.arange(len(chroms)), per_chrom)
    span = 50 * o.ld_spacing * max(o.mean_ld_block, 1.0)
    founder_pos = (rng.random(n_blocks) * (np.array(lengths)[block_chrom] - span)).astype(np.int64) + 1
    block = np.repeat(np.arange(n_blocks), sizes)
    steps = rng.geometric(min(1.0, 1.0 / o.ld_spacing), size=p.n_snps)
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    steps[first] = 0
    offset = np.cumsum(steps) - np.repeat(np.cumsum(steps)[first], sizes)
    pos = founder_pos[block] + offset
    chrom_idx = block_chrom[block]
    order = np.lexsort((offset, pos, chrom_idx))
    pos, chrom_idx, block, offset = pos[order], chrom_idx[order], block[order], offset[order]
    for c in range(len(chroms)):  # strictly increasing positions within a chromosome
        sel = np.flatnonzero(chrom_idx == c)
        pos[sel] = np.maximum.accumulate(pos[sel] - np.arange(sel.size)) + np.arange(sel.size)
    founder_row = pd.Series(np.arange(p.n_snps))[offset == 0].groupby(block[offset == 0]).first()
    bases = np.array(list("ACGT"))
    ref_i = rng.integers(0, 4, size=p.n_snps)
    ref, alt = bases[ref_i], bases[(ref_i + rng.integers(1, 4, size=p.n_snps)) % 4]
    chrom = np.array(chroms, dtype=object)[chrom_idx]
    ids = [f"{c}_{q}_{r}_{a}_b38" for c, q, r, a in zip(chrom, pos, ref, alt, strict=True)]
    return pd.DataFrame(
        {
            "chrom": chrom,
            "pos": pos,
            "ref": ref.astype(object),
            "alt": alt.astype(object),
            "block": block,
            "founder_row": founder_row.reindex(block).to_numpy(),
            "rare": rng.random(p.n_snps) < o.rare_fraction,
            "imputed": rng.random(p.n_snps) < o.imputed_fraction,
            "high_missing": rng.random(p.n_snps) < o.high_missing_fraction,
        },
        index=pd.Index(ids, name="snp"),
    )


def _draw_layout(p: SimulationParams, o: CohortOptions, seed: int) -> dict[str, Any]:
    rng = _spawn(seed, "layout")
    ind_idx, tis_idx = draw.draw_bulk_design(
        rng, n_individuals=p.n_individuals, n_samples=p.n_samples, n_tissues=p.n_tissues
    )
    donors = pd.Index(draw_individual_ids(rng, p.n_individuals + o.n_extra_donors), name="individual")
    samples = pd.Index(draw_sample_ids(rng, list(donors[ind_idx]), tis_idx), name="sample")
    return {
        "genes": _draw_genes(p, o, seed),
        "snps": _draw_snps(p, o, rng),
        "donors": donors,
        "samples": samples,
        "individual_index": ind_idx,
        "tissue_index": tis_idx,
        "tissues": np.array(TISSUE_NAMES[: p.n_tissues], dtype=object),
    }


# --------------------------------------------------------------------------------------------- model


def _draw_topics(p: SimulationParams, o: CohortOptions, seed: int, layout: dict) -> dict[str, np.ndarray]:
    """Equations 1, 2, 5-7: psi, phi, theta (extra donors: one pseudo-sample each), lambda, beta, tau."""
    rng = _spawn(seed, "model")
    n_donors = len(layout["donors"])
    weights = np.array([0.6, 0.3, 0.1]) if p.n_ancestry == 3 else 0.5 ** np.arange(p.n_ancestry)
    beta, tau, group = draw.draw_ancestry(
        rng,
        n_snps=p.n_snps,
        n_individuals=n_donors,
        n_ancestry=p.n_ancestry,
        fst=p.fst,
        maf_range=p.maf_range,
        group_weights=weights / weights.sum(),
        admixture_concentration=p.admixture_concentration,
        own_fraction=p.own_ancestry_fraction,
    )
    psi = draw.draw_gene_topics(rng, p.n_genes, p.n_topics, xi=p.gene_concentration)
    conc, topic_tissue = draw.tissue_concentrations(
        p.n_tissues,
        p.n_topics,
        n_tissue_topics=p.n_tissue_topics,
        sigma=p.sigma,
        tissue_sigma=p.tissue_sigma,
        off_tissue_sigma=p.off_tissue_sigma,
    )
    phi = draw.draw_sample_topics(rng, conc[layout["tissue_index"]])
    theta = draw.individual_topics(phi, layout["individual_index"], p.n_individuals)
    extra = draw.draw_sample_topics(rng, conc[rng.integers(0, p.n_tissues, size=o.n_extra_donors)])
    lam = draw.draw_snp_topics(rng, p.n_snps, p.n_topics, zeta=p.zeta, gamma=p.gamma)
    return {
        "beta": beta,
        "tau": tau,
        "group": group,
        "psi": psi,
        "phi": phi,
        "theta": np.hstack([theta, extra.T]),
        "lam": lam,
        "topic_tissue": topic_tissue,
    }


def _draw_genotypes(
    p: SimulationParams, o: CohortOptions, seed: int, layout: dict, model: dict
) -> np.ndarray:
    """Complete genotypes (int8, SNPs x all donors), one chromosome at a time (equations 8-9 + LD copies)."""
    snps = layout["snps"]
    geno = np.empty((len(snps), len(layout["donors"])), dtype=np.int8)
    founder = snps["founder_row"].to_numpy()
    rare = snps["rare"].to_numpy()
    for c, rows in enumerate(_chrom_rows(snps)):
        rng = _spawn(seed, "genotypes", c)
        rho = draw.genotype_probabilities(
            p.alpha, beta=model["beta"][rows], tau=model["tau"], lam=model["lam"][rows], theta=model["theta"]
        )
        rare_rows = np.flatnonzero(rare[rows])
        rho[rare_rows] = rng.uniform(0.0005, 0.008, size=rare_rows.size)[:, None]
        y = draw.draw_genotypes(rng, rho).astype(np.int8)
        members = np.flatnonzero((founder[rows] != rows) & ~rare[rows])  # rare variants stay independent
        copy = rng.random((members.size, y.shape[1])) < rng.uniform(0.5, 1.0, size=members.size)[:, None]
        src = founder[rows][members] - rows[0]
        y[members] = np.where(copy, y[src], y[members])
        geno[rows] = y
    return geno


def _chrom_rows(snps: pd.DataFrame) -> list[np.ndarray]:
    chrom = snps["chrom"].to_numpy()
    return [np.flatnonzero(chrom == c) for c in pd.unique(chrom)]


# --------------------------------------------------------------------------------------------- genotype files


def _write_genotypes(
    tmp: Path,
    stem: str,
    geno: np.ndarray,
    p: SimulationParams,
    o: CohortOptions,
    seed: int,
    layout: dict,
    *,
    formats: tuple,
) -> np.ndarray:
    """Write the VCF and/or PLINK 2 set chromosome by chromosome; return the missing count per SNP."""
    snps = layout["snps"]
    donors = layout["donors"]
    order = np.argsort(np.asarray(donors, dtype=str), kind="stable")  # files list donors sorted by ID
    rng_rates = _spawn(seed, "missing", 10_000)
    rate = np.where(snps["high_missing"], rng_rates.uniform(0.1, 0.3, size=len(snps)), o.missing_rate)
    info = _info_field(snps, rng_rates)
    with contextlib.ExitStack() as stack:
        writers = _genotype_writers(stack, tmp / stem, donors[order], layout, formats=formats)
        n_missing = np.zeros(len(snps), dtype=np.int64)
        for c, rows in enumerate(_chrom_rows(snps)):
            rng = _spawn(seed, "missing", c)
            codes = np.ascontiguousarray(geno[rows][:, order])
            miss = rng.random(codes.shape) < rate[rows][:, None]
            codes[miss] = -9
            n_missing[rows] = miss.sum(axis=1)
            for writer in writers:
                writer.write(codes, snps.iloc[rows], info[rows])
    return n_missing


def _info_field(snps: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    r2 = np.where(snps["imputed"], rng.uniform(0.3, 1.0, size=len(snps)), 1.0)
    text = np.where(snps["imputed"], "IMPUTED", "TYPED").astype(object)
    return text + ";R2=" + np.char.mod("%.3f", r2).astype(object)


def _genotype_writers(
    stack: contextlib.ExitStack, prefix: Path, donors: pd.Index, layout: dict, *, formats: tuple
) -> list[VcfWriter | PgenWriter]:
    """Open (on ``stack``) the writers of the bgzipped VCF (GT, INFO, tabix) and the PLINK 2 set (SEX)."""
    snps = layout["snps"]
    writers: list[VcfWriter | PgenWriter] = []
    if "vcf" in formats:
        lengths = {f"chr{i + 1}": n for i, n in enumerate(CHROM_LENGTHS_B38)} | {"chrX": CHRX_LENGTH_B38}
        meta = [
            "##source=tbeqtl.simulate.gtex_cohort",
            '##INFO=<ID=IMPUTED,Number=0,Type=Flag,Description="Marker was imputed">',
            '##INFO=<ID=TYPED,Number=0,Type=Flag,Description="Marker was genotyped">',
            '##INFO=<ID=R2,Number=1,Type=Float,Description="Estimated imputation accuracy (R-square)">',
            FORMAT_LINES["GT"],
            *vcf_contig_lines({c: lengths[c] for c in pd.unique(snps["chrom"])}),
        ]
        vcf = VcfWriter(f"{prefix}.vcf.gz", donors, fields=("GT",), meta_lines=meta, index=True)
        writers.append(stack.enter_context(vcf))
    if "pgen" in formats:
        sex = layout["sex"].reindex(donors).to_numpy()
        pgen = PgenWriter(prefix, donors, n_variants=len(snps), sex=sex, info_column=True)
        writers.append(stack.enter_context(pgen))
    return writers


# --------------------------------------------------------------------------------------------- expression


def _draw_expression(
    p: SimulationParams,
    o: CohortOptions,
    seed: int,
    layout: dict,
    model: dict,
    geno: np.ndarray,
    covariates: dict,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Planted eQTLs, covariates and counts (equations 3-4 with multiplicative extras), by sample blocks."""
    genes, snps = layout["genes"], layout["snps"]
    n_expr = p.n_individuals
    rng = _spawn(seed, "eqtls")
    coded_maf = geno[:, :n_expr].mean(axis=1, dtype=np.float64) / 2.0
    maf = np.minimum(coded_maf, 1.0 - coded_maf)
    low = rng.random(p.n_genes) < o.low_expression_fraction
    used_genes = set(np.flatnonzero(low).tolist())
    cis = choose_cis_eqtls(
        rng,
        p.n_cis,
        gene_info_df=genes,
        snp_info_df=snps,
        maf=maf,
        window=p.cis_window,
        effect_range=p.cis_effect,
        min_maf=p.eqtl_min_maf,
        used_genes=used_genes,
    )
    trans = choose_trans_eqtls(
        rng,
        p.n_trans,
        psi=model["psi"],
        lam=model["lam"],
        coded_maf=coded_maf,
        maf=maf,
        gene_chrom=genes["chrom"].to_numpy(),
        snp_chrom=snps["chrom"].to_numpy(),
        top_fraction=p.trans_top_fraction,
        effect_range=p.trans_effect,
        min_maf=p.eqtl_min_maf,
        used_genes=used_genes,
        used_snps={j for j, _, _ in cis},
    )
    planted = [*cis, *((j, g, e) for j, g, e, _ in trans)]
    snp_rows = sorted({j for j, _, _ in planted})
    local = {j: i for i, j in enumerate(snp_rows)}
    planted_geno = geno[snp_rows][:, :n_expr].astype(np.float64)
    planted_local = [(local[j], g, e) for j, g, e in planted]
    gene_offset = np.where(low, -np.log(o.low_expression_factor), 0.0)
    counts = _draw_counts(p, seed, layout, model, planted_geno, planted_local, covariates, gene_offset)
    rows = [(snps.index[j], genes.index[g], "cis", e, -1) for j, g, e in cis]
    rows += [(snps.index[j], genes.index[g], "trans", e, k) for j, g, e, k in trans]
    eqtls_df = pd.DataFrame(rows, columns=["snp", "gene", "kind", "effect", "topic"])
    layout["low_expression"] = pd.Series(low, index=genes.index, name="low_expression")
    return eqtls_df, counts


def _draw_covariates(p: SimulationParams, seed: int, layout: dict) -> dict[str, np.ndarray]:
    rng = _spawn(seed, "covariates")
    n_donors = len(layout["donors"])
    sex = np.where(rng.random(n_donors) < 0.66, 1, 2).astype(np.int64)  # GTEx SEX: 1 male, 2 female
    platform = (rng.random(len(layout["samples"])) < 0.3).astype(np.int64)
    fraction = p.covariate_gene_fraction if p.covariate_effects else 0.0
    sex_eff = draw_covariate_effects(rng, p.n_genes, fraction=fraction, effect_range=p.sex_effect)
    plat_eff = draw_covariate_effects(rng, p.n_genes, fraction=fraction, effect_range=p.platform_effect)
    layout["sex"] = pd.Series(sex, index=layout["donors"], name="SEX")
    layout["platform"] = platform
    return {
        "sex": sex[: p.n_individuals],
        "platform": platform,
        "sex_effect": sex_eff,
        "platform_effect": plat_eff,
    }


def _draw_counts(
    p: SimulationParams,
    seed: int,
    layout: dict,
    model: dict,
    planted_geno: np.ndarray,
    planted: list,
    cov: dict,
    gene_offset: np.ndarray,
) -> np.ndarray:
    n_samples = len(layout["samples"])
    ind_idx = layout["individual_index"]
    female = (cov["sex"] == 2).astype(float)
    female = female - female.mean()
    platform = cov["platform"] - cov["platform"].mean()
    lib = draw.draw_library_sizes(
        _spawn(seed, "counts", 10_000),
        n_samples,
        median=p.library_size_median or 500.0 * p.n_genes,
        sd=p.library_size_sd,
    )
    counts = np.empty((p.n_genes, n_samples), dtype=np.int32)
    for b, start in enumerate(range(0, n_samples, _SAMPLE_BLOCK)):
        cols = np.arange(start, min(start + _SAMPLE_BLOCK, n_samples))
        mult = eqtl_log_multiplier(planted_geno, ind_idx[cols], n_genes=p.n_genes, eqtls=planted)
        mult += np.outer(female[ind_idx[cols]], cov["sex_effect"])
        mult += np.outer(platform[cols], cov["platform_effect"])
        mult += gene_offset[None, :]
        block = draw.draw_counts(
            _spawn(seed, "counts", b),
            model["psi"],
            model["phi"][cols],
            library_sizes=lib[cols],
            log_multiplier=mult,
        )
        counts[:, cols] = block
    return counts


def _write_gct(path: Path, counts: np.ndarray, layout: dict) -> None:
    """GCT v1.2, genes sorted by ID (not by position), written in blocks of genes."""
    genes = layout["genes"]
    order = np.argsort(np.asarray(genes.index, dtype=str), kind="stable")
    with GctWriter(path, layout["samples"], n_genes=len(genes)) as writer:
        for start in range(0, len(order), _GENE_BLOCK):
            rows = order[start : start + _GENE_BLOCK]
            block = pd.DataFrame(counts[rows], index=genes.index[rows], columns=layout["samples"])
            writer.write(block, description=genes["gene_name"])


# --------------------------------------------------------------------------------------------- tables


def _write_tables(
    tmp: Path, paths: dict, p: SimulationParams, o: CohortOptions, seed: int, layout: dict
) -> None:
    rng = _spawn(seed, "tables")
    samples, donors = layout["samples"], layout["donors"]
    tissue = layout["tissues"][layout["tissue_index"]]
    n = len(samples)
    attrs = pd.DataFrame(
        {
            "tissue": tissue,
            "SMATSSCR": pd.array(np.where(rng.random(n) < 0.1, -1, rng.integers(0, 4, n)), dtype="Int64"),
            "SMCENTER": np.array(["B1", "C1", "D1"], dtype=object)[rng.integers(0, 3, n)],
            "SMRIN": np.round(rng.uniform(5.5, 9.8, n), 1),
            "SMTS": [_SMTS.get(t, t.split(" - ")[0]) for t in tissue],
            "SMUBRID": [f"{1000 + TISSUE_NAMES.index(t):07d}" for t in tissue],
            "SMTSISCH": pd.array(rng.integers(30, 1400, n), dtype="Int64"),
            "SMGEBTCH": [f"LCSET-{4000 + int(x)}" for x in rng.integers(0, 300, n)],
            "SMGEBTCHT": np.where(layout["platform"] == 1, "TruSeq.v2", "TruSeq.v1"),
            "SMAFRZE": "RNASEQ",
        },
        index=samples,
    )
    attrs["SMATSSCR"] = attrs["SMATSSCR"].mask(attrs["SMATSSCR"] < 0)
    if o.wgs_rows:
        wgs_ids = [f"{d}-0004-SM-W{i:04d}" for i, d in enumerate(donors)]
        wgs = pd.DataFrame({"tissue": "Whole Blood", "SMTS": "Blood", "SMAFRZE": "WGS"}, index=wgs_ids)
        attrs = pd.concat([attrs, wgs])
    write_gtex_sample_attributes(attrs, tmp / paths["sample_attributes"])
    n_d = len(donors)
    subjects = pd.DataFrame(
        {
            "sex": layout["sex"].reindex(donors).to_numpy(),
            "AGE": np.array(_AGE_BINS, dtype=object)[rng.integers(0, len(_AGE_BINS), n_d)],
            "DTHHRDY": pd.array(np.where(rng.random(n_d) < 0.05, -1, rng.integers(0, 5, n_d)), dtype="Int64"),
        },
        index=donors,
    )
    subjects["DTHHRDY"] = subjects["DTHHRDY"].mask(subjects["DTHHRDY"] < 0)
    write_gtex_subject_phenotypes(subjects.sort_index(), tmp / paths["subject_phenotypes"])


def _write_gtf(path: Path, genes: pd.DataFrame) -> None:
    """GENCODE-style GTF: a gene, a transcript and an exon line per gene (1-based, closed)."""
    with open_output(path) as handle:
        handle.write("##description: simulated by tbeqtl.simulate.gtex_cohort\n##provider: GENCODE\n")
        handle.write("##format: gtf\n")
        lines = []
        for gid, row in zip(genes.index, genes.itertuples(index=False), strict=True):
            common = f'gene_id "{gid}"; gene_type "{row.gene_type}"; gene_name "{row.gene_name}";'
            tid = gid.replace("ENSG", "ENST")
            span = f"{row.chrom}\tHAVANA\t{{}}\t{row.start}\t{row.end}\t.\t{row.strand}\t.\t"
            lines.append(span.format("gene") + common + " level 2;")
            tx = f'{common} transcript_id "{tid}"; transcript_type "{row.gene_type}"; level 2;'
            lines.append(span.format("transcript") + tx)
            lines.append(span.format("exon") + tx.replace("level 2;", "exon_number 1; level 2;"))
        handle.write("\n".join(lines) + "\n")


def _write_truth(
    out: Path, layout: dict, eqtls_df: pd.DataFrame, n_missing: np.ndarray, record: dict
) -> None:
    out.mkdir()
    write_table(eqtls_df, out / "eqtls.tsv")
    snps = layout["snps"].drop(columns=["founder_row"]).assign(n_missing=n_missing)
    write_table(snps, out / "snps.tsv", index=True)
    genes = layout["genes"].assign(low_expression=layout["low_expression"])
    write_table(genes, out / "genes.tsv", index=True)
    donors = layout["donors"]
    n_expr = record["model"]["n_individuals"]
    ind = pd.DataFrame({"has_expression": np.arange(len(donors)) < n_expr}, index=donors)
    write_table(ind, out / "individuals.tsv", index=True)
    write_json(record, out / "params.json")
