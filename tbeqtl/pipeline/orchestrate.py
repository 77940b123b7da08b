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
from . import holdout as hold
from .config import PipelineConfig
from .jobs.common import PairContext, _chrom_key, _heldout_by_tissue, _tissue_s
from .jobs.factors import _factors_stage, _read_factor_tables
from .jobs.fit import _drop_empty, _fit_stage, _NoFeatures
from .jobs.gather import _counts_table as _counts_table
from .jobs.gather import gather_results
from .jobs.mapping import _eqtl_stage
from .jobs.rank import _rank

__all__ = ["PairContext", "check_tissues", "gather_results", "list_pairs", "run_pair", "run_pipeline"]

logger = logging.getLogger(__name__)

_STAGES = ("holdout", "fit", "ranking", "factors", "eqtl")


# --------------------------------------------------------------------------- pairs and tissues


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
