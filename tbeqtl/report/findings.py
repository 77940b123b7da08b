"""The report's opening section: what the run found.

Counts of eQTLs and eGenes by tissue and class (the counted calls: the per-family calls, or
``fdr_all`` below the level with ``mapping.fdr_scope = "all"``, as
:func:`tbeqtl.report.load_eqtl._counted_calls` selects them), the tissue-factor map, the strongest
loci, the overlap with the comparison list (named by its recorded provenance: a simulated list is
called one) and the enrichments, each as a sentence of the summary and a table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ..layout import FACTOR_SETS
from .items import Section, format_table
from .load import ReportData

__all__ = [
    "comparison_label",
    "count_calls",
    "fdr_guarantee",
    "findings_section",
    "primary_factor_set",
    "strongest_loci",
    "tissue_factor_map",
]

logger = logging.getLogger(__name__)

#: Rows of the strongest-loci table.
N_LOCI = 10
#: FDR level at which enrichment terms, classes and bins are counted in the summary.
ENRICHMENT_FDR = 0.1
_ALL_TISSUES = "all tissues"


def fdr_guarantee(data: ReportData) -> str:
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
        return (
            f"Calls: fdr_all < {q}, one Benjamini-Hochberg FDR over every test of the factor set (all "
            f"tissues, cis and trans, gene types and chromosome pairs): the expected share of false "
            f"calls in each factor set's list is at most {q}."
        )
    text = (
        f"Calls: Benjamini-Hochberg FDR < {q} per family, one family being one chromosome pair x factor "
        f"set x tissue x cis/trans x gene-type group: the expected share of false calls is at most {q} "
        "within each family, not in counts pooled over families, which can be higher."
    )
    summary = data.tables.get("summary")
    if summary is not None and "n_eqtls_genome" in summary.columns:
        text += (
            f" The *_genome counts (fdr_genome < {q}) pool each family over the chromosome pairs, with "
            "the same guarantee per pooled family."
        )
    return text + ' mapping.fdr_scope = "all" gives one list with one such guarantee.'


def _counted(data: ReportData) -> pd.DataFrame | None:
    """Return the counted calls (``significant`` rows of the loaded eQTL table), or None without results."""
    eqtls = data.tables.get("eqtls")
    if eqtls is None:
        return None
    return eqtls[eqtls["significant"].astype(bool)]


def primary_factor_set(calls: pd.DataFrame) -> str | None:
    """Return the factor set the findings count: the first of ``all, tissue, general`` with calls.

    Parameters
    ----------
    calls
        Counted calls with a ``factor_set`` column.

    Returns
    -------
    str or None
        The exhaustive mapping only when it is the only set; None without calls.
    """
    present = set(calls["factor_set"].astype(str))
    ordered = [fs for fs in FACTOR_SETS if fs in present] + sorted(present - {*FACTOR_SETS, "exhaustive"})
    return (ordered or sorted(present) or [None])[0]


def count_calls(calls: pd.DataFrame, *, tissues: list[str] = ()) -> pd.DataFrame:
    """Count eQTLs (distinct tissue x SNP x gene calls) and eGenes by tissue and class.

    Parameters
    ----------
    calls
        Counted calls of one factor set: ``tissue``, ``kind``, ``snp``, ``gene``.
    tissues
        Tissues to list even without a call (the run's mapped tissues).

    Returns
    -------
    pandas.DataFrame
        One row per tissue (sorted) and a last row ``"all tissues"`` (eQTLs summed, eGenes unique
        over tissues); columns ``tissue``, ``cis eQTLs``, ``cis eGenes``, ``trans eQTLs``,
        ``trans eGenes``.
    """
    calls = calls.drop_duplicates(["tissue", "kind", "snp", "gene"])
    names = sorted({*map(str, tissues), *calls["tissue"].astype(str)})
    rows = []
    for tissue in [*names, _ALL_TISSUES]:
        part = calls if tissue == _ALL_TISSUES else calls[calls["tissue"].astype(str) == tissue]
        row: dict[str, Any] = {"tissue": tissue}
        for kind in ("cis", "trans"):
            sub = part[part["kind"] == kind]
            row[f"{kind} eQTLs"] = len(sub)
            row[f"{kind} eGenes"] = sub["gene"].nunique()
        rows.append(row)
    return pd.DataFrame(rows)


def tissue_factor_map(tissue_factors: pd.DataFrame) -> pd.DataFrame:
    """Summarise which factors are associated with which tissue, over every run.

    Parameters
    ----------
    tissue_factors
        ``pair, topic, tissue, score, associated`` (one row per run x factor x tissue).

    Returns
    -------
    pandas.DataFrame
        One row per tissue: ``runs`` (runs that scored it), ``runs with a factor`` (runs with at least
        one associated factor), ``factors`` (associated run x factor pairs), ``strongest factor``
        (``pair:topic`` with the highest score among them) and its ``score``; then a row ``"(no
        tissue)"`` counting the factors associated with no tissue.
    """
    df = tissue_factors.assign(
        factor=tissue_factors["pair"].astype(str) + ":" + tissue_factors["topic"].astype(str)
    )
    rows = []
    for tissue, part in df.groupby("tissue", sort=True):
        assoc = part[part["associated"]].sort_values(["score", "factor"], ascending=[False, True])
        rows.append(
            {
                "tissue": tissue,
                "runs": part["pair"].nunique(),
                "runs with a factor": assoc["pair"].nunique(),
                "factors": assoc["factor"].nunique(),
                "strongest factor": assoc["factor"].iloc[0] if len(assoc) else "",
                "score": float(assoc["score"].iloc[0]) if len(assoc) else float("nan"),
            }
        )
    tied = set(df.loc[df["associated"], "factor"])
    untied = df.loc[~df["factor"].isin(tied), ["pair", "factor"]].drop_duplicates("factor")
    rows.append(
        {
            "tissue": "(no tissue)",
            "runs": df["pair"].nunique(),
            "runs with a factor": untied["pair"].nunique(),
            "factors": len(untied),
            "strongest factor": "",
            "score": float("nan"),
        }
    )
    return pd.DataFrame(rows)


def _factor_labels(tissue_factors: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """(pair, topic) -> "topic (tissue)" for tissue-associated factors (best-scoring tissue)."""
    if tissue_factors is None:
        return {}
    assoc = tissue_factors[tissue_factors["associated"]].sort_values(
        ["score", "tissue"], ascending=[False, True]
    )
    assoc = assoc.drop_duplicates(["pair", "topic"])
    return {
        (str(p), str(t)): f"{t} ({ti})"
        for p, t, ti in zip(assoc["pair"], assoc["topic"], assoc["tissue"], strict=True)
    }


def _factor_text(pair: str, topics: Any, labels: dict[tuple[str, str], str]) -> str:
    if not isinstance(topics, str) or not topics.strip():
        return ""
    names = [labels.get((pair, t.strip()), t.strip()) for t in topics.split(",") if t.strip()]
    return ", ".join(names[:4]) + (f" +{len(names) - 4} more" if len(names) > 4 else "")


def strongest_loci(
    calls: pd.DataFrame, tissue_factors: pd.DataFrame | None, *, n: int = N_LOCI
) -> pd.DataFrame:
    """Return the SNP-gene pairs with the smallest p-values among the factor-restricted calls.

    Parameters
    ----------
    calls
        Counted calls (every factor set; the exhaustive mapping is used only when it is all there is).
    tissue_factors
        The tissue-factor table, to name each factor's tissue (or None).
    n
        Rows.

    Returns
    -------
    pandas.DataFrame
        One row per SNP-gene pair at its smallest p-value: ``gene``, ``snp``, ``kind``, ``tissue``,
        ``tissues called`` (tissues with the pair called in a factor-restricted set), ``factor_set``,
        ``factors`` (``topic (tissue)``; only when the calls carry ``topics``), ``beta``,
        ``p_value``, ``pair``.
    """
    restricted = calls[calls["factor_set"] != "exhaustive"]
    source = restricted if len(restricted) else calls
    order = ["p_value", "pair", "factor_set", "tissue", "snp", "gene"]
    best = source.sort_values(order, kind="stable").drop_duplicates(["snp", "gene"]).head(n)
    n_tissues = source.groupby(["snp", "gene"])["tissue"].nunique()
    out = pd.DataFrame(
        {
            "gene": best["gene"].to_numpy(),
            "snp": best["snp"].to_numpy(),
            "kind": best["kind"].to_numpy(),
            "tissue": best["tissue"].to_numpy(),
            "tissues called": [
                int(n_tissues[(s, g)]) for s, g in zip(best["snp"], best["gene"], strict=True)
            ],
            "factor_set": best["factor_set"].to_numpy(),
        }
    )
    if "topics" in best.columns:
        labels = _factor_labels(tissue_factors)
        out["factors"] = [
            _factor_text(str(p), t, labels) for p, t in zip(best["pair"], best["topics"], strict=True)
        ]
    for col in ("beta", "p_value", "pair"):
        if col in best.columns:
            out[col] = best[col].to_numpy()
    return out


def comparison_label(source: dict[str, Any] | None) -> tuple[str, str]:
    """Name the comparison list from its recorded provenance (``gtex/source.json``).

    Parameters
    ----------
    source
        ``{"simulated": bool, "release": ..., "files": [...], "description": ...}`` or None.

    Returns
    -------
    tuple of str
        ``(name, provenance sentence)``: ``"simulated comparison list"`` for a simulated list,
        ``"GTEx <release> list"`` for a real one, ``"comparison list"`` when nothing is recorded.
    """
    if source is None:
        return "comparison list", "Its provenance is not recorded (no gtex/source.json in the run folder)."
    files = [str(f) for f in source.get("files") or []]
    shown = ", ".join(Path(f).name for f in files[:6])
    shown += f" and {len(files) - 6} more" if len(files) > 6 else ""
    where = f" Files: {shown}." if files else ""
    if source["simulated"]:
        what = str(source.get("description") or "written by the simulation")
        return "simulated comparison list", f"The simulated comparison list is not GTEx data: {what}.{where}"
    release = source.get("release")
    name = f"GTEx {release} list" if release else "GTEx list"
    return name, f"The {name}: {source.get('description') or 'GTEx eQTL calls'}.{where}"


def _count_sentence(data: ReportData, calls: pd.DataFrame, counts: pd.DataFrame, factor_set: str) -> str:
    total = counts.iloc[-1]
    by_tissue = counts.iloc[:-1]
    n_pairs = calls["pair"].nunique() if "pair" in calls.columns else 0
    text = (
        f"At FDR < {data.fdr:g} (factor set '{factor_set}'), {total['cis eQTLs']:,} cis-eQTLs in "
        f"{total['cis eGenes']:,} cis-eGenes and {total['trans eQTLs']:,} trans-eQTLs in "
        f"{total['trans eGenes']:,} trans-eGenes were called over {len(by_tissue)} tissues"
        + (f" and {n_pairs} chromosome pairs" if n_pairs else "")
        + "."
    )
    both = by_tissue["cis eQTLs"] + by_tissue["trans eQTLs"]
    if len(by_tissue) and both.max() > 0:
        top = by_tissue.loc[both.idxmax()]
        text += f" Most calls are in {top['tissue']} ({int(both.max()):,})."
    others = []
    for fs in [*FACTOR_SETS, "exhaustive"]:
        part = calls[calls["factor_set"] == fs].drop_duplicates(["tissue", "kind", "snp", "gene"])
        if fs != factor_set and len(part):
            cis, trans = int((part["kind"] == "cis").sum()), int((part["kind"] == "trans").sum())
            others.append(f"factor set '{fs}' {cis:,} cis / {trans:,} trans")
    if others:
        text += " Other mappings: " + "; ".join(others) + "."
    return text


def _counts_part(data: ReportData, section: Section) -> pd.DataFrame | None:
    calls = _counted(data)
    if calls is None or calls.empty:
        reason = data.absent.get("summary") or data.absent.get("counts") or f"no eQTL at FDR < {data.fdr:g}"
        section.text.append(f"No eQTL counts: {reason}.")
        return calls
    factor_set = primary_factor_set(calls)
    mapped = data.run_info.get("tissues_mapped")
    counts = count_calls(
        calls[calls["factor_set"] == factor_set], tissues=mapped if isinstance(mapped, list) else []
    )
    section.text.append(_count_sentence(data, calls, counts, factor_set))
    section.tables.append(
        format_table(
            counts,
            key="findings_counts",
            max_rows=200,
            caption=(
                f"eQTLs (SNP-gene pairs called in a tissue) and unique eGenes at FDR < {data.fdr:g} by "
                f"tissue and class, factor set '{factor_set}'. {fdr_guarantee(data)}"
            ),
        )
    )
    return calls


def _factor_part(data: ReportData, section: Section) -> None:
    tf = data.tables.get("tissue_factors")
    if tf is None or tf.empty:
        section.text.append("No tissue-factor associations were written (factors/tissue_association.tsv).")
        return
    table = tissue_factor_map(tf)
    tissues = table.iloc[:-1]
    n_factors = tf.assign(f=tf["pair"].astype(str) + ":" + tf["topic"].astype(str))["f"].nunique()
    n_tied = n_factors - int(table.iloc[-1]["factors"])
    every = int((tissues["runs with a factor"] == tissues["runs"]).sum())
    section.text.append(
        f"{n_tied:,} of {n_factors:,} factors ({tf['pair'].nunique()} runs) are associated with a tissue; "
        f"{every} of {len(tissues)} tissues have an associated factor in every run."
    )
    section.tables.append(
        format_table(
            table,
            key="findings_tissue_factors",
            max_rows=200,
            caption=(
                "Tissue-factor map: per tissue, the runs that scored it, the runs with at least one "
                "associated factor, the associated factors (run:topic) over all runs and the strongest "
                "one by normalised score; last row: "
                f"factors associated with no tissue (source: {data.extras.get('tissue_factors_source', '')})."
            ),
        )
    )


def _loci_part(data: ReportData, section: Section, calls: pd.DataFrame | None) -> None:
    if calls is None or calls.empty:
        return
    loci = strongest_loci(calls, data.tables.get("tissue_factors"))
    first = loci.iloc[0]
    section.text.append(
        f"The strongest association is {first['kind']} {first['snp']} - {first['gene']} in "
        f"{first['tissue']} (p = {first['p_value']:.2e})."
    )
    section.tables.append(
        format_table(
            loci,
            key="findings_loci",
            caption=(
                f"The {len(loci)} strongest SNP-gene pairs (smallest p-value over the factor-restricted "
                "mappings), each at its best tissue; 'tissues called': tissues in which the pair is called; "
                "factors: the topics whose blocks hold the pair, with their tissue."
            ),
        )
    )


def _comparison_part(data: ReportData, section: Section) -> None:
    comparison = data.tables.get("gtex")
    if comparison is None or "level" not in comparison.columns:
        return
    name, provenance = comparison_label(data.extras.get("comparison_source"))
    pairs = comparison[comparison["level"] == "pair"]
    shared_parts, empty = [], []
    for kind in ("cis", "trans"):
        sub = pairs[pairs["kind"] == kind]
        compared = int(sub["n_ours"].sum() - sub["n_unmapped"].sum())
        if len(sub) and int(sub["n_gtex"].sum()) == 0:
            empty.append(f"{kind}-eQTLs")
        elif compared > 0:
            shared = int(sub["n_shared"].sum())
            shared_parts.append(f"{shared:,} of {compared:,} {kind}-eQTLs ({shared / compared:.0%})")
    text = (
        f"Overlap with the {name}: " + " and ".join(shared_parts) + " are in it."
        if shared_parts
        else (f"No call could be compared with the {name}.")
    )
    if empty:
        text += " The list holds no " + " and no ".join(empty) + "."
    section.text.append(f"{text} {provenance}")
    section.tables.append(
        format_table(
            pairs.reset_index(drop=True),
            key="findings_comparison",
            max_rows=100,
            caption=f"SNP-gene pairs shared with the {name}, by tissue and class "
            "(eGene and eVariant levels in the comparison section).",
        )
    )


def _enrichment_part(data: ReportData) -> str:
    t, q, parts = data.tables, ENRICHMENT_FDR, []
    if "go" in t and "fdr" in t["go"].columns:
        sig = t["go"][t["go"]["fdr"] < q]
        best = f" (best: {sig['description'].iloc[0]})" if len(sig) and "description" in sig.columns else ""
        parts.append(f"{len(sig):,} GO terms{best}")
    if "snp_annot" in t and "fdr" in t["snp_annot"].columns:
        parts.append(f"{int((t['snp_annot']['fdr'] < q).sum()):,} SNP-class enrichments")
    if "bins" in t and "fdr" in t["bins"].columns:
        parts.append(f"{int((t['bins']['fdr'] < q).sum()):,} genomic bins")
    return f"Enrichments at FDR < {q:g}: " + ", ".join(parts) + "." if parts else ""


def findings_section(data: ReportData) -> Section:
    """Build the report's opening section from the loaded tables.

    Parameters
    ----------
    data
        What :func:`tbeqtl.report.load.load_run` gathered.

    Returns
    -------
    Section
        Key ``"findings"``: a summary paragraph (``text``) and the tables ``findings_counts``,
        ``findings_tissue_factors``, ``findings_loci``, ``findings_comparison`` (each when its
        inputs exist).
    """
    section = Section("findings", "Findings")
    calls = _counts_part(data, section)
    _factor_part(data, section)
    _loci_part(data, section, calls)
    _comparison_part(data, section)
    enrichment = _enrichment_part(data)
    if enrichment:
        section.text.append(enrichment)
    section.notes.extend(data.extras.get("findings_notes", []))
    return section
