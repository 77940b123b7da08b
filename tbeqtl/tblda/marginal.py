"""The ancestry weight ``alpha`` by importance-weighted marginal likelihood (tensors only).

Why
    The published fit treats ``alpha`` (paper equation 7) as a point estimate that maximises
    the ELBO together with the mean-field posterior ``q(lambda_jk) = Beta(a_jk, b_jk)``. That
    estimate is biased upwards: the ELBO's expected log likelihood
    ``E_q[log p(y_j | lambda_j, alpha)]`` penalises the spread of ``q(lambda)`` through the term
    ``(1 - alpha) * Lambda Theta``, and a larger ``alpha`` shrinks that term. On the issue's
    simulated set (``alpha = 0.3``) both tbeqtl's SVI and the literal published recipe land at
    about 0.37; CAVI's looser bound at about 0.48.

What
    Here ``alpha`` is chosen to maximise an importance-sampling estimate of the *marginal*
    likelihood of the genotypes, with ``lambda`` integrated out under its Beta prior
    (equation 6) and ``Theta`` fixed at the fitted posterior mean::

        log p(y | alpha) = sum_j log E_{lambda_j ~ p}[prod_i Binomial(y_ij | 2, rho_ij)]
                        ~= sum_j log (1/M) sum_m p(y_j | lam_j^(m), alpha) p(lam_j^(m)) / r(lam_j^(m))

    with ``rho_ij = alpha * A_ij + (1 - alpha) * sum_k lambda_jk theta_ki`` (equation 8) and
    the proposal ``r`` the fitted ``q(lambda)``, optionally widened (concentrations times
    ``proposal_scale`` < 1, means kept). Mean-field posteriors, CAVI's in particular, are
    overconfident, so by default a pilot run picks the widening with the tightest bound. This
    is the importance-weighted bound of Burda et al. (2016); it tightens to the marginal
    likelihood as ``M`` grows, and the same ``M`` draws are used for every ``alpha`` (common
    random numbers), so the estimated curve is smooth in ``alpha``. The model is unchanged: only
    how its one global scalar is estimated.

    ``alpha`` is searched on a grid over ``[delta, mu]``, refined on a finer grid around the
    best point and finished by a parabola through the best three points. The effective sample
    size of the weights (per SNP, at the chosen ``alpha``) is returned as a diagnostic.

Measured (``tbeqtl.simulate.simulate(preset="small")``, the truth's ``Theta`` and ancestry,
``q(lambda)`` fitted at each fixed ``alpha``, M = 2,000): the ELBO rises monotonically from
``alpha`` 0.25 to 0.4, while the importance-weighted estimate peaks at 0.3 (the truth), median
ESS 700-1,000 of 2,000. At K = 50 (``simulate(preset="chromosome", n_genes=1124, n_samples=1500,
n_snps=2000, n_individuals=300, n_topics=50, seed=1)``, true ancestry, the default SVI fit with
iterate averaging, 10,000 steps): 0.3025 for a true 0.3 (the ELBO's estimate 0.3269), median ESS 151
and minimum 26.8 of 256 draws over 1,000 SNPs. With CAVI's overconfident ``q`` at chromosome-12
scale (K = 50) the weights degenerated (median ESS 6 of 256) and the estimate was 0.416; a warning
is logged when the median ESS falls below 10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .kernels import RHO_EPS

__all__ = ["PROPOSAL_SCALES", "AlphaEstimate", "estimate_alpha_marginal", "log_marginal_curve"]

#: Candidate widenings of the proposal (multipliers of the Beta concentrations ``a + b``).
PROPOSAL_SCALES = (1.0, 0.5, 0.25, 0.125)


@dataclass(frozen=True)
class AlphaEstimate:
    """Result of :func:`estimate_alpha_marginal`.

    Attributes
    ----------
    alpha : float
        The estimate of ``alpha``.
    alphas, log_marginal : numpy.ndarray
        Every ``alpha`` evaluated (sorted) and the estimated ``log p(y | alpha)`` summed over
        the SNPs used.
    ess_median, ess_min : float
        Median and minimum over SNPs of the importance weights' effective sample size at the
        grid point nearest ``alpha``.
    n_snps, n_particles : int
        SNPs used and importance samples ``M`` per SNP.
    proposal_scale : float
        Widening of the proposal used (see :func:`estimate_alpha_marginal`).
    """

    alpha: float
    alphas: np.ndarray
    log_marginal: np.ndarray
    ess_median: float
    ess_min: float
    n_snps: int
    n_particles: int
    proposal_scale: float


def _log_weight_prior_minus_q(log_x_t, log_1mx_t, *, q_a, q_b, prior_a: float, prior_b: float):
    """``sum_k [log Beta(x | prior) - log Beta(x | q)]`` per particle and SNP."""
    lbeta_q = torch.lgamma(q_a) + torch.lgamma(q_b) - torch.lgamma(q_a + q_b)
    lbeta_p = math.lgamma(prior_a) + math.lgamma(prior_b) - math.lgamma(prior_a + prior_b)
    terms = (prior_a - q_a) * log_x_t + (prior_b - q_b) * log_1mx_t + (lbeta_q - lbeta_p)
    return terms.sum(-1)


def log_marginal_curve(
    alphas_t: torch.Tensor,
    q_a: torch.Tensor,
    q_b: torch.Tensor,
    *,
    theta_t: torch.Tensor,
    ancestry_t: torch.Tensor,
    alt_t: torch.Tensor,
    ref_t: torch.Tensor,
    prior_a: float,
    prior_b: float,
    n_particles: int,
    generator: torch.Generator,
    chunk_elements: int = 2**24,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Importance-sampling estimate of ``log p(y_j | alpha)`` for every SNP and ``alpha``.

    Parameters
    ----------
    alphas_t
        The ``alpha`` values (length ``R``).
    q_a, q_b
        S x K Beta parameters of the proposal for ``lambda`` (e.g. the fitted ``q(lambda)``).
    theta_t
        K x N individual proportions ``Theta`` (equation 5), held fixed.
    ancestry_t
        S x N fixed ancestry term ``A = beta tau`` (equation 8).
    alt_t, ref_t
        S x N alternative-allele counts ``y_ij`` and ``2 - y_ij`` (both 0 where the genotype is
        missing, which masks it out).
    prior_a, prior_b
        Beta prior of ``lambda_jk`` (``zeta``, ``gamma``).
    n_particles
        ``M``, importance samples per SNP (the same draws for every ``alpha``).
    generator
        Source of the draws.
    chunk_elements
        Bound on the elements of one particles x SNPs x individuals block (memory).

    Returns
    -------
    log_marginal : torch.Tensor
        R x S float64 estimates of ``log p(y_j | alpha_r)`` (data constants excluded).
    ess : torch.Tensor
        R x S effective sample sizes of the weights.
    """
    n_snps, n_individuals = alt_t.shape
    n_alphas = alphas_t.shape[0]
    per_particle = max(n_snps * n_individuals, 1)
    chunk = max(1, min(int(n_particles), chunk_elements // per_particle))
    run_max = torch.full((n_alphas, n_snps), -math.inf, dtype=torch.float64)
    run_sum = torch.zeros((n_alphas, n_snps), dtype=torch.float64)
    run_sum_sq = torch.zeros((n_alphas, n_snps), dtype=torch.float64)
    q_a64, q_b64 = q_a.double(), q_b.double()
    q_ab = torch.stack([q_a64, q_b64], dim=-1)  # S x K x 2: one draw per particle, whatever the chunking
    done = 0
    while done < n_particles:
        m = min(chunk, n_particles - done)
        g_ab = torch._standard_gamma(q_ab.expand(m, -1, -1, -1).contiguous(), generator=generator)
        g_a, g_b = g_ab[..., 0], g_ab[..., 1]
        total = g_a + g_b
        x = (g_a / total).clamp_(1e-12, 1 - 1e-12)
        log_x = torch.log(g_a) - torch.log(total)
        log_1mx = torch.log(g_b) - torch.log(total)
        log_pq = _log_weight_prior_minus_q(log_x, log_1mx, q_a=q_a64, q_b=q_b64, prior_a=prior_a,
                                           prior_b=prior_b)  # m x S
        shared = x.to(theta_t.dtype) @ theta_t  # m x S x N
        for r in range(n_alphas):
            rho = torch.lerp(ancestry_t, shared, 1.0 - alphas_t[r]).clamp_(RHO_EPS, 1.0 - RHO_EPS)
            loglik = (alt_t * torch.log(rho)).sum(-1, dtype=torch.float64)
            loglik += (ref_t * torch.log1p(-rho)).sum(-1, dtype=torch.float64)
            log_w = loglik + log_pq  # m x S
            new_max = torch.maximum(run_max[r], log_w.max(0).values)
            scale = torch.exp(run_max[r] - new_max)
            run_sum[r] = run_sum[r] * scale + torch.exp(log_w - new_max).sum(0)
            run_sum_sq[r] = run_sum_sq[r] * scale**2 + torch.exp(2 * (log_w - new_max)).sum(0)
            run_max[r] = new_max
        done += m
    log_marginal = run_max + torch.log(run_sum) - math.log(n_particles)
    ess = run_sum**2 / run_sum_sq
    return log_marginal, ess


def _parabola_peak(x: np.ndarray, y: np.ndarray) -> float:
    """Vertex of the parabola through three points (the middle one the highest)."""
    (x0, x1, x2), (y0, y1, y2) = x, y
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denom
    if not a < 0:
        return float(x1)
    return float(np.clip(-b / (2 * a), x0, x2))


def estimate_alpha_marginal(
    q_a: torch.Tensor,
    q_b: torch.Tensor,
    *,
    theta_t: torch.Tensor,
    ancestry_t: torch.Tensor,
    alt_t: torch.Tensor,
    ref_t: torch.Tensor,
    prior_a: float,
    prior_b: float,
    delta: float,
    mu: float,
    n_particles: int = 256,
    max_snps: int = 1000,
    proposal_scale: float | None = None,
    alpha_hint: float | None = None,
    grid_size: int = 9,
    seed: int = 0,
) -> AlphaEstimate:
    """Estimate ``alpha`` by maximising the importance-weighted marginal likelihood.

    Parameters
    ----------
    q_a, q_b
        S x K fitted Beta parameters of ``q(lambda)``.
    theta_t, ancestry_t, alt_t, ref_t
        See :func:`log_marginal_curve`.
    prior_a, prior_b
        Beta prior of ``lambda`` (``zeta``, ``gamma``).
    delta, mu
        Bounds of ``alpha`` (equation 7).
    n_particles
        Importance samples per SNP.
    max_snps
        Use at most this many SNPs (a seeded random subset; ``alpha`` is one scalar, so a few
        thousand SNPs pin it down).
    proposal_scale
        Multiplies the proposal's concentrations ``a + b`` (means kept); values below 1 widen
        it, which keeps the weights stable when ``q`` is overconfident. ``None`` (default):
        the value among :data:`PROPOSAL_SCALES` that gives the largest (tightest) estimate of
        the log marginal likelihood in a pilot run (a quarter of the draws, at ``alpha_hint``).
    alpha_hint
        ``alpha`` of the pilot run (e.g. the ELBO's estimate); default the middle of
        ``[delta, mu]``.
    grid_size
        Points of the coarse grid over ``[delta, mu]`` and of the fine grid around its best
        point.
    seed
        Seed of the SNP subset and of the draws.

    Returns
    -------
    AlphaEstimate
        The estimate, the evaluated curve and the ESS diagnostic.
    """
    n_snps = q_a.shape[0]
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    if n_snps > max_snps:
        keep = torch.randperm(n_snps, generator=gen)[: int(max_snps)].sort().values
        q_a, q_b, ancestry_t, alt_t, ref_t = (t[keep] for t in (q_a, q_b, ancestry_t, alt_t, ref_t))
    tensors = {"theta_t": theta_t.cpu(), "ancestry_t": ancestry_t.cpu(), "alt_t": alt_t.cpu(),
               "ref_t": ref_t.cpu()}
    state = gen.get_state()
    if proposal_scale is None:
        hint = torch.tensor([(delta + mu) / 2 if alpha_hint is None else alpha_hint], dtype=theta_t.dtype)
        pilot = max(16, int(n_particles) // 4)
        best = -math.inf
        for scale in PROPOSAL_SCALES:
            gen.set_state(state)
            pilot_curve, _ = log_marginal_curve(hint, q_a.double().cpu() * scale, q_b.double().cpu() * scale,
                                        prior_a=prior_a, prior_b=prior_b, n_particles=pilot, generator=gen,
                                        **tensors)
            # the importance-weighted bound is a lower bound in expectation: the tightest wins
            if float(pilot_curve.sum()) > best:
                best, proposal_scale = float(pilot_curve.sum()), scale
    q_a = q_a.double().cpu() * proposal_scale
    q_b = q_b.double().cpu() * proposal_scale
    alphas: list[np.ndarray] = []
    values: list[np.ndarray] = []
    ess_rows: list[np.ndarray] = []
    grid = np.linspace(delta, mu, int(grid_size))
    for _ in range(2):
        gen.set_state(state)  # common random numbers across every alpha
        curve, ess = log_marginal_curve(
            torch.as_tensor(grid, dtype=tensors["theta_t"].dtype), q_a, q_b, prior_a=prior_a,
            prior_b=prior_b, n_particles=int(n_particles), generator=gen, **tensors)
        alphas.append(grid)
        values.append(curve.sum(1).numpy())
        ess_rows.append(ess.numpy())
        best = int(np.argmax(values[-1]))
        step = grid[1] - grid[0]
        grid = np.linspace(max(delta, grid[best] - step), min(mu, grid[best] + step), int(grid_size))
    all_alphas = np.concatenate(alphas)
    all_values = np.concatenate(values)
    all_ess = np.concatenate(ess_rows)
    all_alphas, first = np.unique(all_alphas, return_index=True)  # sorted; grids share end points
    all_values, all_ess = all_values[first], all_ess[first]
    best = int(np.argmax(all_values))
    if 0 < best < len(all_alphas) - 1:
        alpha = _parabola_peak(all_alphas[best - 1: best + 2], all_values[best - 1: best + 2])
    else:
        alpha = float(all_alphas[best])
    nearest = int(np.argmin(np.abs(all_alphas - alpha)))
    return AlphaEstimate(alpha=alpha, alphas=all_alphas, log_marginal=all_values,
                         ess_median=float(np.median(all_ess[nearest])), ess_min=float(all_ess[nearest].min()),
                         n_snps=int(q_a.shape[0]), n_particles=int(n_particles),
                         proposal_scale=float(proposal_scale))
