"""Genomic-bin localisation of SNP sets (the paper's Table S3 / Fig 2 right).

The genome is cut into bins of 250,000 bp sliding by 100,000 bp (``bedtools makewindows``
through ``pybedtools``); for each bin holding at least one background SNP, a one-sided Fisher
exact test compares the set's SNP count in the bin with the background's; BH FDR is taken
across the tested bins of each set. The result doubles as the Manhattan-plot data product
(chromosome order, cumulative position, -log10 p).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..schema import validate_table
from .bedtools import bedtools_session, snps_to_bed_df
from .feature_sets import as_id_index, check_subset, named_sets
from .fisher import bh_fdr, fisher_enrichment
from .genome import check_build, chrom_order, resolve_chrom_sizes
from .snp_annotation import snp_positions_frame

__all__ = ["genomic_bin_enrichment", "make_bins"]

logger = logging.getLogger(__name__)

BIN_SIZE = 250_000
BIN_STEP = 100_000


def make_bins(
    genome: str | Path | Mapping[str, int] = "hg38",
    *,
    size: int = BIN_SIZE,
    step: int = BIN_STEP,
    chroms: Collection[str] | None = None,
) -> pd.DataFrame:
    """Sliding genomic bins made with ``bedtools makewindows -w size -s step``.

    Parameters
    ----------
    genome
        ``"hg19"``, ``"hg38"`` (autosomes, X, Y built in), a ``.genome`` file or a mapping of sizes.
    size
        Bin width in bp (paper: 250,000).
    step
        Offset between consecutive bin starts in bp (paper: 100,000).
    chroms
        Restrict to these chromosomes (harmonised names).

    Returns
    -------
    pandas.DataFrame
        Columns ``bin`` (``chr1:0-250000``, 0-based half-open), ``chrom``, ``start``, ``end``,
        ``chrom_order``, ``cumulative_start`` (start plus the lengths of the preceding chromosomes),
        in genome order. The last bins of a chromosome are cut at its end.

    Raises
    ------
    MissingDependencyError
        If ``bedtools`` is not installed.
    InputError
        Non-positive size or step.
    """
    if size <= 0 or step <= 0:
        raise InputError(f"bin size and step must be positive, got {size} and {step}")
    _, sizes = resolve_chrom_sizes(genome)
    if chroms is not None:
        sizes = {c: n for c, n in sizes.items() if c in set(chroms)}
    if not sizes:
        raise InputError("no chromosome left to cut into bins")
    names = sorted(sizes, key=lambda c: (chrom_order(c), c))
    return _windows(names, sizes, size, step)


def _windows(names: list[str], sizes: Mapping[str, int], size: int, step: int) -> pd.DataFrame:
    with bedtools_session() as pybedtools:
        genome_bed = pybedtools.BedTool.from_dataframe(
            pd.DataFrame({"chrom": names, "start": 0, "end": [sizes[c] for c in names]})
        )
        windows = pybedtools.BedTool().window_maker(b=genome_bed, w=size, s=step)
        df = pd.read_csv(
            windows.fn,
            sep="\t",
            header=None,
            names=["chrom", "start", "end"],
            dtype={"chrom": str, "start": np.int64, "end": np.int64},
        )
    offsets, total = {}, 0
    for c in names:
        offsets[c] = total
        total += sizes[c]
    df["chrom_order"] = df["chrom"].map(lambda c: chrom_order(c)).astype(np.int64)
    df["cumulative_start"] = (df["start"] + df["chrom"].map(offsets)).astype(np.int64)
    df.insert(0, "bin", df["chrom"] + ":" + df["start"].astype(str) + "-" + df["end"].astype(str))
    return df.sort_values(["cumulative_start", "end"], ignore_index=True)


def genomic_bin_enrichment(
    snps: Collection[str] | Mapping[str, Collection[str]],
    background_positions_df: pd.DataFrame,
    *,
    genome: str | Path | Mapping[str, int] = "hg38",
    size: int = BIN_SIZE,
    step: int = BIN_STEP,
    min_background: int = 1,
    alternative: str = "greater",
) -> pd.DataFrame:
    """Fisher test per genomic bin of set versus background SNP counts, BH across bins.

    Parameters
    ----------
    snps
        A SNP set (IDs) or a mapping name -> SNP set (e.g. robust tissue-associated SNP sets).
    background_positions_df
        Positions of every background SNP: indexed by SNP ID with ``chrom`` and 1-based ``pos``
        (column spellings of :func:`~tbeqtl.enrich.snp_annotation.snp_positions_frame`). The
        background must contain every set.
    genome
        Build of the positions: ``"hg19"``, ``"hg38"``, a ``.genome`` file or sizes. Positions
        beyond a chromosome's end raise an error naming the build and SNPs.
    size, step
        Bin width and sliding step in bp (paper: 250,000 and 100,000).
    min_background
        Test only bins holding at least this many background SNPs.
    alternative
        ``"greater"`` (localisation, default), ``"less"`` or ``"two-sided"``.

    Returns
    -------
    pandas.DataFrame
        Table ``genomic_bin_enrichment`` in genome order (the Manhattan data product): ``set``,
        ``bin``, ``chrom``, ``start``, ``end``, ``chrom_order``, ``cumulative_position`` (bin centre
        plus preceding chromosome lengths), ``overlap`` (set SNPs in the bin), ``bin_size``
        (background SNPs in the bin), ``n_set``, ``n_background``, ``odds_ratio``, ``p_value``,
        ``fdr`` (BH across the set's tested bins), ``neg_log10_p``.

    Raises
    ------
    InputError
        Empty sets, sets outside the background, positions outside the build's chromosomes.
    MissingDependencyError
        If ``bedtools`` is not installed.
    """
    pos_df = snp_positions_frame(background_positions_df)
    bg = as_id_index(pos_df.index, what="background SNP set")
    sets = {k: as_id_index(v, what=f"SNP set {k!r}") for k, v in named_sets(snps).items()}
    for name, ids in sets.items():
        check_subset(ids, bg, what=f"SNP set {name!r}")
    build, sizes = resolve_chrom_sizes(genome)
    check_build(pos_df, sizes, build=build)
    names = sorted(set(pos_df["chrom"]), key=lambda c: (chrom_order(c), c))
    bins_df = _windows(names, sizes, size, step)
    with bedtools_session() as pybedtools:
        snp_bed = pybedtools.BedTool.from_dataframe(snps_to_bed_df(pos_df))
        windows = pybedtools.BedTool.from_dataframe(bins_df[["chrom", "start", "end", "bin"]])
        hits = snp_bed.intersect(windows, wa=True, wb=True)
        if Path(hits.fn).stat().st_size:
            pairs = pd.read_csv(hits.fn, sep="\t", header=None, dtype=str).iloc[:, [3, 7]]
            pairs.columns = ["snp", "bin"]
        else:
            pairs = pd.DataFrame({"snp": pd.Series(dtype=str), "bin": pd.Series(dtype=str)})
    bin_size = pairs.groupby("bin").size()
    tested = bins_df.set_index("bin").loc[bin_size[bin_size >= min_background].index]
    tested = tested.sort_values(["cumulative_start", "end"])
    bin_size = bin_size.reindex(tested.index)
    pairs = pairs[pairs["bin"].isin(tested.index)]
    logger.info(
        "%d bins of %d bp (step %d) on %d chromosomes; %d hold >= %d background SNPs",
        len(bins_df),
        size,
        step,
        len(names),
        len(tested),
        min_background,
    )
    offsets = (tested["cumulative_start"] - tested["start"]).to_numpy()
    frames = []
    for name, ids in sets.items():
        overlap = pairs[pairs["snp"].isin(ids)].groupby("bin").size().reindex(tested.index, fill_value=0)
        orr, p = fisher_enrichment(
            overlap.to_numpy(),
            bin_size.to_numpy(),
            len(ids),
            background_size=len(bg),
            alternative=alternative,
        )
        df = pd.DataFrame(
            {
                "set": name,
                "bin": tested.index.astype(str),
                "chrom": tested["chrom"].to_numpy(),
                "start": tested["start"].to_numpy(np.int64),
                "end": tested["end"].to_numpy(np.int64),
                "chrom_order": tested["chrom_order"].to_numpy(np.int64),
                "cumulative_position": offsets
                + (tested["start"].to_numpy() + tested["end"].to_numpy()) / 2.0,
                "overlap": overlap.to_numpy(np.int64),
                "bin_size": bin_size.to_numpy(np.int64),
                "n_set": int(len(ids)),
                "n_background": int(len(bg)),
                "odds_ratio": orr,
                "p_value": p,
            }
        )
        df["fdr"] = bh_fdr(p)
        df["neg_log10_p"] = -np.log10(np.maximum(p, np.finfo(float).tiny))
        logger.info(
            "SNP set %r: %d SNPs, %d bins at BH FDR < 0.1", name, len(ids), int((df["fdr"] < 0.1).sum())
        )
        frames.append(df)
    return validate_table(pd.concat(frames, ignore_index=True), "genomic_bin_enrichment")
