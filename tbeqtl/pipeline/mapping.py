"""Factor-restricted eQTL mapping on held-out samples, and the exhaustive comparison.

Paper (eQTL pipeline): for each factor, its top-ranked SNPs are tested against its top-ranked
genes with MatrixEQTL ``modelLINEAR`` on the held-out samples of one tissue, with
quantile-normalised expression and covariates; BH FDR per run, for protein-coding and lincRNA
genes separately; three factor sets (all factors, the tissue's associated factors, "general"
factors associated with no tissue).

Rules used here:

- Every test goes through :func:`tbeqtl.association.map_eqtls` (one call over the union of the
  blocks' SNPs x genes, all p-values kept, then restricted to the blocks' pairs: a pair's
  statistic does not depend on which other pairs are tested). A SNP-gene pair in several
  factors' blocks is one test; the ``topics`` column lists the factors that proposed it.
- cis/trans classes are the association engine's (MatrixEQTL ``cisDist`` rule); within an
  intrachromosomal pair, distant pairs are trans.
- The FDR of a factor set is computed over the complete strata of that set: the union of its
  factors' blocks, per class (``fdr``) and per class x gene-type group (``fdr_by_type``), with
  the test counts recorded in ``n_tests``. An eQTL is *called* when ``fdr_by_type`` (or ``fdr``
  when gene types are unknown) is below the level.
- Permutation QQ: expression and covariates are permuted jointly across samples (seeded), which
  keeps their relation and breaks the genotype link, and the same tests are rerun; the ordered
  true and permuted -log10 p-values are paired by rank
  (:func:`tbeqtl.association.permutation.qq_table`, thinned to at most 2,000 points per class,
  always keeping the 200 most extreme); the p-value histogram is
  :func:`tbeqtl.association.histogram.pvalue_histogram` (100 bins ``(lo, hi]``).
- Exhaustive: every SNP x gene pair of the chromosome pair on the same samples and covariates,
  with the engine's own FDR over all tests.
- If an individual has several held-out samples in one tissue, only the first (by sample ID) is
  used, so that no genotype is counted twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..association.histogram import pvalue_histogram
from ..association.permutation import qq_table
from ..atomic import write_json, write_table
from ..errors import InputError
from ..schema import validate_table
from .covariates import inverse_normal_transform, tissue_covariates

__all__ = [
    "FactorSetResult",
    "TissueInputs",
    "call_column",
    "exhaustive_mapping",
    "factor_blocks",
    "factor_set_topics",
    "map_factor_blocks",
    "prepare_tissue_inputs",
    "restrict_to_factor_set",
    "write_factor_set",
]

logger = logging.getLogger(__name__)

_STAT_COLUMNS = ["snp", "gene", "beta", "t_stat", "p_value"]

#: permutation QQ points kept per class (the most extreme QQ_KEEP_TOP always)
QQ_MAX_POINTS, QQ_KEEP_TOP = 2000, 200


@dataclass(frozen=True)
class TissueInputs:
    """Association inputs of one tissue's held-out samples.

    Parameters
    ----------
    tissue
        Tissue name.
    genotype_df
        SNPs x samples dosages (each sample takes its individual's genotypes).
    expression_df
        Genes x samples inverse-normal-transformed expression.
    covariates_df
        Covariates x samples.
    snp_pos_df, gene_pos_df
        Positions for the cis/trans split (``chrom, pos`` and ``chrom, start, end``), or None.
    gene_types_s
        Gene type of each gene, or None.
    """

    tissue: str
    genotype_df: pd.DataFrame
    expression_df: pd.DataFrame
    covariates_df: pd.DataFrame
    snp_pos_df: pd.DataFrame | None
    gene_pos_df: pd.DataFrame | None
    gene_types_s: pd.Series | None = None

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return self.expression_df.shape[1]


def _one_per_individual(samples: pd.Index, sample_map_s: pd.Series) -> pd.Index:
    ordered = pd.Index(sorted(samples))
    individuals = sample_map_s.reindex(ordered)
    keep = ~individuals.duplicated().to_numpy()
    if not keep.all():
        logger.info("%d held-out samples share an individual with another sample of the same tissue; "
                    "keeping one per individual", int((~keep).sum()))
    return ordered[keep]


def prepare_tissue_inputs(
    data,
    samples: pd.Index,
    *,
    tissue: str,
    cpm_df: pd.DataFrame,
    known_df: pd.DataFrame,
    geno_pcs_df: pd.DataFrame,
    genes: pd.Index | None = None,
    snps: pd.Index | None = None,
    n_hidden: int = 60,
    hidden: str = "pca",
    hidden_max_fraction: float = 0.25,
    seed: int = 0,
    covariates_df: pd.DataFrame | None = None,
) -> TissueInputs:
    """Build the association inputs of one tissue's held-out samples.

    Parameters
    ----------
    data
        The full :class:`~tbeqtl.data.EQTLData`.
    samples
        The tissue's held-out sample IDs.
    tissue
        Tissue name.
    cpm_df
        Genes x samples counts per million over all genes (hidden factors are estimated from all
        genes of the tissue; tests use ``genes``).
    known_df
        Samples x known covariates.
    geno_pcs_df
        Individuals x genotype PCs.
    genes, snps
        Genes and SNPs to keep for testing (default: all).
    n_hidden, hidden, hidden_max_fraction, seed
        Hidden factors, see :func:`tbeqtl.pipeline.covariates.tissue_covariates`.
    covariates_df
        The tissue's covariates x samples when already computed (by the pipeline's driver, from
        all genes); ``cpm_df`` then needs only ``genes``.

    Returns
    -------
    TissueInputs
        The inputs.
    """
    samples = _one_per_individual(pd.Index(samples), data.sample_map_s)
    expression_all = inverse_normal_transform(cpm_df[samples])
    if covariates_df is None:
        covariates_df = tissue_covariates(
            samples, tissue=tissue, expression_df=expression_all, known_df=known_df, geno_pcs_df=geno_pcs_df,
            sample_map_s=data.sample_map_s, n_hidden=n_hidden, hidden=hidden,
            hidden_max_fraction=hidden_max_fraction, seed=seed)
    else:
        covariates_df = covariates_df[samples]
    genes = data.genes if genes is None else pd.Index(genes)
    snps = data.snps if snps is None else pd.Index(snps)
    geno = data.genotype_df.loc[snps, data.sample_map_s.reindex(samples).to_numpy()].to_numpy(dtype=float)
    row_mean = np.nanmean(np.where(np.isnan(geno).all(axis=1, keepdims=True), 0.0, geno), axis=1,
                          keepdims=True)
    geno = np.where(np.isnan(geno), row_mean, geno)
    genotype_df = pd.DataFrame(geno, index=snps, columns=samples)
    gene_info = data.gene_info_df
    snp_info = data.snp_info_df
    gene_pos_df = gene_info.loc[genes, ["chrom", "start", "end"]] if len(gene_info.columns) else None
    snp_pos_df = snp_info.loc[snps, ["chrom", "pos"]] if len(snp_info.columns) else None
    gene_types = gene_info.loc[genes, "gene_type"].astype(str) if "gene_type" in gene_info.columns else None
    return TissueInputs(tissue, genotype_df, expression_all.loc[genes], covariates_df, snp_pos_df,
                        gene_pos_df, gene_types)


def _engine(inputs: TissueInputs, snps: pd.Index, genes: pd.Index, *, cis_dist: float, pv: float,
            expression_df: pd.DataFrame | None = None, covariates_df: pd.DataFrame | None = None):
    from ..association import map_eqtls

    expression_df = inputs.expression_df if expression_df is None else expression_df
    covariates_df = inputs.covariates_df if covariates_df is None else covariates_df
    kwargs = {}
    if inputs.gene_types_s is not None:
        kwargs["gene_types"] = inputs.gene_types_s.loc[genes]
    return map_eqtls(
        inputs.genotype_df.loc[snps], expression_df.loc[genes],
        covariates_df if covariates_df.shape[0] else None,
        snp_pos_df=None if inputs.snp_pos_df is None else inputs.snp_pos_df.loc[snps],
        gene_pos_df=None if inputs.gene_pos_df is None else inputs.gene_pos_df.loc[genes],
        model="linear", cis_dist=cis_dist, pv_cis=pv, pv_trans=pv, collinear="drop", show_progress=False,
        **kwargs,
    )


def _all_tests(result) -> pd.DataFrame:
    frames = []
    for name, frame in (("cis", result.cis), ("trans", result.trans)):
        if len(frame):
            frames.append(frame[_STAT_COLUMNS].assign(**{"class": name}))
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c in ("beta", "t_stat", "p_value") else object)
                             for c in [*_STAT_COLUMNS, "class"]})
    return pd.concat(frames, ignore_index=True)


def factor_blocks(ranking_df: pd.DataFrame, *, topics: list[int] | None = None) -> dict[int, tuple[pd.Index,
                                                                                                   pd.Index]]:
    """Top SNPs and top genes of each factor from a feature ranking.

    Parameters
    ----------
    ranking_df
        Schema ``feature_ranking``: ``topic``, ``feature``, ``kind``, ``score``, ``rank``.
    topics
        Topics to keep (default: all in the ranking).

    Returns
    -------
    dict
        Topic -> (top SNP IDs, top gene IDs), both sorted.
    """
    blocks = {}
    for topic, group in ranking_df.groupby("topic"):
        if topics is not None and int(topic) not in set(topics):
            continue
        snps = pd.Index(sorted(group.loc[group["kind"] == "snp", "feature"].astype(str)))
        genes = pd.Index(sorted(group.loc[group["kind"] == "gene", "feature"].astype(str)))
        if len(snps) and len(genes):
            blocks[int(topic)] = (snps, genes)
    return blocks


def _block_tests(inputs: TissueInputs, blocks: dict[int, tuple[pd.Index, pd.Index]], *, cis_dist: float,
                 expression_df: pd.DataFrame | None = None,
                 covariates_df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[list[int]]]:
    """Every distinct SNP-gene test of the factor blocks, sorted by (snp, gene), and its topics.

    Each block is tested by its own engine call; a pair proposed by several topics is tested once
    per block with the same result and kept once, with the sorted list of its topics.
    """
    frames = []
    for topic, (snps, genes) in blocks.items():
        frame = _all_tests(_engine(inputs, snps, genes, cis_dist=cis_dist, pv=1.0,
                                   expression_df=expression_df, covariates_df=covariates_df))
        if len(frame) != len(snps) * len(genes):  # pragma: no cover
            raise RuntimeError("the association engine did not return every requested test")
        frames.append(frame.assign(topic=int(topic)))
    allt = pd.concat(frames, ignore_index=True)
    by_pair = allt.groupby(["snp", "gene"], sort=True)["topic"]
    first = allt.drop_duplicates(["snp", "gene"]).set_index(["snp", "gene"]).loc[by_pair.size().index]
    tests = first.drop(columns="topic").reset_index()
    if int(allt["topic"].max()) >= 63:  # more topics than bits: the slow, general way
        return tests, [sorted(ts) for ts in by_pair.agg(list)]
    masks = (np.int64(1) << allt["topic"].to_numpy(np.int64))
    masks = pd.Series(masks, index=allt.index).groupby([allt["snp"], allt["gene"]], sort=True).sum()
    lists = {int(m): [t for t in range(63) if (int(m) >> t) & 1] for m in np.unique(masks.to_numpy())}
    return tests, [lists[int(m)] for m in masks.to_numpy()]  # shared lists, never mutated downstream


def map_factor_blocks(
    inputs: TissueInputs,
    blocks: dict[int, tuple[pd.Index, pd.Index]],
    *,
    cis_dist: float = 1e6,
    n_permutations: int = 1,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test every factor's top SNPs against its top genes; keep every p-value.

    Parameters
    ----------
    inputs
        One tissue's association inputs.
    blocks
        Topic -> (SNPs, genes), see :func:`factor_blocks`.
    cis_dist
        cis window (bp).
    n_permutations
        Permutations of expression + covariates for the null QQ (0: none).
    seed
        Seed of the permutations.

    Returns
    -------
    tests_df : pandas.DataFrame
        One row per distinct SNP-gene test: ``snp, gene, beta, t_stat, p_value, class``,
        ``gene_type`` (when known) and ``topics`` (sorted list of proposing topics).
    null_df : pandas.DataFrame
        ``snp, gene, class, permutation, p_value`` of the permuted runs.
    """
    blocks = {topic: (snps.intersection(inputs.genotype_df.index, sort=False),
                      genes.intersection(inputs.expression_df.index, sort=False))
              for topic, (snps, genes) in sorted(blocks.items())}
    blocks = {topic: block for topic, block in blocks.items() if len(block[0]) and len(block[1])}
    if not blocks:
        raise InputError(f"tissue {inputs.tissue!r}: no factor block has both SNPs and genes to test")
    # one engine call per factor block (a pair's test does not depend on which other pairs are
    # tested), so memory holds the blocks' tests, never the union SNPs x union genes
    tests, topic_lists = _block_tests(inputs, blocks, cis_dist=cis_dist)
    tests["topics"] = topic_lists
    if inputs.gene_types_s is not None:
        tests["gene_type"] = inputs.gene_types_s.reindex(tests["gene"]).to_numpy()
    rng = np.random.default_rng(seed)
    null_frames = []
    for b in range(n_permutations):
        perm = rng.permutation(inputs.n_samples)
        cols = inputs.expression_df.columns
        expr = pd.DataFrame(inputs.expression_df.to_numpy()[:, perm], index=inputs.expression_df.index,
                            columns=cols)
        covs = pd.DataFrame(inputs.covariates_df.to_numpy()[:, perm], index=inputs.covariates_df.index,
                            columns=cols)
        null, _ = _block_tests(inputs, blocks, cis_dist=cis_dist, expression_df=expr, covariates_df=covs)
        null_frames.append(null[["snp", "gene", "class", "p_value"]].assign(permutation=b))
    null_df = (pd.concat(null_frames, ignore_index=True) if null_frames
               else pd.DataFrame(columns=["snp", "gene", "class", "p_value", "permutation"]))
    return tests, null_df


