"""TBLDA estimator: recovery of planted topics, input errors, missing genotypes, save/load, checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from tbeqtl.data import EQTLData
from tbeqtl.errors import InputError
from tbeqtl.simulate import simulate
from tbeqtl.tblda import TBLDA
from tbeqtl.tblda.checkpoint import CHECKPOINT_NAME

#: Issue 4: |alpha - truth| <= 0.05. The ELBO's point estimate is biased upwards (about 0.37 for a
#: true 0.3 on this size, by tbeqtl's SVI and by the literal published recipe alike); the default
#: alpha_method="marginal" estimate (tbeqtl.tblda.marginal) removes the bias (0.305 on seed 0).
ALPHA_TOLERANCE = 0.05
#: SNP topics: the issue quotes matched r "about 0.5-0.7" for the published recipe at this size, but
#: on this simulator's draws the literal published recipe reaches 0.39 and so does the *oracle*
#: (per-SNP maximum likelihood of lambda given the TRUE Theta, ancestry and alpha: 0.37 on seed 0,
#: 0.34 on seed 1): with N = 100 individuals each lambda_jk is learned from 100 genotypes, so 0.5-0.7
#: is above the information in the data (the oracle reaches 0.60 at N = 400). The test asks the fit
#: to reach the oracle's ceiling on the same draw.
ORACLE_FRACTION = 0.95


def oracle_snp_recovery(sim) -> float:
    """Mean r of the per-SNP ML lambda given the true Theta, ancestry and alpha (an information ceiling)."""
    geno = sim.data.genotype_df
    y_t = torch.as_tensor(geno.to_numpy(), dtype=torch.float64)
    theta_t = torch.as_tensor(sim.truth.individual_topics_df.loc[geno.columns].to_numpy().T)
    beta = sim.truth.ancestry_beta_df.loc[geno.index].to_numpy()
    tau = sim.truth.ancestry_tau_df.loc[geno.columns].to_numpy()
    anc_t = torch.as_tensor(beta @ tau.T)
    true_lam = sim.truth.snp_topics_df.loc[geno.index].to_numpy()
    alpha = sim.truth.alpha
    logit_t = torch.zeros(true_lam.shape, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([logit_t], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        rho_t = alpha * anc_t + (1 - alpha) * torch.sigmoid(logit_t) @ theta_t
        nll = -(y_t * torch.log(rho_t) + (2 - y_t) * torch.log1p(-rho_t)).sum()
        nll.backward()
        return nll

    for _ in range(5):
        opt.step(closure)
    lam = torch.sigmoid(logit_t).detach().numpy()
    return float(np.mean([np.corrcoef(lam[:, k], true_lam[:, k])[0, 1] for k in range(lam.shape[1])]))


def matched_correlations(est_df: pd.DataFrame, true_df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian-matched Pearson r of estimated vs true topic columns; returns (r, true column per topic)."""
    est = est_df.to_numpy()
    true = true_df.loc[est_df.index].to_numpy()
    k = est.shape[1]
    corr = np.corrcoef(est.T, true.T)[:k, k:]
    rows, cols = linear_sum_assignment(-corr)
    return corr[rows, cols], cols


def _sim(preset, seed=1):
    return simulate(preset=preset, n_cis=0, n_trans=0, covariate_effects=False, seed=seed)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: tiny problems are overhead-bound, and a shared CPU punishes spinning threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return _sim("tiny")


def _truth_ancestry(sim):
    return sim.truth.ancestry_beta_df, sim.truth.ancestry_tau_df


