"""Inputs of the tensorQTL-style cis functions: genotype source, aligned cohort, phenotype positions.

:func:`prepare_cis` turns tensorQTL's arguments (``genotype_df`` variants x individuals with
``variant_df``, or a :class:`~tbeqtl.io.genotypes.GenotypeSource`; ``phenotype_df`` phenotypes x
samples; ``phenotype_pos_df``; ``covariates_df`` samples x covariates) into a :class:`CisInputs`:
samples aligned by ID (:func:`~tbeqtl.association.cohort.align_cohort`), the covariate basis, and
the phenotypes grouped by chromosome in a canonical order, with every skipped phenotype counted
in the log.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import harmonize_chrom
from ..errors import InputError, format_ids
from ..io.genotypes import GenotypeSource, as_genotype_source
from ..logs import progress
from .cohort import Cohort, align_cohort
from .residualize import CovariateBasis, covariate_basis

__all__ = ["CisInputs", "Ticker", "chrom_sort_key", "phenotype_positions", "prepare_cis"]

logger = logging.getLogger(__name__)


def chrom_sort_key(chrom: str) -> tuple:
    """Natural order of chromosome names: chr1 ... chr22, chrX, chrY, chrM, then others by name."""
    bare = re.sub(r"^chr", "", str(chrom), flags=re.IGNORECASE)
    if bare.isdigit():
        return (0, int(bare), "")
    special = {"X": 1, "Y": 2, "M": 3, "MT": 3}
    if bare.upper() in special:
        return (1, special[bare.upper()], "")
    return (2, 0, str(chrom))


def phenotype_positions(phenotype_pos_df: pd.DataFrame, phenotype_ids: pd.Index) -> tuple[pd.DataFrame, bool]:
    """Normalise phenotype positions (tensorQTL's ``chr/pos`` or ``chr/start/end``, tbeqtl's ``chrom``).

    Positions are 1-based in memory (tensorQTL's ``read_phenotype_bed`` and tbeqtl's
    :func:`~tbeqtl.io.expression_bed.read_expression_bed` both add 1 to the BED start).

    Parameters
    ----------
    phenotype_pos_df
        Indexed by phenotype ID: ``chr`` or ``chrom``, and ``pos`` or ``start`` + ``end``.
    phenotype_ids
        The phenotypes analysed (all must have a position).

    Returns
    -------
    positions : pandas.DataFrame
        Indexed by phenotype ID in the row order of ``phenotype_pos_df``: ``chrom`` (harmonised),
        ``start``, ``end`` (int64; ``start == end`` for a single position).
    has_end : bool
        Whether the positions are intervals (tensorQTL then writes ``end_distance`` in the pair
        files): False with a ``pos`` column, or when every ``start == end`` (what tensorQTL's BED
        reader turns into ``pos``).

    Raises
    ------
    InputError
        Missing columns, phenotypes without a position (named), non-integer positions, or
        positions not sorted within a chromosome (the offending phenotypes named; tensorQTL
        requires the BED sorted).
    """
    df = phenotype_pos_df.copy()
    df.index = pd.Index(df.index.astype(str), name="phenotype_id")
    chrom_col = "chrom" if "chrom" in df.columns else "chr" if "chr" in df.columns else None
    if chrom_col is None:
        raise InputError(f"phenotype_pos_df needs a 'chr' or 'chrom' column (found {list(df.columns)})")
    if "pos" in df.columns:
        start_col = end_col = "pos"
    elif {"start", "end"} <= set(df.columns):
        start_col, end_col = "start", "end"
    elif "tss" in df.columns:
        start_col = end_col = "tss"
    else:
        raise InputError(
            f"phenotype_pos_df needs 'pos' or 'start' and 'end' columns (found {list(df.columns)})"
        )
    if df.index.has_duplicates:
        raise InputError("duplicate phenotype IDs in phenotype_pos_df", ids=df.index[df.index.duplicated()])
    missing = phenotype_ids.difference(df.index, sort=False)
    if len(missing):
        raise InputError("phenotypes without a position in phenotype_pos_df", ids=missing)
    df = df[df.index.isin(phenotype_ids)]
    out = pd.DataFrame({"chrom": np.asarray(harmonize_chrom(df[chrom_col]), dtype=object)}, index=df.index)
    for name, col in (("start", start_col), ("end", end_col)):
        num = pd.to_numeric(df[col], errors="coerce")
        bad = num.isna() | (num != num.round())
        if bad.any():
            raise InputError(f"phenotype_pos_df has non-integer {col!r} for phenotypes", ids=df.index[bad])
        out[name] = num.astype(np.int64)
    if (out["end"] < out["start"]).any():
        raise InputError(
            "phenotype_pos_df has end < start for phenotypes", ids=out.index[out["end"] < out["start"]]
        )
    unsorted = []
    for _, sub in out.groupby("chrom", sort=False):
        starts = sub["start"].to_numpy()
        bad = np.flatnonzero(np.diff(starts) < 0)
        unsorted += [f"{sub.index[i + 1]} ({starts[i + 1]} after {sub.index[i]} at {starts[i]})" for i in bad]
    if unsorted:
        raise InputError(
            "phenotype positions are not sorted within their chromosome (sort the BED)", ids=unsorted
        )
    has_end = start_col != end_col and bool((out["start"] != out["end"]).any())
    return out, has_end


@dataclass
class CisInputs:
    """Everything the cis functions need, aligned.

    Attributes
    ----------
    source : GenotypeSource
        The genotypes.
    cohort : Cohort
        Phenotypes, covariates and genotype individuals in the canonical sample order.
    basis : CovariateBasis
        Orthonormal basis of the intercept and covariates.
    df : int
        Residual degrees of freedom ``n - 2 - k``.
    positions : pandas.DataFrame
        ``chrom``, ``start``, ``end`` of the phenotypes mapped.
    has_end : bool
        Positions are intervals (``end_distance`` in the pair files).
    values : dict
        Phenotype ID -> float64 values (canonical sample order).
    by_chrom : dict
        Chromosome -> phenotype IDs to map on it, sorted by (start, end, ID); chromosomes in
        natural order.
    """

    source: GenotypeSource
    cohort: Cohort
    basis: CovariateBasis
    df: int
    positions: pd.DataFrame
    has_end: bool
    values: dict
    by_chrom: dict

    def bounds(self, pid: str) -> tuple[int, int]:
        """``(start, end)`` of a phenotype (1-based, ``start == end`` for a single position)."""
        return self._bounds[pid]

    def __post_init__(self):
        self._bounds = {
            pid: (int(s), int(e))
            for pid, s, e in zip(
                self.positions.index, self.positions["start"], self.positions["end"], strict=True
            )
        }

    @property
    def q(self) -> np.ndarray:
        """The covariate basis ``Q`` (n x (k+1))."""
        return self.basis.q

    @property
    def n_phenotypes(self) -> int:
        """Phenotypes to map."""
        return sum(len(v) for v in self.by_chrom.values())


def _usable_phenotypes(values: pd.DataFrame, q: np.ndarray) -> pd.Index:
    """Phenotypes that can be mapped; the others are logged with counts (and IDs at debug level)."""
    arr = values.to_numpy()
    has_nan = np.isnan(arr).any(axis=1)
    if has_nan.any():
        logger.warning(
            "%d phenotype(s) with missing values skipped (tensorQTL does not impute phenotypes): %s",
            int(has_nan.sum()),
            format_ids(values.index[has_nan]),
        )
    finite = np.where(has_nan[:, None], 0.0, arr)
    constant = ~has_nan & np.all(finite == finite[:, :1], axis=1)
    if constant.any():
        logger.info(
            "%d constant phenotype(s) skipped: %s", int(constant.sum()), format_ids(values.index[constant])
        )
    ok = ~has_nan & ~constant
    centered = finite - finite.mean(axis=1, keepdims=True)
    res = centered - (centered @ q) @ q.T
    explained = ok & (np.einsum("ij,ij->i", res, res) <= 1e-20 * np.einsum("ij,ij->i", centered, centered))
    if explained.any():
        logger.warning(
            "%d phenotype(s) entirely explained by the covariates skipped: %s",
            int(explained.sum()),
            format_ids(values.index[explained]),
        )
    return values.index[ok & ~explained]


def prepare_cis(
    genotype_df,
    variant_df,
    phenotype_df: pd.DataFrame,
    *,
    phenotype_pos_df: pd.DataFrame,
    covariates_df: pd.DataFrame | None = None,
    interaction_df=None,
    sample_map=None,
    gtex_ids: bool = False,
) -> CisInputs:
    """Align the inputs of a cis function (see the module docstring).

    Parameters
    ----------
    genotype_df
        Variants x individuals DataFrame (with ``variant_df``) or a genotype source.
    variant_df
        ``chrom``/``chr`` and ``pos`` per variant (DataFrame input only).
    phenotype_df
        Phenotypes x samples.
    phenotype_pos_df
        Phenotype positions (see :func:`phenotype_positions`).
    covariates_df
        Samples x covariates (either orientation; no missing values).
    interaction_df
        Interaction terms (samples x terms), or None.
    sample_map, gtex_ids
        Sample -> individual mapping (see :func:`~tbeqtl.association.cohort.align_cohort`).

    Returns
    -------
    CisInputs
        The aligned inputs.
    """
    if variant_df is not None and not isinstance(genotype_df, pd.DataFrame):
        logger.info("variant_df ignored: the genotype source has its own variant table")
        variant_df = None
    source = as_genotype_source(genotype_df, variant_df)
    cohort = align_cohort(
        phenotype_df,
        source.samples,
        covariates_df,
        interaction_df=interaction_df,
        sample_map=sample_map,
        gtex_ids=gtex_ids,
    )
    n = cohort.n_samples
    cov = cohort.covariates_df
    basis = covariate_basis(
        None if cov is None else cov.to_numpy().T,
        n,
        names=None if cov is None else list(cov.columns),
        collinear="drop",
    )
    df = n - 2 - basis.n_covariates
    if df < 1:
        raise InputError(f"no residual degrees of freedom: {n} samples, {basis.n_covariates} covariates")
    positions, has_end = phenotype_positions(phenotype_pos_df, cohort.phenotype_df.index)
    chroms = set(source.chromosomes)
    absent = ~positions["chrom"].isin(chroms)
    if absent.any():  # before the checks of the values: only the phenotypes mapped are residualised
        logger.warning(
            "%d phenotype(s) on chromosomes without variants skipped (%s): %s",
            int(absent.sum()),
            ", ".join(sorted(positions.loc[absent, "chrom"].unique(), key=chrom_sort_key)),
            format_ids(positions.index[absent]),
        )
        positions = positions.loc[~absent]
    usable = _usable_phenotypes(cohort.phenotype_df.loc[positions.index], basis.q)
    positions = positions.loc[positions.index.isin(usable)]
    by_chrom = {}
    for chrom in sorted(positions["chrom"].unique(), key=chrom_sort_key):
        sub = positions[positions["chrom"] == chrom]
        order = np.lexsort((sub.index.to_numpy().astype(str), sub["end"].to_numpy(), sub["start"].to_numpy()))
        by_chrom[chrom] = list(sub.index[order])
    values = {pid: cohort.phenotype_df.loc[pid].to_numpy(dtype=np.float64) for pid in positions.index}
    logger.info(
        "cis mapping: %d samples, %d covariates (df %d), %d phenotypes on %d chromosome(s)",
        n,
        basis.n_covariates,
        df,
        len(positions),
        len(by_chrom),
    )
    return CisInputs(
        source=source,
        cohort=cohort,
        basis=basis,
        df=df,
        positions=positions,
        has_end=has_end,
        values=values,
        by_chrom=by_chrom,
    )


class Ticker:
    """Advance a :func:`~tbeqtl.logs.progress` loop by counts (a bar on a terminal, log lines otherwise).

    Parameters
    ----------
    total
        Items in all.
    desc
        What the loop does.
    enabled
        Passed to :func:`~tbeqtl.logs.progress`.
    """

    def __init__(self, total: int, *, desc: str, enabled: bool | None):
        self._it = iter(progress(itertools.repeat(None, total), desc=desc, total=total, enabled=enabled))
        self._left = total

    def advance(self, k: int = 1) -> None:
        """Mark ``k`` more items done."""
        for _ in range(min(k, self._left)):
            next(self._it, None)
        self._left -= min(k, self._left)

    def close(self) -> None:
        """Finish the loop (the remaining items count as done)."""
        self.advance(self._left)
        next(self._it, None)
