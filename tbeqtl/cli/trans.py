"""``tbeqtl trans``: tensorQTL's trans mapping, exact float64, genotypes streamed in variant blocks.

Writes ``--out DIR/PREFIX.trans_qtl_pairs.parquet`` (``variant_id phenotype_id pval b b_se af``): every
variant x phenotype pair with ``pval <= --pval-threshold`` among variants with MAF >=
``--maf-threshold`` (default 0.05, tensorQTL's Python default; its CLI default is 0); with
``--interaction FILE`` the interaction model's columns, pairs kept by their smallest genotype x term
p-value (tensorQTL's interaction MAF rule); optionally
without pairs within ``--filter-cis WINDOW`` bp of the phenotype (tensorQTL's ``filter_cis``). The
number of tests run goes to ``DIR/run.json`` (entry ``trans``) for FDR over the tests run.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .cohort_inputs import (
    add_cohort_arguments,
    open_cohort,
    read_interaction,
    record_run,
)

COMMAND = "trans"
HELP = "tensorQTL-style trans mapping: every variant x phenotype pair under a p-value threshold"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tbeqtl trans`` options.

    Parameters
    ----------
    parser
        The subcommand parser.
    """
    add_cohort_arguments(parser)
    parser.add_argument(
        "--pval-threshold", type=float, default=1e-5, help="keep pairs with p <= this (default: 1e-5)"
    )
    parser.add_argument(
        "--maf-threshold", type=float, default=0.05, help="keep variants with MAF >= this (default: 0.05)"
    )
    parser.add_argument(
        "--filter-cis",
        type=float,
        default=None,
        metavar="WINDOW",
        help="drop pairs within WINDOW bp of the phenotype on its chromosome (tensorQTL's filter_cis)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=20_000, help="variants per block (memory; default: 20000)"
    )
    parser.add_argument(
        "--interaction",
        default=None,
        help="interaction terms (samples x terms): y ~ g + i + g:i, pairs kept by their smallest g:i p-value",
    )


def _map(args: argparse.Namespace, source, phenotype_df, covariates_df, sample_map, checksums: dict):
    """Read the interaction table (if any) and run :func:`~tbeqtl.association.trans.map_trans`."""
    from ..association.trans import map_trans

    interaction_df = read_interaction(args.interaction, checksums) if args.interaction else None
    pairs = map_trans(
        source,
        phenotype_df,
        covariates_df,
        interaction_s=interaction_df,
        pval_threshold=args.pval_threshold,
        maf_threshold=args.maf_threshold,
        mac_threshold=args.mac_threshold,
        batch_size=args.batch_size,
        sample_map=sample_map,
        gtex_ids=args.gtex_ids,
    )
    return pairs


def run(args: argparse.Namespace) -> int:
    """Run ``tbeqtl trans``.

    Parameters
    ----------
    args
        Parsed options.

    Returns
    -------
    int
        Exit status.
    """
    from ..association.trans import filter_cis
    from ..atomic import atomic_path
    from ..schema import validate_table

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checksums: dict[str, str] = {}
    with open_cohort(args, checksums) as (source, phenotype_df, pos_df, covariates_df, sample_map):
        pairs = _map(args, source, phenotype_df, covariates_df, sample_map, checksums)
        variant_df = source.variant_df
    counts = {k: int(v) for k, v in pairs.attrs.items() if k.startswith("n_")}
    n_found = len(pairs)
    if args.filter_cis is not None:
        pairs = filter_cis(pairs, pos_df, variant_df, window=int(args.filter_cis))
        logger.info("filter_cis (%d bp): %d of %d pairs kept", int(args.filter_cis), len(pairs), n_found)
    if not args.interaction:
        pairs = validate_table(pairs, "trans_qtl_pairs")
    path = out / f"{args.prefix}.trans_qtl_pairs.parquet"
    with atomic_path(path) as tmp:
        pairs.to_parquet(tmp, index=False)
    counts.update({"pairs_found": n_found, "pairs_written": len(pairs)})
    params = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    record_run(
        out,
        "trans",
        {
            "params": params,
            "input_sha256": checksums,
            "counts": counts,
            "files": {"trans_qtl_pairs": path.name},
        },
    )
    logger.info("wrote %s (%d pairs)", path, len(pairs))
    return 0
