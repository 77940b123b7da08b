"""The report's appendix: run parameters, package versions, checksums and the status of every pair.

Everything here describes how the results were made, not what they are; the findings open the
report (:mod:`tbeqtl.report.findings`).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from .. import __version__
from .items import Section, format_table
from .load import SECTIONS, ReportData

__all__ = ["APPENDIX_TITLE", "appendix_section", "flatten"]

logger = logging.getLogger(__name__)

#: Heading of the appendix.
APPENDIX_TITLE = "Appendix: run parameters, versions and checksums"

#: run.json keys shown as one row each, in this order (the rest follow).
_RUN_KEYS = (
    "versions",
    "holdout",
    "tissues_mapped",
    "tissues_skipped",
    "ancestry",
    "seconds",
    "tool",
    "tbeqtl_version",
)


def flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    """Append ``(dotted key, text)`` rows for a nested JSON value to ``out``.

    Parameters
    ----------
    prefix
        Key of ``value`` (``""`` at the top).
    value
        A JSON value.
    out
        Rows, extended in place; lists of more than 12 items are shown by their length.
    """
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        out.append((prefix, ", ".join(map(str, value)) if len(value) <= 12 else f"{len(value)} items"))
    else:
        out.append((prefix, str(value)))


def _joined(value: Any) -> str:
    rows: list[tuple[str, str]] = []
    flatten("", value, rows)
    return "; ".join(f"{k}={v}" for k, v in rows)


def _parameter_rows(data: ReportData) -> list[tuple[str, str]]:
    """Config sections, versions, held-out design and the other run.json entries, one row each."""
    info = dict(data.run_info)
    rows: list[tuple[str, str]] = [
        ("run folder", str(data.run_dir)),
        ("report built by", f"tbeqtl {__version__}"),
    ]
    config = info.pop("config", None)
    if isinstance(config, dict):
        rows += [(f"config [{name}]", _joined(values)) for name, values in config.items()]
    for key in _RUN_KEYS:
        if key in info:
            value = info.pop(key)
            rows.append(
                (
                    key,
                    _joined(value)
                    if isinstance(value, dict)
                    else (", ".join(map(str, value)) if isinstance(value, list) else str(value)),
                )
            )
    for key, value in info.items():
        if key not in ("status", "stages", "pairs", "summary", "input_checksums", "checksums"):
            rows.append((key, _joined(value) if isinstance(value, dict) else str(value)))
    return rows


def checksum_table(data: ReportData) -> pd.DataFrame:
    """Return every checksum the run recorded: its inputs (run.json) and the prepared data folder's files.

    Parameters
    ----------
    data
        The loaded run; ``run_info["input_checksums"]`` (or ``"checksums"``) and
        ``extras["data_manifest"]`` (the prepared folder's ``manifest.json``, when the loader found it).

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``file``, ``sha256`` (full digests).
    """
    rows = []
    sums = data.run_info.get("input_checksums") or data.run_info.get("checksums")
    if isinstance(sums, dict):
        rows += [("run inputs (run.json)", str(k), str(v)) for k, v in sums.items()]
    manifest = data.extras.get("data_manifest")
    if isinstance(manifest, dict):
        where = data.extras.get("data_manifest_path", "manifest.json")
        for key, label in (("inputs", f"prepare inputs ({where})"), ("files", f"prepared files ({where})")):
            if isinstance(manifest.get(key), dict):
                rows += [(label, str(k), str(v)) for k, v in manifest[key].items()]
    return pd.DataFrame(rows, columns=["source", "file", "sha256"])


def _pair_status_tables(data: ReportData, section: Section) -> None:
    status = data.status_df
    pair_status = status[status["pair"] != "(run)"]
    if len(pair_status):
        pair_status = pair_status.assign(stage=pair_status["stage"].replace({"pair": "whole pair"}))
        wide = pair_status.pivot_table(index="pair", columns="stage", values="status", aggfunc="first")
        wide = wide.fillna("").reset_index()
        wide.columns.name = None
        bad = wide[wide.drop(columns="pair").apply(lambda r: any(v and v != "done" for v in r), axis=1)]
        caption = "Stage status of every chromosome pair (done / failed: error)."
        if len(wide) > 40:
            caption = (
                f"{len(wide)} chromosome pairs, {len(wide) - len(bad)} with every stage done; "
                "the others are listed."
            )
            wide = bad
        section.tables.append(format_table(wide, key="status", caption=caption, max_rows=200))
    run_status = status[status["pair"] == "(run)"].drop(columns="pair")
    if len(run_status):
        section.tables.append(
            format_table(
                run_status.reset_index(drop=True),
                key="run_status",
                caption="Run-level stages (enrichment, list comparison).",
                max_rows=100,
            )
        )


def appendix_section(data: ReportData) -> Section:
    """Build the appendix: parameters and versions, checksums, pair status, factor summary, absences.

    Parameters
    ----------
    data
        What :func:`tbeqtl.report.load.load_run` gathered.

    Returns
    -------
    Section
        Key ``"appendix"``.
    """
    section = Section("appendix", APPENDIX_TITLE)
    if not data.run_info:
        section.notes.append("run.json is missing: the parameters of this run are unknown.")
    section.tables.append(
        format_table(
            pd.DataFrame(_parameter_rows(data), columns=["parameter", "value"]),
            key="parameters",
            caption="Run configuration, package versions and held-out design.",
            max_rows=400,
        )
    )
    sums = checksum_table(data)
    if len(sums):
        section.tables.append(
            format_table(
                sums,
                key="checksums",
                max_rows=400,
                caption="SHA-256 of the run's inputs and of the prepared data folder's files.",
            )
        )
    _pair_status_tables(data, section)
    summary = data.run_info.get("summary")
    if isinstance(summary, dict) and summary:
        rows: list[tuple[str, str]] = []
        flatten("", summary, rows)
        section.tables.append(
            format_table(
                pd.DataFrame(rows, columns=["statistic", "value"]),
                key="factor_summary",
                caption="Factor interpretation summary "
                "written by the pipeline (tissue, ancestry, cell-type checks; "
                "robust components).",
                max_rows=400,
            )
        )
    absent = [(SECTIONS[k], v) for k, v in data.absent.items() if k in SECTIONS]
    if absent:
        section.tables.append(
            format_table(
                pd.DataFrame(absent, columns=["section", "why it is absent"]),
                key="absent",
                caption="Sections that could not be drawn.",
                max_rows=100,
            )
        )
    return section
