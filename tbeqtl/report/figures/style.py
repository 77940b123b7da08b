"""Colour-blind-safe palettes and shared figure settings for the report.

Categorical colours are the Okabe-Ito palette (Okabe & Ito, 2008), distinguishable under the
common colour-vision deficiencies; continuous maps are ``viridis`` (sequential) and ``RdBu_r``
(diverging, for correlations). Every figure function in :mod:`tbeqtl.report.figures` draws on
the non-interactive Agg backend and returns a :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg", force=False)

from matplotlib.colors import to_hex, to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "HIGHLIGHT",
    "OKABE_ITO",
    "category_colours",
    "family_shades",
    "grey_shades",
    "new_figure",
]

#: Okabe-Ito palette without black (black is kept for text and reference lines).
OKABE_ITO = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#F0E442",  # yellow
    "#999999",  # grey
)

#: Colour of highlighted points (true p beyond the permuted maximum): Okabe-Ito vermillion.
HIGHLIGHT = "#D55E00"

#: Colours of the p = 0.1 and p = 0.05 reference lines (paper Fig 2: blue and green).
LINE_P10 = "#0072B2"
LINE_P05 = "#009E73"


def category_colours(categories: Sequence[str]) -> dict[str, str]:
    """Give each category an Okabe-Ito colour, in the order given (cycling past eight).

    Beyond eight categories the palette is reused at a lighter and then a darker shade,
    so that neighbouring categories stay distinct.

    Parameters
    ----------
    categories
        Category labels (e.g. tissues), in display order.

    Returns
    -------
    dict
        Label -> hex colour.
    """
    base = OKABE_ITO[:7]
    out = {}
    for i, cat in enumerate(categories):
        colour = base[i % len(base)]
        cycle = i // len(base)
        if cycle:
            colour = _shade(colour, 0.25 if cycle % 2 else -0.25)
        out[cat] = colour
    return out


def _shade(colour: str, amount: float) -> str:
    """Lighten (amount > 0) or darken (amount < 0) a colour in HLS space."""
    h, lightness, s = colorsys.rgb_to_hls(*to_rgb(colour))
    lightness = min(0.92, max(0.12, lightness + amount))
    return to_hex(colorsys.hls_to_rgb(h, lightness, s))


def family_shades(colour: str, n: int) -> list[str]:
    """Return ``n`` shades of one hue, dark to light: a tissue's colour family.

    Parameters
    ----------
    colour
        The family's base colour.
    n
        Number of members (topics associated with the tissue).

    Returns
    -------
    list of str
        Hex colours; the base colour itself when ``n == 1``.
    """
    if n <= 1:
        return [to_hex(colour)] * max(n, 0)
    return [_shade(colour, -0.18 + 0.36 * i / (n - 1)) for i in range(n)]


def grey_shades(n: int) -> list[str]:
    """Return ``n`` distinct greys for topics without a tissue (paper Fig 1: "a random gray scale").

    The greys are spread evenly and interleaved (dark, light, mid, ...) rather than random, so
    the figure is reproducible and adjacent topics differ.

    Parameters
    ----------
    n
        Number of greys.

    Returns
    -------
    list of str
        Hex colours.
    """
    if n <= 0:
        return []
    levels = [0.3 + 0.55 * i / max(n - 1, 1) for i in range(n)]
    order = [levels[i // 2] if i % 2 == 0 else levels[n - 1 - i // 2] for i in range(n)]
    return [to_hex((v, v, v)) for v in order]


def new_figure(*, width: float = 7.0, height: float = 4.0) -> Figure:
    """Create a figure on the Agg canvas, independent of pyplot's global state.

    Parameters
    ----------
    width, height
        Size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        An empty figure with constrained layout.
    """
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    return fig
