"""Report loader, fit side: sample-topic proportions (Fig 1), ELBO traces, loading correlations (Fig 3)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..layout import PairLayout, RunLayout
from .load_common import ReportData, _first, _read_json, _read_tsv, _Status, _why

__all__ = []

logger = logging.getLogger(__name__)


def _sample_tissues(layout: RunLayout, pairs: list[PairLayout], tissue_column: str) -> pd.Series:
    """Sample -> tissue, from the pairs' holdout tables or the gathered ``summary/sample_tissues.tsv``."""
    for pair in pairs:
        if pair.holdout.is_file():
            df = _read_tsv(pair.holdout)
            col = _first(df.columns, "tissue", tissue_column)
            if col is not None and "sample" in df.columns:
                return pd.Series(df[col].astype(str).to_numpy(), index=df["sample"].astype(str),
                                 name="tissue")
    if layout.sample_tissues.is_file():
        df = _read_tsv(layout.sample_tissues, dtype={"sample": str})
        return pd.Series(df["tissue"].astype(str).to_numpy(), index=df["sample"].astype(str), name="tissue")
    return pd.Series(dtype=str, name="tissue")


def _topic_tissue(path: Path) -> pd.Series:
    """Topic -> strongest associated tissue ('' when not associated) from tissue_association.tsv."""
    df = _read_tsv(path)
    topic = _first(df.columns, "topic", "factor")
    tissue = _first(df.columns, "tissue")
    score = _first(df.columns, "normalized_score", "score", "inner_product")
    assoc = _first(df.columns, "associated", "is_associated")
    if topic is None or tissue is None or score is None:
        raise InputError("tissue association table lacks topic/tissue/score columns", path=str(path),
                         ids=list(df.columns))
    df = df.rename(columns={topic: "topic", tissue: "tissue", score: "score"})
    topics = sorted(df["topic"].unique())
    if assoc is not None:
        df = df[df[assoc].astype(str).str.lower().isin(["true", "1", "1.0"])]
    best = df.sort_values(["topic", "score", "tissue"], ascending=[True, False, True])
    best = best.drop_duplicates("topic")
    out = pd.Series("", index=pd.Index(topics, name="topic"), dtype=object)
    out.loc[best["topic"].to_numpy()] = best["tissue"].astype(str).to_numpy()
    return out


def _topic_label(column: object) -> object:
    """Topic column names as written by the fit ('0', 'topic_0', 'k0') -> the integer topic."""
    text = str(column)
    digits = "".join(ch for ch in text if ch.isdigit())
    return int(digits) if digits and text.rstrip("0123456789") in {"", "topic_", "topic", "k", "k_"} else text


def _load_topics(data: ReportData, layout: RunLayout, pairs: list[PairLayout], status: _Status,
                 tissue_column: str) -> None:
    candidates = [p for p in pairs if (p.fit / "sample_topics.tsv").is_file()]
    if not candidates:
        data.mark_absent("topics", _why(status, "fit", "fit/sample_topics.tsv of any pair", layout.root))
        return
    sample_tissue_s = _sample_tissues(layout, pairs, tissue_column)
    if sample_tissue_s.empty:
        data.mark_absent("topics", "no sample tissues: neither has holdout.tsv a tissue column nor has the "
                         "gather step written summary/sample_tissues.tsv")
        return
    with_assoc = [p for p in candidates if (p.factors / "tissue_association.tsv").is_file()]
    pair = (with_assoc or candidates)[0]
    st_df = _read_tsv(pair.fit / "sample_topics.tsv", index_col=0)
    st_df.index = st_df.index.astype(str)
    st_df.columns = [_topic_label(c) for c in st_df.columns]
    if with_assoc:
        topic_tissue_s = _topic_tissue(pair.factors / "tissue_association.tsv")
    else:
        topic_tissue_s = pd.Series("", index=st_df.columns, dtype=object)
        data.extras["topics_note"] = _why(status, "factors", "factors/tissue_association.tsv", pair.root) + \
            "; topics are drawn without tissue colours"
    data.tables["sample_topics"] = st_df
    data.tables["sample_tissue"] = sample_tissue_s.to_frame()
    data.tables["topic_tissue"] = topic_tissue_s.rename("tissue").to_frame()
    data.extras["topics_pair"] = pair.name


def _convergence_statistic(loss: np.ndarray, window: int, *, rule: str = "abs") -> np.ndarray:
    """Compute the fit's windowed relative change at every step (NaN before two windows).

    The same statistic as :class:`tbeqtl.tblda.convergence.ConvergenceRule` (x: mean loss of the
    latest ``window`` steps, y: of the window before): ``|y - x| / |y|`` for rule ``"abs"``,
    ``(y - x) / z`` with z the mean over both windows for ``"compat"``; vectorised here so that
    the report does not import the model.
    """
    out = np.full(len(loss), np.nan)
    if window < 1 or len(loss) < 2 * window:
        return out
    csum = np.concatenate([[0.0], np.cumsum(loss)])
    t = np.arange(2 * window, len(loss) + 1)
    x = (csum[t] - csum[t - window]) / window
    y = (csum[t - window] - csum[t - 2 * window]) / window
    with np.errstate(divide="ignore", invalid="ignore"):
        if rule == "compat":
            out[t - 1] = (y - x) / ((x + y) / 2)
        else:
            out[t - 1] = np.abs(y - x) / np.abs(y)
    return out


