"""Turn :class:`~tbeqtl.report.load.ReportData` into report sections: figures (PNG) and tables.

A :class:`Section` holds the figures, tables and notes of one part of the report, or the reason
it is absent. The HTML template renders the sections, and the PDF is printed from that HTML, so
both outputs have exactly the same content.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import __version__
from . import figures
from .load import SECTIONS, ReportData

__all__ = ["FigureItem", "Section", "TableItem", "build_sections", "figure_png", "format_table"]

logger = logging.getLogger(__name__)

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
    notes
        Sentences shown above the content.
    absent
        Why the section cannot be shown (empty when it is shown).
    """

    key: str
    title: str
    figures: list[FigureItem] = field(default_factory=list)
    tables: list[TableItem] = field(default_factory=list)
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
    rows = [[_format_cell(v, c) for v, c in zip(row, columns, strict=True)]
            for row in shown.itertuples(index=False, name=None)]
    note = f"{len(df) - max_rows:,} more rows not shown." if len(df) > max_rows else ""
    return TableItem(key=key, caption=caption, df=shown, columns=columns, rows=rows, note=note)


def _add_figure(section: Section, key: str, caption: str, make: Any, *args: Any, **kwargs: Any) -> None:
    fig = make(*args, **kwargs)
    section.figures.append(FigureItem(key=key, caption=caption, png=figure_png(fig)))
    fig.clf()


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, (list, tuple)):
        out.append((prefix, ", ".join(map(str, value)) if len(value) <= 12 else f"{len(value)} items"))
    else:
        out.append((prefix, str(value)))


def _joined(value: Any) -> str:
    rows: list[tuple[str, str]] = []
    _flatten("", value, rows)
    return "; ".join(f"{k}={v}" for k, v in rows)


def _run_section(data: ReportData) -> Section:
    section = Section("run", "Run parameters and versions")
    info = dict(data.run_info)
    rows: list[tuple[str, str]] = [("run folder", str(data.run_dir)),
                                   ("report built by", f"tbeqtl {__version__}")]
    config = info.pop("config", None)
    if isinstance(config, dict):
        rows += [(f"config [{name}]", _joined(values)) for name, values in config.items()]
    for key in ("versions", "holdout", "tissues_mapped", "tissues_skipped", "ancestry", "seconds", "tool",
                "tbeqtl_version"):
        if key in info:
            value = info.pop(key)
            rows.append((key, _joined(value) if isinstance(value, dict) else
                         (", ".join(map(str, value)) if isinstance(value, list) else str(value))))
    checksums = info.pop("input_checksums", None) or info.pop("checksums", None)
    if isinstance(checksums, dict) and checksums:
        rows.append(("input checksums",
                     "; ".join(f"{Path(k).name}={str(v)[:12]}" for k, v in checksums.items())))
    summary = info.pop("summary", None)
    for key, value in info.items():
        if key not in ("status", "stages", "pairs"):
            rows.append((key, _joined(value) if isinstance(value, dict) else str(value)))
    if not data.run_info:
        section.notes.append("run.json is missing: the parameters of this run are unknown.")
    section.tables.append(format_table(pd.DataFrame(rows, columns=["parameter", "value"]), key="parameters",
                                       caption="Run configuration, package versions, held-out design and "
                                       "input checksums (first 12 characters).", max_rows=400))
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
            caption = (f"{len(wide)} chromosome pairs, {len(wide) - len(bad)} with every stage done; "
                       "the others are listed.")
            wide = bad
        section.tables.append(format_table(wide, key="status", caption=caption, max_rows=200))
    run_status = status[status["pair"] == "(run)"].drop(columns="pair")
    if len(run_status):
        section.tables.append(format_table(run_status.reset_index(drop=True), key="run_status",
                                           caption="Run-level stages (enrichment, GTEx comparison).",
                                           max_rows=100))
    if isinstance(summary, dict) and summary:
        rows = []
        _flatten("", summary, rows)
        section.tables.append(format_table(pd.DataFrame(rows, columns=["statistic", "value"]),
                                           key="factor_summary", caption="Factor interpretation summary "
                                           "written by the pipeline (tissue, ancestry, cell-type checks; "
                                           "robust components).", max_rows=400))
    absent = [(SECTIONS[k], v) for k, v in data.absent.items() if k in SECTIONS]
    if absent:
        section.tables.append(format_table(pd.DataFrame(absent, columns=["section", "why it is absent"]),
                                           key="absent", caption="Sections that could not be drawn.",
                                           max_rows=100))
    return section


