"""Run the pipeline over (gene chromosome, SNP chromosome) pairs with Dask, and gather the results.

A *run* is one chromosome pair: TBLDA is fitted on the genes of the gene chromosome and the SNPs
of the SNP chromosome (fit samples only), features are ranked, factors interpreted, and eQTLs
mapped per tissue on the held-out samples. :func:`run_pipeline` executes any set of pairs

- through a local Dask cluster (:class:`distributed.LocalCluster`, ``workers`` processes with one
  thread each) by default,
- through an existing Dask scheduler when an address is given (e.g. dask-jobqueue on SLURM); an
  unreachable address is an :class:`~tbeqtl.errors.InputError` after ``connect_timeout`` seconds,
- or in this process when ``workers = 0``.

Every pair writes into its own folder (:class:`~tbeqtl.layout.PairLayout`) atomically, file by
file, and records each finished stage in ``status.json``. Rerunning (with the same settings:
a folder whose ``config.toml`` differs in anything but the pairs and the ``[run]`` section is
refused) skips pairs whose status is
``done``, reuses finished stages, and resumes an interrupted TBLDA fit from its checkpoint
(``fit/checkpoint/``). A failing pair is recorded with its error and does not stop the others;
a pair with no genes or no SNPs is skipped and reported. Afterwards the pairs' tables are
gathered into genome-wide tables under ``summary/``, robust components under ``robust/`` and,
when :mod:`tbeqtl.enrich` is usable and gene sets are configured, enrichment under
``enrichment/``.

Extra files beyond the layout's list: ``fit/checkpoint/`` (resumable fit state),
``eqtl/<set>/<tissue>/calls.tsv`` (called eQTLs with their proposing topics),
``eqtl/<set>/<tissue>/candidates.parquet`` (every test with p at or below ``mapping.fdr``, for the
genome-wide FDR) and the ``exhaustive`` factor-set folder (all SNP x gene pairs on the same samples).

FDR: each run calls eQTLs by BH over its own families (factor set x tissue x class x gene-type
group); that bounds each family's expected false discovery proportion, not that of the calls
pooled over many families. The gather adds ``fdr_genome`` to ``summary/eqtls.parquet``: BH per
factor set x tissue x class x gene-type group pooled over all gathered runs
(:mod:`tbeqtl.pipeline.genome_fdr`), exact at or below the level and NaN above it, plus the
candidates called only that way (``called_run`` False); ``fdr_genome < level`` bounds the expected
FDP of each such pooled family. With ``mapping.fdr_scope = "all"`` it also adds ``fdr_all``, one
BH over every test of a factor set (all tissues, classes, gene types and pairs), and counts the
calls from it: ``fdr_all < level`` is one list whose expected FDP is at most the level.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..atomic import write_json, write_table
from ..data import EQTLData
from ..errors import InputError, TbeqtlError
from ..io._common import sha256_file
from ..layout import PairLayout, RunLayout
from ..schema import validate_table
from . import covariates as cov
from . import factors as fac
from . import holdout as hold
from . import mapping as mp
from . import robust as rob
from .config import PipelineConfig
from .report_tables import counted_calls, write_report_tables

__all__ = ["PairContext", "check_tissues", "gather_results", "list_pairs", "run_pair", "run_pipeline"]

logger = logging.getLogger(__name__)

_STAGES = ("holdout", "fit", "ranking", "factors", "eqtl")


# --------------------------------------------------------------------------- context
@dataclass(frozen=True)
class PairContext:
    """Everything a pair task needs (shipped once to every Dask worker).

    Parameters
    ----------
    config
        The pipeline config.
    run_dir
        The run folder.
    data
        The full data set.
    design_df
        Held-out design (:func:`tbeqtl.pipeline.holdout.holdout_design`).
    tissues
        Tissues to map.
    ancestry
        ``(beta_df, tau_df)`` over all SNPs and individuals, or None (each fit estimates its own).
    geno_pcs_df
        Individuals x genotype PCs.
    known_df
        Held-out samples x known covariates.
    cpm_df
        Genes x held-out samples counts per million over all genes.
    """

    config: PipelineConfig
    run_dir: str
    data: EQTLData
    design_df: pd.DataFrame
    tissues: tuple[str, ...]
    ancestry: tuple[pd.DataFrame, pd.DataFrame] | None
    geno_pcs_df: pd.DataFrame
    known_df: pd.DataFrame
    cpm_df: pd.DataFrame


def _chrom_key(chrom: str) -> tuple[int, str]:
    bare = str(chrom)[3:] if str(chrom).lower().startswith("chr") else str(chrom)
    return (int(bare), "") if bare.isdigit() else (10_000, bare)


def list_pairs(config: PipelineConfig, data: EQTLData) -> list[tuple[str, str]]:
    """Return the (gene chromosome, SNP chromosome) pairs a config asks for.

    Parameters
    ----------
    config
        ``data.pairs`` or ``data.all_pairs``.
    data
        The data set (its annotations give the chromosomes for ``all_pairs``).

    Returns
    -------
    list of tuple
        Pairs in chromosome order.
    """
    if config.data.all_pairs:
        if "chrom" not in data.gene_info_df.columns or "chrom" not in data.snp_info_df.columns:
            raise InputError("all_pairs needs gene and SNP annotations with a chrom column")
        genes = sorted(data.gene_info_df["chrom"].dropna().astype(str).unique(), key=_chrom_key)
        snps = sorted(data.snp_info_df["chrom"].dropna().astype(str).unique(), key=_chrom_key)
        return [(g, s) for g in genes for s in snps]
    pairs = config.pair_list
    if not pairs:
        raise InputError("no chromosome pair to run: give data.pairs (e.g. chr1:chr2) or data.all_pairs")
    seen = []
    for pair in pairs:
        if pair not in seen:
            seen.append(pair)
    return seen


def _tissue_s(data: EQTLData, column: str) -> pd.Series:
    if column not in data.sample_info_df.columns:
        raise InputError(f"sample attributes have no {column!r} column (data.tissue_column)",
                         ids=list(data.sample_info_df.columns))
    return data.sample_info_df[column].astype(str)


def _heldout_by_tissue(data: EQTLData, design_df: pd.DataFrame, column: str) -> dict[str, pd.Index]:
    tissue_s = _tissue_s(data, column)
    held = hold.holdout_samples(design_df)
    out = {}
    for tissue in sorted(tissue_s.reindex(held).dropna().unique()):
        samples = held[(tissue_s.reindex(held) == tissue).to_numpy()]
        individuals = data.sample_map_s.reindex(samples)
        out[tissue] = pd.Index(sorted(samples))[~individuals.reindex(sorted(samples)).duplicated().to_numpy()]
    return out


def check_tissues(
    config: PipelineConfig, data: EQTLData, *, design_df: pd.DataFrame, known_df: pd.DataFrame, n_pcs: int
) -> tuple[list[str], dict[str, str]]:
    """Choose the tissues to map and check each has more held-out samples than covariates.

    Parameters
    ----------
    config
        Pipeline config (``mapping.tissues``, ``mapping.min_samples``, covariate counts).
    data
        The data set.
    design_df
        Held-out design.
    known_df
        Held-out samples x encoded known covariates.
    n_pcs
        Number of genotype PCs available.

    Returns
    -------
    tissues : list of str
        Tissues to map.
    skipped : dict
        Tissue -> reason, for tissues left out.

    Raises
    ------
    InputError
        Naming every tissue whose held-out samples are fewer than its covariates + 3, or a
        configured tissue that does not exist.
    """
    by_tissue = _heldout_by_tissue(data, design_df, config.data.tissue_column)
    wanted = list(config.mapping.tissues) or sorted(_tissue_s(data, config.data.tissue_column).unique())
    unknown = [t for t in wanted if t not in set(_tissue_s(data, config.data.tissue_column))]
    if unknown:
        raise InputError("mapping.tissues has tissues not in the data", ids=unknown)
    tissues, skipped, bad = [], {}, []
    cc = config.covariates
    for tissue in wanted:
        samples = by_tissue.get(tissue, pd.Index([]))
        n = len(samples)
        if n < max(config.mapping.min_samples, 1):
            skipped[tissue] = f"{n} held-out samples (< mapping.min_samples = {config.mapping.min_samples})"
            continue
        known = known_df.reindex(samples)
        n_known = int((known.std(axis=0, ddof=0).fillna(0) > 1e-12).sum()) if known.shape[1] else 0
        n_hidden = 0 if cc.hidden == "none" else min(cc.n_hidden, int(np.floor(cc.hidden_max_fraction * n)))
        n_cov = n_known + n_pcs + n_hidden
        if n < n_cov + 3:
            bad.append(f"{tissue} ({n} held-out samples, {n_cov} covariates)")
            continue
        tissues.append(tissue)
    if bad:
        raise InputError("tissues with fewer held-out samples than covariates + 3 (reduce "
                         "covariates.genotype_pcs / n_hidden, or exclude them with mapping.tissues or "
                         "mapping.min_samples)", ids=bad)
    return tissues, skipped


# --------------------------------------------------------------------------- pair task
def _read_status(layout: PairLayout) -> dict[str, str]:
    try:
        return json.loads(layout.status.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _set_status(layout: PairLayout, status: dict[str, str], stage: str, value: str) -> None:
    status[stage] = value
    write_json(status, layout.status)


def _limit_threads(n: int) -> None:
    import torch
    from threadpoolctl import threadpool_limits  # a declared dependency

    torch.set_num_threads(max(1, int(n)))
    threadpool_limits(max(1, int(n)))


def _pair_features(data: EQTLData, gene_chrom: str, snp_chrom: str) -> tuple[pd.Index, pd.Index]:
    genes = data.gene_info_df.index[(data.gene_info_df["chrom"].astype(str) == gene_chrom).to_numpy()] \
        if "chrom" in data.gene_info_df.columns else pd.Index([])
    snps = data.snp_info_df.index[(data.snp_info_df["chrom"].astype(str) == snp_chrom).to_numpy()] \
        if "chrom" in data.snp_info_df.columns else pd.Index([])
    return genes, snps


def _fit_stage(ctx: PairContext, layout: PairLayout, sub: EQTLData):
    from ..tblda import TBLDA

    fc = ctx.config.fit
    options = dict(fc.options)
    options.setdefault("min_steps", min(5000, int(fc.max_steps)))
    options.setdefault("window", max(2, min(1000, int(fc.max_steps) // 5)))
    options.setdefault("average_window", max(1, min(1000, int(fc.max_steps) // 5)))
    options.setdefault("progress", False)
    options.setdefault("device", "cpu")
    options.setdefault("n_ancestry", fc.n_ancestry)
    options.setdefault("checkpoint_every", max(1, min(1000, int(fc.max_steps) // 4)))
    model = TBLDA(fc.n_topics, max_steps=fc.max_steps, learning_rate=fc.learning_rate, random_state=fc.seed,
                  **options)
    ancestry = None
    if ctx.ancestry is not None:
        beta_df, tau_df = ctx.ancestry
        ancestry = (beta_df.loc[sub.snps], tau_df.loc[sub.individuals])
    model.fit(sub, ancestry=ancestry, resume=True, checkpoint_dir=layout.fit / "checkpoint")
    model.write_outputs(layout.fit)
    return model


def _factors_stage(ctx: PairContext, layout: PairLayout, model, sub: EQTLData) -> dict[str, pd.DataFrame]:
    config = ctx.config
    data = ctx.data
    fcfg = config.factors
    tissue_s = _tissue_s(data, config.data.tissue_column)
    tissue_df = fac.tissue_factor_association(
        model.sample_topics_, tissue_s, score=fcfg.tissue_score, threshold=fcfg.tissue_threshold,
        normalized_threshold=fcfg.normalized_threshold)
    out = {"tissue_association": tissue_df}
    if config.data.ancestry_column in data.individual_info_df.columns:
        ancestry_s = data.individual_info_df[config.data.ancestry_column]
        private = getattr(model, "ancestry_tau_", None)
        out["ancestry"] = fac.ancestry_association(model.individual_topics_, ancestry_s, private_df=private)
    cell_cols = list(config.data.cell_type_columns) or [
        c for c in data.sample_info_df.columns if str(c).lower().startswith(("celltype_", "cell_type_"))]
    if cell_cols:
        missing = [c for c in cell_cols if c not in data.sample_info_df.columns]
        if missing:
            raise InputError("cell-type score columns not in the sample attributes", ids=missing)
        out["cell_types"] = fac.cell_type_association(
            model.sample_topics_, data.sample_info_df[cell_cols].apply(pd.to_numeric, errors="coerce"),
            tissue_s, threshold=fcfg.cell_type_tau)
    cov_cols = list(config.data.covariate_columns) or ["sex", "pcr", "platform", "batch"]
    attrs = fac.sample_attributes(model.sample_topics_.index, columns=cov_cols,
                                  sample_info_df=data.sample_info_df,
                                  individual_info_df=data.individual_info_df,
                                  sample_map_s=data.sample_map_s)
    out["covariate_factors"] = fac.covariate_association(
        model.sample_topics_, attrs, fdr_level=fcfg.covariate_fdr, min_effect=fcfg.covariate_min_effect)
    schemas = {"tissue_association": "tissue_factors", "ancestry": "ancestry_factors",
               "cell_types": "cell_type_factors", "covariate_factors": "covariate_factors"}
    for name, table in out.items():
        write_table(validate_table(table, schemas[name]), layout.factors / f"{name}.tsv")
    return out


def _read_factor_tables(layout: PairLayout) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("tissue_association", "ancestry", "cell_types", "covariate_factors"):
        path = layout.factors / f"{name}.tsv"
        if path.exists():
            out[name] = pd.read_csv(path, sep="\t")
    return out


def _test_rows(tests: pd.DataFrame, keep) -> pd.DataFrame:
    rows = tests.loc[keep].copy() if len(tests) else tests.copy()
    rows["topics"] = [",".join(str(t) for t in ts) for ts in rows["topics"]]
    wanted = ("class", "snp", "gene", "beta", "t_stat", "p_value", "fdr", "gene_type", "fdr_by_type",
              "topics")
    cols = [c for c in wanted if c in rows.columns]
    return rows[cols].reset_index(drop=True)


def _calls(result: mp.FactorSetResult, level: float) -> pd.DataFrame:
    tests = result.tests_df
    col = mp.call_column(tests)
    return _test_rows(tests, (tests[col] < level).to_numpy() if len(tests) else None)


def _candidates(result: mp.FactorSetResult, level: float) -> pd.DataFrame:
    """Return every test with ``p <= level``: all a genome-wide BH at ``level`` can call.

    Schema ``pipeline_candidates``.

    ``result.tests_df`` must hold every such test (the exhaustive mapping is run with an output
    p-value threshold of at least ``level``).
    """
    tests = result.tests_df
    return _test_rows(tests, (tests["p_value"] <= level).to_numpy() if len(tests) else None)


def _eqtl_stage(ctx: PairContext, layout: PairLayout, ranking_df: pd.DataFrame, tables: dict,
                genes: pd.Index, snps: pd.Index, n_topics: int) -> dict[str, Any]:
    config = ctx.config
    mc, cc = config.mapping, config.covariates
    held_by_tissue = _heldout_by_tissue(ctx.data, ctx.design_df, config.data.tissue_column)
    drop: list[int] = []
    cov_df = tables.get("covariate_factors")
    if config.factors.drop_covariate_factors and cov_df is not None and len(cov_df):
        drop = sorted(set(cov_df.loc[cov_df["flagged"].astype(bool), "topic"].astype(int)))
    blocks = mp.factor_blocks(ranking_df)
    summary: dict[str, Any] = {}
    for t_index, tissue in enumerate(ctx.tissues):
        samples = held_by_tissue.get(tissue, pd.Index([]))
        inputs = mp.prepare_tissue_inputs(
            ctx.data, samples, tissue=tissue, cpm_df=ctx.cpm_df, known_df=ctx.known_df,
            geno_pcs_df=ctx.geno_pcs_df, genes=genes, snps=snps, n_hidden=cc.n_hidden, hidden=cc.hidden,
            hidden_max_fraction=cc.hidden_max_fraction, seed=config.holdout.seed)
        params = {"tissue": tissue, "n_samples": inputs.n_samples,
                  "covariates": [str(c) for c in inputs.covariates_df.index], "fdr_level": mc.fdr,
                  "cis_dist": mc.cis_dist, "dropped_covariate_topics": drop}
        tests, null = mp.map_factor_blocks(inputs, blocks, cis_dist=mc.cis_dist,
                                           n_permutations=mc.n_permutations,
                                           seed=config.holdout.seed + t_index)
        for factor_set in mc.factor_sets:
            topics = mp.factor_set_topics(factor_set, topics=list(range(n_topics)), tissue=tissue,
                                          tissue_df=tables["tissue_association"], drop=drop)
            result = mp.restrict_to_factor_set(tests, null, topics)
            folder = layout.eqtl(factor_set, tissue)
            mp.write_factor_set(result, folder, output_pvalue=mc.output_pvalue,
                                params={**params, "factor_set": factor_set})
            calls = _calls(result, mc.fdr).assign(factor_set=factor_set, tissue=tissue)
            write_table(validate_table(_candidates(result, mc.fdr), "pipeline_candidates"),
                        folder / "candidates.parquet")
            write_table(validate_table(calls, "pipeline_eqtls"), folder / "calls.tsv")
            summary[f"{factor_set}/{tissue}"] = len(calls)
        if mc.exhaustive:
            # keep every test with p <= fdr for the candidates even when output_pvalue is smaller
            # (cis.tsv / trans.tsv are still cut at output_pvalue). The engine's FDR sees these rows
            # too; a call (FDR < fdr) can only differ from a run at output_pvalue if a test at rank
            # j > m * output_pvalue / fdr has p <= fdr, i.e. when over half the tests do at 0.05 / 0.1
            result = mp.exhaustive_mapping(inputs, cis_dist=mc.cis_dist,
                                           output_pvalue=max(mc.output_pvalue, mc.fdr))
            folder = layout.eqtl("exhaustive", tissue)
            mp.write_factor_set(result, folder, output_pvalue=mc.output_pvalue,
                                params={**params, "factor_set": "exhaustive"})
            calls = _calls(result, mc.fdr).assign(factor_set="exhaustive", tissue=tissue)
            write_table(validate_table(_candidates(result, mc.fdr), "pipeline_candidates"),
                        folder / "candidates.parquet")
            write_table(validate_table(calls, "pipeline_eqtls"), folder / "calls.tsv")
    return summary


def run_pair(ctx: PairContext, pair: tuple[str, str]) -> dict[str, Any]:
    """Run (or finish) one chromosome pair; never raises for errors inside the pair.

    Parameters
    ----------
    ctx
        The shared context.
    pair
        ``(gene_chrom, snp_chrom)``.

    Returns
    -------
    dict
        ``pair``, ``gene_chrom``, ``snp_chrom``, ``status`` ("done", "skipped", "failed"),
        ``message``, ``n_genes``, ``n_snps``, ``seconds``, ``reused`` (already finished before).
    """
    start = time.perf_counter()
    gene_chrom, snp_chrom = pair
    layout = RunLayout(ctx.run_dir).pair(gene_chrom, snp_chrom)
    genes, snps = _pair_features(ctx.data, gene_chrom, snp_chrom)
    record = {"pair": layout.name, "gene_chrom": gene_chrom, "snp_chrom": snp_chrom, "status": "",
              "message": "", "n_genes": len(genes), "n_snps": len(snps), "seconds": 0.0, "reused": False}
    status = _read_status(layout)
    if status.get("pair") == "done":
        record.update(status="done", reused=True)
        return record
    try:
        _limit_threads(ctx.config.run.threads_per_worker)
        if not len(genes) or not len(snps):
            reason = (f"no genes on {gene_chrom}" if not len(genes) else "") + \
                     (" and " if not len(genes) and not len(snps) else "") + \
                     (f"no SNPs on {snp_chrom}" if not len(snps) else "")
            _set_status(layout, status, "pair", f"skipped: {reason}")
            record.update(status="skipped", message=reason)
            return record
        if status.get("holdout") != "done":
            write_table(validate_table(ctx.design_df, "holdout"), layout.holdout)
            _set_status(layout, status, "holdout", "done")
        fit_samples = hold.fit_samples(ctx.design_df)
        # subset drops individuals without fit samples: with holdout.unit = "individuals" the fit sees
        # neither the expression nor the genotypes of the held-out individuals (TBLDA refuses genotyped
        # individuals without samples), while the eQTL tests read their genotypes from ctx.data
        sub = ctx.data.subset(genes=genes, snps=snps, samples=fit_samples)
        sub = _drop_empty(sub)
        if status.get("fit") == "done" and (layout.fit / "model").exists():
            from ..tblda import TBLDA

            model = TBLDA.load(layout.fit / "model")
        else:
            model = _fit_stage(ctx, layout, sub)
            _set_status(layout, status, "fit", "done")
        if status.get("ranking") == "done" and layout.ranking.exists():
            ranking_df = pd.read_csv(layout.ranking, sep="\t", dtype={"feature": str})
        else:
            ranking_df = _rank(model, sub, ctx.config.fit.top_fraction)
            write_table(ranking_df, layout.ranking)
            _set_status(layout, status, "ranking", "done")
        if status.get("factors") == "done":
            tables = _read_factor_tables(layout)
        else:
            tables = _factors_stage(ctx, layout, model, sub)
            _set_status(layout, status, "factors", "done")
        if status.get("eqtl") != "done":
            _eqtl_stage(ctx, layout, ranking_df, tables, sub.genes, sub.snps, int(ctx.config.fit.n_topics))
            _set_status(layout, status, "eqtl", "done")
        _set_status(layout, status, "pair", "done")
        record["status"] = "done"
    except _NoFeatures as exc:
        _set_status(layout, status, "pair", f"skipped: {exc}")
        record.update(status="skipped", message=str(exc))
    except Exception as exc:  # a failed pair must not stop the others
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, TbeqtlError) else str(exc)
        logger.debug("pair %s failed:\n%s", layout.name, traceback.format_exc())
        try:
            _set_status(layout, status, "pair", f"failed: {message}")
        except OSError:  # pragma: no cover - disk full or similar
            pass
        record.update(status="failed", message=message)
    record["seconds"] = time.perf_counter() - start
    return record


class _NoFeatures(Exception):
    """Nothing left to fit after filtering (the pair is skipped, not failed)."""


def _drop_empty(sub: EQTLData) -> EQTLData:
    """Drop genes with no counts and monomorphic/all-missing SNPs in the fit subset."""
    keep_genes = sub.counts_df.index[sub.counts_df.to_numpy().sum(axis=1) > 0]
    geno = sub.genotype_df.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(geno, axis=1) - np.nanmin(geno, axis=1) if geno.size else np.zeros(0)
    keep_snps = sub.genotype_df.index[np.nan_to_num(spread, nan=0.0) > 0]
    if len(keep_genes) == len(sub.genes) and len(keep_snps) == len(sub.snps):
        return sub
    if not len(keep_genes) or not len(keep_snps):
        raise _NoFeatures("no gene with reads or no polymorphic SNP left in the fit samples")
    logger.info("dropped %d uninformative genes and %d SNPs of the pair", len(sub.genes) - len(keep_genes),
                len(sub.snps) - len(keep_snps))
    return sub.subset(genes=keep_genes, snps=keep_snps)


def _rank(model, sub: EQTLData, top_fraction: float) -> pd.DataFrame:
    try:
        from ..tblda import rank_features
    except ImportError:
        from ..tblda.ranking import rank_features
    return rank_features(model, sub, top_fraction=top_fraction)


# --------------------------------------------------------------------------- gather
def _read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"snp": str, "gene": str, "feature": str, "tissue": str,
                                               "group": str, "topics": str}, keep_default_na=False,
                       na_values=["NA", "NaN", "nan"])


def _with_pair(df: pd.DataFrame, pair: PairLayout, gene_chrom: str, snp_chrom: str) -> pd.DataFrame:
    return df.assign(pair=pair.name, gene_chrom=gene_chrom, snp_chrom=snp_chrom)


def _counts_table(calls_df: pd.DataFrame, tests_rows: list[dict], *, level: float | None = None,
                  scope: str = "family") -> pd.DataFrame:
    """Count eQTLs per factor set x tissue x class x gene type (schema eqtl_counts).

    ``n_eqtls``/``n_egenes``/``n_evariants`` count the calls: with ``scope`` ``"family"`` the
    per-run calls (``called_run`` rows when the table has that column), with ``"all"`` the rows
    with ``fdr_all < level``. With ``fdr_genome`` in ``calls_df`` and a ``level``, the
    ``*_genome`` columns count the rows with ``fdr_genome < level``.
    """
    from ..association.result import gene_type_group

    tests_df = pd.DataFrame(tests_rows, columns=["factor_set", "tissue", "class", "gene_type", "n_tests"])
    calls = calls_df.copy()
    if "gene_type" in calls.columns:
        calls["gene_type"] = [gene_type_group(t) for t in calls["gene_type"]]
    else:
        calls["gene_type"] = "all"
    genome = level is not None and "fdr_genome" in calls.columns
    if scope == "all":
        if level is None or ("fdr_all" not in calls.columns and len(calls)):
            raise InputError("counting the calls of fdr_scope 'all' needs fdr_all and the FDR level")
        run_mask = (calls["fdr_all"].to_numpy(dtype=float) < level) if len(calls) else \
            np.zeros(0, dtype=bool)
    elif "called_run" in calls.columns:
        run_mask = calls["called_run"].astype(bool).to_numpy()
    else:
        run_mask = np.ones(len(calls), dtype=bool)
    genome_mask = (calls["fdr_genome"].to_numpy(dtype=float) < level) if genome else \
        np.zeros(len(calls), dtype=bool)
    sets = {"": calls.loc[run_mask], "_genome": calls.loc[genome_mask]}
    suffixes = ["", "_genome"] if genome else [""]

    def count(cs: pd.DataFrame) -> tuple[int, int, int]:
        return len(cs.drop_duplicates(["snp", "gene"])), cs["gene"].nunique(), cs["snp"].nunique()

    def select(fs: str, tissue: str | None, klass: str, gtype: str, suffix: str) -> pd.DataFrame:
        cs = sets[suffix]
        keep = (cs.factor_set == fs) & (cs["class"] == klass)
        if tissue is not None:
            keep &= cs.tissue == tissue
        if gtype != "all":
            keep &= cs.gene_type == gtype
        return cs[keep]

    columns = ["factor_set", "tissue", "class", "gene_type", "n_tests"]
    for suffix in suffixes:
        columns += [f"n_eqtls{suffix}", f"n_egenes{suffix}", f"n_evariants{suffix}"]
    rows = []
    keys = tests_df[["factor_set", "tissue", "class"]].drop_duplicates()
    for fs, tissue, klass in keys.itertuples(index=False):
        sel_t = tests_df[(tests_df.factor_set == fs) & (tests_df.tissue == tissue)
                         & (tests_df["class"] == klass)]
        for gtype in ["all", *sorted(set(sel_t["gene_type"]) - {"all"})]:
            n_tests = int(sel_t.loc[sel_t.gene_type == gtype, "n_tests"].sum())
            numbers = [n for suffix in suffixes for n in count(select(fs, tissue, klass, gtype, suffix))]
            rows.append((fs, tissue, klass, gtype, n_tests, *numbers))
    out = pd.DataFrame(rows, columns=columns)
    # all tissues together (pairs summed over tissues; eGenes / eVariants unique over tissues)
    agg = []
    for (fs, klass, gtype), group in out.groupby(["factor_set", "class", "gene_type"]):
        values = [int(group["n_tests"].sum())]
        for suffix in suffixes:
            cs = select(fs, None, klass, gtype, suffix)
            values += [int(group[f"n_eqtls{suffix}"].sum()), cs["gene"].nunique(), cs["snp"].nunique()]
        agg.append((fs, "all", klass, gtype, *values))
    out = pd.concat([out, pd.DataFrame(agg, columns=out.columns)], ignore_index=True)
    for col in columns[4:]:
        out[col] = out[col].astype(np.int64)
    return out.sort_values(["factor_set", "tissue", "class", "gene_type"], ignore_index=True)


def _add_genome_fdr(calls_df: pd.DataFrame, candidate_frames: list[pd.DataFrame], tests_rows: list[dict],
                    no_candidates: list[str], *, level: float, scope: str = "family") -> pd.DataFrame:
    """Add ``fdr_genome`` (and ``fdr_all``) / ``called_run`` and the pooled-only calls (:mod:`.genome_fdr`).

    Without the candidates of every gathered mapping (pairs finished by an older tbeqtl, or with
    another FDR level) nothing is added with ``scope`` ``"family"``: a partial pool would not give
    the pooled BH. With ``"all"`` that is an error, since the calls are then counted from
    ``fdr_all``.
    """
    from .genome_fdr import genome_wide_calls

    if no_candidates and scope == "all":
        raise InputError(f"mapping.fdr_scope = 'all' needs every mapping's candidates.parquet at FDR level "
                         f"{level:g}; {len(no_candidates)} have none (finished by an older tbeqtl?): rerun "
                         "them into a new folder, or gather with fdr_scope = 'family'", ids=no_candidates[:5])
    if no_candidates:
        logger.warning("no genome-wide FDR (fdr_genome): %d mappings have no candidates.parquet at FDR "
                       "level %g (finished by an older tbeqtl?), e.g. %s", len(no_candidates), level,
                       ", ".join(no_candidates[:3]))
        return calls_df
    non_empty = [f for f in candidate_frames if len(f)]
    cands = pd.concat(non_empty, ignore_index=True) if non_empty else (
        candidate_frames[0] if candidate_frames else calls_df.iloc[:0])
    cands = cands.astype({"snp": str, "gene": str})
    cands["topics"] = cands["topics"].fillna("").astype(str)
    n_tests_df = pd.DataFrame(tests_rows, columns=["factor_set", "tissue", "class", "gene_type", "n_tests"])
    out = genome_wide_calls(calls_df, cands, n_tests_df, level=level, scope=scope)
    logger.info("genome-wide FDR: %d per-run calls, %d of them and %d other candidates at fdr_genome < %g",
                int(out["called_run"].sum()), int((out["called_run"] & (out["fdr_genome"] < level)).sum()),
                int((~out["called_run"] & (out["fdr_genome"] < level)).sum()), level)
    if scope == "all":
        logger.info("FDR over all tests of each factor set: %d calls at fdr_all < %g (%d of them per-run "
                    "calls)", int((out["fdr_all"] < level).sum()), level,
                    int((out["called_run"] & (out["fdr_all"] < level)).sum()))
    return out


def gather_results(layout: RunLayout, config: PipelineConfig, *, data: EQTLData,
                   status_df: pd.DataFrame) -> dict[str, Any]:
    """Gather the finished pairs into genome-wide tables, robust components and tissue sets.

    Parameters
    ----------
    layout
        The run folder.
    config
        The pipeline config.
    data
        The full data set (genotypes for the MAF residuals; sample tissues and the Fig 5 locus
        inputs for the report, :func:`tbeqtl.pipeline.report_tables.write_report_tables`).
    status_df
        Pair status table (schema ``pair_status``).

    Returns
    -------
    dict
        Summary statistics for run.json (tissue-size Kendall tau, ancestry summary, counts).

    Notes
    -----
    ``summary/eqtls.parquet`` holds every run's calls (``called_run`` True, in run order) with
    ``fdr_genome``, the BH FDR of the test over its family pooled across the gathered runs (factor
    set x tissue x class x gene-type group, or x class without gene types; ``m`` = the families'
    ``n_tests`` of run.json summed over the runs); ``fdr_genome`` is exact at or below
    ``mapping.fdr`` and NaN above it. After them come the candidates with ``fdr_genome <
    mapping.fdr`` that no run called (``called_run`` False), so ``fdr_genome < mapping.fdr`` selects
    the complete genome-wide list. ``eqtl_counts.tsv`` gains ``n_eqtls_genome``,
    ``n_egenes_genome`` and ``n_evariants_genome``; ``n_eqtls`` and the rest still count the
    per-run calls. When a gathered mapping has no ``candidates.parquet`` at the configured level
    (finished by an older tbeqtl) none of these columns is written and a warning is logged.

    With ``mapping.fdr_scope = "all"`` the table also has ``fdr_all`` (one BH per factor set over
    all its tests, :func:`tbeqtl.pipeline.genome_fdr.all_tests_fdr`; exact at or below
    ``mapping.fdr``, NaN above), the candidates with ``fdr_all < mapping.fdr`` are added like the
    genome-wide ones, and ``n_eqtls``/``n_egenes``/``n_evariants`` count the rows with ``fdr_all <
    mapping.fdr``; missing candidates are then an :class:`~tbeqtl.errors.InputError`.
    """
    done = status_df.loc[status_df["status"] == "done"]
    frames: dict[str, list[pd.DataFrame]] = {k: [] for k in ("tissue_association", "ancestry", "cell_types",
                                                             "covariate_factors", "eqtls", "qq", "ranking",
                                                             "candidates")}
    tests_rows: list[dict] = []
    no_candidates: list[str] = []
    from ..association.result import gene_type_group

    for row in done.itertuples(index=False):
        pl = layout.pair(row.gene_chrom, row.snp_chrom)
        for name in ("tissue_association", "ancestry", "cell_types", "covariate_factors"):
            path = pl.factors / f"{name}.tsv"
            if path.exists():
                frames[name].append(_with_pair(_read_tsv(path), pl, row.gene_chrom, row.snp_chrom))
        if pl.ranking.exists():
            frames["ranking"].append(_read_tsv(pl.ranking).assign(pair=pl.name))
        eqtl_root = pl.root / "eqtl"
        for folder in sorted(eqtl_root.glob("*/*")) if eqtl_root.is_dir() else []:
            factor_set = folder.parent.name
            meta = json.loads((folder / "run.json").read_text())
            tissue = str(meta.get("tissue", folder.name))
            calls = _read_tsv(folder / "calls.tsv")
            frames["eqtls"].append(_with_pair(calls, pl, row.gene_chrom, row.snp_chrom).assign(
                factor_set=factor_set, tissue=tissue))
            cand_path = folder / "candidates.parquet"
            if cand_path.is_file() and float(meta.get("fdr_level", np.nan)) == float(config.mapping.fdr):
                cands = pd.read_parquet(cand_path)
                frames["candidates"].append(_with_pair(cands, pl, row.gene_chrom, row.snp_chrom).assign(
                    factor_set=factor_set, tissue=tissue))
            else:
                no_candidates.append(f"{pl.name}/{factor_set}/{tissue}")
            qq = _read_tsv(folder / "qq.tsv")
            if len(qq):
                frames["qq"].append(_with_pair(qq, pl, row.gene_chrom, row.snp_chrom).assign(
                    factor_set=factor_set, tissue=tissue))
            for key, n in meta.get("n_tests", {}).items():
                if ":" in key:
                    klass, group = key.split(":", 1)
                    tests_rows.append({"factor_set": factor_set, "tissue": tissue, "class": klass,
                                       "gene_type": gene_type_group(group), "n_tests": int(n)})
                elif key in ("cis", "trans"):
                    tests_rows.append({"factor_set": factor_set, "tissue": tissue, "class": key,
                                       "gene_type": "all", "n_tests": int(n)})
    summary_dir = layout.summary
    schemas = {"tissue_association": ("tissue_factors", "tissue_factors.parquet"),
               "ancestry": ("ancestry_factors", "ancestry.parquet"),
               "cell_types": ("cell_type_factors", "cell_types.parquet"),
               "covariate_factors": ("covariate_factors", "covariate_factors.parquet"),
               "eqtls": ("pipeline_eqtls", "eqtls.parquet"),
               "qq": ("permutation_qq", "qq.parquet")}
    tables: dict[str, pd.DataFrame] = {}
    for key, (schema, filename) in schemas.items():
        if not frames[key]:
            continue
        non_empty = [f for f in frames[key] if len(f)]
        table = pd.concat(non_empty, ignore_index=True) if non_empty else frames[key][0]
        if key == "eqtls":
            table["topics"] = table["topics"].fillna("").astype(str)
            table = _add_genome_fdr(table, frames["candidates"], tests_rows, no_candidates,
                                    level=config.mapping.fdr, scope=config.mapping.fdr_scope)
        tables[key] = validate_table(table, schema)
        write_table(tables[key], summary_dir / filename)
    eqtls = tables.get("eqtls", pd.DataFrame(columns=["factor_set", "tissue", "class", "snp", "gene"]))
    counts = _counts_table(eqtls, tests_rows, level=config.mapping.fdr, scope=config.mapping.fdr_scope)
    write_table(validate_table(counts, "eqtl_counts"), summary_dir / "eqtl_counts.tsv")
    calls_df = counted_calls(eqtls, level=config.mapping.fdr, scope=config.mapping.fdr_scope)
    write_report_tables(layout, data=data, tissue_column=config.data.tissue_column, calls_df=calls_df,
                        pair_names=[layout.pair(r.gene_chrom, r.snp_chrom).name
                                    for r in done.itertuples(index=False)])
    stats: dict[str, Any] = {}
    if "tissue_association" in tables:
        stats["tissue_size_kendall"] = fac.tissue_size_kendall(tables["tissue_association"])
        assoc = tables["tissue_association"]
        stats["tissue_associated_factors"] = {
            str(t): int(n) for t, n in assoc.groupby("tissue")["associated"].sum().items()}
    if "ancestry" in tables:
        stats["ancestry"] = fac.ancestry_summary(tables["ancestry"])
    if "cell_types" in tables and len(tables["cell_types"]):
        ct = tables["cell_types"]
        stats["cell_types_captured"] = {f"{t}/{c}": bool(g["captured"].any())
                                        for (t, c), g in ct.groupby(["tissue", "cell_type"])}
    write_json(stats, summary_dir / "factor_summary.json")
    if frames["ranking"] and "tissue_association" in tables:
        stats["robust"] = _robust(layout, config, data, done, pd.concat(frames["ranking"], ignore_index=True),
                                  tables["tissue_association"])
    return stats


def _robust(layout: RunLayout, config: PipelineConfig, data: EQTLData, done: pd.DataFrame,
            ranking_df: pd.DataFrame, tissue_df: pd.DataFrame) -> dict[str, Any]:
    from ..tblda.io import read_topic_table

    rc = config.robust
    members, reps = [], []
    for kind in ("gene", "snp"):
        column = "gene_chrom" if kind == "gene" else "snp_chrom"
        for chrom in sorted(done[column].unique(), key=_chrom_key):
            runs = done.loc[done[column] == chrom]
            if len(runs) < 2:
                continue
            loadings = {}
            for row in runs.itertuples(index=False):
                pl = layout.pair(row.gene_chrom, row.snp_chrom)
                table = read_topic_table(pl.fit / ("gene_topics.tsv" if kind == "gene" else "snp_topics.tsv"))
                table.index = table.index.astype(str)
                loadings[pl.name] = table if kind == "gene" else rob.maf_residuals(table, data.genotype_df)
            m_df, r_df = rob.robust_components(
                loadings, method="r2" if kind == "gene" else "kendall",
                threshold=rc.gene_r2 if kind == "gene" else rc.snp_tau,
                min_partners=rc.gene_min_partners if kind == "gene" else rc.snp_min_partners,
                merge_r2=rc.merge_r2)
            if len(m_df):
                members.append(m_df.assign(kind=kind, chrom=chrom))
                long = r_df.rename_axis("feature").reset_index().melt(id_vars="feature", var_name="component",
                                                                      value_name="loading")
                reps.append(long.assign(kind=kind, chrom=chrom))
    members_df = (pd.concat(members, ignore_index=True) if members else pd.DataFrame(
        {c: pd.Series(dtype=t) for c, t in (("kind", object), ("chrom", object), ("component", np.int64),
                                            ("run", object), ("topic", np.int64), ("flagged", bool),
                                            ("n_partners", np.int64))}))
    write_table(validate_table(members_df, "robust_members"), layout.robust / "components.tsv")
    reps_df = pd.concat(reps, ignore_index=True) if reps else pd.DataFrame(
        columns=["feature", "component", "loading", "kind", "chrom"])
    reps_df["component"] = reps_df["component"].astype(np.int64)
    write_table(reps_df[["kind", "chrom", "component", "feature", "loading"]],
                layout.robust / "representatives.parquet")
    genes = rob.robust_tissue_gene_sets(ranking_df, tissue_df)
    snps = rob.robust_tissue_snp_sets(ranking_df, tissue_df, percentile=rc.snp_percentile)
    write_table(validate_table(genes, "robust_tissue_sets"), layout.robust / "tissue_genes.tsv")
    write_table(validate_table(snps, "robust_tissue_sets"), layout.robust / "tissue_snps.tsv")
    n_comp = members_df.groupby(["kind", "chrom"])["component"].nunique() if len(members_df) else pd.Series()
    return {
        "components": {f"{k}/{c}": int(n) for (k, c), n in n_comp.items()},
        "tissue_gene_set_sizes": {str(t): int(n) for t, n in genes.groupby("tissue").size().items()},
        "tissue_snp_set_sizes": {str(t): int(n) for t, n in snps.groupby("tissue").size().items()},
    }


# --------------------------------------------------------------------------- driver
def _file_checksums(path: str) -> dict[str, str]:
    if not path:
        return {}
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {str(file.relative_to(root) if root.is_dir() else file.name): sha256_file(file) for file in files}


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"tbeqtl": __version__}
    for name in ("numpy", "pandas", "scipy", "torch", "dask", "distributed", "pyarrow"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:  # pragma: no cover
            out[name] = "absent"
    return out


def _result_settings(config: PipelineConfig) -> dict[str, Any]:
    """Return the config entries that change a pair's results (not which pairs run, nor how)."""
    values = config.to_dict()
    values.pop("run")
    values["mapping"] = {k: v for k, v in values["mapping"].items() if k != "fdr_scope"}  # gather only
    values["data"] = {k: v for k, v in values["data"].items() if k not in ("pairs", "all_pairs")}
    return values


