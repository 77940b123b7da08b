"""The CLI dispatcher: --help, --version, logging to <out>/tbeqtl.log, errors as exit status 2."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tbeqtl.cli
from tbeqtl import __version__
from tbeqtl.cli import SUBCOMMAND_MODULES, build_parser, main

CLI_DIR = Path(tbeqtl.cli.__file__).parent

#: Every module of tbeqtl/cli/ that defines a subcommand, and the command it defines. Adding a
#: subcommand module means adding it here and to tbeqtl.cli.SUBCOMMAND_MODULES.
EXPECTED_COMMANDS = {
    "simulate": "simulate",
    "map": "map",
    "cis": "cis",
    "trans": "trans",
    "fit": "fit",
    "rank": "rank",
    "prepare": "prepare",
    "run": "run",
    "enrich": "enrich",
    "compare_gtex": "compare-gtex",
    "report": "report",
    "demo": "demo",
}


def _defines_command(path: Path) -> bool:
    """Whether a module assigns ``COMMAND`` at top level (read without importing it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return any(isinstance(node, (ast.Assign, ast.AnnAssign))
               and any(isinstance(t, ast.Name) and t.id == "COMMAND"
                       for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))
               for node in tree.body)


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_every_cli_module_with_a_command_is_listed():
    """A subcommand module that is not in SUBCOMMAND_MODULES would never reach ``tbeqtl --help``."""
    found = {p.stem for p in CLI_DIR.glob("*.py") if _defines_command(p)}
    assert found == set(EXPECTED_COMMANDS)
    listed = set(SUBCOMMAND_MODULES)
    assert not found - listed, f"not in SUBCOMMAND_MODULES: {sorted(found - listed)}"
    assert not listed - found, f"listed but defines no COMMAND: {sorted(listed - found)}"
    assert len(SUBCOMMAND_MODULES) == len(set(SUBCOMMAND_MODULES))


def test_every_listed_subcommand_imports_and_is_in_help():
    helped = subprocess.run([sys.executable, "-m", "tbeqtl", "--help"], capture_output=True, text=True,
                            check=True).stdout
    # argparse lists each subcommand, in order, on a line indented by four spaces under COMMAND
    listed = re.findall(r"^ {4}([a-z][a-z-]*)(?: |$)", helped, flags=re.MULTILINE)
    commands = [importlib.import_module(f"tbeqtl.cli.{name}").COMMAND for name in SUBCOMMAND_MODULES]
    assert listed == commands
    assert commands == [EXPECTED_COMMANDS[name] for name in SUBCOMMAND_MODULES]


def test_a_listed_subcommand_that_fails_to_import_is_an_error(monkeypatch):
    monkeypatch.setattr(tbeqtl.cli, "SUBCOMMAND_MODULES", (*SUBCOMMAND_MODULES, "no_such_command"))
    with pytest.raises(ModuleNotFoundError, match="tbeqtl.cli.no_such_command"):
        build_parser()
    # a module that exists but whose own import fails is an error too
    monkeypatch.setattr(tbeqtl.cli, "SUBCOMMAND_MODULES", ("simulate",))
    monkeypatch.setitem(sys.modules, "tbeqtl.cli.simulate", None)  # import of it raises ImportError
    with pytest.raises(ImportError):
        build_parser()


def test_no_command_is_usage_error():
    assert main([]) == 2


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "tbeqtl", "--help"], capture_output=True, text=True,
                         check=True)
    assert "usage: tbeqtl" in out.stdout


def test_threads_option_limits_blas_and_torch(monkeypatch):
    """--threads reaches the BLAS pools already loaded (threadpoolctl, a declared dependency) and torch."""
    import numpy as np  # noqa: F401 - loads the BLAS whose pool is limited
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from tbeqtl.cli import _set_threads

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    before_torch = torch.get_num_threads()
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas, "numpy's BLAS is not visible to threadpoolctl"
    before = {pool["filepath"]: pool["num_threads"] for pool in blas}
    try:
        _set_threads(1)
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before_torch)
        threadpool_limits(max(before.values()), user_api="blas")
