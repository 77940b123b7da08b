"""LD pruning with Debian's plink 1.9 ``--indep-pairwise`` (the tool the paper used).

Why plink 1.9 (and not scikit-allel's ``locate_unlinked``): the paper's rule is "no two SNPs
within a 200-Kb window have a Pearson correlation >= 0.2", a window in base pairs, and it was
computed with plink 1.9. ``--indep-pairwise 200kb 1 0.2`` takes the window in kb; scikit-allel's
windows count variants, so the same rule would need a variable window; plink 1.9 is maintained,
packaged by Debian (``apt-get install plink1.9``) and fast.

What plink 1.9 computes: for each pair of variants less than the window apart, the squared
Pearson correlation ``r^2`` of the allele counts (0/1/2, unphased) over the individuals with both
calls present; when a pair exceeds the threshold it removes one of the two (the one with the
lower MAF) and slides on. What it guarantees, and what the tests check against a direct numpy
computation:

1. no two kept SNPs less than the window apart have ``r^2`` above the threshold;
2. every removed SNP is monomorphic (``r^2`` undefined: plink drops those) or has ``r^2`` above
   the threshold with some SNP of the input less than the window away (not necessarily a kept
   one: its partner may have been removed later).

How it is run: one chromosome at a time, on the SNPs left by the other filters and the kept
individuals only. The dosages (rounded to hard calls: a PLINK 1 ``.bed`` holds hard calls only)
are written as a temporary PLINK 1 set with neutral IDs (``v0, v1 ...``, ``i0, i1 ...``, so
that no ID can trip plink), positions sorted; plink writes ``.prune.in``, which is read back.
Temporary files live in a folder the caller owns and removes.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, MissingDependencyError
from ..io import write_plink

__all__ = ["find_plink", "ld_prune", "plink_version"]

logger = logging.getLogger(__name__)

#: Names plink 1.9 is installed under (Debian: ``plink1.9``).
PLINK_NAMES = ("plink1.9", "plink")


def find_plink() -> str:
    """Path of the plink 1.9 executable.

    Returns
    -------
    str
        ``plink1.9`` (Debian) or a ``plink`` that reports version 1.9.

    Raises
    ------
    MissingDependencyError
        Neither is on the ``PATH``.
    """
    for name in PLINK_NAMES:
        found = shutil.which(name)
        if found and (name == "plink1.9" or plink_version(found).startswith("PLINK v1.9")):
            return found
    raise MissingDependencyError(
        "LD pruning needs plink 1.9 on the PATH (Debian/Ubuntu: apt-get install plink1.9)"
    )


def plink_version(executable: str) -> str:
    """Return the first line of ``<executable> --version`` (e.g. ``PLINK v1.90b6.26 64-bit (2 Apr 2022)``)."""
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""


def ld_prune(
    dosage_df: pd.DataFrame, pos_s: pd.Series, *, r2: float, window_kb: int, workdir: str | Path
) -> pd.Index:
    """SNPs plink 1.9 keeps with ``--indep-pairwise <window_kb>kb 1 <r2>`` on one chromosome.

    Parameters
    ----------
    dosage_df
        SNPs x individuals dosages of one chromosome (NaN missing), the paper's ``y``.
    pos_s
        Position of each SNP (indexed by SNP ID).
    r2
        The ``r^2`` threshold (paper: 0.2).
    window_kb
        The window in kb (paper: 200).
    workdir
        An existing folder for the temporary PLINK files (removed by the caller).

    Returns
    -------
    pandas.Index
        The kept SNP IDs, in ``dosage_df`` order.

    Raises
    ------
    MissingDependencyError
        plink 1.9 is not installed.
    InputError
        plink fails (its log is quoted).
    """
    if len(dosage_df) < 2:
        return dosage_df.index
    executable = find_plink()
    order = np.lexsort((np.arange(len(dosage_df)), pos_s.reindex(dosage_df.index).to_numpy()))
    values = np.rint(dosage_df.to_numpy(dtype=np.float64)[order])
    neutral = pd.Index([f"v{i}" for i in range(len(order))])
    calls = pd.DataFrame(values, index=neutral, columns=[f"i{j}" for j in range(dosage_df.shape[1])])
    info = pd.DataFrame(
        {"chrom": "chr1", "pos": pos_s.reindex(dosage_df.index).to_numpy()[order], "ref": "A", "alt": "C"},
        index=neutral,
    )
    prefix = Path(workdir) / "chrom"
    write_plink(calls, prefix, snp_info_df=info)
    command = [
        executable,
        "--bfile",
        str(prefix),
        "--indep-pairwise",
        f"{window_kb}kb",
        "1",
        f"{r2:g}",
        "--out",
        str(prefix),
        "--threads",
        "1",
        "--allow-no-sex",
        "--silent",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    pruned_in = Path(f"{prefix}.prune.in")
    if done.returncode != 0 or not pruned_in.is_file():
        log = Path(f"{prefix}.log")
        text = log.read_text() if log.is_file() else done.stdout + done.stderr
        raise InputError(f"plink 1.9 --indep-pairwise failed (exit {done.returncode}): {text.strip()[-800:]}")
    kept_neutral = pd.Index(pruned_in.read_text().split())
    kept = np.zeros(len(dosage_df), dtype=bool)
    kept[order[neutral.get_indexer(kept_neutral)]] = True
    return dosage_df.index[kept]
