"""cis benchmark: ``tbeqtl cis`` against tensorQTL 1.0.10 (CPU) on the same cohort, whole process.

Each run is a separate process (reading inputs, mapping, writing outputs), timed from spawn to exit,
with its own peak RSS (``os.wait4``). Runs alternate tbeqtl / tensorQTL ``--repeats`` times and the
medians and their ratio are printed, with the float32 and float64 GEMM ceilings measured in the same
run and the load average before and after.

Default data: the GEUVADIS-shaped cohort in ``../shared/data/geuvadis_chr18/synthetic`` (445 samples,
367,759 chr18 variants in PLINK 2, 5,000 phenotypes of which 301 on chr18, 26 covariates).

tensorQTL is not a dependency of tbeqtl. Install it into a benchmark environment only, without its
pins (they would replace the CPU torch build)::

    python -m venv --system-site-packages /work/benchenv
    /work/benchenv/bin/pip install --no-deps tensorqtl==1.0.10 pandas-plink deprecated xarray qtl

and pass ``--tensorqtl-python /work/benchenv/bin/python``. Usage::

    python benchmarks/bench_cis.py --modes nominal permutations --nperm 1000 \
        --tensorqtl-python /work/benchenv/bin/python
    python benchmarks/bench_cis.py --modes permutations --nperm 10000 \
        --tbeqtl-permutations 10000 adaptive --tensorqtl-python /work/benchenv/bin/python

After permutations mode it prints the eGenes of every table at ``--egene-fdr`` and their Jaccard
indices (q-values recomputed from ``pval_beta`` by one function for all tables).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "geuvadis_chr18" / "synthetic"
PREFIX = "SYNTH_GEUV.445_samples"

TENSORQTL_CHILD = r"""
import os, sys, json, time
import pandas as pd, torch
threads, mode, nperm, geno, bed, cov, out, cis_table = sys.argv[1:9]
torch.set_num_threads(int(threads))
import tensorqtl
from tensorqtl import pgen, cis
phenotype_df, phenotype_pos_df = tensorqtl.read_phenotype_bed(bed)
covariates_df = pd.read_csv(cov, sep="\t", index_col=0).T
pgr = pgen.PgenReader(geno)
genotype_df, variant_df = pgr.load_genotypes(), pgr.variant_df
t = time.perf_counter()
if mode == "nominal":
    cis.map_nominal(genotype_df, variant_df, phenotype_df, phenotype_pos_df, "tq",
                    covariates_df=covariates_df, output_dir=out, verbose=False)
elif mode == "permutations":
    df = cis.map_cis(genotype_df, variant_df, phenotype_df, phenotype_pos_df, covariates_df=covariates_df,
                     nperm=int(nperm), seed=1, verbose=False)
    df.to_csv(os.path.join(out, "tq.cis_qtl.txt.gz"), sep="\t", float_format="%.6g")
else:
    cis_df = pd.read_csv(cis_table, sep="\t", index_col=0)
    df = cis.map_independent(genotype_df, variant_df, cis_df, phenotype_df, phenotype_pos_df, covariates_df,
                             nperm=int(nperm), seed=1, verbose=False)
    df.to_csv(os.path.join(out, "tq.cis_independent_qtl.txt.gz"), sep="\t", float_format="%.6g")
print(json.dumps({"mapping_s": time.perf_counter() - t}))
"""


def gemm_ceiling(dtype, *, threads: int) -> float:
    """Best GFLOP/s of a 9000x445 @ 445x10000 torch product (the shapes of the notes)."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(9000, 445, dtype=dtype)
    b = torch.randn(445, 10000, dtype=dtype)
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        _ = a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 9000 * 445 * 10000 / best / 1e9


def run_child(cmd: list[str], env: dict) -> dict:
    """Run one process; return wall seconds and its own peak RSS (MB)."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{err[-3000:]}")
    result = {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}
    for line in out.splitlines()[::-1]:
        if line.startswith("{"):
            result.update(json.loads(line))
            break
    return result


def summarize(label: str, runs: list[dict]) -> str:
    """Median wall time, each run, the peak RSS (and tensorQTL's own mapping time) of one tool."""
    walls = ", ".join(f"{r['wall_s']:.1f}" for r in runs)
    text = f"{label} {statistics.median(r['wall_s'] for r in runs):.1f} s (runs {walls}"
    if "mapping_s" in runs[0]:
        text += f"; mapping {statistics.median(r['mapping_s'] for r in runs):.1f} s"
    return text + f"; peak RSS {max(r['peak_rss_mb'] for r in runs):.0f} MB)"


def tbeqtl_cmd(mode, args, out: Path, cis_table: Path | None, permutations) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "tbeqtl",
        "cis",
        "--mode",
        mode,
        "--genotypes",
        str(args.genotypes),
        "--phenotypes",
        str(args.phenotypes),
        "--covariates",
        str(args.covariates),
        "--out",
        str(out),
        "--permutations",
        str(permutations),
        "--threads",
        str(args.threads),
        "--seed",
        "1",
        "--log-level",
        "WARNING",
    ]
    if mode == "independent":
        cmd += ["--cis-output", str(cis_table)]
    return cmd


