"""Fused float32 ``lgamma``, ``digamma`` and ``trigamma`` terms of the TBLDA KL divergences.

The closed-form KL divergences of the mean-field posteriors (``q(psi_k)``, ``q(phi_l)``
Dirichlet and ``q(lambda_jk)`` Beta, see :mod:`tbeqtl.tblda.kernels`) evaluate ``lgamma`` and
``digamma`` of every variational concentration in the forward pass and ``trigamma`` in the
backward pass: about 1.8 million of each per SVI step at chromosome-12 scale. torch's CPU
implementations of these functions are scalar loops (22, 35 and 15 ns per float32 element on
this project's reference machine), which made the KL terms ~20% of a step.

This module writes each KL term as one elementwise expression in which the three functions
are evaluated with the standard shift-and-asymptotic-series method, and lets
``torch.compile`` (TorchInductor, which ships with torch and needs a C++ compiler at run
time) fuse every expression into one vectorised loop:

- shift: ``lgamma(c) = lgamma(c + 6) - log(c (c + 1) ... (c + 5))``,
  ``digamma(c) = digamma(c + 6) - sum_{i<6} 1 / (c + i)`` and
  ``trigamma(c) = trigamma(c + 6) + sum_{i<6} 1 / (c + i)^2`` (the recurrences of the
  Gamma function), with the products and sums taken in pairs;
- series at ``z = c + 6 >= 6``: Stirling's series for ``lgamma`` written as
  ``(z - 1/2)(log z - 1) - 1/2 + log(2 pi)/2 + 1/(12 z) - 1/(360 z^3) + 1/(1260 z^5) -
  1/(1680 z^7)`` and the corresponding asymptotic series of ``digamma`` (to ``z^-8``) and
  ``trigamma`` (to ``z^-9``), whose truncation errors at ``z >= 6`` are below 1e-9;
- for ``c >= 1e15`` (where the shift products would overflow float32) ``lgamma`` uses the
  series at ``c`` itself.

Accuracy, float32 arithmetic, tested against ``scipy.special`` over 1e-6 to 1e12 in
``tests/test_tblda_special.py``: ``lgamma`` within 4e-6 * max(1, |lgamma|) (the
cancellation near its zeros at 1 and 2; torch's float32 ``lgamma`` is within 6e-8), ``digamma``
and ``trigamma`` within 1e-6 * max(1, |value|), as torch's. The KL terms are summed in
float64. In a loss of order 1e7-1e9 summed over 1e6-1e7 float32 likelihood terms these
differences are far below the Monte Carlo noise of one step.

The fused path is used for float32 CPU tensors of at least :data:`FUSED_MIN_ELEMENTS`
elements (below that, compiling does not pay off); other sizes, dtypes and devices (including the
float64 gradient checks of the tests, and the CAVI bound of :mod:`tbeqtl.tblda.cavi`, which
must not decrease and is computed in float64) use torch's own functions. If ``torch.compile`` fails
(for example no C++ compiler), the same expressions run eagerly (slower, identical formulas)
after a logged warning. Setting the environment variable ``TBEQTL_COMPILE=0`` selects the
eager expressions without compiling.
"""

from __future__ import annotations

import logging
import math
import os
import threading

import torch

__all__ = ["FUSED_MIN_ELEMENTS", "beta_kl_grads", "beta_kl_terms", "dirichlet_kl_grads", "dirichlet_kl_terms",
           "fused_available", "lgamma_digamma", "trigamma", "uses_fused_path"]

logger = logging.getLogger(__name__)

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
#: Above this, ``lgamma`` uses Stirling's series at ``c`` itself (the shift products would
#: overflow float32 near 1.8e19).
_LARGE = 1e15
_SHIFT = 6.0
#: Smallest KL input (elements) for which the fused expressions are used.
FUSED_MIN_ELEMENTS = 32768


