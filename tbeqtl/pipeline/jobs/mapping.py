"""The eQTL job of a pair: factor-restricted and exhaustive mapping per tissue on the held-out samples."""

from __future__ import annotations

import ctypes
import gc
from typing import Any

import numpy as np
import pandas as pd

from ...atomic import atomic_path, write_table
from ...errors import InputError
from ...layout import PairLayout
from ...schema import validate_table
from .. import mapping as mp
from ..covariates import counts_per_million
from .common import PairContext, _heldout_by_tissue

__all__ = []


_TEST_COLUMNS = (
    "class", "snp", "gene", "beta", "t_stat", "p_value", "fdr", "gene_type", "fdr_by_type", "topics",
)


def _topic_texts(topics_s: pd.Series) -> np.ndarray:
    """Comma-separated topics of each row (object array); a list shared by rows is joined once."""
    lists, inverse = mp.shared_topic_lists(topics_s)
    texts = np.empty(len(lists), dtype=object)
    texts[:] = [",".join(str(t) for t in ts) for ts in lists]
    return texts[inverse]


def _test_rows(tests: pd.DataFrame, keep) -> pd.DataFrame:
    """Rows ``keep`` (a boolean mask, positions or None: all) with topics as text, schema column order."""
    if keep is None or not len(tests):
        rows = tests
    else:
        keep = np.asarray(keep)
        rows = tests.iloc[np.flatnonzero(keep) if keep.dtype == bool else keep]
    cols = [c for c in _TEST_COLUMNS if c in rows.columns]
    table = rows[cols].reset_index(drop=True)
    texts = _topic_texts(rows["topics"])
    table["topics"] = texts if len(texts) else []  # an empty table's topics column as before (float)
    return table


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


def _write_candidates(result: mp.FactorSetResult, level: float, path, *, topics: bool = True) -> None:
    """Write :func:`_candidates` to ``path`` (parquet) without building the table in pandas.

    The file holds the same columns, types, values and pandas metadata as
    ``write_table(validate_table(_candidates(result, level), "pipeline_candidates"), path)``.
    ``topics=False`` (the exhaustive mapping: no proposing topics) writes empty topics directly.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tests = result.tests_df
    rows = np.flatnonzero((tests["p_value"] <= level).to_numpy()) if len(tests) else np.empty(0, np.int64)
    head = validate_table(_test_rows(tests, rows[:1]), "pipeline_candidates")
    plain = all(tests[c].dtype in (object, np.float64) for c in head.columns if c != "topics")
    if not len(rows) or not plain or head.isna().to_numpy().any():  # the general (pandas) way
        write_table(validate_table(_candidates(result, level), "pipeline_candidates"), path)
        return
    schema = pa.Schema.from_pandas(head, preserve_index=False)
    arrays = []
    for name, field in zip(head.columns, schema, strict=True):
        if name == "topics":
            no_topics = np.full(len(rows), "", dtype=object)
            values = _topic_texts(tests["topics"].iloc[rows]) if topics else no_topics
        else:
            values = tests[name].to_numpy()[rows]
        try:
            arrays.append(pa.array(values, type=field.type, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # e.g. a non-string cell: the general way
            write_table(validate_table(_candidates(result, level), "pipeline_candidates"), path)
            return
    table = pa.Table.from_arrays(arrays, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="snappy")


def _release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``; elsewhere a no-op)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


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
        topic_sets = {
            factor_set: mp.factor_set_topics(factor_set, topics=list(range(n_topics)), tissue=tissue,
                                             tissue_df=tables["tissue_association"], drop=drop)
            for factor_set in mc.factor_sets
        }
        summary |= _map_factor_sets(inputs, blocks, topic_sets, layout, mc, params,
                                    seed=config.holdout.seed + t_index)
        if mc.exhaustive:
            _map_exhaustive(inputs, layout, mc, params)
        del inputs
        _release_memory()  # the tissue's tables are gone: give their pages back before the next one
    return summary


def _write_result(result: mp.FactorSetResult, folder, mc, params: dict, factor_set: str, *,
                  topics: bool = True) -> int:
    """Write one factor set's mapping in one tissue (run files, candidates, calls); return the calls."""
    run_params = {**params, "factor_set": factor_set}
    mp.write_factor_set(result, folder, output_pvalue=mc.output_pvalue, params=run_params)
    _write_candidates(result, mc.fdr, folder / "candidates.parquet", topics=topics)
    calls = _calls(result, mc.fdr).assign(factor_set=factor_set, tissue=params["tissue"])
    write_table(validate_table(calls, "pipeline_eqtls"), folder / "calls.tsv")
    return len(calls)


def _map_factor_sets(inputs, blocks, topic_sets: dict, layout: PairLayout, mc, params: dict, *,
                     seed: int) -> dict[str, int]:
    """Test the factor blocks once and write every factor set of one tissue; return the calls per set."""
    tests, null = mp.map_factor_blocks(inputs, blocks, cis_dist=mc.cis_dist, n_permutations=mc.n_permutations,
                                       seed=seed)
    summary = {}
    results = mp.iter_factor_sets(tests, null, list(topic_sets.values()))
    for factor_set, result in zip(topic_sets, results, strict=True):
        folder = layout.eqtl(factor_set, inputs.tissue)
        summary[f"{factor_set}/{inputs.tissue}"] = _write_result(result, folder, mc, params, factor_set)
    return summary


def _map_exhaustive(inputs, layout: PairLayout, mc, params: dict) -> None:
    """Test every SNP x gene pair of one tissue and write it as the ``exhaustive`` set."""
    # keep every test with p <= fdr for the candidates even when output_pvalue is smaller
    # (cis.tsv / trans.tsv are still cut at output_pvalue). The engine's FDR sees these rows
    # too; a call (FDR < fdr) can only differ from a run at output_pvalue if a test at rank
    # j > m * output_pvalue / fdr has p <= fdr, i.e. when over half the tests do at 0.05 / 0.1
    result = mp.exhaustive_mapping(inputs, cis_dist=mc.cis_dist, output_pvalue=max(mc.output_pvalue, mc.fdr))
    _write_result(result, layout.eqtl("exhaustive", inputs.tissue), mc, params, "exhaustive", topics=False)
