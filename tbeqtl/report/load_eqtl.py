"""Report loader, eQTL side: called eQTLs, permutation QQ, p-value histograms, counts, Fig 5 locus."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..errors import InputError
from ..layout import FACTOR_SETS, PairLayout, RunLayout
from .load_common import ReportData, _first, _read_json, _read_tsv, _Status, _why

__all__ = []

logger = logging.getLogger(__name__)


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
    """Normalise a permutation QQ table (schema permutation_qq) to the figure's columns.

    Runs of tbeqtl before the one QQ schema wrote ``class, observed, permuted``; they are read too.
    """
    obs = _first(df.columns, "observed_log10p", "observed")
    perm = _first(df.columns, "permuted_log10p", "permuted")
    kind = _first(df.columns, "pool", "class")
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
    kind = _first(df.columns, "pool", "class")  # schema pvalue_hist; "class" in older runs
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
        calls = _counted_calls(data, calls)
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
    _top_eqtls(data, eqtl_df)


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


def _top_eqtls(data: ReportData, eqtl_df: pd.DataFrame) -> None:
    """Pick the top eQTLs (the locus of Fig 5 is the gather step's, :func:`_load_locus`)."""
    cols = [c for c in ("pair", "factor_set", "tissue", "kind", "snp", "gene", "gene_type", "beta",
                        "p_value", "fdr", "fdr_by_type") if c in eqtl_df.columns]
    # Factor-restricted sets first; the exhaustive mapping is only the power comparison.
    restricted = eqtl_df[eqtl_df["factor_set"] != "exhaustive"]
    source = restricted if len(restricted) else eqtl_df
    top = source.sort_values(["p_value", "pair", "factor_set", "tissue", "snp", "gene"], kind="stable")
    data.tables["top_eqtls"] = top[cols].head(30).reset_index(drop=True)


def _load_locus(data: ReportData, layout: RunLayout) -> None:
    """Read the locus of Fig 5 and its association inputs, as the pipeline's gather step wrote them.

    ``summary/locus.json`` names the SNP with the most trans-eGenes in one (pair, factor set,
    tissue) mapping; ``summary/locus_expression.parquet`` holds the inverse-normal held-out
    expression of its trans-eGenes and ``summary/locus_genotype.tsv`` the SNP's dosages
    (:mod:`tbeqtl.pipeline.report_tables`).
    """
    if "locus" in data.absent or "eqtls" not in data.tables:
        return
    if not layout.locus.is_file():
        data.mark_absent("locus", f"{layout.locus.relative_to(layout.root)} not found (the pipeline's gather "
                         "step writes the locus of Fig 5)")
        return
    locus = _read_json(layout.locus).get("locus")
    if not locus:
        data.mark_absent("locus", f"no trans-eQTL at FDR < {data.fdr:g}")
        return
    data.extras["locus"] = locus
    if not (layout.locus_expression.is_file() and layout.locus_genotype.is_file()):
        data.mark_absent("locus", "the gather step wrote no association inputs of the locus: its held-out "
                         f"samples, trans-eGenes or SNP {locus['snp']} are not in the input data")
        return
    expr_df = _read_tsv(layout.locus_expression)
    expr_df.index = expr_df.index.astype(str)
    genotype_df = _read_tsv(layout.locus_genotype, dtype={"sample": str}).set_index("sample")
    data.tables["locus_expression"] = expr_df
    data.tables["locus_genotype"] = genotype_df


def _counted_calls(data: ReportData, calls: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``summary/eqtls.parquet`` that the counts count: ``fdr_all < fdr`` with ``fdr_scope = "all"``.

    Parameters
    ----------
    data
        The loaded run (its run.json config gives ``mapping.fdr_scope``; default ``"family"``).
    calls
        The gathered eQTL table.

    Returns
    -------
    pandas.DataFrame
        With ``fdr_scope = "all"`` the rows with ``fdr_all`` below the level; otherwise the per-run
        calls (``called_run``), not the rows called only genome-wide.
    """
    config = data.run_info.get("config") if isinstance(data.run_info.get("config"), dict) else {}
    mapping = config.get("mapping") if isinstance(config.get("mapping"), dict) else {}
    if mapping.get("fdr_scope") == "all" and "fdr_all" in calls.columns:
        calls = calls[calls["fdr_all"].to_numpy(float) < data.fdr]
    elif "called_run" in calls.columns:
        calls = calls[calls["called_run"].astype(bool)]
    return calls.drop(columns=[c for c in ("called_run",) if c in calls.columns])
