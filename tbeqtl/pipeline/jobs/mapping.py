"""The eQTL job of a pair: factor-restricted and exhaustive mapping per tissue on the held-out samples."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...atomic import write_table
from ...errors import InputError
from ...layout import PairLayout
from ...schema import validate_table
from .. import mapping as mp
from ..covariates import counts_per_million
from .common import PairContext, _heldout_by_tissue

__all__ = []


def _test_rows(tests: pd.DataFrame, keep) -> pd.DataFrame:
    rows = tests.loc[keep].copy() if len(tests) else tests.copy()
    rows["topics"] = [",".join(str(t) for t in ts) for ts in rows["topics"]]
    wanted = (
        "class",
        "snp",
        "gene",
        "beta",
        "t_stat",
        "p_value",
        "fdr",
        "gene_type",
        "fdr_by_type",
        "topics",
    )
    cols = [c for c in wanted if c in rows.columns]
    return rows[cols].reset_index(drop=True)


def _calls(result: mp.FactorSetResult, level: float) -> pd.DataFrame:
    tests = result.tests_df
    col = mp.call_column(tests)
    return _test_rows(tests, (tests[col] < level).to_numpy() if len(tests) else None)


def _candidates(result: mp.FactorSetResult, level: float) -> pd.DataFrame:
    """Return every test with ``p <= level``: all a genome-wide BH at ``level`` can call.

    Schema ``pipeline_candidates``.

    ``result.tests_df`` must hold every such test (the exhaustive mapping is run with an output
    p-value threshold of at least ``level``).
    """
    tests = result.tests_df
    return _test_rows(tests, (tests["p_value"] <= level).to_numpy() if len(tests) else None)


def _eqtl_stage(
    ctx: PairContext,
    layout: PairLayout,
    ranking_df: pd.DataFrame,
    tables: dict,
    pair_data,
    genes: pd.Index,
    snps: pd.Index,
    n_topics: int,
) -> dict[str, Any]:
    """Map the pair's tissues; ``pair_data`` holds the pair's genes and SNPs for every sample.

    Counts per million come from the library sizes of all genes and the covariates (with the
    hidden factors of all genes) from the driver, so only the pair's partitions are read here.
    """
    config = ctx.config
    mc, cc = config.mapping, config.covariates
    held_by_tissue = _heldout_by_tissue(pair_data, ctx.design_df, config.data.tissue_column)
    held = pd.Index(sorted({s for samples in held_by_tissue.values() for s in samples}))
    cpm_df = counts_per_million(pair_data.counts_df.loc[genes, held], library_size_s=ctx.library_size_s)
    drop: list[int] = []
    cov_df = tables.get("covariate_factors")
    if config.factors.drop_covariate_factors and cov_df is not None and len(cov_df):
        drop = sorted(set(cov_df.loc[cov_df["flagged"].astype(bool), "topic"].astype(int)))
    blocks = mp.factor_blocks(ranking_df)
    summary: dict[str, Any] = {}
    for t_index, tissue in enumerate(ctx.tissues):
        samples = held_by_tissue.get(tissue, pd.Index([]))
        covariates = ctx.tissue_covariates[tissue]
        if isinstance(covariates, str):  # the driver could not build them: this pair fails with it
            raise InputError(covariates, ids=[tissue])
        inputs = mp.prepare_tissue_inputs(
            pair_data,
            samples,
            tissue=tissue,
            cpm_df=cpm_df,
            known_df=ctx.known_df,
            geno_pcs_df=ctx.geno_pcs_df,
            genes=genes,
            snps=snps,
            n_hidden=cc.n_hidden,
            hidden=cc.hidden,
            hidden_max_fraction=cc.hidden_max_fraction,
            seed=config.holdout.seed,
            covariates_df=covariates,
        )
        params = {
            "tissue": tissue,
            "n_samples": inputs.n_samples,
            "covariates": [str(c) for c in inputs.covariates_df.index],
            "fdr_level": mc.fdr,
            "cis_dist": mc.cis_dist,
            "dropped_covariate_topics": drop,
        }
        tests, null = mp.map_factor_blocks(
            inputs,
            blocks,
            cis_dist=mc.cis_dist,
            n_permutations=mc.n_permutations,
            seed=config.holdout.seed + t_index,
        )
        for factor_set in mc.factor_sets:
            topics = mp.factor_set_topics(
                factor_set,
                topics=list(range(n_topics)),
                tissue=tissue,
                tissue_df=tables["tissue_association"],
                drop=drop,
            )
            result = mp.restrict_to_factor_set(tests, null, topics)
            folder = layout.eqtl(factor_set, tissue)
            mp.write_factor_set(
                result, folder, output_pvalue=mc.output_pvalue, params={**params, "factor_set": factor_set}
            )
            calls = _calls(result, mc.fdr).assign(factor_set=factor_set, tissue=tissue)
            write_table(
                validate_table(_candidates(result, mc.fdr), "pipeline_candidates"),
                folder / "candidates.parquet",
            )
            write_table(validate_table(calls, "pipeline_eqtls"), folder / "calls.tsv")
            summary[f"{factor_set}/{tissue}"] = len(calls)
        if mc.exhaustive:
            # keep every test with p <= fdr for the candidates even when output_pvalue is smaller
            # (cis.tsv / trans.tsv are still cut at output_pvalue). The engine's FDR sees these rows
            # too; a call (FDR < fdr) can only differ from a run at output_pvalue if a test at rank
            # j > m * output_pvalue / fdr has p <= fdr, i.e. when over half the tests do at 0.05 / 0.1
            result = mp.exhaustive_mapping(
                inputs, cis_dist=mc.cis_dist, output_pvalue=max(mc.output_pvalue, mc.fdr)
            )
            folder = layout.eqtl("exhaustive", tissue)
            mp.write_factor_set(
                result, folder, output_pvalue=mc.output_pvalue, params={**params, "factor_set": "exhaustive"}
            )
            calls = _calls(result, mc.fdr).assign(factor_set="exhaustive", tissue=tissue)
            write_table(
                validate_table(_candidates(result, mc.fdr), "pipeline_candidates"),
                folder / "candidates.parquet",
            )
            write_table(validate_table(calls, "pipeline_eqtls"), folder / "calls.tsv")
    return summary
