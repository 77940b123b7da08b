"""tbeqtl: telescoping bimodal LDA (TBLDA) and MatrixEQTL-equivalent eQTL mapping.

Gewirtz, Townes & Engelhardt (2022), *Life Science Alliance* 5(12):e202101300.

The public API is imported lazily so that ``import tbeqtl`` stays fast and a script that
only runs association tests does not import torch.
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

#: name -> module that defines it; resolved on first access.
_LAZY = {
    "simulate": "tbeqtl.simulate",
    "TBLDA": "tbeqtl.tblda",
    "map_eqtls": "tbeqtl.association",
}

__all__ = ["EQTLData", "InputError", "TbeqtlError", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tbeqtl' has no attribute {name!r}")
