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
from ..atomic import write_json, write_rows_tsv, write_table
from ..errors import InputError
from ..schema import validate_table
from .covariates import inverse_normal_transform, tissue_covariates

__all__ = [
    "FactorSetResult",
    "TissueInputs",
    "call_column",
    "exhaustive_mapping",
    "factor_blocks",
    "iter_factor_sets",
    "factor_set_topics",
    "map_factor_blocks",
    "prepare_tissue_inputs",
    "restrict_to_factor_set",
    "shared_topic_lists",
    "write_factor_set",
]

logger = logging.getLogger(__name__)

_STAT_COLUMNS = ["snp", "gene", "beta", "t_stat", "p_value"]
#: class names indexed by "is cis" (one shared string object per class in object columns)
_CLASS_NAMES = np.array(["trans", "cis"], dtype=object)

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
            expression_df: pd.DataFrame | None = None, covariates_df: pd.DataFrame | None = None,
            gene_types: bool = True):
    from ..association import map_eqtls

    expression_df = inputs.expression_df if expression_df is None else expression_df
    covariates_df = inputs.covariates_df if covariates_df is None else covariates_df
    kwargs = {}
    if gene_types and inputs.gene_types_s is not None:
        kwargs["gene_types"] = inputs.gene_types_s.loc[genes]
    return map_eqtls(
        inputs.genotype_df.loc[snps], expression_df.loc[genes],
        covariates_df if covariates_df.shape[0] else None,
        snp_pos_df=None if inputs.snp_pos_df is None else inputs.snp_pos_df.loc[snps],
        gene_pos_df=None if inputs.gene_pos_df is None else inputs.gene_pos_df.loc[genes],
        model="linear", cis_dist=cis_dist, pv_cis=pv, pv_trans=pv, collinear="drop", show_progress=False,
        **kwargs,
    )


