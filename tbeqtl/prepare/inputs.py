"""Read the raw inputs of ``tbeqtl prepare`` with the readers of :mod:`tbeqtl.io`.

- counts: GTEx GCT (``.gct``/``.gct.gz``, all tissues in one matrix), a genes x samples TSV/CSV
  or parquet (:func:`tbeqtl.io.read_counts`), or single-cell ``.h5ad`` (cells are the samples,
  the ``.obs`` donor column the individuals);
- sample attributes: a GTEx ``SampleAttributesDS`` table (``SAMPID``, ``SMTSD`` ...) or any
  delimited table whose first column (or a column ``sample``) holds the sample IDs;
- subject attributes: a GTEx ``SubjectPhenotypesDS`` table (``SUBJID``, ``SEX`` ...) or any
  table whose first column (or a column ``individual``) holds the individual IDs;
- cell-type scores (e.g. xCell) and covariates: either orientation, matched by sample ID
  (:func:`tbeqtl.io.read_covariates`), merged into the sample attributes (cell types as
  ``celltype_<name>``, the prefix the pipeline looks for);
- ancestry ``beta``/``tau``: labelled tables (first column the SNP / individual IDs, one column
  per population), as ``estimate_ancestry`` writes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data import validate_counts
from ..errors import InputError
from ..io import (
    gtex_donor_ids,
    read_counts,
    read_covariates,
    read_gct,
    read_gct_header,
    read_gtex_sample_attributes,
    read_gtex_subject_phenotypes,
    read_h5ad,
)
from ..io._common import (
    check_file,
    check_unique,
    first_line,
    is_gzip,
    numeric_frame,
    pick_ids,
    read_delimited,
    reader_errors,
    sniff_sep,
)

__all__ = [
    "count_matrix_samples",
    "iter_count_blocks",
    "merge_sample_tables",
    "read_ancestry_tables",
    "read_count_matrix",
    "read_sample_attributes",
    "read_subject_attributes",
]

logger = logging.getLogger(__name__)


def _is_gct(path: Path) -> bool:
    return path.name.lower().removesuffix(".gz").endswith(".gct")


def _is_h5ad(path: Path) -> bool:
    return path.name.lower().endswith(".h5ad")


def _header_names(path: Path) -> list[str]:
    line = first_line(path)
    sep = sniff_sep(line)
    return [c.strip().strip('"') for c in (line.split() if sep == r"\s+" else line.split(sep))]


def read_sample_attributes(
    path: str | Path, *, tissue_column: str, individual_column: str | None = None
) -> pd.DataFrame:
    """Read per-sample attributes with each sample's individual and tissue.

    Parameters
    ----------
    path
        GTEx ``SampleAttributesDS`` (a ``SAMPID`` column) or a delimited table whose column
        ``sample`` (else the first column) holds the sample IDs.
    tissue_column
        The tissue column (GTEx ``SMTSD``); written as ``tissue``.
    individual_column
        The individual column; ``None``: a column ``individual`` if present, else the GTEx
        donor rule on the sample IDs.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``sample``: ``individual``, ``tissue``, then the other columns.

    Raises
    ------
    InputError
        Absent tissue or individual column (the columns present are listed), empty
        individual or tissue values (samples named), duplicate sample IDs, sample IDs that do
        not follow the GTEx pattern when the donor rule is used.
    """
    path = check_file(path, what="sample attributes")
    names = _header_names(path)
    if "SAMPID" in names:
        df = read_gtex_sample_attributes(path, donor_rule=False)
        if tissue_column == "SMTSD":
            tissue_column = "tissue"
    else:
        df = read_delimited(
            path, what="sample attributes", dtype=str, keep_default_na=False, na_values=["NA", ""]
        )
        id_col = "sample" if "sample" in df.columns else df.columns[0]
        check_unique(df[id_col].astype(str), "sample", path=path)
        df = df.set_index(id_col)
        df.index = pd.Index(df.index.astype(str), name="sample")
    if tissue_column not in df.columns:
        raise InputError(
            f"sample attributes have no tissue column {tissue_column!r} (columns: "
            f"{', '.join(map(str, df.columns[:20]))}); choose one with --tissue-column",
            path=str(path),
        )
    individuals = _individuals(df, individual_column, path)
    tissue = df[tissue_column]
    df = df.drop(columns=[c for c in (tissue_column, "tissue", "individual") if c in df.columns])
    df.insert(0, "tissue", tissue.astype(object).to_numpy())
    df.insert(0, "individual", individuals.to_numpy())
    empty = df["tissue"].isna().to_numpy()
    if empty.any():
        raise InputError(f"samples without a tissue ({tissue_column})", path=str(path), ids=df.index[empty])
    return df


def _individuals(df: pd.DataFrame, column: str | None, path: Path) -> pd.Series:
    if column is None and "individual" in df.columns:
        column = "individual"
    if column is None:
        try:
            return gtex_donor_ids(df.index)
        except InputError as exc:
            raise InputError(
                f"{exc} (or name the individual column with --individual-column)", path=str(path)
            ) from None
    if column not in df.columns:
        raise InputError(
            f"sample attributes have no individual column {column!r} (columns: "
            f"{', '.join(map(str, df.columns[:20]))})",
            path=str(path),
        )
    values = df[column]
    empty = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        raise InputError(f"samples without an individual ({column})", path=str(path), ids=df.index[empty])
    return values.astype(str)


def read_subject_attributes(path: str | Path) -> pd.DataFrame:
    """Read per-individual attributes (GTEx ``SubjectPhenotypesDS`` or any table).

    Parameters
    ----------
    path
        A ``SUBJID`` table (``SEX`` becomes ``sex``) or a delimited table whose column
        ``individual`` (else the first column) holds the individual IDs.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``individual``.
    """
    path = check_file(path, what="subject attributes")
    if "SUBJID" in _header_names(path):
        return read_gtex_subject_phenotypes(path)
    df = read_delimited(
        path, what="subject attributes", dtype=str, keep_default_na=False, na_values=["NA", ""]
    )
    id_col = "individual" if "individual" in df.columns else df.columns[0]
    check_unique(df[id_col].astype(str), "individual", path=path)
    df = df.set_index(id_col)
    df.index = pd.Index(df.index.astype(str), name="individual")
    for col in df.columns:
        numeric = pd.to_numeric(df[col], errors="coerce")
        if numeric.notna().sum() == df[col].notna().sum():
            df[col] = numeric
    return df


def count_matrix_samples(path: str | Path) -> pd.Index | None:
    """Sample IDs of a count matrix, read from its header (``None`` for ``.h5ad`` and parquet).

    Parameters
    ----------
    path
        GCT, delimited text, parquet or h5ad.

    Returns
    -------
    pandas.Index or None
        The sample IDs, when the header alone tells them.
    """
    path = check_file(path, what="count matrix")
    if _is_gct(path):
        return pd.Index(read_gct_header(path)[2], dtype=object)
    if _is_h5ad(path) or path.suffix == ".parquet":
        return None
    return pd.Index(_header_names(path)[1:], dtype=object)


def read_count_matrix(
    path: str | Path, *, samples: Sequence[str] | None, donor_column: str | None = None
) -> tuple[pd.DataFrame, pd.Series | None, pd.DataFrame | None]:
    """Read raw counts (the paper's ``x``) for the given samples.

    Parameters
    ----------
    path
        GCT, delimited text, parquet (genes x samples) or ``.h5ad`` (cells x genes).
    samples
        Samples to read (only these columns are parsed); ``None`` reads all.
    donor_column
        ``.h5ad`` only: the ``.obs`` donor column (default ``individual``).

    Returns
    -------
    tuple
        ``(counts_df, sample_map_s, cell_info_df)``: genes x samples int64 counts, and for
        ``.h5ad`` the cell -> donor map and the other ``.obs`` columns (else ``None``).
    """
    path = check_file(path, what="count matrix")
    if _is_h5ad(path):
        sc = read_h5ad(path, donor_column=donor_column or "individual")
        counts = sc.counts_df if samples is None else sc.counts_df[list(samples)]
        return counts, sc.sample_map_s, sc.cell_info_df
    if _is_gct(path):
        return read_gct(path, samples=samples), None, None
    counts = read_counts(path)
    if samples is not None:
        counts = counts[list(samples)]
    return counts, None, None


#: Values (counts) parsed per block of a GCT file (float64 while validated: 64 MB).
GCT_BLOCK_VALUES = 1 << 23


def iter_count_blocks(
    path: str | Path, *, samples: Sequence[str], donor_column: str | None = None
) -> Iterator[pd.DataFrame]:
    """Yield the raw counts of the given samples in blocks of genes (GCT) or whole (other formats).

    A GTEx GCT is parsed ``GCT_BLOCK_VALUES / len(samples)`` genes at a time (header checked by
    :mod:`tbeqtl.io.gct`, values by :func:`tbeqtl.data.validate_counts`), so the caller can filter
    genes before the next block is read: memory is the kept genes plus one block, not the whole
    matrix (the full GTEx v8 matrix, 56,200 genes x 17,382 samples, is 7.8 GB as int64). Other
    formats are read by :func:`read_count_matrix` in one block.

    Parameters
    ----------
    path
        The count matrix.
    samples
        Samples to read (all must be present), in the output column order.
    donor_column
        ``.h5ad`` only, see :func:`read_count_matrix`.

    Yields
    ------
    pandas.DataFrame
        Genes x samples int64 counts.

    Raises
    ------
    InputError
        As :func:`tbeqtl.io.read_gct`: bad header, duplicate IDs, non-numeric, negative or
        non-integer counts, fewer data rows than the dimensions line says.
    """
    path = check_file(path, what="count matrix")
    if not _is_gct(path):
        yield read_count_matrix(path, samples=samples, donor_column=donor_column)[0]
        return
    n_rows, n_cols, all_samples = read_gct_header(path)
    if n_cols != len(all_samples):
        raise InputError(
            f"GCT dimensions line says {n_cols} samples but the header lists {len(all_samples)}",
            path=str(path),
        )
    check_unique(all_samples, "sample", path=path)
    wanted = list(pick_ids(pd.Index(all_samples), samples, "sample", path=path))
    seen = 0
    with reader_errors(path, what="GCT file"):
        blocks = pd.read_csv(
            path,
            sep="\t",
            skiprows=2,
            usecols=["Name", *wanted],
            dtype={"Name": str},
            compression="gzip" if is_gzip(path) else None,
            keep_default_na=False,
            na_values=["NA", ""],
            chunksize=max(1, GCT_BLOCK_VALUES // max(1, len(wanted))),
        )
        for block in blocks:
            block = block.set_index("Name")[wanted]
            seen += len(block)
            values = numeric_frame(block, what="GCT matrix", path=path)
            yield validate_counts(values, path=str(path)).rename_axis(index="gene", columns="sample")
    if seen != n_rows:
        raise InputError(
            f"GCT dimensions line says {n_rows} genes but the file has {seen} data rows (truncated file?)",
            path=str(path),
        )


def merge_sample_tables(
    sample_df: pd.DataFrame, *, cell_types: str | Path | None = None, covariates: str | Path | None = None
) -> pd.DataFrame:
    """Add cell-type scores (``celltype_<name>``) and covariates to the sample attributes.

    Parameters
    ----------
    sample_df
        Attributes of the kept samples, indexed by sample.
    cell_types
        Cell-type scores per sample (xCell: cell types x samples; either orientation).
    covariates
        Numeric or categorical covariates per sample (either orientation); categorical ones are
        one-hot encoded by :func:`tbeqtl.io.read_covariates`.

    Returns
    -------
    pandas.DataFrame
        ``sample_df`` with the new columns.

    Raises
    ------
    InputError
        A kept sample absent from a table (named), or a column name already used.
    """
    out = sample_df.copy()
    samples = list(out.index)
    for path, prefix, what in ((cell_types, "celltype_", "cell-type"), (covariates, "", "covariate")):
        if path is None:
            continue
        table = read_covariates(
            path, samples=samples, drop_constant=False, encode_categorical=bool(not prefix)
        )
        names = [
            n if not prefix or str(n).lower().startswith(("celltype_", "cell_type_")) else f"{prefix}{n}"
            for n in table.index
        ]
        clash = [n for n in names if n in out.columns]
        if clash:
            raise InputError(f"{what} columns already in the sample attributes", path=str(path), ids=clash)
        for name, row in zip(names, table.to_numpy(), strict=True):
            out[name] = row.astype(np.float64)
        logger.info("merged %d %s columns from %s", len(names), what, path)
    return out


def _labelled_table(path: str | Path, what: str, index_name: str) -> pd.DataFrame:
    path = check_file(path, what=what)
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
        if isinstance(df.index, pd.RangeIndex):
            df = df.set_index(df.columns[0])
    else:
        df = read_delimited(path, what=what, index_col=0)
    df.index = pd.Index(df.index.astype(str), name=index_name)
    check_unique(df.index, index_name, path=path)
    values = df.apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any() or df.shape[1] == 0:
        raise InputError(
            f"{what} must be a labelled table: IDs in the first column, one numeric column per "
            "population (terastructure/ADMIXTURE matrices carry no IDs: label their rows first)",
            path=str(path),
        )
    return values.astype(np.float64)


def read_ancestry_tables(beta: str | Path, tau: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read labelled ancestry tables: ``beta`` (SNPs x Q) and ``tau`` (individuals x Q).

    Parameters
    ----------
    beta, tau
        TSV/CSV (IDs in the first column) or parquet.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(beta_df, tau_df)`` with columns ``ancestry_0..ancestry_{Q-1}``.
    """
    beta_df = _labelled_table(beta, "ancestry beta", "snp")
    tau_df = _labelled_table(tau, "ancestry tau", "individual")
    columns = pd.Index([f"ancestry_{q}" for q in range(beta_df.shape[1])], name="ancestry")
    if beta_df.shape[1] != tau_df.shape[1]:
        raise InputError(
            f"ancestry beta has {beta_df.shape[1]} populations but tau has {tau_df.shape[1]}", path=str(tau)
        )
    return beta_df.set_axis(columns, axis=1), tau_df.set_axis(columns, axis=1)
