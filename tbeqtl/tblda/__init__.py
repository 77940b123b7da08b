"""Telescoping bimodal LDA (TBLDA): model, fast SVI fit, ancestry subspace, feature ranking.

Public API: :class:`TBLDA` (the estimator), :func:`rank_features` (per-topic gene and SNP
ranking), the ancestry readers and estimator (:mod:`tbeqtl.tblda.ancestry`) and model
save/load (:mod:`tbeqtl.tblda.io`).
"""

from .estimator import TBLDA

__all__ = ["TBLDA"]
