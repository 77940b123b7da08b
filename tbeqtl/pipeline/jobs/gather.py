"""The gather job of a run: genome-wide tables, genome-wide FDR, counts, robust components, report tables.

:func:`gather_results` reads the finished pairs and writes ``summary/`` (with what the report draws
from the inputs, :mod:`tbeqtl.pipeline.report_tables`) and ``robust/``; the FDR rules are in
:mod:`tbeqtl.pipeline.orchestrate`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...atomic import write_json, write_table
from ...data import EQTLData
from ...errors import InputError
from ...layout import PairLayout, RunLayout
from ...schema import validate_table
from .. import factors as fac
from .. import robust as rob
from ..config import PipelineConfig
from ..report_tables import counted_calls, trans_locus, write_report_tables
from .common import _chrom_key

__all__ = ["gather_results"]

logger = logging.getLogger(__name__)


def _read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(
        path,
        sep="\t",
        dtype={"snp": str, "gene": str, "feature": str, "tissue": str, "group": str, "topics": str},
        keep_default_na=False,
        na_values=["NA", "NaN", "nan"],
    )


def _with_pair(df: pd.DataFrame, pair: PairLayout, gene_chrom: str, snp_chrom: str) -> pd.DataFrame:
    return df.assign(pair=pair.name, gene_chrom=gene_chrom, snp_chrom=snp_chrom)


def _counts_table(
    calls_df: pd.DataFrame, tests_rows: list[dict], *, level: float | None = None, scope: str = "family"
) -> pd.DataFrame:
    """Count eQTLs per factor set x tissue x class x gene type (schema eqtl_counts).

    ``n_eqtls``/``n_egenes``/``n_evariants`` count the calls: with ``scope`` ``"family"`` the
    per-run calls (``called_run`` rows when the table has that column), with ``"all"`` the rows
    with ``fdr_all < level``. With ``fdr_genome`` in ``calls_df`` and a ``level``, the
    ``*_genome`` columns count the rows with ``fdr_genome < level``.
    """
    from ...association.result import gene_type_group

    tests_df = pd.DataFrame(tests_rows, columns=["factor_set", "tissue", "class", "gene_type", "n_tests"])
    calls = calls_df.copy()
    if "gene_type" in calls.columns:
        calls["gene_type"] = [gene_type_group(t) for t in calls["gene_type"]]
    else:
        calls["gene_type"] = "all"
    genome = level is not None and "fdr_genome" in calls.columns
    if scope == "all":
        if level is None or ("fdr_all" not in calls.columns and len(calls)):
            raise InputError("counting the calls of fdr_scope 'all' needs fdr_all and the FDR level")
        run_mask = (calls["fdr_all"].to_numpy(dtype=float) < level) if len(calls) else np.zeros(0, dtype=bool)
    elif "called_run" in calls.columns:
        run_mask = calls["called_run"].astype(bool).to_numpy()
    else:
        run_mask = np.ones(len(calls), dtype=bool)
    genome_mask = (
        (calls["fdr_genome"].to_numpy(dtype=float) < level) if genome else np.zeros(len(calls), dtype=bool)
    )
    sets = {"": calls.loc[run_mask], "_genome": calls.loc[genome_mask]}
    suffixes = ["", "_genome"] if genome else [""]

    def count(cs: pd.DataFrame) -> tuple[int, int, int]:
        return len(cs.drop_duplicates(["snp", "gene"])), cs["gene"].nunique(), cs["snp"].nunique()

    def select(fs: str, tissue: str | None, klass: str, gtype: str, suffix: str) -> pd.DataFrame:
        cs = sets[suffix]
        keep = (cs.factor_set == fs) & (cs["class"] == klass)
        if tissue is not None:
            keep &= cs.tissue == tissue
        if gtype != "all":
            keep &= cs.gene_type == gtype
        return cs[keep]

    columns = ["factor_set", "tissue", "class", "gene_type", "n_tests"]
    for suffix in suffixes:
        columns += [f"n_eqtls{suffix}", f"n_egenes{suffix}", f"n_evariants{suffix}"]
    rows = []
    keys = tests_df[["factor_set", "tissue", "class"]].drop_duplicates()
    for fs, tissue, klass in keys.itertuples(index=False):
        sel_t = tests_df[
            (tests_df.factor_set == fs) & (tests_df.tissue == tissue) & (tests_df["class"] == klass)
        ]
        for gtype in ["all", *sorted(set(sel_t["gene_type"]) - {"all"})]:
            n_tests = int(sel_t.loc[sel_t.gene_type == gtype, "n_tests"].sum())
            numbers = [n for suffix in suffixes for n in count(select(fs, tissue, klass, gtype, suffix))]
            rows.append((fs, tissue, klass, gtype, n_tests, *numbers))
    out = pd.DataFrame(rows, columns=columns)
    # all tissues together (pairs summed over tissues; eGenes / eVariants unique over tissues)
    agg = []
    for (fs, klass, gtype), group in out.groupby(["factor_set", "class", "gene_type"]):
        values = [int(group["n_tests"].sum())]
        for suffix in suffixes:
            cs = select(fs, None, klass, gtype, suffix)
            values += [int(group[f"n_eqtls{suffix}"].sum()), cs["gene"].nunique(), cs["snp"].nunique()]
        agg.append((fs, "all", klass, gtype, *values))
    out = pd.concat([out, pd.DataFrame(agg, columns=out.columns)], ignore_index=True)
    for col in columns[4:]:
        out[col] = out[col].astype(np.int64)
    return out.sort_values(["factor_set", "tissue", "class", "gene_type"], ignore_index=True)


def _family_keys(df: pd.DataFrame, factor_set: str, tissue: str, *, by_type: bool) -> pd.Series:
    """``factor_set/tissue/class/gene-type group`` of each candidate row (the genome-wide FDR family)."""
    from ...association.result import gene_type_group

    if by_type and "gene_type" in df.columns:
        groups = {v: gene_type_group(v) for v in pd.unique(df["gene_type"])}
        gtype = df["gene_type"].map(groups).astype(str)
    else:
        gtype = pd.Series("all" if not by_type else gene_type_group(np.nan), index=df.index)
    return f"{factor_set}/{tissue}/" + df["class"].astype(str) + "/" + gtype


def _read_candidates(files: list[tuple], tests_rows: list[dict], *, level: float,
                     scope: str) -> list[pd.DataFrame]:
    """Read the candidates that can reach ``fdr_genome`` (or ``fdr_all``) below ``level``, in two passes.

    In a family of ``m`` tests with ``K`` candidates (``p <= level``), BH gives
    ``q_i = min_{j >= i} p_(j) m / j`` with ``j <= K``, so ``q_i < level`` needs ``p_i < level K / m``;
    the candidates at or above that bound are the family's largest p-values, so leaving them out
    changes neither the ranks of the others nor any value at or below ``level`` (those left out
    would be NaN). The first pass reads only the p-values and family columns, to count ``K``; the
    second keeps the rows under their family's bound (and, with ``scope = "all"``, under their
    factor set's) and the run's own calls. At GTEx scale the exhaustive mapping alone has millions
    of candidates per tissue, of which these are a few.
    """
    import pyarrow.parquet as pq

    from ..genome_fdr import FAMILY_COLUMNS

    n_df = pd.DataFrame(tests_rows, columns=[*FAMILY_COLUMNS, "n_tests"])
    n_df = n_df.astype({c: str for c in FAMILY_COLUMNS})
    family = n_df["factor_set"] + "/" + n_df["tissue"] + "/" + n_df["class"] + "/" + n_df["gene_type"]
    m_family = n_df.groupby(family)["n_tests"].sum()
    whole = n_df.loc[n_df["gene_type"] == "all"]
    m_set = whole.groupby("factor_set")["n_tests"].sum()
    by_type = any("gene_type" in pq.read_schema(f[0]).names for f in files)
    k_family: dict[str, int] = {}
    k_set: dict[str, int] = {}
    for path, _pl, _g, _s, factor_set, tissue in files:  # pass 1: K per family and per factor set
        names = pq.read_schema(path).names
        df = pd.read_parquet(path, columns=[c for c in ("class", "gene_type") if c in names])
        for key, k in _family_keys(df, factor_set, tissue, by_type=by_type).value_counts().items():
            k_family[key] = k_family.get(key, 0) + int(k)
        k_set[factor_set] = k_set.get(factor_set, 0) + len(df)
    for key, k in k_family.items():
        if key not in m_family.index:
            raise InputError("no test count for a genome-wide FDR family", ids=[key])
        if int(m_family[key]) < k:
            raise InputError(f"family has {k} candidate tests but n_tests = {int(m_family[key])}", ids=[key])
    out = []
    for path, pl, gene_chrom, snp_chrom, factor_set, tissue in files:  # pass 2: the rows under the bound
        df = pd.read_parquet(path)
        keys = _family_keys(df, factor_set, tissue, by_type=by_type)
        bound = keys.map({k: level * k_family[k] / float(m_family[k]) for k in pd.unique(keys)})
        if scope == "all" and factor_set in m_set.index:
            bound = np.maximum(bound, level * k_set[factor_set] / float(m_set[factor_set]))
        keep = df["p_value"].to_numpy(dtype=float) <= bound.to_numpy(dtype=float)
        if len(df):  # the run's own calls stay, to carry their (NaN) pooled values
            keep |= (df["fdr_by_type" if "fdr_by_type" in df.columns else "fdr"] < level).to_numpy()
        out.append(_with_pair(df.loc[keep], pl, gene_chrom, snp_chrom).assign(factor_set=factor_set,
                                                                              tissue=tissue))
    total = sum(k_set.values())
    logger.info("genome-wide FDR: %d of %d candidates can reach the level (read)", sum(map(len, out)), total)
    return out


def _add_genome_fdr(
    calls_df: pd.DataFrame,
    candidate_frames: list[pd.DataFrame],
    tests_rows: list[dict],
    no_candidates: list[str],
    *,
    level: float,
    scope: str = "family",
) -> pd.DataFrame:
    """Add ``fdr_genome`` (and ``fdr_all``) / ``called_run`` and the pooled-only calls (:mod:`.genome_fdr`).

    Without the candidates of every gathered mapping (pairs finished by an older tbeqtl, or with
    another FDR level) nothing is added with ``scope`` ``"family"``: a partial pool would not give
    the pooled BH. With ``"all"`` that is an error, since the calls are then counted from
    ``fdr_all``.
    """
    from ..genome_fdr import genome_wide_calls

    if no_candidates and scope == "all":
        raise InputError(
            f"mapping.fdr_scope = 'all' needs every mapping's candidates.parquet at FDR level "
            f"{level:g}; {len(no_candidates)} have none (finished by an older tbeqtl?): rerun "
            "them into a new folder, or gather with fdr_scope = 'family'",
            ids=no_candidates[:5],
        )
    if no_candidates:
        logger.warning(
            "no genome-wide FDR (fdr_genome): %d mappings have no candidates.parquet at FDR "
            "level %g (finished by an older tbeqtl?), e.g. %s",
            len(no_candidates),
            level,
            ", ".join(no_candidates[:3]),
        )
        return calls_df
    non_empty = [f for f in candidate_frames if len(f)]
    cands = (
        pd.concat(non_empty, ignore_index=True)
        if non_empty
        else (candidate_frames[0] if candidate_frames else calls_df.iloc[:0])
    )
    cands = cands.astype({"snp": str, "gene": str})
    cands["topics"] = cands["topics"].fillna("").astype(str)
    n_tests_df = pd.DataFrame(tests_rows, columns=["factor_set", "tissue", "class", "gene_type", "n_tests"])
    out = genome_wide_calls(calls_df, cands, n_tests_df, level=level, scope=scope)
    logger.info(
        "genome-wide FDR: %d per-run calls, %d of them and %d other candidates at fdr_genome < %g",
        int(out["called_run"].sum()),
        int((out["called_run"] & (out["fdr_genome"] < level)).sum()),
        int((~out["called_run"] & (out["fdr_genome"] < level)).sum()),
        level,
    )
    if scope == "all":
        logger.info(
            "FDR over all tests of each factor set: %d calls at fdr_all < %g (%d of them per-run calls)",
            int((out["fdr_all"] < level).sum()),
            level,
            int((out["called_run"] & (out["fdr_all"] < level)).sum()),
        )
    return out


def gather_results(
    layout: RunLayout, config: PipelineConfig, *, data, status_df: pd.DataFrame
) -> dict[str, Any]:
    """Gather the finished pairs into genome-wide tables, robust components and tissue sets.

    Parameters
    ----------
    layout
        The run folder.
    config
        The pipeline config.
    data
        The prepared folder (:class:`~tbeqtl.pipeline.prepared.PreparedData`): genotypes for the MAF
        residuals, read one SNP chromosome at a time; sample tissues and the Fig 5 locus inputs for
        the report (:func:`tbeqtl.pipeline.report_tables.write_report_tables`, given the locus'
        genes and SNP only, with the library sizes of all genes).
    status_df
        Pair status table (schema ``pair_status``).

    Returns
    -------
    dict
        Summary statistics for run.json (tissue-size Kendall tau, ancestry summary, counts).

    Notes
    -----
    ``summary/eqtls.parquet`` holds every run's calls (``called_run`` True, in run order) with
    ``fdr_genome``, the BH FDR of the test over its family pooled across the gathered runs (factor
    set x tissue x class x gene-type group, or x class without gene types; ``m`` = the families'
    ``n_tests`` of run.json summed over the runs); ``fdr_genome`` is exact at or below
    ``mapping.fdr`` and NaN above it. After them come the candidates with ``fdr_genome <
    mapping.fdr`` that no run called (``called_run`` False), so ``fdr_genome < mapping.fdr`` selects
    the complete genome-wide list. ``eqtl_counts.tsv`` gains ``n_eqtls_genome``,
    ``n_egenes_genome`` and ``n_evariants_genome``; ``n_eqtls`` and the rest still count the
    per-run calls. When a gathered mapping has no ``candidates.parquet`` at the configured level
    (finished by an older tbeqtl) none of these columns is written and a warning is logged.

    With ``mapping.fdr_scope = "all"`` the table also has ``fdr_all`` (one BH per factor set over
    all its tests, :func:`tbeqtl.pipeline.genome_fdr.all_tests_fdr`; exact at or below
    ``mapping.fdr``, NaN above), the candidates with ``fdr_all < mapping.fdr`` are added like the
    genome-wide ones, and ``n_eqtls``/``n_egenes``/``n_evariants`` count the rows with ``fdr_all <
    mapping.fdr``; missing candidates are then an :class:`~tbeqtl.errors.InputError`.
    """
    done = status_df.loc[status_df["status"] == "done"]
    frames: dict[str, list[pd.DataFrame]] = {
        k: []
        for k in (
            "tissue_association",
            "ancestry",
            "cell_types",
            "covariate_factors",
            "eqtls",
            "qq",
            "ranking",
            "candidates",
        )
    }
    tests_rows: list[dict] = []
    no_candidates: list[str] = []
    candidate_files: list[tuple] = []
    from ...association.result import gene_type_group

    for row in done.itertuples(index=False):
        pl = layout.pair(row.gene_chrom, row.snp_chrom)
        for name in ("tissue_association", "ancestry", "cell_types", "covariate_factors"):
            path = pl.factors / f"{name}.tsv"
            if path.exists():
                frames[name].append(_with_pair(_read_tsv(path), pl, row.gene_chrom, row.snp_chrom))
        if pl.ranking.exists():
            frames["ranking"].append(_read_tsv(pl.ranking).assign(pair=pl.name))
        eqtl_root = pl.root / "eqtl"
        for folder in sorted(eqtl_root.glob("*/*")) if eqtl_root.is_dir() else []:
            factor_set = folder.parent.name
            meta = json.loads((folder / "run.json").read_text())
            tissue = str(meta.get("tissue", folder.name))
            calls = _read_tsv(folder / "calls.tsv")
            frames["eqtls"].append(
                _with_pair(calls, pl, row.gene_chrom, row.snp_chrom).assign(
                    factor_set=factor_set, tissue=tissue
                )
            )
            cand_path = folder / "candidates.parquet"
            if cand_path.is_file() and float(meta.get("fdr_level", np.nan)) == float(config.mapping.fdr):
                # read after the loop, when every family's test count is known (_read_candidates)
                candidate_files.append((cand_path, pl, row.gene_chrom, row.snp_chrom, factor_set, tissue))
            else:
                no_candidates.append(f"{pl.name}/{factor_set}/{tissue}")
            qq = _read_tsv(folder / "qq.tsv")
            if len(qq):
                frames["qq"].append(
                    _with_pair(qq, pl, row.gene_chrom, row.snp_chrom).assign(
                        factor_set=factor_set, tissue=tissue
                    )
                )
            for key, n in meta.get("n_tests", {}).items():
                if ":" in key:
                    klass, group = key.split(":", 1)
                    tests_rows.append(
                        {
                            "factor_set": factor_set,
                            "tissue": tissue,
                            "class": klass,
                            "gene_type": gene_type_group(group),
                            "n_tests": int(n),
                        }
                    )
                elif key in ("cis", "trans"):
                    tests_rows.append(
                        {
                            "factor_set": factor_set,
                            "tissue": tissue,
                            "class": key,
                            "gene_type": "all",
                            "n_tests": int(n),
                        }
                    )
    if not no_candidates:
        frames["candidates"] = _read_candidates(candidate_files, tests_rows, level=config.mapping.fdr,
                                                scope=config.mapping.fdr_scope)
    summary_dir = layout.summary
    schemas = {
        "tissue_association": ("tissue_factors", "tissue_factors.parquet"),
        "ancestry": ("ancestry_factors", "ancestry.parquet"),
        "cell_types": ("cell_type_factors", "cell_types.parquet"),
        "covariate_factors": ("covariate_factors", "covariate_factors.parquet"),
        "eqtls": ("pipeline_eqtls", "eqtls.parquet"),
        "qq": ("permutation_qq", "qq.parquet"),
    }
    tables: dict[str, pd.DataFrame] = {}
    for key, (schema, filename) in schemas.items():
        if not frames[key]:
            continue
        non_empty = [f for f in frames[key] if len(f)]
        table = pd.concat(non_empty, ignore_index=True) if non_empty else frames[key][0]
        if key == "eqtls":
            table["topics"] = table["topics"].fillna("").astype(str)
            table = _add_genome_fdr(
                table,
                frames["candidates"],
                tests_rows,
                no_candidates,
                level=config.mapping.fdr,
                scope=config.mapping.fdr_scope,
            )
        tables[key] = validate_table(table, schema)
        write_table(tables[key], summary_dir / filename)
    eqtls = tables.get("eqtls", pd.DataFrame(columns=["factor_set", "tissue", "class", "snp", "gene"]))
    counts = _counts_table(eqtls, tests_rows, level=config.mapping.fdr, scope=config.mapping.fdr_scope)
    write_table(validate_table(counts, "eqtl_counts"), summary_dir / "eqtl_counts.tsv")
    calls_df = counted_calls(eqtls, level=config.mapping.fdr, scope=config.mapping.fdr_scope)
    snp_residuals = _snp_residuals(layout, data, done)
    write_report_tables(
        layout,
        data=_locus_data(data, trans_locus(calls_df)),
        tissue_column=config.data.tissue_column,
        calls_df=calls_df,
        pair_names=[],
        library_size_s=data.library_size_s,
    )
    stats: dict[str, Any] = {}
    if "tissue_association" in tables:
        stats["tissue_size_kendall"] = fac.tissue_size_kendall(tables["tissue_association"])
        assoc = tables["tissue_association"]
        stats["tissue_associated_factors"] = {
            str(t): int(n) for t, n in assoc.groupby("tissue")["associated"].sum().items()
        }
    if "ancestry" in tables:
        stats["ancestry"] = fac.ancestry_summary(tables["ancestry"])
    if "cell_types" in tables and len(tables["cell_types"]):
        ct = tables["cell_types"]
        stats["cell_types_captured"] = {
            f"{t}/{c}": bool(g["captured"].any()) for (t, c), g in ct.groupby(["tissue", "cell_type"])
        }
    write_json(stats, summary_dir / "factor_summary.json")
    if frames["ranking"] and "tissue_association" in tables:
        stats["robust"] = _robust(
            layout,
            config,
            snp_residuals,
            done,
            pd.concat(frames["ranking"], ignore_index=True),
            tables["tissue_association"],
        )
    return stats


def _locus_data(prepared, locus: dict[str, Any] | None) -> EQTLData:
    """Return the data the report tables need: sample tables, and the Fig 5 locus' genes and SNP only."""
    counts_df = pd.DataFrame(
        index=pd.Index([], dtype=str), columns=prepared.library_size_s.index, dtype=np.int64
    )
    genotype_df = pd.DataFrame(
        index=pd.Index([], dtype=str), columns=prepared.individual_info_df.index, dtype=float
    )
    if locus is not None:
        gene_chrom, snp_chrom = locus["pair"].split("__")
        counts = prepared.load_counts(gene_chrom)
        counts_df = counts.loc[[g for g in locus["genes"] if g in counts.index]]
        genotypes = prepared.load_genotypes(snp_chrom).astype(float)
        genotype_df = genotypes.loc[[s for s in [locus["snp"]] if s in genotypes.index]]
    return EQTLData(
        counts_df,
        genotype_df,
        prepared.sample_map_s,
        prepared.sample_info_df,
        prepared.individual_info_df,
        prepared.gene_info_df.reindex(counts_df.index),
        prepared.snp_info_df.reindex(genotype_df.index),
    )


