"""``tbeqtl report RUN_DIR [--out DIR]``: HTML and PDF report of a finished pipeline run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InputError

COMMAND = "report"
HELP = "build the HTML and PDF report of a pipeline run folder (reads its result tables, never refits)"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the report options."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="pipeline run folder (as written by `tbeqtl run`)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: RUN_DIR/report)")


def run(args: argparse.Namespace) -> int:
    """Build the report and print where it is."""
    from ..report import build_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise InputError("run folder not found", path=str(run_dir))
    html_path, pdf_path = build_report(run_dir, out_dir=args.out)
    print(f"report: {html_path} and {pdf_path}")
    return 0
