"""Read the finished result tables of a pipeline run folder for the report.

Nothing is fitted or tested here: the loader reads the tables each stage wrote (paths from
:class:`tbeqtl.layout.RunLayout` / :class:`~tbeqtl.layout.PairLayout`), gathers them across
chromosome pairs into long tables and reshapes them for the figures (sorting, picking the
called rows, counting). When a stage's output is missing, the section is recorded in
:attr:`ReportData.absent` with the reason: the stage's ``"failed: <error>"`` /
``"skipped: <why>"`` entry in a ``status.json`` (of the pair, or of the whole pair when it failed
before that stage), otherwise the file that is not there.

What is read, per pair ``pairs/<gene_chrom>__<snp_chrom>/``:

- ``status.json``: stage -> ``"done"`` / ``"failed: <error>"`` (stage ``pair`` for the whole pair);
- ``holdout.tsv`` (schema ``holdout``);
- ``fit/sample_topics.tsv``, ``fit/gene_topics.tsv``, ``fit/snp_topics.tsv`` (ID column, then
  topics ``0 .. K-1``), ``fit/elbo.tsv`` (``step``, ``elbo``, ``statistic``), ``fit/run.json``;
- ``factors/tissue_association.tsv`` (schema ``tissue_factors``);
- ``eqtl/<factor_set>/<tissue>/``: ``hist.tsv`` (``pipeline_hist``), and ``cis.tsv`` /
  ``trans.tsv`` (``eqtl_pairs``), ``qq.tsv`` (``pipeline_qq``) and ``run.json`` (its
  ``call_column``) when the run has no gathered summary.

Run level: ``run.json`` and ``config.toml``; ``summary/eqtls.parquet``, ``summary/qq.parquet``,
``summary/eqtl_counts.tsv`` (gathered by the pipeline); ``enrichment/{go,snp_annot,bins,
tf_recovery}.tsv`` and ``gtex/comparison.tsv`` / ``gtex/ks.tsv`` with their ``status.json``.

Two figures need the run's *input* data set (``config data.path``, or ``simulation/`` of a demo
run), read once and only when present: the SNP loadings of Fig 3 are correlated after regressing
out the coded MAF of the input genotypes, and Fig 5 shows the inverse-normal-transformed
held-out expression of one locus' trans-eGenes, rebuilt with the pipeline's own transforms.
Without the inputs, Fig 3 uses raw E[lambda] (and says so) and Fig 5 is absent with the reason.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..layout import FACTOR_SETS, PairLayout, RunLayout

__all__ = ["SECTIONS", "ReportData", "load_run"]

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
    "gtex": "Comparison with GTEx",
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


# --------------------------------------------------------------------------- helpers
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


# --------------------------------------------------------------------------- fits
def _data_dirs(layout: RunLayout, config: dict[str, Any]) -> list[Path]:
    """List candidate input data folders.

    The config's ``data.path`` (absolute, or relative to the run folder or the working directory)
    and the demo's ``simulation/`` folder.
    """
    out = []
    section = config.get("data")
    data_path = str(section.get("path", "")) if isinstance(section, dict) else ""
    if data_path:
        path = Path(data_path)
        out += [path] if path.is_absolute() else [layout.root / path, Path.cwd() / path]
    out += [layout.simulation, layout.simulation / "data"]
    return [p for p in out if p.is_dir()]


def _sample_tissues(layout: RunLayout, pairs: list[PairLayout], tissue_column: str,
                    data_dirs: list[Path]) -> pd.Series:
    """Sample -> tissue, from the pairs' holdout tables or the input sample attributes."""
    for pair in pairs:
        if pair.holdout.is_file():
            df = _read_tsv(pair.holdout)
            col = _first(df.columns, "tissue", tissue_column)
            if col is not None and "sample" in df.columns:
                return pd.Series(df[col].astype(str).to_numpy(), index=df["sample"].astype(str),
                                 name="tissue")
    for path in (d / "sample_attributes.tsv" for d in data_dirs):
        if path.is_file():
            df = _read_tsv(path)
            sample_col = _first(df.columns, "SAMPID", "sample")
            col = _first(df.columns, tissue_column, "tissue", "SMTSD")
            if sample_col is not None and col is not None:
                return pd.Series(df[col].astype(str).to_numpy(), index=df[sample_col].astype(str),
                                 name="tissue")
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
                 tissue_column: str, data_dirs: list[Path]) -> None:
    candidates = [p for p in pairs if (p.fit / "sample_topics.tsv").is_file()]
    if not candidates:
        data.mark_absent("topics", _why(status, "fit", "fit/sample_topics.tsv of any pair", layout.root))
        return
    sample_tissue_s = _sample_tissues(layout, pairs, tissue_column, data_dirs)
    if sample_tissue_s.empty:
        data.mark_absent("topics", "no sample tissues: neither holdout.tsv has a tissue column nor is the "
                         "input sample_attributes.tsv (config data.path, or simulation/) readable")
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


