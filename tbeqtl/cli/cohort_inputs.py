"""Inputs shared by ``tbeqtl cis`` and ``tbeqtl trans``: options, readers and ``run.json``.

Not a subcommand: the helpers that both cohort commands use to read a genotype source (any
format :func:`tbeqtl.io.genotypes.open_genotypes` knows), phenotypes with positions, covariates,
an interaction table and a sample map, and to record what was run.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_json
from ..errors import InputError

logger = logging.getLogger(__name__)


def add_cohort_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the input, filter and output options both cohort commands share.

    Parameters
    ----------
    parser
        The subcommand parser.
    """
    parser.add_argument(
        "--genotypes",
        required=True,
        help="PLINK 2 (.pgen/.pvar/.psam) or PLINK 1 (.bed/.bim/.fam) prefix or file, VCF/BCF, dosage TSV",
    )
    parser.add_argument(
        "--dosage-field",
        default="GT",
        choices=["GT", "DS"],
        help="VCF/BCF/PLINK 2: hard calls (GT, default) or dosages (DS)",
    )
    parser.add_argument(
        "--phenotypes", required=True, help="expression BED (.bed[.gz]); or GCT/TSV with --phenotype-pos"
    )
    parser.add_argument(
        "--phenotype-pos", default=None, help="phenotype positions for GCT/TSV phenotypes (GTF, BED, TSV)"
    )
    parser.add_argument("--covariates", default=None, help="covariates, either orientation (matched by ID)")
    parser.add_argument(
        "--sample-map",
        default=None,
        help="TSV with columns sample, individual: phenotype sample -> genotype ID",
    )
    parser.add_argument(
        "--gtex-ids",
        action="store_true",
        help="without --sample-map, genotype IDs are the GTEx donors of the sample IDs "
        "(GTEX-1117F-0226-... -> GTEX-1117F)",
    )
    parser.add_argument(
        "--mac-threshold", type=int, default=0, help="keep variants with minor allele count >= this"
    )
    parser.add_argument("--prefix", default="tbeqtl", help="output file prefix (default: tbeqtl)")
    parser.add_argument("--out", required=True, help="output folder")