def factor_set_topics(
    factor_set: str,
    *,
    topics: list[int],
    tissue: str,
    tissue_df: pd.DataFrame,
    drop: list[int] = (),
) -> list[int]:
    """Topics of a factor set for one tissue.

    Parameters
    ----------
    factor_set
        ``"all"``, ``"tissue"`` (factors associated with this tissue) or ``"general"`` (factors
        associated with no tissue).
    topics
        Every topic of the run.
    tissue
        The tissue being mapped.
    tissue_df
        Tissue-factor associations of the run (``topic``, ``tissue``, ``associated``).
    drop
        Topics to leave out of every set (e.g. covariate-associated factors).

    Returns
    -------
    list of int
        Sorted topics.
    """
    assoc = tissue_df.loc[tissue_df["associated"].astype(bool)]
    if factor_set == "all":
        chosen = set(topics)
    elif factor_set == "tissue":
        chosen = set(assoc.loc[assoc["tissue"].astype(str) == str(tissue), "topic"].astype(int))
    elif factor_set == "general":
        chosen = set(topics) - set(assoc["topic"].astype(int))
    else:
        raise InputError("factor set must be all, tissue or general", ids=[factor_set])
    return sorted(chosen - set(drop))


@dataclass
class FactorSetResult:
    """Tests of one factor set in one tissue with their FDR over the complete strata.

    Parameters
    ----------
    tests_df
        Every test of the set: ``snp, gene, beta, t_stat, p_value, class, fdr[, gene_type,
        fdr_by_type], topics``.
    n_tests
        Test counts per class and per ``"<class>:<gene type group>"`` stratum.
    topics
        The factor set's topics.
    qq_df
        Permutation QQ points (schema ``permutation_qq``, pool = class;
        :func:`tbeqtl.association.permutation.qq_table`).
    hist_df
        p-value histogram (schema ``pvalue_hist``, pool = class;
        :func:`tbeqtl.association.histogram.pvalue_histogram`).
    params
        Extra metadata for run.json.
    """

    tests_df: pd.DataFrame
    n_tests: dict
    topics: list
    qq_df: pd.DataFrame
    hist_df: pd.DataFrame
    params: dict = field(default_factory=dict)


