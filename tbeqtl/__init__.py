"""tbeqtl: telescoping bimodal LDA (TBLDA) and MatrixEQTL-equivalent eQTL mapping.

Gewirtz, Townes & Engelhardt (2022), *Life Science Alliance* 5(12):e202101300.

``TBLDA`` and ``map_eqtls`` are imported lazily so that ``import tbeqtl`` stays fast and a
script that only runs association tests does not import torch. ``simulate`` is bound eagerly
(numpy, pandas and scipy only): the attribute ``tbeqtl.simulate`` is then always the function,
whichever ``tbeqtl.simulate`` submodules are imported later.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tbeqtl")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from .data import EQTLData
from .errors import InputError, TbeqtlError
from .simulate import simulate  # after importing the package: rebinds tbeqtl.simulate to the function

#: name -> module that defines it; resolved on first access.
_LAZY = {
    "TBLDA": "tbeqtl.tblda",
    "map_eqtls": "tbeqtl.association",
}

__all__ = ["EQTLData", "InputError", "TbeqtlError", "__version__", "simulate", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tbeqtl' has no attribute {name!r}")
