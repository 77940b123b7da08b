"""``tbeqtl demo [--out DIR]``: simulate GTEx-like data, run the whole pipeline, write the report.

Example::

    tbeqtl demo                      # writes reports/demo/report.html and report.pdf
    tbeqtl demo --out /tmp/demo --go-gmt go_bp_propagated.ensembl.gmt.gz
"""

from __future__ import annotations

import argparse
import logging

COMMAND = "demo"
HELP = ("simulate a GTEx-like data set, run the whole pipeline (fit, rank, map, permutations, "
        "enrichment, GTEx comparison) and write the HTML/PDF report")

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo options."""
    parser.add_argument("--out", default="reports/demo", metavar="DIR",
                        help="run folder; the report is DIR/report.html and DIR/report.pdf "
                             "(default: reports/demo)")
    parser.add_argument("--go-gmt", default=None, metavar="GMT",
                        help="GO biological-process gene sets with Ensembl IDs (default: "
                             "/work/shared/data/go_human/go_bp_propagated.ensembl.gmt.gz when present)")
    parser.add_argument("--workers", type=int, default=None,
                        help="Dask worker processes (default: 2; 0 runs the pairs in this process)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="SVI steps per TBLDA fit (default: the demo config's)")


def run(args: argparse.Namespace) -> int:
    """Run the demo and print where the report is."""
    from ..pipeline.demo import run_demo

    html_path, pdf_path = run_demo(args.out, seed=args.seed, go_gmt=args.go_gmt, workers=args.workers,
                                   max_steps=args.max_steps)
    logger.info("report: %s and %s", html_path, pdf_path)
    print(f"report: {html_path} and {pdf_path}")
    return 0
