"""The genotype pass of ``tbeqtl prepare``: filter and LD-prune one chromosome at a time.

For each chromosome (natural order) the variants are read in blocks of about 128 MB of float32
(:meth:`~tbeqtl.io.genotypes.GenotypeSource.read_chrom` for the kept individuals only), the
autosome, imputed, missingness and MAF filters applied (:mod:`tbeqtl.prepare.variants`), the
survivors LD-pruned with plink 1.9 (:mod:`tbeqtl.prepare.ld`), and the pruned chromosome handed
to ``emit(chrom, genotype_df)``. Memory: the survivors of one chromosome in float32, plus a
float64 hard-call copy while plink's input is written.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .genes import AUTOSOMES, chrom_key
from .ld import ld_prune
from .options import PrepareOptions
from .variants import allele_stats

__all__ = ["SNP_STEPS", "select_variants"]

logger = logging.getLogger(__name__)

#: Per-step SNP counts, in filter order (manifest ``counts``).
SNP_STEPS = (
    "snps_input",
    "snps_autosomal",
    "snps_not_imputed",
    "snps_missing_ok",
    "snps_maf_ok",
    "snps_ld_pruned",
)

#: Bytes of float32 dosages read per block.
BLOCK_BYTES = 1 << 27


def _filter_chrom(
    source,
    chrom: str,
    individuals: pd.Index,
    imputed: pd.Series | None,
    options: PrepareOptions,
    counts: dict,
) -> pd.DataFrame:
    """Return the chromosome's variants passing the imputed, missingness and MAF filters (float32)."""
    rows = source.variant_df.index[(source.variant_df["chrom"] == chrom).to_numpy()]
    step = max(1, BLOCK_BYTES // (4 * max(1, len(individuals))))
    kept_blocks = []
    for start in range(0, len(rows), step):
        ids = rows[start : start + step]
        values = source.read_chrom(chrom, samples=list(individuals), start=start, stop=start + len(ids))
        keep = np.ones(len(ids), dtype=bool)
        if imputed is not None:
            keep &= ~imputed.reindex(ids).to_numpy(dtype=bool)
        counts["snps_not_imputed"] += int(keep.sum())
        maf, missing = allele_stats(values)
        keep &= missing <= options.max_missing
        counts["snps_missing_ok"] += int(keep.sum())
        keep &= maf >= options.maf
        counts["snps_maf_ok"] += int(keep.sum())
        kept_blocks.append(pd.DataFrame(values[keep], index=ids[keep], columns=individuals))
    return pd.concat(kept_blocks) if kept_blocks else pd.DataFrame(columns=individuals, dtype=np.float32)


def select_variants(
    source,
    individuals: pd.Index,
    *,
    imputed: pd.Series | None,
    options: PrepareOptions,
    workdir: str | Path,
    emit: Callable[[str, pd.DataFrame], None],
) -> tuple[pd.DataFrame, dict]:
    """Filter and LD-prune every chromosome, handing each pruned chromosome to ``emit``.

    Parameters
    ----------
    source
        A genotype source (:func:`tbeqtl.io.open_genotypes`).
    individuals
        The kept individuals (columns of every emitted frame, in this order).
    imputed
        Imputed flag per variant (``None``: the input has none, or ``drop_imputed`` is off).
    options
        MAF, missingness, LD and autosome options.
    workdir
        Folder for plink's temporary files.
    emit
        Called as ``emit(chrom, genotype_df)`` with the pruned SNPs x individuals float32 dosages,
        SNPs sorted by position then ID.

    Returns
    -------
    tuple
        ``(snp_info_df, counts)``: ``chrom``, ``pos`` (and ``ref``, ``alt`` where known) of the
        kept SNPs in emitted order, and the per-step counts :data:`SNP_STEPS`.

    Raises
    ------
    InputError
        No SNP is left.
    """
    counts = dict.fromkeys(SNP_STEPS, 0)
    counts["snps_input"] = len(source.variant_df)
    info_cols = [c for c in ("chrom", "pos", "ref", "alt") if c in source.variant_df.columns]
    infos = []
    for chrom in sorted(source.chromosomes, key=chrom_key):
        if options.autosomes_only and chrom not in AUTOSOMES:
            continue
        counts["snps_autosomal"] += int((source.variant_df["chrom"] == chrom).sum())
        chunk = _filter_chrom(source, chrom, individuals, imputed, options, counts)
        pos = source.variant_df.loc[chunk.index, "pos"]
        with tempfile.TemporaryDirectory(dir=workdir, prefix=f"ld-{chrom}-") as tmp:
            kept = ld_prune(chunk, pos, r2=options.ld_r2, window_kb=options.ld_window_kb, workdir=tmp)
        order = np.lexsort((kept.to_numpy(dtype=str), pos.loc[kept].to_numpy()))
        kept = kept[order]
        counts["snps_ld_pruned"] += len(kept)
        logger.info(
            "%s: %d variants filtered to %d, %d after LD pruning",
            chrom,
            int((source.variant_df["chrom"] == chrom).sum()),
            len(chunk),
            len(kept),
        )
        if len(kept):
            emit(chrom, chunk.loc[kept].rename_axis(index="snp", columns="individual"))
            infos.append(source.variant_df.loc[kept, info_cols])
        del chunk
    if not infos:
        raise InputError(f"no SNP is left after the variant filters and LD pruning (counts: {counts})")
    snp_info_df = pd.concat(infos).rename_axis("snp")
    return snp_info_df, counts
