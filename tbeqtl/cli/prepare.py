"""``tbeqtl prepare``: the paper's feature selection from raw GTEx-shaped inputs into a prepared folder."""

from __future__ import annotations

import argparse
import logging

from ..prepare import PrepareOptions, prepare

COMMAND = "prepare"
HELP = (
    "select the paper's genes and SNPs from raw inputs (GTEx GCT, attribute tables, VCF/PLINK, GTF) "
    "into a prepared folder for tbeqtl run --data"
)

logger = logging.getLogger(__name__)

_DEFAULTS = PrepareOptions()

#: (flag, PrepareOptions field, type, help)
_OPTIONS = (
    (
        "--min-median-count",
        "min_median_count",
        float,
        "keep genes whose median count is at least this in at least one tissue",
    ),
    ("--maf", "maf", float, "keep SNPs with minor allele frequency >= this over the kept individuals"),
    ("--max-missing", "max_missing", float, "keep SNPs with at most this fraction of missing calls"),
    ("--ld-r2", "ld_r2", float, "plink 1.9 --indep-pairwise r^2 threshold"),
    ("--ld-window-kb", "ld_window_kb", int, "plink 1.9 --indep-pairwise window (kb)"),
    ("--genotype-pcs", "genotype_pcs", int, "genotype principal components to write"),
    ("--n-ancestry", "n_ancestry", int, "ancestral populations Q of the ancestry EM"),
    (
        "--ancestry-snps",
        "ancestry_snps",
        int,
        "SNPs in the ancestry EM's random subset (terastructure -rfreq)",
    ),
    ("--tissue-column", "tissue_column", str, "tissue column of the sample attributes"),
    (
        "--individual-column",
        "individual_column",
        str,
        "individual column of the sample attributes (default: 'individual', else the GTEx donor rule)",
    ),
    ("--dosage-field", "dosage_field", str, "VCF/BCF and PLINK 2: GT (hard calls) or DS (dosages)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``tbeqtl prepare``.

    Parameters
    ----------
    parser
        The subcommand's parser.
    """
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument(
        "--counts",
        required=True,
        help="raw counts: GTEx GCT of all tissues (.gct[.gz]), genes x samples TSV/parquet, or .h5ad",
    )
    inputs.add_argument(
        "--sample-attributes",
        required=True,
        help="GTEx SampleAttributesDS (SAMPID, SMTSD ...) or a table with a tissue column",
    )
    inputs.add_argument(
        "--subject-attributes",
        required=True,
        help="GTEx SubjectPhenotypesDS (SUBJID, SEX ...) or a table of individuals",
    )
    inputs.add_argument(
        "--genotypes",
        required=True,
        help="PLINK 2 or PLINK 1 prefix, VCF/BCF or dosage TSV (donors may be a superset)",
    )
    inputs.add_argument(
        "--genes", required=True, help="gene annotation with gene_type: GENCODE GTF, BED or TSV"
    )
    inputs.add_argument(
        "--ancestry-beta",
        default=None,
        help="ancestry beta, SNPs x Q, IDs in the first column (with --ancestry-tau)",
    )
    inputs.add_argument(
        "--ancestry-tau",
        default=None,
        help="ancestry tau, individuals x Q, IDs in the first column (with --ancestry-beta)",
    )
    inputs.add_argument(
        "--cell-types",
        default=None,
        help="cell-type scores per sample (e.g. xCell), either orientation; columns celltype_<name>",
    )
    inputs.add_argument("--covariates", default=None, help="covariates per sample, either orientation")
    parser.add_argument("--out", required=True, help="the prepared folder to write")
    parser.add_argument(
        "--force", action="store_true", help="replace a finished folder prepared from other inputs or options"
    )
    sel = parser.add_argument_group("selection (defaults: the paper's Extended Methods)")
    sel.add_argument(
        "--gene-types",
        default=",".join(_DEFAULTS.gene_types),
        help="comma-separated gene types to keep, or 'any' (default: %(default)s)",
    )
    sel.add_argument(
        "--all-chromosomes",
        action="store_true",
        help="keep genes and SNPs on every chromosome, not only chr1..chr22",
    )
    sel.add_argument(
        "--keep-imputed", action="store_true", help="keep SNPs flagged imputed (VCF/pvar INFO IMP or IMPUTED)"
    )
    for flag, field, kind, text in _OPTIONS:
        default = getattr(_DEFAULTS, field)
        sel.add_argument(flag, dest=field, type=kind, default=default, help=f"{text} (default: {default})")


def options_from_args(args: argparse.Namespace) -> PrepareOptions:
    """Build :class:`PrepareOptions` from parsed arguments.

    Parameters
    ----------
    args
        Parsed arguments of ``tbeqtl prepare``.

    Returns
    -------
    PrepareOptions
        The options.
    """
    types = (
        ()
        if args.gene_types.strip().lower() == "any"
        else tuple(t.strip() for t in args.gene_types.split(",") if t.strip())
    )
    fields = {field: getattr(args, field) for _, field, _, _ in _OPTIONS}
    return PrepareOptions(
        gene_types=types,
        autosomes_only=not args.all_chromosomes,
        drop_imputed=not args.keep_imputed,
        seed=args.seed,
        **fields,
    )


def run(args: argparse.Namespace) -> int:
    """Prepare the folder.

    Parameters
    ----------
    args
        Parsed arguments.

    Returns
    -------
    int
        Exit status 0.
    """
    prepare(
        counts=args.counts,
        sample_attributes=args.sample_attributes,
        subject_attributes=args.subject_attributes,
        genotypes=args.genotypes,
        genes=args.genes,
        out=args.out,
        ancestry_beta=args.ancestry_beta,
        ancestry_tau=args.ancestry_tau,
        cell_types=args.cell_types,
        covariates=args.covariates,
        options=options_from_args(args),
        force=args.force,
    )
    return 0
