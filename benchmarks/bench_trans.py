"""Trans-mapping benchmark: tbeqtl float64 and float32 vs tensorQTL CPU map_trans on the same data.

Generates S SNPs x G genes x n samples with k covariates (default 20,000 x 5,000 x 500, 10), keeps pairs with
p <= 1e-5, and prints tests/second for each method, the ratios, the machine's GEMM ceiling measured in this
run (tests/second <= GEMM FLOP/s / (2 n)), and peak memory. tensorQTL runs only if it is importable
(``pip install --no-deps tensorqtl`` plus its import-time deps); otherwise the comparison is skipped.

Usage::

    nice -n 10 python benchmarks/bench_trans.py                  # full size
    python benchmarks/bench_trans.py --snps 4000 --genes 2000     # quick
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
import tracemalloc

import numpy as np
import pandas as pd


def make_data(n_snps, n_genes, n_samples, n_cov, seed):
    rng = np.random.default_rng(seed)
    samples = [f"S{i:04d}" for i in range(n_samples)]
    maf = rng.uniform(0.05, 0.5, (n_snps, 1))
    geno = rng.binomial(2, maf, (n_snps, n_samples)).astype(np.float64)
    cov = rng.normal(size=(n_cov, n_samples))
    expr = rng.normal(size=(n_genes, n_samples)) + 0.3 * (rng.normal(size=(n_genes, n_cov)) @ cov)
    hits = rng.choice(n_snps, 200, replace=False)
    for j, s in enumerate(hits):
        expr[j % n_genes] += 0.4 * (geno[s] - geno[s].mean())
    return (
        pd.DataFrame(geno, index=[f"rs{i}" for i in range(n_snps)], columns=samples),
        pd.DataFrame(expr, index=[f"G{i}" for i in range(n_genes)], columns=samples),
        pd.DataFrame(cov, index=[f"c{i}" for i in range(n_cov)], columns=samples),
    )


def gemm_rate(dtype, n, *, m=4000, g=5000, repeats=3, backend="numpy"):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(m, n)).astype(dtype)
    b = rng.normal(size=(g, n)).astype(dtype)
    if backend == "torch":
        import torch

        a, b = torch.from_numpy(a), torch.from_numpy(b)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        _ = a @ b.T
        best = min(best, time.perf_counter() - t)
    return 2.0 * m * g * n / best


def timed(label, func):
    gc.collect()
    tracemalloc.start()
    t = time.perf_counter()
    out = func()
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, elapsed, peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snps", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=5_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--covariates", type=int, default=10)
    parser.add_argument("--pval", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-tensorqtl", action="store_true")
    args = parser.parse_args(argv)

    from tbeqtl.association import map_eqtls

    geno, expr, cov = make_data(args.snps, args.genes, args.samples, args.covariates, args.seed)
    n_tests = args.snps * args.genes
    n = args.samples
    print(
        f"case: {args.snps} SNPs x {args.genes} genes x {n} samples, {args.covariates} covariates, "
        f"p <= {args.pval:g}: {n_tests:.3g} tests"
    )
    rates = {
        "float64 numpy": gemm_rate(np.float64, n),
        "float32 numpy": gemm_rate(np.float32, n),
    }
    try:
        rates["float32 torch"] = gemm_rate(np.float32, n, backend="torch")
        rates["float64 torch"] = gemm_rate(np.float64, n, backend="torch")
    except ImportError:
        pass
    print("GEMM ceiling (this run):")
    for k, v in rates.items():
        print(f"  {k:14s} {v / 1e9:7.1f} GFLOP/s -> {v / (2 * n):.3g} tests/s")
    ceil64 = max(v for k, v in rates.items() if k.startswith("float64")) / (2 * n)
    ceil32 = max(v for k, v in rates.items() if k.startswith("float32")) / (2 * n)

    results = {}
    ceilings = {}
    for label, kw in (
        ("tbeqtl float64", {"precision": "float64"}),
        ("tbeqtl float32", {"precision": "float32"}),
    ):
        dtype = np.float64 if kw["precision"] == "float64" else np.float32
        before = gemm_rate(dtype, n)

        def run(kw=kw):
            return map_eqtls(geno, expr, cov, pv_cis=0, pv_trans=args.pval, show_progress=False, **kw)

        res, sec, peak = timed(label, run)
        after = gemm_rate(dtype, n)
        # numpy GEMM rate measured right before and after the run (the machine is shared)
        ceilings[label] = 0.5 * (before + after) / (2 * n)
        results[label] = (sec, peak, len(res.all))
    rss_tbeqtl = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ref_pairs = set(zip(res.all["snp"], res.all["gene"], strict=True))

    tq_note = ""
    if not args.skip_tensorqtl:
        try:
            import torch
            from tensorqtl import trans as tq_trans

            torch.set_num_threads(torch.get_num_threads())
            cov_t = cov.T  # tensorQTL: samples x covariates

            def run_tq():
                return tq_trans.map_trans(
                    geno,
                    expr,
                    cov_t,
                    return_sparse=True,
                    pval_threshold=args.pval,
                    maf_threshold=0,
                    batch_size=20_000,
                    verbose=False,
                )

            tq, sec, peak = timed("tensorQTL", run_tq)
            results["tensorQTL map_trans (float32, CPU)"] = (sec, peak, len(tq))
            tq_pairs = set(zip(tq["variant_id"], tq["phenotype_id"], strict=True))
            tq_note = (
                f"pairs: tbeqtl {len(ref_pairs)}, tensorQTL {len(tq_pairs)}, "
                f"shared {len(ref_pairs & tq_pairs)} (tensorQTL's float32 p-values differ near the threshold)"
            )
        except ImportError as exc:
            tq_note = f"tensorQTL not importable ({exc}); comparison skipped"
    print("\nmethod                               seconds   tests/s    peak traced MB  rows")
    for label, (sec, peak, rows) in results.items():
        print(f"  {label:34s} {sec:7.2f}  {n_tests / sec:9.3g}  {peak / 2**20:12.0f}  {rows}")
    print(
        f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
        "(includes the inputs and both libraries)"
    )
    r64 = n_tests / results["tbeqtl float64"][0]
    r32 = n_tests / results["tbeqtl float32"][0]
    print(f"process peak RSS before tensorQTL ran: {rss_tbeqtl:.0f} MB (inputs + tbeqtl)")
    print(
        f"\nfloat64: {r64 / ceilings['tbeqtl float64']:.0%} of the float64 GEMM ceiling measured around it "
        f"({ceilings['tbeqtl float64']:.3g} tests/s); float32: {r32 / ceilings['tbeqtl float32']:.0%} "
        f"({ceilings['tbeqtl float32']:.3g} tests/s); "
        f"vs the up-front ceilings: {r64 / ceil64:.0%}, {r32 / ceil32:.0%}"
    )
    tq_key = "tensorQTL map_trans (float32, CPU)"
    if tq_key in results:
        rtq = n_tests / results[tq_key][0]
        print(
            f"ratios vs tensorQTL CPU: float32 {r32 / rtq:.2f}x (target >= 1.5), "
            f"float64 {r64 / rtq:.2f}x (target >= 1.0)"
        )
    if tq_note:
        print(tq_note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
