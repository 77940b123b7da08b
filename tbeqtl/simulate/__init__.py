"""Simulated GTEx-like telescoping data sets from the TBLDA generative model, with planted truth.

:func:`simulate` (in :mod:`tbeqtl.simulate.core`) draws a data set and returns a
:class:`Simulation`; the steps live in one module each:

- :mod:`~tbeqtl.simulate.core`: parameters, presets and the assembly of data and truth;
- :mod:`~tbeqtl.simulate.draw`: numerical draws of the model's equations 1-9;
- :mod:`~tbeqtl.simulate.genome`: GTEx-style IDs, tissues, gene and SNP annotation;
- :mod:`~tbeqtl.simulate.effects`: planted cis/trans-eQTLs and covariate effects;
- :mod:`~tbeqtl.simulate.implied`: the associations the model implies beyond the planted ones;
- :mod:`~tbeqtl.simulate.write`: the data set in real file formats plus ``truth/``.

``import tbeqtl`` binds the attribute ``tbeqtl.simulate`` to the function, so
``tbeqtl.simulate(preset="tiny")`` always works; import this package's names and modules with
``from tbeqtl.simulate import ...`` (``from tbeqtl.simulate import write``, not
``import tbeqtl.simulate.write``).
"""

from __future__ import annotations

from .core import PRESETS, Simulation, SimulationParams, SimulationTruth, resolve_params, simulate

__all__ = ["PRESETS", "Simulation", "SimulationParams", "SimulationTruth", "resolve_params", "simulate"]
