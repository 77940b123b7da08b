"""Iterate averaging of the SVI parameters: the recursion against its closed form, and the estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tbeqtl.errors import InputError
from tbeqtl.simulate import simulate
from tbeqtl.tblda import TBLDA
from tbeqtl.tblda.averaging import IterateAverage
from tbeqtl.tblda.checkpoint import CHECKPOINT_NAME


def _run(values: np.ndarray, window: int) -> np.ndarray:
    """Feed the rows of ``values`` as successive iterates; return the average after each."""
    p = torch.tensor(values[0], dtype=torch.float64)
    avg = IterateAverage({"p": p}, window=window)
    out = []
    for row in values:
        p.copy_(torch.from_numpy(row))
        avg.update()
        out.append(avg.values()["p"].numpy().copy())
    return np.array(out)


def test_average_is_the_mean_of_the_last_iterates(rng):
    """After every step the report is the plain mean of the last m iterates, with
    min(W, t // 2) - W // 8 < m <= min(W, t // 2), or the last iterate while t < 2 * (W // 8)."""
    window, block = 16, 2
    values = rng.standard_normal((70, 5))
    got = _run(values, window)
    for t in range(1, 71):
        limit = min(window, t // 2)
        if limit < block and t < 2 * block:
            np.testing.assert_array_equal(got[t - 1], values[t - 1])
            continue
        means = {m: values[t - m:t].mean(axis=0) for m in range(max(1, limit - block + 1), limit + 1)}
        assert any(np.allclose(got[t - 1], mean, rtol=1e-12, atol=1e-12) for mean in means.values()), t
    # a long run covers exactly the last W iterates at a block boundary
    np.testing.assert_allclose(got[-1], values[-16:].mean(axis=0), rtol=1e-12)


def test_window_zero_and_one_report_the_last_iterate(rng):
    values = rng.standard_normal((10, 4))
    np.testing.assert_array_equal(_run(values, 1), values)
    np.testing.assert_array_equal(_run(values, 0), values)


def test_state_round_trip_and_mismatch():
    p = torch.zeros(3)
    avg = IterateAverage({"p": p}, window=16)
    for value in (1.0, 2.0, 6.0, 3.0, 8.0, 4.0, 5.0):
        p.fill_(value)
        avg.update()
    assert avg.span() == 3  # min(16, 7 // 2) = 3: the partial block of 1 plus one block of 2
    torch.testing.assert_close(avg.values()["p"], torch.full((3,), 17.0 / 3))
    other = IterateAverage({"p": torch.zeros(3)}, window=16)
    other.load_state_dict(avg.state_dict())
    assert other.step == 7 and other.span() == 3
    torch.testing.assert_close(other.values()["p"], avg.values()["p"])
    with pytest.raises(InputError, match="averaging window"):
        IterateAverage({"p": torch.zeros(3)}, window=5).load_state_dict(avg.state_dict())
    assert IterateAverage({"p": p}, window=0).span() == 0
    with pytest.raises(InputError, match=">= 0"):
        IterateAverage({"p": p}, window=-1)


@pytest.fixture(scope="module")
def tiny():
    return simulate(preset="tiny", n_cis=0, n_trans=0, covariate_effects=False, seed=1)


def _fit(sim, **kwargs):
    torch.set_num_threads(1)
    model = TBLDA(3, max_steps=120, min_steps=0, window=20, tol=1e-12, alpha_method="elbo",
                  progress=False, random_state=4, **{k: v for k, v in kwargs.items() if k != "fit"})
    return model.fit(sim.data, ancestry=(sim.truth.ancestry_beta_df, sim.truth.ancestry_tau_df),
                     **kwargs.get("fit", {}))


def test_estimator_reports_the_average_of_its_iterates(tiny, tmp_path):
    last = _fit(tiny, average_window=0)
    one = _fit(tiny, average_window=1)
    # every iterate, read from a checkpoint written after each step (the callback of step t sees the
    # checkpoint of step t - 1; the final one holds step 120)
    iterates = []

    def grab(step, loss):
        if step > 1:
            iterates.append(torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["params"])

    averaged = _fit(tiny, average_window=32, checkpoint_every=1,
                    fit={"checkpoint_dir": tmp_path, "callback": grab})
    iterates.append(torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["params"])
    assert len(iterates) == 120
    # the optimisation is the same: identical losses, and window 1 is the last iterate exactly
    np.testing.assert_array_equal(averaged.elbo_, last.elbo_)
    np.testing.assert_array_equal(one.elbo_, last.elbo_)
    pd.testing.assert_frame_equal(one.gene_concentration_, last.gene_concentration_)
    np.testing.assert_allclose(np.log(last.snp_beta_a_.to_numpy()),
                               iterates[-1]["log_zeta"].double().numpy(), rtol=0, atol=1e-6)
    # the report is the mean of the last 32 iterates' log concentrations (120 steps: blocks of 4 end at 120)
    averaged_span = 32
    for name, reported in (("log_zeta", averaged.snp_beta_a_), ("log_xi", averaged.gene_concentration_.T),
                           ("log_sigma", averaged.sample_concentration_)):
        stack = np.stack([it[name].double().numpy() for it in iterates])
        expected = stack[-averaged_span:].mean(axis=0)
        np.testing.assert_allclose(np.log(reported.to_numpy()), expected, rtol=0, atol=2e-5)
    assert np.abs(np.log(averaged.snp_beta_a_.to_numpy()) - np.log(last.snp_beta_a_.to_numpy())).max() > 1e-3
    with pytest.raises(InputError, match="average_window"):
        _fit(tiny, average_window=-3)
