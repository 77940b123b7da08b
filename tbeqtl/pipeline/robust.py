"""Robust components: factors that recur across runs sharing a chromosome.

Paper (Extended Methods, "Robust components"): "We computed the correlation of each factor
loading with all other loadings from runs on the same chromosome. Any factor with more than two
loading Kendall tau > 0.15 for SNPs and three Pearson r^2 > 0.95 for genes was flagged - along with
the highly correlated factors - as a robust component. For each robust component, we averaged the
constituent loadings to produce a representative factor loading. All components whose
representative loadings exceeded r^2 > 0.95 were further collapsed into a single robust
component."

Rules used here (all thresholds configurable, :class:`~tbeqtl.pipeline.config.RobustConfig`):

- SNP loadings are the residuals of ``E[lambda_jk]`` after an OLS regression on the coded MAF
  (``mean(y_j) / 2``, with an intercept), compared by Kendall's tau-b; gene loadings are the
  expected ``E[psi_kg]``, compared by Pearson r^2. Only factors of *different* runs are compared,
  on the features the runs share.
- A factor is flagged when it has at least ``min_partners`` partners above the threshold (SNPs:
  3, i.e. "more than two"; genes: 3).
- Every flagged factor is linked to its partners; the connected components of these links are
  the clusters, and each cluster's representative is the mean of its members' loadings.
- Representatives with Pearson r^2 above ``merge_r2`` are merged (transitively) and the merged
  representative is the mean over all their members.

Robust tissue sets (Extended Methods, "Tissue-associated genes/SNPs"):

- genes: top-ranked in at least one factor associated with the tissue, across all runs;
- SNPs: for each top-ranked SNP the number of tissue-associated factors (across runs) it is
  top-ranked in; SNPs at or above the ``percentile``-th percentile (75) of that count among the
  tissue's SNPs (with count >= 1) form the set.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError
from ..logs import progress
from ..tblda.ranking import coded_allele_frequency, snp_maf_residuals

__all__ = [
    "loading_partners",
    "maf_residuals",
    "robust_components",
    "robust_tissue_gene_sets",
    "robust_tissue_snp_sets",
]

logger = logging.getLogger(__name__)


def maf_residuals(snp_topics_df: pd.DataFrame, genotype_df: pd.DataFrame) -> pd.DataFrame:
    """Residuals of each SNP loading ``E[lambda_.k]`` after regressing out the coded MAF.

    Parameters
    ----------
    snp_topics_df
        SNPs x K expected loadings ``E[lambda_jk]``.
    genotype_df
        SNPs x individuals dosages (NaN = missing); the coded MAF is ``mean(y_j) / 2``.

    Returns
    -------
    pandas.DataFrame
        SNPs x K residuals, same labels: :func:`tbeqtl.tblda.ranking.snp_maf_residuals`, the
        ranking's own computation, with the frequencies of ``genotype_df``.

    Raises
    ------
    InputError
        Loadings for SNPs absent from ``genotype_df`` or without any called genotype.
    """
    missing = snp_topics_df.index.difference(genotype_df.index, sort=False)
    if len(missing):
        raise InputError("SNP loadings for SNPs without genotypes", ids=missing)
    maf_s = coded_allele_frequency(genotype_df.loc[snp_topics_df.index])
    return snp_maf_residuals(snp_topics_df, maf_s)


def _similarity(a: np.ndarray, b: np.ndarray, method: str) -> float:
    if np.ptp(a) <= 1e-15 or np.ptp(b) <= 1e-15:
        return float("nan")
    if method == "kendall":
        return float(stats.kendalltau(a, b).statistic)
    r = float(np.corrcoef(a, b)[0, 1])
    return r * r


def loading_partners(
    loadings: dict[str, pd.DataFrame], *, method: str, threshold: float
) -> pd.DataFrame:
    """Similarity of every pair of factors from different runs, kept when above a threshold.

    Parameters
    ----------
    loadings
        Run name -> features x K loadings (SNP MAF residuals or gene ``E[psi]``) of runs that
        share a chromosome.
    method
        ``"kendall"`` (Kendall tau-b) or ``"r2"`` (squared Pearson correlation).
    threshold
        Keep pairs with similarity strictly above this.

    Returns
    -------
    pandas.DataFrame
        ``run_a``, ``topic_a``, ``run_b``, ``topic_b``, ``similarity`` (both directions listed).
    """
    if method not in ("kendall", "r2"):
        raise InputError("similarity must be kendall or r2", ids=[method])
    runs = sorted(loadings)
    rows = []
    pairs = list(itertools.combinations(runs, 2))
    for run_a, run_b in progress(pairs, desc=f"robust {method}", total=len(pairs)):
        common = loadings[run_a].index.intersection(loadings[run_b].index, sort=False).sort_values()
        if len(common) < 3:
            continue
        a = loadings[run_a].loc[common].to_numpy(dtype=float)
        b = loadings[run_b].loc[common].to_numpy(dtype=float)
        for i in range(a.shape[1]):
            for j in range(b.shape[1]):
                sim = _similarity(a[:, i], b[:, j], method)
                if np.isfinite(sim) and sim > threshold:
                    rows.append((run_a, i, run_b, j, sim))
                    rows.append((run_b, j, run_a, i, sim))
    return pd.DataFrame(rows, columns=["run_a", "topic_a", "run_b", "topic_b", "similarity"])


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _mean_loading(loadings: dict[str, pd.DataFrame], members: list[tuple[str, int]]) -> pd.Series:
    cols = [loadings[run].iloc[:, topic] for run, topic in members]
    return pd.concat(cols, axis=1).mean(axis=1)


def robust_components(
    loadings: dict[str, pd.DataFrame],
    *,
    method: str,
    threshold: float,
    min_partners: int,
    merge_r2: float = 0.95,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flag, cluster, average and merge factors that recur across runs sharing a chromosome.

    Parameters
    ----------
    loadings
        Run name -> features x K loadings of the runs sharing one chromosome.
    method
        ``"kendall"`` for SNP MAF residuals, ``"r2"`` for gene ``E[psi]``.
    threshold
        Partner threshold (Kendall tau 0.15 or r^2 0.95 in the paper).
    min_partners
        A factor with at least this many partners is flagged (paper: 3).
    merge_r2
        Representatives with r^2 above this are merged (paper 0.95).

    Returns
    -------
    members_df : pandas.DataFrame
        ``component``, ``run``, ``topic``, ``flagged``, ``n_partners``: one row per factor in a
        robust component (schema ``robust_members`` without ``kind``/``chrom``).
    representatives_df : pandas.DataFrame
        Features x components: the representative (mean) loadings.
    """
    edges = loading_partners(loadings, method=method, threshold=threshold)
    n_partners = edges.groupby(["run_a", "topic_a"]).size() if len(edges) else pd.Series(dtype=int)
    flagged = {key for key, n in n_partners.items() if n >= min_partners}
    clusters = _UnionFind()
    for key in sorted(flagged):
        clusters.find(key)
    for row in edges.itertuples(index=False):
        a, b = (row.run_a, row.topic_a), (row.run_b, row.topic_b)
        if a in flagged:
            clusters.union(a, b)
    groups: dict = {}
    for key in list(clusters.parent):
        groups.setdefault(clusters.find(key), []).append(key)
    clusters_list = sorted(sorted(g) for g in groups.values())
    reps = [_mean_loading(loadings, members) for members in clusters_list]
    merge = _UnionFind()
    for i in range(len(reps)):
        merge.find(i)
    for i, j in itertools.combinations(range(len(reps)), 2):
        common = reps[i].index.intersection(reps[j].index, sort=False)
        if len(common) >= 3 and _similarity(reps[i][common].to_numpy(), reps[j][common].to_numpy(),
                                            "r2") > merge_r2:
            merge.union(i, j)
    merged: dict[int, list] = {}
    for i, members in enumerate(clusters_list):
        merged.setdefault(merge.find(i), []).extend(members)
    final = sorted(sorted(m) for m in merged.values())
    rows = []
    rep_cols = {}
    for component, members in enumerate(final):
        for run, topic in members:
            rows.append((component, run, int(topic), (run, topic) in flagged,
                         int(n_partners.get((run, topic), 0))))
        rep_cols[component] = _mean_loading(loadings, members)
    members_df = pd.DataFrame(rows, columns=["component", "run", "topic", "flagged", "n_partners"])
    representatives_df = pd.DataFrame(rep_cols)
    logger.info("robust %s: %d flagged factors in %d components (%d before merging)", method, len(flagged),
                len(final), len(clusters_list))
    return members_df, representatives_df


