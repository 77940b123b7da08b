"""The shared Fisher/hypergeometric kernel and BH FDR against scipy, statsmodels and hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.multitest import multipletests

from tbeqtl.enrich.fisher import bh_fdr, fisher_enrichment, odds_ratio
from tbeqtl.errors import InputError


def _random_tables(rng, n):
    big_n = rng.integers(5, 300, size=n)
    big_k = np.array([rng.integers(0, x + 1) for x in big_n])
    set_n = np.array([rng.integers(0, x + 1) for x in big_n])
    lo = np.maximum(0, set_n - (big_n - big_k))
    hi = np.minimum(big_k, set_n)
    a = np.array([rng.integers(lo_, hi_ + 1) for lo_, hi_ in zip(lo, hi, strict=True)])
    return a, big_k, set_n, big_n


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
def test_matches_scipy_fisher_exact(rng, alternative):
    a, big_k, n, big_n = _random_tables(rng, 300)
    orr, p = fisher_enrichment(a, big_k, n, background_size=big_n, alternative=alternative)
    for i in range(len(a)):
        table = [[a[i], n[i] - a[i]], [big_k[i] - a[i], big_n[i] - n[i] - big_k[i] + a[i]]]
        ref = fisher_exact(table, alternative=alternative)
        assert p[i] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300), table
        if np.isnan(ref.statistic):
            assert np.isnan(orr[i])
        else:
            assert orr[i] == pytest.approx(ref.statistic, rel=1e-12), table


def test_hand_computed_case():
    # background N = 20 genes, class K = 5, set n = 4 with a = 3 in the class:
    # P(A >= 3) = [C(5,3) C(15,1) + C(5,4) C(15,0)] / C(20,4) = (150 + 5) / 4845
    orr, p = fisher_enrichment([3], [5], [4], background_size=[20])
    assert p[0] == pytest.approx(155 / 4845, rel=1e-12)
    # table [[3, 1], [2, 14]]: sample odds ratio 3 * 14 / (1 * 2) = 21
    assert orr[0] == pytest.approx(21.0)
    # lower tail P(A <= 0) = C(15,4) / C(20,4)
    _, p_less = fisher_enrichment([0], [5], [4], background_size=[20], alternative="less")
    assert p_less[0] == pytest.approx(math.comb(15, 4) / math.comb(20, 4), rel=1e-12)


def test_odds_ratio_conventions():
    # inf when b c = 0 < a d; 0 when a d = 0 < b c; nan on a zero margin (scipy's conventions)
    assert odds_ratio([3], [3], [5], background_size=[10])[0] == np.inf  # c = 0
    assert odds_ratio([0], [3], [5], background_size=[10])[0] == 0.0
    assert np.isnan(odds_ratio([0], [0], [5], background_size=[10])[0])


def test_broadcasting_and_p_in_unit_interval(rng):
    a, big_k, n, big_n = _random_tables(rng, 50)
    _, p = fisher_enrichment(a, big_k, 0 * a + n, background_size=big_n)
    assert np.all((p >= 0) & (p <= 1))
    _, p_scalar = fisher_enrichment(np.array([0, 1, 2]), 4, 3, background_size=10)
    assert p_scalar.shape == (3,)
    assert p_scalar[0] == 1.0


@pytest.mark.parametrize(
    "table",
    [([5], [3], [6], [10]), ([-1], [3], [6], [10]), ([1], [3], [11], [10]), ([0], [5], [3], [6])],
)
def test_invalid_tables_raise(table):
    a, k, n, big_n = table
    with pytest.raises(InputError, match="invalid 2x2"):
        fisher_enrichment(a, k, n, background_size=big_n)


def test_bad_alternative_and_non_integer_counts():
    with pytest.raises(InputError, match="alternative"):
        fisher_enrichment([1], [2], [3], background_size=[10], alternative="up")
    with pytest.raises(InputError, match="whole counts"):
        fisher_enrichment([1.5], [2], [3], background_size=[10])


def test_bh_matches_statsmodels(rng):
    for size in (1, 2, 17, 500):
        p = rng.uniform(size=size) ** 3
        p[: size // 3] = p[0]  # ties
        expected = multipletests(p, method="fdr_bh")[1]
        np.testing.assert_allclose(bh_fdr(p), expected, rtol=1e-12)
    assert bh_fdr([]).size == 0


def test_bh_rejects_bad_p_values():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        bh_fdr([0.1, np.nan])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        bh_fdr([1.2])


def test_enrich_bh_is_the_association_bh():
    """One BH in the package: enrich's public name calls tbeqtl.association.fdr.bh_fdr."""
    from unittest import mock

    import tbeqtl.association.fdr as fdr

    p = np.array([0.01, 0.04, 0.03])
    with mock.patch.object(fdr, "bh_fdr", wraps=fdr.bh_fdr) as owner:
        np.testing.assert_allclose(bh_fdr(p), [0.03, 0.04, 0.04])
    owner.assert_called_once()
