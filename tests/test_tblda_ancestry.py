"""Ancestry subspace: terastructure/ADMIXTURE readers, checks against genotypes, internal EM estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

from tbeqtl.errors import InputError
from tbeqtl.io.ancestry import (
    read_admixture_p,
    read_admixture_q,
    read_ancestry_matrix,
    read_terastructure_beta,
    read_terastructure_theta,
)
from tbeqtl.tblda.ancestry import check_ancestry, estimate_ancestry


def _draw(rng, n_snps=400, n_ind=150, q=3, missing=0.0):
    beta = rng.beta(0.6, 0.6, size=(n_snps, q)).clip(0.01, 0.99)
    tau = rng.dirichlet(np.full(q, 0.3), size=n_ind)
    y = rng.binomial(2, beta @ tau.T).astype(float)
    if missing:
        y[rng.random(y.shape) < missing] = np.nan
    snps = [f"rs{j}" for j in range(n_snps)]
    inds = [f"ind{i}" for i in range(n_ind)]
    return (pd.DataFrame(y, index=snps, columns=inds), pd.DataFrame(beta, index=snps),
            pd.DataFrame(tau, index=inds))


def test_terastructure_files_with_index_and_trailing_tabs(tmp_path, rng):
    geno, beta, tau = _draw(rng, n_snps=5, n_ind=4)
    beta_txt = "".join(f"{j}\t" + "\t".join(f"{v:.6f}" for v in row) + "\t\n"
                       for j, row in enumerate(beta.to_numpy()))
    theta_txt = "".join("\t".join(f"{v:.6f}" for v in row) + "\t\n" for row in tau.to_numpy())
    (tmp_path / "beta.txt").write_text(beta_txt)
    (tmp_path / "theta.txt").write_text(theta_txt)
    # the naive reader of the published code gets extra NaN columns:
    naive = np.genfromtxt(tmp_path / "beta.txt", delimiter="\t")
    assert naive.shape[1] == beta.shape[1] + 2 and np.isnan(naive).any()
    b = read_terastructure_beta(tmp_path / "beta.txt", geno.index)
    t = read_terastructure_theta(tmp_path / "theta.txt", geno.columns)
    np.testing.assert_allclose(b.to_numpy(), beta.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(t.to_numpy(), tau.to_numpy(), atol=1e-6)
    assert list(b.index) == list(geno.index) and list(t.index) == list(geno.columns)
    # theta with a leading 1-based index too
    (tmp_path / "theta2.txt").write_text("".join(f"{i + 1}\t" + "\t".join(f"{v:.6f}" for v in row) + "\t\n"
                                                 for i, row in enumerate(tau.to_numpy())))
    t2 = read_terastructure_theta(tmp_path / "theta2.txt", geno.columns)
    np.testing.assert_allclose(t2.to_numpy(), t.to_numpy())


def test_admixture_files_and_transposed_input(tmp_path, rng):
    geno, beta, tau = _draw(rng, n_snps=6, n_ind=5)
    np.savetxt(tmp_path / "x.3.P", beta.to_numpy(), fmt="%.6f")
    np.savetxt(tmp_path / "x.3.Q", tau.to_numpy(), fmt="%.6f")
    np.savetxt(tmp_path / "beta_t.txt", beta.to_numpy().T, fmt="%.6f", delimiter="\t")
    p = read_admixture_p(tmp_path / "x.3.P", geno.index)
    q = read_admixture_q(tmp_path / "x.3.Q", geno.columns)
    np.testing.assert_allclose(p.to_numpy(), beta.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(q.to_numpy(), tau.to_numpy(), atol=1e-6)
    pt = read_terastructure_beta(tmp_path / "beta_t.txt", geno.index, index_column=False)
    np.testing.assert_allclose(pt.to_numpy(), beta.to_numpy(), atol=1e-6)
    with pytest.raises(InputError, match="7 snps"):
        read_admixture_p(tmp_path / "x.3.P", [f"s{i}" for i in range(7)])


def test_reader_errors(tmp_path):
    (tmp_path / "ragged.txt").write_text("0.1\t0.2\n0.3\n")
    with pytest.raises(InputError, match="different numbers of fields"):
        read_ancestry_matrix(tmp_path / "ragged.txt")
    (tmp_path / "text.txt").write_text("a\tb\n")
    with pytest.raises(InputError, match="non-numeric"):
        read_ancestry_matrix(tmp_path / "text.txt")
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(InputError, match="empty"):
        read_ancestry_matrix(tmp_path / "empty.txt")


def test_check_ancestry_alignment_and_allele_coding(rng):
    geno, beta, tau = _draw(rng)
    b, t = check_ancestry(beta.iloc[::-1], tau.iloc[::-1], geno)
    assert list(b.index) == list(geno.index) and list(t.index) == list(geno.columns)
    with pytest.raises(InputError, match="other allele"):
        check_ancestry(1 - beta, tau, geno)
    flipped, _ = check_ancestry(1 - beta, tau, geno, flip="flip")
    np.testing.assert_allclose(flipped.to_numpy(), beta.to_numpy())
    with pytest.raises(InputError, match="rs0"):
        check_ancestry(beta.drop("rs0"), tau, geno)
    with pytest.raises(InputError, match="ind3"):
        check_ancestry(beta, tau.drop("ind3"), geno)
    bad = tau.copy()
    bad.iloc[2] = [0.9, 0.9, 0.9]
    with pytest.raises(InputError, match="ind2"):
        check_ancestry(beta, bad, geno)
    bad_beta = beta.copy()
    bad_beta.iloc[1, 0] = 1.5
    with pytest.raises(InputError, match="rs1"):
        check_ancestry(bad_beta, tau, geno)


def test_em_estimate_recovers_admixture_and_ignores_missing(rng):
    geno, beta, tau = _draw(rng, n_snps=300, n_ind=120, missing=0.05)
    b, t = estimate_ancestry(geno, n_ancestry=3, seed=1)
    assert np.allclose(t.sum(axis=1), 1)
    corr = np.corrcoef(t.to_numpy().T, tau.to_numpy().T)[:3, 3:]
    rows, cols = linear_sum_assignment(-corr)
    assert corr[rows, cols].min() > 0.9
    # order invariance: shuffled input gives the same estimate per ID
    shuffled = geno.sample(frac=1, random_state=0).T.sample(frac=1, random_state=1).T
    b2, t2 = estimate_ancestry(shuffled, n_ancestry=3, seed=1)
    np.testing.assert_allclose(t2.loc[t.index].to_numpy(), t.to_numpy(), atol=1e-8)
    np.testing.assert_allclose(b2.loc[b.index].to_numpy(), b.to_numpy(), atol=1e-8)
    # the estimate passes the coding check
    check_ancestry(b, t, geno)


def test_em_likelihood_does_not_decrease(rng):
    geno, _, _ = _draw(rng, n_snps=100, n_ind=40)
    y = geno.to_numpy()
    previous = -np.inf
    for iters in (1, 3, 10, 30):
        b, t = estimate_ancestry(geno, n_ancestry=2, max_iter=iters, tol=0, seed=4)
        rho = np.clip(b.to_numpy() @ t.to_numpy().T, 1e-9, 1 - 1e-9)
        ll = (y * np.log(rho) + (2 - y) * np.log1p(-rho)).sum()
        assert ll >= previous - 1e-6
        previous = ll
