"""Sample alignment for real cohorts: phenotype samples -> genotype individuals, covariates by ID.

A cohort's genotype file usually holds more individuals than one tissue's expression (GTEx: 838
donors in one VCF, a few hundred samples per tissue). :func:`align_cohort` maps every phenotype
sample to a genotype individual (identity, a ``sample -> individual`` map, or GTEx's donor rule),
subsets the genotypes to those individuals (the count dropped is logged), aligns covariates and
interaction terms by sample ID in either orientation, and puts everything in one canonical order:
samples sorted by ID, so that results never depend on the order of the input columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError, format_ids

__all__ = ["Cohort", "align_cohort", "orient_samples_by_columns"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cohort:
    """Phenotypes, covariates and genotype columns in one canonical sample order.

    Parameters
    ----------
    phenotype_df
        Phenotypes x samples (float64), columns sorted by sample ID.
    covariates_df
        Samples x covariates (float64, tensorQTL orientation) in the same sample order, or None.
    interaction_df
        Samples x interaction terms in the same order, or None.
    genotype_ids
        The genotype individual of each phenotype sample (same order).
    """

    phenotype_df: pd.DataFrame
    covariates_df: pd.DataFrame | None
    interaction_df: pd.DataFrame | None
    genotype_ids: pd.Index

    @property
    def samples(self) -> pd.Index:
        """Phenotype sample IDs in the canonical order."""
        return self.phenotype_df.columns

    @property
    def n_samples(self) -> int:
        """Number of analysed samples."""
        return int(self.phenotype_df.shape[1])


def orient_samples_by_columns(df: pd.DataFrame, samples: pd.Index, *, what: str) -> pd.DataFrame:
    """Return ``df`` as samples x columns, telling its orientation from the sample IDs.

    Parameters
    ----------
    df
        Samples x terms or terms x samples.
    samples
        The phenotype sample IDs.
    what
        Name of the table for messages.

    Returns
    -------
    pandas.DataFrame
        Samples (rows, in ``samples`` order) x terms, float64.

    Raises
    ------
    InputError
        No or ambiguous orientation, samples missing (named), non-numeric or missing values.
    """
    rows = pd.Index(df.index.astype(str))
    cols = pd.Index(df.columns.astype(str))
    in_rows, in_cols = rows.isin(samples).sum(), cols.isin(samples).sum()
    if in_rows == 0 and in_cols == 0:
        raise InputError(f"no phenotype sample ID among the rows or the columns of the {what}")
    if in_rows and in_cols:
        raise InputError(f"ambiguous {what}: sample IDs in both its rows and its columns")
    out = df.copy()
    out.index, out.columns = rows, cols
    if in_cols:
        out = out.T
    missing = samples.difference(out.index, sort=False)
    if len(missing):
        raise InputError(f"the {what} lacks samples", ids=missing)
    out = out.loc[samples]
    values = out.apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & out.notna()
    if bad.any().any():
        raise InputError(
            f"non-numeric values in the {what} for terms", ids=out.columns[bad.any(axis=0).to_numpy()]
        )
    nan = values.isna().any(axis=0)
    if nan.any():
        col = values.columns[nan.to_numpy()][0]
        raise InputError(
            f"the {what} has missing values (term {col!r}) for samples",
            ids=values.index[values[col].isna().to_numpy()],
        )
    values.index.name = "sample"
    return values.astype(np.float64)


def _individual_of(samples: pd.Index, sample_map, *, gtex_ids: bool) -> pd.Index:
    if sample_map is not None:
        sample_map = pd.Series(sample_map)
        sample_map.index = sample_map.index.astype(str)
        missing = samples.difference(sample_map.index, sort=False)
        if len(missing):
            raise InputError("phenotype samples absent from the sample map", ids=missing)
        return pd.Index(sample_map.loc[samples].astype(str).to_numpy(), name="individual")
    if gtex_ids:
        from ..io.gtex import gtex_donor_ids

        return pd.Index(gtex_donor_ids(samples).to_numpy(), name="individual")
    return pd.Index(samples.to_numpy(), name="individual")


def align_cohort(
    phenotype_df: pd.DataFrame,
    genotype_samples,
    covariates_df: pd.DataFrame | None = None,
    *,
    interaction_df: pd.DataFrame | None = None,
    sample_map=None,
    gtex_ids: bool = False,
) -> Cohort:
    """Align a cohort's phenotypes, covariates and genotypes by ID.

    Parameters
    ----------
    phenotype_df
        Phenotypes x samples.
    genotype_samples
        Individual IDs held by the genotype input (a superset of the phenotypes' individuals).
    covariates_df
        Samples x covariates (tensorQTL) or covariates x samples (MatrixEQTL); told apart by ID.
        Missing values are an error.
    interaction_df
        Interaction term(s), samples x terms (a Series is one term), either orientation.
    sample_map
        Series (or dict) sample -> individual; default: the sample IDs are the individual IDs.
    gtex_ids
        Without ``sample_map``, derive donors from GTEx sample IDs (``GTEX-1117F-0226-SM-5GZZ7`` ->
        ``GTEX-1117F``).

    Returns
    -------
    Cohort
        The aligned inputs, samples sorted by ID.

    Raises
    ------
    InputError
        Phenotype samples without genotypes, two samples of one individual, duplicate IDs, covariate
        problems; each names the offending IDs.
    """
    samples = pd.Index(phenotype_df.columns.astype(str), name="sample")
    if samples.has_duplicates:
        raise InputError("duplicate phenotype sample IDs", ids=samples[samples.duplicated()].unique())
    individuals = _individual_of(samples, sample_map, gtex_ids=gtex_ids)
    if individuals.has_duplicates:
        dup = individuals[individuals.duplicated(keep=False)]
        raise InputError(
            "several phenotype samples map to one genotype individual (map one sample per individual)",
            ids=samples[individuals.isin(dup)],
        )
    available = pd.Index(pd.Index(genotype_samples).astype(str))
    absent = ~individuals.isin(available)
    if absent.any():
        raise InputError(
            f"{int(absent.sum())} phenotype sample(s) without genotypes (individual absent from them)",
            ids=[
                f"{s} ({i})" if s != i else s
                for s, i in zip(samples[absent], individuals[absent], strict=True)
            ],
        )
    n_extra = len(available) - len(individuals)
    if n_extra:
        logger.info(
            "genotypes hold %d individuals; %d with phenotypes are analysed, %d not used",
            len(available),
            len(individuals),
            n_extra,
        )
    order = np.argsort(samples.to_numpy(), kind="stable")
    sorted_samples = samples[order]
    pheno = phenotype_df.copy()
    pheno.columns = samples
    pheno = pheno[sorted_samples]
    pheno.index = pd.Index(pheno.index.astype(str), name="phenotype_id")
    if pheno.index.has_duplicates:
        raise InputError("duplicate phenotype IDs", ids=pheno.index[pheno.index.duplicated()].unique())
    cov = None
    if covariates_df is not None and covariates_df.size:
        cov = orient_samples_by_columns(covariates_df, sorted_samples, what="covariates")
    inter = None
    if interaction_df is not None:
        frame = interaction_df.to_frame() if isinstance(interaction_df, pd.Series) else interaction_df
        inter = orient_samples_by_columns(frame, sorted_samples, what="interaction table")
        constant = inter.columns[(inter.nunique(axis=0) <= 1).to_numpy()]
        if len(constant):
            raise InputError("interaction term(s) constant across the samples", ids=constant)
    logger.debug("cohort: %d samples (%s)", len(sorted_samples), format_ids(sorted_samples, limit=3))
    return Cohort(
        phenotype_df=pheno.astype(np.float64),
        covariates_df=cov,
        interaction_df=inter,
        genotype_ids=pd.Index(individuals[order], name="individual"),
    )
