"""The default estimate of alpha is unbiased against the planted truth (issue 16, item 7).

The study behind the default (``benchmarks/alpha_study.py``, numbers in benchmarks/README.md)
compares the marginal-likelihood and ELBO estimates over 12 draws at three configurations (ELBO
bias +0.06 to +0.09, marginal within 0.001 of zero). This test fits its cheapest configuration
(alpha 0.35, N = 120, K = 8, Q = 3, true ancestry, 5,000 SVI steps) on 8 other draws with TBLDA's
*default* ``alpha_method`` and asserts that the mean error against each draw's planted alpha is
within two standard errors of zero (with 8 draws an unbiased estimator fails this about 8% of the
time; the draws are seeded, so on one platform the outcome is fixed).
"""

from __future__ import annotations

import math
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
#: Draws of the cheapest configuration, not among the study's (draws 1-12): two fits at a time,
#: 229 s on the 2-core machine with other jobs running (2026-12-02).
DRAWS = range(101, 109)


@pytest.fixture(scope="module")
def study():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import alpha_study
    finally:
        sys.path.remove(str(BENCHMARKS))
    return alpha_study


@pytest.mark.slow
def test_default_alpha_mean_error_within_two_standard_errors(study, monkeypatch):
    from tbeqtl.tblda import TBLDA

    config = study.CONFIGS["a035_n120"]
    # spawned workers import the study module by name; they inherit the parent's sys.path
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(study.fit_draw, [config] * len(DRAWS), DRAWS))
    assert {row["alpha_method"] for row in rows} == {TBLDA(2).alpha_method}  # the default was used
    truth = np.array([row["true_alpha"] for row in rows])
    # the truth is the simulation's planted alpha (read from sim.truth), not a constant of the test
    assert np.all(truth == config.alpha)
    errors = np.array([row["alpha"] for row in rows]) - truth
    summary = study.error_summary(errors)
    assert summary["n"] == len(DRAWS) and summary["se"] > 0
    assert abs(summary["mean"]) <= 2 * summary["se"], (summary, errors)
    assert math.isfinite(summary["rmse"])
    if rows[0]["alpha_method"] == "marginal":
        # the criterion has power: the published ELBO estimate of the same fits fails it
        elbo = study.error_summary(np.array([row["alpha_elbo"] for row in rows]) - truth)
        assert elbo["mean"] > 2 * elbo["se"], elbo
