"""GTEx-scale benchmark of ``tbeqtl prepare`` and ``tbeqtl run`` (issue 15, item 4).

Steps, each in a child process whose memory is measured:

1. ``write_gtex_cohort`` (reused when ``--cohort`` already holds the same cohort): 10 tissues, 5,781
   samples of 831 donors (+ 7 genotyped donors without RNA-seq) on 22 autosomes + chrX, in GTEx's file
   formats (:mod:`tbeqtl.simulate.gtex_cohort`). By default 30,000 genes and 340,000 variants (LD
   blocks of 1.5 SNPs on average), sized so that ``prepare`` keeps about the paper's 19,534 genes and
   202,111 SNPs (what ``run`` sees; ``--genes 20000 --snps 200000 --mean-ld-block 3`` gives the
   issue's literal input sizes and about 13,000 genes and 75,000 SNPs after selection);
2. ``tbeqtl prepare`` on those files (no renaming);
3. ``tbeqtl run --preset paper --data PREPARED --pairs chr1:chr2 --max-steps 20 --workers 2``.

Memory is measured two ways:

- ``ru_maxrss`` of ``os.wait4`` on the child: the exact peak RSS, but of the whole process tree (Linux
  folds reaped descendants into it), so for ``run`` it is the larger of the driver and its local Dask
  workers;
- psutil sampling every ``--interval`` seconds of the child (the driver) and of each descendant (Dask
  worker processes, named by their command line): per-process peaks, which can miss a spike shorter
  than the interval.

Per-pair time outside the fit is ``seconds - seconds_fit`` of the pair's entry in ``RUN/run.json``
(the pair task's load, rank, factor and mapping stages; the TBLDA fit itself excluded).

Usage (2 cores shared with other jobs: run under ``nice``)::

    nice python benchmarks/bench_gtex_scale.py --work /tmp/gtex_scale        # everything
    nice python benchmarks/bench_gtex_scale.py --work /tmp/gtex_scale --skip-run

Writes ``WORK/bench_gtex_scale.json`` and prints a summary against the targets (prepare and the run
driver < 4 GB, each worker < 3 GB, per-pair overhead < 30 s).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GB = 1024**3
TARGETS = {"prepare_gb": 4.0, "driver_gb": 4.0, "worker_gb": 3.0, "pair_overhead_s": 30.0}


def _sample_tree(pid: int, peaks: dict, stop: threading.Event, interval: float) -> None:
    """Record the peak RSS of ``pid`` and of each of its descendants until ``stop`` is set."""
    import psutil

    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not stop.is_set():
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                entry = peaks.setdefault(proc.pid, {"cmd": " ".join(proc.cmdline())[-160:], "peak": 0})
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            entry["peak"] = max(entry["peak"], rss)
        stop.wait(interval)


def run_measured(cmd: list[str], *, log_path: Path, interval: float) -> dict:
    """Run ``cmd``; return wall time, exit status, ``ru_maxrss`` (tree) and sampled per-process peaks."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    load = os.getloadavg()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        peaks: dict[int, dict] = {}
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_tree, args=(proc.pid, peaks, stop, interval), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stop.set()
        sampler.join()
    driver = peaks.pop(proc.pid, {"peak": 0})
    children = sorted(
        ({"pid": pid, "cmd": p["cmd"], "peak_gb": p["peak"] / GB} for pid, p in peaks.items()),
        key=lambda c: -c["peak_gb"],
    )
    return {
        "cmd": " ".join(cmd),
        "exit": proc.returncode,
        "seconds": time.perf_counter() - started,
        "ru_maxrss_tree_gb": usage.ru_maxrss * 1024 / GB,
        "driver_peak_sampled_gb": driver["peak"] / GB,
        "children": [c for c in children if c["peak_gb"] > 0.05],
        "loadavg_start": load,
        "loadavg_end": os.getloadavg(),
        "log": str(log_path),
    }


