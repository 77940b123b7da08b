"""What every job of a pair shares: the context shipped to the workers, tissues, chromosome order."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ...data import EQTLData
from ...errors import InputError
from .. import holdout as hold
from ..config import PipelineConfig

__all__ = ["PairContext"]


@dataclass(frozen=True)
class PairContext:
    """Everything a pair task needs (shipped once to every Dask worker).

    Parameters
    ----------
    config
        The pipeline config.
    run_dir
        The run folder.
    data
        The full data set.
    design_df
        Held-out design (:func:`tbeqtl.pipeline.holdout.holdout_design`).
    tissues
        Tissues to map.
    ancestry
        ``(beta_df, tau_df)`` over all SNPs and individuals, or None (each fit estimates its own).
    geno_pcs_df
        Individuals x genotype PCs.
    known_df
        Held-out samples x known covariates.
    cpm_df
        Genes x held-out samples counts per million over all genes.
    """

    config: PipelineConfig
    run_dir: str
    data: EQTLData
    design_df: pd.DataFrame
    tissues: tuple[str, ...]
    ancestry: tuple[pd.DataFrame, pd.DataFrame] | None
    geno_pcs_df: pd.DataFrame
    known_df: pd.DataFrame
    cpm_df: pd.DataFrame


def _chrom_key(chrom: str) -> tuple[int, str]:
    bare = str(chrom)[3:] if str(chrom).lower().startswith("chr") else str(chrom)
    return (int(bare), "") if bare.isdigit() else (10_000, bare)


def _tissue_s(data: EQTLData, column: str) -> pd.Series:
    if column not in data.sample_info_df.columns:
        raise InputError(f"sample attributes have no {column!r} column (data.tissue_column)",
                         ids=list(data.sample_info_df.columns))
    return data.sample_info_df[column].astype(str)


def _heldout_by_tissue(data: EQTLData, design_df: pd.DataFrame, column: str) -> dict[str, pd.Index]:
    tissue_s = _tissue_s(data, column)
    held = hold.holdout_samples(design_df)
    out = {}
    for tissue in sorted(tissue_s.reindex(held).dropna().unique()):
        samples = held[(tissue_s.reindex(held) == tissue).to_numpy()]
        individuals = data.sample_map_s.reindex(samples)
        out[tissue] = pd.Index(sorted(samples))[~individuals.reindex(sorted(samples)).duplicated().to_numpy()]
    return out