def _fdr_guarantee(data: ReportData) -> str:
    """Return the sentence that states what the FDR level of the counted eQTLs guarantees.

    Parameters
    ----------
    data
        The loaded run; ``mapping.fdr_scope`` of its run.json config chooses the wording
        (``"family"`` when absent).

    Returns
    -------
    str
        Two or three sentences for the count captions.
    """
    config = data.run_info.get("config") if isinstance(data.run_info.get("config"), dict) else {}
    mapping = config.get("mapping") if isinstance(config.get("mapping"), dict) else {}
    q = f"{data.fdr:g}"
    if mapping.get("fdr_scope") == "all":
        return (f"Calls: fdr_all < {q}, one Benjamini-Hochberg FDR over every test of the factor set (all "
                f"tissues, cis and trans, gene types and chromosome pairs): the expected share of false "
                f"calls in each factor set's list is at most {q}.")
    text = (f"Calls: Benjamini-Hochberg FDR < {q} per family, one family being one chromosome pair x factor "
            f"set x tissue x cis/trans x gene-type group: the expected share of false calls is at most {q} "
            "within each family, not in counts pooled over families, which can be higher.")
    summary = data.tables.get("summary")
    if summary is not None and "n_eqtls_genome" in summary.columns:
        text += (f" The *_genome counts (fdr_genome < {q}) pool each family over the chromosome pairs, with "
                 "the same guarantee per pooled family.")
    return text + ' mapping.fdr_scope = "all" gives one list with one such guarantee.'


def _shown(data: ReportData, key: str) -> Section:
    title = SECTIONS[key]
    return Section(key, title, absent=data.absent.get(key, ""))


