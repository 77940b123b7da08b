"""``tbeqtl enrich go|snp-annot|bins``: Fisher enrichment of gene and SNP sets against a background.

- ``tbeqtl enrich go --genes FILE --background FILE --gene-sets GMT --out DIR`` writes
  ``DIR/enrichment.tsv`` (columns term, overlap, set_size, odds_ratio, p_value, fdr; sorted by
  p-value; ``--with-genes`` adds description and genes), ``DIR/id_mapping.tsv`` and ``DIR/run.json``.
- ``tbeqtl enrich snp-annot --snps FILE --background FILE (--annotations FILE... | --bed NAME=FILE
  --positions FILE) --out DIR`` writes ``DIR/enrichment.tsv`` (table snp_annotation_enrichment).
- ``tbeqtl enrich bins --snps FILE --positions FILE --genome hg38 --out DIR`` writes
  ``DIR/enrichment.tsv`` (table genomic_bin_enrichment, the Manhattan data).

Gene and SNP files hold one identifier per line.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..atomic import write_json, write_table
from ..errors import InputError
from ..schema import validate_table

COMMAND = "enrich"
HELP = "GO, SNP-annotation and genomic-bin Fisher enrichment of gene/SNP sets against a background"

logger = logging.getLogger(__name__)

GO_COLUMNS = ["term", "overlap", "set_size", "odds_ratio", "p_value", "fdr"]


def _common(parser: argparse.ArgumentParser) -> None:
    from . import add_common_arguments

    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    # the shared options are also accepted after the analysis name (tbeqtl enrich go ... --log-level DEBUG)
    add_common_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``go``, ``snp-annot`` and ``bins`` analyses and their options."""
    sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)

    go = sub.add_parser(
        "go", help="GO (or any GMT gene-set) over-representation, Fisher/hypergeometric, BH FDR"
    )
    go.add_argument(
        "--genes",
        required=True,
        metavar="FILE",
        help="gene set, one ID per line (Ensembl, versioned or not, Entrez or symbols)",
    )
    go.add_argument(
        "--background",
        required=True,
        metavar="FILE",
        help="analysis feature set (all genes tested), one ID per line; must contain the set",
    )
    go.add_argument("--gene-sets", required=True, metavar="GMT", help="GMT file (.gmt or .gmt.gz)")
    go.add_argument(
        "--gene-table",
        metavar="FILE",
        default=None,
        help="gene table to map IDs of another type than the GMT's (e.g. go_human/gene_info.tsv.gz)",
    )
    go.add_argument(
        "--go-terms",
        metavar="FILE",
        default=None,
        help="GO term table (go_id, ontology, term; e.g. go_human/go_terms.tsv.gz): test its BP terms only",
    )
    go.add_argument(
        "--min-size", type=int, default=3, help="test terms with >= this many background genes (3)"
    )
    go.add_argument("--max-size", type=int, default=None, help="skip terms with more background genes")
    go.add_argument(
        "--on-unknown",
        choices=["keep", "drop", "error"],
        default="keep",
        help="background IDs unknown to the gene table: keep as unannotated (default), drop, error",
    )
    go.add_argument(
        "--annotated-only",
        action="store_true",
        help="restrict the background to genes annotated to some term",
    )
    go.add_argument("--with-genes", action="store_true", help="add description and genes columns")
    go.add_argument(
        "--check-gseapy",
        action="store_true",
        help="also run gseapy.enrich offline and fail if its p-values differ",
    )
    _common(go)

    snp = sub.add_parser(
        "snp-annot", help="binary SNP-class (LDSC baselineLD-style) enrichment, BH across classes"
    )
    snp.add_argument(
        "--snps",
        required=True,
        action="append",
        metavar="FILE",
        help="SNP set, one ID per line (repeat for several sets; named by file stem)",
    )
    snp.add_argument("--background", required=True, metavar="FILE", help="background SNP IDs, one per line")
    snp.add_argument(
        "--annotations",
        nargs="+",
        metavar="FILE",
        default=None,
        help="LDSC .annot(.gz), parquet or TSV annotation tables (SNP, CHR, BP, 0/1 columns)",
    )
    snp.add_argument(
        "--bed",
        action="append",
        metavar="NAME=FILE",
        default=None,
        help="a BED interval annotation (repeatable); needs --positions",
    )
    snp.add_argument(
        "--positions",
        metavar="FILE",
        default=None,
        help="SNP positions (.bim or a table with SNP, CHR, BP) for --bed",
    )
    snp.add_argument(
        "--genome", default=None, help="hg19, hg38 or a .genome file: check positions fit this build"
    )
    snp.add_argument(
        "--on-unknown",
        choices=["drop", "error"],
        default="drop",
        help="background SNPs without annotation: drop and report (default) or error",
    )
    _common(snp)

    bins = sub.add_parser("bins", help="genomic-bin localisation (250 kb bins sliding by 100 kb), Fisher, BH")
    bins.add_argument(
        "--snps",
        required=True,
        action="append",
        metavar="FILE",
        help="SNP set, one ID per line (repeat for several sets; named by file stem)",
    )
    bins.add_argument(
        "--positions",
        required=True,
        metavar="FILE",
        help="positions of the background SNPs (.bim or a table with SNP, CHR, BP)",
    )
    bins.add_argument(
        "--background",
        metavar="FILE",
        default=None,
        help="background SNP IDs (default: every SNP of --positions)",
    )
    bins.add_argument("--genome", default="hg38", help="hg19, hg38 or a .genome file (default hg38)")
    bins.add_argument("--bin-size", type=int, default=250_000, help="bin width in bp (250000)")
    bins.add_argument("--step", type=int, default=100_000, help="sliding step in bp (100000)")
    bins.add_argument(
        "--min-background", type=int, default=1, help="test bins with >= this many background SNPs"
    )
    _common(bins)