def _load_elbo(data: ReportData, layout: RunLayout, pairs: list[PairLayout], status: _Status) -> None:
    elbo_parts, conv_parts, tol = [], [], None
    notes: set[str] = set()
    for pair in pairs:
        path = pair.fit / "elbo.tsv"
        if not path.is_file():
            continue
        df = _read_tsv(path)
        step = _first(df.columns, "step", "epoch", "iteration")
        elbo = _first(df.columns, "elbo")
        loss = _first(df.columns, "loss", "neg_elbo")
        if elbo is None and loss is None:
            raise InputError("ELBO table has neither an 'elbo' nor a 'loss' column", path=str(path),
                             ids=list(df.columns))
        values = df[elbo].to_numpy(float) if elbo is not None else -df[loss].to_numpy(float)
        steps = df[step].to_numpy() if step is not None else np.arange(1, len(df) + 1)
        elbo_parts.append(pd.DataFrame({"run": pair.name, "step": steps, "elbo": values}))
        fit_info = _read_json(pair.fit / "run.json") if (pair.fit / "run.json").is_file() else {}
        params = fit_info.get("params", fit_info)
        stat_col = _first(df.columns, "statistic", "convergence", "rel_change")
        stat = df[stat_col].to_numpy(float) if stat_col is not None else np.full(len(df), np.nan)
        if not np.isfinite(stat).any():
            # The fit never evaluated its rule (e.g. it stopped at max_steps before min_steps):
            # show the same statistic at every step, with a shorter window if the run is short.
            window = int(params.get("window", 1000) or 1000)
            if len(values) < 2 * window:
                window = max(1, len(values) // 4)
                notes.add(f"the fits stopped before their convergence rule was evaluated; the statistic is "
                          f"shown at every step with a {window}-step window")
            stat = _convergence_statistic(-values, window, rule=str(params.get("stop_rule", "abs")))
        tol = tol if tol is not None else params.get("tol")
        conv_parts.append(pd.DataFrame({"run": pair.name, "step": steps, "statistic": stat}).dropna())
    if not elbo_parts:
        data.mark_absent("convergence", _why(status, "fit", "fit/elbo.tsv of any pair", layout.root))
        return
    data.tables["elbo"] = pd.concat(elbo_parts, ignore_index=True)
    data.tables["convergence"] = pd.concat(conv_parts, ignore_index=True)
    data.extras["tol"] = None if tol is None else float(tol)
    data.extras["convergence_notes"] = sorted(notes)


def _load_robust(data: ReportData, layout: RunLayout, pairs: list[PairLayout], status: _Status) -> None:
    """Correlate the loadings of runs that share a chromosome (paper Fig 3).

    For the chromosome with the most runs: Pearson r between the expected gene loadings E[psi]
    of runs sharing the gene chromosome, and between the SNP loadings E[lambda] of runs sharing
    the SNP chromosome after regressing out the coded MAF (the gather step's
    ``summary/maf_residuals/<pair>.parquet``; raw E[lambda] when a run has none, which the title
    says).
    """
    tissue_rows = {}
    for pair in pairs:
        path = pair.factors / "tissue_association.tsv"
        if path.is_file():
            for topic, tissue in _topic_tissue(path).items():
                tissue_rows[f"{pair.name}:{topic}"] = tissue
    labels_s = pd.Series(tissue_rows, dtype=object)
    corr: dict[str, pd.DataFrame] = {}
    for fname, side, kind in (("snp_topics.tsv", 1, "snp"), ("gene_topics.tsv", 0, "gene")):
        by_chrom: dict[str, list[PairLayout]] = {}
        for pair in pairs:
            if (pair.fit / fname).is_file():
                by_chrom.setdefault(pair.name.split("__")[side], []).append(pair)
        if not by_chrom:
            continue
        chrom, group = max(sorted(by_chrom.items()), key=lambda kv: len(kv[1]))
        frames = []
        residualised = kind == "snp" and all(layout.maf_residuals(p.name).is_file() for p in group)
        for pair in group:
            df = _read_tsv(layout.maf_residuals(pair.name) if residualised else pair.fit / fname, index_col=0)
            df.index = df.index.astype(str)
            df.columns = [f"{pair.name}:{_topic_label(c)}" for c in df.columns]
            frames.append(df)
        joined = pd.concat(frames, axis=1, join="inner")
        if joined.shape[1] < 2 or len(joined) < 3:
            continue
        if kind == "snp":
            title = "SNP loadings, E[λ] residuals after coded MAF" if residualised else "SNP loadings E[λ]"
        else:
            title = "gene loadings E[ψ]"
        corr[f"{title}; runs sharing {chrom}"] = joined.corr(method="pearson")
    if not corr:
        data.mark_absent("robust", _why(status, "fit", "fit loadings (gene_topics.tsv / snp_topics.tsv)",
                                        layout.root))
        return
    data.extras["robust"] = corr
    data.tables["loading_tissue"] = labels_s.rename("tissue").to_frame()
    if len(pairs) < 2:
        data.extras["robust_note"] = "only one run: correlations are between topics of the same run"