def tensorqtl_cmd(mode, args, out: Path, cis_table: Path | None) -> list[str]:
    return [
        args.tensorqtl_python,
        "-c",
        TENSORQTL_CHILD,
        str(args.threads),
        mode,
        str(args.nperm),
        str(args.genotypes),
        str(args.phenotypes),
        str(args.covariates),
        str(out),
        str(cis_table or ""),
    ]


def egene_agreement(tables: dict[str, Path], *, fdr: float) -> list[str]:
    """eGenes at ``qval <= fdr`` of each permutation table, and the Jaccard index of every pair.

    The q-values of every table are recomputed from its ``pval_beta`` by the same function
    (:func:`tbeqtl.association.post.calculate_qvalues`, Storey's q-value as tensorQTL's
    ``calculate_qvalues``), so that differences come from the permutations alone.
    """
    import pandas as pd

    from tbeqtl.association.post import calculate_qvalues

    egenes = {}
    for name, path in tables.items():
        df = pd.read_csv(path, sep="\t", index_col=0)
        egenes[name] = set(calculate_qvalues(df, fdr=fdr).query(f"qval <= {fdr}").index)
    lines = [f"eGenes at q <= {fdr}: " + ", ".join(f"{n} {len(s)}" for n, s in egenes.items())]
    names = list(egenes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            union = egenes[a] | egenes[b]
            jac = len(egenes[a] & egenes[b]) / len(union) if union else 1.0
            lines.append(f"eGene Jaccard {a} vs {b}: {jac:.4f} ({len(egenes[a] ^ egenes[b])} differ)")
    return lines


def nominal_agreement(tbeqtl_dir: Path, tensorqtl_dir: Path) -> list[str]:
    """Pair-by-pair agreement of the two tools' nominal files (tensorQTL stores float32 statistics).

    Reports the pairs of each and those of one only, NaN patterns, exact integer columns, and the
    largest differences: ``|slope_tb - slope_tq| / slope_se`` and relative ``pval_nominal``,
    ``slope_se`` and ``af`` (tensorQTL's float32 ``t``, slopes and frequencies set their size).
    """
    import pandas as pd

    lines = []
    for path in sorted(tbeqtl_dir.glob("tbeqtl.cis_qtl_pairs.*.parquet")):
        chrom = path.name.split(".")[-2]
        tq_path = tensorqtl_dir / f"tq.cis_qtl_pairs.{chrom}.parquet"
        if not tq_path.exists():
            lines.append(f"nominal agreement {chrom}: tensorQTL wrote no {tq_path.name}")
            continue
        tb, tq = pd.read_parquet(path), pd.read_parquet(tq_path)
        m = tb.merge(tq, on=["phenotype_id", "variant_id"], suffixes=("_tb", "_tq"))
        text = f"nominal agreement {chrom}: {len(tb)} / {len(tq)} pairs, {len(m)} in both"
        for c in ("start_distance", "ma_samples", "ma_count"):
            text += f"; {c} {'equal' if (m[c + '_tb'] == m[c + '_tq']).all() else 'DIFFER'}"
        nan = sum(int((m[c + "_tb"].isna() != m[c + "_tq"].isna()).sum()) for c in ("pval_nominal", "slope"))
        text += f"; NaN mismatches {nan}"
        ok = m["slope_se_tb"].to_numpy() > 0
        dslope = (m["slope_tb"] - m["slope_tq"]).abs().to_numpy()[ok] / m["slope_se_tb"].to_numpy()[ok]
        text += f"; max |d slope| / se {np.nanmax(dslope):.2e}"
        for c in ("pval_nominal", "slope_se", "af"):
            a, b = m[c + "_tb"].to_numpy(float), m[c + "_tq"].to_numpy(float)
            fin = np.isfinite(a) & np.isfinite(b) & (a != 0)
            text += f"; max rel d {c} {np.max(np.abs(a[fin] - b[fin]) / np.abs(a[fin])):.2e}"
        lines.append(text)
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["nominal", "permutations"],
        choices=["nominal", "permutations", "independent"],
    )
    parser.add_argument(
        "--nperm", type=int, default=1000, help="permutations (tensorQTL, and tbeqtl by default)"
    )
    parser.add_argument(
        "--tbeqtl-permutations",
        nargs="+",
        default=None,
        help="tbeqtl's --permutations if not --nperm, e.g. '10000 adaptive': each is run in every "
        "alternation against the same tensorQTL run at --nperm",
    )
    parser.add_argument(
        "--egene-fdr",
        type=float,
        default=0.05,
        help="q-value level of the eGene agreement printed after permutations mode",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="alternations per mode (medians reported)")
    parser.add_argument("--genotypes", default=str(DATA / f"{PREFIX}.chr18"))
    parser.add_argument("--phenotypes", default=str(DATA / f"{PREFIX}.expression.bed.gz"))
    parser.add_argument("--covariates", default=str(DATA / f"{PREFIX}.covariates.txt"))
    parser.add_argument(
        "--tensorqtl-python",
        default=None,
        help="python of the benchmark environment holding tensorQTL (default: skip it)",
    )
    parser.add_argument("--gemm-ceiling-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gemm_ceiling_only:
        import torch

        print(
            f"GEMM ceiling ({args.threads} threads): "
            f"float32 {gemm_ceiling(torch.float32, threads=args.threads):.1f} GFLOP/s, "
            f"float64 {gemm_ceiling(torch.float64, threads=args.threads):.1f} GFLOP/s"
        )
        return 0
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(args.threads),
        MKL_NUM_THREADS=str(args.threads),
        OPENBLAS_NUM_THREADS=str(args.threads),
    )
    # bytecode for tbeqtl's modules, as pip writes at install (tensorQTL's are in site-packages): an
    # editable checkout under PYTHONDONTWRITEBYTECODE=1 would recompile ~50 modules in every run
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "tbeqtl")], check=True)
    print(f"load average before: {os.getloadavg()}")
    # the ceilings run in a child: torch's arrays in this process would count in every later child's
    # peak RSS (Linux reports the forked parent's resident pages in the child's ru_maxrss)
    ceiling = subprocess.run(
        [sys.executable, __file__, "--gemm-ceiling-only", "--threads", str(args.threads)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    print(ceiling.stdout.strip())
    if "independent" in args.modes and "permutations" not in args.modes:
        parser.error("--modes independent needs permutations before it (its eGene table feeds both tools)")
    with tempfile.TemporaryDirectory(prefix="bench_cis_") as tmp:
        tmp = Path(tmp)
        cis_table = None
        for mode in args.modes:
            variants = args.tbeqtl_permutations or [str(args.nperm)]
            if mode != "permutations":
                variants = variants[:1]
            runs = {**{v: [] for v in variants}, "tensorqtl": []}
            tables = {}
            for rep in range(args.repeats):
                if args.tensorqtl_python:
                    out_tq = tmp / f"tq_{mode}_{rep}"
                    out_tq.mkdir()
                    runs["tensorqtl"].append(run_child(tensorqtl_cmd(mode, args, out_tq, cis_table), env))
                    tables["tensorQTL"] = out_tq / "tq.cis_qtl.txt.gz"
                for v in variants:
                    out = tmp / f"tb_{mode}_{v}_{rep}"
                    runs[v].append(run_child(tbeqtl_cmd(mode, args, out, cis_table, v), env))
                    tables[f"tbeqtl {v}"] = out / "tbeqtl.cis_qtl.txt.gz"
                if mode == "permutations" and cis_table is None:
                    cis_table = tmp / "egenes_for_independent.txt.gz"
                    cis_table.write_bytes(tables[f"tbeqtl {variants[0]}"].read_bytes())
            for v in variants:
                line = f"{mode}: "
                if mode != "nominal":
                    line = f"{mode} (tbeqtl {v} / tensorQTL {args.nperm} permutations): "
                line += summarize("tbeqtl", runs[v])
                if runs["tensorqtl"]:
                    ratio = statistics.median(r["wall_s"] for r in runs["tensorqtl"]) / statistics.median(
                        r["wall_s"] for r in runs[v]
                    )
                    line += " | " + summarize("tensorQTL", runs["tensorqtl"]) + f" | ratio {ratio:.2f}x"
                print(line, flush=True)
            if mode == "permutations":
                for line in egene_agreement(tables, fdr=args.egene_fdr):
                    print(line, flush=True)
            if mode == "nominal" and runs["tensorqtl"]:
                last = args.repeats - 1
                tb_dir, tq_dir = tmp / f"tb_nominal_{variants[0]}_{last}", tmp / f"tq_nominal_{last}"
                for line in nominal_agreement(tb_dir, tq_dir):
                    print(line, flush=True)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
