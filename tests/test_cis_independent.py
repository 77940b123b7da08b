"""tbeqtl.association.cis.map_independent: two planted signals recovered, each reported variant equal to
statsmodels OLS with the other selected variants as covariates, tensorQTL's output, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cis_cohort import imputed, make_cohort, ols, window_ids

from tbeqtl.association import calculate_qvalues, map_cis, map_independent
from tbeqtl.association.cis import CIS_COLUMNS
from tbeqtl.errors import InputError

WINDOW = 150_000
NPERM = 200


@pytest.fixture(scope="module")
def planted():
    # weak planted effects elsewhere: eGenes with moderate pval_beta set a usable threshold
    c = make_cohort(31, n_variants=1200, n_phenotypes=16, span=1_000_000, effect=0.25)
    samples = c.phenotype_df.columns
    pid = c.phenotype_df.index[4]
    ids = window_ids(c, pid, WINDOW)
    # two variants far apart (no LD in the generator beyond neighbours), both common
    cands = [v for v in ids if 0.2 < imputed(c, v, samples).mean() / 2 < 0.5]
    a, b = cands[5], cands[-5]
    rng = np.random.default_rng(0)
    y = rng.normal(size=samples.size)
    for v in (a, b):
        g = imputed(c, v, samples)
        y = y + 0.6 * (g - g.mean()) / g.std()
    c.phenotype_df.loc[pid] = y
    cis_df = map_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        nperm=NPERM,
        seed=1,
        window=WINDOW,
    )
    calculate_qvalues(cis_df, qvalue_lambda=0.5)
    ind = map_independent(
        c.genotype_df,
        c.variant_df,
        cis_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        nperm=NPERM,
        seed=1,
        window=WINDOW,
    )
    return c, pid, (a, b), cis_df, ind


def test_columns_and_two_planted_signals(planted):
    c, pid, (a, b), cis_df, ind = planted
    assert list(ind.columns) == ["phenotype_id", *CIS_COLUMNS, "rank"]
    assert ind["rank"].dtype == np.int32 and ind["num_var"].dtype == np.int32
    mine = ind[ind["phenotype_id"] == pid]
    assert sorted(mine["variant_id"]) == sorted([a, b])
    assert mine["rank"].tolist() == [1, 2]
    threshold = cis_df.loc[cis_df["qval"] <= 0.05, "pval_beta"].max()
    assert (ind["pval_beta"] <= threshold).all()
    assert set(ind["phenotype_id"]) == set(cis_df.index[cis_df["qval"] <= 0.05])


def test_each_variant_equals_ols_with_the_other_selected_variants(planted):
    c, _, _, cis_df, ind = planted
    samples = sorted(c.phenotype_df.columns)
    cov = c.covariates_df.loc[samples].to_numpy()
    for pid, rows in ind.groupby("phenotype_id"):
        y = c.phenotype_df.loc[pid, samples].to_numpy()
        selected = rows["variant_id"].tolist()
        if len(rows) == 1:  # one signal: its map_cis row, as tensorQTL reports it
            pd.testing.assert_series_equal(
                rows.iloc[0][CIS_COLUMNS], cis_df.loc[pid, CIS_COLUMNS], check_names=False, check_dtype=False
            )
            continue
        for _, row in rows.iterrows():
            others = [imputed(c, v, samples) for v in selected if v != row["variant_id"]]
            slope, se, p, df = ols(y, cov, imputed(c, row["variant_id"], samples), extra=others)
            np.testing.assert_allclose(
                row[["slope", "slope_se", "pval_nominal"]].to_numpy(float), [slope, se, p], rtol=1e-8
            )
            # tests run: the window minus the variants conditioned on (collinear with the covariates)
            assert row["num_var"] == cis_df.loc[pid, "num_var"] - len(others)


def test_single_signal_genes_report_their_top_variant(planted):
    _, _, _, cis_df, ind = planted
    counts = ind["phenotype_id"].value_counts()
    single = counts.index[counts == 1]
    assert len(single) >= 2 and (counts > 1).sum() >= 2
    for pid in single:
        row = ind[ind["phenotype_id"] == pid].iloc[0]
        assert row["rank"] == 1 and row["variant_id"] == cis_df.loc[pid, "variant_id"]


def test_bad_input(planted):
    c, *_, cis_df, _ = planted
    args = (c.genotype_df, c.variant_df)
    rest = (c.phenotype_df, c.phenotype_pos_df, c.covariates_df)
    with pytest.raises(InputError, match="no 'qval' column"):
        map_independent(*args, cis_df.drop(columns=["qval"]), *rest, nperm=NPERM)
    with pytest.raises(InputError, match="no eGene at FDR"):
        map_independent(*args, cis_df, *rest, fdr=1e-300, nperm=NPERM)
    with pytest.raises(InputError, match="absent from phenotype_df"):
        map_independent(
            *args, cis_df, c.phenotype_df.drop(index=cis_df["qval"].idxmin()), *rest[1:], nperm=NPERM
        )


def test_forward_step_equals_ols_with_the_earlier_variant(planted):
    """The conditional scan of the forward pass: the top variant given the first one, vs statsmodels."""
    from tbeqtl.association.cis import _Conditional, _window
    from tbeqtl.association.cis_inputs import prepare_cis
    from tbeqtl.association.cis_kernels import load_chromosome
    from tbeqtl.association.permutation import canonical_permutations

    c, pid, (a, b), cis_df, _ = planted
    inputs = prepare_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        phenotype_pos_df=c.phenotype_pos_df,
        covariates_df=c.covariates_df,
    )
    chromg = load_chromosome(inputs.source, "chr1", samples=inputs.cohort.genotype_ids, q=inputs.q)
    keep = np.flatnonzero(chromg.testable)
    vidx = _window(chromg, keep, *inputs.bounds(pid), WINDOW)
    perms = canonical_permutations(inputs.cohort.samples, NPERM, seed=1)
    cond = _Conditional(inputs, chromg, vidx, pid, perms, NPERM)
    first = cis_df.loc[pid, "variant_id"]
    row, top = cond.scan(cond.basis([int(np.flatnonzero(chromg.ids == first)[0])]))
    assert {first, chromg.ids[top]} == {a, b}
    samples = sorted(c.phenotype_df.columns)
    y = c.phenotype_df.loc[pid, samples].to_numpy()
    cov = c.covariates_df.loc[samples].to_numpy()
    slope, se, p, df = ols(y, cov, imputed(c, chromg.ids[top], samples), extra=[imputed(c, first, samples)])
    np.testing.assert_allclose(
        [row["slope"], row["slope_se"], row["pval_nominal"]], [slope, se, p], rtol=1e-8
    )
    assert df == len(samples) - 2 - cov.shape[1] - 1
    assert row["num_var"] == cis_df.loc[pid, "num_var"] - 1  # the conditioning variant is not retested


def test_conditional_permutation_maxima_equal_a_float64_loop(planted):
    """Permutation maxima given a selected variant (cached float32 rows rescaled, or fresh rows) vs lstsq."""
    from cis_cohort import r2_perm_reference

    from tbeqtl.association.cis import _Conditional, _window
    from tbeqtl.association.cis_inputs import prepare_cis
    from tbeqtl.association.cis_kernels import WindowCache, load_chromosome, scan_permutations
    from tbeqtl.association.permutation import canonical_permutations

    c, pid, (a, b), _, _ = planted
    inputs = prepare_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        phenotype_pos_df=c.phenotype_pos_df,
        covariates_df=c.covariates_df,
    )
    chromg = load_chromosome(inputs.source, "chr1", samples=inputs.cohort.genotype_ids, q=inputs.q)
    keep = np.flatnonzero(chromg.testable)
    vidx = _window(chromg, keep, *inputs.bounds(pid), WINDOW)
    perms = canonical_permutations(inputs.cohort.samples, NPERM, seed=2)
    samples = sorted(c.phenotype_df.columns)
    y = c.phenotype_df.loc[pid, samples].to_numpy()
    cov = c.covariates_df.loc[samples].to_numpy()
    sel = int(np.flatnonzero(chromg.ids == a)[0])
    g_sel = imputed(c, a, samples)
    others = [v for v in vidx if v != sel]
    ref = r2_perm_reference(y, np.column_stack([cov, g_sel]), chromg.rows64(np.array(others)), perms)
    for cache in (WindowCache(chromg, keep, block=53), WindowCache(chromg, keep, float32=False), None):
        cond = _Conditional(inputs, chromg, vidx, pid, perms, NPERM, cache)
        extra = cond.basis([sel])
        yv = cond.y_res - extra @ (extra.T @ cond.y_res)
        yp = cond.yp - (cond.yp @ extra) @ extra.T
        yp /= np.linalg.norm(yp, axis=1, keepdims=True)
        scan = scan_permutations(
            chromg,
            vidx,
            u=yv / np.linalg.norm(yv),
            yp=yp,
            extra=extra,
            q_full=np.column_stack([inputs.q, extra]),
            cache=cache,
            keep_float32=True,
        )
        assert scan.res_norm[np.searchsorted(vidx, sel)] == 0  # the selected variant is not retested
        np.testing.assert_allclose(scan.r2_perm, ref, rtol=1e-10)
        assert 0 < scan.bound < 1e-4
        assert np.max(np.abs(np.sqrt(scan.r2_perm_float32) - np.sqrt(ref))) <= scan.bound