def test_tiny_fit_recovers_planted_topics(tiny):
    k = tiny.truth.gene_topics_df.shape[1]
    model = TBLDA(k, max_steps=800, min_steps=500, window=200, random_state=0, progress=False)
    model.fit(tiny.data, ancestry=_truth_ancestry(tiny))
    r_gene, perm = matched_correlations(model.gene_topics_, tiny.truth.gene_topics_df)
    r_sample, _ = matched_correlations(model.sample_topics_, tiny.truth.sample_topics_df)
    assert r_gene.min() > 0.95, r_gene
    assert r_sample.min() > 0.95, r_sample
    assert abs(model.alpha_ - tiny.truth.alpha) < 0.1
    # fitted attributes are labelled by IDs and consistent
    assert list(model.gene_topics_.index) == list(tiny.data.genes)
    assert list(model.individual_topics_.index) == list(tiny.data.individuals)
    np.testing.assert_allclose(model.gene_topics_.sum(axis=0), 1)
    np.testing.assert_allclose(model.sample_topics_.sum(axis=1), 1)
    first = tiny.data.individuals[0]
    own = tiny.data.sample_map_s.index[tiny.data.sample_map_s == first]
    np.testing.assert_allclose(model.individual_topics_.loc[first], model.sample_topics_.loc[own].mean())
    assert len(model.elbo_) == model.n_iter_ and model.stop_reason_ in {"converged", "max_steps"}
    assert np.isfinite(model.elbo_).all()
    assert model.elbo_[-200:].mean() > model.elbo_[:200].mean()


@pytest.mark.slow
def test_small_fit_meets_recovery_targets():
    """Issue 4 target: G=200, 300 samples / 100 individuals, 500 SNPs, K=10, Q=3, alpha=0.3."""
    sim = _sim("small", seed=1)
    model = TBLDA(10, random_state=0, progress=False).fit(sim.data, ancestry=_truth_ancestry(sim))
    r_gene, perm = matched_correlations(model.gene_topics_, sim.truth.gene_topics_df)
    r_sample, _ = matched_correlations(model.sample_topics_, sim.truth.sample_topics_df)
    lam = model.snp_topics_.to_numpy()
    true_lam = sim.truth.snp_topics_df.loc[model.snp_topics_.index].to_numpy()
    r_snp = np.array([np.corrcoef(lam[:, k], true_lam[:, perm[k]])[0, 1] for k in range(10)])
    assert r_gene.min() >= 0.99, r_gene
    assert r_sample.min() >= 0.99, r_sample
    assert abs(model.alpha_ - sim.truth.alpha) <= ALPHA_TOLERANCE, (model.alpha_, model.alpha_elbo_)
    assert r_snp.mean() >= ORACLE_FRACTION * oracle_snp_recovery(sim), r_snp


def test_internal_ancestry_estimate_is_used_without_files(tiny):
    """Without ancestry files the fit uses the EM admixture estimate of beta and tau.

    alpha is not compared with the truth here: with an ancestry fitted to the same genotypes
    (a per-SNP, per-individual maximum-likelihood admixture; on this draw its tau correlates
    only 0.27 with the planted one), the ancestry term already explains the genotype variation
    that lambda @ theta would, and the marginal estimate sits at the upper bound mu = 0.85 for
    every draw measured (tiny preset, seeds 1-10, 50 and 500 steps; also N = 200 individuals,
    600 SNPs), against 0.26-0.39 with the true ancestry. The alpha
    tests against the truth use the true ancestry (test_small_fit_meets_recovery_targets,
    test_tblda_cavi.py, test_tblda_cli.py, test_tblda_marginal.py).
    """
    from tbeqtl.tblda.ancestry import estimate_ancestry

    model = TBLDA(3, n_ancestry=2, max_steps=50, progress=False).fit(tiny.data)
    beta_df, tau_df = estimate_ancestry(tiny.data.genotype_df, n_ancestry=2, seed=model.random_state)
    pd.testing.assert_frame_equal(model.ancestry_beta_, beta_df, check_names=False)
    pd.testing.assert_frame_equal(model.ancestry_tau_, tau_df, check_names=False)


def test_missing_genotypes_are_masked(tiny):
    geno = tiny.data.genotype_df.copy()
    rng = np.random.default_rng(0)
    geno = geno.mask(rng.random(geno.shape) < 0.1)
    data = tiny.data.replace(genotype_df=geno)
    model = TBLDA(3, max_steps=100, progress=False).fit(data, ancestry=_truth_ancestry(tiny))
    assert np.isfinite(model.elbo_).all()
    assert np.isfinite(model.snp_topics_.to_numpy()).all()


