"""The fit job of a pair: drop uninformative features, fit TBLDA on the fit samples, write its outputs."""

from __future__ import annotations

import logging

import numpy as np

from ...data import EQTLData
from ...layout import PairLayout
from .common import PairContext, pair_ancestry

__all__ = []

logger = logging.getLogger(__name__)


class _NoFeatures(Exception):
    """Nothing left to fit after filtering (the pair is skipped, not failed)."""


def _drop_empty(sub: EQTLData) -> EQTLData:
    """Drop genes with no counts and monomorphic/all-missing SNPs in the fit subset."""
    keep_genes = sub.counts_df.index[sub.counts_df.to_numpy().sum(axis=1) > 0]
    geno = sub.genotype_df.to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(geno, axis=1) - np.nanmin(geno, axis=1) if geno.size else np.zeros(0)
    keep_snps = sub.genotype_df.index[np.nan_to_num(spread, nan=0.0) > 0]
    if len(keep_genes) == len(sub.genes) and len(keep_snps) == len(sub.snps):
        return sub
    if not len(keep_genes) or not len(keep_snps):
        raise _NoFeatures("no gene with reads or no polymorphic SNP left in the fit samples")
    logger.info(
        "dropped %d uninformative genes and %d SNPs of the pair",
        len(sub.genes) - len(keep_genes),
        len(sub.snps) - len(keep_snps),
    )
    return sub.subset(genes=keep_genes, snps=keep_snps)


def _fit_stage(ctx: PairContext, layout: PairLayout, sub: EQTLData):
    from ...tblda import TBLDA

    fc = ctx.config.fit
    options = dict(fc.options)
    options.setdefault("min_steps", min(5000, int(fc.max_steps)))
    options.setdefault("window", max(2, min(1000, int(fc.max_steps) // 5)))
    options.setdefault("average_window", max(1, min(1000, int(fc.max_steps) // 5)))
    options.setdefault("progress", False)
    options.setdefault("device", "cpu")
    options.setdefault("n_ancestry", fc.n_ancestry)
    options.setdefault("checkpoint_every", max(1, min(1000, int(fc.max_steps) // 4)))
    model = TBLDA(
        fc.n_topics, max_steps=fc.max_steps, learning_rate=fc.learning_rate, random_state=fc.seed, **options
    )
    ancestry = None if ctx.ancestry_files is None else pair_ancestry(ctx, sub.snps, sub.individuals)
    model.fit(sub, ancestry=ancestry, resume=True, checkpoint_dir=layout.fit / "checkpoint")
    model.write_outputs(layout.fit)
    return model
