"""Bias and spread of TBLDA's two estimates of the ancestry weight alpha (issue 16, item 7).

One TBLDA fit gives both estimates: ``model.alpha_elbo_`` (the published ELBO point estimate) and,
with ``alpha_method="marginal"``, ``model.alpha_`` (the importance-weighted marginal likelihood of
the genotypes, :mod:`tbeqtl.tblda.marginal`). This script draws fresh data sets from the model
(``tbeqtl.simulate``'s ``small`` preset: a pure draw of equations 1-9, no eQTLs or covariates)
at a few configurations, fits each with the *true* ancestry ``beta``/``tau`` given, and compares
both estimates with the planted alpha: mean error (bias) with its standard error, standard
deviation, RMSE, min and max over the draws.

Every draw is seeded (simulation seed ``1000 * config_number + draw``, fit ``random_state =
draw``), so a rerun reproduces the table. Rows are appended to ``--out`` (CSV) as fits finish;
``--resume`` skips the draws already there, and ``--summarize`` prints the table of an existing
CSV without fitting.

Run (28 min on 2 cores, shared with another job, for the three configurations at 12 draws each)::

    nice -n 5 python benchmarks/alpha_study.py --draws 12 --jobs 2 --out alpha_study.csv
    python benchmarks/alpha_study.py --summarize --out alpha_study.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

#: Fit length of the study (SVI steps; the reported posterior averages the last 1,000). See
#: benchmarks/README.md ("alpha estimators") for the check that both estimates are stable here.
STEPS = 5000


@dataclass(frozen=True)
class Config:
    """One simulated configuration: N individuals with 1-6 samples each (6 tissues), K, Q, alpha."""

    name: str
    number: int
    alpha: float
    n_individuals: int
    n_topics: int = 8
    n_ancestry: int = 3
    n_snps: int = 500
    n_genes: int = 200
    samples_per_individual: float = 3.5

    def overrides(self) -> dict:
        return dict(n_individuals=self.n_individuals,
                    n_samples=int(round(self.samples_per_individual * self.n_individuals)),
                    n_tissues=6, n_topics=self.n_topics, n_ancestry=self.n_ancestry, n_snps=self.n_snps,
                    n_genes=self.n_genes, alpha=self.alpha)


#: The configurations: the issue's report (alpha 0.35, N = 120), a low alpha with more
#: individuals, and a high alpha with many (G = 200 genes, S = 500 SNPs, 3.5 samples per
#: individual on average, K = 8, Q = 3 throughout).
CONFIGS = {
    "a035_n120": Config("a035_n120", 1, alpha=0.35, n_individuals=120),
    "a020_n400": Config("a020_n400", 2, alpha=0.20, n_individuals=400),
    "a050_n800": Config("a050_n800", 3, alpha=0.50, n_individuals=800),
}

FIELDS = ("config", "draw", "sim_seed", "true_alpha", "alpha_method", "alpha", "alpha_marginal", "alpha_elbo",
          "ess_median", "proposal_scale", "steps", "seconds")


def simulate_draw(config: Config, draw: int):
    """The seeded simulation of one draw of ``config`` (the issue's setting: a pure model draw)."""
    from tbeqtl.simulate import simulate

    return simulate(preset="small", seed=1000 * config.number + draw, **config.overrides())


def fit_draw(config: Config, draw: int, *, steps: int = STEPS, threads: int = 1, **fit_options) -> dict:
    """Simulate draw ``draw`` of ``config``, fit TBLDA with the true ancestry, return the alphas.

    ``fit_options`` are passed to :class:`~tbeqtl.tblda.TBLDA`; without ``alpha_method`` the
    fit uses TBLDA's default, whose estimate is ``alpha`` in the result. ``alpha_marginal`` is
    NaN unless the fit ran ``alpha_method="marginal"`` (which gives both estimates).
    """
    import torch

    from tbeqtl.tblda import TBLDA

    torch.set_num_threads(int(threads))
    sim = simulate_draw(config, draw)
    started = time.perf_counter()
    ancestry = (sim.truth.ancestry_beta_df, sim.truth.ancestry_tau_df)
    options = dict(max_steps=int(steps), random_state=int(draw), progress=False, **fit_options)
    model = TBLDA(config.n_topics, **options).fit(sim.data, ancestry=ancestry)
    curve = model.alpha_curve_
    return {
        "config": config.name, "draw": draw, "sim_seed": 1000 * config.number + draw,
        "true_alpha": float(sim.truth.alpha),  # the planted value, read back from the simulation
        "alpha_method": model.alpha_method, "alpha": model.alpha_,
        "alpha_marginal": model.alpha_ if model.alpha_method == "marginal" else math.nan,
        "alpha_elbo": model.alpha_elbo_,
        "ess_median": curve.attrs["ess_median"] if curve is not None else math.nan,
        "proposal_scale": curve.attrs["proposal_scale"] if curve is not None else math.nan,
        "steps": model.n_iter_, "seconds": round(time.perf_counter() - started, 1),
    }


def error_summary(errors) -> dict:
    """Mean error, its standard error, sd, RMSE, min and max of a sequence of errors."""
    import numpy as np

    e = np.asarray(errors, dtype=float)
    n = e.size
    sd = float(e.std(ddof=1)) if n > 1 else math.nan
    return {"n": n, "mean": float(e.mean()), "se": sd / math.sqrt(n), "sd": sd,
            "rmse": float(np.sqrt(np.mean(e**2))), "min": float(e.min()), "max": float(e.max())}


def summarize(rows: list[dict]) -> str:
    """The table (Markdown) of errors against the planted alpha per configuration and estimator."""
    lines = ["| configuration | true alpha | estimator | n draws | mean error | s.e. | sd | RMSE | "
             "min / max error | mean estimate |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in sorted({r["config"] for r in rows}, key=lambda n: CONFIGS[n].number if n in CONFIGS else 99):
        sub = [r for r in rows if r["config"] == name]
        truth = float(sub[0]["true_alpha"])
        for estimator in ("alpha_marginal", "alpha_elbo"):
            values = [float(r[estimator]) for r in sub]
            s = error_summary([v - float(r["true_alpha"]) for v, r in zip(values, sub, strict=True)])
            lines.append(
                f"| {name} | {truth:.2f} | {estimator.removeprefix('alpha_')} | {s['n']} | "
                f"{s['mean']:+.4f} | "
                f"{s['se']:.4f} | {s['sd']:.4f} | {s['rmse']:.4f} | {s['min']:+.4f} / {s['max']:+.4f} | "
                f"{sum(values) / len(values):.4f} |")
    return "\n".join(lines)


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--draws", type=int, default=10, help="simulated draws per configuration")
    parser.add_argument("--first-draw", type=int, default=1)
    parser.add_argument("--steps", type=int, default=STEPS, help="SVI steps per fit")
    parser.add_argument("--jobs", type=int, default=2, help="fits run at once (one torch thread each)")
    parser.add_argument("--out", type=Path, default=Path("alpha_study.csv"), help="per-draw CSV")
    parser.add_argument("--resume", action="store_true", help="skip draws already in --out")
    parser.add_argument("--summarize", action="store_true", help="print the table of --out and exit")
    args = parser.parse_args(argv)

    if args.summarize:
        print(summarize(read_rows(args.out)))
        return 0
    done = {(r["config"], int(r["draw"])) for r in read_rows(args.out)} if args.resume else set()
    if not args.resume and args.out.exists():
        args.out.unlink()
    tasks = [(CONFIGS[name], d) for name in args.configs
             for d in range(args.first_draw, args.first_draw + args.draws) if (name, d) not in done]
    new_file = not args.out.exists()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with args.out.open("a", newline="") as handle, ProcessPoolExecutor(
            max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new_file:
            writer.writeheader()
        # alpha_method="marginal": one fit gives both estimates (alpha_ and alpha_elbo_)
        futures = [pool.submit(fit_draw, cfg, d, steps=args.steps, alpha_method="marginal")
                   for cfg, d in tasks]
        for future in as_completed(futures):
            row = future.result()
            writer.writerow(row)
            handle.flush()
            print(f"{row['config']} draw {row['draw']}: truth {row['true_alpha']:.2f}  marginal "
                  f"{row['alpha_marginal']:.4f}  elbo {row['alpha_elbo']:.4f}  ({row['seconds']} s)",
                  file=sys.stderr, flush=True)
    rows = [r for r in read_rows(args.out) if r["config"] in args.configs]
    print(summarize(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
