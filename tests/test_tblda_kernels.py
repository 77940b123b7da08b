"""Fused TBLDA likelihood kernels against autograd, torch's distributions, scipy and the Pyro model."""

from __future__ import annotations

import numpy as np
import pyro
import pyro.poutine as poutine
import pytest
import torch
from scipy import special, stats

from tbeqtl.tblda.kernels import (
    Workspace,
    expression_constant,
    expression_loglik,
    genotype_constant,
    genotype_loglik,
    individual_proportions,
    kl_beta,
    kl_dirichlet,
)
from tbeqtl.tblda.model import Hyperparameters, ModelInputs, guide, model


def _problem(seed=0, dtype=torch.float64, missing=True):
    g = torch.Generator().manual_seed(seed)
    n_samples, n_genes, n_snps, n_ind, k = 7, 11, 9, 4, 3
    phi = torch.distributions.Dirichlet(torch.ones(k, dtype=dtype)).sample((n_samples,))
    psi = torch.distributions.Dirichlet(torch.ones(n_genes, dtype=dtype)).sample((k,))
    counts = torch.randint(0, 20, (n_samples, n_genes), generator=g).to(dtype)
    lam = torch.rand((n_snps, k), generator=g, dtype=dtype) * 0.9 + 0.05
    ind = torch.tensor([0, 1, 2, 3, 0, 0, 2])
    inv = 1.0 / torch.bincount(ind, minlength=n_ind).to(dtype)[ind]
    y = torch.randint(0, 3, (n_snps, n_ind), generator=g).to(dtype)
    mask = torch.ones_like(y)
    if missing:
        mask[1, 2] = 0
        mask[4, 0] = 0
    alt = y * mask
    ref = (2 - y) * mask
    anc = torch.rand((n_snps, n_ind), generator=g, dtype=dtype) * 0.8 + 0.1
    return dict(phi=phi, psi=psi, counts=counts, lam=lam, ind=ind, inv=inv, y=y, mask=mask, alt=alt, ref=ref,
                anc=anc, n_ind=n_ind, k=k)


def test_expression_loglik_matches_direct_formula_and_gradient():
    p = _problem()
    phi = p["phi"].clone().requires_grad_(True)
    psi = p["psi"].clone().requires_grad_(True)
    ours = expression_loglik(phi, psi, p["counts"])
    ref = (p["counts"] * torch.log(p["phi"] @ p["psi"])).sum()
    torch.testing.assert_close(ours, ref)
    assert torch.autograd.gradcheck(lambda a, b: expression_loglik(a, b, p["counts"]), (phi, psi))


def test_genotype_loglik_matches_masked_binomial_and_gradient():
    p = _problem()
    theta = individual_proportions(p["phi"], p["ind"], p["inv"], n_individuals=p["n_ind"])
    alpha = torch.tensor(0.3, dtype=torch.float64)
    ours = genotype_loglik(p["lam"], theta, alpha, ancestry_t=p["anc"], alt_t=p["alt"], ref_t=p["ref"])
    rho = (alpha * p["anc"] + (1 - alpha) * p["lam"] @ theta).numpy()
    y = p["y"].numpy()
    mask = p["mask"].numpy().astype(bool)
    full = stats.binom.logpmf(y, 2, rho) - np.log(special.comb(2, y))
    np.testing.assert_allclose(float(ours), full[mask].sum(), rtol=1e-10)
    lam = p["lam"].clone().requires_grad_(True)
    th = theta.clone().requires_grad_(True)
    al = alpha.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b, c: genotype_loglik(a, b, c, ancestry_t=p["anc"], alt_t=p["alt"], ref_t=p["ref"]),
        (lam, th, al))


def test_missing_genotype_is_left_out():
    p = _problem()
    theta = individual_proportions(p["phi"], p["ind"], p["inv"], n_individuals=p["n_ind"])
    alpha = torch.tensor(0.2, dtype=torch.float64)
    base = genotype_loglik(p["lam"], theta, alpha, ancestry_t=p["anc"], alt_t=p["alt"], ref_t=p["ref"])
    # changing the (masked) genotype value does not change anything
    alt2 = p["alt"].clone()
    assert alt2[1, 2] == 0
    again = genotype_loglik(p["lam"], theta, alpha, ancestry_t=p["anc"], alt_t=alt2, ref_t=p["ref"])
    torch.testing.assert_close(base, again)


