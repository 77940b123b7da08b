"""Thin access to ``bedtools`` through ``pybedtools``: the binary check, SNP BED records and clean-up.

``pybedtools`` calls the ``bedtools`` program; when it is missing, :func:`require_bedtools`
raises :class:`~tbeqtl.errors.MissingDependencyError` with install instructions instead of a
subprocess traceback. Temporary files go to a private folder removed afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

import pandas as pd

from ..errors import MissingDependencyError

__all__ = ["INSTALL_HINT", "bedtools_session", "require_bedtools", "snps_to_bed_df"]

INSTALL_HINT = (
    "the `bedtools` program (used through pybedtools for interval intersections and genomic windows) "
    "was not found on PATH; install it with `apt-get install bedtools` (Debian/Ubuntu), "
    "`conda install -c bioconda bedtools`, or `brew install bedtools`"
)


def require_bedtools() -> str:
    """Return the path of the ``bedtools`` binary.

    Returns
    -------
    str
        Absolute path of ``bedtools``.

    Raises
    ------
    MissingDependencyError
        If ``bedtools`` is not on ``PATH``; the message says how to install it.
    """
    path = shutil.which("bedtools")
    if path is None:
        raise MissingDependencyError(INSTALL_HINT)
    return path


@contextlib.contextmanager
def bedtools_session() -> Iterator[object]:
    """Check for ``bedtools``, point pybedtools' temporary files at a private folder, yield the module.

    Yields
    ------
    module
        ``pybedtools``.
    """
    require_bedtools()
    import pybedtools

    previous = pybedtools.get_tempdir()
    with tempfile.TemporaryDirectory(prefix="tbeqtl_bedtools_") as tmp:
        pybedtools.set_tempdir(tmp)
        try:
            yield pybedtools
        finally:
            pybedtools.set_tempdir(previous)


def snps_to_bed_df(positions_df: pd.DataFrame) -> pd.DataFrame:
    """SNP positions (1-based ``pos``) as BED records (0-based half-open), sorted.

    Parameters
    ----------
    positions_df
        Indexed by SNP ID with harmonised ``chrom`` and integer ``pos``.

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom``, ``start`` (= pos - 1), ``end`` (= pos), ``name`` (SNP ID).
    """
    bed = pd.DataFrame(
        {
            "chrom": positions_df["chrom"].astype(str).to_numpy(),
            "start": positions_df["pos"].astype("int64").to_numpy() - 1,
            "end": positions_df["pos"].astype("int64").to_numpy(),
            "name": positions_df.index.astype(str),
        }
    )
    return bed.sort_values(["chrom", "start", "name"], ignore_index=True)
