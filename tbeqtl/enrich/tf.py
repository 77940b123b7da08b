"""Recovery of tissue-specific transcription factors by robust tissue gene sets.

The paper counts, for each tissue, how many of that tissue's specific TFs (Sonawane et al.
2017, Table S3) that are present in the overall analysis are in the tissue's robust gene set
("whole blood 10/12"), and how many TFs specific to *other* tissues a gene set contains
(cross-tissue contamination: "subcutaneous adipose contained one TF from whole blood").

The tissue-specific TF table is an input (columns ``tissue`` and ``gene``; read by
:func:`tbeqtl.io.tf.read_tf_table`, re-exported here); the shared data
only hold a general TF list (``go_human/tf_go0003700.tsv``, GO:0003700), which is not
tissue-specific and serves here as a TF universe.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io.tf import read_tf_table
from ..schema import validate_table
from .feature_sets import as_id_index, check_subset
from .gene_ids import GeneIdTable, gene_id_type, map_gene_ids, normalize_gene_id

__all__ = ["read_tf_table", "tf_recovery"]

logger = logging.getLogger(__name__)


def _tf_frame(tissue_tfs: Mapping[str, Collection[str]] | pd.DataFrame) -> pd.DataFrame:
    if isinstance(tissue_tfs, pd.DataFrame):
        if not {"tissue", "gene"} <= set(tissue_tfs.columns):
            raise InputError("TF table needs columns 'tissue' and 'gene'", ids=list(tissue_tfs.columns))
        df = tissue_tfs[["tissue", "gene"]].astype(str)
    else:
        df = pd.DataFrame(
            [(str(t), str(g)) for t, genes in tissue_tfs.items() for g in genes], columns=["tissue", "gene"]
        )
    if df.empty:
        raise InputError("the tissue-specific TF table is empty")
    df = df.assign(gene=df["gene"].map(normalize_gene_id)).drop_duplicates(ignore_index=True)
    return df


def tf_recovery(
    gene_sets: Mapping[str, Collection[str]],
    tissue_tfs: Mapping[str, Collection[str]] | pd.DataFrame,
    analysis_genes: Collection[str],
    *,
    gene_table: GeneIdTable | pd.DataFrame | str | Path | None = None,
) -> pd.DataFrame:
    """Count tissue-specific TFs in each tissue's robust gene set, and other tissues' TFs in it.

    Parameters
    ----------
    gene_sets
        Tissue -> robust tissue-associated gene set.
    tissue_tfs
        Tissue -> its specific TFs, or a DataFrame with columns ``tissue`` and ``gene``. TF
        identifiers may be of another type than the gene sets' (mapped through ``gene_table``).
    analysis_genes
        The analysis feature set (every gene the model saw); a TF counts only if present in it
        (the paper's denominator "TFs present in the overall analysis"). Must contain every set.
    gene_table
        Gene table to map TF identifiers to the gene sets' identifier type, when they differ.

    Returns
    -------
    pandas.DataFrame
        Table ``tf_recovery``: one row per (set_tissue, tf_tissue); own-tissue rows first.
        ``n_found/n_tfs`` on own-tissue rows is the recovery ("10/12"); on other rows it counts
        TFs specific to tf_tissue (and not to set_tissue) found in set_tissue's gene set.
        ``attrs["ids"]`` holds the count and examples of TF identifiers unknown to the gene table.

    Raises
    ------
    InputError
        Empty sets, sets not inside the analysis genes, TF identifiers that need a gene table.
    """
    if not gene_sets:
        raise InputError("no tissue gene sets given")
    if gene_table is not None and not isinstance(gene_table, GeneIdTable):
        gene_table = (
            GeneIdTable.from_frame(gene_table)
            if isinstance(gene_table, pd.DataFrame)
            else GeneIdTable.read(gene_table)
        )
    analysis = as_id_index(analysis_genes, what="analysis genes", normalize=normalize_gene_id)
    sets = {
        str(t): as_id_index(g, what=f"gene set of {t!r}", normalize=normalize_gene_id)
        for t, g in sorted(gene_sets.items(), key=lambda kv: str(kv[0]))
    }
    for tissue, ids in sets.items():
        check_subset(ids, analysis, what=f"gene set of {tissue!r}")
    tf_df = _tf_frame(tissue_tfs)
    target = pd.Series([gene_id_type(g) for g in analysis[:2000]]).value_counts().idxmax()
    map_df = map_gene_ids(tf_df["gene"].unique(), target, gene_table=gene_table)
    unknown = map_df.index[map_df["status"] == "unknown"]
    if len(unknown):
        logger.warning(
            "%d of %d TF identifiers are unknown to the gene table (counted as absent from the analysis): %s",
            len(unknown),
            len(map_df),
            ", ".join(unknown[:10]),
        )
    mapped = map_df["mapped"].to_dict()
    analysis_set = set(analysis)

    def present(tf: str) -> bool:
        return any(m in analysis_set for m in mapped[tf])

    tf_df = tf_df[[present(g) for g in tf_df["gene"]]]
    by_tissue = {t: sorted(set(g)) for t, g in tf_df.groupby("tissue")["gene"]}
    rows = []
    tf_tissues = sorted(set(by_tissue) | set(sets))
    for set_tissue, ids in sets.items():
        members = set(ids)
        own = set(by_tissue.get(set_tissue, []))
        for tf_tissue in [set_tissue] + [t for t in tf_tissues if t != set_tissue]:
            tfs = [g for g in by_tissue.get(tf_tissue, []) if tf_tissue == set_tissue or g not in own]
            found = [g for g in tfs if any(m in members for m in mapped[g])]
            rows.append(
                {
                    "set_tissue": set_tissue,
                    "tf_tissue": tf_tissue,
                    "own_tissue": tf_tissue == set_tissue,
                    "n_tfs": len(tfs),
                    "n_found": len(found),
                    "fraction": len(found) / len(tfs) if tfs else np.nan,
                    "label": f"{len(found)}/{len(tfs)}",
                    "genes": ",".join(found),
                }
            )
        own_row = rows[-len(tf_tissues)] if len(tf_tissues) else None
        logger.info("TF recovery %s: %s", set_tissue, own_row["label"] if own_row else "-")
    out = pd.DataFrame(rows).astype({"n_tfs": np.int64, "n_found": np.int64, "fraction": float})
    out = validate_table(out, "tf_recovery")
    out.attrs["ids"] = {
        "n_tf_ids": int(len(map_df)),
        "n_unknown": int(len(unknown)),
        "unknown_examples": [str(u) for u in unknown[:20]],
    }
    return out