def _snp_residuals(layout: RunLayout, prepared, done: pd.DataFrame) -> dict[str, dict[str, pd.DataFrame]]:
    """MAF residuals of the finished pairs' SNP loadings, one SNP chromosome's genotypes at a time.

    Writes ``summary/maf_residuals/<pair>.parquet`` for the report and returns, for the
    chromosomes shared by at least two runs, the residuals robust components compare.
    """
    from ...tblda.io import read_topic_table

    out: dict[str, dict[str, pd.DataFrame]] = {}
    for chrom in sorted(done["snp_chrom"].unique(), key=_chrom_key):
        runs = done.loc[done["snp_chrom"] == chrom]
        genotype_df = prepared.load_genotypes(chrom).astype(float)
        loadings = {}
        for row in runs.itertuples(index=False):
            pl = layout.pair(row.gene_chrom, row.snp_chrom)
            path = pl.fit / "snp_topics.tsv"
            if path.is_file():
                table = pd.read_csv(path, sep="\t", index_col=0, na_values=["NA"])
                table.index = table.index.astype(str)
                write_table(rob.maf_residuals(table, genotype_df), layout.maf_residuals(pl.name), index=True)
            if len(runs) >= 2:
                table = read_topic_table(path)
                table.index = table.index.astype(str)
                loadings[pl.name] = rob.maf_residuals(table, genotype_df)
        if loadings:
            out[chrom] = loadings
    return out


