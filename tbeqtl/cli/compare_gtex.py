r"""``tbeqtl compare-gtex``: overlap of eQTL calls with GTEx v8 lists, novel calls and a KS test.

Example::

    tbeqtl compare-gtex --calls cis.tsv --calls trans.tsv --tissue Whole_Blood \\
        --gtex-pairs Whole_Blood.v8.signif_variant_gene_pairs.txt.gz --gtex-trans trans.txt \\
        --lookup GTEx_..._lookup_table.txt.gz --out DIR

writes ``DIR/comparison.tsv`` (gtex_comparison), ``DIR/pairs.tsv`` (gtex_pair_status),
``DIR/ks.tsv`` and ``DIR/ks.json`` (gtex_ks), and ``DIR/source.json`` (the lists' GTEx release and
files, ``"simulated": false``; the report names the list from it).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import InputError

COMMAND = "compare-gtex"
HELP = "compare cis/trans eQTL calls with GTEx lists: pair/eGene/eVariant overlap, novel calls, KS test"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the compare-gtex options."""
    parser.add_argument(
        "--calls",
        required=True,
        action="append",
        metavar="FILE",
        help="our eQTL calls (eqtl_pairs table: snp, gene, p_value[, fdr, kind, tissue]; TSV or "
        "parquet); repeat for cis and trans files",
    )
    parser.add_argument(
        "--kind",
        choices=["cis", "trans"],
        default=None,
        help="kind of the calls when the table has no kind column (default: from the file name)",
    )
    parser.add_argument(
        "--tissue",
        default="all",
        help="tissue of the calls when the table has no tissue column ('all' pools GTEx tissues)",
    )
    parser.add_argument(
        "--fdr",
        type=float,
        default=0.1,
        help="keep calls with fdr below this when the table has an fdr column (0.1)",
    )
    parser.add_argument(
        "--gtex-pairs",
        action="append",
        default=[],
        metavar="FILE",
        help="GTEx v8 <tissue>.v8.signif_variant_gene_pairs.txt.gz or .parquet (repeatable)",
    )
    parser.add_argument(
        "--gtex-egenes",
        action="append",
        default=[],
        metavar="FILE",
        help="GTEx v8 <tissue>.v8.egenes.txt.gz (eGenes at qval <= 0.05; repeatable)",
    )
    parser.add_argument(
        "--gtex-trans",
        action="append",
        default=[],
        metavar="FILE",
        help="GTEx trans-eQTL table (tissue_id, variant_id, gene_id, pval; repeatable)",
    )
    parser.add_argument(
        "--gtex-v6",
        default=None,
        metavar="FILE",
        help="GTEx v6 top-eQTL z-score table (gene_snp x tissues) used as a cis list",
    )
    parser.add_argument("--v6-z", type=float, default=None, help="keep v6 rows with |z| >= this")
    parser.add_argument(
        "--lookup",
        default=None,
        metavar="FILE",
        help="GTEx v8 variant lookup table (variant_id <-> rs_id_dbSNP151_GRCh38p7)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")


def _read_calls(path: str, *, kind: str | None, fdr: float):
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InputError("calls file not found", path=path)
    df = (
        pd.read_parquet(p)
        if p.suffix == ".parquet"
        else pd.read_csv(p, sep="\t", dtype={"snp": str, "gene": str})
    )
    if "kind" not in df.columns:
        guess = kind or next((k for k in ("trans", "cis") if k in p.name.lower()), None)
        if guess is None:
            raise InputError("cannot tell cis from trans: add a kind column or --kind", path=path)
        df["kind"] = guess
    if "fdr" in df.columns:
        n = len(df)
        df = df[df["fdr"] < fdr]
        logger.info("%s: %d of %d calls at FDR < %g", p.name, len(df), n, fdr)
    return df


def run(args: argparse.Namespace) -> int:
    """Read the lists, compare, and write the tables."""
    import pandas as pd

    from ..atomic import write_json
    from ..enrich.gtex import compare_with_gtex
    from ..io.gtex import (
        read_gtex_egenes,
        read_gtex_lookup,
        read_gtex_pairs,
        read_gtex_trans,
        read_gtex_v6_zscores,
    )

    calls = pd.concat([_read_calls(p, kind=args.kind, fdr=args.fdr) for p in args.calls], ignore_index=True)
    gtex = [read_gtex_pairs(p) for p in args.gtex_pairs]
    gtex += [read_gtex_egenes(p) for p in args.gtex_egenes]
    gtex += [read_gtex_trans(p) for p in args.gtex_trans]
    if args.gtex_v6:
        gtex.append(read_gtex_v6_zscores(args.gtex_v6, z_threshold=args.v6_z))
    if not gtex:
        raise InputError(
            "give at least one GTEx list (--gtex-pairs, --gtex-egenes, --gtex-trans or --gtex-v6)"
        )
    gtex_df = pd.concat(
        [g[["tissue", "kind", "variant_id", "gene_id", "p_value"]] for g in gtex], ignore_index=True
    )
    lookup = read_gtex_lookup(args.lookup) if args.lookup else None
    result = compare_with_gtex(calls, gtex_df, lookup_df=lookup, tissue=args.tissue)
    # the list's provenance, read by the report to name it (tbeqtl demo writes "simulated": true)
    v8 = [*args.gtex_pairs, *args.gtex_egenes, *args.gtex_trans]
    release = ", ".join(r for r, given in (("v8", v8), ("v6", args.gtex_v6)) if given)
    files = [str(Path(f).resolve()) for f in (*v8, *([args.gtex_v6] if args.gtex_v6 else []))]
    write_json(
        {
            "simulated": False,
            "release": release,
            "files": files,
            "description": "GTEx eQTL lists given to tbeqtl compare-gtex",
        },
        Path(args.out) / "source.json",
    )
    result.write(args.out)
    logger.info("wrote %s", Path(args.out) / "comparison.tsv")
    return 0
