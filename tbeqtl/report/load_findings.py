"""Report loader, findings side: the tissue-factor map, the comparison list's provenance, the data manifest.

What is read:

- ``summary/tissue_factors.parquet`` (schema ``tissue_factors``, gathered over the pairs) when present,
  else every pair's ``factors/tissue_association.tsv``;
- ``gtex/source.json``: where the comparison list came from, written next to ``gtex/comparison.tsv``
  by whatever compared the calls (``tbeqtl demo``: ``{"simulated": true, ...}``; ``tbeqtl
  compare-gtex``: ``{"simulated": false, "release": "v8", "files": [...]}``);
- the prepared data folder's ``manifest.json`` (``RUN/data/`` or the config's ``data.path``), for
  the checksums of the appendix.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from ..layout import PairLayout, RunLayout
from .load_common import ReportData, _first, _read_json, _read_tsv

__all__ = []

logger = logging.getLogger(__name__)

#: The provenance file of the comparison list, under the run's ``gtex/`` folder.
SOURCE_FILE = "source.json"


def _tissue_factor_rows(df: pd.DataFrame, source: str, pair: str | None) -> pd.DataFrame:
    """Normalise a tissue association table to ``pair, topic, tissue, score, associated``."""
    topic = _first(df.columns, "topic", "factor")
    tissue = _first(df.columns, "tissue")
    score = _first(df.columns, "normalized_score", "score", "inner_product")
    assoc = _first(df.columns, "associated", "is_associated")
    if topic is None or tissue is None or score is None or assoc is None:
        raise InputError(
            "tissue association table lacks topic/tissue/score/associated columns",
            path=source,
            ids=list(df.columns),
        )
    pairs = df["pair"].astype(str).to_numpy() if pair is None else pair
    return pd.DataFrame(
        {
            "pair": pairs,
            "topic": df[topic].to_numpy(),
            "tissue": df[tissue].astype(str).to_numpy(),
            "score": df[score].to_numpy(float),
            "associated": df[assoc].astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy(),
        }
    )


def _load_tissue_factors(data: ReportData, layout: RunLayout, pairs: list[PairLayout]) -> None:
    """Gather every run's factor-tissue associations into ``tables["tissue_factors"]``."""
    gathered = layout.summary / "tissue_factors.parquet"
    if gathered.is_file():
        df = _read_tsv(gathered)
        if "pair" in df.columns:
            data.tables["tissue_factors"] = _tissue_factor_rows(df, str(gathered), None)
            data.extras["tissue_factors_source"] = "summary/tissue_factors.parquet"
            return
    parts = [
        _tissue_factor_rows(
            _read_tsv(p.factors / "tissue_association.tsv"), str(p.factors / "tissue_association.tsv"), p.name
        )
        for p in pairs
        if (p.factors / "tissue_association.tsv").is_file()
    ]
    if parts:
        data.tables["tissue_factors"] = pd.concat(parts, ignore_index=True)
        data.extras["tissue_factors_source"] = "pairs/*/factors/tissue_association.tsv"


def _load_comparison_source(data: ReportData, layout: RunLayout) -> None:
    """Read ``gtex/source.json`` (the comparison list's provenance) into ``extras["comparison_source"]``."""
    path = layout.gtex / SOURCE_FILE
    if not path.is_file():
        return
    source = _read_json(path)
    if not isinstance(source.get("simulated"), bool):
        raise InputError(
            "the comparison list's provenance lacks a true/false 'simulated' entry", path=str(path)
        )
    data.extras["comparison_source"] = source


def _manifest_path(run_dir: Path, run_info: dict[str, Any]) -> Path | None:
    """Return the prepared folder's ``manifest.json``: ``RUN/data/``, else the config's ``data.path``."""
    config = run_info.get("config") if isinstance(run_info.get("config"), dict) else {}
    data_cfg = config.get("data") if isinstance(config.get("data"), dict) else {}
    candidates = [run_dir / "data" / "manifest.json"]
    if isinstance(data_cfg.get("path"), str) and data_cfg["path"]:
        candidates.append(Path(data_cfg["path"]) / "manifest.json")
    return next((p for p in candidates if p.is_file()), None)


def _load_manifest(data: ReportData, layout: RunLayout) -> None:
    """Read the prepared folder's manifest (checksums for the appendix) into ``extras["data_manifest"]``."""
    path = _manifest_path(layout.root, data.run_info)
    if path is None:
        return
    data.extras["data_manifest"] = _read_json(path)
    data.extras["data_manifest_path"] = str(path)