def build_sections(data: ReportData) -> list[Section]:
    """Build every report section from the loaded tables.

    Parameters
    ----------
    data
        What :func:`tbeqtl.report.load.load_run` gathered.

    Returns
    -------
    list of Section
        In report order; a section whose inputs are missing carries the reason instead.
    """
    t = data.tables
    out = [_run_section(data)]

    s = _shown(data, "topics")
    if not s.absent:
        pair = data.extras.get("topics_pair", "")
        if "topics_note" in data.extras:
            s.notes.append(data.extras["topics_note"])
        _add_figure(s, "fig1_sample_topics",
                    f"Expected sample-topic proportions E[φ] of the fit {pair}, one row per sample, "
                    "samples sorted by tissue. Tissue-associated topics are coloured in their tissue's "
                    "colour family, the other topics in greys.",
                    figures.sample_topics_figure, t["sample_topics"], t["sample_tissue"]["tissue"],
                    t["topic_tissue"]["tissue"], title=f"fit {pair}")
    out.append(s)

    s = _shown(data, "convergence")
    if not s.absent:
        s.notes.extend(data.extras.get("convergence_notes", []))
        _add_figure(s, "elbo", "ELBO per SVI step and the convergence statistic |(y − x)/y| (x: mean ELBO of "
                    "the latest window of steps, y: of the window before) for every run.",
                    figures.elbo_figure, t["elbo"], t["convergence"], tol=data.extras.get("tol"))
    out.append(s)

    s = _shown(data, "robust")
    if not s.absent:
        if "robust_note" in data.extras:
            s.notes.append(data.extras["robust_note"])
        _add_figure(s, "fig3_loading_correlation",
                    "Clustered pairwise Pearson correlations between topic loadings of different runs; "
                    "colour bars mark each topic's strongest tissue association, if any.",
                    figures.loading_correlation_figure, data.extras["robust"], t["loading_tissue"]["tissue"])
    out.append(s)

    s = _shown(data, "snp_enrichment")
    if not s.absent:
        _add_figure(s, "fig2_snp_classes", "Fisher's exact test enrichment of SNP classes in the tissue-"
                    "associated SNP sets (BH FDR; dotted line FDR = 0.1).",
                    figures.snp_class_enrichment_figure, t["snp_annot"])
        s.tables.append(format_table(t["snp_annot"], key="snp_annotation_enrichment",
                                     caption="SNP-class enrichment, by FDR.", max_rows=30))
    out.append(s)

    s = _shown(data, "bins")
    if not s.absent:
        _add_figure(s, "fig2_genomic_bins", "Genomic-bin localisation of each tissue's SNP set "
                    "(Fisher's exact test per bin); dotted lines at p = 0.1 (blue) and p = 0.05 (green); "
                    "colours alternate between chromosomes.", figures.genomic_bin_manhattan_figure, t["bins"])
    out.append(s)

    s = _shown(data, "go")
    if not s.absent:
        go = t["go"]
        sig = go[go["fdr"] < 0.1] if "fdr" in go.columns else go
        shown = (sig if len(sig) else go).drop(columns=["genes"], errors="ignore")
        s.tables.append(format_table(shown, key="go_enrichment",
                                     caption=("GO biological-process terms at BH FDR < 0.1." if len(sig)
                                              else "No GO term at BH FDR < 0.1; the best terms are shown."),
                                     max_rows=25))
    out.append(s)

    s = _shown(data, "tf")
    if not s.absent:
        s.tables.append(format_table(t["tf"], key="tf_recovery",
                                     caption="Tissue-specific transcription factors recovered in robust "
                                     "gene sets."))
    out.append(s)

    s = _shown(data, "summary")
    if not s.absent:
        summary = t["summary"]
        source = data.extras.get("summary_source", "")
        by_tissue = summary[summary["gene_type"] == "all"]
        wide = by_tissue.pivot_table(index=["factor_set", "tissue"], columns="kind",
                                     values=["n_eqtls", "n_egenes", "n_evariants"], aggfunc="sum",
                                     fill_value=0)
        wide.columns = [f"{kind} {what[2:]}" for what, kind in wide.columns]
        order = [f"{k} {w}" for k in ("cis", "trans") for w in ("eqtls", "egenes", "evariants")]
        wide = wide[[c for c in order if c in wide.columns]].reset_index()
        fs_order = {fs: i for i, fs in enumerate(("all", "tissue", "general", "exhaustive"))}
        wide = wide.sort_values(["factor_set", "tissue"], key=lambda c: c.map(fs_order).fillna(9)
                                if c.name == "factor_set" else c.map(lambda v: (v == "all", v)))
        s.tables.append(format_table(wide.reset_index(drop=True), key="summary_by_tissue",
                                     caption=f"eQTLs, unique eGenes and eVariants at FDR < {data.fdr:g} by "
                                     "factor set and tissue (tissue 'all': every tissue together); source: "
                                     f"{source}. {_fdr_guarantee(data)}",
                                     max_rows=200))
        by_type = summary[(summary["tissue"] == "all")].drop(columns="tissue")
        s.tables.append(format_table(by_type.reset_index(drop=True), key="summary_by_gene_type",
                                     caption="The same over all tissues, by cis/trans and gene type (FDR "
                                     f"column {data.extras.get('fdr_column', 'fdr')}; n_tests: the FDR "
                                     "denominators).", max_rows=200))
    out.append(s)

    s = _shown(data, "qq")
    if not s.absent:
        _add_figure(s, "fig4_permutation_qq", "Ordered true −log10 p against ordered −log10 p of the same "
                    "tests on permuted expression and covariates, one line per run; points where the "
                    "true value exceeds the run's largest permuted value are highlighted.",
                    figures.permutation_qq_figure, t["qq"])
    out.append(s)

    s = _shown(data, "counts")
    if not s.absent:
        fs = data.extras.get("counts_factor_set", "")
        _add_figure(s, "fig4_eqtl_counts", f"Numbers of trans- (top) and cis-eQTLs (bottom) at FDR < "
                    f"{data.fdr:g} per tissue, split by gene type (factor set '{fs}').",
                    figures.eqtl_count_figure, t["counts"], fdr=data.fdr)
    out.append(s)

    s = _shown(data, "hist")
    if not s.absent:
        _add_figure(s, "pvalue_histograms", "Histogram of every association p-value (all runs), by "
                    "cis/trans.",
                    figures.pvalue_histogram_figure, t["hist"])
    out.append(s)

    s = _shown(data, "top_eqtls")
    if not s.absent:
        s.tables.append(format_table(t["top_eqtls"], key="top_eqtls",
                                     caption="The 30 eQTLs with the smallest p-values in the factor-"
                                     f"restricted mappings ({data.extras.get('eqtl_source', '')})."))
    out.append(s)

    s = _shown(data, "locus")
    if not s.absent:
        loc = data.extras["locus"]
        title = f"{loc['snp']}: {len(t['locus_expression'])} trans-eGenes ({loc['tissue']}, {loc['pair']})"
        _add_figure(s, "fig5_locus_heatmap",
                    f"Quantile-normalised expression of the trans-eGenes of {loc['snp']} (the locus with the "
                    f"most trans-eGenes, factor set '{loc['factor_set']}', tissue {loc['tissue']}) in the "
                    "held-out samples, ordered by the SNP's dosage.",
                    figures.locus_expression_figure, t["locus_expression"], t["locus_genotype"]["dosage"],
                    title=title)
    out.append(s)

    s = _shown(data, "gtex")
    if not s.absent:
        s.tables.append(format_table(t["gtex"], key="gtex_comparison",
                                     caption="Overlap of the eQTL calls with the GTEx list."))
        if "gtex_ks" in t:
            s.tables.append(format_table(t["gtex_ks"], key="gtex_ks",
                                         caption="Two-sample Kolmogorov-Smirnov test of our p-values against "
                                         "the GTEx p-values, per kind and tissue."))
        elif data.extras.get("ks"):
            rows: list[tuple[str, str]] = []
            _flatten("", data.extras["ks"], rows)
            s.tables.append(format_table(pd.DataFrame(rows, columns=["statistic", "value"]), key="gtex_ks",
                                         caption="Two-sample Kolmogorov-Smirnov test of the p-value "
                                         "distributions."))
    out.append(s)
    return out
