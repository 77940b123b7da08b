"""Reader of tissue-specific transcription-factor tables (for :func:`tbeqtl.enrich.tf_recovery`).

The table lists, per tissue, its specific TFs (Sonawane et al. 2017, Table S3): a TSV with
columns ``tissue`` and ``gene`` (or ``gene_id``/``symbol``; names matched case-insensitively).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import InputError

__all__ = ["read_tf_table"]


def read_tf_table(path: str | Path) -> pd.DataFrame:
    """Read a tissue-specific TF table: TSV with columns ``tissue`` and ``gene`` (ID or symbol).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    pandas.DataFrame
        Columns ``tissue``, ``gene`` (strings), duplicates removed.

    Raises
    ------
    InputError
        If the file or the columns are missing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("TF table not found", path=str(path))
    df = pd.read_csv(path, sep="\t", dtype=str)
    cols = {c.lower(): c for c in df.columns}
    if "tissue" not in cols or not ({"gene", "symbol", "gene_id"} & set(cols)):
        raise InputError(
            "TF table needs columns 'tissue' and 'gene'; found", path=str(path), ids=list(df.columns)
        )
    gene_col = next(cols[c] for c in ("gene", "gene_id", "symbol") if c in cols)
    out = pd.DataFrame({"tissue": df[cols["tissue"]].str.strip(), "gene": df[gene_col].str.strip()})
    return out.dropna().drop_duplicates(ignore_index=True)