class _Inputs:
    """The run's input data set, read once on first use (Fig 3 MAF residuals, Fig 5 expression)."""

    def __init__(self, data_dirs: list[Path]):
        self.data_dirs = data_dirs
        self._dataset: Any = None
        self.error = ""

    @property
    def dataset(self) -> Any:
        """The :class:`~tbeqtl.data.EQTLData`, or None when no input folder is readable."""
        if self._dataset is None and self.data_dirs and not self.error:
            from ..io import read_dataset

            try:
                self._dataset = read_dataset(self.data_dirs[0])
            except (InputError, OSError, ValueError) as exc:
                self.error = str(exc)
                logger.warning("input data set %s unreadable: %s", self.data_dirs[0], exc)
        return self._dataset


def _load_robust(data: ReportData, layout: RunLayout, pairs: list[PairLayout], status: _Status,
                 inputs: _Inputs) -> None:
    """Correlate the loadings of runs that share a chromosome (paper Fig 3).

    For the chromosome with the most runs: Pearson r between the expected gene loadings E[psi]
    of runs sharing the gene chromosome, and between the SNP loadings E[lambda] of runs sharing
    the SNP chromosome after regressing out the coded MAF
    (:func:`tbeqtl.pipeline.robust.maf_residuals`, the robust-component step's own residuals;
    raw E[lambda] when the input genotypes are not readable, which the title says).
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
        residualised = kind == "snp" and inputs.dataset is not None
        for pair in group:
            df = _read_tsv(pair.fit / fname, index_col=0)
            df.index = df.index.astype(str)
            if residualised:
                from ..pipeline.robust import maf_residuals

                df = maf_residuals(df, inputs.dataset.genotype_df)
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


# --------------------------------------------------------------------------- eQTLs
def _eqtl_dirs(pair: PairLayout) -> list[tuple[str, str, Path]]:
    out = []
    base = pair.root / "eqtl"
    if not base.is_dir():
        return out
    for fs_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for tissue_dir in sorted(p for p in fs_dir.iterdir() if p.is_dir()):
            out.append((fs_dir.name, tissue_dir.name, tissue_dir))
    return out


def _tissue_name(folder: Path, safe: str) -> str:
    run_json = folder / "run.json"
    if run_json.is_file():
        info = _read_json(run_json)
        for key in ("tissue",):
            if isinstance(info.get(key), str):
                return info[key]
        params = info.get("params", {})
        if isinstance(params, dict) and isinstance(params.get("tissue"), str):
            return params["tissue"]
    return safe


def _qq_table(df: pd.DataFrame, run: str | pd.Series, source: str) -> pd.DataFrame:
    """Normalise a permutation QQ table (schema pipeline_qq or permutation_qq) to the figure's columns."""
    obs = _first(df.columns, "observed", "observed_log10p", "true")
    perm = _first(df.columns, "permuted", "permuted_log10p", "perm")
    kind = _first(df.columns, "class", "kind", "pool")
    if obs is None or perm is None:
        raise InputError("QQ table lacks observed/permuted columns", path=source, ids=list(df.columns))
    out = pd.DataFrame({
        "run": run if isinstance(run, str) else run.to_numpy(),
        "kind": df[kind].astype(str).to_numpy() if kind is not None else "all",
        "permuted": df[perm].to_numpy(float),
        "observed": df[obs].to_numpy(float),
    })
    beyond = _first(df.columns, "beyond_permuted", "beyond")
    if beyond is not None:
        out["beyond"] = df[beyond].astype(str).str.lower().isin(["true", "1", "1.0"]).to_numpy()
    else:
        # the paper's highlight: true -log10 p above the run's largest permuted -log10 p
        max_perm = out.groupby(["run", "kind"])["permuted"].transform("max")
        out["beyond"] = out["observed"] > max_perm
    return out