def _robust(
    layout: RunLayout,
    config: PipelineConfig,
    snp_residuals: dict[str, dict[str, pd.DataFrame]],
    done: pd.DataFrame,
    ranking_df: pd.DataFrame,
    tissue_df: pd.DataFrame,
) -> dict[str, Any]:
    from ...tblda.io import read_topic_table

    rc = config.robust
    members, reps = [], []
    for kind in ("gene", "snp"):
        column = "gene_chrom" if kind == "gene" else "snp_chrom"
        for chrom in sorted(done[column].unique(), key=_chrom_key):
            runs = done.loc[done[column] == chrom]
            if len(runs) < 2:
                continue
            loadings = {}
            if kind == "snp":
                loadings = snp_residuals[chrom]
            for row in runs.itertuples(index=False) if kind == "gene" else ():
                pl = layout.pair(row.gene_chrom, row.snp_chrom)
                table = read_topic_table(pl.fit / "gene_topics.tsv")
                table.index = table.index.astype(str)
                loadings[pl.name] = table
            m_df, r_df = rob.robust_components(
                loadings,
                method="r2" if kind == "gene" else "kendall",
                threshold=rc.gene_r2 if kind == "gene" else rc.snp_tau,
                min_partners=rc.gene_min_partners if kind == "gene" else rc.snp_min_partners,
                merge_r2=rc.merge_r2,
            )
            if len(m_df):
                members.append(m_df.assign(kind=kind, chrom=chrom))
                long = (
                    r_df.rename_axis("feature")
                    .reset_index()
                    .melt(id_vars="feature", var_name="component", value_name="loading")
                )
                reps.append(long.assign(kind=kind, chrom=chrom))
    members_df = (
        pd.concat(members, ignore_index=True)
        if members
        else pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in (
                    ("kind", object),
                    ("chrom", object),
                    ("component", np.int64),
                    ("run", object),
                    ("topic", np.int64),
                    ("flagged", bool),
                    ("n_partners", np.int64),
                )
            }
        )
    )
    write_table(validate_table(members_df, "robust_members"), layout.robust / "components.tsv")
    reps_df = (
        pd.concat(reps, ignore_index=True)
        if reps
        else pd.DataFrame(columns=["feature", "component", "loading", "kind", "chrom"])
    )
    reps_df["component"] = reps_df["component"].astype(np.int64)
    write_table(
        reps_df[["kind", "chrom", "component", "feature", "loading"]],
        layout.robust / "representatives.parquet",
    )
    genes = rob.robust_tissue_gene_sets(ranking_df, tissue_df)
    snps = rob.robust_tissue_snp_sets(ranking_df, tissue_df, percentile=rc.snp_percentile)
    write_table(validate_table(genes, "robust_tissue_sets"), layout.robust / "tissue_genes.tsv")
    write_table(validate_table(snps, "robust_tissue_sets"), layout.robust / "tissue_snps.tsv")
    n_comp = members_df.groupby(["kind", "chrom"])["component"].nunique() if len(members_df) else pd.Series()
    return {
        "components": {f"{k}/{c}": int(n) for (k, c), n in n_comp.items()},
        "tissue_gene_set_sizes": {str(t): int(n) for t, n in genes.groupby("tissue").size().items()},
        "tissue_snp_set_sizes": {str(t): int(n) for t, n in snps.groupby("tissue").size().items()},
    }