def read_phenotypes(args: argparse.Namespace, checksums: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``--phenotypes`` (and ``--phenotype-pos``) as phenotypes x samples plus positions.

    Parameters
    ----------
    args
        Parsed options.
    checksums
        Filled with path -> sha256 of each file read.

    Returns
    -------
    (phenotype_df, phenotype_pos_df)
        Values and positions (``chrom``, ``start``, ``end``; 1-based).
    """
    from .. import io as tio
    from ..io._common import sha256_file

    path = Path(args.phenotypes)
    if not path.exists():
        raise InputError("phenotype file not found", path=str(path))
    checksums[str(path)] = sha256_file(path)
    name = path.name.lower()
    if name.endswith((".bed", ".bed.gz")):
        bed = tio.read_expression_bed(path)
        phenotype_df, pos_df = bed.expression_df, bed.gene_pos_df
    else:
        if args.phenotype_pos is None:
            raise InputError(
                "GCT/TSV phenotypes need --phenotype-pos (or give an expression BED)", path=str(path)
            )
        if name.endswith((".gct", ".gct.gz")):
            phenotype_df = tio.read_gct(path, counts=False)
        else:
            phenotype_df = tio.read_matrixeqtl_matrix(path, what="phenotype matrix")
        checksums[str(args.phenotype_pos)] = sha256_file(Path(args.phenotype_pos))
        pos_df = tio.read_gene_annotation(args.phenotype_pos)
        missing = phenotype_df.index.difference(pos_df.index, sort=False)
        if len(missing):
            raise InputError("phenotypes without a position", path=str(args.phenotype_pos), ids=missing)
        pos_df = pos_df.loc[phenotype_df.index, ["chrom", "start", "end"]]
    phenotype_df.index.name = "phenotype_id"
    return phenotype_df, pos_df


def read_side_tables(
    args: argparse.Namespace, samples: list[str], checksums: dict
) -> tuple[pd.DataFrame | None, pd.Series | None]:
    """Read ``--covariates`` and ``--sample-map`` (either may be absent).

    Parameters
    ----------
    args
        Parsed options.
    samples
        Phenotype sample IDs (decide the covariate table's orientation).
    checksums
        Filled with path -> sha256.

    Returns
    -------
    (covariates_df, sample_map)
        Covariates x samples (or None) and the sample -> individual map (or None).
    """
    from .. import io as tio
    from ..io._common import sha256_file

    covariates_df = sample_map = None
    if args.covariates:
        checksums[str(args.covariates)] = sha256_file(Path(args.covariates))
        covariates_df = tio.read_covariates(args.covariates, samples=samples, drop_constant=False)
    if args.sample_map:
        checksums[str(args.sample_map)] = sha256_file(Path(args.sample_map))
        sample_map = tio.read_sample_map(args.sample_map)
    return covariates_df, sample_map


def read_interaction(path: str, checksums: dict) -> pd.DataFrame:
    """Read an interaction table: sample IDs in the first column, one column per term.

    Parameters
    ----------
    path
        TSV with a header (e.g. ``sample_id  interaction_score``).
    checksums
        Filled with path -> sha256.

    Returns
    -------
    pandas.DataFrame
        Samples x terms (orientation is checked again by ID when aligned).
    """
    from ..io._common import read_delimited, sha256_file

    if not Path(path).is_file():
        raise InputError("interaction table not found", path=str(path))
    checksums[str(path)] = sha256_file(Path(path))
    df = read_delimited(path, what="interaction table", sep="\t", index_col=0)
    if df.shape[1] == 0:
        raise InputError("interaction table needs sample IDs and at least one term column", path=str(path))
    df.index = df.index.astype(str)
    return df


def open_source(args: argparse.Namespace, checksums: dict):
    """Open ``--genotypes`` (format sniffed by :mod:`tbeqtl.io.genotypes`) and checksum its files.

    Parameters
    ----------
    args
        Parsed options.
    checksums
        Filled with path -> sha256.

    Returns
    -------
    GenotypeSource
        The opened source.
    """
    from ..io._common import sha256_file
    from ..io.genotypes import genotype_input_files, open_genotypes

    for f in genotype_input_files(args.genotypes):
        checksums[str(f)] = sha256_file(f)
    return open_genotypes(args.genotypes, dosage_field=args.dosage_field)


@contextlib.contextmanager
def open_cohort(args: argparse.Namespace, checksums: dict) -> Iterator[tuple]:
    """Open ``--genotypes`` while the phenotypes, covariates and sample map are read on a second thread.

    The two reads are independent (the genotype index and the phenotype table; both parse with
    pyarrow outside the GIL), so a whole-process run starts mapping sooner. An error from either
    is raised; the source is closed on leaving the block.

    Parameters
    ----------
    args
        Parsed options.
    checksums
        Filled with path -> sha256 of every file read.

    Yields
    ------
    tuple
        ``(source, phenotype_df, phenotype_pos_df, covariates_df, sample_map)``.
    """
    side: dict[str, str] = {}  # the second thread's checksums, added after the genotypes' (fixed order)

    def tables() -> tuple:
        phenotype_df, pos_df = read_phenotypes(args, side)
        covariates_df, sample_map = read_side_tables(args, [str(s) for s in phenotype_df.columns], side)
        return phenotype_df, pos_df, covariates_df, sample_map

    with contextlib.ExitStack() as stack:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cohort-tables") as pool:
            pending = pool.submit(tables)
            source = stack.enter_context(open_source(args, checksums))
            loaded = pending.result()
        checksums.update(side)
        yield (source, *loaded)


def record_run(out_dir: Path, key: str, entry: dict) -> Path:
    """Add one command's record to ``OUT/run.json`` (parameters, counts, versions, checksums).

    The nominal, permutation, independent and trans steps of one study usually share an output
    folder, so ``run.json`` keeps one entry per step under ``runs`` (a rerun replaces its entry).

    Parameters
    ----------
    out_dir
        Output folder.
    key
        Step name, e.g. ``"cis_nominal"``.
    entry
        What to record (``params``, ``counts``, ``input_sha256``, ``files``).

    Returns
    -------
    pathlib.Path
        The ``run.json`` path.
    """
    import json

    import scipy

    from .. import __version__

    path = Path(out_dir) / "run.json"
    runs: dict = {}
    if path.exists():
        try:
            runs = dict(json.loads(path.read_text()).get("runs", {}))
        except (json.JSONDecodeError, AttributeError):
            logger.warning("%s is not a tbeqtl run record; it is replaced", path)
    entry = dict(entry)
    entry["versions"] = {
        "tbeqtl": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
    }
    runs[key] = entry
    write_json({"tool": "tbeqtl", "runs": runs}, path)
    return path
