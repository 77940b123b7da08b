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
  posteriors from their priors,
- :func:`expression_constant` / :func:`genotype_constant`: the data constants, computed
  once per fit so that the reported ELBO equals the model's true ELBO.
"""

from __future__ import annotations

import torch

__all__ = [
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


class _ExpressionLogLik(torch.autograd.Function):
    """``sum(x * log(phi @ psi))`` with the gradient ``R = x / pi`` kept from the forward pass."""

    @staticmethod
    def forward(ctx, phi_t, psi_t, counts_t):
        pi_t = phi_t @ psi_t
        pi_t.clamp_(min=PROB_FLOOR)
        ratio_t = counts_t / pi_t
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
        return grad_phi, grad_psi, None


class _GenotypeLogLik(torch.autograd.Function):
    """Binomial(2, rho) log likelihood without constants, missing entries masked by weights."""

    @staticmethod
    def forward(ctx, lambda_t, theta_t, alpha_t, ancestry_t, alt_t, ref_t):
        shared_t = lambda_t @ theta_t  # S x N, sum_k lambda_jk theta_ki
        rho_t = torch.lerp(ancestry_t, shared_t, 1.0 - alpha_t)  # alpha*A + (1-alpha)*shared
        rho_t.clamp_(RHO_EPS, 1.0 - RHO_EPS)
        work_t = torch.log(rho_t)
        loglik = torch.dot(alt_t.reshape(-1), work_t.reshape(-1))
        torch.neg(rho_t, out=work_t).log1p_()
        loglik = loglik + torch.dot(ref_t.reshape(-1), work_t.reshape(-1))
        # d loglik / d rho = y / rho - (2 - y) / (1 - rho), built in place
        torch.neg(rho_t, out=work_t).add_(1.0)
        torch.div(ref_t, work_t, out=work_t)
        torch.div(alt_t, rho_t, out=rho_t)
        dlog_t = rho_t.sub_(work_t)
        ctx.save_for_backward(lambda_t, theta_t, alpha_t, ancestry_t, shared_t, dlog_t)
        return loglik

    @staticmethod
    def backward(ctx, grad_out):
        lambda_t, theta_t, alpha_t, ancestry_t, shared_t, dlog_t = ctx.saved_tensors
        grad_lambda = grad_theta = grad_alpha = None
        if ctx.needs_input_grad[2]:
            flat = dlog_t.reshape(-1)
            grad_alpha = (torch.dot(flat, ancestry_t.reshape(-1)) - torch.dot(flat, shared_t.reshape(-1)))
            grad_alpha = (grad_alpha * grad_out).reshape(alpha_t.shape)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            grad_shared = dlog_t * ((1.0 - alpha_t) * grad_out)
            if ctx.needs_input_grad[0]:
                grad_lambda = grad_shared @ theta_t.T
            if ctx.needs_input_grad[1]:
                grad_theta = lambda_t.T @ grad_shared
        return grad_lambda, grad_theta, grad_alpha, None, None, None


def expression_loglik(phi_t: torch.Tensor, psi_t: torch.Tensor, counts_t: torch.Tensor) -> torch.Tensor:
    """Multinomial log likelihood of the counts without its constant.

    Parameters
    ----------
    phi_t
        Sample topic proportions ``phi`` (L x K), rows on the simplex.
    psi_t
        Gene topics ``Psi`` (K x G), rows on the simplex.
    counts_t
        Counts ``x`` (L x G), same dtype.

    Returns
    -------
    torch.Tensor
        Scalar ``sum_lg x_lg log (phi_l . psi_.g)``, differentiable in ``phi`` and ``psi``.
    """
    return _ExpressionLogLik.apply(phi_t, psi_t, counts_t)


def genotype_loglik(
    lambda_t: torch.Tensor,
    theta_t: torch.Tensor,
    alpha_t: torch.Tensor,
    *,
    ancestry_t: torch.Tensor,
    alt_t: torch.Tensor,
    ref_t: torch.Tensor,
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

    Returns
    -------
    torch.Tensor
        Scalar ``sum_ij y_ij log rho_ij + (2 - y_ij) log(1 - rho_ij)`` over observed entries.
    """
    return _GenotypeLogLik.apply(lambda_t, theta_t, alpha_t, ancestry_t, alt_t, ref_t)


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
        Scalar sum of the KL divergences.
    """
    dim = concentration_t.shape[-1]
    total_t = concentration_t.sum(-1)
    prior_t = torch.as_tensor(prior, dtype=concentration_t.dtype, device=concentration_t.device)
    kl = (torch.lgamma(total_t) - torch.lgamma(prior_t * dim)).sum()
    kl = kl - (torch.lgamma(concentration_t) - torch.lgamma(prior_t)).sum()
    kl = kl + ((concentration_t - prior_t) * (torch.digamma(concentration_t)
                                             - torch.digamma(total_t)[..., None])).sum()
    return kl


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
        Scalar sum of the KL divergences.
    """
    pa = torch.as_tensor(prior_a, dtype=a_t.dtype, device=a_t.device)
    pb = torch.as_tensor(prior_b, dtype=a_t.dtype, device=a_t.device)
    total_t = a_t + b_t
    dig_total = torch.digamma(total_t)
    kl = (torch.lgamma(total_t) - torch.lgamma(a_t) - torch.lgamma(b_t)).sum()
    kl = kl - (torch.lgamma(pa + pb) - torch.lgamma(pa) - torch.lgamma(pb)) * a_t.numel()
    kl = kl + ((a_t - pa) * (torch.digamma(a_t) - dig_total)).sum()
    kl = kl + ((b_t - pb) * (torch.digamma(b_t) - dig_total)).sum()
    return kl


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
