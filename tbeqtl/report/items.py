"""Report building blocks: embedded figures, formatted tables and sections.

A :class:`Section` holds the figures, tables and notes of one part of the report, or the reason
it is absent. The HTML template renders the sections, and the PDF is printed from that HTML, so
both outputs have exactly the same content.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["DPI", "FigureItem", "Section", "TableItem", "figure_png", "format_table"]

#: Resolution of the embedded figures.
DPI = 150


@dataclass
class FigureItem:
    """One embedded figure.

    Attributes
    ----------
    key
        Stable name (also the PNG file name under ``figures/``).
    caption
        What the figure shows.
    png
        The PNG bytes.
    """

    key: str
    caption: str
    png: bytes

    @property
    def data_uri(self) -> str:
        """The PNG as a ``data:image/png;base64,...`` URI."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class TableItem:
    """One table, formatted for display.

    Attributes
    ----------
    key
        Stable name (also the TSV file name under ``tables/``).
    caption
        What one row is.
    df
        The table as shown (also written to ``tables/<key>.tsv``).
    columns
        Column headers.
    rows
        Per row, per cell: (display text, sort key); numeric cells sort numerically.
    note
        A line under the table (e.g. how many rows are not shown).
    """

    key: str
    caption: str
    df: pd.DataFrame
    columns: list[str] = field(default_factory=list)
    rows: list[list[tuple[str, str]]] = field(default_factory=list)
    note: str = ""


@dataclass
class Section:
    """One part of the report.

    Attributes
    ----------
    key
        Anchor name.
    title
        Heading.
    figures, tables
        Content.
    text
        Paragraphs shown first (the findings' summary).
    notes
        Sentences shown above the content, in italics.
    absent
        Why the section cannot be shown (empty when it is shown).
    """

    key: str
    title: str
    figures: list[FigureItem] = field(default_factory=list)
    tables: list[TableItem] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    absent: str = ""


def figure_png(fig: Figure, *, dpi: int = DPI) -> bytes:
    """Render a figure to PNG bytes (no timestamps, so rebuilds give identical files).

    Parameters
    ----------
    fig
        The figure.
    dpi
        Resolution.

    Returns
    -------
    bytes
        PNG data.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def _format_cell(value: Any, column: str) -> tuple[str, str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "", ""
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), str(int(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}", repr(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isinf(v):
            return str(v), str(v)
        low = column.lower()
        is_p = "p_value" in low or "fdr" in low or low.startswith("p") or "q_value" in low
        if is_p and 0 < abs(v) < 1e-3:
            text = f"{v:.2e}"
        elif v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            text = f"{v:.3g}"
        else:
            text = f"{v:.4g}"
        return text, repr(v)
    return str(value), ""


def format_table(df: pd.DataFrame, *, key: str, caption: str, max_rows: int = 60) -> TableItem:
    """Format a DataFrame for the HTML/PDF report.

    Parameters
    ----------
    df
        The table.
    key
        Stable name.
    caption
        What one row is.
    max_rows
        Rows shown; the rest are counted in the note.

    Returns
    -------
    TableItem
        The formatted table.
    """
    shown = df.head(max_rows).reset_index(drop=True)
    columns = [str(c) for c in shown.columns]
    rows = [
        [_format_cell(v, c) for v, c in zip(row, columns, strict=True)]
        for row in shown.itertuples(index=False, name=None)
    ]
    note = f"{len(df) - max_rows:,} more rows not shown." if len(df) > max_rows else ""
    return TableItem(key=key, caption=caption, df=shown, columns=columns, rows=rows, note=note)
