"""What the report draws from the run's inputs, written by the gather step under ``summary/``.

The report (:mod:`tbeqtl.report`) reads finished tables only; the few figures that need the input
data set get their tables here, with the pipeline's own transforms:

- ``summary/sample_tissues.tsv`` (schema ``sample_tissues``): the tissue of every sample (Fig 1);
- ``summary/maf_residuals/<pair>.parquet``: each pair's SNP loadings E[lambda] after regressing out
  the coded MAF (:func:`tbeqtl.pipeline.robust.maf_residuals`, Fig 3);
- ``summary/locus.json``: the locus of Fig 5, the SNP with the most trans-eGenes called in one
  (pair, factor set, tissue) mapping (:func:`trans_locus`), or ``null``;
- ``summary/locus_expression.parquet`` and ``summary/locus_genotype.tsv`` (schema
  ``locus_genotype``): its association inputs (:func:`locus_inputs`).

Paths come from :class:`tbeqtl.layout.RunLayout`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..atomic import write_json, write_table
from ..data import EQTLData
from ..layout import RunLayout
from ..schema import validate_table
from .covariates import counts_per_million, inverse_normal_transform
from .robust import maf_residuals

__all__ = ["counted_calls", "locus_inputs", "trans_locus", "write_report_tables"]

logger = logging.getLogger(__name__)


def counted_calls(eqtls_df: pd.DataFrame, *, level: float, scope: str = "family") -> pd.DataFrame:
    """Rows of the gathered eQTL table that the run's counts count.

    Parameters
    ----------
    eqtls_df
        ``summary/eqtls.parquet`` (schema ``pipeline_eqtls``).
    level
        The FDR level (``mapping.fdr``).
    scope
        ``mapping.fdr_scope``: with ``"all"`` the rows with ``fdr_all`` below the level, otherwise
        the per-run calls (``called_run``).

    Returns
    -------
    pandas.DataFrame
        The counted rows.
    """
    if scope == "all" and "fdr_all" in eqtls_df.columns:
        return eqtls_df[eqtls_df["fdr_all"].to_numpy(float) < level]
    if "called_run" in eqtls_df.columns:
        return eqtls_df[eqtls_df["called_run"].astype(bool)]
    return eqtls_df


def trans_locus(calls_df: pd.DataFrame) -> dict[str, Any] | None:
    """Pick the locus of Fig 5: the SNP with the most trans-eGenes in one mapping.

    Parameters
    ----------
    calls_df
        Called eQTLs with ``pair``, ``factor_set``, ``tissue``, ``class`` (or ``kind``), ``snp`` and
        ``gene``.

    Returns
    -------
    dict or None
        ``pair``, ``factor_set``, ``tissue``, ``snp`` and the sorted ``genes``; the factor-restricted
        sets are preferred over ``exhaustive``, ties go to the first by (pair, factor set, tissue,
        SNP). None without a trans call.
    """
    kind = "class" if "class" in calls_df.columns else "kind"
    trans = calls_df[calls_df[kind] == "trans"].astype({"snp": str, "gene": str})
    if (trans["factor_set"] != "exhaustive").any():
        trans = trans[trans["factor_set"] != "exhaustive"]
    if trans.empty:
        return None
    per = (trans.groupby(["pair", "factor_set", "tissue", "snp"])["gene"].nunique()
           .rename("n").reset_index().sort_values(["n", "pair", "factor_set", "tissue", "snp"],
                                                  ascending=[False, True, True, True, True]))
    best = per.iloc[0]
    genes = sorted(trans[(trans["pair"] == best["pair"]) & (trans["factor_set"] == best["factor_set"])
                         & (trans["tissue"] == best["tissue"]) & (trans["snp"] == best["snp"])]["gene"])
    return {"pair": str(best["pair"]), "factor_set": str(best["factor_set"]), "tissue": str(best["tissue"]),
            "snp": str(best["snp"]), "genes": [str(g) for g in genes]}


def locus_inputs(data: EQTLData, design_df: pd.DataFrame, locus: dict[str, Any], *,
                 tissue_column: str = "tissue",
                 library_size_s: pd.Series | None = None) -> tuple[pd.DataFrame, pd.Series] | None:
    """Rebuild the association input of the Fig 5 locus from the input data set.

    Parameters
    ----------
    data
        The run's input data set.
    design_df
        The held-out design of the locus' pair (schema ``holdout``).
    locus
        As returned by :func:`trans_locus`.
    tissue_column
        Sample attribute holding the tissue.
    library_size_s
        Every sample's library size over all genes, when ``data`` holds only some genes (the
        pipeline's gather passes the locus' genes); None: the column sums of ``data.counts_df``.

    Returns
    -------
    tuple or None
        ``(expression_df, genotype_s)``: genes x samples, counts per million then the rank-based
        inverse normal transform across the held-out samples of the locus' tissue, one per individual
        (the first by sample ID, as the mapping does), and the SNP's dosages in the same samples.
        None when the tissue, the samples, the genes or the SNP are not in the data set.
    """
    held = design_df.loc[design_df["held_out"].astype(str).str.lower().isin(["true", "1"]),
                         "sample"].astype(str)
    tissue_s = data.sample_info_df.get(tissue_column)
    if tissue_s is None:
        return None
    samples = sorted(s for s in held if s in tissue_s.index and str(tissue_s[s]) == locus["tissue"])
    individuals = data.sample_map_s.reindex(samples)
    keep = pd.Series(samples, index=individuals.to_numpy()).groupby(level=0).first().sort_values()
    samples = list(keep.to_numpy())
    genes = [g for g in locus["genes"] if g in data.counts_df.index]
    if not samples or not genes or locus["snp"] not in data.genotype_df.index:
        return None
    cpm_df = counts_per_million(data.counts_df[samples], library_size_s=library_size_s)
    expr_df = inverse_normal_transform(cpm_df).loc[genes]
    dosage = data.genotype_df.loc[locus["snp"], list(keep.index)]
    genotype_s = pd.Series(dosage.to_numpy(float), index=pd.Index(samples, name="sample"), name="dosage")
    return expr_df, genotype_s


def write_report_tables(layout: RunLayout, *, data: EQTLData, calls_df: pd.DataFrame,
                        pair_names: Iterable[str], tissue_column: str = "tissue",
                        library_size_s: pd.Series | None = None) -> dict[str, Any] | None:
    """Write the report's input-derived tables under ``summary/`` (see the module docstring).

    Parameters
    ----------
    layout
        The run folder.
    data
        The run's input data set.
    calls_df
        The called eQTLs the report counts (:func:`counted_calls` of the gathered table).
    pair_names
        The finished pairs (``<gene_chrom>__<snp_chrom>``) whose SNP loadings are residualised.
    tissue_column
        Sample attribute holding the tissue.
    library_size_s
        Passed to :func:`locus_inputs` (when ``data`` holds only some genes).

    Returns
    -------
    dict or None
        The Fig 5 locus written to ``summary/locus.json`` (None when there is no trans call).
    """
    if tissue_column in data.sample_info_df.columns:
        tissue_s = data.sample_info_df[tissue_column].astype(str)
        table = pd.DataFrame({"sample": tissue_s.index.astype(str), "tissue": tissue_s.to_numpy()})
        write_table(validate_table(table, "sample_tissues"), layout.sample_tissues)
    else:
        logger.warning("sample attributes have no %r column: summary/sample_tissues.tsv not written",
                       tissue_column)
    for name in pair_names:
        path = layout.root / "pairs" / name / "fit" / "snp_topics.tsv"
        if path.is_file():
            loadings = pd.read_csv(path, sep="\t", index_col=0, na_values=["NA"])
            loadings.index = loadings.index.astype(str)
            write_table(maf_residuals(loadings, data.genotype_df), layout.maf_residuals(name), index=True)
    locus = trans_locus(calls_df)
    for path in (layout.locus_expression, layout.locus_genotype):
        path.unlink(missing_ok=True)
    write_json({"locus": locus}, layout.locus)
    if locus is None:
        return None
    holdout = layout.root / "pairs" / locus["pair"] / "holdout.tsv"
    rebuilt = None
    if holdout.is_file():
        design_df = pd.read_csv(holdout, sep="\t", dtype={"sample": str})
        rebuilt = locus_inputs(data, design_df, locus, tissue_column=tissue_column,
                               library_size_s=library_size_s)
    if rebuilt is None:
        logger.warning("Fig 5 locus %s: its samples, genes or SNP are not in the data set; no locus tables",
                       locus["snp"])
        return locus
    expr_df, genotype_s = rebuilt
    write_table(expr_df, layout.locus_expression, index=True)
    write_table(validate_table(genotype_s.reset_index(), "locus_genotype"), layout.locus_genotype)
    return locus
