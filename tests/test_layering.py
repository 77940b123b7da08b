"""Import rules between tbeqtl's layers, read from the source with :mod:`ast`.

Importing :mod:`tbeqtl` loads :mod:`tbeqtl.simulate` eagerly, so which modules are in
``sys.modules`` after an import says nothing; the import statements themselves (top level and
inside functions, absolute and relative, plus ``importlib.import_module`` / ``__import__`` of a
literal name) are what a module can pull in.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tbeqtl

PACKAGE_ROOT = Path(tbeqtl.__file__).resolve().parent

#: layer -> packages none of its modules may import
FORBIDDEN = {
    "tbeqtl.report": ("tbeqtl.pipeline", "tbeqtl.enrich", "tbeqtl.simulate"),
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path, *, root: Path = PACKAGE_ROOT) -> set[str]:
    """Every module name an import statement of ``path`` may load (relative ones resolved).

    Parameters
    ----------
    path
        A module of the tbeqtl package.
    root
        The tbeqtl package folder.

    Returns
    -------
    set of str
        ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (``c`` may be a submodule).
    """
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[:len(parts) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args and \
                    isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                out.add(node.args[0].value)
    return out


def violations(layer: str, forbidden: tuple[str, ...], *, root: Path = PACKAGE_ROOT) -> list[str]:
    """List ``module -> imported`` for every forbidden import of a layer.

    Parameters
    ----------
    layer
        A subpackage, e.g. ``"tbeqtl.report"``.
    forbidden
        Packages the layer must not import.
    root
        The tbeqtl package folder.

    Returns
    -------
    list of str
        One entry per offending module imported (empty when the rule holds).
    """
    folder = root.parent.joinpath(*layer.split("."))
    out = []
    for path in sorted(folder.rglob("*.py")):
        bad: list[str] = []
        for name in sorted(imported_modules(path, root=root)):
            hit = any(name == f or name.startswith(f + ".") for f in forbidden)
            # "from a.b import c" also yields a.b.c: report the import once, by its module
            if hit and not any(name.startswith(b + ".") for b in bad):
                bad.append(name)
        out += [f"{_module_name(path, root)} -> {name}" for name in bad]
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer):
    assert violations(layer, FORBIDDEN[layer]) == []


def test_the_import_reader_sees_every_form(tmp_path):
    """The reader catches top-level, nested, relative and dynamic imports (so the rule can fail)."""
    pkg = tmp_path / "tbeqtl" / "report"
    pkg.mkdir(parents=True)
    (tmp_path / "tbeqtl" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from .. import simulate\n")
    (pkg / "a.py").write_text("import numpy\nfrom ..layout import RunLayout\n"
                              "def f():\n    from ..pipeline.robust import maf_residuals\n")
    (pkg / "b.py").write_text("import importlib\nimportlib.import_module('tbeqtl.enrich.go')\n")
    (pkg / "c.py").write_text("from tbeqtl.io import read_dataset\nimport tbeqtl.simulate_effects\n")
    found = violations("tbeqtl.report", FORBIDDEN["tbeqtl.report"], root=tmp_path / "tbeqtl")
    assert found == ["tbeqtl.report -> tbeqtl.simulate", "tbeqtl.report.a -> tbeqtl.pipeline.robust",
                     "tbeqtl.report.b -> tbeqtl.enrich.go"]