def call_column(tests_df: pd.DataFrame) -> str:
    """Return the FDR column that decides a call: ``fdr_by_type`` when present, else ``fdr``.

    Parameters
    ----------
    tests_df
        A tests table.

    Returns
    -------
    str
        Column name.
    """
    return "fdr_by_type" if "fdr_by_type" in tests_df.columns else "fdr"


def restrict_to_factor_set(
    tests_df: pd.DataFrame, null_df: pd.DataFrame, topics: list[int]
) -> FactorSetResult:
    """Select the tests of a factor set and compute BH FDR over its complete strata.

    Parameters
    ----------
    tests_df, null_df
        Output of :func:`map_factor_blocks` (all factors).
    topics
        The factor set's topics.

    Returns
    -------
    FactorSetResult
        The tests with ``fdr`` (per class) and ``fdr_by_type`` (per class x gene-type group), the
        test counts, the QQ and the histogram.
    """
    from ..association.fdr import bh_fdr
    from ..association.result import gene_type_group

    chosen = set(int(t) for t in topics)
    mask = np.array([bool(chosen.intersection(ts)) for ts in tests_df["topics"]], dtype=bool)
    tests = tests_df.loc[mask].copy()
    tests["topics"] = [[t for t in ts if t in chosen] for ts in tests["topics"]]
    n_tests: dict = {}
    tests["fdr"] = np.nan
    has_type = "gene_type" in tests.columns
    if has_type:
        tests["fdr_by_type"] = np.nan
    p_by_class, null_by_class = {}, {}
    keys = set(zip(tests["snp"], tests["gene"], strict=True))
    for klass in ("cis", "trans"):
        in_class = (tests["class"] == klass).to_numpy()
        n_tests[klass] = int(in_class.sum())
        p = tests.loc[in_class, "p_value"].to_numpy(dtype=float)
        if in_class.any():
            tests.loc[in_class, "fdr"] = bh_fdr(p)
            p_by_class[klass] = p
        if has_type:
            groups = np.array([f"{klass}:{gene_type_group(t)}" for t in tests.loc[in_class, "gene_type"]])
            for group in sorted(set(groups)):
                sel = np.flatnonzero(in_class)[groups == group]
                n_tests[group] = len(sel)
                tests.iloc[sel, tests.columns.get_loc("fdr_by_type")] = bh_fdr(
                    tests.iloc[sel]["p_value"].to_numpy(dtype=float))
        if len(null_df) and in_class.any():
            nsel = null_df.loc[(null_df["class"] == klass).to_numpy()]
            nkeep = np.array([(s, g) in keys for s, g in zip(nsel["snp"], nsel["gene"], strict=True)],
                             dtype=bool)
            null_by_class[klass] = nsel.loc[nkeep, "p_value"].to_numpy(dtype=float)
    qq_df = qq_table(p_by_class, null_by_class, max_points=QQ_MAX_POINTS, keep_top=QQ_KEEP_TOP)
    hist_df = pvalue_histogram(p_by_class)
    tests = tests.sort_values(["p_value", "snp", "gene"], ignore_index=True)
    return FactorSetResult(tests, n_tests, sorted(chosen), qq_df, hist_df)