def _sorted_codes(values) -> tuple[np.ndarray, np.ndarray]:
    """Codes of IDs numbered in sorted-ID order (so codes sort as the IDs do), and the sorted IDs."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=True, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques, dtype=object)


def _pvalue_order(p: np.ndarray, snps, genes) -> np.ndarray:
    """Row order of ``sort_values(["p_value", "snp", "gene"])``, computed on integer codes."""
    snp_codes, _ = _sorted_codes(snps)
    gene_codes, _ = _sorted_codes(genes)
    return np.lexsort((gene_codes, snp_codes, np.asarray(p, dtype=float)))


def _masks_to_lists(masks: np.ndarray) -> np.ndarray:
    """Object array of sorted topic lists from bit masks (n x words, topic = 64 * word + bit).

    Rows with the same mask share one list object (never mutated downstream).
    """
    if not len(masks):
        return np.empty(0, dtype=object)
    if masks.shape[1] == 1:  # up to 64 topics: hash the words
        inverse, unique = pd.factorize(masks[:, 0])
        unique = unique.reshape(-1, 1)
    else:
        unique, inverse = np.unique(masks, axis=0, return_inverse=True)
    lists = np.empty(len(unique), dtype=object)
    for i, row in enumerate(unique):
        lists[i] = [64 * w + b for w, word in enumerate(row.tolist()) for b in range(64) if (word >> b) & 1]
    return lists[inverse.reshape(-1)]


def shared_topic_lists(topics_s: pd.Series) -> tuple[list, np.ndarray]:
    """Group a column of topic lists by list object: the distinct lists and each row's index into them.

    Rows of one block share one list object, so grouping by object identity decodes each list
    once (millions of rows, a few thousand lists) without hashing list contents.

    Returns
    -------
    (lists, inverse)
        The distinct lists (in order of first appearance) and, per row, its list's position.
    """
    values = topics_s.to_numpy(dtype=object)
    inverse, _ = pd.factorize(np.fromiter(map(id, values), dtype=np.int64, count=len(values)))
    first = np.unique(inverse, return_index=True)[1]
    return [values[i] for i in first], inverse


def _lists_to_masks(topics_s: pd.Series) -> np.ndarray:
    """Bit masks (n x words, uint64) of a column of topic lists; a list shared by rows is decoded once."""
    lists, inverse = shared_topic_lists(topics_s)
    unique = [[int(t) for t in ts] for ts in lists]
    if any(t < 0 for ts in unique for t in ts):
        bad = sorted({t for ts in unique for t in ts if t < 0})
        raise InputError("topics must be non-negative integers", ids=bad)
    n_words = max((max(ts) for ts in unique if ts), default=0) // 64 + 1
    masks = np.zeros((len(unique), n_words), dtype=np.uint64)
    for i, ts in enumerate(unique):
        for t in ts:
            masks[i, t // 64] |= np.uint64(1) << np.uint64(t % 64)
    return masks[inverse]


def _topic_mask(topics, n_words: int) -> np.ndarray:
    """Bit mask (words) of a set of topics; topics beyond ``n_words`` words are left out."""
    mask = np.zeros(n_words, dtype=np.uint64)
    for t in topics:
        if 0 <= int(t) < 64 * n_words:
            mask[int(t) // 64] |= np.uint64(1) << np.uint64(int(t) % 64)
    return mask


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
                 covariates_df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Every distinct SNP-gene test of the factor blocks, sorted by (snp, gene), and its topic bit masks.

    Each block is tested by its own engine call; a pair proposed by several topics is tested once
    per block and kept once (the row of its lowest topic), with the bits of all its topics
    (``masks[i, t // 64]`` has bit ``t % 64``). Pairs are keyed by integer codes of the IDs
    numbered in sorted-ID order, so sorting the keys sorts by (snp, gene).
    """
    if min(blocks) < 0:
        raise InputError("topics must be non-negative integers", ids=[t for t in blocks if t < 0])
    snp_ids = pd.Index(sorted({str(s) for snps, _ in blocks.values() for s in snps}))
    gene_ids = pd.Index(sorted({str(g) for _, genes in blocks.values() for g in genes}))
    parts = []
    for snps, genes in blocks.values():
        frame = _all_tests(_engine(inputs, snps, genes, cis_dist=cis_dist, pv=1.0, gene_types=False,
                                   expression_df=expression_df, covariates_df=covariates_df))
        if len(frame) != len(snps) * len(genes):  # pragma: no cover
            raise RuntimeError("the association engine did not return every requested test")
        parts.append({
            "key": snp_ids.get_indexer(frame["snp"]).astype(np.int64) * len(gene_ids)
            + gene_ids.get_indexer(frame["gene"]),
            **{c: frame[c].to_numpy(float) for c in ("beta", "t_stat", "p_value")},
            "cis": (frame["class"] == "cis").to_numpy(),
        })
    sizes = [len(part["key"]) for part in parts]
    key = np.concatenate([part.pop("key") for part in parts])
    rows, masks = _first_rows_and_masks(key, sizes, list(blocks))
    pair_key = key[rows]
    del key
    columns = {"snp": snp_ids.to_numpy(dtype=object)[pair_key // len(gene_ids)],
               "gene": gene_ids.to_numpy(dtype=object)[pair_key % len(gene_ids)]}
    for name in ("beta", "t_stat", "p_value", "cis"):  # one column at a time, freeing the blocks' arrays
        columns[name] = np.concatenate([part.pop(name) for part in parts])[rows]
    columns["class"] = _CLASS_NAMES[columns.pop("cis").astype(np.intp)]
    return pd.DataFrame(columns, copy=False), masks


def _first_rows_and_masks(key: np.ndarray, sizes: list[int], topics: list[int]) -> tuple[np.ndarray,
                                                                                          np.ndarray]:
    """Return the row kept for each pair (its lowest topic's, in key order) and the pairs' topic bit masks.

    ``key`` is the blocks' concatenated pair keys (``sizes`` rows per block, block ``i`` proposed
    by ``topics[i]``); ``masks[i, t // 64]`` has bit ``t % 64``.
    """
    block = np.repeat(np.arange(len(sizes), dtype=np.min_scalar_type(len(sizes))), sizes)
    order = np.argsort(key * len(sizes) + block)  # distinct values: a pair's first row is its lowest topic's
    topic_sorted = np.asarray(topics, dtype=np.int64)[block[order]]
    del block
    key_sorted = key[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = key_sorted[1:] != key_sorted[:-1]
    del key_sorted
    pair_sorted = np.cumsum(first) - 1
    masks = np.zeros((int(first.sum()), int(max(topics)) // 64 + 1), dtype=np.uint64)
    for word in range(masks.shape[1]):
        sel = topic_sorted // 64 == word
        bits = np.left_shift(np.uint64(1), (topic_sorted[sel] % 64).astype(np.uint64))
        np.bitwise_or.at(masks[:, word], pair_sorted[sel], bits)
    return order[first], masks


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
    tests, masks = _block_tests(inputs, blocks, cis_dist=cis_dist)
    tests["topics"] = _masks_to_lists(masks)
    del masks
    if inputs.gene_types_s is not None:
        gene_codes, genes = pd.factorize(tests["gene"].to_numpy(dtype=object))
        tests["gene_type"] = inputs.gene_types_s.reindex(genes).to_numpy()[gene_codes]
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
    return next(iter_factor_sets(tests_df, null_df, [topics]))


@dataclass(frozen=True)
class _TestIndex:
    """What every factor set of one tissue shares: topic masks, classes, type groups, orders, null keys."""

    masks: np.ndarray  # n x words, uint64 topic bits
    p: np.ndarray
    in_class: dict  # class -> bool per test
    groups: np.ndarray | None  # gene-type group code per test
    group_names: list
    order: np.ndarray  # sort_values(["p_value", "snp", "gene"]) of all tests
    key: np.ndarray  # pair key per test (snp code x gene code)
    null_key: np.ndarray  # pair key per null row (-1: pair not among the tests)
    null_in_class: dict
    null_p: np.ndarray


def _index_tests(tests_df: pd.DataFrame, null_df: pd.DataFrame) -> _TestIndex:
    from ..association.result import gene_type_group

    klass = tests_df["class"].to_numpy(dtype=object)
    groups, group_names = None, []
    if "gene_type" in tests_df.columns:
        groups, types = pd.factorize(tests_df["gene_type"].to_numpy(dtype=object), use_na_sentinel=False)
        group_names = sorted({gene_type_group(t) for t in types})
        groups = np.array([group_names.index(gene_type_group(t)) for t in types], dtype=np.int64)[groups]
    snp_codes, snps = _sorted_codes(tests_df["snp"])
    gene_codes, genes = _sorted_codes(tests_df["gene"])
    p = tests_df["p_value"].to_numpy(dtype=float)
    key = snp_codes * max(len(genes), 1) + gene_codes
    null_snp = pd.Index(snps).get_indexer(null_df["snp"].to_numpy(dtype=object)) if len(null_df) else []
    null_gene = pd.Index(genes).get_indexer(null_df["gene"].to_numpy(dtype=object)) if len(null_df) else []
    null_snp, null_gene = np.asarray(null_snp, dtype=np.int64), np.asarray(null_gene, dtype=np.int64)
    null_key = np.where((null_snp >= 0) & (null_gene >= 0), null_snp.astype(np.int64) * max(len(genes), 1)
                        + null_gene, -1)
    null_class = null_df["class"].to_numpy(dtype=object) if len(null_df) else np.empty(0, dtype=object)
    return _TestIndex(
        masks=_lists_to_masks(tests_df["topics"]), p=p,
        in_class={c: klass == c for c in ("cis", "trans")}, groups=groups, group_names=group_names,
        order=np.lexsort((gene_codes, snp_codes, p)), key=key, null_key=null_key,
        null_in_class={c: null_class == c for c in ("cis", "trans")},
        null_p=null_df["p_value"].to_numpy(dtype=float) if len(null_df) else np.empty(0))


def iter_factor_sets(tests_df: pd.DataFrame, null_df: pd.DataFrame, topic_sets: list[list[int]]):
    """Restrict the tests to each factor set in turn (:func:`restrict_to_factor_set`, sharing the work).

    Parameters
    ----------
    tests_df, null_df
        Output of :func:`map_factor_blocks` (all factors).
    topic_sets
        The factor sets' topics.

    Yields
    ------
    FactorSetResult
        One per factor set, in the given order (each is computed when asked for).
    """
    index = _index_tests(tests_df, null_df)
    for topics in topic_sets:
        yield _restrict(tests_df, index, topics)


def _restrict(tests_df: pd.DataFrame, index: _TestIndex, topics) -> FactorSetResult:
    from ..association.fdr import bh_fdr

    chosen = sorted({int(t) for t in topics})
    chosen_mask = _topic_mask(chosen, index.masks.shape[1])
    member = (index.masks & chosen_mask).any(axis=1)
    rows = index.order[member[index.order]]  # the set's tests sorted by (p, snp, gene)
    p = index.p[rows]
    has_type = index.groups is not None
    fdr = np.full(len(rows), np.nan)
    fdr_by_type = np.full(len(rows), np.nan) if has_type else None
    n_tests: dict = {}
    p_by_class, null_by_class = {}, {}
    null_member = np.isin(index.null_key, index.key[member]) if len(index.null_key) else index.null_key >= 0
    for klass in ("cis", "trans"):
        in_class = index.in_class[klass][rows]
        n_tests[klass] = int(in_class.sum())
        if in_class.any():  # p is ascending here, so BH's sorts are cheap (values do not depend on order)
            p_by_class[klass] = p[in_class]
            fdr[in_class] = bh_fdr(p_by_class[klass])
            if len(index.null_key):
                null_by_class[klass] = index.null_p[null_member & index.null_in_class[klass]]
        if has_type:
            groups = index.groups[rows]
            for code, name in enumerate(index.group_names):  # sorted names: "<class>:<group>" order
                sel = in_class & (groups == code)
                if sel.any():
                    n_tests[f"{klass}:{name}"] = int(sel.sum())
                    fdr_by_type[sel] = bh_fdr(p[sel])
    qq_df = qq_table(p_by_class, null_by_class, max_points=QQ_MAX_POINTS, keep_top=QQ_KEEP_TOP)
    hist_df = pvalue_histogram(p_by_class)
    tests = tests_df.iloc[rows].reset_index(drop=True)
    tests["topics"] = _masks_to_lists(index.masks[rows] & chosen_mask) if len(rows) else []  # [] as before
    tests["fdr"] = fdr
    if has_type:
        tests["fdr_by_type"] = fdr_by_type
    return FactorSetResult(tests, n_tests, chosen, qq_df, hist_df)


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
    n_tests = {str(k): int(v) for k, v in result.n_tests.items()}
    hist = getattr(result, "hist", None)
    hist_df = pvalue_histogram({})
    if isinstance(hist, pd.DataFrame) and {"pool", "bin_lo", "bin_hi", "count"} <= set(hist.columns):
        hist_df = hist[["pool", "bin_lo", "bin_hi", "count"]]
    frames = [(klass, frame) for klass, frame in (("cis", result.cis), ("trans", result.trans)) if len(frame)]
    del result
    tests = _sorted_engine_rows(frames)
    del frames
    return FactorSetResult(tests, n_tests, [], qq_table({}, {}), hist_df)


def _sorted_engine_rows(frames: list[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Return the engine's kept rows of every class, sorted by (p_value, snp, gene), without topics.

    The same table as concatenating the classes' frames (cis first) and sorting with
    ``sort_values(["p_value", "snp", "gene"])``, built one column at a time with the order computed
    on integer codes of the IDs.
    """
    if not frames:
        tests = pd.DataFrame(columns=[*_STAT_COLUMNS, "fdr", "class"])
        tests["topics"] = [[] for _ in range(len(tests))]
        return tests
    cols = [c for c in [*_STAT_COLUMNS, "fdr", "gene_type", "fdr_by_type"] if c in frames[0][1].columns]

    def column(name: str) -> np.ndarray:
        return np.concatenate([frame[name].to_numpy() for _, frame in frames])

    order = _pvalue_order(column("p_value"), column("snp"), column("gene"))
    tests = pd.DataFrame({c: column(c)[order] for c in cols})
    names = np.array([klass for klass, _ in frames], dtype=object)
    tests["class"] = names[np.repeat(np.arange(len(frames)), [len(frame) for _, frame in frames])[order]]
    no_topics = np.empty(len(tests), dtype=object)
    no_topics.fill([])  # one shared empty list: the exhaustive mapping has no proposing topics
    tests["topics"] = no_topics
    return tests


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
    cols = [c for c in ("snp", "gene", "beta", "t_stat", "p_value", "fdr", "gene_type", "fdr_by_type")
            if c in tests.columns]
    for klass in ("cis", "trans"):
        rows = np.flatnonzero(((tests["class"] == klass) & (tests["p_value"] <= output_pvalue)).to_numpy())
        head = validate_table(tests.iloc[rows[:1]][cols].reset_index(drop=True), "eqtl_pairs")
        write_rows_tsv(tests, rows, folder / f"{klass}.tsv", columns=list(head.columns))
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
