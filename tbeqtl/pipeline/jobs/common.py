"""What every job of a pair shares: the small context shipped to the workers, tissues, chromosome order.

A pair task never receives the data set: it receives a :class:`PairContext` (config, run folder, the
prepared folder's path and tables whose size grows with the samples only) and reads its own two
partitions from the prepared folder (:meth:`tbeqtl.pipeline.prepared.PreparedData.load_pair`), a
folder every worker sees on a shared filesystem.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ...errors import InputError
from .. import holdout as hold
from ..config import PipelineConfig

__all__ = ["PairContext"]


@dataclass(frozen=True)
class PairContext:
    """Everything a pair task needs besides its two partitions (small: no counts, no genotypes).

    Parameters
    ----------
    config
        The pipeline config.
    run_dir
        The run folder.
    data_dir
        The prepared folder (:mod:`tbeqtl.pipeline.prepared`) the pair reads its partitions from.
    design_df
        Held-out design (:func:`tbeqtl.pipeline.holdout.holdout_design`).
    tissues
        Tissues to map.
    ancestry_files
        ``(beta_path, tau_path)``: the ancestry subspace (``beta`` SNPs x Q parquet or TSV, ``tau``
        individuals x Q TSV) over all SNPs and individuals; the pair reads its SNPs' rows.
    geno_pcs_df
        Individuals x genotype PCs.
    known_df
        Held-out samples x known covariates.
    library_size_s
        Library size of every sample (column sums of the counts over all genes): counts per
        million of a pair's genes are ``x / library_size * 1e6``.
    tissue_covariates
        Tissue -> covariates x held-out samples (known, genotype PCs, hidden factors of all genes),
        computed once by the driver; or the error message when they could not be built.
    """

    config: PipelineConfig
    run_dir: str
    data_dir: str
    design_df: pd.DataFrame
    tissues: tuple[str, ...]
    ancestry_files: tuple[str, str] | None
    geno_pcs_df: pd.DataFrame
    known_df: pd.DataFrame
    library_size_s: pd.Series
    tissue_covariates: dict[str, pd.DataFrame | str]

    @property
    def prepared(self):
        """The prepared folder, opened once per process (small tables only)."""
        return open_prepared(self.data_dir)


@functools.lru_cache(maxsize=4)
def _open_cached(path: str, stamp: float):
    from ..prepared import PreparedData

    return PreparedData.open(path)


def open_prepared(path: str):
    """Open a prepared folder, cached per process while its manifest is unchanged.

    Parameters
    ----------
    path
        The prepared folder.

    Returns
    -------
    tbeqtl.pipeline.prepared.PreparedData
        Its small tables and partition readers.
    """
    manifest = Path(path) / "manifest.json"
    try:
        stamp = manifest.stat().st_mtime_ns
    except FileNotFoundError:
        raise InputError("not a prepared data folder (no manifest.json)", path=str(path)) from None
    return _open_cached(str(path), stamp)


def _chrom_key(chrom: str) -> tuple[int, str]:
    bare = str(chrom)[3:] if str(chrom).lower().startswith("chr") else str(chrom)
    return (int(bare), "") if bare.isdigit() else (10_000, bare)


def _tissue_s(data, column: str) -> pd.Series:
    if column not in data.sample_info_df.columns:
        raise InputError(
            f"sample attributes have no {column!r} column (data.tissue_column)",
            ids=list(data.sample_info_df.columns),
        )
    return data.sample_info_df[column].astype(str)


def _heldout_by_tissue(data, design_df: pd.DataFrame, column: str) -> dict[str, pd.Index]:
    """Held-out samples of each tissue, one per individual (``data``: EQTLData or PreparedData)."""
    tissue_s = _tissue_s(data, column)
    held = hold.holdout_samples(design_df)
    out = {}
    for tissue in sorted(tissue_s.reindex(held).dropna().unique()):
        samples = held[(tissue_s.reindex(held) == tissue).to_numpy()]
        individuals = data.sample_map_s.reindex(samples)
        out[tissue] = pd.Index(sorted(samples))[~individuals.reindex(sorted(samples)).duplicated().to_numpy()]
    return out


def _read_id_table(path: str) -> pd.DataFrame:
    if str(path).endswith(".parquet"):
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, sep="\t", index_col=0)
    df.index = df.index.astype(str)
    return df


def pair_ancestry(
    ctx: PairContext, snps: pd.Index, individuals: pd.Index
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the ancestry subspace's rows of a pair: ``beta`` of its SNPs and ``tau`` of its individuals.

    Parameters
    ----------
    ctx
        The context (``ancestry_files``).
    snps, individuals
        The pair's fit SNPs and individuals.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(beta_df, tau_df)``, SNPs x Q and individuals x Q.
    """
    if ctx.ancestry_files is None:
        raise InputError("no ancestry subspace in the run context")
    beta_path, tau_path = ctx.ancestry_files
    beta_df, tau_df = _read_id_table(beta_path), _read_id_table(tau_path)
    for ids, table, path in ((snps, beta_df, beta_path), (individuals, tau_df, tau_path)):
        missing = pd.Index(ids).difference(table.index, sort=False)
        if len(missing):
            raise InputError("IDs missing from the ancestry file", path=str(path), ids=missing)
    return beta_df.loc[snps], tau_df.loc[individuals]
