"""The demo job: simulate a GTEx-like data set, run the whole pipeline on it, write the report.

:func:`run_demo` is what ``tbeqtl demo`` runs:

1. ``tbeqtl.simulate.simulate(preset="demo")`` (several GTEx tissues with planted tissue
   topics, cis- and trans-eQTLs), written under ``RUN_DIR/simulation/`` with its truth. When GO
   gene sets are available, the simulated genes are first given real human Ensembl gene IDs
   (a seeded random draw from the GO gene table, protein-coding IDs for ``protein_coding``
   genes) so that the GO stage runs against the real GO biological-process sets; the labels
   carry no biology, so GO terms are *not* expected at FDR < 0.1 (a null check).
2. :func:`tbeqtl.pipeline.run_pipeline` with the pipeline's ``"demo"`` config: TBLDA on every
   chromosome pair, ranking, factor interpretation, robust components, factor-restricted mapping
   with permutation QQ, gathered summaries.
3. Enrichment (:mod:`tbeqtl.enrich`) of the robust tissue sets: GO over-representation of the
   gene sets; SNP-class enrichment of the SNP sets against classes built from the simulated
   genome with ``bedtools`` (gene bodies, TSS +/- 5 kb, TSS +/- 100 kb, by gene type); genomic
   bins of 250 kb sliding by 100 kb.
4. Comparison of the called eQTLs with the simulation's GTEx-format truth lists
   (``truth/gtex/*.signif_variant_gene_pairs.txt.gz``).
5. :func:`tbeqtl.report.build_report`.

Every post-pipeline stage records ``"done"``, ``"skipped: <why>"`` or ``"failed: <error>"`` in
``enrichment/status.json`` / ``gtex/status.json``, and the report states why a section is absent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_json, write_table
from ..errors import InputError, TbeqtlError
from ..layout import RunLayout
from ..schema import validate_table

__all__ = ["DEFAULT_GO_DIR", "relabel_genes", "run_demo"]

logger = logging.getLogger(__name__)

#: Where the real GO sets are looked for when no ``go_gmt`` is given: ``shared/data/go_human``
#: beside the checkout (``/work/shared/data/go_human`` for ``/work/main``).
DEFAULT_GO_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "go_human"
GMT_NAME = "go_bp_propagated.ensembl.gmt.gz"
GENE_TABLE_NAME = "gene_info.tsv.gz"

#: FDR level of the calls compared with the GTEx lists.
CALL_FDR = 0.1


def _default_gmt() -> Path | None:
    path = DEFAULT_GO_DIR / GMT_NAME
    return path if path.is_file() else None


def relabel_genes(sim: Any, gene_table: pd.DataFrame, *, seed: int = 0) -> Any:
    """Give the simulated genes real human Ensembl IDs and symbols (seeded random draw).

    Parameters
    ----------
    sim
        A :class:`tbeqtl.simulate.Simulation`.
    gene_table
        The GO gene table (``go_human/gene_info.tsv.gz``: ``symbol``, ``ncbi_gene_type``,
        ``ensembl_ids``).
    seed
        Seed of the draw.

    Returns
    -------
    Simulation
        The same simulation with gene IDs replaced everywhere (data and truth); versions are
        kept as ``.1`` so that the IDs look like GENCODE's.

    Raises
    ------
    InputError
        If the table has too few genes of a type.
    """
    rng = np.random.default_rng(seed)
    table = gene_table.dropna(subset=["ensembl_ids"])
    table = table[table["ensembl_ids"].astype(str).str.startswith("ENSG")]
    table = table.assign(ensembl=table["ensembl_ids"].astype(str).str.split(",").str[0])
    table = table.drop_duplicates("ensembl").sort_values("ensembl")
    info = sim.data.gene_info_df
    new_id = pd.Series(index=info.index, dtype=object)
    new_name = pd.Series(index=info.index, dtype=object)
    for gene_type, pool_mask in (("protein_coding", table["ncbi_gene_type"] == "protein-coding"),
                                 ("lincRNA", table["ncbi_gene_type"] == "ncRNA")):
        genes = info.index[info["gene_type"] == gene_type]
        pool = table[pool_mask]
        if len(pool) < len(genes):
            raise InputError(f"the gene table has {len(pool)} genes for {len(genes)} simulated "
                             f"{gene_type} genes")
        pick = pool.iloc[np.sort(rng.choice(len(pool), size=len(genes), replace=False))]
        order = rng.permutation(len(genes))
        new_id[genes] = (pick["ensembl"].to_numpy() + ".1")[order]
        new_name[genes] = pick["symbol"].astype(str).to_numpy()[order]
    rest = new_id.isna()
    new_id[rest] = info.index[rest]
    new_name[rest] = info.loc[rest, "gene_name"] if "gene_name" in info.columns else info.index[rest]
    mapping = new_id.to_dict()
    data = sim.data
    gene_info_df = info.rename(index=mapping)
    if "gene_name" in gene_info_df.columns:
        gene_info_df["gene_name"] = new_name.to_numpy()
    data = data.replace(counts_df=data.counts_df.rename(index=mapping), gene_info_df=gene_info_df)
    truth = sim.truth
    eqtls_df = truth.eqtls_df.assign(gene=truth.eqtls_df["gene"].map(mapping))
    changes = {"gene_topics_df": truth.gene_topics_df.rename(index=mapping), "eqtls_df": eqtls_df}
    if isinstance(truth.covariate_effects_df, pd.DataFrame) and truth.covariate_effects_df.index.isin(
            list(mapping)).any():
        changes["covariate_effects_df"] = truth.covariate_effects_df.rename(index=mapping)
    if isinstance(truth.library_size_s, pd.Series):
        changes["library_size_s"] = truth.library_size_s
    truth = dataclasses.replace(truth, **changes)
    return dataclasses.replace(sim, data=data, truth=truth)


def _stage(status: dict[str, str], name: str, path: Path, func: Any, *args: Any, **kwargs: Any) -> None:
    """Run one post-pipeline stage, recording done / skipped / failed in ``path``."""
    start = time.perf_counter()
    try:
        result = func(*args, **kwargs)
        status[name] = "done" if result is None else f"skipped: {result}"
    except (TbeqtlError, ValueError, OSError, KeyError, RuntimeError) as exc:
        logger.warning("demo stage %s failed: %s", name, exc)
        status[name] = f"failed: {type(exc).__name__}: {exc}"
    logger.info("stage %s: %s (%.1f s)", name, status[name], time.perf_counter() - start)
    write_json(status, path)


def _robust_sets(layout: RunLayout, name: str) -> dict[str, list[str]]:
    path = layout.robust / name
    if not path.is_file():
        return {}
    df = pd.read_csv(path, sep="\t", dtype={"feature": str, "tissue": str})
    return {t: sorted(g["feature"].unique()) for t, g in df.groupby("tissue", sort=True)}


def _go_stage(layout: RunLayout, data: Any, gmt: Path | None, gene_table: Path | None) -> str | None:
    from ..enrich import go_enrichment

    if gmt is None:
        return f"no GO gene sets: {DEFAULT_GO_DIR} is absent and no --go-gmt was given"
    sets = _robust_sets(layout, "tissue_genes.tsv")
    if not sets:
        return "the pipeline found no robust tissue gene set (robust/tissue_genes.tsv empty or absent)"
    res = go_enrichment(sets, list(data.genes), gmt, gene_table=gene_table, on_unknown="keep")
    write_table(validate_table(res, "go_enrichment"), layout.enrichment / "go.tsv")
    return None


def _genome_classes(data: Any) -> dict[str, pd.DataFrame]:
    """BED intervals of SNP classes derived from the simulated gene annotation."""
    info = data.gene_info_df
    tss = np.where(info["strand"] == "+", info["start"], info["end"]).astype(np.int64)
    out = {}
    for label, mask in (("gene_body", np.ones(len(info), dtype=bool)),
                        ("protein_coding_gene_body", (info["gene_type"] == "protein_coding").to_numpy()),
                        ("lincRNA_gene_body", (info["gene_type"] == "lincRNA").to_numpy())):
        out[label] = pd.DataFrame({"chrom": info["chrom"].to_numpy()[mask],
                                   "start": info["start"].to_numpy(np.int64)[mask] - 1,
                                   "end": info["end"].to_numpy(np.int64)[mask]})
    for label, width in (("TSS_5kb", 5_000), ("TSS_100kb", 100_000)):
        out[label] = pd.DataFrame({"chrom": info["chrom"].to_numpy(), "start": np.maximum(tss - width, 0),
                                   "end": tss + width})
    return {k: v.sort_values(["chrom", "start"]).reset_index(drop=True) for k, v in out.items()}


def _snp_sets(layout: RunLayout) -> dict[str, list[str]]:
    sets = _robust_sets(layout, "tissue_snps.tsv")
    if sets:
        sets = {"union": sorted({s for v in sets.values() for s in v}), **sets}
    return sets


def _snp_annot_stage(layout: RunLayout, data: Any) -> str | None:
    from ..enrich import annotations_from_bed, snp_annotation_enrichment

    sets = _snp_sets(layout)
    if not sets:
        return "the pipeline found no robust tissue SNP set (robust/tissue_snps.tsv empty or absent)"
    positions = data.snp_info_df[["chrom", "pos"]]
    annot = annotations_from_bed(positions, _genome_classes(data), genome="hg38")
    res = snp_annotation_enrichment(sets, list(data.snps), annot)
    write_table(validate_table(res, "snp_annotation_enrichment"), layout.enrichment / "snp_annot.tsv")
    return None


def _bins_stage(layout: RunLayout, data: Any) -> str | None:
    from ..enrich import genomic_bin_enrichment

    sets = {k: v for k, v in _snp_sets(layout).items() if k != "union"}
    if not sets:
        return "the pipeline found no robust tissue SNP set (robust/tissue_snps.tsv empty or absent)"
    chroms = sorted(data.snp_info_df["chrom"].unique())
    from ..enrich.genome import CHROM_SIZES

    sizes = {c: n for c, n in CHROM_SIZES["hg38"].items() if c in chroms}
    res = genomic_bin_enrichment(sets, data.snp_info_df[["chrom", "pos"]], genome=sizes)
    write_table(validate_table(res, "genomic_bin_enrichment"), layout.enrichment / "bins.tsv")
    return None


def _gtex_stage(layout: RunLayout) -> str | None:
    from ..enrich.gtex import compare_with_gtex
    from ..io.gtex import read_gtex_pairs

    files = sorted((layout.simulation / "truth" / "gtex").glob("*.signif_variant_gene_pairs.txt.gz"))
    if not files:
        return "the simulation wrote no GTEx-format truth list (simulation/truth/gtex/)"
    eqtls_path = layout.summary / "eqtls.parquet"
    if not eqtls_path.is_file():
        return "the pipeline wrote no summary/eqtls.parquet (no eQTL called)"
    calls = pd.read_parquet(eqtls_path)
    if "called_run" in calls.columns:  # the per-run calls; not the rows called only genome-wide
        calls = calls[calls["called_run"].astype(bool)]
    calls = calls[calls["factor_set"] == "all"].rename(columns={"class": "kind"})
    if calls.empty:
        return "no eQTL called in factor set 'all'"
    gtex_df = pd.concat([read_gtex_pairs(f) for f in files], ignore_index=True)
    calls = calls.sort_values("p_value").drop_duplicates(["tissue", "kind", "snp", "gene"])
    result = compare_with_gtex(calls[["tissue", "kind", "snp", "gene", "p_value"]], gtex_df)
    # provenance first: the report names the list from it ("simulated comparison list", not GTEx)
    write_json({"simulated": True, "release": None, "files": [str(f.relative_to(layout.root)) for f in files],
                "description": "the cis-eQTLs planted by the demo's simulation, written in the GTEx v8 "
                "signif_variant_gene_pairs format"}, layout.gtex / "source.json")
    result.write(layout.gtex)
    return None


def run_demo(
    out_dir: str | Path = "reports/demo",
    *,
    seed: int = 0,
    go_gmt: str | Path | None = None,
    workers: int | None = None,
    max_steps: int | None = None,
    simulation_preset: str = "demo",
) -> tuple[Path, Path]:
    """Simulate, run the whole pipeline, the enrichments and the GTEx comparison; write the report.

    Parameters
    ----------
    out_dir
        The run folder; the report is written to ``out_dir/report.html`` and ``report.pdf``.
    seed
        Seed of the simulation, the held-out draw and the fits.
    go_gmt
        GO gene sets (GMT, Ensembl IDs); default ``/work/shared/data/go_human`` when present.
        Without them the GO section of the report says why it is absent.
    workers
        Dask worker processes (default: the pipeline's demo config, 2).
    max_steps
        SVI steps per fit (default: the demo config's).
    simulation_preset
        Simulator preset (``"demo"``; smaller ones for tests).

    Returns
    -------
    tuple of pathlib.Path
        ``(html_path, pdf_path)``.
    """
    from ..report import build_report
    from ..simulate import simulate
    from . import PipelineConfig, run_pipeline

    start = time.perf_counter()
    out = Path(out_dir)
    layout = RunLayout(out)
    gmt = Path(go_gmt) if go_gmt is not None else _default_gmt()
    if gmt is not None and not gmt.is_file():
        raise InputError("GO gene-set file not found", path=str(gmt))
    gene_table_path = gmt.parent / GENE_TABLE_NAME if gmt is not None else None
    if gene_table_path is not None and not gene_table_path.is_file():
        gene_table_path = None

    logger.info("demo 1/5: simulating a GTEx-like data set (preset %s, seed %d)", simulation_preset, seed)
    sim = simulate(preset=simulation_preset, seed=seed)
    if gene_table_path is not None:
        sim = relabel_genes(sim, pd.read_csv(gene_table_path, sep="\t", dtype=str), seed=seed)
    settings = {"preset": simulation_preset, "seed": seed, "real_gene_ids": gene_table_path is not None}
    marker = layout.simulation / "demo.json"
    if marker.is_file():
        previous = json.loads(marker.read_text(encoding="utf-8"))
        if previous != settings:
            raise InputError(f"{out} holds a demo run with other settings ({previous}, now {settings}); "
                             "give a new --out folder")
        logger.info("reusing the simulated data in %s (finished pairs are not redone)", layout.simulation)
    else:
        sim.write(layout.simulation, overwrite=True)
        write_json(settings, marker)

    logger.info("demo 2/5: running the pipeline on every chromosome pair")
    changes: dict[str, dict[str, Any]] = {"data": {"path": str(layout.simulation.resolve())},
                                          "holdout": {"seed": seed}}
    fit: dict[str, Any] = {"seed": seed}
    if max_steps is not None:
        fit["max_steps"] = max_steps
    changes["fit"] = fit
    if workers is not None:
        changes["run"] = {"workers": workers}
    config = PipelineConfig.preset("demo", **changes)
    status = run_pipeline(config, out_dir=out, data=sim.data)
    n_done = int((status["status"] == "done").sum())
    logger.info("pipeline: %d of %d pairs done", n_done, len(status))

    logger.info("demo 3/5: enrichment of the robust tissue gene and SNP sets")
    enrich_status: dict[str, str] = {}
    path = layout.enrichment / "status.json"
    _stage(enrich_status, "go", path, _go_stage, layout, sim.data, gmt, gene_table_path)
    _stage(enrich_status, "snp_annot", path, _snp_annot_stage, layout, sim.data)
    _stage(enrich_status, "bins", path, _bins_stage, layout, sim.data)
    enrich_status["tf_recovery"] = ("skipped: the simulated genes have no tissue-specific transcription "
                                    "factor list (give one to `tbeqtl enrich` for real data)")
    write_json(enrich_status, path)

    logger.info("demo 4/5: comparing the called eQTLs with the simulation's GTEx-format truth lists")
    gtex_status: dict[str, str] = {}
    _stage(gtex_status, "gtex", layout.gtex / "status.json", _gtex_stage, layout)

    logger.info("demo 5/5: building the report")
    html_path, pdf_path = build_report(out, out_dir=out)
    logger.info("demo finished in %.0f s", time.perf_counter() - start)
    return html_path, pdf_path
