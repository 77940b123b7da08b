"""tbeqtl: telescoping bimodal LDA (TBLDA) and MatrixEQTL-equivalent eQTL mapping.

Gewirtz, Townes & Engelhardt (2022), *Life Science Alliance* 5(12):e202101300.

``TBLDA``, ``map_eqtls`` and ``simulate`` are imported on first use so that ``import tbeqtl``
stays fast: a script (or ``tbeqtl cis``) that only runs association tests imports neither torch
nor the simulator. The attribute ``tbeqtl.simulate`` is always the function, also after the
subpackage ``tbeqtl.simulate`` has been imported (the package's module type keeps it so).
"""

from __future__ import annotations

import importlib
import sys
import types
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tbeqtl")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

from .data import EQTLData
from .errors import InputError, TbeqtlError

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


class _Package(types.ModuleType):
    """The module type of ``tbeqtl``: ``tbeqtl.simulate`` is the simulator function, imported on use."""

    @property
    def simulate(self):
        """:func:`tbeqtl.simulate.core.simulate` (the subpackage is ``sys.modules["tbeqtl.simulate"]``)."""
        from .simulate.core import simulate

        return simulate

    @simulate.setter
    def simulate(self, value) -> None:
        # the import system binds the subpackage here when it is first imported; the attribute
        # stays the function (``from tbeqtl.simulate import ...`` reads sys.modules, unaffected)
        if not isinstance(value, types.ModuleType):
            raise AttributeError("tbeqtl.simulate is the simulator function and cannot be rebound")


sys.modules[__name__].__class__ = _Package
