"""Genotype x interaction model (tensorQTL's ``--interaction``): statistics against statsmodels OLS,
tensorQTL's interaction MAF rule and column names on hand-made cases, the top association rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from tbeqtl.association.interaction import (
    InteractionModel,
    interaction_association,
    interaction_columns,
    interaction_maf_mask,
    top_interaction_association,
)
from tbeqtl.association.residualize import covariate_basis
from tbeqtl.errors import InputError


def _cohort(rng, *, n=90, k=3, v=30, m=1):
    cov = rng.standard_normal((n, k))
    terms = rng.uniform(0.0, 1.0, (n, m))
    freq = rng.uniform(0.08, 0.6, v)
    g = rng.binomial(2, freq[:, None], (v, n)).astype(float)
    g[3, :5] = g[3, 5:].mean()  # imputed (fractional) values
    y = rng.standard_normal(n) + 2.0 * g[0] * terms[:, 0] + 0.3 * cov[:, 0]
    return cov, terms, g, y


def _ols_reference(y, cov, g_row, terms):
    """statsmodels OLS of y ~ 1 + C + g + i_1..i_m + g:i_1..g:i_m, in our column order."""
    n, k = cov.shape
    m = terms.shape[1]
    x = np.column_stack([np.ones(n), cov, g_row, terms, g_row[:, None] * terms])
    fit = sm.OLS(y, x).fit()
    assert fit.df_resid == n - 2 - k - 2 * m
    idx = [k + 1] + [j for t in range(m) for j in (k + 2 + t, k + 2 + m + t)]
    return np.column_stack([fit.params[idx], fit.bse[idx], fit.pvalues[idx]]).ravel()


@pytest.mark.parametrize("m", [1, 2])
def test_statistics_equal_statsmodels_ols(rng, m):
    cov, terms, g, y = _cohort(rng, m=m)
    basis = covariate_basis(cov.T, cov.shape[0])
    names = ["age"] if m == 1 else ["cellA", "cellB"]
    ids = [f"v{j}" for j in range(g.shape[0])]
    df = interaction_association(
        g, y, terms, covariate_q=basis.q, n_covariates=basis.n_covariates, names=names, index=ids
    )
    assert list(df.columns) == interaction_columns(names)
    assert list(df.index) == ids
    for j in range(g.shape[0]):
        ref = _ols_reference(y, cov, g[j], terms)
        np.testing.assert_allclose(df.iloc[j].to_numpy(), ref, rtol=1e-8, atol=0)
    # the planted g x i effect is found
    assert df.iloc[0, 8] < 1e-3


def test_without_covariates_equals_ols(rng):
    _, terms, g, y = _cohort(rng, k=1)
    n = y.size
    basis = covariate_basis(None, n)
    df = interaction_association(g[:5], y, terms[:, 0], covariate_q=basis.q)
    for j in range(5):
        ref = _ols_reference(y, np.empty((n, 0)), g[j], terms)
        np.testing.assert_allclose(df.iloc[j].to_numpy(), ref, rtol=1e-8, atol=0)


def test_degenerate_variants_and_missing_phenotype_give_nan(rng):
    cov, terms, g, y = _cohort(rng, v=4)
    basis = covariate_basis(cov.T, cov.shape[0])
    g[1] = 1.0  # monomorphic: g is in the span of the intercept
    g[2] = 0.0  # all zero: g and g*i are both zero
    df = interaction_association(g, y, terms, covariate_q=basis.q)
    assert df.iloc[[1, 2]].isna().all().all()
    assert df.iloc[[0, 3]].notna().all().all()
    y_nan = y.copy()
    y_nan[7] = np.nan
    assert interaction_association(g, y_nan, terms, covariate_q=basis.q).isna().all().all()


def test_interaction_term_collinear_with_covariates_is_an_error(rng):
    cov, terms, g, y = _cohort(rng, m=2)
    bad = np.column_stack([terms[:, 0], 2.0 * cov[:, 1] - 0.5])
    basis = covariate_basis(cov.T, cov.shape[0])
    with pytest.raises(InputError, match="linear combinations.*cellB"):
        interaction_association(g, y, bad, covariate_q=basis.q, names=["cellA", "cellB"])
    with pytest.raises(InputError, match="cellA"):
        interaction_association(
            g,
            y,
            np.column_stack([np.full(90, 0.3), terms[:, 1]]),
            covariate_q=basis.q,
            names=["cellA", "cellB"],
        )


def test_degrees_of_freedom_follow_n_covariates(rng):
    """``n_covariates`` sets dof = n - 2 - k - 2m (tensorQTL's count); p follows the t law at that dof."""
    cov, terms, g, y = _cohort(rng, v=5)
    basis = covariate_basis(cov.T, cov.shape[0])
    model = InteractionModel(terms, covariate_q=basis.q, n_covariates=10)
    assert model.dof == 90 - 2 - 10 - 2
    out = model.test(model.prepare(g), y)
    from scipy import stats

    t = out[:, 6] / out[:, 7]
    default = interaction_association(g, y, terms, covariate_q=basis.q)
    # coefficients do not depend on the dof; the SE scales with sqrt(rss / dof)
    np.testing.assert_allclose(out[:, 6], default["b_gi"], rtol=1e-12)
    np.testing.assert_allclose(out[:, 7], default["b_gi_se"] * np.sqrt((90 - 2 - 3 - 2) / 76), rtol=1e-12)
    np.testing.assert_allclose(out[:, 8], 2 * stats.t.sf(np.abs(t), 76), rtol=1e-12)


def test_prepared_designs_are_reusable(rng):
    """Plumbing: prepare once, test several phenotypes and subsets; the numbers of one-shot calls
    (up to summation order: numpy's SIMD sums depend on memory alignment)."""
    cov, terms, g, y = _cohort(rng)
    basis = covariate_basis(cov.T, cov.shape[0])
    model = InteractionModel(terms, covariate_q=basis.q)
    design = model.prepare(g)
    y2 = rng.standard_normal(y.size)
    for pheno in (y, y2):
        full = interaction_association(g, pheno, terms, covariate_q=basis.q).to_numpy()
        np.testing.assert_allclose(model.test(design, pheno), full, rtol=1e-12)
        np.testing.assert_allclose(model.test(design.subset(slice(4, 9)), pheno), full[4:9], rtol=1e-12)


def test_sample_order_does_not_matter(rng):
    cov, terms, g, y = _cohort(rng, m=2)
    perm = rng.permutation(y.size)
    a = interaction_association(g, y, terms, covariate_q=covariate_basis(cov.T, y.size).q)
    b = interaction_association(
        g[:, perm], y[perm], terms[perm], covariate_q=covariate_basis(cov[perm].T, y.size).q
    )
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9)