def _check_resumable(layout: RunLayout, config: PipelineConfig) -> None:
    """Refuse to resume a run folder whose finished pairs were made with other settings."""
    if not layout.config.exists() or not layout.pairs():
        return
    try:
        previous = PipelineConfig.from_toml(layout.config)
    except InputError:
        return
    old, new = _result_settings(previous), _result_settings(config)
    if old != new:
        changed = [f"{section}.{key}" for section in new for key in new[section]
                   if old.get(section, {}).get(key) != new[section][key]]
        raise InputError(f"{layout.root} holds pairs run with other settings; give a new output folder "
                         "(or the same settings) to resume. Changed", ids=changed)


def _load_data(config: PipelineConfig, data: EQTLData | None) -> EQTLData:
    if data is not None:
        return data
    if not config.data.path:
        raise InputError("no data: set data.path in the config (or --data)")
    from ..io import read_dataset

    return read_dataset(config.data.path)


def _load_ancestry(config: PipelineConfig, data: EQTLData) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    if bool(config.data.ancestry_beta) != bool(config.data.ancestry_tau):
        raise InputError("give both data.ancestry_beta and data.ancestry_tau, or neither")
    if config.data.ancestry_beta:
        base = Path(config.data.path) if config.data.path else Path(".")

        def read(name: str) -> pd.DataFrame:
            path = Path(name) if Path(name).is_absolute() else base / name
            if not path.exists():
                raise InputError("ancestry file not found", path=str(path))
            df = pd.read_csv(path, sep="\t", index_col=0)
            df.index = df.index.astype(str)
            return df

        beta_df, tau_df = read(config.data.ancestry_beta), read(config.data.ancestry_tau)
        missing = data.snps.difference(beta_df.index, sort=False)
        if len(missing):
            raise InputError("SNPs missing from data.ancestry_beta", ids=missing)
        missing = data.individuals.difference(tau_df.index, sort=False)
        if len(missing):
            raise InputError("individuals missing from data.ancestry_tau", ids=missing)
        return beta_df, tau_df
    from ..tblda.ancestry import estimate_ancestry

    logger.info("estimating the ancestry subspace (Q=%d) from all SNPs", config.fit.n_ancestry)
    return estimate_ancestry(data.genotype_df, n_ancestry=config.fit.n_ancestry, seed=config.fit.seed)


