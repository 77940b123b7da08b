"""Turn :class:`~tbeqtl.report.load.ReportData` into report sections: figures (PNG) and tables.

The report opens with what the run found (:mod:`tbeqtl.report.findings`), then the analysis
sections (the paper's figures and tables), and ends with the appendix of run parameters,
versions, checksums and pair status (:mod:`tbeqtl.report.appendix`). The building blocks
(:class:`Section`, :class:`TableItem`, :class:`FigureItem`) live in :mod:`tbeqtl.report.items`.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from . import figures
from .appendix import appendix_section, flatten
from .findings import comparison_label, fdr_guarantee, findings_section
from .items import FigureItem, Section, TableItem, figure_png, format_table
from .load import SECTIONS, ReportData

__all__ = ["FigureItem", "Section", "TableItem", "build_sections", "figure_png", "format_table"]

logger = logging.getLogger(__name__)

#: The FDR guarantee sentence (moved to :mod:`tbeqtl.report.findings`; old name kept for callers).
_fdr_guarantee = fdr_guarantee


def _add_figure(section: Section, key: str, caption: str, make: Any, *args: Any, **kwargs: Any) -> None:
    fig = make(*args, **kwargs)
    section.figures.append(FigureItem(key=key, caption=caption, png=figure_png(fig)))
    fig.clf()


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
    out = [findings_section(data)]

    s = _shown(data, "topics")
    if not s.absent:
        pair = data.extras.get("topics_pair", "")
        if "topics_note" in data.extras:
            s.notes.append(data.extras["topics_note"])
        _add_figure(
            s,
            "fig1_sample_topics",
            f"Expected sample-topic proportions E[φ] of the fit {pair}, one row per sample, "
            "samples sorted by tissue. Tissue-associated topics are coloured in their tissue's "
            "colour family, the other topics in greys.",
            figures.sample_topics_figure,
            t["sample_topics"],
            t["sample_tissue"]["tissue"],
            t["topic_tissue"]["tissue"],
            title=f"fit {pair}",
        )
    out.append(s)

    s = _shown(data, "convergence")
    if not s.absent:
        s.notes.extend(data.extras.get("convergence_notes", []))
        _add_figure(
            s,
            "elbo",
            "ELBO per SVI step and the convergence statistic |(y − x)/y| (x: mean ELBO of "
            "the latest window of steps, y: of the window before) for every run.",
            figures.elbo_figure,
            t["elbo"],
            t["convergence"],
            tol=data.extras.get("tol"),
        )
    out.append(s)

    s = _shown(data, "robust")
    if not s.absent:
        if "robust_note" in data.extras:
            s.notes.append(data.extras["robust_note"])
        _add_figure(
            s,
            "fig3_loading_correlation",
            "Clustered pairwise Pearson correlations between topic loadings of different runs; "
            "colour bars mark each topic's strongest tissue association, if any.",
            figures.loading_correlation_figure,
            data.extras["robust"],
            t["loading_tissue"]["tissue"],
        )
    out.append(s)

    s = _shown(data, "snp_enrichment")
    if not s.absent:
        _add_figure(
            s,
            "fig2_snp_classes",
            "Fisher's exact test enrichment of SNP classes in the tissue-"
            "associated SNP sets (BH FDR; dotted line FDR = 0.1).",
            figures.snp_class_enrichment_figure,
            t["snp_annot"],
        )
        s.tables.append(
            format_table(
                t["snp_annot"],
                key="snp_annotation_enrichment",
                caption="SNP-class enrichment, by FDR.",
                max_rows=30,
            )
        )
    out.append(s)

    s = _shown(data, "bins")
    if not s.absent:
        _add_figure(
            s,
            "fig2_genomic_bins",
            "Genomic-bin localisation of each tissue's SNP set "
            "(Fisher's exact test per bin); dotted lines at p = 0.1 (blue) and p = 0.05 (green); "
            "colours alternate between chromosomes.",
            figures.genomic_bin_manhattan_figure,
            t["bins"],
        )
    out.append(s)

    s = _shown(data, "go")
    if not s.absent:
        go = t["go"]
        sig = go[go["fdr"] < 0.1] if "fdr" in go.columns else go
        shown = (sig if len(sig) else go).drop(columns=["genes"], errors="ignore")
        s.tables.append(
            format_table(
                shown,
                key="go_enrichment",
                caption=(
                    "GO biological-process terms at BH FDR < 0.1."
                    if len(sig)
                    else "No GO term at BH FDR < 0.1; the best terms are shown."
                ),
                max_rows=25,
            )
        )
    out.append(s)

    s = _shown(data, "tf")
    if not s.absent:
        s.tables.append(
            format_table(
                t["tf"],
                key="tf_recovery",
                caption="Tissue-specific transcription factors recovered in robust gene sets.",
            )
        )
    out.append(s)

    s = _shown(data, "summary")
    if not s.absent:
        summary = t["summary"]
        source = data.extras.get("summary_source", "")
        by_tissue = summary[summary["gene_type"] == "all"]
        wide = by_tissue.pivot_table(
            index=["factor_set", "tissue"],
            columns="kind",
            values=["n_eqtls", "n_egenes", "n_evariants"],
            aggfunc="sum",
            fill_value=0,
        )
        wide.columns = [f"{kind} {what[2:]}" for what, kind in wide.columns]
        order = [f"{k} {w}" for k in ("cis", "trans") for w in ("eqtls", "egenes", "evariants")]
        wide = wide[[c for c in order if c in wide.columns]].reset_index()
        fs_order = {fs: i for i, fs in enumerate(("all", "tissue", "general", "exhaustive"))}
        wide = wide.sort_values(
            ["factor_set", "tissue"],
            key=lambda c: (
                c.map(fs_order).fillna(9) if c.name == "factor_set" else c.map(lambda v: (v == "all", v))
            ),
        )
        s.tables.append(
            format_table(
                wide.reset_index(drop=True),
                key="summary_by_tissue",
                caption=f"eQTLs, unique eGenes and eVariants at FDR < {data.fdr:g} by "
                "factor set and tissue (tissue 'all': every tissue together); source: "
                f"{source}. {fdr_guarantee(data)}",
                max_rows=200,
            )
        )
        by_type = summary[(summary["tissue"] == "all")].drop(columns="tissue")
        s.tables.append(
            format_table(
                by_type.reset_index(drop=True),
                key="summary_by_gene_type",
                caption="The same over all tissues, by cis/trans and gene type (FDR "
                f"column {data.extras.get('fdr_column', 'fdr')}; n_tests: the FDR "
                "denominators).",
                max_rows=200,
            )
        )
    out.append(s)

    s = _shown(data, "qq")
    if not s.absent:
        _add_figure(
            s,
            "fig4_permutation_qq",
            "Ordered true −log10 p against ordered −log10 p of the same "
            "tests on permuted expression and covariates, one line per run; points where the "
            "true value exceeds the run's largest permuted value are highlighted.",
            figures.permutation_qq_figure,
            t["qq"],
        )
    out.append(s)

    s = _shown(data, "counts")
    if not s.absent:
        fs = data.extras.get("counts_factor_set", "")
        _add_figure(
            s,
            "fig4_eqtl_counts",
            f"Numbers of trans- (top) and cis-eQTLs (bottom) at FDR < "
            f"{data.fdr:g} per tissue, split by gene type (factor set '{fs}').",
            figures.eqtl_count_figure,
            t["counts"],
            fdr=data.fdr,
        )
    out.append(s)

    s = _shown(data, "hist")
    if not s.absent:
        _add_figure(
            s,
            "pvalue_histograms",
            "Histogram of every association p-value (all runs), by cis/trans.",
            figures.pvalue_histogram_figure,
            t["hist"],
        )
    out.append(s)

    s = _shown(data, "top_eqtls")
    if not s.absent:
        s.tables.append(
            format_table(
                t["top_eqtls"],
                key="top_eqtls",
                caption="The 30 eQTLs with the smallest p-values in the factor-"
                f"restricted mappings ({data.extras.get('eqtl_source', '')}).",
            )
        )
    out.append(s)

    s = _shown(data, "locus")
    if not s.absent:
        loc = data.extras["locus"]
        title = f"{loc['snp']}: {len(t['locus_expression'])} trans-eGenes ({loc['tissue']}, {loc['pair']})"
        _add_figure(
            s,
            "fig5_locus_heatmap",
            f"Quantile-normalised expression of the trans-eGenes of {loc['snp']} (the locus with the "
            f"most trans-eGenes, factor set '{loc['factor_set']}', tissue {loc['tissue']}) in the "
            "held-out samples, ordered by the SNP's dosage.",
            figures.locus_expression_figure,
            t["locus_expression"],
            t["locus_genotype"]["dosage"],
            title=title,
        )
    out.append(s)

    out.append(_comparison_section(data))
    out.append(appendix_section(data))
    return out


def _comparison_section(data: ReportData) -> Section:
    """Build the comparison with an eQTL list, titled by the list's recorded provenance."""
    t = data.tables
    s = _shown(data, "gtex")
    name, provenance = comparison_label(data.extras.get("comparison_source"))
    if data.extras.get("comparison_source") is not None:
        s.title = f"Comparison with the {name}"
    if s.absent:
        return s
    s.notes.append(provenance)
    s.tables.append(
        format_table(t["gtex"], key="gtex_comparison", caption=f"Overlap of the eQTL calls with the {name}.")
    )
    if "gtex_ks" in t:
        s.tables.append(
            format_table(
                t["gtex_ks"],
                key="gtex_ks",
                caption="Two-sample Kolmogorov-Smirnov test of our p-values against "
                f"the p-values of the {name}, per kind and tissue.",
            )
        )
    elif data.extras.get("ks"):
        rows: list[tuple[str, str]] = []
        flatten("", data.extras["ks"], rows)
        s.tables.append(
            format_table(
                pd.DataFrame(rows, columns=["statistic", "value"]),
                key="gtex_ks",
                caption="Two-sample Kolmogorov-Smirnov test of the p-value distributions.",
            )
        )
    return s
