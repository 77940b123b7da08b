"""Chromosome sizes (hg19 / hg38), ``.genome`` files and genome-build checks of SNP positions.

The sizes are the UCSC/GRC primary-assembly lengths of chr1-chr22, chrX and chrY for
GRCh37 (hg19) and GRCh38 (hg38). Positions beyond a chromosome's length mean the positions
are on another build (or on the wrong chromosome); :func:`check_build` names the build and
the offending SNPs instead of letting them fall silently outside every bin.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ..data import harmonize_chrom
from ..errors import InputError

__all__ = ["CHROM_SIZES", "check_build", "chrom_order", "read_genome_file", "resolve_chrom_sizes"]

logger = logging.getLogger(__name__)

_HG19 = (
    249250621,
    243199373,
    198022430,
    191154276,
    180915260,
    171115067,
    159138663,
    146364022,
    141213431,
    135534747,
    135006516,
    133851895,
    115169878,
    107349540,
    102531392,
    90354753,
    81195210,
    78077248,
    59128983,
    63025520,
    48129895,
    51304566,
    155270560,
    59373566,
)
_HG38 = (
    248956422,
    242193529,
    198295559,
    190214555,
    181538259,
    170805979,
    159345973,
    145138636,
    138394717,
    133797422,
    135086622,
    133275309,
    114364328,
    107043718,
    101991189,
    90338345,
    83257441,
    80373285,
    58617616,
    64444167,
    46709983,
    50818468,
    156040895,
    57227415,
)
_NAMES = tuple(f"chr{i}" for i in range(1, 23)) + ("chrX", "chrY")

#: Chromosome lengths (bp) per build; keys ``"hg19"`` (= GRCh37, b37) and ``"hg38"`` (= GRCh38, b38).
CHROM_SIZES: dict[str, dict[str, int]] = {
    "hg19": dict(zip(_NAMES, _HG19, strict=True)),
    "hg38": dict(zip(_NAMES, _HG38, strict=True)),
}
_ALIASES = {"hg19": "hg19", "grch37": "hg19", "b37": "hg19", "hg38": "hg38", "grch38": "hg38", "b38": "hg38"}


def chrom_order(chrom: str) -> int:
    """Sort key of a harmonised chromosome name: chr1..chr22 = 1..22, chrX 23, chrY 24, chrM 25, others after.

    Parameters
    ----------
    chrom
        Chromosome name in ``chr`` style.

    Returns
    -------
    int
        The rank.
    """
    bare = chrom[3:] if chrom.lower().startswith("chr") else chrom
    if bare.isdigit():
        return int(bare)
    return {"X": 23, "Y": 24, "M": 25, "MT": 25}.get(bare.upper(), 100)


def read_genome_file(path: str | Path) -> dict[str, int]:
    """Read a bedtools ``.genome`` / UCSC ``chrom.sizes`` file (chromosome, length; tab separated).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    dict
        Harmonised chromosome name (``chr1`` style) -> length.

    Raises
    ------
    InputError
        If a line does not hold a name and a positive integer length.
    """
    sizes: dict[str, int] = {}
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit() or int(fields[1]) <= 0:
                raise InputError(
                    "expected 'chromosome<TAB>length' lines", path=str(path), ids=[f"line {lineno}"]
                )
            sizes[str(harmonize_chrom([fields[0]])[0])] = int(fields[1])
    if not sizes:
        raise InputError("genome file is empty", path=str(path))
    return sizes


def resolve_chrom_sizes(genome: str | Path | Mapping[str, int]) -> tuple[str, dict[str, int]]:
    """Turn a build name, a ``.genome`` file or a mapping into chromosome sizes.

    Parameters
    ----------
    genome
        ``"hg19"``/``"GRCh37"``/``"b37"``, ``"hg38"``/``"GRCh38"``/``"b38"``, a path to a ``.genome``
        file, or a mapping chromosome -> length.

    Returns
    -------
    name : str
        The build name (``"hg19"``, ``"hg38"``, the file name or ``"custom"``).
    sizes : dict
        Harmonised chromosome name -> length.
    """
    if isinstance(genome, Mapping):
        names = harmonize_chrom(genome.keys())
        return "custom", {str(c): int(v) for c, v in zip(names, genome.values(), strict=True)}
    key = str(genome).lower()
    if key in _ALIASES:
        build = _ALIASES[key]
        return build, dict(CHROM_SIZES[build])
    path = Path(genome)
    if not path.is_file():
        raise InputError(f"unknown genome {genome!r}: give hg19, hg38 or an existing .genome file")
    return path.name, read_genome_file(path)


def check_build(positions_df: pd.DataFrame, sizes: Mapping[str, int], *, build: str) -> None:
    """Raise if any SNP lies outside its chromosome in ``build`` (a mismatched genome build).

    Parameters
    ----------
    positions_df
        Indexed by SNP ID with columns ``chrom`` (harmonised, ``chr`` style) and ``pos`` (1-based).
    sizes
        Chromosome lengths of the build.
    build
        The build's name, used in the message.

    Raises
    ------
    InputError
        Naming the build, the SNPs beyond their chromosome's end (and the other built-in build
        that would fit them, if any), or the SNPs on chromosomes the build does not have.
    """
    unknown_chrom = ~positions_df["chrom"].isin(list(sizes))
    if unknown_chrom.any():
        bad = positions_df.index[unknown_chrom]
        chroms = sorted(set(positions_df.loc[unknown_chrom, "chrom"]), key=chrom_order)
        raise InputError(
            f"SNPs on chromosomes absent from genome {build} ({', '.join(map(str, chroms[:10]))})", ids=bad
        )
    length = positions_df["chrom"].map(sizes).to_numpy()
    pos = positions_df["pos"].to_numpy()
    outside = (pos < 1) | (pos > length)
    if outside.any():
        bad = positions_df.index[outside]
        details = [
            f"{s} ({c}:{p})"
            for s, c, p in zip(
                bad, positions_df.loc[outside, "chrom"], positions_df.loc[outside, "pos"], strict=True
            )
        ]
        hint = ""
        for other, other_sizes in CHROM_SIZES.items():
            if other == build:
                continue
            fits = positions_df["chrom"].map(other_sizes).to_numpy() >= pos
            if fits.all():
                hint = f"; all positions fit {other}: are the SNP positions on {other}?"
        raise InputError(
            f"{int(outside.sum())} SNP positions fall outside the chromosome lengths of genome build "
            f"{build} (mismatched genome build?{hint})",
            ids=details,
        )
