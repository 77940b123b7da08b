"""Compare eQTL calls with GTEx lists: pair, eGene and eVariant overlap, novel calls, KS test.

The GTEx lists are read by :mod:`tbeqtl.io.gtex` (:func:`read_gtex_pairs`,
:func:`read_gtex_egenes`, :func:`read_gtex_trans`, :func:`read_gtex_v6_zscores` and the rsID
lookup :func:`read_gtex_lookup`; re-exported here).

:func:`compare_with_gtex` matches our calls (SNP-gene pairs with p-values) to a GTEx list by
variant ID and unversioned gene ID, per kind (cis/trans) and tissue, and runs a two-sample
Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``) of the two p-value distributions, as the
paper does for its cis-eQTLs (KS statistic 0.11).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..atomic import write_json, write_table
from ..errors import InputError
from ..io._common import require_columns
from ..io.gtex import (
    GTEX_VARIANT_ID,
    read_gtex_egenes,
    read_gtex_lookup,
    read_gtex_pairs,
    read_gtex_trans,
    read_gtex_v6_zscores,
)
from ..schema import validate_table
from .gene_ids import normalize_gene_id

__all__ = [
    "GtexComparison",
    "compare_with_gtex",
    "read_gtex_egenes",
    "read_gtex_lookup",
    "read_gtex_pairs",
    "read_gtex_trans",
    "read_gtex_v6_zscores",
    "tissue_key",
]

logger = logging.getLogger(__name__)

KINDS = ("cis", "trans")


def tissue_key(name: object) -> str:
    """Canonical tissue name for matching: ``"Whole Blood"``, ``"Whole_Blood"`` -> ``"whole_blood"``.

    Parameters
    ----------
    name
        A tissue name as written by GTEx (file prefix, SMTSD) or by the user.

    Returns
    -------
    str
        Lower case, runs of non-alphanumerics replaced by one underscore.
    """
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")


@dataclass(frozen=True)
class GtexComparison:
    """The result of :func:`compare_with_gtex`.

    Parameters
    ----------
    summary_df
        Table ``gtex_comparison``: overlap counts per tissue, kind and level.
    pairs_df
        Table ``gtex_pair_status``: our calls with their GTEx status.
    ks_df
        Table ``gtex_ks``: two-sample KS tests of p-value distributions.
    """

    summary_df: pd.DataFrame
    pairs_df: pd.DataFrame
    ks_df: pd.DataFrame

    def write(self, out_dir: str | Path) -> None:
        """Write ``comparison.tsv``, ``pairs.tsv``, ``ks.tsv`` and ``ks.json`` (the run layout's ``gtex/``).

        ``ks.json`` holds ``{"test": ..., "results": {"<tissue>/<kind>": {n_ours, n_gtex, statistic,
        p_value, median_ours, median_gtex}}}``.

        Parameters
        ----------
        out_dir
            Output folder (created).
        """
        out_dir = Path(out_dir)
        write_table(self.summary_df, out_dir / "comparison.tsv")
        write_table(self.pairs_df, out_dir / "pairs.tsv")
        write_table(self.ks_df, out_dir / "ks.tsv")
        results = {
            f"{row['tissue']}/{row['kind']}": {
                k: (None if pd.isna(row[k]) else row[k])
                for k in ("n_ours", "n_gtex", "statistic", "p_value", "median_ours", "median_gtex")
            }
            for _, row in self.ks_df.iterrows()
        }
        write_json({"test": "scipy.stats.ks_2samp (two-sided)", "results": results}, out_dir / "ks.json")


def _variant_map(
    snps: pd.Index, lookup_df: pd.DataFrame | None, snp_to_variant: Mapping[str, str] | pd.Series | None
) -> pd.DataFrame:
    """Long (snp, variant_id) table for our SNP IDs."""
    rows = []
    explicit = dict(snp_to_variant) if snp_to_variant is not None else {}
    by_rs: dict[str, list[str]] = {}
    if lookup_df is not None:
        sub = lookup_df.dropna(subset=["rs_id"])
        for rs, var in zip(sub["rs_id"], sub["variant_id"], strict=True):
            by_rs.setdefault(rs, []).append(var)
    for snp in snps:
        if snp in explicit:
            rows.append((snp, str(explicit[snp])))
        elif GTEX_VARIANT_ID.match(snp):
            rows.append((snp, snp))
        elif snp in by_rs:
            rows.extend((snp, v) for v in by_rs[snp])
    return pd.DataFrame(rows, columns=["snp", "variant_id"]).drop_duplicates(ignore_index=True)


def compare_with_gtex(
    calls_df: pd.DataFrame,
    gtex_df: pd.DataFrame,
    *,
    lookup_df: pd.DataFrame | None = None,
    snp_to_variant: Mapping[str, str] | pd.Series | None = None,
    kind: str | None = None,
    tissue: str | None = None,
    missing_tissue: str = "skip",
) -> GtexComparison:
    """Overlap of our eQTL calls with a GTEx list, novel calls, and a KS test of p-values.

    Parameters
    ----------
    calls_df
        Our calls (e.g. the ``eqtl_pairs`` rows at FDR < 0.1): columns ``snp``, ``gene``,
        ``p_value``, and ``kind`` (``cis``/``trans``) and ``tissue`` unless given as arguments.
    gtex_df
        GTEx calls from the readers (columns ``tissue``, ``kind``, ``variant_id``, ``gene_id``,
        ``p_value``); several readers' outputs may be concatenated.
    lookup_df
        GTEx lookup table (:func:`read_gtex_lookup`) to translate rsIDs to variant IDs.
    snp_to_variant
        Explicit SNP ID -> GTEx variant ID map (takes precedence over the lookup table). SNP IDs
        already in ``chr_pos_ref_alt_b38`` form are used as they are.
    kind
        Kind of every call, when ``calls_df`` has no ``kind`` column.
    tissue
        Tissue of every call, when ``calls_df`` has no ``tissue`` column; use ``"all"`` to pool
        GTEx tissues. Tissue names match GTEx's after :func:`tissue_key` (``Whole Blood`` =
        ``Whole_Blood``).
    missing_tissue
        Calls of a tissue absent from the GTEx list: ``"skip"`` (default; logged) or ``"error"``.
        If no tissue is left, an error is raised either way.

    Returns
    -------
    GtexComparison
        ``summary_df`` (per tissue, kind, level: pair / egene / evariant; shared, novel and
        unmapped counts), ``pairs_df`` (each call with its GTEx status) and ``ks_df``
        (``ks_2samp`` of our p-values against the GTEx p-values of the same tissue and kind).

    Raises
    ------
    InputError
        Missing columns, unknown kinds, empty inputs, no SNP mappable to a GTEx variant ID, or
        tissues absent from the GTEx list (all of them, or any with ``missing_tissue="error"``).
    """
    calls = calls_df.copy()
    for col, value in (("kind", kind), ("tissue", tissue)):
        if col not in calls.columns:
            if value is None:
                raise InputError(f"calls need a {col!r} column or {col}=...")
            calls[col] = value
    require_columns(calls, ["snp", "gene", "p_value", "kind", "tissue"], path="calls", what="eQTL calls")
    require_columns(
        gtex_df, ["tissue", "kind", "variant_id", "gene_id", "p_value"], path="gtex", what="GTEx list"
    )
    if calls.empty:
        raise InputError("no eQTL calls to compare")
    if gtex_df.empty:
        raise InputError("the GTEx list is empty")
    bad_kind = sorted(set(calls["kind"]) - set(KINDS))
    if bad_kind:
        raise InputError(f"call kinds must be {KINDS}", ids=bad_kind)
    calls["snp"] = calls["snp"].astype(str)
    calls["gene_key"] = calls["gene"].map(normalize_gene_id)
    gtex = gtex_df.assign(gene_id=gtex_df["gene_id"].map(normalize_gene_id))

    vmap = _variant_map(pd.Index(calls["snp"].unique()), lookup_df, snp_to_variant)
    unmapped = sorted(set(calls["snp"]) - set(vmap["snp"]))
    if len(unmapped) == calls["snp"].nunique():
        raise InputError(
            "no SNP of the calls maps to a GTEx variant ID (give the GTEx lookup table or snp_to_variant)",
            ids=unmapped,
        )
    if unmapped:
        logger.warning(
            "%d of %d SNPs have no GTEx variant ID (reported as unmapped, not novel): %s",
            len(unmapped),
            calls["snp"].nunique(),
            ", ".join(unmapped[:10]),
        )
    gtex_tissues = {tissue_key(t): t for t in gtex["tissue"].unique()}
    summary, pair_rows, ks_rows = [], [], []
    if missing_tissue not in ("skip", "error"):
        raise InputError(f"missing_tissue must be 'skip' or 'error', got {missing_tissue!r}")
    skipped: list[str] = []
    for (tis, knd), group in calls.groupby(["tissue", "kind"], sort=True):
        if str(tis) == "all":
            ref = gtex[gtex["kind"] == knd]
        else:
            if tissue_key(tis) not in gtex_tissues:
                message = f"tissue {tis!r} is not in the GTEx list; GTEx tissues are"
                if missing_tissue == "error":
                    raise InputError(message, ids=sorted(gtex_tissues.values()))
                logger.warning(
                    "%s %s; its calls are not compared", message, ", ".join(sorted(gtex_tissues.values()))
                )
                skipped.append(str(tis))
                continue
            ref = gtex[(gtex["kind"] == knd) & (gtex["tissue"] == gtex_tissues[tissue_key(tis)])]
        # one row per GTEx pair (e.g. when signif_variant_gene_pairs and egenes tables are both given)
        ref = ref.sort_values("p_value", kind="stable").drop_duplicates(["variant_id", "gene_id"])
        ref_pairs = ref.groupby(["variant_id", "gene_id"])["p_value"].min()
        ref_genes, ref_vars = set(ref["gene_id"]), set(ref["variant_id"])
        g = group.merge(vmap, on="snp", how="left")
        ref_pairs_df = ref_pairs.rename("gtex_p").reset_index().rename(columns={"gene_id": "gene_key"})
        pair_p = g.merge(ref_pairs_df, on=["variant_id", "gene_key"], how="left")["gtex_p"].to_numpy(float)
        g = g.assign(
            in_pair=~np.isnan(pair_p),
            gtex_p=pair_p,
            in_egene=g["gene_key"].isin(ref_genes),
            in_evar=g["variant_id"].isin(ref_vars),
        )
        per_call = (
            g.groupby(["snp", "gene"], sort=True)
            .agg(
                variant_id=("variant_id", lambda s: ",".join(sorted(v for v in s.dropna()))),
                p_value=("p_value", "min"),
                in_gtex_pair=("in_pair", "any"),
                in_gtex_egene=("in_egene", "any"),
                in_gtex_evariant=("in_evar", "any"),
                gtex_p_value=("gtex_p", "min"),
            )
            .reset_index()
        )
        per_call.insert(0, "kind", knd)
        per_call.insert(0, "tissue", str(tis))
        mapped = per_call["variant_id"] != ""
        per_call["novel"] = mapped & ~per_call["in_gtex_pair"]
        pair_rows.append(per_call)
        levels = {
            "pair": (
                len(per_call),
                len(ref_pairs),
                int(per_call["in_gtex_pair"].sum()),
                int((~mapped).sum()),
            ),
            "egene": (
                per_call["gene"].nunique(),
                len(ref_genes),
                int(per_call.loc[per_call["in_gtex_egene"], "gene"].nunique()),
                0,
            ),
            "evariant": (
                per_call["snp"].nunique(),
                len(ref_vars),
                int(per_call.loc[per_call["in_gtex_evariant"], "snp"].nunique()),
                int(per_call.loc[~mapped, "snp"].nunique()),
            ),
        }
        for level, (n_ours, n_gtex, n_shared, n_unmapped) in levels.items():
            n_testable = n_ours - n_unmapped
            summary.append(
                {
                    "tissue": str(tis),
                    "kind": knd,
                    "level": level,
                    "n_ours": n_ours,
                    "n_gtex": n_gtex,
                    "n_shared": n_shared,
                    "n_novel": n_testable - n_shared,
                    "n_unmapped": n_unmapped,
                    "fraction_shared": n_shared / n_testable if n_testable else np.nan,
                }
            )
        ours_p, ref_p = group["p_value"].to_numpy(float), ref["p_value"].to_numpy(float)
        if len(ref_p) == 0:
            stat, pval = np.nan, np.nan
        else:
            res = stats.ks_2samp(ours_p, ref_p)
            stat, pval = float(res.statistic), float(res.pvalue)
        ks_rows.append(
            {
                "tissue": str(tis),
                "kind": knd,
                "n_ours": len(ours_p),
                "n_gtex": len(ref_p),
                "statistic": stat,
                "p_value": pval,
                "median_ours": float(np.median(ours_p)),
                "median_gtex": float(np.median(ref_p)) if len(ref_p) else np.nan,
            }
        )
        logger.info(
            "GTEx %s %s: %d/%d pairs shared, KS D=%.3g p=%.3g",
            tis,
            knd,
            levels["pair"][2],
            levels["pair"][0],
            stat,
            pval,
        )
    if not summary:
        raise InputError("no tissue of the calls is in the GTEx list", ids=sorted(set(skipped)))
    summary_df = validate_table(pd.DataFrame(summary).astype({"fraction_shared": float}), "gtex_comparison")
    pairs_df = validate_table(pd.concat(pair_rows, ignore_index=True), "gtex_pair_status")
    ks_df = validate_table(pd.DataFrame(ks_rows), "gtex_ks")
    return GtexComparison(summary_df, pairs_df, ks_df)
