"""``tbeqtl rank``: per-topic gene (2-Wasserstein) and SNP (MAF-residual) ranking of a fitted model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..atomic import write_json, write_table
from ..tblda.ranking import GENE_SCORES, expression_level_spearman, gene_w2_scores, rank_features

COMMAND = "rank"
HELP = "rank genes and SNPs per topic of a fitted TBLDA model and write feature_ranking.tsv"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``tbeqtl rank``.

    Parameters
    ----------
    parser
        The subcommand's parser.
    """
    parser.add_argument("--model", required=True, help="`tbeqtl fit` output folder or saved model folder")
    parser.add_argument("--out", required=True, help="output folder (writes feature_ranking.tsv)")
    parser.add_argument("--top-fraction", type=float, default=0.1,
                        help="fraction of features kept per topic (default: 0.1)")
    parser.add_argument("--gene-score", choices=GENE_SCORES, default="w2",
                        help="w2 (paper) or w2_normalized (expression-level effect removed)")
    parser.add_argument("--w2-method", choices=["auto", "exact", "gaussian"], default="auto",
                        help="exact quantile integral, Gaussian shortcut, or auto "
                             "(shortcut where within its error bound)")


def run(args: argparse.Namespace) -> int:
    """Load the model, rank and write the table.

    Parameters
    ----------
    args
        Parsed arguments.

    Returns
    -------
    int
        0 on success.
    """
    from ..tblda.io import load_model  # imports torch: only when the command runs

    model = load_model(args.model)
    table = rank_features(model, top_fraction=args.top_fraction, gene_score=args.gene_score,
                          w2_method=args.w2_method)
    out = Path(args.out)
    write_table(table, out / "feature_ranking.tsv")
    diag = {}
    for score in GENE_SCORES:
        scores = gene_w2_scores(model.gene_concentration_, method=args.w2_method,
                                normalized=score == "w2_normalized")
        diag[score] = expression_level_spearman(scores, model.gene_mean_count_)["mean"]
    write_json({"gene_score": args.gene_score, "top_fraction": args.top_fraction,
                "mean_spearman_score_vs_mean_count": diag}, out / "ranking.json")
    logger.info("wrote %d ranked features to %s", len(table), out / "feature_ranking.tsv")
    return 0