def _hist_table(path: Path) -> pd.DataFrame:
    df = _read_tsv(path)
    if df.empty:
        return pd.DataFrame(columns=["kind", "bin_start", "bin_end", "count"])
    start = _first(df.columns, "bin_lo", "bin_start")
    end = _first(df.columns, "bin_hi", "bin_end")
    count = _first(df.columns, "count")
    kind = _first(df.columns, "class", "kind", "pool")
    if start is None or end is None or count is None:
        raise InputError("p-value histogram table lacks bin/count columns", path=str(path),
                         ids=list(df.columns))
    return pd.DataFrame({
        "kind": df[kind].astype(str).to_numpy() if kind is not None else "all",
        "bin_start": df[start].to_numpy(float),
        "bin_end": df[end].to_numpy(float),
        "count": df[count].to_numpy(float),
    })


def _call_column(folder: Path, df: pd.DataFrame) -> str:
    """Return the FDR column eQTLs are called on.

    run.json's ``call_column``, else ``fdr_by_type`` when present (the paper's BH per gene
    type), else ``fdr``.
    """
    if (folder / "run.json").is_file():
        column = _read_json(folder / "run.json").get("call_column")
        if isinstance(column, str) and column in df.columns:
            return column
    if "fdr_by_type" in df.columns and df["fdr_by_type"].notna().any():
        return "fdr_by_type"
    return "fdr"


