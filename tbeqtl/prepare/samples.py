"""Which samples and individuals ``tbeqtl prepare`` keeps.

A sample is kept when it is in the count matrix and in the sample attributes and its
individual is in the genotype file (the genotype file may hold more donors: they are left out,
as are samples of donors without genotypes, with a logged count). Samples and individuals are
sorted by ID, so the prepared folder does not depend on the order of any input.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import pandas as pd

from ..errors import InputError, format_ids

__all__ = ["SampleSelection", "select_samples"]

logger = logging.getLogger(__name__)


class SampleSelection(NamedTuple):
    """Kept samples and individuals.

    Attributes
    ----------
    sample_df : pandas.DataFrame
        Attributes of the kept samples (``individual``, ``tissue``, ...), sorted by sample ID.
    individuals : pandas.Index
        The kept individuals, sorted.
    counts : dict
        ``samples_input``, ``samples_with_attributes``, ``n_samples``, ``n_individuals``,
        ``n_tissues``, ``individuals_genotyped_input``.
    """

    sample_df: pd.DataFrame
    individuals: pd.Index
    counts: dict


def select_samples(
    count_samples: pd.Index,
    sample_df: pd.DataFrame,
    genotyped: pd.Index,
    *,
    counts_path: str,
    attributes_path: str,
    genotypes_path: str,
) -> SampleSelection:
    """Keep the samples with attributes whose individual is genotyped.

    Parameters
    ----------
    count_samples
        Sample IDs of the count matrix.
    sample_df
        Sample attributes with ``individual`` and ``tissue`` (:func:`read_sample_attributes`).
    genotyped
        Individual IDs of the genotype file.
    counts_path, attributes_path, genotypes_path
        The files, for messages.

    Returns
    -------
    SampleSelection
        The kept samples and individuals with their counts.

    Raises
    ------
    InputError
        No count sample has attributes; no individual is both a sample's and genotyped.
    """
    count_samples = pd.Index(count_samples.astype(str))
    with_attrs = count_samples[count_samples.isin(sample_df.index)]
    if len(with_attrs) == 0:
        raise InputError(
            f"no sample of the count matrix {counts_path} is in the sample attributes {attributes_path} "
            f"(count samples: {format_ids(count_samples, limit=3)}; attribute samples: "
            f"{format_ids(sample_df.index, limit=3)})"
        )
    attrs = sample_df.loc[with_attrs]
    genotyped = pd.Index(genotyped.astype(str))
    in_geno = attrs["individual"].isin(genotyped).to_numpy()
    if not in_geno.any():
        raise InputError(
            f"no individual in common between the samples of {counts_path} and the genotypes "
            f"{genotypes_path} (samples' individuals: {format_ids(pd.unique(attrs['individual']), limit=3)}; "
            f"genotyped: {format_ids(genotyped, limit=3)})"
        )
    if not in_geno.all():
        lacking = pd.unique(attrs.loc[~in_geno, "individual"])
        logger.warning(
            "left out %d samples of %d individuals without genotypes in %s: %s",
            int((~in_geno).sum()),
            len(lacking),
            genotypes_path,
            format_ids(lacking),
        )
    kept = attrs.loc[in_geno].sort_index()
    individuals = pd.Index(sorted(pd.unique(kept["individual"])), name="individual")
    extra = genotyped.difference(individuals)
    if len(extra):
        logger.info("%d genotyped individuals have no kept sample and are left out", len(extra))
    counts = {
        "samples_input": len(count_samples),
        "samples_with_attributes": len(with_attrs),
        "n_samples": len(kept),
        "individuals_genotyped_input": len(genotyped),
        "n_individuals": len(individuals),
        "n_tissues": int(kept["tissue"].nunique()),
    }
    return SampleSelection(kept, individuals, counts)
