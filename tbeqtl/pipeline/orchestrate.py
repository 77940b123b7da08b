"""Run the pipeline over (gene chromosome, SNP chromosome) pairs with Dask, and gather the results.

A *run* is one chromosome pair: TBLDA is fitted on the genes of the gene chromosome and the SNPs
of the SNP chromosome (fit samples only), features are ranked, factors interpreted, and eQTLs
mapped per tissue on the held-out samples. :func:`run_pipeline` executes any set of pairs

- through a local Dask cluster (:class:`distributed.LocalCluster`, ``workers`` processes with one
  thread each) by default,
- through an existing Dask scheduler when an address is given (e.g. dask-jobqueue on SLURM); an
  unreachable address is an :class:`~tbeqtl.errors.InputError` after ``connect_timeout`` seconds,
- or in this process when ``workers = 0``.

The data come from a prepared folder (:mod:`tbeqtl.pipeline.prepared`; ``data.path``, or written into
``RUN/data/`` from a data set folder, an in-memory data set or the raw inputs of ``[data]``,
:mod:`tbeqtl.pipeline.jobs.inputs`). Nothing of the data's size is shipped to the workers: a Dask
task receives the path of ``RUN/context.pkl`` (a :class:`PairContext`, small tables only) and its
pair, and reads the pair's two partitions itself (the folders must be on a filesystem the workers
share). Pairs are submitted only as worker threads free up, and the scheduler's allowed-failures is
set to ``run.allowed_failures`` (0): a pair whose worker dies is reported as "worker lost while
running pair X: ..." and the others go on.

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

Extra files beyond the layout's list: ``RUN/context.pkl`` (the pairs' context, Dask runs),
``RUN/data/`` (the prepared folder the run wrote, when not given one), ``fit/checkpoint/``
(resumable fit state),
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

import functools
import json
import logging
import pickle
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import __version__
from ..atomic import atomic_path, write_json, write_table
from ..data import EQTLData
from ..errors import InputError, TbeqtlError
from ..layout import PairLayout, RunLayout
from ..schema import validate_table
from . import covariates as cov
from . import holdout as hold
from .config import PipelineConfig
from .jobs import inputs as inp
from .jobs.common import PairContext, _chrom_key, _heldout_by_tissue, _tissue_s, open_prepared
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


def list_pairs(config: PipelineConfig, data) -> list[tuple[str, str]]:
    """Return the (gene chromosome, SNP chromosome) pairs a config asks for.

    Parameters
    ----------
    config
        ``data.pairs`` or ``data.all_pairs``.
    data
        The data set or prepared folder (:class:`~tbeqtl.pipeline.prepared.PreparedData`; its
        annotations give the chromosomes for ``all_pairs``).

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
    config: PipelineConfig, data, *, design_df: pd.DataFrame, known_df: pd.DataFrame, n_pcs: int
) -> tuple[list[str], dict[str, str]]:
    """Choose the tissues to map and check each has more held-out samples than covariates.

    Parameters
    ----------
    config
        Pipeline config (``mapping.tissues``, ``mapping.min_samples``, covariate counts).
    data
        The data set or prepared folder (its sample tables).
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
        raise InputError(
            "tissues with fewer held-out samples than covariates + 3 (reduce "
            "covariates.genotype_pcs / n_hidden, or exclude them with mapping.tissues or "
            "mapping.min_samples)",
            ids=bad,
        )
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


def _pair_features(data, gene_chrom: str, snp_chrom: str) -> tuple[pd.Index, pd.Index]:
    genes = (
        data.gene_info_df.index[(data.gene_info_df["chrom"].astype(str) == gene_chrom).to_numpy()]
        if "chrom" in data.gene_info_df.columns
        else pd.Index([])
    )
    snps = (
        data.snp_info_df.index[(data.snp_info_df["chrom"].astype(str) == snp_chrom).to_numpy()]
        if "chrom" in data.snp_info_df.columns
        else pd.Index([])
    )
    return genes, snps


def _new_record(name: str, pair: tuple[str, str]) -> dict[str, Any]:
    return {
        "pair": name,
        "gene_chrom": pair[0],
        "snp_chrom": pair[1],
        "status": "",
        "message": "",
        "n_genes": 0,
        "n_snps": 0,
        "seconds": 0.0,
        "seconds_load": 0.0,
        "seconds_fit": 0.0,
        "seconds_map": 0.0,
        "reused": False,
    }


def run_pair(ctx: PairContext, pair: tuple[str, str]) -> dict[str, Any]:
    """Run (or finish) one chromosome pair; never raises for errors inside the pair.

    The pair reads only its two partitions of the prepared folder (its genes' counts and its SNPs'
    genotypes, all samples) and its rows of the ancestry subspace.

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
        ``message``, ``n_genes``, ``n_snps``, ``seconds``, ``seconds_load`` (opening the prepared
        folder, once per process, reading the two partitions, subsetting them to the fit samples),
        ``seconds_fit`` (reading the ancestry rows, TBLDA),
        ``seconds_map`` (the eQTL stage), ``reused`` (already finished before).
    """
    start = time.perf_counter()
    gene_chrom, snp_chrom = pair
    layout = RunLayout(ctx.run_dir).pair(gene_chrom, snp_chrom)
    record = _new_record(layout.name, pair)
    status = _read_status(layout)
    try:
        genes, snps = _pair_features(ctx.prepared, gene_chrom, snp_chrom)  # opened once per process
        record.update(n_genes=len(genes), n_snps=len(snps), seconds_load=time.perf_counter() - start)
        if status.get("pair") == "done":
            record.update(status="done", reused=True)
            return record
        _limit_threads(ctx.config.run.threads_per_worker)
        if not len(genes) or not len(snps):
            reason = (
                (f"no genes on {gene_chrom}" if not len(genes) else "")
                + (" and " if not len(genes) and not len(snps) else "")
                + (f"no SNPs on {snp_chrom}" if not len(snps) else "")
            )
            _set_status(layout, status, "pair", f"skipped: {reason}")
            record.update(status="skipped", message=reason)
            return record
        _run_stages(ctx, layout, status, record, genes, snps)
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


def _run_stages(
    ctx: PairContext,
    layout: PairLayout,
    status: dict[str, str],
    record: dict[str, Any],
    genes: pd.Index,
    snps: pd.Index,
) -> None:
    """Run the stages of one pair, each skipped when ``status`` says it is done (timings into ``record``)."""
    if status.get("holdout") != "done":
        write_table(validate_table(ctx.design_df, "holdout"), layout.holdout)
        _set_status(layout, status, "holdout", "done")
    tick = time.perf_counter()
    pair_data = ctx.prepared.load_pair(record["gene_chrom"], record["snp_chrom"])
    # subset drops individuals without fit samples: with holdout.unit = "individuals" the fit sees
    # neither the expression nor the genotypes of the held-out individuals (TBLDA refuses genotyped
    # individuals without samples), while the eQTL tests read their genotypes from pair_data
    sub = _drop_empty(pair_data.subset(genes=genes, snps=snps, samples=hold.fit_samples(ctx.design_df)))
    record["seconds_load"] += time.perf_counter() - tick
    tick = time.perf_counter()
    if status.get("fit") == "done" and (layout.fit / "model").exists():
        from ..tblda import TBLDA

        model = TBLDA.load(layout.fit / "model")
    else:
        model = _fit_stage(ctx, layout, sub)
        _set_status(layout, status, "fit", "done")
    record["seconds_fit"] = time.perf_counter() - tick
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
    tick = time.perf_counter()
    if status.get("eqtl") != "done":
        _eqtl_stage(
            ctx, layout, ranking_df, tables, pair_data, sub.genes, sub.snps, int(ctx.config.fit.n_topics)
        )
        _set_status(layout, status, "eqtl", "done")
    record["seconds_map"] = time.perf_counter() - tick
    logger.info(
        "pair %s: %.1f s loading its partitions, %.1f s fit, %.1f s mapping",
        layout.name,
        record["seconds_load"],
        record["seconds_fit"],
        record["seconds_map"],
    )


@functools.lru_cache(maxsize=2)
def _load_context(path: str, stamp: int) -> PairContext:
    with open(path, "rb") as handle:
        return pickle.load(handle)


def run_pair_from_file(ctx_path: str, pair: tuple[str, str]) -> dict[str, Any]:
    """Run one pair given the path of the pickled context (what a Dask task receives).

    The context is read once per worker process (from the run folder on the shared filesystem),
    so nothing but this path and the pair passes through the scheduler.

    Parameters
    ----------
    ctx_path
        ``RUN/context.pkl``, written by :func:`run_pipeline`.
    pair
        ``(gene_chrom, snp_chrom)``.

    Returns
    -------
    dict
        See :func:`run_pair`.
    """
    return run_pair(_load_context(str(ctx_path), Path(ctx_path).stat().st_mtime_ns), pair)


# --------------------------------------------------------------------------- driver
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
        changed = [
            f"{section}.{key}"
            for section in new
            for key in new[section]
            if old.get(section, {}).get(key) != new[section][key]
        ]
        raise InputError(
            f"{layout.root} holds pairs run with other settings; give a new output folder "
            "(or the same settings) to resume. Changed",
            ids=changed,
        )


def _connect(address: str, timeout: float):
    from distributed import Client

    try:
        return Client(address, timeout=f"{float(timeout)}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({exc})"
        ) from None


_LOST = ("KilledWorker", "CancelledError", "FutureCancelledError", "CommClosedError")


def _lost_record(pair: tuple[str, str], exc: BaseException) -> dict[str, Any]:
    """Return the record of a pair whose task did not return: its worker died, or the task could not run."""
    name = f"{pair[0]}__{pair[1]}"
    record = _new_record(name, pair)
    names = {klass.__name__ for klass in type(exc).__mro__}
    if names & set(_LOST):
        message = (
            f"worker lost while running pair {name}: {type(exc).__name__}: {exc} (out of memory or "
            "killed; see the worker's log)"
        )
    else:
        message = f"{type(exc).__name__}: {exc}"
    record.update(status="failed", message=message)
    return record


def _mark_failed(run_dir: str, record: dict[str, Any]) -> None:
    """Write a lost pair's failure into its status file (the worker could not), keeping finished stages."""
    layout = RunLayout(run_dir).pair(record["gene_chrom"], record["snp_chrom"])
    status = _read_status(layout)
    if status.get("pair") != "done":
        _set_status(layout, status, "pair", f"failed: {record['message']}")