def _load_eqtls(data: ReportData, layout: RunLayout, pairs: list[PairLayout], status: _Status) -> None:
    """Gather eQTLs, QQ points and p-value histograms.

    From the pipeline's gathered summary/ tables when present, else from every mapping folder's
    cis.tsv / trans.tsv / qq.tsv; hist.tsv always comes from the folders.
    """
    summary_eqtls, summary_qq = layout.summary / "eqtls.parquet", layout.summary / "qq.parquet"
    pair_parts, qq_parts, hist_parts = [], [], []
    any_dir = False
    for pair in pairs:
        for factor_set, safe, folder in _eqtl_dirs(pair):
            any_dir = True
            if (folder / "hist.tsv").is_file():
                hist_parts.append(_hist_table(folder / "hist.tsv"))
            if summary_eqtls.is_file() and summary_qq.is_file():
                continue
            tissue = _tissue_name(folder, safe)
            for kind in ("cis", "trans"):
                paths = [folder / f"{kind}{s}" for s in (".tsv", ".parquet")]
                path = next((q for q in paths if q.is_file()), None)
                df = _read_tsv(path) if path is not None else pd.DataFrame()
                if df.empty:
                    continue
                df["significant"] = df[_call_column(folder, df)].to_numpy(float) < data.fdr
                df.insert(0, "kind", kind)
                df.insert(0, "tissue", tissue)
                df.insert(0, "factor_set", factor_set)
                df.insert(0, "pair", pair.name)
                pair_parts.append(df)
            if (folder / "qq.tsv").is_file():
                qq_parts.append(_qq_table(_read_tsv(folder / "qq.tsv"), f"{pair.name}/{factor_set}/{tissue}",
                                          str(folder / "qq.tsv")))
    if summary_eqtls.is_file() and summary_qq.is_file():
        calls = _read_tsv(summary_eqtls).rename(columns={"class": "kind"})
        pair_parts = [calls.assign(significant=True)] if len(calls) else []
        data.extras["eqtl_source"] = "summary/eqtls.parquet (called eQTLs)"
        qq = _read_tsv(summary_qq)
        if len(qq):
            run = qq["pair"].astype(str) + "/" + qq["factor_set"].astype(str) + "/" + qq["tissue"].astype(str)
            qq_parts = [_qq_table(qq, run, str(summary_qq))]
    else:
        data.extras["eqtl_source"] = "the mapping folders' cis.tsv / trans.tsv"
    reason = _why(status, "eqtl", "pairs/*/eqtl/<factor_set>/<tissue>/ results", layout.root)
    if not pair_parts:
        if (layout.summary / "eqtl_counts.tsv").is_file():  # zero calls is still a result
            _pipeline_counts(data, layout.summary / "eqtl_counts.tsv")
        for section in ("counts", "summary", "top_eqtls", "locus"):
            if section not in data.tables:
                data.mark_absent(section, reason if not any_dir else
                                 f"no eQTL at FDR < {data.fdr:g} in any mapping")
    else:
        eqtl_df = pd.concat(pair_parts, ignore_index=True)
        eqtl_df["snp"] = eqtl_df["snp"].astype(str)
        eqtl_df["gene"] = eqtl_df["gene"].astype(str)
        if "gene_type" not in eqtl_df.columns:
            eqtl_df["gene_type"] = "all genes"
        eqtl_df["gene_type"] = eqtl_df["gene_type"].fillna("unknown").astype(str)
        data.extras["fdr_column"] = "fdr_by_type" if "fdr_by_type" in eqtl_df.columns else "fdr"
        data.tables["eqtls"] = eqtl_df
        _summaries(data, eqtl_df, layout.summary / "eqtl_counts.tsv")
    if qq_parts:
        data.tables["qq"] = pd.concat(qq_parts, ignore_index=True)
    else:
        data.mark_absent("qq", reason if not any_dir else "no permutation QQ table (qq.tsv) with points")
    hist_parts = [h for h in hist_parts if len(h)]
    if hist_parts:
        hist = pd.concat(hist_parts, ignore_index=True)
        data.tables["hist"] = hist.groupby(["kind", "bin_start", "bin_end"], as_index=False)["count"].sum()
    else:
        data.mark_absent("hist", reason if not any_dir else "no hist.tsv in any eQTL folder")


def _pipeline_counts(data: ReportData, path: Path) -> None:
    """Summary and Fig 4 counts from the pipeline's ``summary/eqtl_counts.tsv`` (schema eqtl_counts)."""
    df = _read_tsv(path).rename(columns={"class": "kind"})
    order = {fs: i for i, fs in enumerate((*FACTOR_SETS, "exhaustive"))}
    df = df.sort_values(["factor_set", "kind", "tissue", "gene_type"],
                        key=lambda s: s.map(order).fillna(99) if s.name == "factor_set" else s)
    data.tables["summary"] = df.reset_index(drop=True)
    sets = [fs for fs in (*FACTOR_SETS, "exhaustive") if fs in set(df["factor_set"])]
    counts_set = sets[0] if sets else None
    part = df[(df["factor_set"] == counts_set) & (df["tissue"] != "all") & (df["gene_type"] != "all")]
    part = part[["tissue", "kind", "gene_type", "n_eqtls"]].reset_index(drop=True)
    if part.empty or not part["n_eqtls"].sum():
        data.mark_absent("counts", f"no eQTL at FDR < {data.fdr:g} in factor set '{counts_set}' "
                         "(summary/eqtl_counts.tsv)")
    else:
        data.tables["counts"] = part
        data.extras["counts_factor_set"] = counts_set
    data.extras["summary_source"] = "summary/eqtl_counts.tsv"


def _summaries(data: ReportData, eqtl_df: pd.DataFrame, counts_path: Path) -> None:
    sig = eqtl_df[eqtl_df["significant"]]
    if counts_path.is_file():
        _pipeline_counts(data, counts_path)
    else:
        _own_counts(data, sig)
    _top_and_locus(data, eqtl_df, sig)