def exhaustive_mapping(
    inputs: TissueInputs, *, cis_dist: float = 1e6, output_pvalue: float = 1.0
) -> FactorSetResult:
    """Test every SNP x gene pair of the inputs (the one-to-one comparison on the same samples).

    Parameters
    ----------
    inputs
        One tissue's association inputs.
    cis_dist
        cis window (bp).
    output_pvalue
        Rows with larger p-values are not kept (the engine's FDR still counts every test).

    Returns
    -------
    FactorSetResult
        Kept tests with the engine's FDR over all tests; no QQ.
    """
    result = _engine(inputs, inputs.genotype_df.index, inputs.expression_df.index, cis_dist=cis_dist,
                     pv=output_pvalue)
    frames = []
    for klass, frame in (("cis", result.cis), ("trans", result.trans)):
        if len(frame):
            cols = [c for c in [*_STAT_COLUMNS, "fdr", "gene_type", "fdr_by_type"] if c in frame.columns]
            frames.append(frame[cols].assign(**{"class": klass}))
    tests = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*_STAT_COLUMNS, "fdr", "class"])
    tests["topics"] = [[] for _ in range(len(tests))]
    n_tests = {str(k): int(v) for k, v in result.n_tests.items()}
    hist = getattr(result, "hist", None)
    hist_df = pvalue_histogram({})
    if isinstance(hist, pd.DataFrame) and {"pool", "bin_lo", "bin_hi", "count"} <= set(hist.columns):
        hist_df = hist[["pool", "bin_lo", "bin_hi", "count"]]
    qq_df = qq_table({}, {})
    tests = tests.sort_values(["p_value", "snp", "gene"], ignore_index=True)
    return FactorSetResult(tests, n_tests, [], qq_df, hist_df)


