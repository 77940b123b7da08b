"""``import tbeqtl`` stays light, and ``tbeqtl.simulate`` is the simulator function however it is reached."""

import subprocess
import sys
import textwrap
from pathlib import Path

import tbeqtl


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    ).stdout


def test_import_tbeqtl_imports_neither_the_simulator_nor_torch():
    out = _run(
        """
        import sys
        import tbeqtl
        heavy = ("tbeqtl.simulate", "torch", "scipy.stats", "statsmodels")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_simulate_attribute_is_the_function_before_and_after_the_subpackage_is_imported():
    out = _run(
        """
        import tbeqtl, types
        first = tbeqtl.simulate
        from tbeqtl.simulate import write, core  # binds the subpackage on the package: must not stick
        import tbeqtl.simulate.genome
        import tbeqtl.simulate as aliased
        print(callable(first), first is core.simulate, tbeqtl.simulate is core.simulate,
              isinstance(tbeqtl.simulate, types.FunctionType), aliased is core.simulate,
              "simulate" in tbeqtl.__all__)
        """
    )
    assert out.split() == ["True"] * 6


def test_simulate_cannot_be_rebound_to_something_else():
    out = _run(
        """
        import tbeqtl
        try:
            tbeqtl.simulate = 3
        except AttributeError as exc:
            print("refused", exc)
        """
    )
    assert out.startswith("refused")


def test_a_subcommand_imports_only_its_own_module():
    out = _run(
        """
        import sys
        from tbeqtl.cli import main
        try:
            main(["cis", "--help"])
        except SystemExit:
            pass
        print(sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("tbeqtl.cli.")))
        """
    )
    assert out.splitlines()[-1] == "['cis', 'cohort_inputs']"


def test_every_subcommand_parses_through_its_own_parser_and_the_full_one():
    from tbeqtl.cli import SUBCOMMAND_MODULES, build_parser

    full = build_parser()
    for name in SUBCOMMAND_MODULES:
        command = name.replace("_", "-")
        alone = build_parser(command)
        assert list(alone._subparsers._group_actions[0].choices) == [command]
        assert command in full._subparsers._group_actions[0].choices
    # an unknown word or an option builds the full parser (argparse then reports the error / help)
    for word in ("no-such-command", "--help"):
        assert len(build_parser(word)._subparsers._group_actions[0].choices) == len(SUBCOMMAND_MODULES)


def test_program_entry_point_returns_main_status_and_freezes_the_collector():
    """``tbeqtl`` / ``python -m tbeqtl`` run main() then gc.freeze() (plumbing; in a child process).

    The console script and ``__main__`` must go through ``entry_point``; in-process ``main()`` must
    not freeze the caller's collector.
    """
    code = (
        "import gc, sys\n"
        "from tbeqtl import cli\n"
        "sys.argv = ['tbeqtl']\n"  # no command: help on stderr, status 2
        "assert cli.main([]) == 2 and gc.get_freeze_count() == 0\n"
        "print(cli.entry_point(), gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "True"]
    main_py = (Path(tbeqtl.__file__).parent / "__main__.py").read_text()
    assert "entry_point()" in main_py
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["tbeqtl"] == "tbeqtl.cli:entry_point"
