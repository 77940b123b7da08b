"""Held-out design: samples kept out of the TBLDA fit for the eQTL tests.

Two units of holding out:

``unit="samples"`` (default, the paper's design)
    The paper held out "two randomly selected samples from all individuals who contributed four
    or more samples". The choice for individual ``i`` is drawn from a generator seeded by
    ``(seed, sha256(i))`` over ``i``'s sample IDs sorted, so the design depends only on the seed
    and the IDs: it does not change with the order of the samples or with which other
    individuals are present. The held-out samples' individuals also have samples (and their
    genotypes) in the fit.

``unit="individuals"``
    ``round(fraction * n_individuals)`` whole individuals (at least one) are held out with all
    their samples; the fit sees neither their expression nor their genotypes, so the factor
    ranking cannot select SNPs for chance genotype-topic correlations of the tested
    individuals. Each individual gets a uniform key from the same per-individual generator
    (seed, sha256(i)) and the individuals with the smallest keys are held out: the design does
    not depend on the order of the samples, and an individual's key does not depend on the
    other individuals (only the cut-off does). ``min_samples`` and ``n_holdout`` are not used.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["UNITS", "fit_samples", "holdout_design", "holdout_samples"]

logger = logging.getLogger(__name__)


def _individual_seed(seed: int, individual: str) -> list[int]:
    digest = hashlib.sha256(str(individual).encode("utf-8")).digest()
    return [int(seed), int.from_bytes(digest[:8], "little")]


#: units of the held-out design
UNITS = ("samples", "individuals")


def holdout_design(
    sample_map_s: pd.Series,
    *,
    min_samples: int = 4,
    n_holdout: int = 2,
    seed: int = 0,
    unit: str = "samples",
    fraction: float = 0.25,
) -> pd.DataFrame:
    """Choose the held-out samples (paper: ``n_holdout`` of each individual with ``min_samples``).

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
    unit
        ``"samples"`` (the paper's design, above) or ``"individuals"``: hold out all samples of
        a ``fraction`` of the individuals (module docstring).
    fraction
        Fraction of the individuals held out when ``unit="individuals"`` (0 < fraction < 1).

    Returns
    -------
    pandas.DataFrame
        Columns ``sample``, ``individual``, ``held_out`` (bool), one row per sample, sorted by
        sample ID (schema ``holdout``).

    Raises
    ------
    InputError
        If ``n_holdout >= min_samples`` (an individual would keep too few samples for the fit),
        ``unit`` is unknown, ``fraction`` is not in (0, 1) or leaves no individual for the fit,
        or the sample map is empty.
    """
    if unit not in UNITS:
        raise InputError(f"holdout unit must be one of {', '.join(UNITS)}", ids=[unit])
    if unit == "individuals":
        return _individual_design(sample_map_s, fraction=fraction, seed=seed)
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


def _individual_design(sample_map_s: pd.Series, *, fraction: float, seed: int) -> pd.DataFrame:
    if not 0.0 < float(fraction) < 1.0:
        raise InputError(f"holdout fraction must be in (0, 1) (got {fraction})")
    if len(sample_map_s) == 0:
        raise InputError("the sample map is empty: no sample to hold out")
    sample_map_s = pd.Series(sample_map_s.to_numpy().astype(str), index=sample_map_s.index.astype(str))
    individuals = sorted(set(sample_map_s.to_numpy()))
    n_held = max(1, int(round(float(fraction) * len(individuals))))
    if n_held >= len(individuals):
        raise InputError(f"holdout fraction {fraction} of {len(individuals)} individuals leaves none for "
                         "the fit")
    keys = {i: np.random.default_rng(_individual_seed(seed, i)).random() for i in individuals}
    held_individuals = set(sorted(individuals, key=lambda i: (keys[i], i))[:n_held])
    order = sorted(sample_map_s.index)
    individual = sample_map_s.reindex(order).to_numpy()
    out = pd.DataFrame({
        "sample": order,
        "individual": individual,
        "held_out": [i in held_individuals for i in individual],
    })
    logger.info("held out all %d samples of %d of %d individuals (fraction %g)", int(out["held_out"].sum()),
                n_held, len(individuals), fraction)
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