def test_input_errors(tiny):
    data = tiny.data
    with pytest.raises(InputError, match="n_topics"):
        TBLDA(0).fit(data)
    with pytest.raises(InputError, match="delta < mu"):
        TBLDA(2, delta=0.9, mu=0.5).fit(data)
    with pytest.raises(InputError, match="checkpoint_dir"):
        TBLDA(2).fit(data, resume=True)
    # an individual without samples (bypassing EQTLData's own validation)
    extra = data.genotype_df.assign(LONELY=0.0)
    bad = EQTLData(data.counts_df, extra, data.sample_map_s, data.sample_info_df, data.individual_info_df,
                   data.gene_info_df, data.snp_info_df)
    with pytest.raises(InputError, match="LONELY"):
        TBLDA(2, max_steps=1, progress=False).fit(bad, ancestry=None)
    # a sample whose individual has no genotypes
    smap = data.sample_map_s.copy()
    smap.iloc[0] = "GHOST"
    bad = EQTLData(data.counts_df, data.genotype_df, smap, data.sample_info_df, data.individual_info_df,
                   data.gene_info_df, data.snp_info_df)
    with pytest.raises(InputError, match=str(smap.index[0])):
        TBLDA(2, max_steps=1, progress=False).fit(bad)
    beta, tau = _truth_ancestry(tiny)
    with pytest.raises(InputError, match="pair"):
        TBLDA(2, max_steps=1, progress=False).fit(data, ancestry=beta)


def test_same_seed_same_fit_and_order_of_samples_irrelevant_to_ids(tiny):
    kwargs = dict(max_steps=60, progress=False, random_state=5)
    a = TBLDA(3, **kwargs).fit(tiny.data, ancestry=_truth_ancestry(tiny))
    b = TBLDA(3, **kwargs).fit(tiny.data, ancestry=_truth_ancestry(tiny))
    pd.testing.assert_frame_equal(a.gene_topics_, b.gene_topics_)
    c = TBLDA(3, **{**kwargs, "random_state": 6}).fit(tiny.data, ancestry=_truth_ancestry(tiny))
    assert not np.allclose(a.gene_topics_.to_numpy(), c.gene_topics_.to_numpy())


def test_save_load_roundtrip_gives_identical_topics(tiny, tmp_path):
    model = TBLDA(3, max_steps=40, progress=False).fit(tiny.data, ancestry=_truth_ancestry(tiny))
    model.save(tmp_path / "m")
    loaded = TBLDA.load(tmp_path / "m")
    for attr in ("gene_topics_", "sample_topics_", "snp_topics_", "individual_topics_", "gene_concentration_",
                 "ancestry_beta_", "ancestry_tau_"):
        pd.testing.assert_frame_equal(getattr(loaded, attr), getattr(model, attr), check_names=False)
    assert loaded.alpha_ == model.alpha_
    np.testing.assert_array_equal(loaded.elbo_, model.elbo_)
    assert loaded.get_params() == model.get_params()
    with pytest.raises(InputError, match="not a saved TBLDA model"):
        TBLDA.load(tmp_path / "nothing")


class _Interrupt(RuntimeError):
    pass


def test_resume_after_interruption_is_bit_for_bit(tiny, tmp_path):
    # average_window 25 < the 80 checkpointed steps: the iterate average (an EMA by then) is resumed too
    kwargs = dict(max_steps=130, checkpoint_every=40, min_steps=0, window=20, check_every=10, tol=1e-12,
                  average_window=25, progress=False, random_state=2)
    ancestry = _truth_ancestry(tiny)
    full = TBLDA(3, **kwargs).fit(tiny.data, ancestry=ancestry)

    def boom(step, loss):
        if step == 97:
            raise _Interrupt("killed")

    with pytest.raises(_Interrupt):
        TBLDA(3, **kwargs).fit(tiny.data, ancestry=ancestry, checkpoint_dir=tmp_path, callback=boom)
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 80 and state["done"] == ""
    resumed = TBLDA(3, **kwargs).fit(tiny.data, ancestry=ancestry, checkpoint_dir=tmp_path, resume=True)
    assert resumed.n_iter_ == full.n_iter_ == 130
    pd.testing.assert_frame_equal(resumed.gene_concentration_, full.gene_concentration_)
    pd.testing.assert_frame_equal(resumed.sample_concentration_, full.sample_concentration_)
    pd.testing.assert_frame_equal(resumed.snp_beta_a_, full.snp_beta_a_)
    assert resumed.alpha_ == full.alpha_
    np.testing.assert_array_equal(resumed.elbo_, full.elbo_)
    pd.testing.assert_frame_equal(resumed.convergence_, full.convergence_)
    # the final save is written at the step limit
    state = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert state["step"] == 130 and state["done"] == "max_steps"
    # a run that hit its step limit is extended bit for bit by resuming with a larger limit
    longer = TBLDA(3, **{**kwargs, "max_steps": 150}).fit(tiny.data, ancestry=ancestry)
    extended = TBLDA(3, **{**kwargs, "max_steps": 150}).fit(tiny.data, ancestry=ancestry,
                                                           checkpoint_dir=tmp_path, resume=True)
    pd.testing.assert_frame_equal(extended.gene_concentration_, longer.gene_concentration_)
    np.testing.assert_array_equal(extended.elbo_, longer.elbo_)
    # a checkpoint from other settings is refused
    with pytest.raises(InputError, match="n_topics"):
        TBLDA(4, **kwargs).fit(tiny.data, ancestry=ancestry, checkpoint_dir=tmp_path, resume=True)


