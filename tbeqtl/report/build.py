"""Build the report of a run folder: ``report.html`` and ``report.pdf`` (plus figures and tables).

Rebuilding only reads the finished tables (:mod:`tbeqtl.report.load`), so it takes seconds and
never refits anything.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..atomic import atomic_write, write_json, write_table
from ..layout import RunLayout
from .html import render_html
from .load import load_run
from .pdf import write_pdf
from .sections import build_sections

__all__ = ["build_report"]

logger = logging.getLogger(__name__)


def build_report(run_dir: str | Path, *, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write the HTML and PDF report of a pipeline run folder.

    Parameters
    ----------
    run_dir
        The run folder (:class:`tbeqtl.layout.RunLayout`).
    out_dir
        Where to write; default ``RUN_DIR/report``. It receives ``report.html`` (self-contained),
        ``report.pdf`` (printed from the same HTML), ``figures/<name>.png``, ``tables/<name>.tsv``
        (every table as shown) and ``report.json`` (sections drawn, sections absent with reasons,
        PDF page count). Every file is written atomically.

    Returns
    -------
    tuple of pathlib.Path
        ``(html_path, pdf_path)``.

    Examples
    --------
    >>> from tbeqtl.report import build_report
    >>> html_path, pdf_path = build_report("runs/demo")  # doctest: +SKIP
    """
    start = time.perf_counter()
    layout = RunLayout(Path(run_dir))
    out = Path(out_dir) if out_dir is not None else layout.report
    logger.info("building the report of %s", layout.root)
    data = load_run(layout.root)
    sections = build_sections(data)
    html = render_html(sections, run_dir=layout.root, title=f"tbeqtl report: {layout.root.name}")
    html_path = out / "report.html"
    pdf_path = out / "report.pdf"
    for section in sections:
        for fig in section.figures:
            with atomic_write(out / "figures" / f"{fig.key}.png", "wb") as handle:
                handle.write(fig.png)
        for table in section.tables:
            write_table(table.df, out / "tables" / f"{table.key}.tsv")
    with atomic_write(html_path) as handle:
        handle.write(html)
    n_pages = write_pdf(html, pdf_path)
    write_json({
        "run_dir": str(layout.root),
        "sections": [s.key for s in sections if not s.absent],
        "absent": {s.key: s.absent for s in sections if s.absent},
        "figures": [f.key for s in sections for f in s.figures],
        "tables": [t.key for s in sections for t in s.tables],
        "pdf_pages": n_pages,
    }, out / "report.json")
    logger.info("report written to %s and %s in %.1f s (%d sections absent)", html_path, pdf_path,
                time.perf_counter() - start, sum(1 for s in sections if s.absent))
    return html_path, pdf_path