def _own_counts(data: ReportData, sig: pd.DataFrame) -> None:
    """Summary and Fig 4 counts computed from the mapping folders' called rows."""
    parts = []
    for tissue_all in (False, True):
        for type_all in (False, True):
            frame = sig.assign(**({"tissue": "all"} if tissue_all else {}),
                               **({"gene_type": "all"} if type_all else {}))
            parts.append(frame.groupby(["factor_set", "tissue", "kind", "gene_type"])
                         .agg(n_eqtls=("snp", "size"), n_egenes=("gene", "nunique"),
                              n_evariants=("snp", "nunique")).reset_index())
    summary = pd.concat(parts, ignore_index=True)
    order = {fs: i for i, fs in enumerate(FACTOR_SETS)}
    summary = summary.sort_values(["factor_set", "kind", "tissue", "gene_type"],
                                  key=lambda s: s.map(order).fillna(99) if s.name == "factor_set" else s)
    data.tables["summary"] = summary.reset_index(drop=True)
    counts_set = next((fs for fs in FACTOR_SETS if fs in set(sig["factor_set"])),
                      sorted(sig["factor_set"].unique())[0] if len(sig) else "all")
    counts = (sig[sig["factor_set"] == counts_set].groupby(["tissue", "kind", "gene_type"]).size()
              .rename("n_eqtls").reset_index())
    if counts.empty:
        data.mark_absent("counts", f"no eQTL at FDR < {data.fdr:g} in factor set '{counts_set}'")
    else:
        data.tables["counts"] = counts
        data.extras["counts_factor_set"] = counts_set
    data.extras["summary_source"] = "the mapping folders' cis.tsv / trans.tsv"


def _top_and_locus(data: ReportData, eqtl_df: pd.DataFrame, sig: pd.DataFrame) -> None:
    """Pick the top eQTLs and the locus of Fig 5 (most trans-eGenes in one run)."""
    cols = [c for c in ("pair", "factor_set", "tissue", "kind", "snp", "gene", "gene_type", "beta",
                        "p_value", "fdr", "fdr_by_type") if c in eqtl_df.columns]
    # Factor-restricted sets first; the exhaustive mapping is only the power comparison.
    restricted = eqtl_df[eqtl_df["factor_set"] != "exhaustive"]
    source = restricted if len(restricted) else eqtl_df
    top = source.sort_values(["p_value", "pair", "factor_set", "tissue", "snp", "gene"], kind="stable")
    data.tables["top_eqtls"] = top[cols].head(30).reset_index(drop=True)
    # Fig 5: the SNP with the most trans-eGenes in one (pair, factor set, tissue) run.
    trans = sig[sig["kind"] == "trans"]
    if (trans["factor_set"] != "exhaustive").any():
        trans = trans[trans["factor_set"] != "exhaustive"]
    if trans.empty:
        data.mark_absent("locus", f"no trans-eQTL at FDR < {data.fdr:g}")
    else:
        per = (trans.groupby(["pair", "factor_set", "tissue", "snp"])["gene"].nunique()
               .rename("n").reset_index().sort_values(["n", "pair", "factor_set", "tissue", "snp"],
                                                      ascending=[False, True, True, True, True]))
        best = per.iloc[0]
        genes = sorted(trans[(trans["pair"] == best["pair"]) & (trans["factor_set"] == best["factor_set"])
                             & (trans["tissue"] == best["tissue"]) & (trans["snp"] == best["snp"])]["gene"])
        data.extras["locus"] = {"pair": best["pair"], "factor_set": best["factor_set"],
                                "tissue": best["tissue"], "snp": best["snp"], "genes": genes}