def test_individual_proportions_is_the_mean_of_phi():
    p = _problem()
    theta = individual_proportions(p["phi"], p["ind"], p["inv"], n_individuals=p["n_ind"])
    for i in range(p["n_ind"]):
        torch.testing.assert_close(theta[:, i], p["phi"][p["ind"] == i].mean(0))


def test_kl_closed_forms_match_torch():
    g = torch.Generator().manual_seed(1)
    conc = torch.rand((4, 6), generator=g, dtype=torch.float64) * 5 + 0.1
    prior = torch.distributions.Dirichlet(torch.full((6,), 0.7, dtype=torch.float64))
    ref = torch.distributions.kl_divergence(torch.distributions.Dirichlet(conc), prior).sum()
    torch.testing.assert_close(kl_dirichlet(conc, 0.7), ref)
    a = torch.rand((5, 3), generator=g, dtype=torch.float64) * 5 + 0.1
    b = torch.rand((5, 3), generator=g, dtype=torch.float64) * 5 + 0.1
    f64 = torch.float64
    prior = torch.distributions.Beta(torch.tensor(1.5, dtype=f64), torch.tensor(0.5, dtype=f64))
    ref = torch.distributions.kl_divergence(torch.distributions.Beta(a, b), prior).sum()
    torch.testing.assert_close(kl_beta(a, b, prior_a=1.5, prior_b=0.5), ref)


def test_constants_match_scipy():
    p = _problem()
    counts = p["counts"].numpy()
    ref = sum(stats.multinomial.logpmf(row, row.sum(), np.full(len(row), 1 / len(row)))
              - row.sum() * np.log(1 / len(row)) for row in counts)
    np.testing.assert_allclose(expression_constant(p["counts"]), ref, rtol=1e-10)
    y = p["y"].numpy()
    mask = p["mask"].numpy().astype(bool)
    np.testing.assert_allclose(genotype_constant(p["alt"], p["mask"]), np.log(special.comb(2, y))[mask].sum())


def test_lean_log_joint_equals_pyro_model_log_joint():
    """With the same latent values, kernels + constants + priors = the Pyro model's log density."""
    p = _problem(missing=True)
    inputs = ModelInputs(counts_t=p["counts"], alt_t=p["alt"], mask_t=p["mask"], ancestry_t=p["anc"],
                         individual_index_t=p["ind"], inverse_count_t=p["inv"], n_topics=p["k"])
    hyper = Hyperparameters()
    pyro.clear_param_store()
    with torch.no_grad():
        guide_trace = poutine.trace(guide).get_trace(inputs, hyper)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(inputs, hyper)
    pyro_logp = model_trace.log_prob_sum()
    v = {name: guide_trace.nodes[name]["value"] for name in ("psi", "phi", "lambda", "alpha")}
    theta = individual_proportions(v["phi"], p["ind"], p["inv"], n_individuals=p["n_ind"])
    lean = (expression_loglik(v["phi"], v["psi"], p["counts"]) + expression_constant(p["counts"])
            + genotype_loglik(v["lambda"], theta, v["alpha"], ancestry_t=p["anc"], alt_t=p["alt"],
                              ref_t=p["ref"]) + genotype_constant(p["alt"], p["mask"]))
    ones_g = torch.ones(p["psi"].shape[1], dtype=torch.float64)
    prior = (torch.distributions.Dirichlet(ones_g).log_prob(v["psi"]).sum()
             + torch.distributions.Dirichlet(torch.ones(p["k"], dtype=torch.float64)).log_prob(v["phi"]).sum()
             + torch.distributions.Beta(1.0, 1.0).log_prob(v["lambda"]).sum()
             - np.log(hyper.mu - hyper.delta))
    torch.testing.assert_close(pyro_logp, lean + prior, rtol=1e-8, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32])
