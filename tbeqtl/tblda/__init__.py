"""Telescoping bimodal LDA (TBLDA): model, fast fit, ancestry subspace, feature ranking.

Public API:

- :class:`TBLDA`: the estimator (``TBLDA(n_topics, ...).fit(data, ancestry=...)``),
  with :meth:`TBLDA.save` / :meth:`TBLDA.load` and :meth:`TBLDA.write_outputs`;
- :func:`rank_features`: per-topic gene (2-Wasserstein) and SNP (MAF-residual) ranking as
  a ``feature_ranking`` table;
- ancestry subspace: :func:`check_ancestry`, :func:`estimate_ancestry`, and the readers
  :func:`read_terastructure_beta`, :func:`read_terastructure_theta`, :func:`read_admixture_p`,
  :func:`read_admixture_q` (defined in :mod:`tbeqtl.io.ancestry`, re-exported here);
- :func:`read_topic_table` for the ``*_topics.tsv`` files of ``tbeqtl fit``.

Modules: :mod:`~tbeqtl.tblda.model` (Pyro model/guide, paper symbols),
:mod:`~tbeqtl.tblda.kernels` (fused likelihoods), :mod:`~tbeqtl.tblda.estimator`,
:mod:`~tbeqtl.tblda.cavi` (optional coordinate ascent), :mod:`~tbeqtl.tblda.convergence`,
:mod:`~tbeqtl.tblda.checkpoint`, :mod:`~tbeqtl.tblda.ancestry`, :mod:`~tbeqtl.tblda.ranking`,
:mod:`~tbeqtl.tblda.io`.
"""

from __future__ import annotations

import importlib

from .ancestry import (
    check_ancestry,
    estimate_ancestry,
    read_admixture_p,
    read_admixture_q,
    read_terastructure_beta,
    read_terastructure_theta,
)
from .ranking import rank_features

#: Names whose modules import torch: resolved on first access, so that the CLI and the
#: torch-free parts (ancestry, ranking, convergence) load without it.
_LAZY = {
    "TBLDA": "estimator",
    "load_model": "io",
    "read_topic_table": "io",
    "save_model": "io",
}

__all__ = [
    "TBLDA",
    "check_ancestry",
    "estimate_ancestry",
    "load_model",
    "rank_features",
    "read_admixture_p",
    "read_admixture_q",
    "read_terastructure_beta",
    "read_terastructure_theta",
    "read_topic_table",
    "save_model",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
