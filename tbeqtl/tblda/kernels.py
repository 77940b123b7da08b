"""Fast likelihood kernels of TBLDA (tensors only; no pandas, no Pyro).

The two data terms of the TBLDA log likelihood dominate every step. They are written
here as fused :class:`torch.autograd.Function` s that compute the log likelihood
*directly* (no ``probs -> logits`` round trip, no data constants, one pass over the
big matrices) and hand-written gradients:

- :func:`expression_loglik`: ``sum_lg x_lg log pi_lg`` with ``pi_l = Psi phi_l``
  (paper equations 3-4 without the multinomial coefficient, which does not depend on
  any parameter),
- :func:`genotype_loglik`: ``sum_ij m_ij [y_ij log rho_ij + (2 - y_ij) log(1 - rho_ij)]``
  with ``rho = alpha * A + (1 - alpha) * Lambda Theta`` (equations 8-9 without the
  binomial coefficient; ``m_ij = 0`` masks missing genotypes out),
- :func:`individual_proportions`: ``theta_i`` as the mean of ``phi_l`` over the
  individual's samples (equation 5) by ``index_add_`` with a precomputed ``1 / n_i``
  instead of a dense L x N matrix product,
- :func:`kl_dirichlet` / :func:`kl_beta`: closed-form KL divergences of the mean-field
  posteriors from their priors (float32 CPU inputs go through the fused ``lgamma`` /
  ``digamma`` / ``trigamma`` expressions of :mod:`tbeqtl.tblda.special`),
- :func:`expression_constant` / :func:`genotype_constant`: the data constants, computed
  once per fit so that the reported ELBO equals the model's true ELBO.

The likelihood kernels take an optional :class:`Workspace`: the L x G and S x N
intermediates are then written into buffers kept from the previous step (``out=`` and
in-place operators only) instead of freshly allocated ones. At chromosome scale a fresh
S x N float32 buffer (33 MB) is above glibc's largest ``mmap`` threshold, so every new one
was mapped and page-faulted in again, several times per step. Autograd's version counters
still guard the reuse: running a second forward pass before the first one's backward
makes that backward raise instead of returning wrong gradients.
"""

from __future__ import annotations

import math

import torch

from .special import (
    beta_kl_grads,
    beta_kl_terms,
    dirichlet_kl_grads,
    dirichlet_kl_terms,
    uses_fused_path,
)

__all__ = [
    "Workspace",
    "expression_constant",
    "expression_loglik",
    "genotype_constant",
    "genotype_loglik",
    "individual_proportions",
    "kl_beta",
    "kl_dirichlet",
]

#: Floor of probabilities inside logarithms (float32-safe).
PROB_FLOOR = 1e-20
#: Bound keeping rho inside (0, 1).
RHO_EPS = 1e-7


