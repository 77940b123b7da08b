"""``tbeqtl.prepare.prepare``: raw GTEx-shaped inputs -> a prepared data folder.

Steps (the paper's Extended Methods, "Feature selection" and "Ancestry structure"):

1. samples: those of the count matrix with attributes whose individual is genotyped
   (:mod:`tbeqtl.prepare.samples`);
2. genes: autosomal protein-coding and lincRNA/lncRNA genes with a median count of at least 5
   in at least one tissue (:mod:`tbeqtl.prepare.genes`);
3. SNPs: autosomes, imputed flag, missingness, MAF, then plink 1.9 LD pruning
   (``--indep-pairwise 200kb 1 0.2``), one chromosome at a time (:mod:`tbeqtl.prepare.genotype_pass`);
4. genotype PCs (:func:`tbeqtl.pipeline.covariates.genotype_pcs_streamed`) and ancestry ``beta``,
   ``tau`` (:func:`tbeqtl.tblda.ancestry.estimate_ancestry_subset` on a seeded subset of
   ``ancestry_snps`` SNPs, or the user's tables checked by
   :func:`tbeqtl.tblda.ancestry.check_ancestry`), streamed over the pruned chromosomes;
5. the folder, written by :class:`tbeqtl.pipeline.prepared.PreparedWriter` with its manifest
   last: per-step counts, the inputs' sha256, the options.

Reruns: a finished folder prepared from the same inputs (by checksum) with the same options is
left as it is (logged); other inputs or options are refused unless ``force=True``, which
replaces it. A failed run leaves nothing: the prepared files it wrote are removed (the writer
removes the manifest first, so a folder being rewritten is never taken for a finished one).
Temporary files (counts and pruned genotypes by chromosome, plink's files) live in a temporary
folder beside the output and are removed. Memory: the kept counts while they are read and
filtered, then one chromosome of genotypes at a time.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, format_ids
from ..io import genotype_input_files, open_genotypes, read_gene_annotation, sniff_genotype_format
from ..io._common import check_unique, sha256_file
from .genes import annotate_genes, chrom_key, expressed_genes, select_gene_types
from .genotype_pass import select_variants
from .inputs import (
    count_matrix_samples,
    iter_count_blocks,
    merge_sample_tables,
    read_ancestry_tables,
    read_count_matrix,
    read_sample_attributes,
    read_subject_attributes,
)
from .ld import find_plink, plink_version
from .options import PrepareOptions
from .samples import select_samples
from .variants import imputed_flags

__all__ = ["prepare"]

logger = logging.getLogger(__name__)


def _input_files(**paths) -> dict[str, str]:
    """sha256 of every input file (a genotype prefix expands to its files)."""
    out = {}
    for key, path in paths.items():
        if path is None:
            continue
        files = genotype_input_files(path) if key == "genotypes" else [Path(path)]
        for file in files:
            if not Path(file).is_file():
                raise InputError(f"{key.replace('_', ' ')} file not found", path=str(file))
            out[str(Path(file).resolve())] = sha256_file(file)
    return out


def _state(out: Path, params: dict, inputs: dict) -> str:
    """``"absent"``, ``"unfinished"``, ``"same"``, ``"damaged"`` (same, files missing) or ``"different"``."""
    manifest = out / "manifest.json"
    if not out.exists():
        return "absent"
    if not manifest.is_file():
        return "unfinished"
    try:
        old = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return "different"
    # the writer records the number of genotype PCs written as "genotype_pcs"; the request is kept apart
    old_params = {k: v for k, v in (old.get("params") or {}).items() if k != "genotype_pcs"}
    new_params = {k: v for k, v in json.loads(json.dumps(params)).items() if k != "genotype_pcs"}
    if old_params != new_params or old.get("inputs") != inputs:
        return "different"
    missing = [rel for rel in old.get("files", {}) if not (out / rel).is_file()]
    if missing:
        logger.warning("%s lacks files its manifest lists (%s): preparing it again", out, format_ids(missing))
        return "damaged"
    return "same"


class _Spill:
    """Per-chromosome matrices kept as ``.npy`` files in a temporary folder, read back one at a time."""

    def __init__(self, folder: Path, name: str, columns: pd.Index):
        self.folder = folder / name
        self.folder.mkdir()
        self.columns = columns
        self.parts: dict[str, pd.Index] = {}

    def add(self, chrom: str, df: pd.DataFrame) -> None:
        np.save(self.folder / f"{chrom}.npy", df[self.columns].to_numpy())
        self.parts[chrom] = df.index

    def load(self, chrom: str) -> pd.DataFrame:
        return pd.DataFrame(
            np.load(self.folder / f"{chrom}.npy"), index=self.parts[chrom], columns=self.columns
        )

    def chunks(self) -> Iterator[pd.DataFrame]:
        for chrom in self.parts:
            yield self.load(chrom)


def _genes(counts_path, genes_path, selection, options, spill: _Spill) -> tuple[pd.DataFrame, dict]:
    """Select the genes block by block; spill their counts by chromosome; return the gene table and tallies.

    Every filter is per gene, so each block of the count matrix is filtered before the next is
    read. Matching count IDs to the annotation without versions needs the whole ID list (an
    unversioned ID must be unambiguous): blocks keep a superset, cut to the final set at the end.
    """
    annotation = read_gene_annotation(genes_path)
    tissue_s = selection.sample_df["tissue"]
    ids, kept = [], []
    for block in iter_count_blocks(
        counts_path, samples=list(selection.sample_df.index), donor_column=options.individual_column
    ):
        ids.append(block.index)
        typed = select_gene_types(
            annotate_genes(block.index, annotation),
            gene_types=options.gene_types,
            autosomes_only=options.autosomes_only,
        )
        block = block.loc[typed.index]
        kept.append(block.loc[expressed_genes(block, tissue_s, min_median_count=options.min_median_count)])
    all_ids = ids[0].append(ids[1:]) if len(ids) > 1 else ids[0]
    check_unique(all_ids, "gene", path=counts_path)
    annotated = annotate_genes(all_ids, annotation)
    typed = select_gene_types(annotated, gene_types=options.gene_types, autosomes_only=options.autosomes_only)
    counts_df = pd.concat(kept)
    counts_df = counts_df.loc[counts_df.index.isin(typed.index)]
    gene_info_df = typed.loc[counts_df.index]
    if len(gene_info_df) == 0:
        raise InputError("no gene is left after the gene type, autosome and median-count filters")
    key = [
        (chrom_key(c), int(s), str(g))
        for g, c, s in zip(gene_info_df.index, gene_info_df["chrom"], gene_info_df["start"], strict=True)
    ]
    gene_info_df = gene_info_df.iloc[sorted(range(len(key)), key=key.__getitem__)].rename_axis("gene")
    for chrom in pd.unique(gene_info_df["chrom"]):
        spill.add(chrom, counts_df.loc[gene_info_df.index[(gene_info_df["chrom"] == chrom).to_numpy()]])
    counts = {
        "genes_input": len(all_ids),
        "genes_annotated": len(annotated),
        "genes_type_autosome": len(typed),
        "genes_expressed": len(gene_info_df),
    }
    logger.info("genes: %s", counts)
    return gene_info_df, counts


def _individual_table(subject_path, individuals: pd.Index) -> pd.DataFrame:
    subjects = read_subject_attributes(subject_path)
    missing = individuals.difference(subjects.index)
    if len(missing):
        raise InputError(
            "kept individuals are absent from the subject attributes", path=str(subject_path), ids=missing
        )
    return subjects.loc[individuals].rename_axis("individual")


def _ancestry(spill: _Spill, beta_path, tau_path, options) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..tblda.ancestry import check_ancestry, estimate_ancestry_subset

    if beta_path is None:
        return estimate_ancestry_subset(
            spill.chunks, n_ancestry=options.n_ancestry, max_snps=options.ancestry_snps, seed=options.seed
        )
    beta_df, tau_df = read_ancestry_tables(beta_path, tau_path)
    betas, tau = [], tau_df
    for chunk in spill.chunks():
        part, tau = check_ancestry(beta_df, tau_df, chunk)
        betas.append(part)
    logger.info("ancestry beta and tau from %s and %s checked against the genotypes", beta_path, tau_path)
    return pd.concat(betas), tau


def _select(work: Path, paths: dict, options: PrepareOptions) -> dict:
    """Select samples, genes and SNPs; counts and pruned genotypes are spilled into ``work``."""
    source = open_genotypes(paths["genotypes"], dosage_field=options.dosage_field)
    try:
        attrs = read_sample_attributes(
            paths["sample_attributes"],
            tissue_column=options.tissue_column,
            individual_column=options.individual_column,
        )
        available = count_matrix_samples(paths["counts"])
        if available is None:
            available = read_count_matrix(
                paths["counts"], samples=None, donor_column=options.individual_column
            )[0].columns
        selection = select_samples(
            available,
            attrs,
            source.samples,
            counts_path=str(paths["counts"]),
            attributes_path=str(paths["sample_attributes"]),
            genotypes_path=str(paths["genotypes"]),
        )
        individual_df = _individual_table(paths["subject_attributes"], selection.individuals)
        sample_df = merge_sample_tables(
            selection.sample_df, cell_types=paths["cell_types"], covariates=paths["covariates"]
        )
        count_spill = _Spill(work, "counts", selection.sample_df.index)
        gene_info_df, gene_counts = _genes(paths["counts"], paths["genes"], selection, options, count_spill)
        imputed = None
        if options.drop_imputed:
            fmt = sniff_genotype_format(paths["genotypes"])
            imputed = imputed_flags(paths["genotypes"], fmt, source.variant_df)
        geno_spill = _Spill(work, "genotypes", selection.individuals)
        snp_info_df, snp_counts = select_variants(
            source, selection.individuals, imputed=imputed, options=options, workdir=work, emit=geno_spill.add
        )
    finally:
        source.close()
    snp_counts["imputed_flag_available"] = imputed is not None
    return {
        "sample_df": sample_df,
        "individual_df": individual_df,
        "gene_info_df": gene_info_df,
        "snp_info_df": snp_info_df,
        "counts": count_spill,
        "genotypes": geno_spill,
        "tallies": {**selection.counts, **gene_counts, **snp_counts},
    }


def _write(
    out: Path, work: Path, *, paths: dict, options: PrepareOptions, params: dict, inputs: dict
) -> None:
    from ..pipeline.covariates import genotype_pcs_streamed
    from ..pipeline.prepared import PreparedWriter

    sel = _select(work, paths, options)
    writer = PreparedWriter(out, clean=True)
    writer.write_tables(
        sample_map_s=sel["sample_df"]["individual"],
        individual_info_df=sel["individual_df"],
        gene_info_df=sel["gene_info_df"],
        snp_info_df=sel["snp_info_df"],
        sample_info_df=sel["sample_df"],
    )
    for chrom in sel["counts"].parts:
        writer.write_counts(chrom, sel["counts"].load(chrom))
    for chrom in sel["genotypes"].parts:
        writer.write_genotypes(chrom, sel["genotypes"].load(chrom))
    writer.write_genotype_pcs(genotype_pcs_streamed(sel["genotypes"].chunks(), n_pcs=options.genotype_pcs))
    writer.write_ancestry(
        *_ancestry(sel["genotypes"], paths["ancestry_beta"], paths["ancestry_tau"], options)
    )
    logger.info("prepared %s: %s", out, sel["tallies"])
    writer.finish(params=params, counts=sel["tallies"], inputs=inputs)


def prepare(
    *,
    counts: str | Path,
    sample_attributes: str | Path,
    subject_attributes: str | Path,
    genotypes: str | Path,
    genes: str | Path,
    out: str | Path,
    ancestry_beta: str | Path | None = None,
    ancestry_tau: str | Path | None = None,
    cell_types: str | Path | None = None,
    covariates: str | Path | None = None,
    options: PrepareOptions | None = None,
    force: bool = False,
) -> Path:
    """Select the paper's genes and SNPs from raw inputs and write a prepared data folder.

    Parameters
    ----------
    counts
        Raw counts ``x``: GTEx GCT of all tissues, TSV/parquet (genes x samples) or ``.h5ad``.
    sample_attributes
        GTEx ``SampleAttributesDS`` (``SAMPID``, ``SMTSD``) or a table with a tissue column.
    subject_attributes
        GTEx ``SubjectPhenotypesDS`` (``SUBJID``, ``SEX``) or a table of individuals.
    genotypes
        PLINK 2 or PLINK 1 prefix, VCF/BCF or dosage TSV; its donors may be a superset.
    genes
        Gene annotation (GENCODE GTF, BED or TSV) with ``gene_type``.
    out
        The prepared folder to write.
    ancestry_beta, ancestry_tau
        Labelled ``beta`` (SNPs x Q) and ``tau`` (individuals x Q) tables to use instead of
        estimating them (both or neither); checked against the prepared genotypes.
    cell_types, covariates
        Optional per-sample tables merged into the sample attributes.
    options
        :class:`PrepareOptions` (default: the paper's selection).
    force
        Replace a finished folder prepared from other inputs or options.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        Bad or inconsistent inputs (see the readers), or a finished ``out`` from other inputs
        without ``force``.
    """
    options = options or PrepareOptions()
    if (ancestry_beta is None) != (ancestry_tau is None):
        raise InputError("give both --ancestry-beta and --ancestry-tau, or neither")
    out = Path(out)
    paths = {
        "counts": counts,
        "sample_attributes": sample_attributes,
        "subject_attributes": subject_attributes,
        "genotypes": genotypes,
        "genes": genes,
        "ancestry_beta": ancestry_beta,
        "ancestry_tau": ancestry_tau,
        "cell_types": cell_types,
        "covariates": covariates,
    }
    inputs = _input_files(**paths)
    params = {
        **options.params(),
        "genotype_pcs_requested": options.genotype_pcs,
        "ld_tool": plink_version(find_plink()),
    }
    state = _state(out, params, inputs)
    if state == "same":
        logger.info("%s is already prepared from the same inputs and options: nothing to do", out)
        return out
    if state == "different" and not force:
        raise InputError(
            "the folder holds data prepared from other inputs or options (pass --force to replace it)",
            path=str(out / "manifest.json"),
        )
    _run_replacing(out, state, paths=paths, options=options, params=params, inputs=inputs)
    return out


#: What a prepared folder holds (tbeqtl.pipeline.prepared), removed again when preparing fails.
_PREPARED_FILES = (
    "manifest.json",
    "samples.tsv",
    "individuals.tsv",
    "genes.tsv",
    "snps.tsv",
    "library_size.tsv",
    "genotype_pcs.tsv",
    "ancestry_beta.parquet",
    "ancestry_tau.tsv",
)
_PREPARED_DIRS = ("counts", "genotypes")


def _remove_prepared(out: Path) -> None:
    """Remove the prepared files of ``out`` (other files, such as the CLI's log, stay)."""
    for name in _PREPARED_FILES:
        (out / name).unlink(missing_ok=True)
    for name in _PREPARED_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _run_replacing(out: Path, state: str, **kwargs) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if state == "different":
        logger.info("replacing the prepared folder %s (--force)", out)
    try:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.prepare-") as work:
            _write(out, Path(work), **kwargs)
    except BaseException:
        logger.error("preparing %s failed: its prepared files are removed", out)
        _remove_prepared(out)
        raise
