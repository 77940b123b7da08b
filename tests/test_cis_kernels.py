"""tbeqtl.association.cis_kernels.load_chromosome: storage, exact imputation, residual norms, testability.

References: pandas/numpy mean imputation and numpy lstsq residuals, written out here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tbeqtl.association.cis_kernels import load_chromosome
from tbeqtl.association.residualize import covariate_basis
from tbeqtl.io.genotypes import FrameGenotypes


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    n, v = 80, 300
    samples = [f"S{i:02d}" for i in range(n)]
    g = rng.binomial(2, rng.uniform(0.05, 0.5, (v, 1)), (v, n)).astype(float)
    g[rng.uniform(size=g.shape) < 0.02] = np.nan
    g[200:] += rng.uniform(-0.3, 0.3, (100, n))  # dosages after hard calls: the int8 store widens
    g[200:] = g[200:].clip(0, 2)
    cov = rng.normal(size=(n, 3))
    g[10] = cov[:, 0]  # a covariate (up to the float32 rounding of the store): collinear
    g[11] = cov[:, 1] + 1e-3 * rng.normal(size=n)  # nearly collinear: residual recomputed explicitly
    g[12] = 1.0  # monomorphic
    g[13, :5] = np.nan
    g[13, 5:] = 2.0  # monomorphic once imputed
    ids = [f"v{i:03d}" for i in range(v)]
    pos = rng.permutation(np.arange(v) * 100 + 1)  # rows not in position order
    geno = pd.DataFrame(g, index=ids, columns=samples)
    var = pd.DataFrame({"chrom": "chr3", "pos": pos}, index=ids)
    q = covariate_basis(cov.T, n).q
    return geno, var, cov, q


def test_rows_sorted_imputed_exactly_and_stored_compactly(data):
    geno, var, cov, q = data
    src = FrameGenotypes(geno, var)
    chromg = load_chromosome(src, "chr3", samples=list(geno.columns), q=q, block=64)
    order = var.sort_values("pos").index
    assert list(chromg.ids) == list(order)
    assert chromg.store.dtype == np.float32  # widened when the dosage blocks arrived
    # sources deliver float32 (dosages rounded on reading); the imputed means are float64
    want = geno.loc[order].astype(np.float32).astype(float).apply(lambda r: r.fillna(r.mean()), axis=1)
    want = want.to_numpy()
    # observed calls exact; imputed means to the last bit of the summation order
    np.testing.assert_allclose(chromg.rows64(np.arange(len(order))), want, rtol=5e-16, atol=0)
    np.testing.assert_allclose(chromg.rows64(slice(5, 50)), want[5:50], rtol=5e-16, atol=0)
    calls = geno.iloc[14:200]  # hard calls only (tensorQTL's int8 with -9 missing)
    hard = FrameGenotypes(calls.fillna(-9).astype(np.int8), var.loc[calls.index])
    chromh = load_chromosome(hard, "chr3", samples=list(geno.columns), q=q, block=64)
    assert chromh.store.dtype == np.int8
    sub = calls.loc[chromh.ids]
    np.testing.assert_allclose(
        chromh.rows64(np.arange(len(sub))),
        sub.apply(lambda r: r.fillna(r.mean()), axis=1).to_numpy(),
        rtol=5e-16,
    )


def test_residual_norms_and_testability(data):
    geno, var, cov, q = data
    chromg = load_chromosome(FrameGenotypes(geno, var), "chr3", samples=list(geno.columns), q=q, block=64)
    x = chromg.rows64(np.arange(chromg.n_variants))
    design = np.column_stack([np.ones(x.shape[1]), cov])
    res = x - (design @ np.linalg.lstsq(design, x.T, rcond=None)[0]).T
    norms = np.linalg.norm(res, axis=1)
    row = {v: i for i, v in enumerate(chromg.ids)}
    untestable = [row[v] for v in ("v010", "v012", "v013")]
    assert not chromg.testable[untestable].any()
    assert chromg.monomorphic[[row["v012"], row["v013"]]].all()
    ok = chromg.testable
    assert ok.sum() == chromg.n_variants - 3
    np.testing.assert_allclose(chromg.res_norm[ok], norms[ok], rtol=1e-10)
    assert chromg.centered_norm[row["v011"]] / chromg.res_norm[row["v011"]] > 100  # the explicit path


def test_hard_call_allele_counts_follow_tensorqtl_rules(data):
    """af, ma_samples, ma_count, monomorphic of int8 hard calls (int8 count path) vs tensorQTL's rules.

    Reference (tensorQTL ``get_maf``-style, written here on the imputed float dosages): af = mean / 2;
    af <= 0.5: ma_samples = #(x > 0.5), ma_count = int(sum of x over x > 0.5); else #(x < 1.5) and
    2n - that sum.
    """
    geno, var, _, q = data
    calls = geno.iloc[14:200].copy()
    calls.iloc[0] = 0.0  # monomorphic hard calls
    calls.iloc[1] = 2.0
    calls.iloc[2] = 2.0 - calls.iloc[2].fillna(0)  # high-frequency allele: the other branch
    hard = FrameGenotypes(calls.fillna(-9).astype(np.int8), var.loc[calls.index])
    chromh = load_chromosome(hard, "chr3", samples=list(geno.columns), q=q, block=64)
    x = calls.loc[chromh.ids].apply(lambda r: r.fillna(r.mean()), axis=1).to_numpy()
    n = x.shape[1]
    af = x.mean(axis=1) / 2
    s = np.floor(np.where(x > 0.5, x, 0.0).sum(axis=1) + 1e-9).astype(int)
    low = af <= 0.5
    np.testing.assert_allclose(chromh.af, af, rtol=1e-15)
    np.testing.assert_array_equal(chromh.ma_samples, np.where(low, (x > 0.5).sum(1), (x < 1.5).sum(1)))
    np.testing.assert_array_equal(chromh.ma_count, np.where(low, s, 2 * n - s))
    np.testing.assert_array_equal(chromh.monomorphic, (x == x[:, :1]).all(axis=1))
    assert chromh.monomorphic.sum() >= 2 and (~low).any() and low.any()


def test_nominal_pvalue_is_accurate_from_r_near_zero_to_one():
    """p = I_{1-r^2}(df/2, 1/2) against mpmath at 40 digits (float64 on 1 - r^2 loses 1e-8 near r = 0)."""
    import mpmath

    from tbeqtl.association.cis_kernels import association_stats

    mpmath.mp.dps = 40
    df = 417
    r = np.array([1e-12, -1e-9, 1e-6, -1e-3, 0.05, 0.3, -0.39, 0.41, 0.7, -0.9, 0.99])
    y_norm, res_norm = 3.0, np.full(r.size, 2.0)
    st = association_stats(r * res_norm * y_norm, res_norm, y_norm=y_norm, df=df)
    for ri, p in zip(r, st["pval"], strict=True):
        ref = mpmath.betainc(df / 2.0, 0.5, 0, 1 - mpmath.mpf(float(ri)) ** 2, regularized=True)
        assert abs(p - float(ref)) <= 2e-13 * float(ref), ri


@pytest.mark.parametrize("n", [80, 17_000])  # int16 accumulators, and int32 past 2n = 32767
def test_hard_counts_are_exact_integer_statistics(n):
    """_hard_counts against Python integers and fractions, row by row.

    Reference: the genotype counts, the dosage sum, allele counts by tensorQTL's rules and the
    centred squared norm ``sum (g - s/n)^2`` as an exact :class:`fractions.Fraction`, rounded once
    (the function must return that correctly rounded value). Rows with a missing call (-9) get NaN
    sums whatever their other codes (the caller imputes them).
    """
    from fractions import Fraction

    from tbeqtl.association.cis_kernels import _hard_counts

    rng = np.random.default_rng(n)
    codes = rng.choice(np.array([0, 1, 2], np.int8), size=(12, n), p=[0.5, 0.35, 0.15])
    codes[1] = 0
    codes[2] = 2  # monomorphic, and the af > 0.5 branch
    codes[3] = 1
    codes[4, :] = 2
    codes[4, :3] = 1  # rare allele on the REF side
    codes[5, 7] = -9
    codes[6] = -9  # every call missing
    sums, af, ma_samples, ma_count, mono, cn2 = _hard_counts(codes)
    for i, row in enumerate(codes.tolist()):
        if min(row) < 0:
            assert np.isnan(sums[i])
            continue
        n1, n2 = row.count(1), row.count(2)
        s = n1 + 2 * n2
        assert sums[i] == s and af[i] == s / (2 * n)
        low = s <= n
        assert ma_samples[i] == (n1 + n2 if low else n - n2)
        assert ma_count[i] == (s if low else 2 * n - s)
        assert mono[i] == (len(set(row)) == 1)
        exact = sum((Fraction(g) - Fraction(s, n)) ** 2 for g in row)
        assert cn2[i] == float(exact)