def _set_allowed_failures(client, allowed_failures: int) -> None:
    """Set the scheduler's ``allowed-failures`` (see :class:`~tbeqtl.pipeline.config.RunConfig`)."""

    def tune(dask_scheduler=None, allowed=allowed_failures):
        before = dask_scheduler.allowed_failures
        dask_scheduler.allowed_failures = allowed
        return before

    before = client.run_on_scheduler(tune)
    if before != allowed_failures:
        logger.info(
            "Dask scheduler: allowed-failures %s -> %d (a pair whose worker dies is reported, not "
            "retried on the next worker)",
            before,
            allowed_failures,
        )


def _free_slots(client, n_running: int) -> int:
    """Worker threads not busy with one of our pairs (at least one while nothing runs)."""
    threads = sum(int(w.get("nthreads", 1)) for w in client.scheduler_info(n_workers=-1)["workers"].values())
    return max(threads, 1 if n_running == 0 else 0) - n_running


def _submit_as_slots_free(client, ctx_path: Path, pairs: list[tuple[str, str]]):
    """Yield ``(pair, future)`` as they finish, keeping no more pairs in flight than worker threads.

    A pair is handed to Dask only when a thread is free, so a worker holds just the pairs it runs:
    when it dies, only those are lost (Dask assigns small task groups to workers eagerly, and the
    scheduler marks every task a dead worker held).
    """
    from distributed import as_completed

    waiting = list(pairs)
    running: dict[Any, tuple[str, str]] = {}
    finished = as_completed(loop=client.loop)

    def fill() -> None:
        for _ in range(max(0, _free_slots(client, len(running)))):
            if not waiting:
                return
            pair = waiting.pop(0)
            key = f"pair-{pair[0]}__{pair[1]}-{time.time_ns()}"
            future = client.submit(run_pair_from_file, str(ctx_path), pair, pure=False, key=key)
            running[future] = pair
            finished.add(future)

    fill()
    for future in finished:
        pair = running.pop(future)
        fill()
        yield pair, future


