"""`tbeqtl run` on a 3 x 3 grid of chromosome pairs on a local Dask cluster with 2 workers.

The run is killed midway (SIGKILL to its process group: the driver and the Dask workers);
rerunning the same command finishes the remaining pairs without redoing the finished ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tbeqtl.layout import RunLayout
from tbeqtl.pipeline import PipelineConfig

pytestmark = pytest.mark.slow

SIM = {"preset": "tiny", "seed": 2, "n_individuals": 120, "n_samples": 420, "n_tissues": 4, "n_genes": 90,
       "n_snps": 240, "n_chromosomes": 3}


def _done_pairs(out) -> dict[str, int]:
    done = {}
    for pair in RunLayout(out).pairs():
        try:
            status = json.loads(pair.status.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        if status.get("pair") == "done":
            done[pair.name] = (pair.fit / "run.json").stat().st_mtime_ns
    return done


def test_kill_midway_then_rerun_finishes_without_redoing(tmp_path):
    from tbeqtl.simulate import simulate

    simulate(**SIM).write(tmp_path / "sim")
    config = PipelineConfig.preset("test", data={"path": str(tmp_path / "sim"), "all_pairs": True},
                                   fit={"max_steps": 150},
                                   mapping={"tissues": ["Whole Blood"], "factor_sets": ["all", "general"]})
    config.write(tmp_path / "run.toml")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "tbeqtl", "run", "--config", str(tmp_path / "run.toml"), "--workers", "2",
           "--out", str(out)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and len(_done_pairs(out)) < 2 and proc.poll() is None:
            time.sleep(0.5)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        assert len(_done_pairs(out)) >= 2
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finished = _done_pairs(out)
    assert 2 <= len(finished) < 9

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = _done_pairs(out)
    assert len(after) == 9
    for name, mtime in finished.items():
        assert after[name] == mtime, f"{name} was redone"
    run = json.loads(RunLayout(out).run_json.read_text())
    assert {name for name, p in run["pairs"].items() if p["reused"]} >= set(finished)
    assert all(p["status"] == "done" for p in run["pairs"].values())
    status = pd.read_csv(RunLayout(out).summary / "pairs.tsv", sep="\t")
    assert len(status) == 9 and (status["status"] == "done").all()
    assert "already finished, skipped" in (out / "tbeqtl.log").read_text()
    eqtls = pd.read_parquet(RunLayout(out).summary / "eqtls.parquet")
    assert set(eqtls["pair"]) <= set(status["pair"])
