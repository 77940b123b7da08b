"""The TBLDA generative model and its mean-field guide as pure Pyro functions.

Paper symbols (Gewirtz et al. 2022, Materials and Methods, equations 1-9) and names here:

========================  =====================  ===========================================
paper                     here                   shape / meaning
========================  =====================  ===========================================
``psi_k``                 site ``psi``           K x G gene topics, ``psi_k ~ Dirichlet(xi)`` (1)
``phi_l``                 site ``phi``           L x K sample proportions, ``~ Dirichlet(sigma)`` (2)
``pi_l = Psi phi_l``      ``phi @ psi``          L x G gene probabilities (3)
``x_l``                   site ``x``             ``Multinomial(C_l, pi_l)`` (4), ``C_l`` = row total
``theta_i``               ``theta``              mean of ``phi_l`` over i's samples (5), K x N
``lambda_jk``             site ``lambda``        S x K SNP topics, ``~ Beta(zeta, gamma)`` (6)
``alpha``                 site ``alpha``         ``~ Uniform(delta, mu)`` (7)
``sum_q beta_jq tau_qi``  ``ancestry``           fixed S x N ancestry term ``A`` (8)
``rho_ij``                ``rho``                ``alpha A_ij + (1 - alpha) sum_k lambda_jk theta_ki`` (8)
``y_ij``                  site ``y``             ``Binomial(2, rho_ij)`` (9), missing entries masked
========================  =====================  ===========================================

The guide is the published mean-field family: ``q(psi_k) = Dirichlet(xi_q[k])``,
``q(phi_l) = Dirichlet(sigma_q[l])``, ``q(lambda_jk) = Beta(zeta_q, gamma_q)`` and a point
estimate (``Delta``) of ``alpha`` constrained to ``[delta, mu]``; every concentration starts
at 1 and ``alpha`` at 0.1. (The published code reuses the prior names for the variational
parameters; here they carry a ``_q`` suffix.)

These functions are the readable reference of the model. The estimator
(:class:`~tbeqtl.tblda.estimator.TBLDA`) optimises the *same* ELBO with the fused kernels
of :mod:`tbeqtl.tblda.kernels` and closed-form KL terms; ``tests/test_tblda_model.py``
checks that both give the same log joint density.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints

from .kernels import individual_proportions

__all__ = ["Hyperparameters", "ModelInputs", "guide", "model"]


@dataclass(frozen=True)
class Hyperparameters:
    """Prior hyperparameters of TBLDA (published defaults).

    Parameters
    ----------
    xi
        Symmetric Dirichlet concentration of the gene topics ``psi_k`` (equation 1).
    sigma
        Symmetric Dirichlet concentration of the sample proportions ``phi_l`` (equation 2).
    zeta, gamma
        Beta parameters of the SNP topic loadings ``lambda_jk`` (equation 6).
    delta, mu
        Lower and upper bound of the uniform prior of ``alpha`` (equation 7).
    """

    xi: float = 1.0
    sigma: float = 1.0
    zeta: float = 1.0
    gamma: float = 1.0
    delta: float = 0.05
    mu: float = 0.85


@dataclass(frozen=True)
class ModelInputs:
    """Tensors the model conditions on.

    Parameters
    ----------
    counts_t
        ``x`` as L x G (samples x genes).
    alt_t
        ``y`` as S x N with missing entries set to 0.
    mask_t
        S x N, 1 where the genotype is observed.
    ancestry_t
        ``A = beta tau`` as S x N.
    individual_index_t
        Individual of each sample (L, int64).
    inverse_count_t
        ``1 / n_i`` of each sample's individual (L).
    n_topics
        K.
    """

    counts_t: torch.Tensor
    alt_t: torch.Tensor
    mask_t: torch.Tensor
    ancestry_t: torch.Tensor
    individual_index_t: torch.Tensor
    inverse_count_t: torch.Tensor
    n_topics: int


def model(inputs: ModelInputs, hyper: Hyperparameters | None = None) -> None:
    """Run the TBLDA generative model (equations 1-9) as a Pyro program.

    Parameters
    ----------
    inputs
        Observed data and fixed ancestry term.
    hyper
        Prior hyperparameters (default: the published ones).
    """
    hyper = hyper or Hyperparameters()
    counts_t = inputs.counts_t
    n_samples, n_genes = counts_t.shape
    n_snps, n_individuals = inputs.alt_t.shape
    k = inputs.n_topics
    opts = {"dtype": counts_t.dtype, "device": counts_t.device}
    with pyro.plate("topics", k, dim=-1):
        psi_t = pyro.sample("psi", dist.Dirichlet(torch.full((n_genes,), hyper.xi, **opts)))
    with pyro.plate("samples", n_samples, dim=-1):
        phi_t = pyro.sample("phi", dist.Dirichlet(torch.full((k,), hyper.sigma, **opts)))
    with pyro.plate("snps", n_snps, dim=-2), pyro.plate("snp_topics", k, dim=-1):
        lambda_t = pyro.sample("lambda", dist.Beta(torch.tensor(hyper.zeta, **opts),
                                                   torch.tensor(hyper.gamma, **opts)))
    alpha_t = pyro.sample("alpha", dist.Uniform(torch.tensor(hyper.delta, **opts),
                                                torch.tensor(hyper.mu, **opts)))
    with pyro.plate("samples_x", n_samples, dim=-1):
        total = int(counts_t.sum(1).max().item())
        pyro.sample("x", dist.Multinomial(total, probs=phi_t @ psi_t, validate_args=False), obs=counts_t)
    theta_t = individual_proportions(phi_t, inputs.individual_index_t, inputs.inverse_count_t,
                                     n_individuals=n_individuals)
    rho_t = alpha_t * inputs.ancestry_t + (1 - alpha_t) * (lambda_t @ theta_t)
    with pyro.plate("snps_y", n_snps, dim=-2), pyro.plate("individuals", n_individuals, dim=-1):
        pyro.sample("y", dist.Binomial(2, probs=rho_t, validate_args=False).mask(inputs.mask_t.bool()),
                    obs=inputs.alt_t)


def guide(inputs: ModelInputs, hyper: Hyperparameters | None = None) -> None:
    """Run the published mean-field guide: Dirichlet, Dirichlet, Beta and a point ``alpha``.

    Parameters
    ----------
    inputs
        Observed data (only shapes are used).
    hyper
        Prior hyperparameters (``delta`` and ``mu`` bound ``alpha``).
    """
    hyper = hyper or Hyperparameters()
    n_samples, n_genes = inputs.counts_t.shape
    n_snps = inputs.alt_t.shape[0]
    k = inputs.n_topics
    opts = {"dtype": inputs.counts_t.dtype, "device": inputs.counts_t.device}
    xi_q = pyro.param("xi_q", torch.ones((k, n_genes), **opts), constraint=constraints.positive)
    sigma_q = pyro.param("sigma_q", torch.ones((n_samples, k), **opts), constraint=constraints.positive)
    zeta_q = pyro.param("zeta_q", torch.ones((n_snps, k), **opts), constraint=constraints.positive)
    gamma_q = pyro.param("gamma_q", torch.ones((n_snps, k), **opts), constraint=constraints.positive)
    alpha_q = pyro.param("alpha_q", torch.tensor(0.1, **opts),
                         constraint=constraints.interval(hyper.delta, hyper.mu))
    with pyro.plate("topics", k, dim=-1):
        pyro.sample("psi", dist.Dirichlet(xi_q))
    with pyro.plate("samples", n_samples, dim=-1):
        pyro.sample("phi", dist.Dirichlet(sigma_q))
    with pyro.plate("snps", n_snps, dim=-2), pyro.plate("snp_topics", k, dim=-1):
        pyro.sample("lambda", dist.Beta(zeta_q, gamma_q))
    pyro.sample("alpha", dist.Delta(alpha_q))
