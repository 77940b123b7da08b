"""The CLI dispatcher: --help, --version, logging to <out>/tbeqtl.log, errors as exit status 2."""

from __future__ import annotations

import subprocess
import sys

from tbeqtl import __version__
from tbeqtl.cli import build_parser, main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_subcommands():
    text = build_parser().format_help()
    assert "tbeqtl" in text


def test_no_command_is_usage_error():
    assert main([]) == 2


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "tbeqtl", "--help"], capture_output=True, text=True,
                         check=True)
    assert "usage: tbeqtl" in out.stdout
