"""The ranking job of a pair: top-ranked genes and SNPs per topic (:func:`tbeqtl.tblda.rank_features`)."""

from __future__ import annotations

import pandas as pd

from ...data import EQTLData

__all__ = []


def _rank(model, sub: EQTLData, top_fraction: float) -> pd.DataFrame:
    try:
        from ...tblda import rank_features
    except ImportError:
        from ...tblda.ranking import rank_features
    return rank_features(model, sub, top_fraction=top_fraction)
