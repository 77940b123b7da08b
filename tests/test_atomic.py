"""Tests of tbeqtl.atomic: outputs get the permissions ``open()`` gives under the umask, and a
failed write leaves the old file and no temporary file behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from tbeqtl.atomic import atomic_path, atomic_write, make_temp_dir, write_json, write_table

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")

# umask -> (mode of a new file, mode of a new folder), as open() and mkdir() give them
UMASKS = {0o022: (0o644, 0o755), 0o002: (0o664, 0o775)}


@pytest.fixture(params=sorted(UMASKS), ids=lambda m: f"umask{m:03o}")
def umask(request):
    """Run the test under one umask and restore the previous one afterwards."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _plain_open_mode(folder: Path) -> int:
    """The mode a plain ``open(..., "w")`` gives a new file here: the reference for every writer."""
    probe = folder / "probe.txt"
    with open(probe, "w") as handle:
        handle.write("x")
    mode = _mode(probe)
    probe.unlink()
    return mode


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


TABLE = pd.DataFrame({"gene": ["g1", "g2"], "p_value": [0.5, 0.01]})


@pytest.mark.parametrize("name", ["t.tsv", "t.tsv.gz", "t.parquet"])
def test_write_table_mode_follows_umask(tmp_path, umask, name):
    write_table(TABLE, tmp_path / name)
    assert _mode(tmp_path / name) == UMASKS[umask][0] == _plain_open_mode(tmp_path)


def test_write_json_mode_follows_umask(tmp_path, umask):
    write_json({"a": 1}, tmp_path / "run.json")
    assert _mode(tmp_path / "run.json") == UMASKS[umask][0]


@pytest.mark.parametrize("mode", ["w", "wb"])
def test_atomic_write_mode_follows_umask(tmp_path, umask, mode):
    with atomic_write(tmp_path / "out.bin", mode) as handle:
        handle.write(b"abc" if "b" in mode else "abc")
    assert _mode(tmp_path / "out.bin") == UMASKS[umask][0]


def test_atomic_path_mode_follows_umask_and_new_folders_too(tmp_path, umask):
    target = tmp_path / "new_folder" / "report.html"
    with atomic_path(target) as tmp:
        assert _mode(tmp) == UMASKS[umask][0]  # already right before the writer touches it
        tmp.write_text("<html></html>")
    assert target.read_text() == "<html></html>"
    assert _mode(target) == UMASKS[umask][0]
    assert _mode(target.parent) == UMASKS[umask][1]


def test_replacing_a_private_file_gives_a_readable_one(tmp_path, umask):
    """A result left 0600 by an older tbeqtl becomes group-readable when rewritten."""
    target = tmp_path / "run.json"
    target.write_text("{}")
    target.chmod(0o600)
    write_json({"b": 2}, target)
    assert _mode(target) == UMASKS[umask][0]


def test_make_temp_dir_mode_follows_umask(tmp_path, umask):
    first = make_temp_dir(tmp_path, prefix=".stage.")
    second = make_temp_dir(tmp_path, prefix=".stage.")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith(".stage.") and first.name.endswith(".tmp")
    assert _mode(first) == UMASKS[umask][1]


def test_write_simulation_folder_is_readable(tmp_path, umask):
    from tbeqtl.simulate import simulate
    from tbeqtl.simulate.write import write_simulation

    out = write_simulation(simulate(preset="tiny", seed=3, n_individuals=8, n_samples=16), tmp_path / "sim")
    assert _mode(out) == UMASKS[umask][1]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and {_mode(p) for p in files} == {UMASKS[umask][0]}
    assert {_mode(p) for p in out.rglob("*") if p.is_dir()} <= {UMASKS[umask][1]}


def test_failure_in_atomic_path_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "cis.parquet"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="killed"), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, keep={"cis.parquet"}) == []


def test_failure_in_atomic_write_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="killed"), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path, keep={"report.html"}) == []


def test_failure_in_write_json_keeps_old_file_and_no_temp(tmp_path):
    target = tmp_path / "run.json"
    target.write_text('{"old": true}')
    with pytest.raises(TypeError, match="not JSON serialisable"):
        write_json({"x": object()}, target)
    assert target.read_text() == '{"old": true}'
    assert _leftovers(tmp_path, keep={"run.json"}) == []
