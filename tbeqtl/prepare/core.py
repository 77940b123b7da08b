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
replaces it (the old folder is restored if the new one fails). A failed run leaves nothing: the
folder it was writing is removed. Temporary files (pruned chromosomes, plink's files) live in a
temporary folder beside the output and are removed.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import genotype_input_files, open_genotypes, read_gene_annotation, sniff_genotype_format
from ..io._common import sha256_file
from .genes import annotate_genes, chrom_key, expressed_genes, select_gene_types
from .genotype_pass import select_variants
from .inputs import (
    count_matrix_samples,
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
    """``"absent"``, ``"unfinished"``, ``"same"`` or ``"different"`` for an output folder."""
    manifest = out / "manifest.json"
    if not out.exists():
        return "absent"
    if not manifest.is_file():
        return "unfinished"
    try:
        old = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return "different"
    same = old.get("params") == json.loads(json.dumps(params)) and old.get("inputs") == inputs
    return "same" if same else "different"


class _PrunedStore:
    """Pruned chromosomes kept as ``.npy`` files in a temporary folder, streamed back as DataFrames."""

    def __init__(self, folder: Path, individuals: pd.Index):
        self.folder = folder
        self.individuals = individuals
        self.parts: list[tuple[str, pd.Index]] = []

    def add(self, chrom: str, genotype_df: pd.DataFrame) -> None:
        np.save(self.folder / f"{chrom}.npy", genotype_df.to_numpy(dtype=np.float32))
        self.parts.append((chrom, genotype_df.index))

    def chunks(self) -> Iterator[pd.DataFrame]:
        for chrom, snps in self.parts:
            values = np.load(self.folder / f"{chrom}.npy")
            yield pd.DataFrame(values, index=snps, columns=self.individuals)


def _genes(counts_path, genes_path, selection, options) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    counts_df, _, _ = read_count_matrix(
        counts_path, samples=list(selection.sample_df.index), donor_column=options.individual_column
    )
    annotation = read_gene_annotation(genes_path)
    annotated = annotate_genes(counts_df.index, annotation)
    typed = select_gene_types(annotated, gene_types=options.gene_types, autosomes_only=options.autosomes_only)
    expressed = expressed_genes(
        counts_df.loc[typed.index], selection.sample_df["tissue"], min_median_count=options.min_median_count
    )
    gene_info_df = typed.loc[expressed]
    if len(gene_info_df) == 0:
        raise InputError("no gene is left after the gene type, autosome and median-count filters")
    order = sorted(
        gene_info_df.index,
        key=lambda g: (chrom_key(gene_info_df.at[g, "chrom"]), int(gene_info_df.at[g, "start"]), str(g)),
    )
    gene_info_df = gene_info_df.loc[order].rename_axis("gene")
    counts = {
        "genes_input": len(counts_df),
        "genes_annotated": len(annotated),
        "genes_type_autosome": len(typed),
        "genes_expressed": len(gene_info_df),
        "n_genes": len(gene_info_df),
    }
    logger.info("genes: %s", counts)
    return counts_df.loc[gene_info_df.index], gene_info_df, counts


def _individual_table(subject_path, individuals: pd.Index) -> pd.DataFrame:
    subjects = read_subject_attributes(subject_path)
    missing = individuals.difference(subjects.index)
    if len(missing):
        raise InputError(
            "kept individuals are absent from the subject attributes", path=str(subject_path), ids=missing
        )
    return subjects.loc[individuals].rename_axis("individual")


def _ancestry(store: _PrunedStore, beta_path, tau_path, options) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..tblda.ancestry import check_ancestry, estimate_ancestry_subset

    if beta_path is None:
        return estimate_ancestry_subset(
            store.chunks, n_ancestry=options.n_ancestry, max_snps=options.ancestry_snps, seed=options.seed
        )
    beta_df, tau_df = read_ancestry_tables(beta_path, tau_path)
    betas, tau = [], tau_df
    for chunk in store.chunks():
        part, tau = check_ancestry(beta_df, tau_df, chunk)
        betas.append(part)
    logger.info(
        "ancestry beta/tau from %s and %s checked against the prepared genotypes", beta_path, tau_path
    )
    return pd.concat(betas), tau


def _write(
    out: Path, work: Path, *, paths: dict, options: PrepareOptions, params: dict, inputs: dict
) -> None:
    from ..pipeline.covariates import genotype_pcs_streamed
    from ..pipeline.prepared import PreparedWriter

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
        counts_df, gene_info_df, gene_counts = _genes(paths["counts"], paths["genes"], selection, options)
        writer = PreparedWriter(out)
        for chrom in sorted(gene_info_df["chrom"].unique(), key=chrom_key):
            writer.write_counts(chrom, counts_df.loc[gene_info_df.index[gene_info_df["chrom"] == chrom]])
        library_size_s = counts_df.sum(axis=0).rename("library_size").rename_axis("sample")
        del counts_df
        imputed = None
        if options.drop_imputed:
            fmt = sniff_genotype_format(paths["genotypes"])
            imputed = imputed_flags(paths["genotypes"], fmt, source.variant_df)
        store = _PrunedStore(work, selection.individuals)

        def emit(chrom: str, genotype_df: pd.DataFrame) -> None:
            writer.write_genotypes(chrom, genotype_df)
            store.add(chrom, genotype_df)

        snp_info_df, snp_counts = select_variants(
            source, selection.individuals, imputed=imputed, options=options, workdir=work, emit=emit
        )
    finally:
        source.close()
    snp_counts["imputed_flag_available"] = imputed is not None
    snp_counts["n_snps"] = len(snp_info_df)
    writer.write_genotype_pcs(genotype_pcs_streamed(store.chunks(), n_pcs=options.genotype_pcs))
    writer.write_ancestry(*_ancestry(store, paths["ancestry_beta"], paths["ancestry_tau"], options))
    writer.write_tables(
        sample_info_df=sample_df,
        individual_info_df=individual_df,
        gene_info_df=gene_info_df,
        snp_info_df=snp_info_df,
        library_size_s=library_size_s,
    )
    counts = {**selection.counts, **gene_counts, **snp_counts}
    logger.info("prepared %s: %s", out, counts)
    writer.finish(params=params, counts=counts, inputs=inputs)


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
    params = {**options.params(), "ld_tool": plink_version(find_plink())}
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


def _run_replacing(out: Path, state: str, **kwargs) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if state == "unfinished":
        logger.info("removing the unfinished folder %s (no manifest.json) before preparing it again", out)
        shutil.rmtree(out)
    old = None
    if state == "different":
        old = out.parent / f".{out.name}.replaced-{secrets.token_hex(4)}"
        out.rename(old)
        logger.info("replacing %s (--force); the old folder is kept aside until the new one is finished", out)
    try:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.prepare-") as work:
            _write(out, Path(work), **kwargs)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
