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
- ``eqtl/<factor_set>/<tissue>/``: ``hist.tsv`` (``pvalue_hist``), and ``cis.tsv`` /
  ``trans.tsv`` (``eqtl_pairs``), ``qq.tsv`` (``permutation_qq``) and ``run.json`` (its
  ``call_column``) when the run has no gathered summary.

Run level: ``run.json`` and ``config.toml``; ``summary/eqtls.parquet``, ``summary/qq.parquet``,
``summary/eqtl_counts.tsv`` (gathered by the pipeline); ``enrichment/{go,snp_annot,bins,
tf_recovery}.tsv`` and ``gtex/comparison.tsv`` / ``gtex/ks.tsv`` with their ``status.json``;
``gtex/source.json`` (the comparison list's provenance), ``summary/tissue_factors.parquet`` and the
prepared data folder's ``manifest.json`` (:mod:`tbeqtl.report.load_findings`).

The report reads no input data set and runs no model or test: what Fig 1, 3 and 5 need from the
inputs the pipeline's gather step writes under ``summary/`` (:mod:`tbeqtl.pipeline.report_tables`):
``sample_tissues.tsv`` (when ``holdout.tsv`` has no tissue column), ``maf_residuals/<pair>.parquet``
(SNP loadings after regressing out the coded MAF; without them Fig 3 uses raw E[lambda] and says
so), and ``locus.json`` with ``locus_expression.parquet`` / ``locus_genotype.tsv`` (Fig 5; absent
with the reason without them).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..layout import RunLayout
from .load_common import (
    DEFAULT_FDR,
    SECTIONS,
    ReportData,
    _first,
    _read_json,
    _read_tsv,
    _Status,
    _why,
)
from .load_eqtl import _load_eqtls, _load_locus
from .load_findings import _load_comparison_source, _load_manifest, _load_tissue_factors
from .load_fit import _load_elbo, _load_robust, _load_topics

__all__ = ["DEFAULT_FDR", "SECTIONS", "ReportData", "load_run"]

logger = logging.getLogger(__name__)


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
        rename = {
            c: n
            for n, c in (
                (n, _first(df.columns, *alts))
                for n, alts in (
                    ("chrom", ("chrom", "chromosome", "chr")),
                    ("start", ("start", "bin_start")),
                    ("end", ("end", "bin_end")),
                    ("set", ("set", "snp_set", "tissue")),
                )
            )
            if c is not None
        }
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


def _guard(data: ReportData, sections: tuple[str, ...], func: Any, *args: Any) -> None:
    """Run one loader; a malformed table makes its sections absent instead of stopping the report."""
    try:
        func(*args)
    except (InputError, OSError, ValueError, KeyError) as exc:
        logger.warning("could not read %s: %s", ", ".join(sections), exc)
        for section in sections:
            data.mark_absent(section, f"its table could not be read: {exc}")


def _guard_findings(data: ReportData, what: str, func: Any, *args: Any) -> None:
    """Run one findings loader; a malformed file becomes a note of the findings, not a stopped report."""
    try:
        func(*args)
    except (InputError, OSError, ValueError, KeyError) as exc:
        logger.warning("could not read %s: %s", what, exc)
        data.extras.setdefault("findings_notes", []).append(f"{what} could not be read: {exc}")


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
        ``gtex``, ``tissue_factors`` (every run's factor-tissue scores); ``extras`` holds
        ``comparison_source`` (``gtex/source.json``) and ``data_manifest`` when present.
        ``absent`` names every section that cannot be shown, with the reason.

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
    tissue_column = (
        str((config.get("data") or {}).get("tissue_column", "tissue"))
        if isinstance(config.get("data"), dict)
        else "tissue"
    )
    status = _Status(layout, data.run_info)
    data.status_df = status.df
    pairs = layout.pairs()
    if not pairs:
        logger.warning("no pairs/ folders in %s", layout.root)
    _guard(data, ("topics",), _load_topics, data, layout, pairs, status, tissue_column)
    _guard(data, ("convergence",), _load_elbo, data, layout, pairs, status)
    _guard(data, ("robust",), _load_robust, data, layout, pairs, status)
    _guard(
        data,
        ("counts", "summary", "top_eqtls", "locus", "qq", "hist"),
        _load_eqtls,
        data,
        layout,
        pairs,
        status,
    )
    _guard(data, ("locus",), _load_locus, data, layout)
    _guard(data, ("go", "snp_enrichment", "bins", "tf", "gtex"), _load_enrichment, data, layout, status)
    _guard_findings(data, "the tissue-factor associations", _load_tissue_factors, data, layout, pairs)
    _guard_findings(
        data, "the comparison list's provenance (gtex/source.json)", _load_comparison_source, data, layout
    )
    _guard_findings(data, "the prepared data folder's manifest", _load_manifest, data, layout)
    return data