_CHILD = """
import sys, torch
torch.set_num_threads(int(sys.argv[2]))
from tbeqtl.simulate import simulate
from tbeqtl.tblda import TBLDA
sim = simulate(preset="tiny", n_cis=0, n_trans=0, covariate_effects=False, seed=1)
TBLDA(3, max_steps=int(sys.argv[3]), checkpoint_every=25, progress=False, random_state=2).fit(
    sim.data, ancestry=(sim.truth.ancestry_beta_df, sim.truth.ancestry_tau_df), checkpoint_dir=sys.argv[1])
"""


def test_killed_process_resumes_to_the_uninterrupted_result(tiny, tmp_path):
    steps = 3000
    threads = torch.get_num_threads()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path), str(threads), str(steps)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / CHECKPOINT_NAME
    deadline = time.monotonic() + 120
    try:
        while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert checkpoint.exists(), "the child wrote no checkpoint"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = torch.load(checkpoint, weights_only=True)
    if state["done"]:
        pytest.skip("the child finished before it could be killed")  # pragma: no cover
    killed_at = state["step"]
    assert 0 < killed_at < steps
    resume_steps = killed_at + 30
    kwargs = dict(checkpoint_every=25, progress=False, random_state=2)
    ancestry = _truth_ancestry(tiny)
    resumed = TBLDA(3, max_steps=resume_steps, **kwargs).fit(tiny.data, ancestry=ancestry,
                                                             checkpoint_dir=tmp_path, resume=True)
    full = TBLDA(3, max_steps=resume_steps, **kwargs).fit(tiny.data, ancestry=ancestry)
    pd.testing.assert_frame_equal(resumed.gene_concentration_, full.gene_concentration_)
    pd.testing.assert_frame_equal(resumed.snp_beta_b_, full.snp_beta_b_)
    np.testing.assert_array_equal(resumed.elbo_, full.elbo_)


def test_model_docstring_names_paper_symbols():
    from tbeqtl.tblda import model as model_module

    symbols = ("psi", "phi", "theta", "lambda", "alpha", "rho", "xi", "sigma", "zeta", "gamma", "delta", "mu")
    for symbol in symbols:
        assert symbol in model_module.__doc__
    Path(model_module.__file__)


def test_tblda_defaults_have_one_source():
    """max_steps and the learning rate default to tbeqtl.tblda.choices everywhere they are offered."""
    from tbeqtl.cli import build_parser
    from tbeqtl.pipeline.config import PipelineConfig
    from tbeqtl.tblda.choices import LEARNING_RATE, MAX_STEPS

    assert (MAX_STEPS, LEARNING_RATE) == (65_100, 0.05)  # the published recipe
    model = TBLDA(3)
    fit_config = PipelineConfig().fit
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices["fit"]
    assert model.max_steps == fit_config.max_steps == sub.get_default("max_steps") == MAX_STEPS
    rates = (model.learning_rate, fit_config.learning_rate, sub.get_default("learning_rate"))
    assert rates == (LEARNING_RATE,) * 3
