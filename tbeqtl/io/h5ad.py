"""AnnData ``.h5ad`` single-cell counts: cells telescope to donors.

In the paper's telescoping model every expression sample belongs to one individual; for
single-cell data each cell is a sample and its donor is the individual.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..data import validate_counts
from ..errors import InputError, MissingDependencyError
from ._common import check_file, check_unique, reader_errors

__all__ = ["SingleCellCounts", "read_h5ad"]

logger = logging.getLogger(__name__)


class SingleCellCounts(NamedTuple):
    """Counts and the cell -> donor map read from an ``.h5ad`` file.

    Attributes
    ----------
    counts_df : pandas.DataFrame
        Genes x cells int64 counts (the paper's ``x``, one column per cell).
    sample_map_s : pandas.Series
        Donor (individual) of each cell, indexed by cell ID.
    cell_info_df : pandas.DataFrame
        The other ``.obs`` columns, indexed by cell ID.
    gene_info_df : pandas.DataFrame
        The ``.var`` table, indexed by gene ID.
    """

    counts_df: pd.DataFrame
    sample_map_s: pd.Series
    cell_info_df: pd.DataFrame
    gene_info_df: pd.DataFrame


def read_h5ad(
    path: str | Path,
    *,
    donor_column: str,
    layer: str | None = None,
    use_raw: bool = False,
    genes: Sequence[str] | None = None,
    non_integer: str = "error",
) -> SingleCellCounts:
    """Read single-cell counts (cells x genes, dense or sparse) from an ``.h5ad`` file.

    Parameters
    ----------
    path
        The AnnData file.
    donor_column
        The ``.obs`` column holding each cell's donor (individual) ID.
    layer
        Read counts from ``.layers[layer]`` instead of ``.X``.
    use_raw
        Read counts from ``.raw.X`` (with ``.raw.var`` gene IDs).
    genes
        Keep only these genes (columns are sliced before densifying, which bounds memory).
    non_integer
        ``"error"`` or ``"round"``: raw counts must be integers (normalised data is refused).

    Returns
    -------
    SingleCellCounts
        ``(counts_df genes x cells, sample_map_s cell -> donor, cell_info_df, gene_info_df)``.

    Raises
    ------
    InputError
        Missing donor column, layer or raw; cells without a donor (named); duplicate IDs;
        negative or non-integer values; unreadable files.
    """
    try:
        import anndata
    except ImportError as exc:  # pragma: no cover - anndata is a declared dependency
        raise MissingDependencyError("reading .h5ad needs anndata: pip install anndata") from exc
    path = check_file(path, what="h5ad file")
    with reader_errors(path, what="h5ad file"):
        try:
            adata = anndata.read_h5ad(path)
        except KeyError as exc:
            raise InputError(f"not a valid AnnData file (missing {exc})", path=str(path)) from exc
    if donor_column not in adata.obs.columns:
        raise InputError(
            f"h5ad .obs has no donor column {donor_column!r} (columns: "
            f"{', '.join(map(str, adata.obs.columns))})",
            path=str(path),
        )
    if use_raw:
        if adata.raw is None:
            raise InputError("h5ad file has no .raw", path=str(path))
        matrix, var = adata.raw.X, adata.raw.var
    elif layer is not None:
        if layer not in adata.layers:
            raise InputError(
                f"h5ad file has no layer {layer!r} (layers: {', '.join(adata.layers.keys())})", path=str(path)
            )
        matrix, var = adata.layers[layer], adata.var
    else:
        matrix, var = adata.X, adata.var
    cells = pd.Index(adata.obs_names.astype(str), name="sample")
    gene_ids = pd.Index(var.index.astype(str), name="gene")
    check_unique(cells, "cell", path=path)
    check_unique(gene_ids, "gene", path=path)
    cols = np.arange(len(gene_ids))
    if genes is not None:
        wanted = pd.Index([str(g) for g in genes])
        unknown = wanted.difference(gene_ids, sort=False)
        if len(unknown):
            raise InputError("requested genes are not in the h5ad file", path=str(path), ids=unknown)
        cols = gene_ids.get_indexer(wanted)
    dense_bytes = 8 * len(cols) * len(cells)
    if dense_bytes > 2**31:
        logger.warning(
            "densifying %d genes x %d cells needs %.1f GB; pass genes= to read a subset",
            len(cols),
            len(cells),
            dense_bytes / 1e9,
        )
    sub = matrix[:, cols]
    dense = sub.toarray() if hasattr(sub, "toarray") else np.asarray(sub)
    counts = pd.DataFrame(dense.T, index=gene_ids[cols], columns=cells)
    donors = adata.obs[donor_column]
    no_donor = donors.isna().to_numpy() | (donors.astype(str).str.strip() == "").to_numpy()
    if no_donor.any():
        raise InputError(
            f"cells without a donor in .obs[{donor_column!r}]", path=str(path), ids=cells[no_donor]
        )
    sample_map_s = pd.Series(donors.astype(str).to_numpy(), index=cells, name="individual")
    counts_df = validate_counts(counts, non_integer=non_integer, path=str(path))
    counts_df.index.name, counts_df.columns.name = "gene", "sample"
    cell_info_df = adata.obs.drop(columns=[donor_column]).set_axis(cells, axis=0)
    gene_info_df = var.iloc[cols].set_axis(gene_ids[cols], axis=0)
    logger.info(
        "read %d cells from %d donors x %d genes from %s",
        len(cells),
        sample_map_s.nunique(),
        len(counts_df),
        path,
    )
    return SingleCellCounts(counts_df, sample_map_s, cell_info_df, gene_info_df)
