"""HTML and PDF reports of a pipeline run, built from its finished result tables.

:func:`build_report` reads a run folder (:class:`tbeqtl.layout.RunLayout`), draws the paper's
figures (:mod:`tbeqtl.report.figures`) and writes one self-contained HTML file and a PDF printed
from the same HTML.
"""

from __future__ import annotations

from .build import build_report
from .load import ReportData, load_run

__all__ = ["ReportData", "build_report", "load_run"]