def test_inputs_are_not_modified_whatever_their_memory_layout(rng):
    """Terms from a one-column DataFrame are Fortran-ordered: their transpose is C-contiguous and
    once was residualised in place, silently changing the model."""
    cov, terms, g, y = _cohort(rng, v=6)
    basis = covariate_basis(cov.T, y.size)
    f_terms = np.asfortranarray(terms)
    kept = f_terms.copy()
    a = interaction_association(g, y, terms, covariate_q=basis.q)
    b = interaction_association(g, y, f_terms, covariate_q=basis.q)
    np.testing.assert_array_equal(f_terms, kept)
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy(), rtol=1e-12)
    for j in range(6):
        np.testing.assert_allclose(b.iloc[j].to_numpy(), _ols_reference(y, cov, g[j], terms), rtol=1e-8)


def test_column_names():
    assert interaction_columns(["anything"]) == [
        "b_g",
        "b_g_se",
        "pval_g",
        "b_i",
        "b_i_se",
        "pval_i",
        "b_gi",
        "b_gi_se",
        "pval_gi",
    ]
    assert interaction_columns(["x", "y"]) == [
        "b_g",
        "b_g_se",
        "pval_g",
        "b_x",
        "b_x_se",
        "pval_x",
        "b_g-x",
        "b_g-x_se",
        "pval_g-x",
        "b_y",
        "b_y_se",
        "pval_y",
        "b_g-y",
        "b_g-y_se",
        "pval_g-y",
    ]
    with pytest.raises(InputError, match="duplicate"):
        interaction_columns(["g", "h"])
    with pytest.raises(InputError, match="duplicate"):
        interaction_columns(["x", "x"])


# --------------------------------------------------------------------------------------------
# tensorQTL's interaction MAF rule, hand-made
# --------------------------------------------------------------------------------------------
# term values; stable sort: 0.1(s1) 0.1(s3) 0.2(s7) 0.3(s4) | 0.3(s6) 0.5(s0) 0.7(s5) 0.9(s2)
# lower half = {1, 3, 7, 4}, upper half = {6, 0, 5, 2}: the tie at 0.3 is split by sample order.
TERM = np.array([0.5, 0.1, 0.9, 0.1, 0.3, 0.7, 0.3, 0.2])


