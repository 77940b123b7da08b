"""``tbeqtl run``: the whole pipeline over chromosome pairs, locally or on a Dask cluster.

Examples
--------
One pair on a laptop, everything else from a config file::

    tbeqtl run --config run.toml --pairs chr1:chr2 --out runs/chr1_chr2

All 22 x 22 pairs on an existing Dask cluster (e.g. dask-jobqueue on SLURM)::

    tbeqtl run --config run.toml --all-pairs --scheduler tcp://10.0.0.5:8786 --out runs/genome

Rerunning the same command into the same ``--out`` skips finished pairs, retries failed ones (a pair
whose Dask worker died is reported as "worker lost ...") and resumes interrupted fits from their
checkpoints. Workers read their pairs' partitions from the prepared folder, which must be on a
filesystem they share (see docs/scale-out.md).
"""

from __future__ import annotations

import argparse
import logging

from ..errors import InputError
from ..pipeline.config import PipelineConfig

COMMAND = "run"
HELP = "run the TBLDA eQTL pipeline on chromosome pairs (fit, rank, interpret, map) with Dask"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``tbeqtl run``.

    Parameters
    ----------
    parser
        The subcommand's parser.
    """
    parser.add_argument("--config", help="pipeline config (TOML); options below override it")
    parser.add_argument(
        "--preset",
        choices=["paper", "demo", "test"],
        default=None,
        help="start from a named config instead of --config: paper (defaults), "
        "demo (small simulated data in minutes), test (seconds)",
    )
    parser.add_argument(
        "--data",
        help="a prepared folder (tbeqtl prepare; read in place) or a data set folder "
        "(tbeqtl.io.read_dataset layout, e.g. tbeqtl simulate's; partitioned into OUT/data); "
        "sets data.path. Raw inputs go in the config's [data] and [prepare] sections",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--pairs", help="comma-separated GENE_CHROM:SNP_CHROM pairs, e.g. chr1:chr1,chr1:chr2")
    which.add_argument(
        "--all-pairs", action="store_true", help="every (gene chromosome, SNP chromosome) pair of the data"
    )
    parser.add_argument("--out", required=True, help="run folder (rerun into it to resume)")
    parser.add_argument(
        "--scheduler", help="address of an existing Dask scheduler (default: a local cluster)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local Dask worker processes (0: run in this process; default from config: 2)",
    )
    parser.add_argument(
        "--max-steps", type=int, default=None, help="maximum SVI steps per fit (fit.max_steps)"
    )
    parser.add_argument("--n-topics", type=int, default=None, help="topics K per fit (fit.n_topics)")


def _config(args: argparse.Namespace) -> PipelineConfig:
    if args.config and args.preset:
        raise InputError("give --config or --preset, not both")
    if args.config:
        config = PipelineConfig.from_toml(args.config)
    else:
        config = PipelineConfig.preset(args.preset or "paper")
    data: dict = {}
    if args.data:
        data["path"] = args.data
    if args.pairs:
        data["pairs"] = [p.strip() for p in args.pairs.split(",") if p.strip()]
        data["all_pairs"] = False
    if args.all_pairs:
        data["all_pairs"] = True
    fit: dict = {}
    if args.max_steps is not None:
        fit["max_steps"] = args.max_steps
    if args.n_topics is not None:
        fit["n_topics"] = args.n_topics
    seed_given = args.seed != 0 or not args.config
    if seed_given:
        fit["seed"] = args.seed
    run: dict = {}
    if args.workers is not None:
        if args.workers < 0:
            raise InputError("--workers must be >= 0", ids=[args.workers])
        run["workers"] = args.workers
    if args.scheduler:
        run["scheduler"] = args.scheduler
    changes = {k: v for k, v in (("data", data), ("fit", fit), ("run", run)) if v}
    if seed_given:
        changes["holdout"] = {"seed": args.seed}
    return config.replace(**changes) if changes else config


def run(args: argparse.Namespace) -> int:
    """Run ``tbeqtl run``; exit status 1 when some pair failed (the others are still gathered)."""
    from ..pipeline import run_pipeline

    config = _config(args)
    status = run_pipeline(config, out_dir=args.out, scheduler=config.run.scheduler or None)
    failed = status.loc[status["status"] == "failed"]
    for row in failed.itertuples(index=False):
        logger.error("pair %s failed: %s", row.pair, row.message)
    return 1 if len(failed) else 0