def _sets(paths: list[str]) -> dict[str, list[str]]:
    from ..enrich import read_gene_list

    sets: dict[str, list[str]] = {}
    for path in paths:
        name = Path(path).name.split(".")[0]
        if name in sets:
            raise InputError(f"two set files are named {name!r}", path=path)
        sets[name] = read_gene_list(path)
    return sets


def _run_go(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..enrich import GeneIdTable, go_enrichment, read_gene_list, read_gmt
    from ..enrich.gene_ids import map_gene_ids, normalize_gene_id

    genes = read_gene_list(args.genes)
    background = read_gene_list(args.background)
    library = read_gmt(args.gene_sets)
    if args.go_terms:
        from ..enrich.go import read_go_terms

        library = library.restrict(read_go_terms(args.go_terms, ontology="BP"))
    table = GeneIdTable.read(args.gene_table) if args.gene_table else None
    res = go_enrichment(
        genes,
        background,
        library,
        gene_table=table,
        min_size=args.min_size,
        max_size=args.max_size,
        on_unknown=args.on_unknown,
        annotated_only=args.annotated_only,
        check_gseapy=args.check_gseapy,
    )
    out = Path(args.out)
    columns = GO_COLUMNS + (["description", "genes"] if args.with_genes else [])
    write_table(res[columns], out / "enrichment.tsv")
    bg_ids = sorted({normalize_gene_id(g) for g in background})
    map_df = map_gene_ids(bg_ids, library.id_type, gene_table=table)
    set_ids = {normalize_gene_id(g) for g in genes}
    mapping = pd.DataFrame(
        {
            "input": map_df.index.astype(str),
            "id_type": map_df["id_type"].to_numpy(),
            "status": map_df["status"].to_numpy(),
            "mapped": [",".join(m) for m in map_df["mapped"]],
            "in_set": map_df.index.isin(list(set_ids)),
        }
    )
    write_table(validate_table(mapping, "gene_id_mapping"), out / "id_mapping.tsv")
    n_sig = int((res["fdr"] < 0.1).sum())
    write_json(
        {
            "analysis": "go",
            "genes": args.genes,
            "background": args.background,
            "gene_sets": args.gene_sets,
            "gene_set_id_type": library.id_type,
            "min_size": args.min_size,
            "max_size": args.max_size,
            "on_unknown": args.on_unknown,
            "annotated_only": args.annotated_only,
            "test": "one-sided Fisher exact (hypergeometric upper tail)",
            "fdr": "Benjamini-Hochberg",
            "n_terms_tested": len(res),
            "n_fdr_below_0.1": n_sig,
            **res.attrs,
        },
        out / "run.json",
    )
    logger.info("wrote %s (%d terms, %d at FDR < 0.1)", out / "enrichment.tsv", len(res), n_sig)
    return 0


def _run_snp_annot(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..enrich import annotations_from_bed, read_gene_list, read_snp_annotations, snp_annotation_enrichment

    if not args.annotations and not args.bed:
        raise InputError("give --annotations and/or --bed")
    frames = []
    if args.annotations:
        frames.append(read_snp_annotations(args.annotations))
    if args.bed:
        if not args.positions:
            raise InputError("--bed needs --positions (the SNP positions to intersect)")
        from ..io import read_snp_positions

        beds = {}
        for item in args.bed:
            name, sep, path = item.partition("=")
            if not sep or not name or not path:
                raise InputError("--bed takes NAME=FILE", ids=[item])
            beds[name] = path
        positions = read_snp_positions(args.positions)[["chrom", "pos"]]
        frames.append(annotations_from_bed(positions, beds, genome=args.genome))
    annot = (
        frames[0]
        if len(frames) == 1
        else pd.concat([frames[0], frames[1].drop(columns=["chrom", "pos"])], axis=1, join="inner")
    )
    res = snp_annotation_enrichment(
        _sets(args.snps), read_gene_list(args.background), annot, on_unknown=args.on_unknown
    )
    out = Path(args.out)
    write_table(res, out / "enrichment.tsv")
    write_json(
        {
            "analysis": "snp-annot",
            "snps": args.snps,
            "background": args.background,
            "annotations": args.annotations,
            "bed": args.bed,
            "genome": args.genome,
            "test": "one-sided Fisher exact",
            "fdr": "Benjamini-Hochberg across classes",
            **res.attrs,
        },
        out / "run.json",
    )
    return 0


def _run_bins(args: argparse.Namespace) -> int:
    from ..enrich import genomic_bin_enrichment, read_gene_list
    from ..io import read_snp_positions

    positions = read_snp_positions(args.positions)[["chrom", "pos"]]
    if args.background:
        bg = read_gene_list(args.background)
        missing = sorted(set(bg) - set(positions.index))
        if missing:
            raise InputError(
                "background SNPs have no position in --positions", path=args.positions, ids=missing
            )
        positions = positions.loc[sorted(set(bg))]
    res = genomic_bin_enrichment(
        _sets(args.snps),
        positions,
        genome=args.genome,
        size=args.bin_size,
        step=args.step,
        min_background=args.min_background,
    )
    out = Path(args.out)
    write_table(res, out / "enrichment.tsv")
    write_json(
        {
            "analysis": "bins",
            "snps": args.snps,
            "positions": args.positions,
            "genome": args.genome,
            "bin_size": args.bin_size,
            "step": args.step,
            "min_background": args.min_background,
            "test": "one-sided Fisher exact",
            "fdr": "Benjamini-Hochberg across tested bins",
            "n_bins_tested": int(res["bin"].nunique()),
        },
        out / "run.json",
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the chosen enrichment analysis."""
    return {"go": _run_go, "snp-annot": _run_snp_annot, "bins": _run_bins}[args.analysis](args)
