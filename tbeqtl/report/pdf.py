"""Print the report HTML to PDF with WeasyPrint, so HTML and PDF share one source of content."""

from __future__ import annotations

import logging
from pathlib import Path

from ..atomic import atomic_path
from ..errors import MissingDependencyError

__all__ = ["write_pdf"]

logger = logging.getLogger(__name__)


def write_pdf(html: str, path: str | Path, *, base_url: str | Path | None = None) -> int:
    """Render ``html`` to a PDF file atomically.

    Parameters
    ----------
    html
        The report HTML (self-contained: images are data URIs).
    path
        Destination ``.pdf``.
    base_url
        Base for relative links (unused by self-contained reports).

    Returns
    -------
    int
        Number of pages written.

    Raises
    ------
    MissingDependencyError
        If WeasyPrint or its Pango libraries are not installed.
    """
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: Pango/cairo shared libraries missing
        raise MissingDependencyError(
            f"PDF output needs WeasyPrint and the Pango libraries ({exc}); install them with "
            "`pip install weasyprint` and `apt-get install libpango-1.0-0 libpangoft2-1.0-0`") from exc
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document = weasyprint.HTML(string=html, base_url=None if base_url is None else str(base_url)).render()
    with atomic_path(path) as tmp:
        document.write_pdf(tmp)
    n_pages = len(document.pages)
    logger.info("wrote %s (%d pages)", path, n_pages)
    return n_pages
