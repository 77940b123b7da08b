"""``tbeqtl cis``: tensorQTL's cis workflow (nominal -> permutations/eGenes -> independent), exact float64.

Modes and outputs in ``--out DIR`` (tensorQTL's file names and columns):

- ``--mode nominal``: every cis pair, ``PREFIX.cis_qtl_pairs.<chrom>.parquet`` (one per chromosome);
  with ``--interaction FILE`` the interaction columns (``b_g b_g_se pval_g b_i b_i_se pval_i b_gi
  b_gi_se pval_gi`` for one term), and the top association per phenotype (largest genotype x term
  ``|t|``) in ``PREFIX.cis_qtl_top_assoc.txt.gz``.
- ``--mode permutations``: one row per phenotype with the beta approximation, Storey q-values (no R;
  ``--qvalue-lambda`` fixes lambda) and ``pval_nominal_threshold`` at ``--fdr``, in
  ``PREFIX.cis_qtl.txt.gz``; when the nominal pair files of the same prefix are in ``DIR``, the GTEx
  significant pairs in ``PREFIX.cis_qtl.signif_pairs.parquet``. ``--permutations adaptive``: 1,000
  permutations for the phenotypes whose eGene call at ``--fdr`` they settle, the full 10,000 (the same
  permutations extended) for the others (rule in :func:`tbeqtl.association.cis.map_cis`).
- ``--mode permutations --interaction FILE``: one row per phenotype and interaction term, the variant
  with the largest genotype x term ``t^2`` and its permutation and beta-approximated p-values, q-values
  and ``pval_nominal_threshold`` (on ``pval_gi``) within each term, in ``PREFIX.cis_qtl_interaction.txt.gz``
  (tbeqtl's definition, tensorQTL has none: :mod:`tbeqtl.association.interaction_perm`).
- ``--mode independent --cis-output DIR/PREFIX.cis_qtl.txt.gz``: forward-backward conditional mapping of
  every eGene at ``--fdr``, in ``PREFIX.cis_independent_qtl.txt.gz`` (column ``rank``).

``--backend`` puts the heavy products on a torch device: ``auto`` (default) is torch on CUDA when a
GPU is present, else numpy (torch is then not imported); ``torch`` is CUDA if available, else CPU
torch; ``torch-cpu`` forces CPU torch; ``numpy``. The reported statistics are float64 on the host in
every case (:mod:`tbeqtl.association.cis_device`); the interaction modes run in numpy.

Each step adds its parameters, counts, versions and input checksums to ``DIR/run.json``.
Genotypes may hold more individuals than the phenotypes (subset by ID; ``--sample-map`` or
``--gtex-ids`` map sample IDs to genotype IDs).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .cohort_inputs import (
    add_cohort_arguments,
    open_cohort,
    read_interaction,
    record_run,
)

COMMAND = "cis"
HELP = "tensorQTL-style cis mapping: nominal pairs, permutations with q-values, independent eQTLs"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tbeqtl cis`` options.

    Parameters
    ----------
    parser
        The subcommand parser.
    """
    parser.add_argument(
        "--mode",
        default="permutations",
        choices=["nominal", "permutations", "independent"],
        help="nominal pairs, permutations (eGenes; default) or independent (conditional) eQTLs",
    )
    add_cohort_arguments(parser)
    parser.add_argument(
        "--interaction",
        default=None,
        help="interaction terms, samples x terms (nominal and permutations modes)",
    )
    parser.add_argument(
        "--maf-threshold-interaction",
        type=float,
        default=0.05,
        help="interaction mode: MAF in each half split at the term's median (default: 0.05)",
    )
    parser.add_argument("--window", type=float, default=1e6, help="cis window in bp (default: 1e6)")
    parser.add_argument(
        "--maf-threshold", type=float, default=0.0, help="keep variants with MAF >= this (default: 0)"
    )
    parser.add_argument(
        "--permutations",
        type=_permutation_count,
        default=10_000,
        help="permutations per phenotype (default: 10000), or 'adaptive' (permutations mode): 1000 for "
        "the phenotypes whose eGene call at --fdr they settle (provisional q-values), 10000 for the others",
    )
    parser.add_argument("--fdr", type=float, default=0.05, help="q-value level for eGenes (default: 0.05)")
    parser.add_argument(
        "--qvalue-lambda", type=float, default=None, help="fixed lambda for Storey's pi0 (default: smoother)"
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "numpy", "torch", "torch-cpu"],
        help="where the block products run: auto (torch on CUDA when a GPU is present, else numpy; "
        "default), numpy, torch (CUDA if available, else CPU) or torch-cpu; float64 statistics either way",
    )
    parser.add_argument(
        "--cis-output", default=None, help="independent mode: the permutation table (PREFIX.cis_qtl.txt.gz)"
    )


