"""``tbeqtl simulate``: write a simulated GTEx-like data set with its planted truth."""

from __future__ import annotations

import argparse
import logging

from ..simulate import PRESETS, simulate

COMMAND = "simulate"
HELP = "simulate a GTEx-like telescoping data set from the TBLDA model, with planted truth in <out>/truth/"

logger = logging.getLogger(__name__)

#: (option, parameter, type, help) for the main sizes and switches.
_OPTIONS = (
    ("--n-genes", "n_genes", int, "genes G"),
    ("--n-samples", "n_samples", int, "expression samples L (bulk)"),
    ("--n-individuals", "n_individuals", int, "individuals N"),
    ("--n-snps", "n_snps", int, "SNPs S"),
    ("--n-topics", "n_topics", int, "topics K"),
    ("--n-ancestry", "n_ancestry", int, "ancestral populations Q"),
    ("--alpha", "alpha", float, "weight alpha of the private ancestry subspace"),
    ("--n-tissues", "n_tissues", int, "tissues (cell types in the single-cell variant)"),
    ("--n-tissue-topics", "n_tissue_topics", int, "tissue-specific topics per tissue (0: all shared)"),
    ("--n-chromosomes", "n_chromosomes", int, "chromosomes chr1..chrN for genes and SNPs"),
    ("--n-cis", "n_cis", int, "planted cis-eQTLs"),
    ("--n-trans", "n_trans", int, "planted trans-eQTLs"),
    ("--missing-rate", "missing_rate", float, "fraction of missing genotype calls"),
    ("--cells-per-donor", "cells_per_donor", float, "single-cell variant: mean cells per donor"),
    ("--expression-noise-sd", "expression_noise_sd", float,
     "sd of a per-sample, per-gene log-normal rate multiplier (overdispersion; default 0)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``tbeqtl simulate``.

    Parameters
    ----------
    parser
        The subcommand's parser.
    """
    parser.add_argument("--out", required=True,
                        help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--preset", default="demo", choices=sorted(PRESETS),
                        help="size and settings preset (default: demo, GTEx-like with every extra; small "
                             "is the pure TBLDA test size); the options below override it")
    sizes = parser.add_argument_group("sizes and settings (default: from the preset)")
    for flag, dest, kind, text in _OPTIONS:
        sizes.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    sizes.add_argument("--no-covariate-effects", dest="covariate_effects", action="store_false", default=None,
                       help="sex and platform do not change expression")
    sizes.add_argument("--pure", action="store_true",
                       help="a pure draw of the TBLDA model: no eQTLs, no covariate effects")
    parser.add_argument("--overwrite", action="store_true", help="replace a data set already in --out")


def run(args: argparse.Namespace) -> int:
    """Simulate and write the data set.

    Parameters
    ----------
    args
        Parsed arguments.

    Returns
    -------
    int
        Exit status 0.
    """
    overrides = {dest: getattr(args, dest) for _, dest, _, _ in _OPTIONS if getattr(args, dest) is not None}
    if args.covariate_effects is not None:
        overrides["covariate_effects"] = args.covariate_effects
    if args.pure:
        overrides.update(n_cis=0, n_trans=0, covariate_effects=False)
    sim = simulate(preset=args.preset, seed=args.seed, **overrides)
    logger.info("%r", sim)
    sim.write(args.out, overwrite=args.overwrite)
    return 0
