"""Validation shared by every enrichment: non-empty sets, duplicates, sets inside the background."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

import pandas as pd

from ..errors import InputError

__all__ = ["as_id_index", "check_subset", "named_sets"]

logger = logging.getLogger(__name__)


def as_id_index(ids: Collection[object], *, what: str, normalize: Callable[[object], str] = str) -> pd.Index:
    """Turn a collection of IDs into a sorted, duplicate-free index of strings.

    Parameters
    ----------
    ids
        The IDs (list, set, Series, Index...).
    what
        Name used in messages (e.g. ``"gene set 'blood'"``).
    normalize
        Applied to every ID (e.g. strip Ensembl versions).

    Returns
    -------
    pandas.Index
        Sorted unique IDs (so results do not depend on input order).

    Raises
    ------
    InputError
        If ``ids`` is a string (a common mistake) or empty.
    """
    if isinstance(ids, str | bytes):
        raise InputError(f"{what} must be a collection of IDs, not a single string {ids!r}")
    values = [normalize(i) for i in ids]
    if not values:
        raise InputError(f"{what} is empty")
    index = pd.Index(sorted(set(values)), dtype=object)
    if len(index) < len(values):
        logger.info("%s: %d duplicate IDs merged (%d unique)", what, len(values) - len(index), len(index))
    return index


def check_subset(set_ids: pd.Index, background_ids: pd.Index, *, what: str) -> None:
    """Raise unless every ID of the set is in the background.

    Parameters
    ----------
    set_ids, background_ids
        The IDs.
    what
        Name of the set, used in the message.

    Raises
    ------
    InputError
        Naming the IDs of the set that are not in the background.
    """
    outside = set_ids.difference(background_ids)
    if len(outside):
        raise InputError(
            f"{what}: {len(outside)} of {len(set_ids)} IDs are not in the background (the analysis "
            "feature set must contain the tested set)",
            ids=outside,
        )


def named_sets(sets: Collection[object] | Mapping[str, Collection[object]], *, default: str = "set") -> dict:
    """Accept one set or a mapping name -> set; return a mapping.

    Parameters
    ----------
    sets
        A collection of IDs, or a mapping of set names (e.g. tissues) to collections.
    default
        The name of a single unnamed set.

    Returns
    -------
    dict
        Set name -> collection, sorted by name.
    """
    if isinstance(sets, Mapping):
        if not sets:
            raise InputError("no sets given")
        return {str(k): sets[k] for k in sorted(sets, key=str)}
    return {default: sets}