def _permutation_count(value: str) -> int | str:
    if value == "adaptive":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer or 'adaptive', got {value!r}") from None


def _common_kwargs(args: argparse.Namespace, sample_map) -> dict:
    return {
        "maf_threshold": args.maf_threshold,
        "mac_threshold": args.mac_threshold,
        "window": int(args.window),
        "sample_map": sample_map,
        "gtex_ids": args.gtex_ids,
        "backend": args.backend,
    }


def _write_gz(df: pd.DataFrame, path: Path) -> None:
    from ..atomic import atomic_path

    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", float_format="%.6g", compression={"method": "gzip", "mtime": 0})


def _nominal(args, source, phenotype_df, pos_df, covariates_df, sample_map, out, checksums) -> dict:
    from ..association.cis import map_nominal

    interaction_df = read_interaction(args.interaction, checksums) if args.interaction else None
    files = map_nominal(
        source,
        None,
        phenotype_df,
        pos_df,
        args.prefix,
        covariates_df,
        interaction_df=interaction_df,
        maf_threshold_interaction=args.maf_threshold_interaction,
        output_dir=out,
        **_common_kwargs(args, sample_map),
    )
    names = {str(k): Path(v).name for k, v in files.items()}
    if interaction_df is not None:
        names["top_assoc"] = _write_top_assoc(files, out / f"{args.prefix}.cis_qtl_top_assoc.txt.gz")
    return {"files": names, "counts": {"chromosomes": len(files)}}


def _write_top_assoc(files: dict, path: Path) -> str:
    """TensorQTL's ``cis_qtl_top_assoc``: per phenotype the pair with the largest genotype x term |t|."""
    from ..association.interaction import top_interaction_association

    tops = [top_interaction_association(pd.read_parquet(f)) for f in files.values()]
    table = pd.concat(tops, ignore_index=True) if tops else pd.DataFrame(columns=["phenotype_id"])
    _write_gz(table.set_index("phenotype_id"), path)
    return path.name


def _interaction_permutations(args, source, phenotype_df, pos_df, covariates_df, sample_map, out, checksums):
    """``--mode permutations --interaction``: PREFIX.cis_qtl_interaction.txt.gz, q-values per term."""
    from ..association.interaction_perm import interaction_qvalues, map_cis_interaction

    kwargs = _common_kwargs(args, sample_map)
    if kwargs.pop("backend") != "auto":
        logger.info("--mode permutations --interaction runs in numpy (--backend %s not used)", args.backend)
    table = map_cis_interaction(
        source,
        None,
        phenotype_df,
        pos_df,
        covariates_df,
        read_interaction(args.interaction, checksums),
        nperm=args.permutations,
        seed=args.seed,
        maf_threshold_interaction=args.maf_threshold_interaction,
        **kwargs,
    )
    table = interaction_qvalues(table, fdr=args.fdr, qvalue_lambda=args.qvalue_lambda)
    path = out / f"{args.prefix}.cis_qtl_interaction.txt.gz"
    _write_gz(table, path)
    hits = table[table["qval"] <= args.fdr]
    counts = {"rows": len(table), "phenotypes": int(table.index.nunique())}
    counts["significant_by_term"] = {str(k): int(v) for k, v in hits["interaction"].value_counts().items()}
    logger.info("%d phenotype x term rows, %d at q <= %g", len(table), len(hits), args.fdr)
    return {"files": {"cis_qtl_interaction": path.name}, "counts": counts}


