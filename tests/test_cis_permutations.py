"""tbeqtl.association.cis.map_cis: top variant vs statsmodels OLS, permutation maxima vs a float64 loop,
the float32 bound, the beta approximation vs scipy's Beta fit, input order, skips.

References: statsmodels OLS (top variant), ``cis_cohort.r2_perm_reference`` (every vector
residualised by lstsq, a Python loop over permutations), scipy.stats.t / scipy.stats.beta.fit.
The permutation set is rebuilt with ``canonical_permutations`` over the sorted sample IDs: that
part is plumbing (the same function the code calls); its order-independence is tested in
tests/test_assoc_permutation.py.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from cis_cohort import imputed, make_cohort, ols, r2_perm_reference, window_ids
from scipy import stats

from tbeqtl.association import map_cis
from tbeqtl.association.cis_inputs import prepare_cis
from tbeqtl.association.cis_kernels import (
    EXACT_RATIO,
    WindowCache,
    load_chromosome,
    residual_unit,
    scan_permutations,
)
from tbeqtl.association.permutation import canonical_permutations
from tbeqtl.io.genotypes import FrameGenotypes

WINDOW = 150_000
NPERM = 300


@pytest.fixture(autouse=True)
def _propagate_tbeqtl_logs(monkeypatch):
    """caplog needs the tbeqtl logger to propagate (a CLI run in another module may have turned it off)."""
    monkeypatch.setattr(logging.getLogger("tbeqtl"), "propagate", True)


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(21, n_variants=1500, n_phenotypes=12, chroms=("chr1", "chr2"), span=1_000_000)


@pytest.fixture(scope="module")
def cis_df(cohort):
    c = cohort
    return map_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        nperm=NPERM,
        seed=7,
        window=WINDOW,
    )


def _design(c):
    samples = sorted(c.phenotype_df.columns)
    return samples, c.covariates_df.loc[samples].to_numpy()


def _testable_window(c, pid, samples):
    ids = window_ids(c, pid, WINDOW)
    g = np.vstack([imputed(c, v, samples) for v in ids])
    keep = np.ptp(g, axis=1) > 0
    return [v for v, k in zip(ids, keep, strict=True) if k], g[keep]


def _r_reference(y, cov, g):
    """Partial correlations of y with each row of g given [1, cov] (lstsq residuals)."""
    design = np.column_stack([np.ones(y.size), cov])
    res = lambda m: m - (design @ np.linalg.lstsq(design, m.T, rcond=None)[0]).T  # noqa: E731
    gr, yr = res(g), res(y[None, :])[0]
    return gr @ yr / (np.linalg.norm(gr, axis=1) * np.linalg.norm(yr))


def test_columns_and_dtypes(cis_df, cohort):
    assert cis_df.index.name == "phenotype_id"
    assert list(cis_df.columns) == [
        "num_var",
        "beta_shape1",
        "beta_shape2",
        "true_df",
        "pval_true_df",
        "variant_id",
        "start_distance",
        "end_distance",
        "ma_samples",
        "ma_count",
        "af",
        "pval_nominal",
        "slope",
        "slope_se",
        "pval_perm",
        "pval_beta",
    ]
    for col in ("num_var", "start_distance", "end_distance", "ma_samples", "ma_count"):
        assert cis_df[col].dtype == np.int32
    assert set(cis_df.index) == set(cohort.phenotype_df.index)


def test_top_variant_equals_statsmodels_ols(cis_df, cohort):
    c = cohort
    samples, cov = _design(c)
    for pid in c.phenotype_df.index:
        ids, g = _testable_window(c, pid, samples)
        y = c.phenotype_df.loc[pid, samples].to_numpy()
        r = _r_reference(y, cov, g)
        top = int(np.argmax(r * r))
        row = cis_df.loc[pid]
        assert row["variant_id"] == ids[top] and row["num_var"] == len(ids)
        slope, se, p, _ = ols(y, cov, g[top])
        np.testing.assert_allclose(
            row[["slope", "slope_se", "pval_nominal"]].to_numpy(float), [slope, se, p], rtol=1e-8
        )
        pos = c.variant_df.loc[ids[top], "pos"]
        start, end = c.phenotype_pos_df.loc[pid, ["start", "end"]]
        assert (row["start_distance"], row["end_distance"]) == (pos - start, pos - end)
        np.testing.assert_allclose(row["af"], g[top].sum() / (2 * len(samples)))


def _scan_inputs(c, genotype_df=None, covariates_df=None):
    inputs = prepare_cis(
        genotype_df if genotype_df is not None else c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        phenotype_pos_df=c.phenotype_pos_df,
        covariates_df=covariates_df if covariates_df is not None else c.covariates_df,
    )
    return inputs


def _kernel_maxima(inputs, pid, perms, *, block=1024, cached=False):
    chrom = inputs.positions.loc[pid, "chrom"]
    chromg = load_chromosome(inputs.source, chrom, samples=inputs.cohort.genotype_ids, q=inputs.q)
    start, end = inputs.bounds(pid)
    keep = np.flatnonzero(chromg.testable)
    lo, hi = np.searchsorted(chromg.pos, [start - WINDOW, end + WINDOW + 1])
    vidx = keep[(keep >= lo) & (keep < hi)]
    y = inputs.values[pid]
    u, _ = residual_unit(y, inputs.q)
    yp, _ = residual_unit(y[perms], inputs.q)
    if cached:  # blocks of the chromosome's tested variants, not aligned with the window
        cache = WindowCache(chromg, keep, block=block)
        return chromg, vidx, scan_permutations(chromg, vidx, u=u[0], yp=yp, cache=cache, keep_float32=True)
    return chromg, vidx, scan_permutations(chromg, vidx, u=u[0], yp=yp, block=block, keep_float32=True)


def test_permutation_maxima_equal_a_float64_loop_and_float32_stays_within_its_bound(cis_df, cohort):
    c = cohort
    samples, cov = _design(c)
    perms = canonical_permutations(samples, NPERM, seed=7)
    inputs = _scan_inputs(c)
    for pid in c.phenotype_df.index[:4]:
        ids, g = _testable_window(c, pid, samples)
        y = c.phenotype_df.loc[pid, samples].to_numpy()
        ref = r2_perm_reference(y, cov, g, perms)
        # one block, many blocks (the running bound across blocks), cached blocks across the window edges
        for block, cached in ((1024, False), (37, False), (53, True)):
            _, _, scan = _kernel_maxima(inputs, pid, perms, block=block, cached=cached)
            np.testing.assert_allclose(scan.r2_perm, ref, rtol=1e-11)
            # the float32 maxima differ from the float64 ones by at most the stated bound on |r|
            assert 0 < scan.bound < 1e-4
            assert np.max(np.abs(np.sqrt(scan.r2_perm_float32) - np.sqrt(ref))) <= scan.bound
        r2_top = np.max(_r_reference(y, cov, g) ** 2)
        assert cis_df.loc[pid, "pval_perm"] == (np.sum(ref >= r2_top) + 1) / (NPERM + 1)


def test_permutation_maxima_with_dosages_and_a_variant_near_a_covariate(cohort):
    """Fractional dosages, and a covariate that nearly equals one window variant (the float64 path)."""
    c = cohort
    samples, _ = _design(c)
    rng = np.random.default_rng(4)
    geno = c.genotype_df.astype(float).where(c.genotype_df >= 0)
    geno = (geno + rng.uniform(-0.2, 0.2, geno.shape)).clip(0, 2)
    pid = c.phenotype_df.index[1]
    ids = window_ids(c, pid, WINDOW)
    near = ids[len(ids) // 2]
    g_near = geno.loc[near, samples].fillna(geno.loc[near, samples].mean()).to_numpy()
    cov = c.covariates_df.loc[samples].copy()
    cov["near"] = g_near + rng.normal(scale=0.002, size=len(samples))
    perms = canonical_permutations(samples, NPERM, seed=3)
    inputs = _scan_inputs(c, geno, cov)
    chromg, vidx, scan = _kernel_maxima(inputs, pid, perms)
    row = np.flatnonzero(chromg.ids == near)[0]
    assert chromg.centered_norm[row] / chromg.res_norm[row] > EXACT_RATIO  # goes through float64
    g = np.vstack([chromg.rows64(vidx)])
    ref = r2_perm_reference(inputs.values[pid], cov.to_numpy(), g, perms)
    np.testing.assert_allclose(scan.r2_perm, ref, rtol=1e-10)


def test_beta_approximation_equals_scipy_beta_fit(cis_df, cohort):
    """pval_beta = Beta_cdf(pval_true_df; scipy's MLE of the permutation p-values at true_df).

    With ``floc`` and ``fscale`` fixed, scipy's ``beta.fit`` solves the two score equations of the
    Beta likelihood with ``fsolve`` (relative tolerance ~1.5e-8 on the shapes, in practice ~1e-12),
    and tbeqtl's Newton MLE stops at a relative step of 1e-12: the same maximum. pval_beta ~
    C p^a near 0, so a relative shape error e moves it by about e a |log p| <= e * 70 for
    p >= 1e-30: shapes to rtol 1e-8 give pval_beta to rtol 1e-6.
    """
    c = cohort
    samples, cov = _design(c)
    perms = canonical_permutations(samples, NPERM, seed=7)
    for pid in c.phenotype_df.index[:6]:
        row = cis_df.loc[pid]
        ids, g = _testable_window(c, pid, samples)
        y = c.phenotype_df.loc[pid, samples].to_numpy()
        r2 = r2_perm_reference(y, cov, g, perms)
        df_true = row["true_df"]
        p = 2 * stats.t.sf(np.sqrt(df_true * r2 / (1 - r2)), df_true)
        # true_df: the moment-matched Beta shape1 of these p-values is 1
        mean, var = p.mean(), p.var()
        assert mean * (mean * (1 - mean) / var - 1) == pytest.approx(1.0, abs=1e-6)
        a, b, *_ = stats.beta.fit(p, floc=0, fscale=1)
        np.testing.assert_allclose([row["beta_shape1"], row["beta_shape2"]], [a, b], rtol=1e-8)
        ours = stats.beta.logpdf(p, row["beta_shape1"], row["beta_shape2"]).sum()
        assert ours >= stats.beta.logpdf(p, a, b).sum() - 1e-9
        r2_top = np.max(_r_reference(y, cov, g) ** 2)
        p_true = 2 * stats.t.sf(np.sqrt(df_true * r2_top / (1 - r2_top)), df_true)
        np.testing.assert_allclose(row["pval_true_df"], p_true, rtol=1e-9)
        np.testing.assert_allclose(row["pval_beta"], stats.beta.cdf(p_true, a, b), rtol=1e-6)


def test_results_do_not_depend_on_input_order_and_follow_the_seed(cis_df, cohort):
    c = cohort
    rng = np.random.default_rng(9)
    geno = c.genotype_df.sample(frac=1.0, random_state=3)
    geno = geno[list(rng.permutation(geno.columns))]
    pheno = c.phenotype_df[list(rng.permutation(c.phenotype_df.columns))].loc[
        list(rng.permutation(c.phenotype_df.index))
    ]
    again = map_cis(
        FrameGenotypes(geno, c.variant_df.loc[geno.index]),
        None,
        pheno,
        c.phenotype_pos_df,
        c.covariates_df.sample(frac=1.0, random_state=4),
        nperm=NPERM,
        seed=7,
        window=WINDOW,
    )
    pd.testing.assert_frame_equal(again.loc[cis_df.index], cis_df, check_exact=False, rtol=1e-12, atol=0)
    other = map_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        nperm=NPERM,
        seed=8,
        window=WINDOW,
    )
    pd.testing.assert_series_equal(other["slope"], cis_df["slope"])
    assert not np.allclose(other["pval_beta"], cis_df["pval_beta"])


def test_filters_count_the_tests_run(cis_df, cohort):
    c = cohort
    samples, _ = _design(c)
    got = map_cis(
        c.genotype_df,
        c.variant_df,
        c.phenotype_df,
        c.phenotype_pos_df,
        c.covariates_df,
        nperm=NPERM,
        seed=7,
        window=WINDOW,
        maf_threshold=0.1,
        mac_threshold=60,
    )
    for pid in c.phenotype_df.index:
        ids, g = _testable_window(c, pid, samples)
        af = g.sum(axis=1) / (2 * len(samples))
        maf = np.minimum(af, 1 - af)
        ma_count = np.where(
            af <= 0.5,
            np.floor((g * (g > 0.5)).sum(1) + 1e-9),
            2 * len(samples) - np.floor((g * (g > 0.5)).sum(1) + 1e-9),
        )
        assert got.loc[pid, "num_var"] == int(((maf >= 0.1) & (ma_count >= 60)).sum())
    assert (got["num_var"] < cis_df["num_var"]).any()


def test_missing_and_constant_phenotypes_are_skipped_and_counted(cohort, caplog):
    c = cohort
    pheno = c.phenotype_df.copy()
    pheno.iloc[0, 3] = np.nan
    pheno.iloc[1] = 1.5
    with caplog.at_level(logging.INFO, logger="tbeqtl"):
        got = map_cis(
            c.genotype_df, c.variant_df, pheno, c.phenotype_pos_df, c.covariates_df, nperm=20, window=WINDOW
        )
    assert "1 phenotype(s) with missing values skipped" in caplog.text
    assert f"1 constant phenotype(s) skipped: {pheno.index[1]}" in caplog.text
    assert set(got.index) == set(pheno.index[2:])


def test_phenotype_without_variant_in_window_is_skipped_and_counted(cohort, caplog):
    c = cohort
    pos = c.phenotype_pos_df.copy()
    last = pos.index[pos["chr"] == "chr1"][-1]
    pos.loc[last, ["start", "end"]] = [50_000_000, 50_000_100]
    with caplog.at_level(logging.INFO, logger="tbeqtl"):
        got = map_cis(
            c.genotype_df, c.variant_df, c.phenotype_df, pos, c.covariates_df, nperm=20, window=WINDOW
        )
    assert "1 phenotype(s) without a testable variant in their cis window skipped" in caplog.text
    assert last not in got.index and len(got) == len(pos) - 1


@pytest.mark.parametrize("offset", [-1, 1])
def test_mirrored_top_variants_tie_and_the_first_is_reported(cohort, offset):
    """A variant and its mirror (2 - g) have the same r^2: the first in position order is the top."""
    c = cohort
    pid = c.phenotype_df.index[0]
    top = c.causal[pid][0]
    g = c.genotype_df.loc[top]
    mirror = g.where(g < 0, 2 - g).astype(np.int8).rename("mirror")
    geno = pd.concat([c.genotype_df, mirror.to_frame().T])
    vdf = pd.concat(
        [c.variant_df, c.variant_df.loc[[top]].set_axis(["mirror"]).assign(pos=lambda d: d["pos"] + offset)]
    )
    df = map_cis(
        geno,
        vdf,
        c.phenotype_df.loc[[pid]],
        c.phenotype_pos_df,
        c.covariates_df,
        nperm=20,
        seed=1,
        window=WINDOW,
    )
    assert df.loc[pid, "variant_id"] == ("mirror" if offset < 0 else top)
