"""Compatibility re-export: the module moved to :mod:`tbeqtl.simulate.implied`.

Kept only while ``tests/test_pipeline_power.py`` (being edited elsewhere) still imports the old
path; delete it once that import reads ``from tbeqtl.simulate.implied import ...``.
"""

from __future__ import annotations

from .simulate.implied import implied_associations

__all__ = ["implied_associations"]