def _connect(address: str, timeout: float):
    from distributed import Client

    try:
        return Client(address, timeout=f"{float(timeout)}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({exc})"
                         ) from None


def _execute(ctx: PairContext, pairs: list[tuple[str, str]], *, scheduler: str, workers: int,
             timeout: float) -> list[dict[str, Any]]:
    from ..logs import progress

    if not scheduler and workers <= 0:
        return [run_pair(ctx, pair) for pair in progress(pairs, desc="pairs", total=len(pairs))]
    from distributed import LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = _connect(scheduler, timeout)
    else:
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = _connect(cluster.scheduler_address, timeout)
    records = []
    try:
        ctx_future = client.scatter(ctx, broadcast=True)
        futures = {}
        for pair in pairs:
            key = f"pair-{pair[0]}__{pair[1]}-{time.time_ns()}"
            futures[client.submit(run_pair, ctx_future, pair, pure=False, key=key)] = pair
        for future in progress(as_completed(futures, loop=client.loop), desc="pairs", total=len(futures)):
            pair = futures[future]
            try:
                record = future.result()
            except Exception as exc:  # the worker died or the task could not run
                record = {"pair": f"{pair[0]}__{pair[1]}", "gene_chrom": pair[0], "snp_chrom": pair[1],
                          "status": "failed", "message": f"{type(exc).__name__}: {exc}", "n_genes": 0,
                          "n_snps": 0, "seconds": 0.0, "reused": False}
            _log_record(record)
            records.append(record)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return records


