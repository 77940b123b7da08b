"""`tbeqtl run --scheduler ADDRESS` on a real Dask cluster: one `dask scheduler` and two `dask worker`
processes started with distributed's command-line tools.

One worker is SIGKILLed while it fits a pair (its ``status.json`` shows the hold-out stage done and
the fit not). The run reports that pair as "worker lost", finishes the other pairs and exits with
status 1; a rerun with a new worker retries only the lost pair (finished pairs' files untouched).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tbeqtl.layout import RunLayout
from tbeqtl.pipeline import PipelineConfig

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SIM = {
    "preset": "tiny",
    "seed": 4,
    "n_individuals": 80,
    "n_samples": 280,
    "n_tissues": 4,
    "n_genes": 60,
    "n_snps": 160,
    "n_chromosomes": 2,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


class Cluster:
    """A scheduler and its workers as subprocesses; every process is ended by :meth:`close`."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        self.procs: list[subprocess.Popen] = []
        self.workers: dict[str, subprocess.Popen] = {}
        port = self.address.rsplit(":", 1)[1]
        self.scheduler = self._start(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--no-dashboard",
            ],
            "scheduler",
        )

    def _start(self, cmd: list[str], name: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=self.tmp)
        log.close()
        self.procs.append(proc)
        return proc

    def add_worker(self) -> subprocess.Popen:
        name = f"worker{len(self.workers)}"
        proc = self._start(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                self.address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                name,
                "--local-directory",
                str(self.tmp / name),
            ],
            name,
        )
        self.workers[name] = proc
        return proc

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout="60s", set_as_default=False) as client:
            client.wait_for_workers(n, timeout=timeout)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)


@pytest.fixture
def cluster(tmp_path):
    (tmp_path / "cluster").mkdir()
    running = Cluster(tmp_path / "cluster")
    try:
        running.add_worker()
        running.add_worker()
        running.wait_for_workers(2)
        yield running
    finally:
        running.close()


def _status(out: Path) -> dict[str, dict]:
    found = {}
    for pair in RunLayout(out).pairs():
        try:
            found[pair.name] = json.loads(pair.status.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
    return found


def _worker_running(client, pair: str) -> str | None:
    """Name of the worker whose processing tasks include ``pair``'s task (asked of the scheduler)."""
    processing = client.processing()
    workers = client.scheduler_info(n_workers=-1)["workers"]
    for worker, keys in processing.items():
        if any(f"pair-{pair}-" in str(key) for key in keys):
            return str(workers[worker]["name"])
    return None


def _kill_a_worker_while_it_fits(cluster: Cluster, out: Path, run: subprocess.Popen) -> str:
    """SIGKILL the worker running a pair whose status.json shows its fit started and not finished."""
    from distributed import Client

    deadline = time.monotonic() + 300
    with Client(cluster.address, timeout="30s", set_as_default=False) as client:
        while time.monotonic() < deadline and run.poll() is None:
            for name, status in _status(out).items():
                if status.get("holdout") == "done" and "fit" not in status and "pair" not in status:
                    worker = _worker_running(client, name)
                    if worker in cluster.workers:  # the worker process itself (no nanny to restart it)
                        os.kill(cluster.workers[worker].pid, signal.SIGKILL)
                        return name
            time.sleep(0.05)
    raise AssertionError("no pair was caught in its fit")


def _files_of(out: Path, pair: str) -> dict[str, int]:
    root = RunLayout(out).pair(*pair.split("__")).root
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_worker_killed_midway_is_reported_and_rerun_retries_only_that_pair(tmp_path, cluster):
    from tbeqtl.simulate import simulate

    simulate(**SIM).write(tmp_path / "sim")
    config = PipelineConfig.preset(
        "test",
        data={"path": str(tmp_path / "sim"), "all_pairs": True},
        fit={"max_steps": 400, "n_topics": 4},
        mapping={"tissues": ["Whole Blood"], "factor_sets": ["all"], "exhaustive": False},
    )
    config.write(tmp_path / "run.toml")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "tbeqtl",
        "run",
        "--config",
        str(tmp_path / "run.toml"),
        "--scheduler",
        cluster.address,
        "--out",
        str(out),
    ]
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(), text=True)
    try:
        lost = _kill_a_worker_while_it_fits(cluster, out, run)
        _, stderr = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1, stderr[-3000:]
    status = pd.read_csv(RunLayout(out).summary / "pairs.tsv", sep="\t").set_index("pair")
    assert len(status) == 4
    message = status.loc[lost, "message"]
    assert status.loc[lost, "status"] == "failed"
    assert message.startswith(f"worker lost while running pair {lost}: KilledWorker"), message
    assert "out of memory or killed; see the worker's log" in message
    others = status.index.drop(lost)
    assert (status.loc[others, "status"] == "done").all(), status
    assert f"pair {lost} failed: worker lost" in stderr
    assert json.loads(RunLayout(out).pair(*lost.split("__")).status.read_text())["pair"].startswith(
        "failed: worker lost"
    )
    before = {name: _files_of(out, name) for name in others}

    cluster.add_worker()
    cluster.wait_for_workers(2)
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env())
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    status = pd.read_csv(RunLayout(out).summary / "pairs.tsv", sep="\t").set_index("pair")
    assert (status["status"] == "done").all()
    run_json = json.loads(RunLayout(out).run_json.read_text())
    assert {name for name, p in run_json["pairs"].items() if not p["reused"]} == {lost}
    for name in others:
        assert _files_of(out, name) == before[name], f"{name} was redone"
    assert run_json["pairs"][lost]["seconds_load"] > 0