def test_float32_kernels_close_to_float64(dtype):
    p = _problem()
    ours = expression_loglik(p["phi"].to(dtype), p["psi"].to(dtype), p["counts"].to(dtype))
    ref = expression_loglik(p["phi"], p["psi"], p["counts"])
    np.testing.assert_allclose(float(ours), float(ref), rtol=1e-5)


def test_kl_gradients_match_autograd_of_torch_kl():
    """The hand-written KL backward equals autograd through torch's own KL divergences."""
    g = torch.Generator().manual_seed(4)
    f64 = torch.float64
    conc = (torch.rand((4, 6), generator=g, dtype=f64) * 5 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda c: kl_dirichlet(c, 0.7), (conc,))
    prior = torch.distributions.Dirichlet(torch.full((6,), 0.7, dtype=f64))
    torch.distributions.kl_divergence(torch.distributions.Dirichlet(conc), prior).sum().backward()
    ref_grad = conc.grad.clone()
    conc.grad = None
    kl_dirichlet(conc, 0.7).backward()
    torch.testing.assert_close(conc.grad, ref_grad)
    a = (torch.rand((5, 3), generator=g, dtype=f64) * 5 + 0.1).requires_grad_(True)
    b = (torch.rand((5, 3), generator=g, dtype=f64) * 5 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, y: kl_beta(x, y, prior_a=1.5, prior_b=0.5), (a, b))
    beta_prior = torch.distributions.Beta(torch.tensor(1.5, dtype=f64), torch.tensor(0.5, dtype=f64))
    torch.distributions.kl_divergence(torch.distributions.Beta(a, b), beta_prior).sum().backward()
    ref_a, ref_b = a.grad.clone(), b.grad.clone()
    a.grad = b.grad = None
    kl_beta(a, b, prior_a=1.5, prior_b=0.5).backward()
    torch.testing.assert_close(a.grad, ref_a)
    torch.testing.assert_close(b.grad, ref_b)


def _loglik_and_grads(p, workspace, alt, ref):
    phi = p["phi"].clone().requires_grad_(True)
    psi = p["psi"].clone().requires_grad_(True)
    lam = p["lam"].clone().requires_grad_(True)
    alpha = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    theta = individual_proportions(phi, p["ind"], p["inv"], n_individuals=p["n_ind"])
    total = expression_loglik(phi, psi, p["counts"], workspace=workspace)
    total = total + genotype_loglik(lam, theta, alpha, ancestry_t=p["anc"], alt_t=alt, ref_t=ref,
                                    workspace=workspace)
    total.backward()
    return [total.detach(), phi.grad, psi.grad, lam.grad, alpha.grad]


def test_workspace_gives_the_same_values_and_gradients_and_guards_reuse():
    p = _problem()
    fresh = _loglik_and_grads(p, None, p["alt"], p["ref"])
    workspace = Workspace()
    # column-major genotypes (as from a transposed frame) are copied once into the workspace
    alt_f, ref_f = p["alt"].T.contiguous().T, p["ref"].T.contiguous().T
    assert not alt_f.is_contiguous()
    for _ in range(3):  # buffers reused across steps
        reused = _loglik_and_grads(p, workspace, alt_f, ref_f)
        for a, b in zip(fresh, reused, strict=True):
            torch.testing.assert_close(a, b)
    assert workspace.contiguous("alt", alt_f) is workspace.contiguous("alt", alt_f)
    # a second forward pass before the first backward overwrites the saved buffers: autograd refuses
    theta = individual_proportions(p["phi"], p["ind"], p["inv"], n_individuals=p["n_ind"])
    lam = p["lam"].clone().requires_grad_(True)
    alpha = torch.tensor(0.3, dtype=torch.float64)
    first = genotype_loglik(lam, theta, alpha, ancestry_t=p["anc"], alt_t=p["alt"], ref_t=p["ref"],
                            workspace=workspace)
    genotype_loglik(lam, theta, alpha, ancestry_t=p["anc"], alt_t=p["alt"], ref_t=p["ref"],
                    workspace=workspace)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        first.backward()
