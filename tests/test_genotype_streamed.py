"""Streamed genotype statistics: genotype PCs from a Gram matrix, ancestry EM on a random SNP subset.

References: ``genotype_pcs`` on the concatenated chunks and an independent numpy SVD written
here (PCs); ``estimate_ancestry`` on all SNPs, scipy.optimize of the per-SNP binomial
log-likelihood and the simulated truth (ancestry).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.optimize import linear_sum_assignment

from tbeqtl.errors import InputError
from tbeqtl.pipeline.covariates import genotype_pcs, genotype_pcs_streamed
from tbeqtl.tblda.ancestry import _draw_subset, estimate_ancestry, estimate_ancestry_subset


def _chunks(df: pd.DataFrame, sizes) -> list[pd.DataFrame]:
    """Split ``df`` into consecutive row chunks of the given sizes (the last one takes the rest)."""
    out, start = [], 0
    for size in sizes:
        out.append(df.iloc[start : start + size])
        start += size
    if start < len(df):
        out.append(df.iloc[start:])
    return out


def _structured(rng, n_snps=400, n_ind=60, missing=0.05) -> pd.DataFrame:
    """Dosages of three populations plus missing values, monomorphic and all-missing SNPs."""
    pop = rng.integers(0, 3, n_ind)
    freq = rng.beta(0.8, 0.8, size=(n_snps, 3))
    y = rng.binomial(2, freq[:, pop]).astype(float)
    y[rng.random(y.shape) < missing] = np.nan
    y[3] = 1.0  # monomorphic
    y[5] = np.nan  # all missing
    y[8, :] = np.nan
    y[8, 0] = 2.0  # one observed value: monomorphic after imputation
    y[11, ::2] = 0.0  # monomorphic with missing values
    y[11, 1::2] = np.nan
    return pd.DataFrame(y, index=[f"rs{j}" for j in range(n_snps)], columns=[f"ind{i}" for i in range(n_ind)])


# ---------------------------------------------------------------- genotype PCs


@pytest.mark.parametrize("sizes", [[1] * 400, [3, 50, 1, 120, 7, 2], [400]], ids=["size1", "uneven", "one"])
def test_streamed_pcs_equal_concatenated(rng, sizes):
    geno = _structured(rng)
    expected = genotype_pcs(geno, n_pcs=5)
    got = genotype_pcs_streamed(iter(_chunks(geno, sizes)), n_pcs=5)
    assert list(got.columns) == [f"genoPC{k}" for k in range(1, 6)]
    assert got.index.equals(geno.columns)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-8)


def test_streamed_pcs_equal_concatenated_float32_chunks(rng):
    geno = _structured(rng).astype(np.float32)
    chunks = _chunks(geno, [30, 170, 1])
    expected = genotype_pcs(pd.concat(chunks), n_pcs=4)
    got = genotype_pcs_streamed(chunks, n_pcs=4)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-8)


def _svd_reference(y: np.ndarray, n_pcs: int) -> np.ndarray:
    """PCs written out independently: per-SNP loops, SVD of the individuals x SNPs matrix."""
    columns = []
    for row in y:
        observed = row[~np.isnan(row)]
        mean = observed.mean() if observed.size else 0.0
        filled = np.where(np.isnan(row), mean, row)
        sd = np.sqrt(((filled - mean) ** 2).mean())
        if sd > 1e-12:
            columns.append((filled - mean) / sd)
    x = np.column_stack(columns)  # individuals x SNPs
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    scores = u[:, :n_pcs] * s[:n_pcs]
    for k in range(n_pcs):
        if scores[np.argmax(np.abs(scores[:, k])), k] < 0:
            scores[:, k] *= -1
    return scores


def test_streamed_pcs_match_independent_svd(rng):
    geno = _structured(rng, n_snps=300, n_ind=45)
    got = genotype_pcs_streamed(_chunks(geno, [17] * 20), n_pcs=5)
    np.testing.assert_allclose(got.to_numpy(), _svd_reference(geno.to_numpy(), 5), rtol=0, atol=1e-8)
    # the scores are uncorrelated with variances the Gram eigenvalues / N
    gram_cov = np.cov(got.to_numpy().T, bias=True)
    np.testing.assert_allclose(gram_cov - np.diag(np.diag(gram_cov)), 0, atol=1e-8)


def test_streamed_pcs_realign_columns_and_keep_first_order(rng):
    geno = _structured(rng, n_snps=120, n_ind=30)
    chunks = _chunks(geno, [40, 40])
    shuffled = [chunks[0]] + [c[c.columns[rng.permutation(c.shape[1])]] for c in chunks[1:]]
    expected = genotype_pcs(pd.concat(shuffled), n_pcs=3)
    got = genotype_pcs_streamed(shuffled, n_pcs=3)
    assert got.index.equals(chunks[0].columns)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-8)


def test_streamed_pcs_capped_like_genotype_pcs(rng):
    geno = _structured(rng, n_snps=14, n_ind=20)  # 4 of the 14 SNPs are monomorphic or empty
    for n_pcs in (0, 5, 20):
        expected = genotype_pcs(geno, n_pcs=n_pcs)
        got = genotype_pcs_streamed(_chunks(geno, [1, 6]), n_pcs=n_pcs)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-8)
    assert genotype_pcs_streamed([geno.iloc[[3]]], n_pcs=5).shape == (20, 0)


def test_streamed_pcs_bad_input(rng):
    geno = _structured(rng, n_snps=20, n_ind=10)
    with pytest.raises(InputError, match="no genotype chunks"):
        genotype_pcs_streamed([], n_pcs=2)
    other = geno.iloc[10:].rename(columns={"ind4": "stranger"})
    with pytest.raises(InputError, match="stranger"):
        genotype_pcs_streamed([geno.iloc[:10], other], n_pcs=2)


# ---------------------------------------------------------------- ancestry on a SNP subset


def _admixed(rng, n_snps=600, n_ind=120, q=3, missing=0.03):
    beta = rng.beta(0.6, 0.6, size=(n_snps, q)).clip(0.01, 0.99)
    tau = rng.dirichlet(np.full(q, 0.3), size=n_ind)
    y = rng.binomial(2, beta @ tau.T).astype(float)
    y[rng.random(y.shape) < missing] = np.nan
    snps = [f"rs{j}" for j in range(n_snps)]
    inds = [f"ind{i}" for i in range(n_ind)]
    return (
        pd.DataFrame(y, index=snps, columns=inds),
        pd.DataFrame(beta, index=snps),
        pd.DataFrame(tau, index=inds),
    )


def _loglik(beta_j, y_j, tau):
    """Per-SNP binomial log-likelihood (up to a constant) of ``beta_j`` given ``tau`` (N x Q)."""
    keep = ~np.isnan(y_j)
    rho = np.clip(tau[keep] @ beta_j, 1e-9, 1 - 1e-9)
    return float((y_j[keep] * np.log(rho) + (2 - y_j[keep]) * np.log1p(-rho)).sum())


def test_subset_with_all_snps_equals_estimate_ancestry(rng):
    geno, _, _ = _admixed(rng, n_snps=300, n_ind=50)
    expected_beta, expected_tau = estimate_ancestry(geno, n_ancestry=3, seed=5)
    chunks = _chunks(geno, [1, 77, 13, 100])
    for max_snps in (300, 40_000):
        beta, tau = estimate_ancestry_subset(lambda: iter(chunks), n_ancestry=3, max_snps=max_snps, seed=5)
        pd.testing.assert_frame_equal(beta, expected_beta, check_exact=True)
        pd.testing.assert_frame_equal(tau, expected_tau, check_exact=True)


def test_beta_outside_subset_maximises_binomial_likelihood(rng, caplog):
    geno, _, _ = _admixed(rng, n_snps=400, n_ind=100)
    chunks = _chunks(geno, [150, 1, 90])
    with caplog.at_level(logging.INFO, logger="tbeqtl.tblda.ancestry"):
        beta, tau = estimate_ancestry_subset(
            lambda: chunks, n_ancestry=3, max_snps=120, seed=3, tol=1e-12, max_iter=5000
        )
    assert "random subset of 120 of 400 SNPs" in caplog.text
    subset_df, n_total = _draw_subset(chunks, max_snps=120, seed=3)
    assert n_total == 400 and len(subset_df) == 120
    # the subset's tau and beta are the EM's on those SNPs (plumbing)
    sub_beta, sub_tau = estimate_ancestry(subset_df, n_ancestry=3, seed=3, tol=1e-12, max_iter=5000)
    pd.testing.assert_frame_equal(tau, sub_tau, check_exact=True)
    pd.testing.assert_frame_equal(beta.loc[sub_beta.index], sub_beta, check_exact=True)
    # every other SNP: the maximiser of its own binomial likelihood given tau (scipy, independent)
    outside = geno.index.difference(subset_df.index)
    tau_np = tau.loc[geno.columns].to_numpy()
    for snp in rng.choice(outside, size=6, replace=False):
        y_j = geno.loc[snp].to_numpy()
        best = optimize.minimize(
            lambda b, y_j=y_j: -_loglik(b, y_j, tau_np),
            x0=np.full(3, 0.5),
            method="L-BFGS-B",
            bounds=[(1e-6, 1 - 1e-6)] * 3,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000},
        )
        ours = _loglik(beta.loc[snp].to_numpy(), y_j, tau_np)
        assert ours >= -best.fun - 1e-6, snp
        np.testing.assert_allclose(beta.loc[snp].to_numpy(), best.x, atol=2e-3, err_msg=snp)


def test_subset_recovers_tau_and_beta(rng):
    geno, true_beta, true_tau = _admixed(rng, n_snps=2000, n_ind=150)
    beta, tau = estimate_ancestry_subset(lambda: _chunks(geno, [500] * 4), n_ancestry=3, max_snps=500, seed=0)
    assert beta.index.equals(geno.index) and tau.index.equals(geno.columns)
    np.testing.assert_allclose(tau.sum(axis=1), 1)
    corr = np.corrcoef(tau.to_numpy().T, true_tau.to_numpy().T)[:3, 3:]
    rows, cols = linear_sum_assignment(-corr)
    assert corr[rows, cols].min() > 0.9
    subset_df, _ = _draw_subset(_chunks(geno, [2000]), max_snps=500, seed=0)
    outside = geno.index.difference(subset_df.index)
    for q, truth in zip(rows, cols, strict=True):  # beta of SNPs the EM never saw, against the truth
        r = np.corrcoef(beta.loc[outside].iloc[:, q], true_beta.loc[outside].iloc[:, truth])[0, 1]
        assert r > 0.85


def test_subset_does_not_depend_on_order_or_chunking(rng):
    geno, _, _ = _admixed(rng, n_snps=500, n_ind=60)
    beta, tau = estimate_ancestry_subset(lambda: _chunks(geno, [100] * 5), n_ancestry=3, max_snps=150, seed=7)
    shuffled = geno.iloc[rng.permutation(len(geno))]
    shuffled = shuffled[shuffled.columns[rng.permutation(shuffled.shape[1])]]
    beta2, tau2 = estimate_ancestry_subset(
        lambda: _chunks(shuffled, [1, 33, 9, 200]), n_ancestry=3, max_snps=150, seed=7
    )
    assert beta2.index.equals(shuffled.index) and tau2.index.equals(shuffled.columns)
    np.testing.assert_allclose(tau2.loc[tau.index].to_numpy(), tau.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(beta2.loc[beta.index].to_numpy(), beta.to_numpy(), rtol=0, atol=1e-12)
    # another seed draws another subset
    other, _ = _draw_subset(_chunks(geno, [500]), max_snps=150, seed=8)
    this, _ = _draw_subset(_chunks(geno, [500]), max_snps=150, seed=7)
    assert set(other.index) != set(this.index)


def test_subset_is_uniform_over_snps():
    ids = pd.Index([f"chr{j % 22 + 1}:{j * 37}" for j in range(1000)])
    geno = pd.DataFrame(np.ones((1000, 2)), index=ids, columns=["a", "b"])
    geno.iloc[:, 0] = 0.0
    counts = np.zeros(1000)
    for seed in range(60):
        subset_df, _ = _draw_subset(_chunks(geno, [333, 1, 400]), max_snps=250, seed=seed)
        assert len(subset_df) == 250
        counts[ids.get_indexer(subset_df.index)] += 1
    # each SNP is in the subset with probability 1/4: counts ~ Binomial(60, 1/4), mean 15, variance 11.25
    assert counts.mean() == 15
    assert 9 < counts.var() < 13.5  # a subset tied to input order would give counts of 0 or 60
    # no position effect along the input order: 10 blocks of 100 SNPs, 1,500 inclusions expected each
    assert stats.chisquare(counts.reshape(10, 100).sum(axis=1)).pvalue > 1e-3


def test_subset_bad_input(rng):
    geno, _, _ = _admixed(rng, n_snps=40, n_ind=10)
    with pytest.raises(InputError, match=">= 1"):
        estimate_ancestry_subset(lambda: [geno], n_ancestry=2, max_snps=0)
    with pytest.raises(InputError, match="rs3"):
        estimate_ancestry_subset(lambda: [geno, geno.iloc[[3]]], n_ancestry=2)
    bad = geno.copy()
    bad.iloc[7, 2] = 3.0
    with pytest.raises(InputError, match="rs7"):
        estimate_ancestry_subset(lambda: [bad], n_ancestry=2)
    with pytest.raises(InputError, match="stranger"):
        estimate_ancestry_subset(
            lambda: [geno.iloc[:20], geno.iloc[20:].rename(columns={"ind1": "stranger"})], n_ancestry=2
        )
    passes = iter([[geno], [geno.iloc[:30]]])
    with pytest.raises(InputError, match="changed between passes"):
        estimate_ancestry_subset(lambda: next(passes), n_ancestry=2, max_snps=10)
    with pytest.raises(InputError, match="no genotype chunks"):
        estimate_ancestry_subset(lambda: [], n_ancestry=2)
