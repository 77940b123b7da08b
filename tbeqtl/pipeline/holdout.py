"""Held-out design: samples kept out of the TBLDA fit for the eQTL tests.

The paper held out "two randomly selected samples from all individuals who contributed four or
more samples". Here the choice for individual ``i`` is drawn from a generator seeded by
``(seed, sha256(i))`` over ``i``'s sample IDs sorted, so the design depends only on the seed and
the IDs: it does not change with the order of the samples or with which other individuals are
present.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["fit_samples", "holdout_design", "holdout_samples"]

logger = logging.getLogger(__name__)


def _individual_seed(seed: int, individual: str) -> list[int]:
    digest = hashlib.sha256(str(individual).encode("utf-8")).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]


def holdout_design(
    sample_map_s: pd.Series, *, min_samples: int = 4, n_holdout: int = 2, seed: int = 0
) -> pd.DataFrame:
    """Choose the held-out samples of every individual with at least ``min_samples`` samples.

    Parameters
    ----------
    sample_map_s
        Individual of each sample, indexed by sample ID (``EQTLData.sample_map_s``).
    min_samples
        Individuals with at least this many samples contribute held-out samples (paper 4).
    n_holdout
        How many samples each such individual contributes (paper 2).
    seed
        Seed of the random choice.

    Returns
    -------
    pandas.DataFrame
        Columns ``sample``, ``individual``, ``held_out`` (bool), one row per sample, sorted by
        sample ID (schema ``holdout``).

    Raises
    ------
    InputError
        If ``n_holdout >= min_samples`` (an individual would keep too few samples for the fit)
        or the sample map is empty.
    """
    if n_holdout < 1 or min_samples <= n_holdout:
        raise InputError(f"holdout needs 1 <= n_holdout < min_samples (got n_holdout={n_holdout}, "
                         f"min_samples={min_samples})")
    if len(sample_map_s) == 0:
        raise InputError("the sample map is empty: no sample to hold out")
    sample_map_s = pd.Series(sample_map_s.to_numpy().astype(str), index=sample_map_s.index.astype(str))
    held: set[str] = set()
    for individual, samples in sorted(sample_map_s.groupby(sample_map_s).groups.items()):
        if len(samples) < min_samples:
            continue
        ordered = sorted(samples)
        gen = np.random.default_rng(_individual_seed(seed, individual))
        held.update(ordered[j] for j in gen.choice(len(ordered), size=n_holdout, replace=False))
    order = sorted(sample_map_s.index)
    out = pd.DataFrame({
        "sample": order,
        "individual": sample_map_s.reindex(order).to_numpy(),
        "held_out": [s in held for s in order],
    })
    logger.info("held out %d samples from %d individuals with >= %d samples", len(held),
                len(held) // n_holdout, min_samples)
    return out


def holdout_samples(design_df: pd.DataFrame) -> pd.Index:
    """Return the held-out sample IDs of a design table.

    Parameters
    ----------
    design_df
        Output of :func:`holdout_design`.

    Returns
    -------
    pandas.Index
        Held-out sample IDs, sorted.
    """
    return pd.Index(sorted(design_df.loc[design_df["held_out"].astype(bool), "sample"].astype(str)))


def fit_samples(design_df: pd.DataFrame) -> pd.Index:
    """Return the sample IDs used to fit TBLDA (the ones not held out).

    Parameters
    ----------
    design_df
        Output of :func:`holdout_design`.

    Returns
    -------
    pandas.Index
        Fit sample IDs, sorted.
    """
    return pd.Index(sorted(design_df.loc[~design_df["held_out"].astype(bool), "sample"].astype(str)))
