"""``tbeqtl fit``: fit TBLDA to a counts matrix, a sample map and genotypes."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from ..data import EQTLData
from ..errors import InputError
from ..io.ancestry import (
    read_admixture_p,
    read_admixture_q,
    read_terastructure_beta,
    read_terastructure_theta,
)
from ..tblda.choices import ALPHA_METHODS, INFERENCE, LEARNING_RATE, MAX_STEPS
from ..tblda.convergence import STOP_RULES

COMMAND = "fit"
HELP = "fit the TBLDA topic model (counts + genotypes + sample map) and write topics, model and run.json"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``tbeqtl fit``.

    Parameters
    ----------
    parser
        The subcommand's parser.
    """
    parser.add_argument(
        "--counts",
        required=True,
        help="raw counts: TSV (gene IDs in the first column, sample IDs as header) or GCT",
    )
    parser.add_argument("--sample-map", required=True, help="TSV with columns sample, individual")
    parser.add_argument(
        "--genotypes",
        required=True,
        help="dosage TSV (SNP IDs first column, individual IDs header, NA missing), "
        "a PLINK 2 or PLINK 1 prefix (or one of its files), or a VCF/BCF (GT)",
    )
    parser.add_argument("--n-topics", type=int, required=True, help="number of topics K")
    parser.add_argument("--out", required=True, help="output folder")
    anc = parser.add_argument_group("ancestry subspace (beta, tau): files, or an internal estimate")
    anc.add_argument(
        "--ancestry-beta",
        help="allele frequencies beta: terastructure beta.txt or "
        "ADMIXTURE .P (rows in the genotype file's SNP order)",
    )
    anc.add_argument(
        "--ancestry-tau",
        help="admixture tau: terastructure theta.txt or ADMIXTURE .Q "
        "(rows in the genotype file's individual order)",
    )
    anc.add_argument(
        "--ancestry-format",
        default="auto",
        choices=["auto", "terastructure", "admixture"],
        help="format of the ancestry files (default: ADMIXTURE for .P/.Q suffixes, else terastructure)",
    )
    anc.add_argument(
        "--n-ancestry",
        type=int,
        default=None,
        help="estimate beta and tau internally with Q populations (default 3 when no files)",
    )
    fit = parser.add_argument_group("inference")
    fit.add_argument(
        "--inference",
        choices=INFERENCE,
        default="svi",
        help="svi (default, the published recipe) or cavi (closed-form coordinate ascent; "
        "fast, but overestimates alpha)",
    )
    fit.add_argument(
        "--cavi-tol",
        type=float,
        default=1e-6,
        help="CAVI: stop when the bound changes by less than this (relative)",
    )
    fit.add_argument(
        "--max-steps",
        type=int,
        default=MAX_STEPS,
        help=f"maximum SVI steps / CAVI iterations (default: {MAX_STEPS})",
    )
    fit.add_argument(
        "--stop-rule",
        choices=STOP_RULES,
        default="abs",
        help="abs (default, corrected) or compat (the published rule without abs())",
    )
    fit.add_argument("--tol", type=float, default=1e-4, help="relative-change tolerance (default: 1e-4)")
    fit.add_argument("--window", type=int, default=1000, help="averaging window in steps (default: 1000)")
    fit.add_argument(
        "--average-window",
        type=int,
        default=1000,
        help="report the average of the SVI iterates over about this many final steps "
        "(default: 1000; 0: the last iterate, as published)",
    )
    fit.add_argument(
        "--min-steps", type=int, default=5000, help="no stop before this many steps (default: 5000)"
    )
    fit.add_argument(
        "--learning-rate",
        type=float,
        default=LEARNING_RATE,
        help=f"Adam learning rate (default: {LEARNING_RATE})",
    )
    fit.add_argument(
        "--init-jitter",
        type=float,
        default=0.0,
        help="seeded noise on the initial log-concentrations (default 0: published all-ones init)",
    )
    fit.add_argument(
        "--alpha-method",
        choices=ALPHA_METHODS,
        default="marginal",
        help="how alpha is estimated: marginal (importance-weighted marginal likelihood after "
        "the fit; default) or elbo (the published ELBO point estimate)",
    )
    fit.add_argument(
        "--alpha-particles",
        type=int,
        default=256,
        help="importance samples per SNP for --alpha-method marginal (default: 256)",
    )
    fit.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    fit.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    fit.add_argument("--resume", action="store_true", help="resume from <out>/checkpoint if present")
    prior = parser.add_argument_group("priors (published defaults)")
    for name, default, text in (
        ("xi", 1.0, "Dirichlet prior of gene topics psi"),
        ("sigma", 1.0, "Dirichlet prior of sample proportions phi"),
        ("zeta", 1.0, "Beta prior (first) of SNP loadings lambda"),
        ("gamma", 1.0, "Beta prior (second) of SNP loadings lambda"),
        ("delta", 0.05, "lower bound of alpha"),
        ("mu", 0.85, "upper bound of alpha"),
    ):
        prior.add_argument(f"--{name}", type=float, default=default, help=f"{text} (default: {default})")


