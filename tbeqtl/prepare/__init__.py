"""``tbeqtl prepare``: the paper's feature selection from raw GTEx-shaped inputs.

:func:`prepare` reads a count matrix (GTEx GCT of all tissues, TSV/parquet or h5ad), the sample
and subject attribute tables, genotypes (PLINK 1/2, VCF/BCF, dosage TSV; donors a superset of the
samples' individuals) and a gene annotation, keeps the paper's genes and SNPs and writes a
prepared data folder (:mod:`tbeqtl.pipeline.prepared`) that ``tbeqtl run --data DIR`` reads.
:class:`PrepareOptions` holds every choice; see :mod:`tbeqtl.prepare.core` for the steps.
"""

from __future__ import annotations

from .core import prepare
from .options import PrepareOptions

__all__ = ["PrepareOptions", "prepare"]