def lgamma_digamma(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lgamma(c), digamma(c))`` by the recurrence shift to ``c + 6`` and the asymptotic series.

    Parameters
    ----------
    c
        Positive values (any shape, floating point).

    Returns
    -------
    tuple of torch.Tensor
        ``lgamma(c)`` and ``digamma(c)``, same shape and dtype as ``c``.
    """
    p01 = c * (c + 1.0)
    p23 = (c + 2.0) * (c + 3.0)
    p45 = (c + 4.0) * (c + 5.0)
    log_prod = torch.log(p01) + torch.log(p23) + torch.log(p45)
    # sum_{i<6} 1/(c+i) in pairs: 1/(c+i) + 1/(c+i+1) = (2c+2i+1) / ((c+i)(c+i+1))
    c2 = 2.0 * c
    recip_sum = (c2 + 1.0) / p01 + (c2 + 5.0) / p23 + (c2 + 9.0) / p45
    z = torch.where(c < _LARGE, c + _SHIFT, c)
    r = 1.0 / z
    r2 = r * r
    log_z = torch.log(z)
    lg = ((z - 0.5) * (log_z - 1.0) + (_HALF_LOG_2PI - 0.5)
          + r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (1.0 / 1680.0)))))
    lg = torch.where(c < _LARGE, lg - log_prod, lg)
    dg = (log_z - 0.5 * r - r2 * (1.0 / 12.0 - r2 * (1.0 / 120.0 - r2 * (1.0 / 252.0 - r2 * (1.0 / 240.0))))
          - recip_sum)
    return lg, dg


def trigamma(c: torch.Tensor) -> torch.Tensor:
    """``trigamma(c) = psi_1(c)`` by the recurrence shift to ``c + 6`` and the asymptotic series.

    Parameters
    ----------
    c
        Positive values (any shape, floating point).

    Returns
    -------
    torch.Tensor
        ``psi_1(c)``, same shape and dtype as ``c``.
    """
    z = c + _SHIFT
    r = 1.0 / z
    r2 = r * r
    out = r * (1.0 + r * (0.5 + r * (1.0 / 6.0 - r2 * (1.0 / 30.0 - r2 * (1.0 / 42.0 - r2 * (1.0 / 30.0))))))
    for i in range(int(_SHIFT)):
        u = 1.0 / (c + float(i))
        out = out + u * u
    return out


# ----------------------------------------------------------------------------- KL terms
def _dirichlet_terms(c: torch.Tensor, dg_total: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    lg, dg = lgamma_digamma(c)
    return (c - prior) * (dg - dg_total) - lg


def _dirichlet_grads(c: torch.Tensor, row_term: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    return trigamma(c) * (c - prior) - row_term


def _beta_terms(a: torch.Tensor, b: torch.Tensor, prior_a: torch.Tensor,
                prior_b: torch.Tensor) -> torch.Tensor:
    lg_a, dg_a = lgamma_digamma(a)
    lg_b, dg_b = lgamma_digamma(b)
    lg_t, dg_t = lgamma_digamma(a + b)
    return lg_t - lg_a - lg_b + (a - prior_a) * (dg_a - dg_t) + (b - prior_b) * (dg_b - dg_t)


def _beta_grads(a: torch.Tensor, b: torch.Tensor, prior_a: torch.Tensor,
                prior_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    total = a + b
    common = trigamma(total) * (total - (prior_a + prior_b))
    return trigamma(a) * (a - prior_a) - common, trigamma(b) * (b - prior_b) - common


def _compile_disabled() -> bool:
    return os.environ.get("TBEQTL_COMPILE", "1") == "0"


class _Fused:
    """An elementwise expression, compiled by ``torch.compile`` on first use (eager on failure)."""

    _lock = threading.Lock()

    def __init__(self, fn) -> None:
        self.fn = fn
        self.compiled = None
        self.failed = False

    def __call__(self, *args):
        # the expressions run inside autograd Functions: never trace autograd state
        args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
        if self.failed or _compile_disabled():
            return self.fn(*args)
        if self.compiled is None:
            with self._lock:
                if self.compiled is None:
                    self.compiled = torch.compile(self.fn, dynamic=True, fullgraph=True)
        try:
            return self.compiled(*args)
        except Exception as exc:  # noqa: BLE001 - inductor needs a C++ toolchain; fall back to eager
            self.failed = True
            logger.warning("torch.compile of %s failed (%s: %s); using the eager expressions (slower)",
                           self.fn.__name__, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            return self.fn(*args)


_DIRICHLET_TERMS = _Fused(_dirichlet_terms)
_DIRICHLET_GRADS = _Fused(_dirichlet_grads)
_BETA_TERMS = _Fused(_beta_terms)
_BETA_GRADS = _Fused(_beta_grads)


def uses_fused_path(*tensors: torch.Tensor) -> bool:
    """Whether the fused expressions apply: float32 CPU tensors of at least :data:`FUSED_MIN_ELEMENTS`.

    Smaller KL terms keep torch's functions: compiling costs ~5 s (warm torch cache) to ~25 s
    (cold) once per process and saves ~50 ns per element and step, so it pays off only for
    chromosome-scale problems run for thousands of steps.

    Parameters
    ----------
    *tensors
        The KL inputs.

    Returns
    -------
    bool
        ``True`` for float32 CPU tensors with at least :data:`FUSED_MIN_ELEMENTS` elements
        each; other inputs use torch's ``lgamma``/``digamma``/``polygamma``.
    """
    return all(t.dtype == torch.float32 and t.device.type == "cpu" and t.numel() >= FUSED_MIN_ELEMENTS
               for t in tensors)


def fused_available() -> bool:
    """Whether the compiled expressions are in use (not disabled, no compile failure so far).

    Returns
    -------
    bool
        ``False`` when ``TBEQTL_COMPILE=0`` or a ``torch.compile`` attempt has failed.
    """
    if _compile_disabled():
        return False
    return not any(k.failed for k in (_DIRICHLET_TERMS, _DIRICHLET_GRADS, _BETA_TERMS, _BETA_GRADS))


def _scalar(value: float, like: torch.Tensor) -> torch.Tensor:
    # 0-d tensors, not Python floats: torch.compile specialises on float arguments
    return torch.tensor(float(value), dtype=like.dtype, device=like.device)


def dirichlet_kl_terms(c: torch.Tensor, dg_total: torch.Tensor, *, prior: float) -> torch.Tensor:
    """Per-entry ``(c_j - p)(digamma(c_j) - digamma(T)) - lgamma(c_j)`` of a Dirichlet KL.

    Parameters
    ----------
    c
        Posterior concentrations (rows x D), float32 on the CPU.
    dg_total
        ``digamma(T)`` of each row's total ``T`` (rows x 1).
    prior
        Symmetric prior concentration ``p``.

    Returns
    -------
    torch.Tensor
        The terms, same shape as ``c``.
    """
    return _DIRICHLET_TERMS(c, dg_total, _scalar(prior, c))


def dirichlet_kl_grads(c: torch.Tensor, row_term: torch.Tensor, *, prior: float) -> torch.Tensor:
    """Gradient ``trigamma(c_j) (c_j - p) - row_term`` of a Dirichlet KL in ``c_j``.

    Parameters
    ----------
    c
        Posterior concentrations (rows x D), float32 on the CPU.
    row_term
        ``trigamma(T) (T - p D)`` of each row (rows x 1).
    prior
        Symmetric prior concentration ``p``.

    Returns
    -------
    torch.Tensor
        The gradient, same shape as ``c``.
    """
    return _DIRICHLET_GRADS(c, row_term, _scalar(prior, c))


def beta_kl_terms(a: torch.Tensor, b: torch.Tensor, *, prior_a: float, prior_b: float) -> torch.Tensor:
    """Per-entry ``KL(Beta(a, b) || Beta(p_a, p_b))`` without its constant ``-log B(p_a, p_b)``.

    Parameters
    ----------
    a, b
        Posterior Beta parameters (same shape), float32 on the CPU.
    prior_a, prior_b
        Prior parameters.

    Returns
    -------
    torch.Tensor
        ``lgamma(a + b) - lgamma(a) - lgamma(b) + (a - p_a)(digamma(a) - digamma(a + b)) +
        (b - p_b)(digamma(b) - digamma(a + b))``, same shape as ``a``.
    """
    return _BETA_TERMS(a, b, _scalar(prior_a, a), _scalar(prior_b, a))


def beta_kl_grads(a: torch.Tensor, b: torch.Tensor, *, prior_a: float,
                  prior_b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the Beta KL terms in ``a`` and ``b``.

    Parameters
    ----------
    a, b
        Posterior Beta parameters (same shape), float32 on the CPU.
    prior_a, prior_b
        Prior parameters.

    Returns
    -------
    tuple of torch.Tensor
        ``(a - p_a) psi_1(a) - (a + b - p_a - p_b) psi_1(a + b)`` and the same with ``a`` and ``b``
        exchanged.
    """
    return _BETA_GRADS(a, b, _scalar(prior_a, a), _scalar(prior_b, a))