def _read_counts(path: str) -> pd.DataFrame:
    from ..io import read_counts, read_gct

    name = path.lower()
    if name.endswith(".gct") or name.endswith(".gct.gz"):
        return read_gct(path)
    return read_counts(path)


def _read_genotypes(path: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    from ..io.genotypes import read_genotype_table, sniff_genotype_format

    return read_genotype_table(path, fmt=sniff_genotype_format(path, text_matrix="dosage"))


def _read_ancestry(args: argparse.Namespace, genotype_df: pd.DataFrame):
    if args.ancestry_beta is None and args.ancestry_tau is None:
        return None
    if args.ancestry_beta is None or args.ancestry_tau is None:
        raise InputError("--ancestry-beta and --ancestry-tau must be given together")
    if args.n_ancestry is not None:
        raise InputError("give either --ancestry-beta/--ancestry-tau or --n-ancestry, not both")
    fmt = args.ancestry_format
    if fmt == "auto":
        admix = args.ancestry_beta.endswith(".P") and args.ancestry_tau.endswith(".Q")
        fmt = "admixture" if admix else "terastructure"
    if fmt == "admixture":
        return (
            read_admixture_p(args.ancestry_beta, genotype_df.index),
            read_admixture_q(args.ancestry_tau, genotype_df.columns),
        )
    return (
        read_terastructure_beta(args.ancestry_beta, genotype_df.index),
        read_terastructure_theta(args.ancestry_tau, genotype_df.columns),
    )


def run(args: argparse.Namespace) -> int:
    """Read the inputs, fit TBLDA and write the outputs.

    Parameters
    ----------
    args
        Parsed arguments.

    Returns
    -------
    int
        0 on success.
    """
    from ..io import read_sample_map
    from ..tblda import TBLDA  # imports torch: only when the command runs
    from ..tblda.io import write_outputs

    out = Path(args.out)
    counts_df = _read_counts(args.counts)
    sample_map_s = read_sample_map(args.sample_map)
    genotype_df, snp_info_df = _read_genotypes(args.genotypes)
    ancestry = _read_ancestry(args, genotype_df)
    data = EQTLData.from_frames(counts_df, genotype_df, sample_map_s, snp_info_df=snp_info_df)
    model = TBLDA(
        args.n_topics,
        xi=args.xi,
        sigma=args.sigma,
        zeta=args.zeta,
        gamma=args.gamma,
        delta=args.delta,
        mu=args.mu,
        n_ancestry=args.n_ancestry or 3,
        inference=args.inference,
        cavi_tol=args.cavi_tol,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
        stop_rule=args.stop_rule,
        tol=args.tol,
        window=args.window,
        min_steps=args.min_steps,
        average_window=args.average_window,
        init_jitter=args.init_jitter,
        alpha_method=args.alpha_method,
        alpha_particles=args.alpha_particles,
        random_state=args.seed,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
    )
    model.fit(data, ancestry=ancestry, resume=args.resume, checkpoint_dir=out / "checkpoint")
    write_outputs(
        model,
        out,
        extra={
            "inputs": {
                "counts": args.counts,
                "sample_map": args.sample_map,
                "genotypes": args.genotypes,
                "ancestry_beta": args.ancestry_beta,
                "ancestry_tau": args.ancestry_tau,
            }
        },
    )
    logger.info("alpha = %.4f after %d steps (%s)", model.alpha_, model.n_iter_, model.stop_reason_)
    return 0
