"""The telescoping data model: many expression samples per genotyped individual.

:class:`EQTLData` holds, aligned by ID,

- ``counts_df``: raw read counts, genes x samples (integers; the paper's ``x_l``, one
  column per sample ``l``; for single-cell data, one column per cell),
- ``genotype_df``: allele dosages, SNPs x individuals, 0/1/2 (or fractional dosages
  in [0, 2]) with ``NaN`` for missing (the paper's ``y_i``),
- ``sample_map_s``: sample (or cell) -> individual (donor),
- ``sample_info_df``: per-sample attributes (``tissue``, covariates such as
  platform), indexed by sample,
- ``individual_info_df``: per-individual attributes (``sex``, reported ancestry),
- ``gene_info_df``: gene annotation (``chrom``, ``start``, ``end``, ``strand``,
  ``gene_type``, optional ``gene_name``), indexed by gene ID,
- ``snp_info_df``: SNP positions (``chrom``, ``pos``, optional ``ref``/``alt``),
  indexed by SNP ID.

It is built with :meth:`EQTLData.from_frames`, which validates and aligns the parts and
raises :class:`~tbeqtl.errors.InputError` naming offending IDs. The object is frozen:
methods that change it return a new one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import InputError, format_ids

__all__ = ["EQTLData", "harmonize_chrom", "validate_counts", "validate_genotypes"]

logger = logging.getLogger(__name__)

GENE_INFO_COLUMNS = ("chrom", "start", "end", "strand", "gene_type")
SNP_INFO_COLUMNS = ("chrom", "pos")


def harmonize_chrom(values: Iterable[object], *, style: str = "chr") -> pd.Index:
    """Harmonise chromosome names (``1``, ``chr1``, ``CHR1``; ``MT``/``chrM``).

    Parameters
    ----------
    values
        Chromosome names as read.
    style
        ``"chr"`` gives ``chr1 ... chr22, chrX, chrY, chrM``; ``"bare"`` gives ``1 ... MT``.

    Returns
    -------
    pandas.Index
        The harmonised names (strings; missing values stay NaN).
    """
    out = []
    for value in values:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append(np.nan)  # unknown chromosome stays missing
            continue
        text = str(value).strip()
        low = text.lower()
        bare = text[3:] if low.startswith("chr") else text
        if bare.upper() in {"M", "MT"}:
            bare = "M" if style == "chr" else "MT"
        elif bare.upper() in {"X", "Y"}:
            bare = bare.upper()
        elif bare.isdigit():
            bare = str(int(bare))
        out.append(f"chr{bare}" if style == "chr" else bare)
    return pd.Index(out, dtype=object)


def _check_unique(index: pd.Index, what: str, path: str | None = None) -> None:
    if index.has_duplicates:
        dups = index[index.duplicated()].unique()
        raise InputError(f"duplicate {what} IDs", path=path, ids=dups)


def _non_numeric_columns(df: pd.DataFrame) -> list:
    """Columns holding a cell that is not a number (object columns of numbers are fine)."""
    bad = []
    for column in df.columns:
        values = df[column]
        if not pd.api.types.is_numeric_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            if (converted.isna() & values.notna()).any():
                bad.append(column)
    return bad


def validate_counts(
    counts_df: pd.DataFrame, *, non_integer: str = "error", path: str | None = None
) -> pd.DataFrame:
    """Check a genes x samples count matrix and return it as int64.

    Parameters
    ----------
    counts_df
        Raw counts, genes in rows, samples in columns.
    non_integer
        ``"error"`` (default) rejects non-integer values; ``"round"`` rounds them with a warning.
    path
        File the counts came from, for error messages.

    Returns
    -------
    pandas.DataFrame
        The counts as ``int64``.

    Raises
    ------
    InputError
        Empty input, duplicate IDs, missing, negative or non-integer counts.
    """
    if counts_df.shape[0] == 0 or counts_df.shape[1] == 0:
        raise InputError(f"count matrix is empty ({counts_df.shape[0]} genes x {counts_df.shape[1]} samples)",
                         path=path)
    _check_unique(counts_df.index, "gene", path)
    _check_unique(counts_df.columns, "sample", path)
    try:
        values = counts_df.to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = _non_numeric_columns(counts_df)
        raise InputError("count matrix has non-numeric values in samples", path=path, ids=bad) from None
    if np.isnan(values).any():
        rows, _ = np.nonzero(np.isnan(values))
        raise InputError("count matrix has missing values in genes", path=path,
                         ids=counts_df.index[np.unique(rows)])
    if (values < 0).any():
        rows, _ = np.nonzero(values < 0)
        raise InputError("count matrix has negative counts in genes", path=path,
                         ids=counts_df.index[np.unique(rows)])
    frac = values != np.round(values)
    if frac.any():
        rows, _ = np.nonzero(frac)
        genes = counts_df.index[np.unique(rows)]
        if non_integer != "round":
            raise InputError("count matrix has non-integer counts (pass non_integer='round' to round them) "
                             "in genes", path=path, ids=genes)
        logger.warning("rounding non-integer counts in %d genes: %s", len(genes), format_ids(genes))
        values = np.round(values)
    return pd.DataFrame(values.astype(np.int64), index=counts_df.index.astype(str),
                        columns=counts_df.columns.astype(str))


def validate_genotypes(genotype_df: pd.DataFrame, *, path: str | None = None) -> pd.DataFrame:
    """Check a SNPs x individuals dosage matrix and return it as float64 with NaN for missing.

    Parameters
    ----------
    genotype_df
        Dosages in [0, 2], SNPs in rows, individuals in columns; NaN marks a missing call.
    path
        File the genotypes came from, for error messages.

    Returns
    -------
    pandas.DataFrame
        The dosages as ``float64``.

    Raises
    ------
    InputError
        Empty input, duplicate IDs, non-numeric values or dosages outside [0, 2].
    """
    if genotype_df.shape[0] == 0 or genotype_df.shape[1] == 0:
        raise InputError(
            f"genotype matrix is empty ({genotype_df.shape[0]} SNPs x {genotype_df.shape[1]} individuals)",
            path=path)
    _check_unique(genotype_df.index, "SNP", path)
    _check_unique(genotype_df.columns, "individual", path)
    try:
        values = genotype_df.to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = _non_numeric_columns(genotype_df)
        raise InputError("genotype matrix has non-numeric dosages in individuals", path=path,
                         ids=bad) from None
    with np.errstate(invalid="ignore"):
        out = (values < 0) | (values > 2)
    if out.any():
        rows, _ = np.nonzero(out)
        raise InputError("dosages outside [0, 2] in SNPs", path=path, ids=genotype_df.index[np.unique(rows)])
    return pd.DataFrame(values, index=genotype_df.index.astype(str), columns=genotype_df.columns.astype(str))


def _drop_uninformative_genes(counts_df: pd.DataFrame) -> pd.DataFrame:
    keep = counts_df.to_numpy().sum(axis=1) > 0
    if not keep.all():
        logger.info("dropped %d genes with zero counts in every sample: %s", (~keep).sum(),
                    format_ids(counts_df.index[~keep]))
    return counts_df.loc[keep]


def _drop_uninformative_snps(genotype_df: pd.DataFrame) -> pd.DataFrame:
    values = genotype_df.to_numpy()
    all_missing = np.isnan(values).all(axis=1)
    with np.errstate(invalid="ignore"):
        constant = np.nanmax(np.where(all_missing[:, None], 0, values), axis=1) == np.nanmin(
            np.where(all_missing[:, None], 0, values), axis=1)
    drop = all_missing | constant
    if drop.any():
        logger.info("dropped %d SNPs (%d all-missing, %d monomorphic): %s", drop.sum(), all_missing.sum(),
                    (constant & ~all_missing).sum(), format_ids(genotype_df.index[drop]))
    return genotype_df.loc[~drop]


@dataclass(frozen=True, repr=False)
class EQTLData:
    """Expression counts, genotypes and the sample -> individual map, aligned by ID.

    Build it with :meth:`from_frames`; the constructor does no checking.

    Attributes
    ----------
    counts_df : pandas.DataFrame
        Genes x samples raw counts (int64); the paper's ``x`` (G x L).
    genotype_df : pandas.DataFrame
        SNPs x individuals dosages (float64, NaN = missing); the paper's ``y`` (S x N).
    sample_map_s : pandas.Series
        Individual ID of each sample, indexed like ``counts_df.columns``.
    sample_info_df : pandas.DataFrame
        Per-sample attributes (e.g. ``tissue``), indexed like ``counts_df.columns``.
    individual_info_df : pandas.DataFrame
        Per-individual attributes (e.g. ``sex``), indexed like ``genotype_df.columns``.
    gene_info_df : pandas.DataFrame
        Gene annotation indexed like ``counts_df.index``, or empty.
    snp_info_df : pandas.DataFrame
        SNP positions indexed like ``genotype_df.index``, or empty.
    """

    counts_df: pd.DataFrame
    genotype_df: pd.DataFrame
    sample_map_s: pd.Series
    sample_info_df: pd.DataFrame
    individual_info_df: pd.DataFrame
    gene_info_df: pd.DataFrame
    snp_info_df: pd.DataFrame

    # ------------------------------------------------------------------ build
    @classmethod
    def from_frames(
        cls,
        counts_df: pd.DataFrame,
        genotype_df: pd.DataFrame,
        sample_map: pd.Series | dict | None = None,
        *,
        sample_info_df: pd.DataFrame | None = None,
        individual_info_df: pd.DataFrame | None = None,
        gene_info_df: pd.DataFrame | None = None,
        snp_info_df: pd.DataFrame | None = None,
        non_integer: str = "error",
        drop_unmatched: bool = False,
        drop_uninformative: bool = True,
    ) -> EQTLData:
        """Validate and align the parts of a telescoping data set.

        Parameters
        ----------
        counts_df
            Genes x samples raw counts.
        genotype_df
            SNPs x individuals dosages in [0, 2], NaN for missing.
        sample_map
            Sample -> individual. ``None`` means one sample per individual with equal IDs
            (the classic eQTL design).
        sample_info_df, individual_info_df
            Optional attribute tables indexed by sample / individual.
        gene_info_df, snp_info_df
            Optional annotation tables indexed by gene / SNP ID; chromosome names are harmonised
            to the ``chr`` style.
        non_integer
            ``"error"`` or ``"round"``, see :func:`validate_counts`.
        drop_unmatched
            If true, samples without a mapped individual, individuals without genotypes and
            genotyped individuals without samples are dropped with a logged count instead of
            raising.
        drop_uninformative
            Drop all-zero genes and all-missing or monomorphic SNPs (logged with counts).

        Returns
        -------
        EQTLData
            The aligned data set.

        Raises
        ------
        InputError
            Any inconsistency, naming the offending IDs.
        """
        counts_df = validate_counts(counts_df, non_integer=non_integer)
        genotype_df = validate_genotypes(genotype_df)
        if sample_map is None:
            sample_map_s = pd.Series(counts_df.columns, index=counts_df.columns)
        else:
            sample_map_s = pd.Series(sample_map)
            if sample_map_s.isna().any():
                raise InputError("sample map has no individual for samples",
                                 ids=sample_map_s.index[sample_map_s.isna().to_numpy()])
            sample_map_s = sample_map_s.astype(str)
            sample_map_s.index = sample_map_s.index.astype(str)
        sample_map_s.name = "individual"
        sample_map_s.index.name = "sample"
        _check_unique(sample_map_s.index, "sample (in the sample map)")

        samples = counts_df.columns
        unmapped = samples.difference(sample_map_s.index, sort=False)
        no_geno = pd.Index(sample_map_s.reindex(samples).dropna().unique()).difference(genotype_df.columns,
                                                                                   sort=False)
        if len(unmapped) and not drop_unmatched:
            raise InputError("samples in the counts are not in the sample map", ids=unmapped)
        if len(no_geno) and not drop_unmatched:
            raise InputError("individuals have samples but no genotypes", ids=no_geno)
        keep = samples.difference(unmapped, sort=False)
        keep = keep[~sample_map_s.reindex(keep).isin(no_geno).to_numpy()]
        if len(keep) < len(samples):
            logger.warning("dropped %d samples without a genotyped individual: %s", len(samples) - len(keep),
                           format_ids(samples.difference(keep, sort=False)))
        if len(keep) == 0:
            raise InputError("no sample is left after matching samples to genotyped individuals")
        counts_df = counts_df[keep]
        sample_map_s = sample_map_s.reindex(keep)
        individuals = pd.Index(pd.unique(sample_map_s.to_numpy()))
        no_samples = genotype_df.columns.difference(individuals, sort=False)
        if len(no_samples):
            if not drop_unmatched:
                raise InputError("genotyped individuals have no expression samples "
                                 "(pass drop_unmatched=True to drop them)", ids=no_samples)
            logger.warning("dropped %d genotyped individuals without samples: %s", len(no_samples),
                           format_ids(no_samples))
        genotype_df = genotype_df[[c for c in genotype_df.columns if c in set(individuals)]]

        if drop_uninformative:
            counts_df = _drop_uninformative_genes(counts_df)
            genotype_df = _drop_uninformative_snps(genotype_df)
        if counts_df.shape[0] == 0:
            raise InputError("no gene is left after dropping genes with zero counts")
        if genotype_df.shape[0] == 0:
            raise InputError("no SNP is left after dropping all-missing and monomorphic SNPs")

        sample_info_df = _align_info(sample_info_df, counts_df.columns, "sample")
        individual_info_df = _align_info(individual_info_df, genotype_df.columns, "individual")
        gene_info_df = _align_annotation(gene_info_df, counts_df.index, "gene", ("chrom",))
        snp_info_df = _align_annotation(snp_info_df, genotype_df.index, "SNP", SNP_INFO_COLUMNS)
        # canonical axis names, so that equality never depends on how the input frames were labelled
        counts_df = counts_df.rename_axis(index="gene", columns="sample")
        genotype_df = genotype_df.rename_axis(index="snp", columns="individual")
        sample_map_s = sample_map_s.rename_axis("sample").rename("individual")
        sample_info_df = sample_info_df.rename_axis(index="sample")
        individual_info_df = individual_info_df.rename_axis(index="individual")
        gene_info_df = gene_info_df.rename_axis(index="gene")
        snp_info_df = snp_info_df.rename_axis(index="snp")
        return cls(counts_df, genotype_df, sample_map_s, sample_info_df, individual_info_df, gene_info_df,
                   snp_info_df)

    # ------------------------------------------------------------ properties
    @property
    def genes(self) -> pd.Index:
        """Gene IDs (rows of ``counts_df``)."""
        return self.counts_df.index

    @property
    def samples(self) -> pd.Index:
        """Sample IDs (columns of ``counts_df``)."""
        return self.counts_df.columns

    @property
    def snps(self) -> pd.Index:
        """SNP IDs (rows of ``genotype_df``)."""
        return self.genotype_df.index

    @property
    def individuals(self) -> pd.Index:
        """Individual IDs (columns of ``genotype_df``)."""
        return self.genotype_df.columns

    @property
    def sample_individual_index(self) -> np.ndarray:
        """For each sample, the column of its individual in ``genotype_df`` (int64, length L)."""
        return self.individuals.get_indexer(self.sample_map_s.to_numpy()).astype(np.int64)

    @property
    def samples_per_individual(self) -> pd.Series:
        """Number of samples of each individual, indexed like ``genotype_df.columns``."""
        return self.sample_map_s.value_counts().reindex(self.individuals, fill_value=0)

    # --------------------------------------------------------------- helpers
    def subset(
        self,
        *,
        genes: Iterable[str] | None = None,
        samples: Iterable[str] | None = None,
        snps: Iterable[str] | None = None,
    ) -> EQTLData:
        """Return a new data set restricted to the given genes, samples and SNPs.

        Individuals left without samples are dropped.

        Parameters
        ----------
        genes, samples, snps
            IDs to keep (``None`` keeps all). Unknown IDs raise :class:`InputError`.

        Returns
        -------
        EQTLData
            The subset, still aligned.
        """
        def pick(index: pd.Index, ids: Iterable[str] | None, what: str) -> pd.Index:
            if ids is None:
                return index
            ids = pd.Index([str(i) for i in ids])
            unknown = ids.difference(index, sort=False)
            if len(unknown):
                raise InputError(f"unknown {what} IDs", ids=unknown)
            return ids

        gene_ids = pick(self.genes, genes, "gene")
        sample_ids = pick(self.samples, samples, "sample")
        snp_ids = pick(self.snps, snps, "SNP")
        sample_map_s = self.sample_map_s.reindex(sample_ids)
        individuals = [i for i in self.individuals if i in set(sample_map_s.to_numpy())]
        return EQTLData(
            self.counts_df.loc[gene_ids, sample_ids],
            self.genotype_df.loc[snp_ids, individuals],
            sample_map_s,
            self.sample_info_df.reindex(sample_ids),
            self.individual_info_df.reindex(individuals),
            self.gene_info_df.reindex(gene_ids) if len(self.gene_info_df.columns) else self.gene_info_df,
            self.snp_info_df.reindex(snp_ids) if len(self.snp_info_df.columns) else self.snp_info_df,
        )

    def replace(self, **changes: object) -> EQTLData:
        """Return a copy with some parts replaced and re-validated.

        Parameters
        ----------
        **changes
            Field names of :class:`EQTLData` and their new values.

        Returns
        -------
        EQTLData
            The new data set.
        """
        parts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        parts.update(changes)
        return EQTLData.from_frames(
            parts["counts_df"], parts["genotype_df"], parts["sample_map_s"],
            sample_info_df=parts["sample_info_df"], individual_info_df=parts["individual_info_df"],
            gene_info_df=parts["gene_info_df"], snp_info_df=parts["snp_info_df"], drop_uninformative=False)

    def equals(self, other: EQTLData, *, check_exact: bool = True) -> bool:
        """Whether two data sets hold the same IDs and values.

        Parameters
        ----------
        other
            The data set to compare with.
        check_exact
            Compare floating-point values exactly (default) or to 1e-9 relative.

        Returns
        -------
        bool
            True when every part is equal.
        """
        try:
            pd.testing.assert_frame_equal(self.counts_df, other.counts_df, check_dtype=False)
            pd.testing.assert_frame_equal(self.genotype_df, other.genotype_df, check_exact=check_exact,
                                          check_dtype=False)
            pd.testing.assert_series_equal(self.sample_map_s, other.sample_map_s, check_dtype=False,
                                           check_names=False)
        except AssertionError:
            return False
        return True

    def __repr__(self) -> str:
        spi = self.samples_per_individual
        lines = [
            f"EQTLData: {self.counts_df.shape[0]} genes x {self.counts_df.shape[1]} samples; "
            f"{self.genotype_df.shape[0]} SNPs x {self.genotype_df.shape[1]} individuals",
            f"  samples per individual: min {spi.min()}, median {spi.median():g}, max {spi.max()}",
            f"  missing genotypes: {np.isnan(self.genotype_df.to_numpy()).mean():.2%}",
        ]
        if "tissue" in self.sample_info_df.columns:
            lines.append(f"  tissues: {self.sample_info_df['tissue'].nunique()}")
        for name in ("sample_info_df", "individual_info_df", "gene_info_df", "snp_info_df"):
            cols = list(getattr(self, name).columns)
            if cols:
                lines.append(f"  {name}: {', '.join(map(str, cols))}")
        return "\n".join(lines)


def _align_info(df: pd.DataFrame | None, index: pd.Index, what: str) -> pd.DataFrame:
    if df is None:
        return pd.DataFrame(index=index)
    df = df.copy()
    df.index = df.index.astype(str)
    _check_unique(df.index, what)
    missing = index.difference(df.index, sort=False)
    if len(missing):
        raise InputError(f"{what} attribute table lacks {what}s", ids=missing)
    return df.reindex(index)


def _align_annotation(df: pd.DataFrame | None, index: pd.Index, what: str,
                      required: tuple[str, ...]) -> pd.DataFrame:
    if df is None:
        return pd.DataFrame(index=index)
    df = df.copy()
    df.index = df.index.astype(str)
    _check_unique(df.index, what)
    lacking = [c for c in required if c not in df.columns]
    if lacking:
        raise InputError(f"{what} annotation lacks columns", ids=lacking)
    df["chrom"] = harmonize_chrom(df["chrom"]).to_numpy()
    missing = index.difference(df.index, sort=False)
    if len(missing):
        logger.warning("%d %ss have no annotation (never cis): %s", len(missing), what, format_ids(missing))
    return df.reindex(index)
