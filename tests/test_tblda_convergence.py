"""Stopping rules: the published (compat) formula and the corrected default."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tbeqtl.errors import InputError
from tbeqtl.tblda.convergence import ConvergenceRule


def test_compat_formula_matches_published_definition():
    rule = ConvergenceRule(rule="compat", window=10, min_steps=0)
    losses = np.linspace(1000, 900, 40)
    x = losses[-10:].mean()
    y = losses[-20:-10].mean()
    z = losses[-20:].mean()
    assert rule.statistic(losses) == pytest.approx((y - x) / z)


def test_rising_loss_converges_under_compat_but_not_abs():
    rising = np.linspace(100, 200, 50)
    compat = ConvergenceRule(rule="compat", window=10, min_steps=0)
    fixed = ConvergenceRule(rule="abs", window=10, min_steps=0)
    assert compat.converged(compat.statistic(rising))  # the published rule's flaw
    assert not fixed.converged(fixed.statistic(rising))
    flat = np.full(50, 123.0)
    assert fixed.converged(fixed.statistic(flat))


def test_check_schedule_and_short_history():
    rule = ConvergenceRule(window=1000, min_steps=5000, check_every=25)
    assert not rule.should_check(5000)
    assert rule.should_check(5025)
    assert not rule.should_check(5026)
    assert math.isnan(rule.statistic(np.ones(10)))
    assert not rule.converged(math.nan)


def test_invalid_rule():
    with pytest.raises(InputError, match="unknown stop rule"):
        ConvergenceRule(rule="nope")
    with pytest.raises(InputError):
        ConvergenceRule(window=0)