def _locus_from_inputs(layout: RunLayout, inputs: _Inputs, locus: dict[str, Any]
                       ) -> tuple[pd.DataFrame, pd.Series] | None:
    """Rebuild the association input of Fig 5 from the run's input data set (no model involved).

    The held-out samples of the locus' tissue (``holdout.tsv``), one per individual (the first by
    sample ID, as the pipeline's mapping does), expression as counts per million then the
    rank-based inverse normal transform across those samples
    (:func:`tbeqtl.pipeline.covariates.inverse_normal_transform`, the mapping's own transform),
    and the SNP's dosages.
    """
    pair = PairLayout(layout.root / "pairs" / locus["pair"])
    dataset = inputs.dataset
    if dataset is None or not pair.holdout.is_file():
        return None
    from ..pipeline.covariates import counts_per_million, inverse_normal_transform

    design = _read_tsv(pair.holdout)
    held = design.loc[design["held_out"].astype(str).str.lower().isin(["true", "1"]), "sample"].astype(str)
    tissue_s = dataset.sample_info_df.get("tissue")
    if tissue_s is None:
        return None
    samples = sorted(s for s in held if s in tissue_s.index and str(tissue_s[s]) == locus["tissue"])
    individuals = dataset.sample_map_s.reindex(samples)
    keep = pd.Series(samples, index=individuals.to_numpy()).groupby(level=0).first().sort_values()
    samples = list(keep.to_numpy())
    genes = [g for g in locus["genes"] if g in dataset.counts_df.index]
    if not samples or not genes or locus["snp"] not in dataset.genotype_df.index:
        return None
    expr_df = inverse_normal_transform(counts_per_million(dataset.counts_df[samples])).loc[genes]
    dosage = dataset.genotype_df.loc[locus["snp"], list(keep.index)]
    genotype_s = pd.Series(dosage.to_numpy(float), index=samples, name="dosage")
    return expr_df, genotype_s


def _load_locus(data: ReportData, layout: RunLayout, inputs: _Inputs) -> None:
    """Quantile-normalised held-out expression and the SNP's dosages for Fig 5."""
    locus = data.extras.get("locus")
    if not locus:
        return
    rebuilt = _locus_from_inputs(layout, inputs, locus)
    if rebuilt is None:
        data.mark_absent("locus", "the association inputs of the locus are not available: no readable input "
                         "data set (config data.path, or simulation/) with the pair's holdout.tsv, the locus "
                         f"SNP {locus['snp']} and its trans-eGenes")
        return
    data.tables["locus_expression"], genotype_s = rebuilt
    data.tables["locus_genotype"] = genotype_s.to_frame()


# --------------------------------------------------------------------------- enrichment, GTEx
def _load_enrichment(data: ReportData, layout: RunLayout, status: _Status) -> None:
    root = layout.enrichment
    go = root / "go.tsv"
    if go.is_file():
        df = _read_tsv(go)
        if "fdr" in df.columns:
            df = df.sort_values(["fdr", "p_value"] if "p_value" in df.columns else ["fdr"], kind="stable")
        data.tables["go"] = df.reset_index(drop=True)
    else:
        data.mark_absent("go", _why(status, "go", "enrichment/go.tsv", layout.root))
    annot = root / "snp_annot.tsv"
    if annot.is_file():
        df = _read_tsv(annot)
        set_col = _first(df.columns, "set", "snp_set", "tissue")
        ann_col = _first(df.columns, "annotation", "term", "class")
        if set_col is None:
            df["set"] = "all"
            set_col = "set"
        df = df.rename(columns={set_col: "set", ann_col: "annotation"})
        df = df.sort_values(["fdr", "p_value", "set", "annotation"])
        data.tables["snp_annot"] = df.reset_index(drop=True)
    else:
        data.mark_absent("snp_enrichment", _why(status, "snp_annot", "enrichment/snp_annot.tsv", layout.root))
    bins = root / "bins.tsv"
    if bins.is_file():
        df = _read_tsv(bins)
        rename = {c: n for n, c in ((n, _first(df.columns, *alts)) for n, alts in (
            ("chrom", ("chrom", "chromosome", "chr")), ("start", ("start", "bin_start")),
            ("end", ("end", "bin_end")), ("set", ("set", "snp_set", "tissue")))) if c is not None}
        data.tables["bins"] = df.rename(columns=rename)
    else:
        data.mark_absent("bins", _why(status, "bins", "enrichment/bins.tsv", layout.root))
    tf = root / "tf_recovery.tsv"
    if tf.is_file():
        data.tables["tf"] = _read_tsv(tf)
    else:
        data.mark_absent("tf", _why(status, "tf_recovery", "enrichment/tf_recovery.tsv", layout.root))
    comparison = layout.gtex / "comparison.tsv"
    if comparison.is_file():
        data.tables["gtex"] = _read_tsv(comparison)
        if (layout.gtex / "ks.tsv").is_file():
            data.tables["gtex_ks"] = _read_tsv(layout.gtex / "ks.tsv")
        elif (layout.gtex / "ks.json").is_file():
            data.extras["ks"] = _read_json(layout.gtex / "ks.json")
    else:
        data.mark_absent("gtex", _why(status, "gtex", "gtex/comparison.tsv", layout.root))


