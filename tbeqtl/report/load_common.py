"""Shared pieces of the report loader: the gathered data, status files, table readers."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..layout import RunLayout

__all__ = ['DEFAULT_FDR', 'SECTIONS', 'ReportData']

logger = logging.getLogger(__name__)


#: Report sections after the run overview: key -> title.
SECTIONS: dict[str, str] = {
    "topics": "Sample-topic proportions (Fig 1)",
    "convergence": "ELBO trace and convergence",
    "robust": "Loading correlations across runs (Fig 3)",
    "snp_enrichment": "SNP-class enrichment (Fig 2, left)",
    "bins": "Genomic-bin localisation (Fig 2, right)",
    "go": "Enriched GO terms",
    "tf": "Tissue-specific transcription factors",
    "summary": "Summary counts",
    "qq": "True vs permuted p-values (Fig 4, top)",
    "counts": "eQTL counts by tissue and gene type (Fig 4, bottom)",
    "hist": "p-value histograms",
    "top_eqtls": "Top eQTLs",
    "locus": "trans-eGenes of one locus (Fig 5)",
    "gtex": "Comparison with an eQTL list",
}


#: FDR level at which an eQTL is counted when the run's config does not say.
DEFAULT_FDR = 0.1


@dataclass
class ReportData:
    """Everything the report shows, gathered from one run folder.

    Attributes
    ----------
    run_dir
        The run folder.
    run_info
        ``run.json`` (config, versions, checksums, per-pair status), or ``{}``.
    config_text
        ``config.toml`` as written by the pipeline, or ``""``.
    fdr
        FDR level at which eQTLs are counted (the run's ``mapping.fdr``, default 0.1).
    status_df
        One row per (pair, stage): ``pair``, ``stage``, ``status``.
    tables
        Named DataFrames for figures and tables (keys documented in :func:`load_run`).
    extras
        Non-tabular items (e.g. ``"topics_pair"``, ``"locus_title"``, ``"ks"``, ``"tol"``).
    absent
        Section key -> why it is absent.
    """

    run_dir: Path
    run_info: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    fdr: float = DEFAULT_FDR
    status_df: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["pair", "stage", "status"]))
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)

    def mark_absent(self, section: str, reason: str) -> None:
        """Record that ``section`` cannot be shown and why (the first reason wins).

        Parameters
        ----------
        section
            A key of :data:`SECTIONS`.
        reason
            A sentence for the reader.
        """
        if section not in self.absent:
            logger.info("report section %r absent: %s", section, reason)
            self.absent[section] = reason


def _read_tsv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """Read a TSV (or parquet by suffix) written by :func:`tbeqtl.atomic.write_table`."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t", na_values=["NA"], keep_default_na=True, **kwargs)


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        value = json.load(handle)
    return value if isinstance(value, dict) else {"value": value}


def _first(columns: pd.Index, *names: str) -> str | None:
    lower = {str(c).lower(): c for c in columns}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


class _Status:
    """Stage status of every pair and of the run, to explain missing outputs."""

    def __init__(self, layout: RunLayout, run_info: dict[str, Any]):
        rows = []
        for pair in layout.pairs():
            if pair.status.is_file():
                try:
                    status = _read_json(pair.status)
                except (OSError, ValueError) as exc:
                    status = {"status.json": f"failed: unreadable ({exc})"}
                for stage, value in status.items():
                    rows.append((pair.name, str(stage), _status_text(value)))
        for path in (layout.enrichment / "status.json", layout.gtex / "status.json"):
            if path.is_file():
                try:
                    for stage, value in _read_json(path).items():
                        rows.append(("(run)", str(stage), _status_text(value)))
                except (OSError, ValueError) as exc:
                    rows.append(("(run)", path.parent.name, f"failed: unreadable status.json ({exc})"))
        self.df = pd.DataFrame(rows, columns=["pair", "stage", "status"])

    def failure(self, stage: str) -> str | None:
        """Explain why a stage has no output: its own failure, or its pairs' failures.

        Parameters
        ----------
        stage
            Stage name as in ``status.json`` (``fit``, ``factors``, ``eqtl``, ``go``, ...).

        Returns
        -------
        str or None
            ``"stage 'eqtl' failed: <error> in pair chr1__chr2"``-style text, or None when
            nothing failed or was skipped.
        """
        df = self.df
        bad = df["status"].str.lower().str.startswith(("failed", "skipped"))
        hit = df[(df["stage"].str.lower() == stage.lower()) & bad]
        if not len(hit):
            # the pair failed or was skipped before this stage finished
            done = set(df.loc[(df["stage"] == stage) & (df["status"] == "done"), "pair"])
            hit = df[(df["stage"] == "pair") & bad & ~df["pair"].isin(done)]
            if not len(hit):
                return None
            row = hit.iloc[0]
            more = f" (and {len(hit) - 1} more pairs)" if len(hit) > 1 else ""
            return f"pair {row['pair']} {row['status']}{more}, before stage '{stage}' finished"
        row = hit.iloc[0]
        where = "" if row["pair"] == "(run)" else f" in pair {row['pair']}"
        more = f" (and {len(hit) - 1} more)" if len(hit) > 1 else ""
        return f"stage '{row['stage']}' {row['status']}{where}{more}"


def _status_text(value: Any) -> str:
    if isinstance(value, dict):
        state = str(value.get("status", value.get("state", "")))
        error = value.get("error")
        return f"{state}: {error}" if error and not state.startswith("failed:") else state
    return str(value)


def _why(status: _Status, stage: str, what: str, root: Path) -> str:
    failure = status.failure(stage)
    if failure:
        return failure
    return f"{what} not found under {root} (stage '{stage}' has not written it)"
