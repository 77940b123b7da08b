"""``tbeqtl map``: MatrixEQTL-equivalent eQTL mapping from files.

Inputs are MatrixEQTL text files (``--snps SNP.txt --expression GE.txt --covariates
Covariates.txt --snp-pos snpsloc.txt --gene-pos geneloc.txt``) or the foundation's formats:
``--snps`` a PLINK 2 or PLINK 1 file set (path of one of its files, or the prefix), a VCF/BCF or a
dosage TSV (told apart by :func:`tbeqtl.io.genotypes.sniff_genotype_format`; any other file is a
MatrixEQTL text matrix);
``--expression`` a GCT (``.gct[.gz]``) or a tensorQTL expression BED (``.bed[.gz]``, which also
gives gene positions); ``--covariates`` any covariate table (either orientation);
``--gene-pos`` a geneloc file or any gene annotation (GTF, BED, TSV). With PLINK or VCF genotypes
the SNP positions come from the ``.bim``/``.pvar``/VCF when ``--snp-pos`` is not given. Every
expression sample needs genotypes (missing ones are an error naming them); a genotype file holding
more individuals than the expression is subset to the expression samples by ID (count logged).
Covariates must match the expression samples.

Outputs in ``--out DIR``: ``cis.tsv`` and ``trans.tsv`` (``all.tsv`` when there is no cis split)
or ``.parquet`` with ``--format parquet``, ``run.json`` (parameters, test counts per stratum,
versions, input checksums), and ``hist.tsv`` with ``--pvalue-hist``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from ..errors import InputError, format_ids
from ..io._common import sha256_file

COMMAND = "map"
HELP = "MatrixEQTL-equivalent cis/trans eQTL mapping (linear, anova, linear_cross) with FDR"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tbeqtl map`` options.

    Parameters
    ----------
    parser
        The subcommand parser.
    """
    parser.add_argument(
        "--snps",
        required=True,
        help="genotypes: MatrixEQTL SNP.txt, PLINK 2 .pgen/.pvar/.psam or PLINK 1 .bed/.bim/.fam "
        "(path or prefix), VCF/BCF (GT), dosage TSV (*.dosage.tsv[.gz])",
    )
    parser.add_argument(
        "--expression",
        required=True,
        help="expression: MatrixEQTL GE.txt, GCT (.gct[.gz]) or expression BED (.bed[.gz])",
    )
    parser.add_argument(
        "--covariates", default=None, help="covariates (MatrixEQTL Covariates.txt or any table)"
    )
    parser.add_argument("--snp-pos", default=None, help="SNP positions (MatrixEQTL snpsloc, .bim, table)")
    parser.add_argument(
        "--gene-pos", default=None, help="gene positions (MatrixEQTL geneloc, GTF, BED, table)"
    )
    parser.add_argument(
        "--model",
        default="linear",
        choices=["linear", "anova", "linear_cross"],
        help="MatrixEQTL model (default: linear)",
    )
    parser.add_argument("--cis-dist", type=float, default=1e6, help="cis window in bp (default: 1e6)")
    parser.add_argument(
        "--pv-cis", type=float, default=1e-2, help="output p-value threshold for cis pairs (default: 1e-2)"
    )
    parser.add_argument(
        "--pv-trans",
        type=float,
        default=1e-5,
        help="output p-value threshold for trans pairs (default: 1e-5)",
    )
    parser.add_argument(
        "--gene-types",
        default=None,
        help="table of gene ID and gene_type: adds gene_type and per-type FDR (fdr_by_type)",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", default="tsv", choices=["tsv", "parquet"], help="pair table format")
    parser.add_argument(
        "--precision",
        default="float64",
        choices=["float64", "float32"],
        help="float64 (default) or float32 screen with exact float64 output rows",
    )
    parser.add_argument(
        "--pvalue-hist",
        default=None,
        help="also write hist.tsv: a number of bins or 'qqplot' (MatrixEQTL pvalue.hist)",
    )


def _read_genotypes(path: str, checksums: dict) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    from .. import io as tio
    from ..io.genotypes import genotype_input_files, read_genotype_table, sniff_genotype_format

    fmt = sniff_genotype_format(path, text_matrix="matrixeqtl")
    for f in genotype_input_files(path, text_matrix="matrixeqtl"):
        checksums[str(f)] = sha256_file(f)
    if fmt == "matrixeqtl":
        return tio.read_matrixeqtl_matrix(path, what="genotype matrix"), None
    return read_genotype_table(path, fmt=fmt)


def _genotypes_for(genotype_df: pd.DataFrame, samples: list[str]) -> pd.DataFrame:
    """Subset a genotype table holding more individuals than the expression to its samples (by ID)."""
    columns = pd.Index(genotype_df.columns.astype(str))
    wanted = pd.Index(samples)
    missing = wanted.difference(columns, sort=False)
    if len(missing):
        raise InputError("expression samples without genotypes", ids=missing)
    extra = columns.difference(wanted, sort=False)
    if len(extra) == 0:
        return genotype_df
    logger.info(
        "genotypes: kept the %d expression samples of %d individuals (%d not in the expression: %s)",
        len(wanted),
        len(columns),
        len(extra),
        format_ids(extra),
    )
    return genotype_df.loc[:, columns.isin(wanted)]


def _read_expression(path: str, checksums: dict) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    from .. import io as tio

    p = Path(path)
    if not p.exists():
        raise InputError("expression file not found", path=path)
    checksums[str(p)] = sha256_file(p)
    name = p.name.lower()
    if name.endswith((".gct", ".gct.gz")):
        return tio.read_gct(p, counts=False), None
    if name.endswith((".bed", ".bed.gz")):
        bed = tio.read_expression_bed(p)
        return bed.expression_df, bed.gene_pos_df
    return tio.read_matrixeqtl_matrix(p, what="expression matrix"), None


def _read_gene_types(path: str, checksums: dict) -> pd.Series:
    p = Path(path)
    if not p.exists():
        raise InputError("gene types file not found", path=path)
    checksums[str(p)] = sha256_file(p)
    df = pd.read_csv(p, sep=None, engine="python", dtype=str)
    if df.shape[1] < 2:
        raise InputError("gene types file needs a gene ID column and a gene_type column", path=path)
    type_col = "gene_type" if "gene_type" in df.columns else df.columns[1]
    return pd.Series(df[type_col].to_numpy(), index=df.iloc[:, 0].astype(str), name="gene_type")


def _parse_hist(value: str | None):
    if value is None:
        return None
    if value == "qqplot":
        return "qqplot"
    try:
        return int(value)
    except ValueError:
        raise InputError(f"--pvalue-hist must be a number of bins or 'qqplot', got {value!r}") from None


def run(args: argparse.Namespace) -> int:
    """Run ``tbeqtl map``.

    Parameters
    ----------
    args
        Parsed options.

    Returns
    -------
    int
        Exit status.
    """
    from .. import io as tio
    from ..association import map_eqtls

    checksums: dict[str, str] = {}
    genotype_df, snp_info = _read_genotypes(args.snps, checksums)
    expression_df, bed_pos = _read_expression(args.expression, checksums)
    samples = [str(s) for s in expression_df.columns]
    genotype_df = _genotypes_for(genotype_df, samples)
    covariates_df = None
    if args.covariates:
        checksums[str(args.covariates)] = sha256_file(Path(args.covariates))
        covariates_df = tio.read_covariates(args.covariates, samples=samples, drop_constant=False)
    snp_pos_df = None
    if args.snp_pos:
        checksums[str(args.snp_pos)] = sha256_file(Path(args.snp_pos))
        snp_pos_df = tio.read_snp_positions(args.snp_pos)
    gene_pos_df = bed_pos
    if args.gene_pos:
        checksums[str(args.gene_pos)] = sha256_file(Path(args.gene_pos))
        gene_pos_df = tio.read_gene_annotation(args.gene_pos)
    if snp_pos_df is None and gene_pos_df is not None and snp_info is not None:
        snp_pos_df = snp_info
    if (snp_pos_df is None) != (gene_pos_df is None):
        logger.warning("only one of SNP and gene positions is available: no cis/trans split (one pool 'all')")
        snp_pos_df = gene_pos_df = None
    gene_types = _read_gene_types(args.gene_types, checksums) if args.gene_types else None
    result = map_eqtls(
        genotype_df,
        expression_df,
        covariates_df,
        snp_pos_df=snp_pos_df,
        gene_pos_df=gene_pos_df,
        model=args.model,
        cis_dist=args.cis_dist,
        pv_cis=args.pv_cis,
        pv_trans=args.pv_trans,
        gene_types=gene_types,
        precision=args.precision,
        pvalue_hist=_parse_hist(args.pvalue_hist),
    )
    inputs = {
        "snps": args.snps,
        "expression": args.expression,
        "covariates": args.covariates,
        "snp_pos": args.snp_pos,
        "gene_pos": args.gene_pos,
        "gene_types": args.gene_types,
    }
    written = result.write(
        args.out, format=args.format, extra={"inputs": inputs, "input_sha256": checksums, "seed": args.seed}
    )
    for pool, df in result.pairs.items():
        logger.info(
            "%s: %d pairs written of %d tests (%d with FDR < 0.1)",
            pool,
            len(df),
            result.n_tests[pool],
            int((df["fdr"] < 0.1).sum()),
        )
    logger.info("wrote %s", ", ".join(str(p) for p in written.values()))
    return 0
