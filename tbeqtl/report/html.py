"""Render report sections into one self-contained HTML file (jinja2 template ``report.html.j2``).

Figures are embedded as base64 PNG ``data:`` URIs and tables are sortable by a small inline
script, so the file opens offline and can be mailed as is.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from .. import __version__
from .sections import Section

__all__ = ["render_html"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("tbeqtl.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=False,
    lstrip_blocks=False,
    keep_trailing_newline=True,
)


def render_html(sections: list[Section], *, run_dir: str | Path, title: str = "tbeqtl report") -> str:
    """Render the report HTML.

    Parameters
    ----------
    sections
        From :func:`tbeqtl.report.sections.build_sections`.
    run_dir
        The run folder (shown in the header).
    title
        Page title.

    Returns
    -------
    str
        The complete HTML document.
    """
    body_sections = [s for s in sections]
    n_absent = sum(1 for s in body_sections if s.absent)
    return _ENV.get_template("report.html.j2").render(
        title=title,
        run_dir=str(run_dir),
        version=__version__,
        sections=body_sections,
        n_sections=len(body_sections),
        n_absent=n_absent,
        n_shown=len(body_sections) - n_absent,
    )
