"""The fused float32 lgamma / digamma / trigamma KL expressions against scipy and float64 torch."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy import special as sp

from tbeqtl.tblda import special
from tbeqtl.tblda.kernels import kl_beta, kl_dirichlet


@pytest.fixture(autouse=True)
def _fuse_every_size(monkeypatch):
    """Use the fused expressions also for the small inputs of these tests."""
    monkeypatch.setattr(special, "FUSED_MIN_ELEMENTS", 0)


def _grid() -> torch.Tensor:
    x = np.concatenate([np.logspace(-6, 12, 40001), np.linspace(0.5, 3.0, 5001), [1e15, 3e17, 1e19]])
    return torch.tensor(x, dtype=torch.float32)


def _scaled_error(value: torch.Tensor, ref: np.ndarray) -> np.ndarray:
    return np.abs(value.double().numpy() - ref) / np.maximum(np.abs(ref), 1.0)


def test_series_match_scipy_over_twenty_decades():
    x = _grid()
    xd = x.double().numpy()
    lg, dg = special.lgamma_digamma(x)
    assert lg.dtype == dg.dtype == torch.float32
    assert _scaled_error(lg, sp.gammaln(xd)).max() < 4e-6
    assert _scaled_error(dg, sp.digamma(xd)).max() < 1e-6
    tg = special.trigamma(x)
    assert _scaled_error(tg, sp.polygamma(1, xd)).max() < 1e-6
    # in float64 arithmetic the same expressions are accurate to ~1e-13 (truncation < 1e-9)
    lg64, dg64 = special.lgamma_digamma(x.double())
    assert _scaled_error(lg64, sp.gammaln(xd)).max() < 1e-9
    assert _scaled_error(dg64, sp.digamma(xd)).max() < 1e-9
    assert _scaled_error(special.trigamma(x.double()), sp.polygamma(1, xd)).max() < 1e-9


def _concentrations(shape, scale, seed):
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(shape, generator=g, dtype=torch.float64) * 8 - 4).exp() * scale).float()


@pytest.mark.parametrize(("shape", "scale"), [((7, 300), 50.0), ((400, 12), 3.0), ((3, 5), 1e6)])
def test_fused_dirichlet_kl_matches_float64_torch(shape, scale):
    c32 = _concentrations(shape, scale, seed=1)
    assert special.uses_fused_path(c32)
    c64 = c32.double().requires_grad_(True)
    ref = kl_dirichlet(c64, 0.7)  # float64: torch's own lgamma / digamma / polygamma
    ref.backward()
    x = c32.clone().requires_grad_(True)
    value = kl_dirichlet(x, 0.7)
    value.backward()
    assert value.dtype == torch.float32
    # the KL is a small difference of large lgamma sums: bound the error by float32 rounding of
    # the summed magnitudes (torch's own float32 functions err by up to ~3e-8 of it here)
    total = c64.detach().sum(-1)
    magnitude = float(torch.lgamma(total).abs().sum() + torch.lgamma(c64.detach()).abs().sum()
                      + ((torch.digamma(c64.detach()) - torch.digamma(total)[..., None])
                         * (c64.detach() - 0.7)).abs().sum())
    assert abs(value.item() - ref.item()) <= 1e-7 * magnitude
    assert special.fused_available()  # the compiled expressions ran (no silent fallback)
    err = (x.grad.double() - c64.grad).abs() / c64.grad.abs().clamp(min=1.0)
    assert float(err.max()) < 5e-4  # float32 cancellation of (c - p) psi1(c) - (T - pD) psi1(T)


def test_fused_beta_kl_matches_float64_torch():
    a32 = _concentrations((300, 20), 2.0, seed=2)
    b32 = _concentrations((300, 20), 2.0, seed=3)
    a64, b64 = a32.double().requires_grad_(True), b32.double().requires_grad_(True)
    ref = kl_beta(a64, b64, prior_a=1.5, prior_b=0.5)
    ref.backward()
    a, b = a32.clone().requires_grad_(True), b32.clone().requires_grad_(True)
    value = kl_beta(a, b, prior_a=1.5, prior_b=0.5)
    value.backward()
    np.testing.assert_allclose(value.item(), ref.item(), rtol=1e-6)
    assert special.fused_available()
    for ours, theirs in ((a.grad, a64.grad), (b.grad, b64.grad)):
        assert float(((ours.double() - theirs).abs() / theirs.abs().clamp(min=1.0)).max()) < 5e-4
    # only one input needing a gradient
    a2 = a32.clone().requires_grad_(True)
    kl_beta(a2, b32, prior_a=1.5, prior_b=0.5).backward()
    torch.testing.assert_close(a2.grad, a.grad)


def test_compiled_equals_eager_expressions(monkeypatch):
    c = _concentrations((64, 40), 5.0, seed=4)
    d = _concentrations((64, 40), 5.0, seed=5)
    dg_total = torch.digamma(c.sum(-1, keepdim=True))
    compiled = special.dirichlet_kl_terms(c, dg_total, prior=1.0)
    compiled_beta = special.beta_kl_terms(c, d, prior_a=1.0, prior_b=1.0)
    compiled_grads = special.beta_kl_grads(c, d, prior_a=1.0, prior_b=1.0)
    monkeypatch.setenv("TBEQTL_COMPILE", "0")
    assert not special.fused_available()
    eager = special.dirichlet_kl_terms(c, dg_total, prior=1.0)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-4)
    eager_beta = special.beta_kl_terms(c, d, prior_a=1.0, prior_b=1.0)
    torch.testing.assert_close(compiled_beta, eager_beta, rtol=1e-5, atol=1e-4)
    for x, y in zip(compiled_grads, special.beta_kl_grads(c, d, prior_a=1.0, prior_b=1.0), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch, caplog):
    kernel = special._Fused(special._beta_terms)

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    a = _concentrations((5, 4), 2.0, seed=6)
    with caplog.at_level(logging.WARNING, logger="tbeqtl.tblda.special"):
        out = kernel(a, a, torch.tensor(1.0), torch.tensor(1.0))
    assert kernel.failed
    assert "no C++ compiler" in caplog.text
    torch.testing.assert_close(out, special._beta_terms(a, a, torch.tensor(1.0), torch.tensor(1.0)))


def test_float64_and_small_inputs_use_torch_functions(monkeypatch):
    assert not special.uses_fused_path(torch.ones(3, dtype=torch.float64))
    assert special.uses_fused_path(torch.ones(3), torch.ones(3))
    assert not special.uses_fused_path(torch.ones(3), torch.ones(3, dtype=torch.float64))
    monkeypatch.setattr(special, "FUSED_MIN_ELEMENTS", 32768)
    assert not special.uses_fused_path(torch.ones(32767))
    assert special.uses_fused_path(torch.ones(32768))