def _execute(
    ctx: PairContext, pairs: list[tuple[str, str]], *, scheduler: str, workers: int, timeout: float
) -> list[dict[str, Any]]:
    from ..logs import progress

    if not scheduler and workers <= 0:
        return [run_pair(ctx, pair) for pair in progress(pairs, desc="pairs", total=len(pairs))]
    import dask
    from distributed import LocalCluster

    ctx_path = Path(ctx.run_dir) / "context.pkl"
    with atomic_path(ctx_path) as tmp:
        Path(tmp).write_bytes(pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL))
    allowed = int(ctx.config.run.allowed_failures)
    cluster = None
    if scheduler:
        client = _connect(scheduler, timeout)
    else:
        with dask.config.set({"distributed.scheduler.allowed-failures": allowed}):
            cluster = LocalCluster(
                n_workers=int(workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        client = _connect(cluster.scheduler_address, timeout)
    records = []
    try:
        _set_allowed_failures(client, allowed)
        done = _submit_as_slots_free(client, ctx_path, pairs)
        for pair, future in progress(done, desc="pairs", total=len(pairs)):
            try:
                record = future.result()
            except BaseException as exc:  # the worker died, or the task could not run
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                record = _lost_record(pair, exc)
                _mark_failed(ctx.run_dir, record)
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
            logger.info(
                "pair %s: done in %.1f s (%.1f s loading its partitions)",
                record["pair"],
                record["seconds"],
                record.get("seconds_load", 0.0),
            )
    elif record["status"] == "skipped":
        logger.warning("pair %s skipped: %s", record["pair"], record["message"])
    else:
        logger.error("pair %s failed: %s", record["pair"], record["message"])


def _pending(run_dir: Path, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [p for p in pairs if _read_status(RunLayout(run_dir).pair(*p)).get("pair") != "done"]


def _context(
    config: PipelineConfig, layout: RunLayout, data_dir: Path, *, in_place: bool, pairs: list[tuple[str, str]]
) -> tuple[PairContext, dict[str, Any]]:
    """Build the pairs' shared context from the prepared folder's small tables (see :class:`PairContext`)."""
    prepared = open_prepared(str(data_dir))
    hc = config.holdout
    design_df = hold.holdout_design(
        prepared.sample_map_s,
        min_samples=hc.min_samples,
        n_holdout=hc.n_holdout,
        seed=hc.seed,
        unit=hc.unit,
        fraction=hc.fraction,
    )
    held = hold.holdout_samples(design_df)
    if not len(held):  # only possible with unit = "samples"
        raise InputError(
            f"no individual has at least {hc.min_samples} samples: nothing to hold out for the "
            "eQTL tests (holdout.min_samples)"
        )
    geno_pcs_df = inp.genotype_pcs(config, prepared)
    known_df = cov.encode_known_covariates(
        held,
        columns=list(config.covariates.known),
        sample_info_df=prepared.sample_info_df,
        individual_info_df=prepared.individual_info_df,
        sample_map_s=prepared.sample_map_s,
    )
    tissues, skipped_tissues = check_tissues(
        config, prepared, design_df=design_df, known_df=known_df, n_pcs=geno_pcs_df.shape[1]
    )
    for tissue, reason in skipped_tissues.items():
        logger.warning("tissue %s not mapped: %s", tissue, reason)
    pending = _pending(layout.root, pairs)
    ancestry = inp.ancestry_files(config, prepared, data_dir, in_place=in_place, run_dir=layout.root)
    covariates = (
        inp.tissue_covariates(
            config, prepared, design_df=design_df, known_df=known_df, geno_pcs_df=geno_pcs_df, tissues=tissues
        ) if pending else {}
    )
    ctx = PairContext(
        config,
        str(layout.root.absolute()),  # the workers' working folder may differ
        str(Path(data_dir).absolute()),
        design_df,
        tuple(tissues),
        ancestry,
        geno_pcs_df,
        known_df,
        prepared.library_size_s,
        covariates,
    )
    info = {
        "design_df": design_df,
        "held": held,
        "tissues": tissues,
        "skipped_tissues": skipped_tissues,
        "ancestry": ancestry,
    }
    return ctx, info


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
        The data set, when already in memory (otherwise ``data.path`` or the raw inputs of
        ``[data]``); it is partitioned once into ``RUN/data/``.

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
    data_dir, in_place = inp.prepared_folder(config, layout.root, data)
    prepared = open_prepared(str(data_dir))
    pairs = list_pairs(config, prepared)
    ctx, info = _context(config, layout, data_dir, in_place=in_place, pairs=pairs)
    provenance = {
        "versions": _versions(),
        "checksums": inp.input_checksums(config, data_dir, in_place=in_place),
    }
    config.write(layout.config, provenance=provenance)
    logger.info(
        "%d pairs, %d held-out samples, tissues mapped: %s",
        len(pairs),
        len(info["held"]),
        ", ".join(info["tissues"]),
    )
    records = _execute(
        ctx, pairs, scheduler=scheduler, workers=config.run.workers, timeout=config.run.connect_timeout
    )
    if not scheduler and config.run.workers <= 0:
        for record in records:
            _log_record(record)
    status_df, status_table = _status_tables(records, pairs)
    write_table(status_table, layout.summary / "pairs.tsv")
    stats = gather_results(layout, config, data=prepared, status_df=status_df)
    write_json(
        _run_json(
            config,
            prepared,
            data_dir,
            info,
            records,
            stats,
            provenance,
            seconds=time.perf_counter() - started,
        ),
        layout.run_json,
    )
    logger.info(
        "pipeline finished: %d done, %d skipped, %d failed (%.1f s)",
        int((status_df["status"] == "done").sum()),
        int((status_df["status"] == "skipped").sum()),
        int((status_df["status"] == "failed").sum()),
        time.perf_counter() - started,
    )
    return status_table


def _status_tables(
    records: list[dict[str, Any]], pairs: list[tuple[str, str]]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = {f"{g}__{s}": i for i, (g, s) in enumerate(pairs)}
    status_df = pd.DataFrame(records).sort_values("pair", key=lambda s: s.map(order), ignore_index=True)
    for column in ("seconds", "seconds_load", "seconds_fit", "seconds_map"):
        status_df[column] = np.where(status_df["reused"], 0.0, status_df[column]).astype(float)
    status_table = validate_table(
        status_df.drop(columns="reused").astype({"n_genes": np.int64, "n_snps": np.int64}), "pair_status"
    )
    return status_df, status_table


def _run_json(
    config: PipelineConfig,
    prepared,
    data_dir: Path,
    info: dict[str, Any],
    records: list[dict[str, Any]],
    stats: dict[str, Any],
    provenance: dict[str, Any],
    *,
    seconds: float,
) -> dict[str, Any]:
    hc = config.holdout
    design_df, held = info["design_df"], info["held"]
    timing = ("seconds", "seconds_load", "seconds_fit", "seconds_map")
    return {
        "tool": "tbeqtl run",
        "tbeqtl_version": __version__,
        "config": config.to_dict(),
        "versions": provenance["versions"],
        "input_checksums": provenance["checksums"],
        "data": str(data_dir),
        "holdout": {
            "n_samples": int(len(design_df)),
            "n_held_out": int(len(held)),
            "n_individuals_held_out": int(prepared.sample_map_s.reindex(held).nunique()),
            "n_individuals_fit": int(prepared.sample_map_s.reindex(hold.fit_samples(design_df)).nunique()),
            "unit": hc.unit,
            "fraction": hc.fraction if hc.unit == "individuals" else None,
            "min_samples": hc.min_samples,
            "n_holdout": hc.n_holdout,
            "seed": hc.seed,
        },
        "tissues_mapped": info["tissues"],
        "tissues_skipped": info["skipped_tissues"],
        "ancestry": info["ancestry"][0] if info["ancestry"] else "estimated by each fit from its SNPs",
        "pairs": {
            r["pair"]: {
                "status": r["status"],
                "message": r["message"],
                "reused": bool(r["reused"]),
                **{k: 0.0 if r["reused"] else float(r[k]) for k in timing},
            }
            for r in records
        },
        "summary": stats,
        "seconds": seconds,
    }