# --------------------------------------------------------------------------- entry point
def _guard(data: ReportData, sections: tuple[str, ...], func: Any, *args: Any) -> None:
    """Run one loader; a malformed table makes its sections absent instead of stopping the report."""
    try:
        func(*args)
    except (InputError, OSError, ValueError, KeyError) as exc:
        logger.warning("could not read %s: %s", ", ".join(sections), exc)
        for section in sections:
            data.mark_absent(section, f"its table could not be read: {exc}")


def load_run(run_dir: str | Path) -> ReportData:
    """Gather every finished result table of a run folder for the report.

    Parameters
    ----------
    run_dir
        A pipeline run folder (:class:`tbeqtl.layout.RunLayout`).

    Returns
    -------
    ReportData
        ``tables`` holds (when the stage ran): ``sample_topics`` (samples x topics E[phi] of one
        pair), ``sample_tissue``, ``topic_tissue``, ``elbo`` / ``convergence`` (long, per run),
        ``loading_tissue``, ``eqtls`` (every written eQTL row with pair, factor_set, tissue, kind
        and ``significant``), ``summary``, ``counts``, ``top_eqtls``, ``qq``, ``hist``,
        ``locus_expression`` / ``locus_genotype``, ``go``, ``snp_annot``, ``bins``, ``tf``,
        ``gtex``. ``absent`` names every section that cannot be shown, with the reason.

    Raises
    ------
    InputError
        If ``run_dir`` is not a folder.
    """
    layout = RunLayout(Path(run_dir))
    if not layout.root.is_dir():
        raise InputError("run folder not found", path=str(layout.root))
    data = ReportData(run_dir=layout.root)
    if layout.run_json.is_file():
        try:
            data.run_info = _read_json(layout.run_json)
        except (OSError, ValueError) as exc:
            logger.warning("run.json unreadable: %s", exc)
    if layout.config.is_file():
        data.config_text = layout.config.read_text(encoding="utf-8")
    config = data.run_info.get("config", {}) if isinstance(data.run_info.get("config"), dict) else {}
    mapping = config.get("mapping", {}) if isinstance(config.get("mapping"), dict) else {}
    fdr = mapping.get("fdr", DEFAULT_FDR)
    data.fdr = float(fdr) if isinstance(fdr, (int, float)) and not math.isnan(fdr) else DEFAULT_FDR
    tissue_column = str((config.get("data") or {}).get("tissue_column", "tissue")) \
        if isinstance(config.get("data"), dict) else "tissue"
    data_dirs = _data_dirs(layout, config)
    status = _Status(layout, data.run_info)
    data.status_df = status.df
    pairs = layout.pairs()
    if not pairs:
        logger.warning("no pairs/ folders in %s", layout.root)
    _guard(data, ("topics",), _load_topics, data, layout, pairs, status, tissue_column,
           data_dirs)
    _guard(data, ("convergence",), _load_elbo, data, layout, pairs, status)
    inputs = _Inputs(data_dirs)
    _guard(data, ("robust",), _load_robust, data, layout, pairs, status, inputs)
    _guard(data, ("counts", "summary", "top_eqtls", "locus", "qq", "hist"), _load_eqtls, data, layout, pairs,
           status)
    _guard(data, ("locus",), _load_locus, data, layout, inputs)
    _guard(data, ("go", "snp_enrichment", "bins", "tf", "gtex"), _load_enrichment, data, layout, status)
    return data
