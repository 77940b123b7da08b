"""API conventions across the package (after scanpy's test_package_structure).

Every public function or method of every ``tbeqtl`` module has a docstring, takes at most
three positional parameters (``self``/``cls`` not counted) and no positional boolean.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

import tbeqtl

MAX_POSITIONAL = 3

#: The tensorQTL-compatible functions take tensorQTL's positional arguments, so that a tensorQTL
#: script changes its import line and little else (issue 14): the number each may take.
TENSORQTL_POSITIONAL = {
    "tbeqtl.association.cis.map_nominal": 6,  # genotype_df, variant_df, phenotype_df, pos_df, prefix, cov
    "tbeqtl.association.cis.map_cis": 5,  # genotype_df, variant_df, phenotype_df, pos_df, covariates_df
    "tbeqtl.association.cis.map_independent": 6,  # ..., cis_df, phenotype_df, pos_df, covariates_df
    # map_cis's five, then interaction_df (tensorQTL's map_nominal keyword, positional here as map_cis's)
    "tbeqtl.association.interaction_perm.map_cis_interaction": 6,
    "tbeqtl.association.trans.map_trans": 3,  # genotype_df, phenotype_df, covariates_df
    "tbeqtl.association.trans.filter_cis": 3,  # pairs_df, phenotype_pos_df, variant_df
}


def _modules():
    for info in pkgutil.walk_packages(tbeqtl.__path__, prefix="tbeqtl."):
        if info.name.endswith("__main__"):
            continue
        yield importlib.import_module(info.name)


def _public_callables():
    seen = set()
    for module in _modules():
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                key = f"{module.__name__}.{name}"
                if key not in seen:
                    seen.add(key)
                    yield key, obj
            elif inspect.isclass(obj):
                is_dataclass = dataclasses.is_dataclass(obj)
                for meth_name, meth in vars(obj).items():
                    if meth_name.startswith("_") and (meth_name != "__init__" or is_dataclass):
                        continue
                    func = meth.__func__ if isinstance(meth, (classmethod, staticmethod)) else meth
                    if inspect.isfunction(func):
                        key = f"{module.__name__}.{name}.{meth_name}"
                        if key not in seen:
                            seen.add(key)
                            yield key, func


PUBLIC = sorted(_public_callables(), key=lambda kv: kv[0])


@pytest.mark.parametrize(("name", "func"), PUBLIC, ids=[k for k, _ in PUBLIC])
def test_signature_conventions(name, func):
    params = list(inspect.signature(func).parameters.values())
    if params and params[0].name in {"self", "cls"}:
        params = params[1:]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    allowed = TENSORQTL_POSITIONAL.get(name, MAX_POSITIONAL)
    assert len(positional) <= allowed, f"{name}: {len(positional)} positional parameters"
    bools = [p.name for p in positional if isinstance(p.default, bool)]
    assert not bools, f"{name}: positional boolean parameter(s) {bools}; make them keyword-only"


@pytest.mark.parametrize(("name", "func"), PUBLIC, ids=[k for k, _ in PUBLIC])
def test_public_callables_have_docstrings(name, func):
    if name.endswith(".__init__"):
        return  # documented in the class docstring (numpydoc convention)
    if name.startswith("tbeqtl.cli.") and name.rsplit(".", 1)[-1] in {"add_arguments", "run"}:
        return  # the subcommand's HELP and --help text document these
    assert inspect.getdoc(func), f"{name} has no docstring"
