"""Benchmark: tbeqtl's TBLDA fit vs a literal re-implementation of the published recipe.

The *baseline* follows the published fitting recipe literally, as described in
../shared/docs/tblda-reference-notes.md (written here from that description; no code of
the GPL reference repository is used): Pyro ``Trace_ELBO`` with validation on, the
``Multinomial`` and ``Binomial`` distributions with their normalising constants, a dense
L x N sample -> individual matrix for theta, the ancestry term ``A`` in float64 (so the
whole S x N genotype likelihood runs in float64), ``poutine.scale(1e-6)``, Adam lr 0.05,
one particle, all-ones init, and the published stopping rule.

tbeqtl's fit is :class:`tbeqtl.tblda.TBLDA` with its defaults. Both run in this process on
the same simulated data (``tbeqtl.simulate.simulate``, a pure draw of the TBLDA model).

Sizes
    ``small``: G=200, L=300 from N=100, S=500, K=10, Q=3 (the recovery-test size).
    ``chr12``: G=1,124 genes x L=5,781 samples, S=9,819 SNPs x N=831 individuals, K=50.

Measured
    per-step wall time (median over the timed steps after warm-up) of each, and the
    ratio; peak RSS after tbeqtl's fit (tbeqtl runs first, so this is its peak) and after
    the baseline; with ``--converge`` also steps, seconds and matched recovery at
    convergence (time to convergence and the ratio; both stop by their own rule); with
    ``--trace`` the recovery of both at the listed steps, the steps at which the stopping
    rules fire, and the time for tbeqtl to reach the recipe's recovery at the recipe's own
    stop. At chromosome scale (``--trace-baseline last-iterate``) the recipe's side is read
    off tbeqtl's own optimiser path: the recipe reports the last iterate of the same
    objective, optimiser and stopping rule, so its step count and recovery are those of the
    last iterate, timed at the baseline's measured per-step cost (on the small size the
    literal recipe's published rule fired at 19,250 steps and tbeqtl's loss history's at
    19,275, same data and seed).

Usage::

    nice -n 10 python benchmarks/bench_tblda.py --size small --steps 200
    nice -n 10 python benchmarks/bench_tblda.py --size small --converge
    nice -n 10 python benchmarks/bench_tblda.py --size chr12 --steps 10 --baseline-steps 4
    python benchmarks/bench_tblda.py --size chr12 --steps 6 --baseline-steps 3 \
        --trace 1000,2000,4000,6000,8000,10000,12000 --trace-baseline last-iterate \
        --trace-alpha elbo --trace-dir /tmp/chr12-trace
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import pyro
import pyro.distributions as dist
import pyro.poutine as poutine
import torch
from pyro.distributions import constraints
from scipy.optimize import linear_sum_assignment

from tbeqtl.simulate import simulate
from tbeqtl.tblda import TBLDA
from tbeqtl.tblda.convergence import ConvergenceRule

SIZES = {
    "small": dict(preset="small"),
    "chr12": dict(preset="chromosome", n_genes=1124, n_samples=5781, n_snps=9819, n_individuals=831,
                  n_topics=50),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- baseline
def literal_model(x, y, w_dense, ancestry64, k):
    n_samples, n_genes = x.shape
    n_snps = y.shape[0]
    with poutine.scale(scale=1e-6):
        with pyro.plate("k_b", k):
            psi = pyro.sample("lambda_g", dist.Dirichlet(torch.ones(n_genes)))
        with pyro.plate("snps", n_snps, dim=-2), pyro.plate("k_s", k, dim=-1):
            lam = pyro.sample("lambda_s", dist.Beta(torch.ones(1), torch.ones(1)))
        with pyro.plate("samples", n_samples):
            phi = pyro.sample("phi", dist.Dirichlet(torch.ones(k)))
            pyro.sample("x", dist.Multinomial(probs=phi @ psi, validate_args=False), obs=x)
        alpha = pyro.sample("alpha", dist.Uniform(0.05, 0.85))
        theta = (phi.T @ w_dense) / w_dense.sum(0)
        rho = alpha * ancestry64 + (1 - alpha) * (lam @ theta)
        with pyro.plate("snps_y", n_snps, dim=-2):
            pyro.sample("y", dist.Binomial(2, rho).to_event(0), obs=y)


def literal_guide(x, y, w_dense, ancestry64, k):
    n_samples, n_genes = x.shape
    n_snps = y.shape[0]
    with poutine.scale(scale=1e-6):
        xi = pyro.param("xi", torch.ones(k, n_genes), constraint=constraints.positive)
        sigma = pyro.param("sigma", torch.ones(n_samples, k), constraint=constraints.positive)
        zeta = pyro.param("zeta", torch.ones(n_snps, k), constraint=constraints.positive)
        gamma = pyro.param("gamma", torch.ones(n_snps, k), constraint=constraints.positive)
        alpha_p = pyro.param("alpha_p", torch.tensor([0.1]), constraint=constraints.interval(0.05, 0.85))
        with pyro.plate("k_b", k):
            pyro.sample("lambda_g", dist.Dirichlet(xi))
        with pyro.plate("snps", n_snps, dim=-2), pyro.plate("k_s", k, dim=-1):
            pyro.sample("lambda_s", dist.Beta(zeta, gamma))
        with pyro.plate("samples", n_samples):
            pyro.sample("phi", dist.Dirichlet(sigma))
        pyro.sample("alpha", dist.Delta(alpha_p[0]))


def run_literal(sim, k, *, max_steps, converge, seed=21, trace=()):
    data = sim.data
    x = torch.tensor(data.counts_df.to_numpy(dtype=np.float32).T.copy())
    y = torch.tensor(data.genotype_df.to_numpy(dtype=np.float64))
    w_dense = torch.zeros(len(data.samples), len(data.individuals))
    w_dense[torch.arange(len(data.samples)), torch.tensor(data.sample_individual_index)] = 1.0
    beta = sim.truth.ancestry_beta_df.loc[data.snps].to_numpy(dtype=np.float64)
    tau = sim.truth.ancestry_tau_df.loc[data.individuals].to_numpy(dtype=np.float64)
    ancestry64 = torch.tensor(beta @ tau.T)
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    pyro.enable_validation(True)
    svi = pyro.infer.SVI(literal_model, literal_guide, pyro.optim.Adam({"lr": 0.05}), pyro.infer.Trace_ELBO())
    rule = ConvergenceRule(rule="compat")
    snapshots = []

    def _literal_result(steps, seconds):
        store = pyro.get_param_store()
        xi = store["xi"].detach().double().numpy()
        sigma = store["sigma"].detach().double().numpy()
        zeta, gamma = store["zeta"].detach().double().numpy(), store["gamma"].detach().double().numpy()
        return dict(gene=(xi / xi.sum(1, keepdims=True)).T, sample=sigma / sigma.sum(1, keepdims=True),
                    snp=zeta / (zeta + gamma), alpha=float(store["alpha_p"].detach()))

    losses, stamps = [], [time.perf_counter()]
    start = time.perf_counter()
    for step in range(1, max_steps + 1):
        losses.append(svi.step(x, y, w_dense, ancestry64, k) / 1e-6)
        stamps.append(time.perf_counter())
        if step in trace:
            snapshots.append((step, float(np.sum(np.diff(stamps))), _literal_result(0, 0)))
        if converge and rule.should_check(step) and rule.converged(rule.statistic(np.asarray(losses))):
            break
    seconds = time.perf_counter() - start
    store = pyro.get_param_store()
    xi = store["xi"].detach().double().numpy()
    sigma = store["sigma"].detach().double().numpy()
    zeta, gamma = store["zeta"].detach().double().numpy(), store["gamma"].detach().double().numpy()
    pyro.enable_validation(False)
    return dict(step_times=np.diff(stamps), seconds=seconds, steps=len(losses), snapshots=snapshots,
                gene=(xi / xi.sum(1, keepdims=True)).T, sample=sigma / sigma.sum(1, keepdims=True),
                snp=zeta / (zeta + gamma), alpha=float(store["alpha_p"].detach()))


def run_tbeqtl(sim, k, *, max_steps, converge, seed=21, inference="svi", rule=None):
    stamps = [time.perf_counter()]
    rule_kw = dict(rule or {})
    if not converge:
        rule_kw["min_steps"] = max_steps + 1
    model = TBLDA(k, max_steps=max_steps, random_state=seed, progress=False, inference=inference,
                  cavi_tol=1e-6 if converge else 1e-300, **rule_kw)
    start = time.perf_counter()
    model.fit(sim.data, ancestry=(sim.truth.ancestry_beta_df, sim.truth.ancestry_tau_df),
              callback=lambda step, loss: stamps.append(time.perf_counter()))
    seconds = time.perf_counter() - start
    return dict(step_times=np.diff(stamps[1:]), seconds=seconds, steps=model.n_iter_,
                gene=model.gene_topics_.to_numpy(), sample=model.sample_topics_.to_numpy(),
                snp=model.snp_topics_.to_numpy(), alpha=model.alpha_, stop=model.stop_reason_)


def trace_tbeqtl(sim, k, *, trace, checkpoint_dir, seed=21, alpha_method=None):
    """Recovery at each trace step, by resuming one run segment by segment (bit-for-bit resume).

    Each snapshot holds tbeqtl's reported (iterate-averaged) posterior means and, read from the
    checkpoint, the last iterate: the estimate the published recipe reports from the same
    optimiser path. Returns the snapshots and the per-step losses of the whole run.
    """
    snapshots = []
    seconds = 0.0
    extra = {} if alpha_method is None else {"alpha_method": alpha_method}
    losses = np.zeros(0)
    for steps in trace:
        stamps = [time.perf_counter()]
        model = TBLDA(k, max_steps=steps, random_state=seed, progress=False, min_steps=10**9, **extra)
        model.fit(sim.data, ancestry=(sim.truth.ancestry_beta_df, sim.truth.ancestry_tau_df),
                  checkpoint_dir=checkpoint_dir, resume=True,
                  callback=lambda step, loss, _add=stamps.append: _add(time.perf_counter()))
        seconds += float(np.sum(np.diff(stamps)))
        state = torch.load(os.path.join(checkpoint_dir, "checkpoint.pt"), map_location="cpu",
                           weights_only=True)
        losses = state["losses"].numpy()
        p = {name: t.double().exp().numpy() for name, t in state["params"].items() if name.startswith("log_")}
        last = dict(gene=(p["log_xi"] / p["log_xi"].sum(1, keepdims=True)).T,
                    sample=p["log_sigma"] / p["log_sigma"].sum(1, keepdims=True),
                    snp=p["log_zeta"] / (p["log_zeta"] + p["log_gamma"]),
                    alpha=model._alpha_value(state["params"]["alpha_logit"]))
        snapshots.append((steps, seconds, dict(gene=model.gene_topics_.to_numpy(),
                                               sample=model.sample_topics_.to_numpy(),
                                               snp=model.snp_topics_.to_numpy(), alpha=model.alpha_), last))
    return snapshots, losses


def firing_step(losses, **rule):
    """First step at which a stopping rule fires on a loss history (None if it never does)."""
    conv = ConvergenceRule(**rule)
    for step in range(conv.check_every, len(losses) + 1, conv.check_every):
        if conv.should_check(step) and conv.converged(conv.statistic(losses[:step])):
            return step
    return None


def recovery(result, sim):
    truth = sim.truth
    data = sim.data

    def match(est, true):
        kk = est.shape[1]
        corr = np.corrcoef(est.T, true.T)[:kk, kk:]
        rows, cols = linear_sum_assignment(-corr)
        return corr[rows, cols], cols

    r_gene, perm = match(result["gene"], truth.gene_topics_df.loc[data.genes].to_numpy())
    r_sample, _ = match(result["sample"], truth.sample_topics_df.loc[data.samples].to_numpy())
    true_lam = truth.snp_topics_df.loc[data.snps].to_numpy()
    r_snp = [np.corrcoef(result["snp"][:, i], true_lam[:, perm[i]])[0, 1] for i in range(len(perm))]
    return dict(gene_min=float(r_gene.min()), sample_min=float(r_sample.min()),
                snp_mean=float(np.mean(r_snp)),
                alpha=result["alpha"], alpha_true=truth.alpha)

def trace_report(sim, k, args, *, t_ours, t_base, cavi):
    """Run the recovery trace, print it and the time to the same recovery; return it as a dict."""
    import tempfile

    trace = tuple(int(v) for v in args.trace.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.trace_dir or tmp
        os.makedirs(folder, exist_ok=True)
        ours_trace, losses = trace_tbeqtl(sim, k, trace=trace, checkpoint_dir=folder,
                                          alpha_method=args.trace_alpha)
    rules = {"published (compat, 1e-4)": dict(rule="compat", tol=1e-4),
             "tbeqtl default (abs, 1e-4)": dict(rule="abs", tol=1e-4),
             "abs, 1.5e-3": dict(rule="abs", tol=1.5e-3)}
    fired = {name: firing_step(losses, **rule) for name, rule in rules.items()}
    if args.trace_baseline == "literal":
        base_trace = run_literal(sim, k, max_steps=max(trace), converge=False, trace=trace)["snapshots"]
    else:  # the published recipe's estimate is the last iterate of the same optimiser path
        base_trace = [(steps, steps * t_base, last) for steps, _, _, last in ours_trace]
    result = {"baseline": args.trace_baseline, "rules_fire_at": fired, "tbeqtl": [], "published": []}
    print("recovery trace (cumulative step seconds; min matched r psi / phi, mean r lambda, alpha)")
    if args.trace_baseline == "last-iterate":
        print("  published = the last iterate of tbeqtl's run, timed at the baseline's "
              f"{t_base * 1e3:.1f} ms per step")
    ours_avg = [(steps, sec, avg) for steps, sec, avg, _ in ours_trace]
    for name, snaps in (("tbeqtl", ours_avg), ("published", base_trace)):
        for steps, seconds, res in snaps:
            rec = recovery(res, sim)
            result[name].append({"steps": steps, "seconds": seconds, **rec})
            print(f"  {name:10s} {steps:6d} steps {seconds:8.1f} s   psi {rec['gene_min']:.4f}  "
                  f"phi {rec['sample_min']:.4f}  lambda {rec['snp_mean']:.3f}  alpha {rec['alpha']:.3f}")
    for name, step in fired.items():
        print(f"  stopping rule {name:28s} fires at {step if step else f'> {len(losses)}'} steps")
    # time to the recipe's recovery at its own stop (or at the end of the trace, a lower bound)
    stop = fired["published (compat, 1e-4)"]
    target = [row for row in result["published"] if stop is not None and row["steps"] >= stop]
    bound = not target
    target = target[0] if target else result["published"][-1]
    keys = ("gene_min", "sample_min", "snp_mean")
    reached = next((row for row in result["tbeqtl"] if all(row[key] >= target[key] for key in keys)), None)
    if reached is not None:
        recipe_steps = stop if stop is not None else len(losses)
        ratio = recipe_steps * t_base / (reached["steps"] * t_ours)
        result["time_to_recovery"] = {"recipe_steps": recipe_steps, "tbeqtl_steps": reached["steps"],
                                      "ratio": ratio, "lower_bound": bound}
        print(f"  the recipe's recovery at {'the end of the trace' if bound else 'its stop'} "
              f"({recipe_steps} steps: psi {target['gene_min']:.4f}, phi {target['sample_min']:.4f}, "
              f"lambda {target['snp_mean']:.3f}) is reached by tbeqtl at {reached['steps']} steps: "
              f"{'>= ' if bound else ''}{ratio:.1f}x to the same recovery at the per-step times above")
    if cavi is not None:
        rec = recovery(cavi, sim)
        print(f"  {'cavi':10s} {cavi['steps']:6d} iters {float(np.sum(cavi['step_times'])):8.1f} s   "
              f"psi {rec['gene_min']:.4f}  phi {rec['sample_min']:.4f}  lambda {rec['snp_mean']:.3f}  "
              f"alpha {rec['alpha']:.3f}")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--steps", type=int, default=200, help="timed tbeqtl steps (per-step timing)")
    parser.add_argument("--baseline-steps", type=int, default=None,
                        help="timed baseline steps (default --steps)")
    parser.add_argument("--converge", action="store_true", help="run both to convergence (small size only)")
    parser.add_argument("--max-steps", type=int, default=65100, help="step cap with --converge")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--cavi", action="store_true", help="also time tbeqtl's optional CAVI inference")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed")
    parser.add_argument("--stop-rule", default=None, help="tbeqtl's stopping rule (default: TBLDA's)")
    parser.add_argument("--tol", type=float, default=None, help="tbeqtl's stopping tolerance")
    parser.add_argument("--window", type=int, default=None, help="tbeqtl's stopping-rule window")
    parser.add_argument("--min-steps", type=int, default=None, help="tbeqtl's stopping-rule min_steps")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--trace", default="",
                        help="comma-separated steps at which to report recovery of both fits (small size), "
                             "e.g. 1000,2000,3000: time to the same recovery")
    parser.add_argument("--trace-baseline", choices=("literal", "last-iterate"), default="literal",
                        help="the published recipe's side of the trace: run it ('literal'), or read its "
                             "estimate off tbeqtl's own optimiser path ('last-iterate': the same objective, "
                             "optimiser and stopping rule, timed at the baseline's measured per-step cost; "
                             "for chromosome scale, where a converged baseline takes ~16 h)")
    parser.add_argument("--trace-alpha", choices=("marginal", "elbo"), default="marginal",
                        help="tbeqtl's alpha at each trace snapshot (the marginal stage costs minutes per "
                             "snapshot at chromosome scale)")
    parser.add_argument("--trace-dir", default=None,
                        help="checkpoint folder of the traced tbeqtl run (kept; a rerun resumes it)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sim = simulate(**SIZES[args.size], n_cis=0, n_trans=0, covariate_effects=False, seed=args.seed)
    k = sim.truth.gene_topics_df.shape[1]
    data = sim.data
    load_before = os.getloadavg()
    print(f"size {args.size}: G={len(data.genes)} L={len(data.samples)} S={len(data.snps)} "
          f"N={len(data.individuals)} K={k}; torch threads {torch.get_num_threads()}; "
          f"load average {load_before[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    rule = {name: value for name, value in (("stop_rule", args.stop_rule), ("tol", args.tol),
                                            ("window", args.window), ("min_steps", args.min_steps))
            if value is not None}
    rss0 = peak_rss_mb()
    steps = args.max_steps if args.converge else args.steps
    ours = run_tbeqtl(sim, k, max_steps=steps, converge=args.converge, rule=rule)
    rss_ours = peak_rss_mb()
    cavi = None
    if args.cavi:
        cavi_converge = args.converge or bool(args.trace)
        cavi = run_tbeqtl(sim, k, max_steps=args.max_steps if cavi_converge else args.steps,
                          converge=cavi_converge, inference="cavi")
    base_steps = args.max_steps if args.converge else (args.baseline_steps or args.steps)
    base = run_literal(sim, k, max_steps=base_steps, converge=args.converge)
    rss_base = peak_rss_mb()
    warm = 2 if len(base["step_times"]) > 4 else 1
    t_ours = statistics.median(ours["step_times"][warm:])
    t_base = statistics.median(base["step_times"][warm:])
    out = {"size": args.size, "threads": torch.get_num_threads(),
           "load_average": [load_before, os.getloadavg()], "tbeqtl_rule": rule,
           "per_step_seconds": {"tbeqtl": t_ours, "published_recipe": t_base, "ratio": t_base / t_ours},
           "peak_rss_mb": {"before": rss0, "after_tbeqtl": rss_ours, "after_baseline": rss_base}}
    print(f"per-step   tbeqtl {t_ours * 1e3:9.2f} ms   published recipe {t_base * 1e3:9.2f} ms   "
          f"ratio {t_base / t_ours:6.1f}x   (load average {os.getloadavg()[0]:.2f})", flush=True)
    if cavi is not None:
        t_cavi = statistics.median(cavi["step_times"][warm:])
        out["per_step_seconds"]["tbeqtl_cavi"] = t_cavi
        out["per_step_seconds"]["ratio_cavi"] = t_base / t_cavi
        print(f"per-iter   tbeqtl CAVI {t_cavi * 1e3:9.2f} ms   ratio to a published-recipe step "
              f"{t_base / t_cavi:6.1f}x", flush=True)
    print(f"peak RSS   before fits {rss0:8.0f} MB   after tbeqtl {rss_ours:8.0f} MB   "
          f"after baseline {rss_base:8.0f} MB")
    if args.converge:
        rec_ours, rec_base = recovery(ours, sim), recovery(base, sim)
        out["convergence"] = {
            "tbeqtl": {"steps": ours["steps"], "seconds": ours["seconds"], "stop": ours["stop"], **rec_ours},
            "published_recipe": {"steps": base["steps"], "seconds": base["seconds"], **rec_base},
            "ratio_seconds": base["seconds"] / ours["seconds"]}
        runs = [("tbeqtl", ours, rec_ours), ("published", base, rec_base)]
        if cavi is not None:
            rec_cavi = recovery(cavi, sim)
            runs.append(("tbeqtl-cavi", cavi, rec_cavi))
            out["convergence"]["tbeqtl_cavi"] = {"steps": cavi["steps"], "seconds": cavi["seconds"],
                                                 **rec_cavi}
            print(f"time to convergence ratio, CAVI {base['seconds'] / cavi['seconds']:6.1f}x")
        for name, res, rec in runs:
            print(f"converged  {name:10s} {res['steps']:6d} steps {res['seconds']:9.1f} s   "
                  f"min r psi {rec['gene_min']:.4f}  min r phi {rec['sample_min']:.4f}  "
                  f"mean r lambda {rec['snp_mean']:.3f}  alpha {rec['alpha']:.3f} (true {rec['alpha_true']})")
        print(f"time to convergence ratio {base['seconds'] / ours['seconds']:6.1f}x")
    if args.trace:
        out["trace"] = trace_report(sim, k, args, t_ours=t_ours, t_base=t_base, cavi=cavi)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