def _row(alt: dict[int, float], base: float = 0.0) -> np.ndarray:
    out = np.full(8, base)
    for s, v in alt.items():
        out[s] = v
    return out


def test_maf_mask_halves_split_at_the_median_with_a_stable_sort():
    rows = np.array(
        [
            _row({4: 1}),  # alt only in the lower half -> upper MAF 0
            _row({6: 1}),  # alt only in the upper half -> lower MAF 0
            _row({4: 1, 6: 1}),  # 1/8 in each half
            _row({}),  # all 0
            _row({}, base=2.0),  # all 2
            _row({}, base=1.0),  # all 1 (MAF 0.5 in each half, but constant)
            _row({4: 1, 6: 1}, base=2.0),  # high ALT frequency: MAF 1/8 in each half
        ]
    )
    keep = interaction_maf_mask(rows, TERM, threshold=0.1)
    assert keep.tolist() == [False, False, True, False, False, False, True]
    # threshold 0: only the constant rows go
    assert interaction_maf_mask(rows, TERM, threshold=0).tolist() == [
        True,
        True,
        True,
        False,
        False,
        False,
        True,
    ]
    # a constant row of another value is not dropped by the 0/1/2 rule (tensorQTL's)
    assert interaction_maf_mask(_row({}, base=0.5)[None], TERM, threshold=0).tolist() == [True]


def test_maf_mask_threshold_slack():
    """MAF 1/8 = 0.125 in each half: tensorQTL keeps maf >= threshold - 1e-7."""
    row = _row({4: 1, 6: 1})[None]
    assert interaction_maf_mask(row, TERM, threshold=0.125).tolist() == [True]
    assert interaction_maf_mask(row, TERM, threshold=0.125 + 5e-8).tolist() == [True]
    assert interaction_maf_mask(row, TERM, threshold=0.125 + 2e-7).tolist() == [False]


def test_maf_mask_applies_every_term():
    # term 2 sorts as s2 s5 s0 s4 | s6 s7 s1 s3: lower half {2, 5, 0, 4}, upper {6, 7, 1, 3}
    term2 = 1.0 - TERM + np.arange(8) * 1e-3
    both = np.column_stack([TERM, term2])
    rows = np.array(
        [
            _row({4: 1, 6: 1}),  # term 1: split; term 2: split
            _row({4: 1, 0: 1}),  # term 1: split; term 2: both lower
            _row({1: 1, 4: 1}),  # term 1: both lower; term 2: split
            _row({0: 1, 7: 1}),  # term 1: split; term 2: split
        ]
    )
    assert interaction_maf_mask(rows, TERM, threshold=0.1).tolist() == [True, True, False, True]
    assert interaction_maf_mask(rows, term2, threshold=0.1).tolist() == [True, False, True, True]
    assert interaction_maf_mask(rows, both, threshold=0.1).tolist() == [True, False, False, True]


# --------------------------------------------------------------------------------------------
# top association per phenotype
# --------------------------------------------------------------------------------------------
def test_top_association_is_the_largest_abs_t_of_g_x_i():
    pairs = pd.DataFrame(
        {
            "phenotype_id": ["p1", "p1", "p1", "p2", "p2", "p3"],
            "variant_id": ["a", "b", "c", "a", "b", "a"],
            "b_gi": [1.0, -3.0, 2.0, 0.5, 0.5, np.nan],
            "b_gi_se": [0.5, 1.0, 1.0, 0.1, 0.1, np.nan],  # |t| = 2, 3, 2 | 5, 5 (tie) | NaN
        }
    )
    top = top_interaction_association(pairs)
    assert top["variant_id"].tolist() == ["b", "a"]  # p2: first on ties; p3: only NaN, left out
    assert top["phenotype_id"].tolist() == ["p1", "p2"]


def test_top_association_with_several_terms():
    pairs = pd.DataFrame(
        {
            "phenotype_id": ["p1", "p1"],
            "variant_id": ["a", "b"],
            "b_g-x": [1.0, 0.1],
            "b_g-x_se": [1.0, 1.0],  # |t_x| = 1, 0.1
            "b_g-y": [0.2, -4.0],
            "b_g-y_se": [0.1, 1.0],  # |t_y| = 2, 4
            "b_x": [100.0, 100.0],
            "b_x_se": [1.0, 1.0],  # main effects do not count
        }
    )
    assert top_interaction_association(pairs)["variant_id"].tolist() == ["b"]
    with pytest.raises(InputError, match="genotype x interaction"):
        top_interaction_association(pairs[["phenotype_id", "variant_id", "b_x", "b_x_se"]])
