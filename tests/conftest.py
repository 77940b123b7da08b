"""Shared fixtures: paths to ../shared/data and a seeded RNG per test."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real-data folder beside the checkout; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is not present")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator for each test."""
    return np.random.default_rng(20221123)


@pytest.fixture
def make_sample_map():
    """Return ``make(rng, n_individuals)``: a sample -> individual map, 1-6 samples per individual
    (``S<i>_<t>`` -> ``I<i>``), for the held-out design tests."""
    import pandas as pd

    def make(rng: np.random.Generator, n_individuals: int):
        rows = {}
        for i in range(n_individuals):
            for t in range(int(rng.integers(1, 7))):
                rows[f"S{i}_{t}"] = f"I{i}"
        return pd.Series(rows)

    return make


@contextlib.contextmanager
def _tbeqtl_logger_restored():
    """Undo what a CLI call's ``setup_logging`` does to the ``tbeqtl`` logger (handlers, propagation)."""
    logger = logging.getLogger("tbeqtl")
    state = (list(logger.handlers), logger.propagate, logger.level)
    yield
    for handler in list(logger.handlers):
        if handler not in state[0]:
            logger.removeHandler(handler)
            handler.close()
    for handler in state[0]:
        if handler not in logger.handlers:
            logger.addHandler(handler)
    logger.propagate, logger.level = state[1], state[2]


@pytest.fixture(autouse=True)
def _restore_tbeqtl_logger():
    """Per test, so that ``caplog`` sees records in every later test whatever the test order."""
    with _tbeqtl_logger_restored():
        yield


@pytest.fixture(autouse=True, scope="module")
def _restore_tbeqtl_logger_per_module():
    """Per module too: module-scoped fixtures that call the CLI run before the per-test fixture starts."""
    with _tbeqtl_logger_restored():
        yield