def write_factor_set(result: FactorSetResult, folder: str | Path, *, output_pvalue: float = 1.0,
                     params: dict | None = None) -> None:
    """Write one factor set's mapping in one tissue: cis.tsv, trans.tsv, qq.tsv, hist.tsv, run.json.

    Parameters
    ----------
    result
        The mapping.
    folder
        ``PairLayout.eqtl(factor_set, tissue)``.
    output_pvalue
        Only tests with p at or below this are written to cis.tsv/trans.tsv.
    params
        Extra entries of run.json.
    """
    folder = Path(folder)
    tests = result.tests_df
    for klass in ("cis", "trans"):
        rows = tests.loc[(tests["class"] == klass) & (tests["p_value"] <= output_pvalue)]
        cols = [c for c in ("snp", "gene", "beta", "t_stat", "p_value", "fdr", "gene_type", "fdr_by_type")
                if c in rows.columns]
        table = rows[cols].reset_index(drop=True)
        write_table(validate_table(table, "eqtl_pairs"), folder / f"{klass}.tsv")
    write_table(validate_table(result.qq_df, "permutation_qq"), folder / "qq.tsv")
    write_table(validate_table(result.hist_df, "pvalue_hist"), folder / "hist.tsv")
    level_col = call_column(tests)
    meta = {
        "n_tests": result.n_tests,
        "topics": result.topics,
        "call_column": level_col,
        **(params or {}),
    }
    write_json(meta, folder / "run.json")