class Workspace:
    """Reusable buffers for the likelihood kernels, one per (name, shape, dtype, device).

    Create one per fit and pass it to every step's :func:`expression_loglik` and
    :func:`genotype_loglik` call.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """Return the buffer ``name`` of ``shape`` with the dtype and device of ``like`` (contents undefined).

        Parameters
        ----------
        name
            Buffer name.
        shape
            Required shape.
        like
            Tensor whose dtype and device the buffer takes.

        Returns
        -------
        torch.Tensor
            A contiguous buffer, the same one on every call with the same key.
        """
        key = (name, tuple(shape), like.dtype, like.device)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buf

    def contiguous(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """Return ``tensor`` if contiguous, else a contiguous copy made once and kept.

        The copy is keyed by ``name``, the tensor's storage address, shape and strides, so a
        constant input in column-major order (e.g. genotypes from a transposed frame) is
        copied once per fit instead of once per ``reshape(-1)`` in every step.

        Parameters
        ----------
        name
            Cache name.
        tensor
            A tensor whose values do not change while the workspace is in use.

        Returns
        -------
        torch.Tensor
            A contiguous tensor with the values of ``tensor``.
        """
        if tensor.is_contiguous():
            return tensor
        key = ("contiguous", name, tensor.data_ptr(), tuple(tensor.shape), tensor.stride(), tensor.dtype)
        copy = self._buffers.get(key)
        if copy is None:
            copy = self._buffers[key] = tensor.contiguous()
        return copy

    def clear(self) -> None:
        """Drop all buffers."""
        self._buffers.clear()


def _buffer(workspace: Workspace | None, name: str, shape, like: torch.Tensor) -> torch.Tensor:
    if workspace is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    return workspace.get(name, shape, like)


class _ExpressionLogLik(torch.autograd.Function):
    """``sum(x * log(phi @ psi))`` with the gradient ``R = x / pi`` kept from the forward pass."""

    @staticmethod
    def forward(ctx, phi_t, psi_t, counts_t, workspace):
        shape = (phi_t.shape[0], psi_t.shape[1])
        pi_t = torch.mm(phi_t, psi_t, out=_buffer(workspace, "expr_pi", shape, counts_t))
        pi_t.clamp_(min=PROB_FLOOR)
        ratio_t = torch.div(counts_t, pi_t, out=_buffer(workspace, "expr_ratio", shape, counts_t))
        loglik = torch.dot(counts_t.reshape(-1), pi_t.log_().reshape(-1))
        ctx.save_for_backward(phi_t, psi_t, ratio_t)
        return loglik

    @staticmethod
    def backward(ctx, grad_out):
        phi_t, psi_t, ratio_t = ctx.saved_tensors
        grad_phi = grad_psi = None
        if ctx.needs_input_grad[0]:
            grad_phi = (ratio_t @ psi_t.T).mul_(grad_out)
        if ctx.needs_input_grad[1]:
            grad_psi = (phi_t.T @ ratio_t).mul_(grad_out)
        return grad_phi, grad_psi, None, None


class _GenotypeLogLik(torch.autograd.Function):
    """Binomial(2, rho) log likelihood without constants, missing entries masked by weights.

    Three S x N buffers, all written in place: ``rho`` (later the derivative
    ``d loglik / d rho``), ``A - Lambda Theta`` (``d rho / d alpha``, later the gradient of
    ``Lambda Theta``) and one for logarithms and ``1 - rho``.
    """

    @staticmethod
    def forward(ctx, lambda_t, theta_t, alpha_t, ancestry_t, alt_t, ref_t, workspace):
        shape = ancestry_t.shape
        rho_t = torch.mm(lambda_t, theta_t, out=_buffer(workspace, "geno_rho", shape, ancestry_t))
        diff_t = torch.sub(ancestry_t, rho_t, out=_buffer(workspace, "geno_diff", shape, ancestry_t))
        rho_t.addcmul_(diff_t, alpha_t)  # shared + alpha (A - shared) = alpha A + (1 - alpha) shared
        rho_t.clamp_(RHO_EPS, 1.0 - RHO_EPS)
        work_t = torch.log(rho_t, out=_buffer(workspace, "geno_work", shape, ancestry_t))
        loglik = torch.dot(alt_t.reshape(-1), work_t.reshape(-1))
        torch.add(torch.ones((), dtype=rho_t.dtype, device=rho_t.device), rho_t, alpha=-1, out=work_t)
        # d loglik / d rho = y / rho - (2 - y) / (1 - rho), built in place over rho
        dlog_t = torch.div(alt_t, rho_t, out=rho_t).addcdiv_(ref_t, work_t, value=-1.0)
        loglik = loglik + torch.dot(ref_t.reshape(-1), work_t.log_().reshape(-1))
        ctx.grad_alpha = torch.dot(dlog_t.reshape(-1), diff_t.reshape(-1))  # d loglik / d alpha
        ctx.workspace = workspace
        ctx.save_for_backward(lambda_t, theta_t, alpha_t, dlog_t)
        return loglik

    @staticmethod
    def backward(ctx, grad_out):
        lambda_t, theta_t, alpha_t, dlog_t = ctx.saved_tensors
        grad_lambda = grad_theta = grad_alpha = None
        if ctx.needs_input_grad[2]:
            grad_alpha = (ctx.grad_alpha * grad_out).reshape(alpha_t.shape)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_shared = torch.mul(dlog_t, (1.0 - alpha_t) * grad_out,
                                    out=_buffer(ctx.workspace, "geno_diff", dlog_t.shape, dlog_t))
            if ctx.needs_input_grad[0]:
                grad_lambda = grad_shared @ theta_t.T
            if ctx.needs_input_grad[1]:
                grad_theta = lambda_t.T @ grad_shared
        return grad_lambda, grad_theta, grad_alpha, None, None, None, None


def expression_loglik(phi_t: torch.Tensor, psi_t: torch.Tensor, counts_t: torch.Tensor, *,
                      workspace: Workspace | None = None) -> torch.Tensor:
    """Multinomial log likelihood of the counts without its constant.

    Parameters
    ----------
    phi_t
        Sample topic proportions ``phi`` (L x K), rows on the simplex.
    psi_t
        Gene topics ``Psi`` (K x G), rows on the simplex.
    counts_t
        Counts ``x`` (L x G), same dtype.
    workspace
        Buffers reused across calls (see :class:`Workspace`); ``None`` allocates fresh ones.

    Returns
    -------
    torch.Tensor
        Scalar ``sum_lg x_lg log (phi_l . psi_.g)``, differentiable in ``phi`` and ``psi``.
    """
    if workspace is not None:
        counts_t = workspace.contiguous("counts", counts_t)
    return _ExpressionLogLik.apply(phi_t, psi_t, counts_t, workspace)


def genotype_loglik(
    lambda_t: torch.Tensor,
    theta_t: torch.Tensor,
    alpha_t: torch.Tensor,
    *,
    ancestry_t: torch.Tensor,
    alt_t: torch.Tensor,
    ref_t: torch.Tensor,
    workspace: Workspace | None = None,
) -> torch.Tensor:
    """Binomial(2, rho) log likelihood of the genotypes without its constant.

    Parameters
    ----------
    lambda_t
        SNP topics ``Lambda`` (S x K), entries in (0, 1).
    theta_t
        Individual proportions ``Theta`` (K x N).
    alpha_t
        Ancestry weight ``alpha`` (0-d tensor).
    ancestry_t
        Fixed ancestry term ``A = beta tau`` (S x N).
    alt_t
        Allele dosage ``y`` with missing entries set to 0 (S x N).
    ref_t
        ``2 - y`` with missing entries set to 0 (S x N).
    workspace
        Buffers reused across calls (see :class:`Workspace`); ``None`` allocates fresh ones.

    Returns
    -------
    torch.Tensor
        Scalar ``sum_ij y_ij log rho_ij + (2 - y_ij) log(1 - rho_ij)`` over observed entries.
    """
    if workspace is not None:
        ancestry_t = workspace.contiguous("ancestry", ancestry_t)
        alt_t = workspace.contiguous("alt", alt_t)
        ref_t = workspace.contiguous("ref", ref_t)
    return _GenotypeLogLik.apply(lambda_t, theta_t, alpha_t, ancestry_t, alt_t, ref_t, workspace)


def individual_proportions(
    phi_t: torch.Tensor,
    individual_index_t: torch.Tensor,
    inverse_count_t: torch.Tensor,
    *,
    n_individuals: int,
) -> torch.Tensor:
    """Individual topic proportions ``theta_i``: the mean of ``phi_l`` over i's samples (equation 5).

    Parameters
    ----------
    phi_t
        Sample proportions (L x K).
    individual_index_t
        Individual (column of the genotypes) of each sample (L, int64).
    inverse_count_t
        ``1 / n_i`` of each *sample's* individual (L), precomputed.
    n_individuals
        N.

    Returns
    -------
    torch.Tensor
        ``Theta`` as K x N.
    """
    weighted_t = phi_t * inverse_count_t[:, None]
    out_t = phi_t.new_zeros((n_individuals, phi_t.shape[1]))
    return out_t.index_add_(0, individual_index_t, weighted_t).T


class _KLDirichlet(torch.autograd.Function):
    """Closed-form Dirichlet KL with the hand-written gradient ``(c_j - p) psi1(c_j) - (T - pD) psi1(T)``.

    Sums use torch's cascade summation (not a float32 ``dot``), which keeps float32 rounding
    of the KL below the CAVI bound's monotonicity check.

    Autograd through the closed form would evaluate ``digamma`` twice more (as the derivative
    of ``lgamma``) and ``trigamma`` of every term; here the backward pass needs two trigammas.
    """

    @staticmethod
    def forward(ctx, concentration_t, prior):
        dim = concentration_t.shape[-1]
        total_t = concentration_t.sum(-1)
        const = math.lgamma(prior * dim) - dim * math.lgamma(prior)
        if uses_fused_path(concentration_t):
            terms_t = dirichlet_kl_terms(concentration_t, torch.digamma(total_t)[..., None], prior=prior)
            kl = (torch.lgamma(total_t).sum(dtype=torch.float64) + terms_t.sum(dtype=torch.float64)
                  - const * total_t.numel()).to(concentration_t.dtype)
        else:
            kl = torch.lgamma(total_t).sum() - torch.lgamma(concentration_t).sum() - const * total_t.numel()
            term_t = torch.digamma(concentration_t).sub_(torch.digamma(total_t)[..., None])
            kl = kl + term_t.mul_(concentration_t - prior).sum()
        ctx.prior = prior
        ctx.save_for_backward(concentration_t, total_t)
        return kl

    @staticmethod
    def backward(ctx, grad_out):
        concentration_t, total_t = ctx.saved_tensors
        dim = concentration_t.shape[-1]
        row_t = (torch.polygamma(1, total_t) * (total_t - ctx.prior * dim))[..., None]
        if uses_fused_path(concentration_t):
            grad_t = dirichlet_kl_grads(concentration_t, row_t, prior=ctx.prior)
        else:
            grad_t = torch.polygamma(1, concentration_t).mul_(concentration_t - ctx.prior).sub_(row_t)
        return grad_t.mul_(grad_out), None


class _KLBeta(torch.autograd.Function):
    """Closed-form Beta KL; gradient in ``a``: ``(a - p_a) psi1(a) - (a + b - p_a - p_b) psi1(a + b)``."""

    @staticmethod
    def forward(ctx, a_t, b_t, prior_a, prior_b):
        const = math.lgamma(prior_a + prior_b) - math.lgamma(prior_a) - math.lgamma(prior_b)
        ctx.priors = (prior_a, prior_b)
        if uses_fused_path(a_t, b_t):
            terms_t = beta_kl_terms(a_t, b_t, prior_a=prior_a, prior_b=prior_b)
            ctx.save_for_backward(a_t, b_t)
            return (terms_t.sum(dtype=torch.float64) - const * a_t.numel()).to(a_t.dtype)
        total_t = a_t + b_t
        kl = torch.lgamma(total_t).sum() - torch.lgamma(a_t).sum() - torch.lgamma(b_t).sum()
        kl = kl - const * a_t.numel()
        dig_total = torch.digamma(total_t)
        kl = kl + ((torch.digamma(a_t) - dig_total).mul_(a_t - prior_a)).sum()
        dig_total.neg_().add_(torch.digamma(b_t))  # now digamma(b) - digamma(a + b)
        kl = kl + dig_total.mul_(b_t - prior_b).sum()
        ctx.save_for_backward(a_t, b_t)
        return kl

    @staticmethod
    def backward(ctx, grad_out):
        a_t, b_t = ctx.saved_tensors
        prior_a, prior_b = ctx.priors
        if uses_fused_path(a_t, b_t):
            grad_a, grad_b = beta_kl_grads(a_t, b_t, prior_a=prior_a, prior_b=prior_b)
            return (grad_a.mul_(grad_out) if ctx.needs_input_grad[0] else None,
                    grad_b.mul_(grad_out) if ctx.needs_input_grad[1] else None, None, None)
        total_t = a_t + b_t
        common_t = torch.polygamma(1, total_t).mul_(total_t - (prior_a + prior_b))
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.polygamma(1, a_t).mul_(a_t - prior_a).sub_(common_t).mul_(grad_out)
        if ctx.needs_input_grad[1]:
            grad_b = torch.polygamma(1, b_t).mul_(b_t - prior_b).sub_(common_t).mul_(grad_out)
        return grad_a, grad_b, None, None


def kl_dirichlet(concentration_t: torch.Tensor, prior: float) -> torch.Tensor:
    """Sum ``KL(Dirichlet(q) || Dirichlet(prior * 1))`` over the rows of ``concentration_t``.

    Parameters
    ----------
    concentration_t
        Posterior concentrations, one Dirichlet per row.
    prior
        Symmetric prior concentration (the paper's ``xi`` or ``sigma``).

    Returns
    -------
    torch.Tensor
        Scalar sum of the KL divergences, differentiable in ``concentration_t``.
    """
    return _KLDirichlet.apply(concentration_t, float(prior))


def kl_beta(a_t: torch.Tensor, b_t: torch.Tensor, *, prior_a: float, prior_b: float) -> torch.Tensor:
    """Sum ``KL(Beta(a, b) || Beta(prior_a, prior_b))`` over all entries.

    Parameters
    ----------
    a_t, b_t
        Posterior Beta parameters (same shape).
    prior_a, prior_b
        Prior parameters (the paper's ``zeta`` and ``gamma``).

    Returns
    -------
    torch.Tensor
        Scalar sum of the KL divergences, differentiable in ``a_t`` and ``b_t``.
    """
    return _KLBeta.apply(a_t, b_t, float(prior_a), float(prior_b))


def expression_constant(counts_t: torch.Tensor) -> float:
    """Log multinomial coefficients ``sum_l [log C_l! - sum_g log x_lg!]`` (computed once).

    Parameters
    ----------
    counts_t
        Counts (L x G).

    Returns
    -------
    float
        The constant, in float64.
    """
    counts64 = counts_t.double()
    return float(torch.lgamma(counts64.sum(1) + 1).sum() - torch.lgamma(counts64 + 1).sum())


def genotype_constant(alt_t: torch.Tensor, mask_t: torch.Tensor) -> float:
    """Log binomial coefficients ``sum_ij m_ij log C(2, y_ij)`` over observed genotypes (computed once).

    Parameters
    ----------
    alt_t
        Dosages with missing entries set to 0 (S x N).
    mask_t
        1 for observed, 0 for missing.

    Returns
    -------
    float
        The constant (``lgamma`` form, so fractional dosages are allowed).
    """
    y64 = alt_t.double()
    log2fact = torch.lgamma(torch.tensor(3.0, dtype=torch.float64))
    terms = log2fact - torch.lgamma(y64 + 1) - torch.lgamma(3 - y64)
    return float((terms * mask_t.double()).sum())