def _generate(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from tbeqtl.simulate.gtex_cohort import CohortOptions, write_gtex_cohort

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    write_gtex_cohort(
        args.cohort,
        n_genes=args.genes,
        n_snps=args.snps,
        seed=args.seed,
        reuse=True,
        options=CohortOptions(mean_ld_block=args.mean_ld_block),
    )


def _pair_overheads(run_dir: Path) -> dict:
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        return {}
    pairs = json.loads(run_json.read_text()).get("pairs", {})
    return {
        pair: {
            "status": r.get("status"),
            "seconds": r.get("seconds"),
            "seconds_fit": r.get("seconds_fit"),
            "seconds_load": r.get("seconds_load"),
            "overhead_s": None if r.get("seconds") is None else r["seconds"] - r.get("seconds_fit", 0.0),
        }
        for pair, r in pairs.items()
    }


def main() -> int:
    """Run the benchmark; return the process exit status (1 if a step failed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the cohort, prepared data, run")
    parser.add_argument("--cohort", type=Path, help="cohort folder (default WORK/cohort; reused if complete)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--genes", type=int, default=30_000, help="genes in the GCT/GTF (all types)")
    parser.add_argument("--snps", type=int, default=340_000, help="variants in the VCF/PLINK 2 set")
    parser.add_argument("--mean-ld-block", type=float, default=1.5, help="mean SNPs per LD block")
    parser.add_argument("--genotypes", choices=("pgen", "vcf"), default="pgen", help="genotype input")
    parser.add_argument("--pairs", default="chr1:chr2")
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.5, help="psutil sampling interval (s)")
    parser.add_argument("--skip-run", action="store_true", help="stop after prepare")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.cohort = args.cohort or args.work / "cohort"
    if args.generate_only:
        _generate(args)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict = {"targets": TARGETS, "nproc": os.cpu_count()}
    me = [sys.executable, str(Path(__file__).resolve())]
    gen = [
        *me,
        "--generate-only",
        "--work",
        str(args.work),
        "--cohort",
        str(args.cohort),
        "--seed",
        str(args.seed),
    ]
    results["generate"] = run_measured(gen, log_path=args.work / "generate.log", interval=args.interval)
    ok = results["generate"]["exit"] == 0
    if ok:
        ok = _prepare_and_run(args, results)
    out = args.work / "bench_gtex_scale.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    _print_summary(results)
    print(f"results: {out}")
    return 0 if ok else 1


def _prepare_and_run(args: argparse.Namespace, results: dict) -> bool:
    manifest = json.loads((args.cohort / "cohort.json").read_text())
    paths = {k: (args.cohort / v if v else None) for k, v in manifest["paths"].items()}
    prepared, run_dir = args.work / "prepared", args.work / "run"
    tbeqtl = [sys.executable, "-m", "tbeqtl"]
    prepare = [
        *tbeqtl,
        "prepare",
        "--counts", str(paths["counts"]),
        "--sample-attributes", str(paths["sample_attributes"]),
        "--subject-attributes", str(paths["subject_phenotypes"]),
        "--genotypes", str(paths[args.genotypes]),
        "--genes", str(paths["genes"]),
        "--out", str(prepared),
    ]  # fmt: skip
    results["prepare"] = run_measured(prepare, log_path=args.work / "prepare.log", interval=args.interval)
    if results["prepare"]["exit"] != 0 or args.skip_run:
        return results["prepare"]["exit"] == 0
    run = [
        *tbeqtl,
        "run",
        "--preset", "paper",
        "--data", str(prepared),
        "--pairs", args.pairs,
        "--max-steps", str(args.max_steps),
        "--workers", str(args.workers),
        "--out", str(run_dir),
    ]  # fmt: skip
    results["run"] = run_measured(run, log_path=args.work / "run.log", interval=args.interval)
    results["pairs"] = _pair_overheads(run_dir)
    return results["run"]["exit"] == 0


def _print_summary(results: dict) -> None:
    print(f"{'step':<10}{'exit':>5}{'seconds':>10}{'tree maxrss GB':>16}{'driver GB':>11}  loadavg")
    for step in ("generate", "prepare", "run"):
        r = results.get(step)
        if r:
            print(
                f"{step:<10}{r['exit']:>5}{r['seconds']:>10.1f}{r['ru_maxrss_tree_gb']:>16.2f}"
                f"{r['driver_peak_sampled_gb']:>11.2f}  "
                f"{r['loadavg_start'][0]:.2f} -> {r['loadavg_end'][0]:.2f}"
            )
            for child in r["children"]:
                print(f"    child {child['pid']}: {child['peak_gb']:.2f} GB  {child['cmd'][-90:]}")
    for pair, p in results.get("pairs", {}).items():
        print(
            f"pair {pair}: {p['status']}, {p['seconds']} s, fit {p['seconds_fit']} s, "
            f"outside fit {p['overhead_s']} s"
        )


if __name__ == "__main__":
    sys.exit(main())
