"""The prepared data folder: a data set partitioned by chromosome, read one pair at a time.

A *prepared folder* holds a telescoping data set (:class:`~tbeqtl.data.EQTLData`: counts ``x``,
genes x samples; genotypes ``y``, SNPs x individuals; the sample -> individual map) written once,
so that a chromosome-pair task reads only its two partitions plus the small shared tables and
nothing of the size of the data passes through a Dask scheduler::

    DIR/manifest.json              written LAST, atomically; a folder without it is unfinished
    DIR/samples.tsv                index "sample": column "individual", then the sample attributes
    DIR/individuals.tsv            index "individual": the individual attributes
    DIR/genes.tsv                  index "gene": gene annotation (chrom, start, end, gene_type, ...)
    DIR/snps.tsv                   index "snp": SNP annotation (chrom, pos, ...)
    DIR/library_size.tsv           index "sample": "library_size", column sums of all the counts
    DIR/counts/<chrom>.parquet     genes x samples, int64 counts of the genes on <chrom>
    DIR/genotypes/<chrom>.parquet  SNPs x individuals, float32 dosages (NaN missing) of the SNPs on <chrom>
    DIR/genotype_pcs.tsv           index "individual": genoPC1..genoPCk
    DIR/ancestry_beta.parquet      index "snp": beta, SNPs x Q (optional; both ancestry files or neither)
    DIR/ancestry_tau.tsv           index "individual": tau, individuals x Q

Conventions
-----------
- Chromosomes are harmonised to the ``chr1`` style (:func:`~tbeqtl.data.harmonize_chrom`) and
  listed in natural order (:func:`~tbeqtl.association.cis_inputs.chrom_sort_key`).
- Genes and SNPs without a chromosome (no annotation, or a missing ``chrom``) are kept in the
  partition ``unplaced`` (``counts/unplaced.parquet``, ``genotypes/unplaced.parquet``): they
  count in the library sizes, the genotype PCs and the ancestry, but they are not listed in
  :attr:`PreparedData.gene_chromosomes` / :attr:`PreparedData.snp_chromosomes`, so no chromosome
  pair contains them (as :func:`tbeqtl.pipeline.orchestrate` never paired them before).
  ``load_counts("unplaced")`` reads them.
- Order is kept: samples and individuals in the order of the data written, genes and SNPs of a
  partition in the order of ``genes.tsv`` / ``snps.tsv``. The folder's content, read by ID, does
  not depend on the input order (genotype PCs and ancestry: to rounding).
- Dosages are stored as float32. When read, every value is turned back into the float64 of the
  shortest decimal that rounds to the stored float32 (at most 9 significant digits), so hard calls
  and dosages with at most 6 significant digits (7 within [0.001, 2]) read back bit-for-bit as the
  float64 written; any other dosage reads back within half a float32 ulp (relative 6e-8).
- The small tables keep their column dtypes (recorded in the manifest, ``tables``).

The manifest holds ``format`` ("tbeqtl-prepared"), ``format_version`` (1), ``tbeqtl_version``,
``files`` (path -> SHA-256 of every other file), ``sizes`` (path -> bytes; :meth:`PreparedData.open`
compares them without hashing), ``gene_chromosomes`` and ``snp_chromosomes``, ``unplaced``
(whether each unplaced partition exists), ``counts`` (``n_samples``, ``n_individuals``,
``n_genes``, ``n_snps``, ``n_unplaced_genes``, ``n_unplaced_snps`` and the writer's own
feature-selection counts), ``params`` (``genotype_pcs`` = the number of PCs written, and the
writer's options), ``inputs`` (input path -> SHA-256) and ``tables`` (column dtypes).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..association.cis_inputs import chrom_sort_key
from ..atomic import atomic_path, write_json, write_table
from ..data import EQTLData, harmonize_chrom, validate_counts, validate_genotypes
from ..errors import InputError, TbeqtlError, format_ids
from ..io._common import sha256_file
from ..schema import validate_table

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "UNPLACED",
    "PreparedData",
    "PreparedWriter",
    "is_prepared",
    "write_prepared",
]

logger = logging.getLogger(__name__)

FORMAT = "tbeqtl-prepared"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Partition name of the genes / SNPs without a chromosome.
UNPLACED = "unplaced"
_SAMPLES, _INDIVIDUALS, _GENES, _SNPS = "samples.tsv", "individuals.tsv", "genes.tsv", "snps.tsv"
_LIBRARY_SIZE, _PCS = "library_size.tsv", "genotype_pcs.tsv"
_BETA, _TAU = "ancestry_beta.parquet", "ancestry_tau.tsv"
_COUNTS_DIR, _GENO_DIR = "counts", "genotypes"
_TABLE_INDEX = {_SAMPLES: "sample", _INDIVIDUALS: "individual", _GENES: "gene", _SNPS: "snp"}
_CHROM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_BLOCK_COLUMNS = 256  # partition columns decoded at a time
_POW10 = 10.0 ** np.arange(23)  # exact powers of ten
_RERUN = "rerun tbeqtl prepare (or tbeqtl run) to write it again"


# ---------------------------------------------------------------------------------- chromosomes
def _chrom_label(value: object) -> str:
    """Harmonised chromosome name of ``value`` (``UNPLACED`` stays), checked to be a safe file name."""
    if str(value) == UNPLACED:
        return UNPLACED
    name = harmonize_chrom([value])[0]
    if not isinstance(name, str) or not _CHROM_NAME.match(name):
        raise InputError("chromosome names must be letters, digits and _.+- only", ids=[value])
    return name


def _partition_labels(info_df: pd.DataFrame, index: pd.Index) -> pd.Series:
    """Partition (harmonised chromosome or ``UNPLACED``) of every ID of ``index``."""
    if "chrom" not in info_df.columns:
        return pd.Series(UNPLACED, index=index, dtype=object)
    chrom = info_df["chrom"].reindex(index)
    names = {value: _chrom_label(value) for value in pd.unique(chrom.dropna().to_numpy())}
    return pd.Series(
        [names.get(v, UNPLACED) if pd.notna(v) else UNPLACED for v in chrom.to_numpy()],
        index=index,
        dtype=object,
    )


def _harmonized(info_df: pd.DataFrame) -> pd.DataFrame:
    """``info_df`` with its ``chrom`` column in the ``chr1`` style (as the partitions are named)."""
    if "chrom" not in info_df.columns:
        return info_df
    return info_df.assign(chrom=harmonize_chrom(info_df["chrom"]).to_numpy())


def _ordered_chroms(labels: Iterable[str]) -> list[str]:
    return sorted({label for label in labels if label != UNPLACED}, key=chrom_sort_key)


def _partition_path(kind: str, chrom: str) -> str:
    return f"{kind}/{chrom}.parquet"


# ---------------------------------------------------------------------------------- small tables
def _dtype_map(df: pd.DataFrame, what: str) -> dict[str, str]:
    bad = [c for c in df.columns if not isinstance(c, str)]
    if bad or df.columns.has_duplicates:
        raise InputError(
            f"{what} columns must be unique strings", ids=bad or df.columns[df.columns.duplicated()]
        )
    return {column: str(df[column].dtype) for column in df.columns}


def _restore(values: pd.Series, dtype: str) -> pd.Series:
    """Column read as strings (NaN = missing) back to ``dtype``."""
    if dtype in {"object", "str"} or _numpy_numeric(dtype):
        return values
    if dtype in {"bool", "boolean"}:
        out = values.map({"True": True, "False": False})
        return out.astype(dtype) if dtype == "boolean" or out.notna().all() else out
    if dtype.startswith(("int", "uint", "float")) or dtype in {"Int64", "Int32", "Float64", "UInt64"}:
        return pd.Series(
            pd.to_numeric(values.to_numpy(dtype=object), errors="raise"), index=values.index
        ).astype(dtype)
    if dtype.startswith("datetime64"):
        return pd.to_datetime(values).astype(dtype)
    try:
        return values.astype(dtype)
    except (TypeError, ValueError):
        logger.warning("column %s kept as text: cannot restore dtype %s", values.name, dtype)
        return values


def _numpy_numeric(dtype: str) -> bool:
    try:
        return np.dtype(dtype).kind in "iuf"
    except TypeError:  # pandas extension dtypes ("Int64", "category", ...)
        return False


def _write_small(df: pd.DataFrame, path: Path, index_name: str) -> None:
    write_table(df.rename_axis(index=index_name), path, index=True)


def _read_small(path: Path, dtypes: dict[str, str]) -> pd.DataFrame:
    """Read a small table written by :func:`_write_small`, its columns back in ``dtypes``.

    NumPy numbers are parsed by pandas' round-trip parser (the written repr gives back the
    same float64), every other column as text and then restored; IDs stay text ("NA" too).
    """
    header = list(pd.read_csv(path, sep="\t", nrows=0).columns)
    missing = [c for c in dtypes if c not in header[1:]]
    if missing:
        raise InputError(f"table lacks the columns the manifest lists; {_RERUN}", path=str(path), ids=missing)
    read_as = {c: (dtypes[c] if c in dtypes and _numpy_numeric(dtypes[c]) else str) for c in header}
    raw = pd.read_csv(
        path,
        sep="\t",
        dtype=read_as,
        keep_default_na=False,
        na_values={c: ["NA"] for c in header[1:]},
        index_col=0,
        float_precision="round_trip",
    )
    out = pd.DataFrame({c: _restore(raw[c], dtypes[c]) for c in dtypes}, index=raw.index)
    out.index = out.index.astype(str)
    return out


# ---------------------------------------------------------------------------------- dosages
def _decimal_float64(values32: np.ndarray) -> np.ndarray:
    """Float64 of the shortest decimal (<= 9 significant digits) that rounds to each float32.

    For each non-integer value, ``k = 1, 2, ...`` significant digits are tried and the first
    decimal that rounds back to the stored float32 is kept (9 digits always identify a float32).
    Two decimals of at most 6 significant digits are further apart than a float32 ulp, so a
    dosage written with at most 6 digits comes back as exactly the float64 written (7 digits:
    the same within [0.001, 2]); a hard call is an integer and comes back as is.
    """
    order = "F" if values32.flags.f_contiguous and not values32.flags.c_contiguous else "C"
    values32 = np.asarray(values32, dtype=np.float32, order=order)
    out = values32.astype(np.float64, order=order)
    flat = out.reshape(-1, order=order)  # a view: written through below
    pending = np.flatnonzero(np.isfinite(flat) & (flat != np.rint(flat)))
    x, target = flat[pending], values32.reshape(-1, order=order)[pending]
    exponent = np.floor(np.log10(np.abs(x))).astype(np.int64)
    for digits in range(1, 10):
        if not len(pending):
            break
        decimals = np.clip(digits - 1 - exponent, -300, 300)
        if (decimals >= 0).all():  # every dosage (values < 10)
            scale = _POW10[np.minimum(decimals, len(_POW10) - 1)]
            candidate = np.rint(x * scale) / scale
        else:
            scale = 10.0 ** np.abs(decimals)
            candidate = np.where(decimals >= 0, np.rint(x * scale) / scale, np.rint(x / scale) * scale)
        ok = candidate.astype(np.float32) == target
        flat[pending[ok]] = candidate[ok]
        keep = ~ok
        pending, x, target, exponent = pending[keep], x[keep], target[keep], exponent[keep]
    return out


def _count_values(df: pd.DataFrame) -> np.ndarray:
    """Int64 counts of ``df``, checked as :func:`~tbeqtl.data.validate_counts` does (fast for integers)."""
    if all(
        pd.api.types.is_integer_dtype(t) and not isinstance(t, pd.api.extensions.ExtensionDtype)
        for t in df.dtypes
    ):
        values = df.to_numpy(dtype=np.int64)
        if not (values < 0).any():
            return values
    return validate_counts(df).to_numpy(dtype=np.int64)


def _dosage_values(df: pd.DataFrame) -> np.ndarray:
    """Float64 dosages of ``df``, checked as :func:`~tbeqtl.data.validate_genotypes` does (fast path)."""
    if all(pd.api.types.is_float_dtype(t) or pd.api.types.is_integer_dtype(t) for t in df.dtypes):
        values = df.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            if not ((values < 0) | (values > 2)).any():
                return values
    return validate_genotypes(df).to_numpy(dtype=np.float64)


def _write_matrix(path: Path, rows: pd.Index, columns: pd.Index, values: np.ndarray, index_name: str) -> None:
    """Write a rows x columns matrix as parquet, atomically, with pandas' metadata (index ``index_name``).

    Built column by column from the (Fortran-ordered) values, without pandas' per-column
    conversion; ``pandas.read_parquet`` reads it back as the same frame.
    """
    values = np.asfortranarray(values)
    columns = [str(c) for c in columns]
    template = pd.DataFrame({columns[0]: values[:1, 0]}, index=pd.Index(rows[:1], name=index_name))
    meta = json.loads(pa.Schema.from_pandas(template, preserve_index=True).metadata[b"pandas"])
    value_meta, index_meta = meta["columns"]  # the same entry for every value column
    meta["columns"] = [{**value_meta, "name": c, "field_name": c} for c in columns] + [index_meta]
    value_type = pa.from_numpy_dtype(values.dtype)
    schema = pa.schema(
        [pa.field(c, value_type) for c in columns] + [pa.field(index_name, pa.string())],
        metadata={b"pandas": json.dumps(meta).encode()},
    )
    arrays = [pa.array(values[:, j]) for j in range(len(columns))]
    arrays.append(pa.array(rows.to_numpy(dtype=object), type=pa.string()))
    table = pa.Table.from_arrays(arrays, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _read_partition(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def _read_matrix(
    path: Path,
    index_name: str,
    dtype: type,
    *,
    convert: Callable[[np.ndarray], np.ndarray] | None = None,
    out_dtype: type | None = None,
) -> tuple[pd.Index, pd.Index, np.ndarray]:
    """Row IDs, column IDs and the values (Fortran order) of a partition, read in column blocks.

    Each block of ``_BLOCK_COLUMNS`` columns is decoded as ``dtype``, passed through ``convert``
    and copied into the ``out_dtype`` result, so the peak memory is the result plus one block.
    """
    try:
        return _read_blocks(path, index_name, dtype, convert=convert, out_dtype=out_dtype)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read this partition ({exc}); {_RERUN}", path=str(path)) from None


def _read_blocks(
    path: Path,
    index_name: str,
    dtype: type,
    *,
    convert: Callable[[np.ndarray], np.ndarray] | None,
    out_dtype: type | None,
) -> tuple[pd.Index, pd.Index, np.ndarray]:
    handle = pq.ParquetFile(path)
    names = [name for name in handle.schema_arrow.names if name != index_name]
    rows = pd.Index(handle.read(columns=[index_name]).column(index_name).to_pylist(), dtype=object)
    values = np.empty((len(rows), len(names)), dtype=out_dtype or dtype, order="F")
    for start in range(0, len(names), _BLOCK_COLUMNS):
        block_names = names[start : start + _BLOCK_COLUMNS]
        table = handle.read(columns=block_names, use_pandas_metadata=False)
        block = np.empty((len(rows), len(block_names)), dtype=dtype, order="F")
        for j, name in enumerate(block_names):
            block[:, j] = table.column(name).to_numpy()
        del table
        values[:, start : start + len(block_names)] = block if convert is None else convert(block)
    return rows, pd.Index(names, dtype=object), values


def _partition_ids(path: Path, index_name: str) -> tuple[pd.Index, pd.Index]:
    """Row IDs and column IDs of a written partition, without reading its values."""
    schema = pq.read_schema(path)
    rows = pq.read_table(path, columns=[index_name]).column(index_name).to_pylist()
    columns = [name for name in schema.names if name != index_name]
    return pd.Index(rows, dtype=object), pd.Index(columns, dtype=object)


# ---------------------------------------------------------------------------------- writer
class PreparedWriter:
    """Write a prepared folder piece by piece; :meth:`finish` writes the manifest last.

    Call :meth:`write_tables` first, then :meth:`write_counts` / :meth:`write_genotypes` once
    per chromosome (one chromosome in memory at a time), :meth:`write_genotype_pcs`, optionally
    :meth:`write_ancestry`, and :meth:`finish`. Every file is written atomically. Opening a
    writer removes the folder's manifest, so a folder being rewritten is never taken for a
    finished one; partitions already in the folder are kept and checked by :meth:`finish`
    (a killed ``prepare`` can resume), unless ``clean=True``.

    Parameters
    ----------
    out_dir
        The folder (created).
    clean
        Remove every file of a previous prepared folder there first.
    """

    def __init__(self, out_dir: str | Path, *, clean: bool = False):
        self.path = Path(out_dir)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / MANIFEST).unlink(missing_ok=True)
        if clean:
            for name in (_SAMPLES, _INDIVIDUALS, _GENES, _SNPS, _LIBRARY_SIZE, _PCS, _BETA, _TAU):
                (self.path / name).unlink(missing_ok=True)
            for kind in (_COUNTS_DIR, _GENO_DIR):
                for old in (self.path / kind).glob("*.parquet"):
                    old.unlink()
        self._tables: dict[str, Any] | None = None
        self._colsums: dict[str, pd.Series] = {}

    # -------------------------------------------------------------- tables
    def write_tables(
        self,
        *,
        sample_map_s: pd.Series,
        individual_info_df: pd.DataFrame,
        gene_info_df: pd.DataFrame,
        snp_info_df: pd.DataFrame,
        sample_info_df: pd.DataFrame | None = None,
    ) -> None:
        """Write the sample, individual, gene and SNP tables; they fix the IDs and their order.

        Parameters
        ----------
        sample_map_s
            Sample -> individual, in sample order (``EQTLData.sample_map_s``).
        individual_info_df
            Individual attributes, indexed by every individual in order (may have no columns).
        gene_info_df, snp_info_df
            Annotation indexed by every kept gene / SNP in order (``chrom`` gives the partition;
            without it every gene / SNP is unplaced).
        sample_info_df
            Sample attributes (reindexed to the samples; a column ``individual`` must equal the map).

        Raises
        ------
        InputError
            Duplicate IDs, samples of unknown individuals, individuals without samples,
            non-string column names, unsafe chromosome names.
        """
        samples = pd.Index(sample_map_s.index.astype(str), name="sample")
        sample_map = pd.Series(sample_map_s.astype(str).to_numpy(), index=samples, name="individual")
        individuals = pd.Index(individual_info_df.index.astype(str), name="individual")
        genes = pd.Index(gene_info_df.index.astype(str), name="gene")
        snps = pd.Index(snp_info_df.index.astype(str), name="snp")
        for ids, what in ((samples, "sample"), (individuals, "individual"), (genes, "gene"), (snps, "SNP")):
            if ids.has_duplicates:
                raise InputError(f"duplicate {what} IDs", ids=ids[ids.duplicated()].unique())
        unknown = pd.Index(sample_map.unique()).difference(individuals, sort=False)
        if len(unknown):
            raise InputError("samples map to individuals not in the individual table", ids=unknown)
        lonely = individuals.difference(pd.Index(sample_map.unique()), sort=False)
        if len(lonely):
            raise InputError("individuals have no samples", ids=lonely)
        sample_info = pd.DataFrame(index=samples)
        if sample_info_df is not None and len(sample_info_df.columns):
            sample_info = sample_info_df.set_axis(sample_info_df.index.astype(str))
            lacking = samples.difference(sample_info.index, sort=False)
            if len(lacking):
                raise InputError("sample attribute table lacks samples", ids=lacking)
            sample_info = sample_info.reindex(samples)
        if "individual" in sample_info.columns:
            differ = sample_info.index[
                sample_info["individual"].astype(str).to_numpy() != sample_map.to_numpy()
            ]
            if len(differ):
                raise InputError(
                    "sample attribute 'individual' differs from the sample map for samples", ids=differ
                )
        samples_df = pd.concat(
            [sample_map, sample_info.drop(columns=["individual"], errors="ignore")], axis=1
        )
        frames = {
            _SAMPLES: samples_df,
            _INDIVIDUALS: individual_info_df.set_axis(individuals),
            _GENES: _harmonized(gene_info_df.set_axis(genes)),
            _SNPS: _harmonized(snp_info_df.set_axis(snps)),
        }
        tables: dict[str, Any] = {}
        for name, df in frames.items():
            tables[name] = {"index": _TABLE_INDEX[name], "dtypes": _dtype_map(df, name)}
            _write_small(df, self.path / name, _TABLE_INDEX[name])
        tables[_SAMPLES]["info_columns"] = list(sample_info.columns)
        self._tables = {
            "manifest": tables,
            "samples": samples,
            "individuals": individuals,
            "gene_labels": _partition_labels(gene_info_df.set_axis(genes), genes),
            "snp_labels": _partition_labels(snp_info_df.set_axis(snps), snps),
        }
        logger.info(
            "prepared tables: %d samples, %d individuals, %d genes, %d SNPs",
            len(samples),
            len(individuals),
            len(genes),
            len(snps),
        )

    def _require_tables(self) -> dict[str, Any]:
        if self._tables is None:
            raise TbeqtlError("PreparedWriter: call write_tables before writing partitions or finishing")
        return self._tables

    def _expected(self, labels: pd.Series, chrom: str, what: str) -> pd.Index:
        ids = labels.index[(labels == chrom).to_numpy()]
        if not len(ids):
            raise InputError(f"no {what} on this chromosome in the {what} table", ids=[chrom])
        return ids

    @staticmethod
    def _aligned(df: pd.DataFrame, rows: pd.Index, columns: pd.Index, what: str, chrom: str) -> pd.DataFrame:
        index, cols = df.index.astype(str), df.columns.astype(str)
        if not (index.equals(df.index) and cols.equals(df.columns)):
            df = df.copy(deep=False)  # new labels, the same values
            df.index, df.columns = index, cols
        odd_rows = rows.symmetric_difference(df.index, sort=False)
        if len(odd_rows) or df.index.has_duplicates:
            raise InputError(
                f"{what} partition {chrom} does not hold exactly the table's {what} on {chrom}; "
                "differing IDs",
                ids=odd_rows if len(odd_rows) else df.index[df.index.duplicated()],
            )
        odd_cols = columns.symmetric_difference(df.columns, sort=False)
        if len(odd_cols) or df.columns.has_duplicates:
            raise InputError(
                f"{what} partition {chrom} has other columns than the table; differing IDs",
                ids=odd_cols if len(odd_cols) else df.columns[df.columns.duplicated()],
            )
        if df.index.equals(rows) and df.columns.equals(columns):
            return df
        return df.loc[rows, columns]

    # -------------------------------------------------------------- partitions
    def write_counts(self, chrom: str, counts_df: pd.DataFrame) -> None:
        """Write the counts of the genes on one chromosome (genes x samples, integers).

        Parameters
        ----------
        chrom
            The chromosome (any naming style) or ``"unplaced"``.
        counts_df
            Exactly the genes of ``genes.tsv`` on ``chrom`` (any order) x every sample.
        """
        tables = self._require_tables()
        chrom = _chrom_label(chrom)
        rows = self._expected(tables["gene_labels"], chrom, "genes")
        aligned = self._aligned(counts_df, rows, tables["samples"], "genes", chrom)
        values = _count_values(aligned)
        _write_matrix(
            self.path / _partition_path(_COUNTS_DIR, chrom), rows, tables["samples"], values, "gene"
        )
        self._colsums[chrom] = pd.Series(values.sum(axis=0), index=tables["samples"])

    def write_genotypes(self, chrom: str, genotype_df: pd.DataFrame) -> None:
        """Write the dosages of the SNPs on one chromosome (SNPs x individuals, float32, NaN missing).

        Parameters
        ----------
        chrom
            The chromosome (any naming style) or ``"unplaced"``.
        genotype_df
            Exactly the SNPs of ``snps.tsv`` on ``chrom`` (any order) x every individual, dosages in [0, 2].
        """
        tables = self._require_tables()
        chrom = _chrom_label(chrom)
        rows = self._expected(tables["snp_labels"], chrom, "SNPs")
        aligned = self._aligned(genotype_df, rows, tables["individuals"], "SNPs", chrom)
        values = _dosage_values(aligned).astype(np.float32, order="F")
        _write_matrix(
            self.path / _partition_path(_GENO_DIR, chrom), rows, tables["individuals"], values, "snp"
        )

    def write_genotype_pcs(self, pcs_df: pd.DataFrame) -> None:
        """Write the genotype PCs (individuals x genoPC1..genoPCk), e.g. from ``genotype_pcs``."""
        tables = self._require_tables()
        pcs = pcs_df.set_axis(pcs_df.index.astype(str))
        odd = tables["individuals"].symmetric_difference(pcs.index, sort=False)
        if len(odd):
            raise InputError(
                "genotype PCs are not indexed by exactly the individuals; differing IDs", ids=odd
            )
        _write_small(pcs.loc[tables["individuals"]].astype(float), self.path / _PCS, "individual")

    def write_ancestry(self, beta_df: pd.DataFrame, tau_df: pd.DataFrame) -> None:
        """Write ``beta`` (SNPs x Q allele frequencies) and ``tau`` (individuals x Q proportions).

        Parameters
        ----------
        beta_df, tau_df
            As :func:`tbeqtl.tblda.ancestry.estimate_ancestry` returns them; beta over every SNP
            of ``snps.tsv``, tau over every individual, the same Q columns.
        """
        tables = self._require_tables()
        if list(beta_df.columns) != list(tau_df.columns):
            raise InputError("ancestry beta and tau have different columns", ids=list(beta_df.columns))
        snps = tables["snp_labels"].index
        beta = beta_df.set_axis(beta_df.index.astype(str))
        tau = tau_df.set_axis(tau_df.index.astype(str))
        for df, ids, what in ((beta, snps, "beta (SNPs)"), (tau, tables["individuals"], "tau (individuals)")):
            odd = ids.symmetric_difference(df.index, sort=False)
            if len(odd):
                raise InputError(
                    f"ancestry {what} is not indexed by exactly the prepared IDs; differing", ids=odd
                )
        columns = pd.Index([str(c) for c in beta_df.columns], name="ancestry")
        write_table(
            beta.loc[snps].astype(float).set_axis(columns, axis=1).rename_axis(index="snp"),
            self.path / _BETA,
            index=True,
        )
        _write_small(
            tau.loc[tables["individuals"]].astype(float).set_axis(columns, axis=1),
            self.path / _TAU,
            "individual",
        )

    # -------------------------------------------------------------- finish
    def _check_partitions(
        self, kind: str, labels: pd.Series, columns: pd.Index, index_name: str
    ) -> list[str]:
        names = []
        for chrom in [*_ordered_chroms(labels), *([UNPLACED] if (labels == UNPLACED).any() else [])]:
            rel = _partition_path(kind, chrom)
            if not (self.path / rel).exists():
                raise InputError(f"partition {rel} was not written", path=str(self.path))
            rows, cols = _partition_ids(self.path / rel, index_name)
            if not rows.equals(labels.index[(labels == chrom).to_numpy()]) or not cols.equals(columns):
                raise InputError(
                    f"partition {rel} does not match the tables (a stale file?); {_RERUN}",
                    path=str(self.path),
                )
            names.append(rel)
        expected = set(names)
        for old in sorted((self.path / kind).glob("*.parquet")):
            if f"{kind}/{old.name}" not in expected:
                logger.info("removing stale partition %s", old)
                old.unlink()
        return names

    def _check_ids_file(self, name: str, ids: pd.Index) -> None:
        """Refuse a small table (e.g. left by an earlier run) whose rows are not ``ids`` in order."""
        rows = pd.read_csv(self.path / name, sep="\t", usecols=[0], dtype=str, keep_default_na=False)
        if not pd.Index(rows.iloc[:, 0], dtype=object).equals(ids):
            raise InputError(f"{name} is not over the folder's IDs (a stale file?)", path=str(self.path))

    def _library_size(self, labels: pd.Series, samples: pd.Index) -> pd.Series:
        total = pd.Series(0, index=samples, dtype=np.int64)
        for chrom in pd.unique(labels.to_numpy()):
            sums = self._colsums.get(chrom)
            if sums is None:  # a partition written before a resume: read it once, one chromosome in memory
                _, columns, values = _read_matrix(
                    self.path / _partition_path(_COUNTS_DIR, chrom), "gene", np.int64
                )
                sums = pd.Series(values.sum(axis=0), index=columns)
            total = total + sums.reindex(samples).to_numpy(dtype=np.int64)
        return total.rename("library_size")

    def finish(
        self,
        *,
        params: dict[str, Any] | None = None,
        counts: dict[str, Any] | None = None,
        inputs: dict[str, str] | None = None,
    ) -> Path:
        """Check the folder, write ``library_size.tsv``, then the manifest (last, atomically).

        Parameters
        ----------
        params
            Options the folder was made with (recorded; ``genotype_pcs`` is set to the number of PCs).
        counts
            Feature-selection counts to record besides ``n_samples``, ``n_individuals``, ``n_genes``,
            ``n_snps``, ``n_unplaced_genes``, ``n_unplaced_snps`` (computed here).
        inputs
            Input file -> SHA-256.

        Returns
        -------
        pathlib.Path
            The folder.

        Raises
        ------
        InputError
            A partition missing or not matching the tables, genotype PCs missing, only one
            ancestry file.
        """
        tables = self._require_tables()
        gene_labels, snp_labels = tables["gene_labels"], tables["snp_labels"]
        counts_files = self._check_partitions(_COUNTS_DIR, gene_labels, tables["samples"], "gene")
        geno_files = self._check_partitions(_GENO_DIR, snp_labels, tables["individuals"], "snp")
        if not (self.path / _PCS).exists():
            raise InputError("genotype PCs were not written (write_genotype_pcs)", path=str(self.path))
        n_pcs = len(pd.read_csv(self.path / _PCS, sep="\t", nrows=0).columns) - 1
        self._check_ids_file(_PCS, tables["individuals"])
        has_beta, has_tau = (self.path / _BETA).exists(), (self.path / _TAU).exists()
        if has_beta != has_tau:
            raise InputError(
                "only one of the ancestry files is there (write_ancestry writes both)", path=str(self.path)
            )
        if has_beta:
            self._check_ids_file(_TAU, tables["individuals"])
            if not _partition_ids(self.path / _BETA, "snp")[0].equals(snp_labels.index):
                raise InputError(
                    f"{_BETA} is not over the folder's SNPs (a stale file?)", path=str(self.path)
                )
        library = self._library_size(gene_labels, tables["samples"])
        library_df = validate_table(library.rename_axis("sample").reset_index(), "prepared_library_size")
        write_table(library_df, self.path / _LIBRARY_SIZE)
        rel_files = [_SAMPLES, _INDIVIDUALS, _GENES, _SNPS, _LIBRARY_SIZE, _PCS, *counts_files, *geno_files]
        rel_files += [_BETA, _TAU] if has_beta else []
        ours = {
            "n_samples": len(tables["samples"]),
            "n_individuals": len(tables["individuals"]),
            "n_genes": len(gene_labels),
            "n_snps": len(snp_labels),
            "n_unplaced_genes": int((gene_labels == UNPLACED).sum()),
            "n_unplaced_snps": int((snp_labels == UNPLACED).sum()),
        }
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tbeqtl_version": _version(),
            "files": {rel: sha256_file(self.path / rel) for rel in rel_files},
            "sizes": {rel: (self.path / rel).stat().st_size for rel in rel_files},
            "gene_chromosomes": _ordered_chroms(gene_labels),
            "snp_chromosomes": _ordered_chroms(snp_labels),
            "unplaced": {"genes": ours["n_unplaced_genes"] > 0, "snps": ours["n_unplaced_snps"] > 0},
            "counts": {**(counts or {}), **ours},
            "params": {**(params or {}), "genotype_pcs": n_pcs},
            "inputs": dict(inputs or {}),
            "tables": tables["manifest"],
        }
        write_json(manifest, self.path / MANIFEST)
        logger.info(
            "prepared folder %s: %d gene and %d SNP chromosomes, %d files",
            self.path,
            len(manifest["gene_chromosomes"]),
            len(manifest["snp_chromosomes"]),
            len(rel_files),
        )
        return self.path


def _version() -> str:
    from .. import __version__

    return __version__


# ---------------------------------------------------------------------------------- write_prepared
def _snp_chunks(data: EQTLData) -> Callable[[], Iterator[pd.DataFrame]]:
    labels = _partition_labels(data.snp_info_df, data.snps)

    def chunks() -> Iterator[pd.DataFrame]:
        for chrom in pd.unique(labels.to_numpy()):
            yield data.genotype_df.loc[(labels == chrom).to_numpy()]

    return chunks


def write_prepared(
    data: EQTLData,
    out_dir: str | Path,
    *,
    genotype_pcs: int = 5,
    ancestry: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    ancestry_snps: int = 40_000,
    n_ancestry: int | None = None,
    seed: int = 0,
    params: dict[str, Any] | None = None,
) -> Path:
    """Write an in-memory data set as a prepared folder (no feature selection).

    Parameters
    ----------
    data
        The data set: counts ``x`` (genes x samples), genotypes ``y`` (SNPs x individuals).
    out_dir
        The folder (created; files of an earlier prepared folder there are replaced).
    genotype_pcs
        Number of genotype PCs (paper 5), by :func:`tbeqtl.pipeline.covariates.genotype_pcs`
        (capped at min(S, N) - 1 as there).
    ancestry
        ``(beta_df, tau_df)`` to store, or None.
    ancestry_snps
        At most this many SNPs in the ancestry EM when it is estimated here (terastructure's -rfreq).
    n_ancestry
        When given and ``ancestry`` is None, estimate ``Q = n_ancestry`` ancestral populations.
    seed
        Seed of the ancestry EM.
    params
        Extra options to record in the manifest.

    Returns
    -------
    pathlib.Path
        The folder.
    """
    from .covariates import genotype_pcs as compute_pcs

    writer = PreparedWriter(out_dir, clean=True)
    writer.write_tables(
        sample_map_s=data.sample_map_s,
        individual_info_df=data.individual_info_df,
        gene_info_df=data.gene_info_df,
        snp_info_df=data.snp_info_df,
        sample_info_df=data.sample_info_df,
    )
    gene_labels = _partition_labels(data.gene_info_df, data.genes)
    for chrom in pd.unique(gene_labels.to_numpy()):
        writer.write_counts(chrom, data.counts_df.loc[(gene_labels == chrom).to_numpy()])
    snp_labels = _partition_labels(data.snp_info_df, data.snps)
    for chrom in pd.unique(snp_labels.to_numpy()):
        writer.write_genotypes(chrom, data.genotype_df.loc[(snp_labels == chrom).to_numpy()])
    writer.write_genotype_pcs(compute_pcs(data.genotype_df, n_pcs=genotype_pcs))
    if ancestry is None and n_ancestry is not None:
        ancestry = _estimate_ancestry(data, n_ancestry=n_ancestry, max_snps=ancestry_snps, seed=seed)
    if ancestry is not None:
        writer.write_ancestry(*ancestry)
    recorded = {
        **(params or {}),
        "genotype_pcs_requested": genotype_pcs,
        "ancestry_snps": ancestry_snps,
        "n_ancestry": n_ancestry,
        "seed": seed,
        "ancestry_given": ancestry is not None,
    }
    return writer.finish(params=recorded)


def _estimate_ancestry(
    data: EQTLData, *, n_ancestry: int, max_snps: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    from ..tblda.ancestry import estimate_ancestry_subset

    return estimate_ancestry_subset(_snp_chunks(data), n_ancestry=n_ancestry, max_snps=max_snps, seed=seed)


# ---------------------------------------------------------------------------------- reading
def is_prepared(path: str | Path) -> bool:
    """Whether ``path`` is a finished prepared folder (its manifest names the format).

    Parameters
    ----------
    path
        A folder.

    Returns
    -------
    bool
        True when ``path/manifest.json`` exists and says ``"format": "tbeqtl-prepared"``.
    """
    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not folder.is_dir():
        raise InputError("prepared folder does not exist", path=str(folder))
    if not path.exists():
        raise InputError(
            "not a prepared folder, or an unfinished one (no manifest.json): rerun tbeqtl prepare",
            path=str(folder),
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"manifest is not valid JSON ({exc}); {_RERUN}", path=str(path)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"manifest does not describe a {FORMAT} folder", path=str(path))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"prepared folder format version {manifest.get('format_version')} is not "
            f"{FORMAT_VERSION}; {_RERUN}",
            path=str(path),
        )
    return manifest


class PreparedData:
    """A prepared folder opened for reading: the small tables, and partitions on demand.

    Use :meth:`open`. Pickling keeps only the folder and the manifest (a few kB, whatever the
    data size); an unpickled copy reads the small tables again when first used, after checking
    that the folder's manifest is unchanged.

    Attributes
    ----------
    path : pathlib.Path
        The folder.
    manifest : dict
        The parsed ``manifest.json``.
    """

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest
        self._tables: dict[str, Any] | None = None

    @classmethod
    def open(cls, path: str | Path, *, verify: bool = False) -> PreparedData:
        """Open a prepared folder: read the manifest and the small tables (no partition).

        Parameters
        ----------
        path
            The folder.
        verify
            Also check every file's SHA-256 against the manifest (reads every partition once).

        Returns
        -------
        PreparedData
            The opened folder.

        Raises
        ------
        InputError
            No manifest (not a prepared folder, or unfinished), a file the manifest lists is
            missing, or (``verify``) a file's checksum differs; the message names the file.
        """
        folder = Path(path)
        manifest = _read_manifest(folder)
        missing = [rel for rel in manifest["files"] if not (folder / rel).is_file()]
        if missing:
            raise InputError(
                f"files of the prepared folder are missing; {_RERUN}", path=str(folder), ids=missing
            )
        sizes = manifest.get("sizes", {})
        resized = [rel for rel, size in sizes.items() if (folder / rel).stat().st_size != size]
        if resized:
            raise InputError(
                f"files differ in size from the manifest (truncated or replaced); {_RERUN}",
                path=str(folder),
                ids=resized,
            )
        if verify:
            bad = [rel for rel, digest in manifest["files"].items() if sha256_file(folder / rel) != digest]
            if bad:
                raise InputError(
                    f"files differ from their manifest checksum (changed or corrupt); {_RERUN}",
                    path=str(folder),
                    ids=bad,
                )
        prepared = cls(folder, manifest)
        prepared._load_tables()
        return prepared

    # -------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "manifest": self.manifest}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self.manifest = state["manifest"]
        self._tables = None

    def __repr__(self) -> str:
        c = self.manifest["counts"]
        return (
            f"PreparedData({str(self.path)!r}: {c['n_genes']} genes x {c['n_samples']} samples, "
            f"{c['n_snps']} SNPs x {c['n_individuals']} individuals)"
        )

    # -------------------------------------------------------------- small tables
    def _load_tables(self) -> dict[str, Any]:
        if self._tables is not None:
            return self._tables
        if _read_manifest(self.path) != self.manifest:
            raise InputError(
                "prepared folder was rewritten since it was opened; open it again", path=str(self.path)
            )
        specs = self.manifest["tables"]
        read = {name: _read_small(self.path / name, specs[name]["dtypes"]) for name in specs}
        samples = read[_SAMPLES].rename_axis(index="sample")
        tables = {
            "sample_map_s": samples["individual"].astype(str).rename("individual"),
            "sample_info_df": samples[specs[_SAMPLES]["info_columns"]],
            "individual_info_df": read[_INDIVIDUALS].rename_axis(index="individual"),
            "gene_info_df": read[_GENES].rename_axis(index="gene"),
            "snp_info_df": read[_SNPS].rename_axis(index="snp"),
        }
        library = _read_small(self.path / _LIBRARY_SIZE, {"library_size": "int64"})
        tables["library_size_s"] = library["library_size"].rename_axis("sample")
        pcs_header = pd.read_csv(self.path / _PCS, sep="\t", nrows=0).columns[1:]
        tables["genotype_pcs_df"] = _read_small(
            self.path / _PCS, dict.fromkeys(pcs_header, "float64")
        ).rename_axis(index="individual")
        self._tables = tables
        return tables

    @property
    def sample_map_s(self) -> pd.Series:
        """Sample -> individual, in sample order."""
        return self._load_tables()["sample_map_s"]

    @property
    def sample_info_df(self) -> pd.DataFrame:
        """Sample attributes, indexed by sample."""
        return self._load_tables()["sample_info_df"]

    @property
    def individual_info_df(self) -> pd.DataFrame:
        """Individual attributes, indexed by individual (the genotype columns' order)."""
        return self._load_tables()["individual_info_df"]

    @property
    def gene_info_df(self) -> pd.DataFrame:
        """Gene annotation of every kept gene."""
        return self._load_tables()["gene_info_df"]

    @property
    def snp_info_df(self) -> pd.DataFrame:
        """SNP annotation of every kept SNP."""
        return self._load_tables()["snp_info_df"]

    @property
    def library_size_s(self) -> pd.Series:
        """Column sums of the counts over every gene of the folder, indexed by sample (int64)."""
        return self._load_tables()["library_size_s"]

    @property
    def genotype_pcs_df(self) -> pd.DataFrame:
        """Individuals x genoPC1..genoPCk."""
        return self._load_tables()["genotype_pcs_df"]

    @property
    def ancestry(self) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """``(beta_df, tau_df)`` (SNPs x Q, individuals x Q), or None when the folder has none.

        Read from disk at each call (beta has one row per SNP).
        """
        if _BETA not in self.manifest["files"]:
            return None
        beta = _read_partition(self.path / _BETA)
        columns = pd.Index(beta.columns.astype(str), dtype=object, name="ancestry")
        tau = _read_small(self.path / _TAU, dict.fromkeys(columns, "float64"))
        return (
            beta.set_axis(columns, axis=1).rename_axis(index="snp"),
            tau.set_axis(columns, axis=1).rename_axis(index="individual"),
        )

    @property
    def gene_chromosomes(self) -> list[str]:
        """Chromosomes with genes (``chr`` style, natural order; without ``unplaced``)."""
        return list(self.manifest["gene_chromosomes"])

    @property
    def snp_chromosomes(self) -> list[str]:
        """Chromosomes with SNPs (``chr`` style, natural order; without ``unplaced``)."""
        return list(self.manifest["snp_chromosomes"])

    # -------------------------------------------------------------- partitions
    def _partition(self, kind: str, chrom: str, listed: list[str], *, has_unplaced: bool) -> Path:
        label = _chrom_label(chrom)
        if label not in listed and not (label == UNPLACED and has_unplaced):
            what = "genes" if kind == _COUNTS_DIR else "SNPs"
            raise InputError(
                f"no {what} on this chromosome in the prepared folder {self.path} "
                f"(it has {format_ids(listed)})",
                ids=[label],
            )
        return self.path / _partition_path(kind, label)

    def _check_ids(self, df: pd.DataFrame, path: Path, columns: pd.Index) -> None:
        if not df.columns.equals(columns):
            raise InputError(f"partition columns differ from the folder's tables; {_RERUN}", path=str(path))

    def load_counts(self, chrom: str) -> pd.DataFrame:
        """Read the counts of the genes on ``chrom``: genes (``genes.tsv`` order) x every sample, int64.

        Parameters
        ----------
        chrom
            A chromosome of :attr:`gene_chromosomes` (any naming style) or ``"unplaced"``.

        Returns
        -------
        pandas.DataFrame
            Index ``gene``, columns ``sample``.
        """
        path = self._partition(
            _COUNTS_DIR, chrom, self.gene_chromosomes, has_unplaced=self.manifest["unplaced"]["genes"]
        )
        rows, columns, values = _read_matrix(path, "gene", np.int64)
        counts = pd.DataFrame(values, index=rows.rename("gene"), columns=columns.rename("sample"), copy=False)
        self._check_ids(counts, path, self.sample_map_s.index)
        return counts

    def load_genotypes(self, chrom: str) -> pd.DataFrame:
        """Read the dosages of the SNPs on ``chrom``: SNPs (``snps.tsv`` order) x every individual, float64.

        Stored as float32; see the module notes for the exact values read back.

        Parameters
        ----------
        chrom
            A chromosome of :attr:`snp_chromosomes` (any naming style) or ``"unplaced"``.

        Returns
        -------
        pandas.DataFrame
            Index ``snp``, columns ``individual``; NaN = missing.
        """
        path = self._partition(
            _GENO_DIR, chrom, self.snp_chromosomes, has_unplaced=self.manifest["unplaced"]["snps"]
        )
        rows, columns, values = _read_matrix(
            path, "snp", np.float32, convert=_decimal_float64, out_dtype=np.float64
        )
        geno = pd.DataFrame(
            values, index=rows.rename("snp"), columns=columns.rename("individual"), copy=False
        )
        self._check_ids(geno, path, self.individual_info_df.index)
        return geno

    def load_pair(self, gene_chrom: str, snp_chrom: str) -> EQTLData:
        """Read one chromosome pair: genes on ``gene_chrom``, SNPs on ``snp_chrom``, every sample.

        Reads two partitions. The result equals ``full.subset(genes=<genes on gene_chrom>,
        snps=<SNPs on snp_chrom>)`` of the data set written, axis names included (taken from
        :meth:`EQTLData.subset` run on one gene and one SNP), without ``subset``'s copies.

        Parameters
        ----------
        gene_chrom, snp_chrom
            Chromosomes of :attr:`gene_chromosomes` and :attr:`snp_chromosomes`.

        Returns
        -------
        EQTLData
            The pair's data set.
        """
        counts = self.load_counts(gene_chrom)
        geno = self.load_genotypes(snp_chrom)
        genes, snps = self.gene_info_df, self.snp_info_df
        pair = EQTLData(
            counts,
            geno,
            self.sample_map_s.copy(deep=False),
            self.sample_info_df.copy(deep=False),
            self.individual_info_df.copy(deep=False),
            genes.reindex(counts.index) if len(genes.columns) else genes.copy(deep=False),
            snps.reindex(geno.index) if len(snps.columns) else snps.copy(deep=False),
        )
        return _named_like_subset(pair)


def _named_like_subset(pair: EQTLData) -> EQTLData:
    """``pair`` with the axis names :meth:`EQTLData.subset` gives, without copying its values.

    ``subset`` copies every matrix; here it runs on one gene and one SNP of ``pair`` and its axis
    names are given to ``pair``'s frames (new Index objects on the pair's own shallow frames).
    """
    probe = EQTLData(
        pair.counts_df.iloc[:1],
        pair.genotype_df.iloc[:1],
        pair.sample_map_s,
        pair.sample_info_df,
        pair.individual_info_df,
        pair.gene_info_df.iloc[:1] if len(pair.gene_info_df.columns) else pair.gene_info_df,
        pair.snp_info_df.iloc[:1] if len(pair.snp_info_df.columns) else pair.snp_info_df,
    ).subset(genes=pair.counts_df.index[:1], snps=pair.genotype_df.index[:1])
    for name in (
        "counts_df",
        "genotype_df",
        "sample_info_df",
        "individual_info_df",
        "gene_info_df",
        "snp_info_df",
    ):
        frame, like = getattr(pair, name), getattr(probe, name)
        frame.index = frame.index.rename(like.index.name)
        frame.columns = frame.columns.rename(like.columns.name)
    pair.sample_map_s.index = pair.sample_map_s.index.rename(probe.sample_map_s.index.name)
    pair.sample_map_s.name = probe.sample_map_s.name
    return pair