def _permutations(args, source, phenotype_df, pos_df, covariates_df, sample_map, out) -> dict:
    from ..association.cis import map_cis
    from ..association.post import calculate_qvalues, get_significant_pairs

    cis_df = map_cis(
        source,
        None,
        phenotype_df,
        pos_df,
        covariates_df,
        nperm=args.permutations,
        seed=args.seed,
        fdr=args.fdr,
        qvalue_lambda=args.qvalue_lambda,
        **_common_kwargs(args, sample_map),
    )
    cis_df = calculate_qvalues(cis_df, fdr=args.fdr, qvalue_lambda=args.qvalue_lambda)
    path = out / f"{args.prefix}.cis_qtl.txt.gz"
    _write_gz(cis_df, path)
    files = {"cis_qtl": path.name}
    n_egenes = int((cis_df["qval"] <= args.fdr).sum())
    nominal = sorted(out.glob(f"{args.prefix}.cis_qtl_pairs.*.parquet"))
    if nominal:
        from ..atomic import atomic_path

        signif = get_significant_pairs(cis_df, nominal, fdr=args.fdr)
        spath = out / f"{args.prefix}.cis_qtl.signif_pairs.parquet"
        with atomic_path(spath) as tmp:
            signif.to_parquet(tmp, index=False)
        files["signif_pairs"] = spath.name
    else:
        logger.info(
            "no %s.cis_qtl_pairs.*.parquet in %s: run --mode nominal first for the significant pairs",
            args.prefix,
            out,
        )
    logger.info("%d phenotypes, %d eGenes at q <= %g", len(cis_df), n_egenes, args.fdr)
    counts = {"phenotypes": len(cis_df), "egenes": n_egenes}
    if "nperm" in cis_df.attrs:  # --permutations adaptive
        counts["phenotypes_at_10000_permutations"] = sum(v > 1_000 for v in cis_df.attrs["nperm"].values())
    return {"files": files, "counts": counts}


def _independent(args, source, phenotype_df, pos_df, covariates_df, sample_map, out, checksums) -> dict:
    from ..association.cis import map_independent

    if not args.cis_output:
        raise InputError(
            "--mode independent needs --cis-output (the PREFIX.cis_qtl.txt.gz of --mode permutations)"
        )
    cis_path = Path(args.cis_output)
    if not cis_path.exists():
        raise InputError("permutation table not found", path=str(cis_path))
    from ..io._common import sha256_file

    checksums[str(cis_path)] = sha256_file(cis_path)
    cis_df = pd.read_csv(cis_path, sep="\t", index_col=0)
    indep = map_independent(
        source,
        None,
        cis_df,
        phenotype_df,
        pos_df,
        covariates_df,
        fdr=args.fdr,
        nperm=args.permutations,
        seed=args.seed,
        **_common_kwargs(args, sample_map),
    )
    path = out / f"{args.prefix}.cis_independent_qtl.txt.gz"
    _write_gz(indep.set_index("phenotype_id") if "phenotype_id" in indep.columns else indep, path)
    n_genes = int(indep["phenotype_id"].nunique()) if "phenotype_id" in indep.columns else len(indep)
    return {
        "files": {"cis_independent_qtl": path.name},
        "counts": {"variants": len(indep), "phenotypes": n_genes},
    }


def run(args: argparse.Namespace) -> int:
    """Run ``tbeqtl cis``.

    Parameters
    ----------
    args
        Parsed options.

    Returns
    -------
    int
        Exit status.
    """
    if args.permutations == "adaptive" and args.mode != "permutations":
        raise InputError("--permutations adaptive applies to --mode permutations only")
    if args.interaction and args.mode == "independent":
        raise InputError("--interaction is supported in --mode nominal and --mode permutations")
    if args.interaction and args.permutations == "adaptive":
        raise InputError("--interaction takes a fixed number of --permutations, not 'adaptive'")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checksums: dict[str, str] = {}
    with open_cohort(args, checksums) as (source, phenotype_df, pos_df, covariates_df, sample_map):
        common = (args, source, phenotype_df, pos_df, covariates_df, sample_map, out)
        if args.mode == "nominal":
            result = _nominal(*common, checksums)
        elif args.mode == "permutations" and args.interaction:
            result = _interaction_permutations(*common, checksums)
        elif args.mode == "permutations":
            result = _permutations(*common)
        else:
            result = _independent(*common, checksums)
    params = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    record_run(out, f"cis_{args.mode}", {"params": params, "input_sha256": checksums, **result})
    logger.info("wrote %s", ", ".join(result["files"].values()))
    return 0