def _top_in_tissue(ranking_df: pd.DataFrame, tissue_df: pd.DataFrame, kind: str) -> pd.DataFrame:
    assoc = tissue_df.loc[tissue_df["associated"].astype(bool), ["pair", "topic", "tissue"]]
    top = ranking_df.loc[ranking_df["kind"] == kind, ["pair", "topic", "feature"]]
    return top.merge(assoc, on=["pair", "topic"], how="inner")


def robust_tissue_gene_sets(ranking_df: pd.DataFrame, tissue_df: pd.DataFrame) -> pd.DataFrame:
    """Genes top-ranked in at least one tissue-associated factor across runs.

    Parameters
    ----------
    ranking_df
        Top-ranked features of every run: ``pair``, ``topic``, ``feature``, ``kind``.
    tissue_df
        Tissue-factor associations of every run: ``pair``, ``topic``, ``tissue``, ``associated``.

    Returns
    -------
    pandas.DataFrame
        ``tissue``, ``feature``, ``n_factors`` (tissue-associated factors the gene is top in),
        ``threshold`` (1) (schema ``robust_tissue_sets`` with ``kind`` "gene").
    """
    hits = _top_in_tissue(ranking_df, tissue_df, "gene")
    out = hits.groupby(["tissue", "feature"]).size().rename("n_factors").reset_index()
    out["threshold"] = 1.0
    return out.sort_values(["tissue", "feature"], ignore_index=True)


def robust_tissue_snp_sets(
    ranking_df: pd.DataFrame, tissue_df: pd.DataFrame, *, percentile: float = 75.0
) -> pd.DataFrame:
    """SNPs top-ranked in at least the ``percentile``-th percentile of tissue-associated factors.

    Parameters
    ----------
    ranking_df, tissue_df
        As in :func:`robust_tissue_gene_sets`.
    percentile
        Percentile of the per-SNP counts (among the tissue's SNPs with count >= 1) a SNP must reach.

    Returns
    -------
    pandas.DataFrame
        ``tissue``, ``feature``, ``n_factors``, ``threshold`` (the tissue's percentile value).
    """
    hits = _top_in_tissue(ranking_df, tissue_df, "snp")
    counts = hits.groupby(["tissue", "feature"]).size().rename("n_factors").reset_index()
    parts = []
    for _tissue, group in counts.groupby("tissue"):
        cut = float(np.percentile(group["n_factors"].to_numpy(dtype=float), percentile))
        parts.append(group.loc[group["n_factors"] >= cut].assign(threshold=cut))
    if not parts:
        return pd.DataFrame({"tissue": pd.Series(dtype=str), "feature": pd.Series(dtype=str),
                             "n_factors": pd.Series(dtype=np.int64), "threshold": pd.Series(dtype=float)})
    return pd.concat(parts).sort_values(["tissue", "feature"], ignore_index=True)