def _log_record(record: dict[str, Any]) -> None:
    if record["status"] == "done":
        if record.get("reused"):
            logger.info("pair %s: already finished, skipped", record["pair"])
        else:
            logger.info("pair %s: done in %.1f s", record["pair"], record["seconds"])
    elif record["status"] == "skipped":
        logger.warning("pair %s skipped: %s", record["pair"], record["message"])
    else:
        logger.error("pair %s failed: %s", record["pair"], record["message"])


def run_pipeline(
    config: PipelineConfig,
    *,
    out_dir: str | Path,
    scheduler: str | None = None,
    data: EQTLData | None = None,
) -> pd.DataFrame:
    """Run the pipeline on the configured chromosome pairs and gather the results.

    Parameters
    ----------
    config
        The pipeline config.
    out_dir
        Run folder (:class:`~tbeqtl.layout.RunLayout`); rerunning into the same folder resumes.
    scheduler
        Address of an existing Dask scheduler (overrides ``run.scheduler``); otherwise a local
        cluster of ``run.workers`` processes, or this process when ``run.workers = 0``.
    data
        The data set, when already in memory (otherwise read from ``data.path``).

    Returns
    -------
    pandas.DataFrame
        One row per pair (schema ``pair_status``), also written to ``summary/pairs.tsv``.

    Notes
    -----
    Local Dask workers are started with the ``spawn`` method, so a script that calls this with
    ``run.workers > 0`` must guard its entry point with ``if __name__ == "__main__":``.

    Raises
    ------
    InputError
        Bad config or data, a tissue with too few held-out samples for its covariates, or an
        unreachable scheduler. Errors inside one pair do not raise: they are reported in the
        returned table, ``run.json`` and the log.
    """
    started = time.perf_counter()
    layout = RunLayout(out_dir)
    layout.root.mkdir(parents=True, exist_ok=True)
    scheduler = scheduler if scheduler is not None else config.run.scheduler
    _check_resumable(layout, config)
    if scheduler:  # fail fast on an unreachable scheduler, before any work
        _connect(scheduler, config.run.connect_timeout).close()
    data = _load_data(config, data)
    pairs = list_pairs(config, data)
    hc = config.holdout
    design_df = hold.holdout_design(data.sample_map_s, min_samples=hc.min_samples, n_holdout=hc.n_holdout,
                                    seed=hc.seed, unit=hc.unit, fraction=hc.fraction)
    held = hold.holdout_samples(design_df)
    if not len(held):  # only possible with unit = "samples"
        raise InputError(f"no individual has at least {hc.min_samples} samples: nothing to hold out for the "
                         "eQTL tests (holdout.min_samples)")
    geno_pcs_df = cov.genotype_pcs(data.genotype_df, n_pcs=config.covariates.genotype_pcs)
    known_df = cov.encode_known_covariates(held, columns=list(config.covariates.known),
                                           sample_info_df=data.sample_info_df,
                                           individual_info_df=data.individual_info_df,
                                           sample_map_s=data.sample_map_s)
    tissues, skipped_tissues = check_tissues(config, data, design_df=design_df, known_df=known_df,
                                             n_pcs=geno_pcs_df.shape[1])
    for tissue, reason in skipped_tissues.items():
        logger.warning("tissue %s not mapped: %s", tissue, reason)
    ancestry = _load_ancestry(config, data)
    cpm_df = cov.counts_per_million(data.counts_df)[held]
    ctx = PairContext(config, str(layout.root), data, design_df, tuple(tissues), ancestry, geno_pcs_df,
                      known_df, cpm_df)
    provenance = {"versions": _versions(), "checksums": _file_checksums(config.data.path)}
    config.write(layout.config, provenance=provenance)
    logger.info("%d pairs, %d held-out samples, tissues mapped: %s", len(pairs), len(held),
                ", ".join(tissues))
    records = _execute(ctx, pairs, scheduler=scheduler, workers=config.run.workers,
                       timeout=config.run.connect_timeout)
    if not scheduler and config.run.workers <= 0:
        for record in records:
            _log_record(record)
    order = {f"{g}__{s}": i for i, (g, s) in enumerate(pairs)}
    status_df = pd.DataFrame(records).sort_values("pair", key=lambda s: s.map(order), ignore_index=True)
    status_df["seconds"] = np.where(status_df["reused"], 0.0, status_df["seconds"]).astype(float)
    status_table = validate_table(status_df.drop(columns="reused").astype(
        {"n_genes": np.int64, "n_snps": np.int64}), "pair_status")
    write_table(status_table, layout.summary / "pairs.tsv")
    stats = gather_results(layout, config, data=data, status_df=status_df)
    run = {
        "tool": "tbeqtl run",
        "tbeqtl_version": __version__,
        "config": config.to_dict(),
        "versions": provenance["versions"],
        "input_checksums": provenance["checksums"],
        "holdout": {"n_samples": int(len(design_df)), "n_held_out": int(len(held)),
                    "n_individuals_held_out": int(data.sample_map_s.reindex(held).nunique()),
                    "n_individuals_fit": int(data.sample_map_s.reindex(
                        hold.fit_samples(design_df)).nunique()),
                    "unit": hc.unit, "fraction": hc.fraction if hc.unit == "individuals" else None,
                    "min_samples": hc.min_samples, "n_holdout": hc.n_holdout, "seed": hc.seed},
        "tissues_mapped": tissues,
        "tissues_skipped": skipped_tissues,
        "ancestry": "files" if config.data.ancestry_beta else "estimated from all SNPs",
        "pairs": {r["pair"]: {"status": r["status"], "message": r["message"], "reused": bool(r["reused"])}
                  for r in records},
        "summary": stats,
        "seconds": time.perf_counter() - started,
    }
    write_json(run, layout.run_json)
    n_failed = int((status_df["status"] == "failed").sum())
    logger.info("pipeline finished: %d done, %d skipped, %d failed (%.1f s)",
                int((status_df["status"] == "done").sum()), int((status_df["status"] == "skipped").sum()),
                n_failed, time.perf_counter() - started)
    return status_table
