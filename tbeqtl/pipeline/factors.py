"""What the fitted factors mean: tissue, ancestry, cell type and technical covariates.

Paper (Results) and reference notes section 7:

- **Tissue.** The inner product of a factor's sample proportions ``E[phi_.k]`` with a tissue's 0/1
  indicator (the summed proportion over the tissue's samples); associated when above 40. Because
  this grows with tissue size, a size-normalised score is also given: the factor's mean
  proportion within the tissue divided by its mean over the samples of all other tissues
  (1 = no enrichment; unlike a ratio to the overall mean it is not capped at ``L / L_t`` for a
  large tissue). The
  Kendall tau between tissue sample size and the number of associated factors is reported
  (paper 0.64).
- **Ancestry.** Point-biserial correlation (:func:`scipy.stats.pointbiserialr`) of each shared
  factor at the individual level (``theta``, Eq. 5) and of each private ancestry factor (``tau``)
  with the 0/1 indicator of each reported ancestry group. The paper: median |r| of shared factors
  < 0.01, private factors >= 0.41 with some group.
- **Cell types.** Kendall tau between ``E[phi_lk]`` and a per-sample cell-type enrichment score
  within one tissue; |tau| > 0.5 counts as captured.
- **Technical covariates** (paper: "users may remove all batch-associated factors"). A
  categorical attribute is tested with Kruskal-Wallis across its levels (effect size
  ``epsilon^2 = H / (n - 1)``), a numeric one with Spearman's rho (effect ``rho^2``); BH FDR over
  all tests of the table; flagged when FDR < level and effect >= the minimum effect.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import InputError

__all__ = [
    "ancestry_association",
    "ancestry_summary",
    "cell_type_association",
    "covariate_association",
    "sample_attributes",
    "tissue_factor_association",
    "tissue_size_kendall",
]

logger = logging.getLogger(__name__)


def _topic_matrix(topics_df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    values = topics_df.to_numpy(dtype=float)
    return values, np.arange(values.shape[1], dtype=np.int64)


def _is_constant(values: np.ndarray) -> bool:
    return len(values) < 2 or bool(np.nanmax(values) - np.nanmin(values) <= 1e-12 * max(1.0, np.nanmax(
        np.abs(values))))


def tissue_factor_association(
    sample_topics_df: pd.DataFrame,
    tissue_s: pd.Series,
    *,
    score: str = "inner_product",
    threshold: float = 40.0,
    normalized_threshold: float = 2.0,
) -> pd.DataFrame:
    """Associate each factor with each tissue through its sample proportions.

    Parameters
    ----------
    sample_topics_df
        Samples x K expected proportions ``E[phi_lk]``; topics are numbered by column position.
    tissue_s
        Tissue of each sample (indexed by sample ID; samples without a tissue are ignored).
    score
        ``"inner_product"`` (paper) or ``"normalized"``: which score decides ``associated``.
    threshold
        Inner-product threshold (paper 40).
    normalized_threshold
        Normalised-score threshold.

    Returns
    -------
    pandas.DataFrame
        One row per (topic, tissue): ``topic``, ``tissue``, ``n_samples``, ``inner_product``,
        ``normalized_score``, ``associated`` (schema ``tissue_factors``).
    """
    if score not in ("inner_product", "normalized"):
        raise InputError("tissue score must be inner_product or normalized", ids=[score])
    tissue_s = tissue_s.reindex(sample_topics_df.index)
    known = tissue_s.notna().to_numpy()
    if not known.any():
        raise InputError("no sample of the fit has a tissue label")
    phi, topics = _topic_matrix(sample_topics_df.loc[known])
    tissues = tissue_s[known].astype(str).to_numpy()
    rows = []
    for tissue in sorted(set(tissues)):
        mask = tissues == tissue
        inner = phi[mask].sum(axis=0)
        other = phi[~mask].mean(axis=0) if (~mask).any() else np.full(phi.shape[1], np.nan)
        normalized = np.divide(phi[mask].mean(axis=0), other, out=np.full(phi.shape[1], np.nan),
                               where=other > 0)
        for k in topics:
            rows.append((int(k), tissue, int(mask.sum()), float(inner[k]), float(normalized[k])))
    out = pd.DataFrame(rows, columns=["topic", "tissue", "n_samples", "inner_product", "normalized_score"])
    if score == "inner_product":
        out["associated"] = out["inner_product"] > threshold
    else:
        out["associated"] = out["normalized_score"].fillna(0) > normalized_threshold
    return out


def tissue_size_kendall(association_df: pd.DataFrame) -> dict[str, float]:
    """Kendall tau between tissue sample size and number of associated factors.

    Parameters
    ----------
    association_df
        Output of :func:`tissue_factor_association` (possibly concatenated over runs with an
        extra ``pair`` column; counts are then summed over runs).

    Returns
    -------
    dict
        ``tau``, ``p_value`` (NaN when either vector is constant) and ``n_tissues``.
    """
    per = association_df.groupby("tissue").agg(n_samples=("n_samples", "max"),
                                               n_associated=("associated", "sum"))
    x = per["n_samples"].to_numpy(dtype=float)
    y = per["n_associated"].to_numpy(dtype=float)
    if len(per) < 2 or _is_constant(x) or _is_constant(y):
        return {"tau": float("nan"), "p_value": float("nan"), "n_tissues": len(per)}
    result = stats.kendalltau(x, y)
    return {"tau": float(result.statistic), "p_value": float(result.pvalue), "n_tissues": len(per)}


def ancestry_association(
    individual_topics_df: pd.DataFrame,
    ancestry_s: pd.Series,
    *,
    private_df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Point-biserial correlation of shared (``theta``) and private (``tau``) factors with ancestry.

    Parameters
    ----------
    individual_topics_df
        Individuals x K shared proportions ``theta`` (Eq. 5).
    ancestry_s
        Reported ancestry group of each individual (missing groups ignored).
    private_df
        Individuals x Q private ancestry factors ``tau`` (optional).

    Returns
    -------
    pandas.DataFrame
        ``kind`` ("shared"/"private"), ``factor`` (column position), ``group``, ``n_group``, ``r``,
        ``p_value``: one row per factor and group with at least 2 members and 2 non-members
        (schema ``ancestry_factors``); constant factors get NaN.
    """
    blocks = [("shared", individual_topics_df)]
    if private_df is not None:
        blocks.append(("private", private_df))
    rows = []
    for kind, frame in blocks:
        groups = ancestry_s.reindex(frame.index)
        known = groups.notna().to_numpy()
        values = frame.loc[known].to_numpy(dtype=float)
        labels = groups[known].astype(str).to_numpy()
        for group in sorted(set(labels)):
            indicator = (labels == group).astype(float)
            n_group = int(indicator.sum())
            if n_group < 2 or len(indicator) - n_group < 2:
                continue
            for k in range(values.shape[1]):
                column = values[:, k]
                if _is_constant(column):
                    r, p = float("nan"), float("nan")
                else:
                    result = stats.pointbiserialr(indicator, column)
                    r, p = float(result.statistic), float(result.pvalue)
                rows.append((kind, k, group, n_group, r, p))
    return pd.DataFrame(rows, columns=["kind", "factor", "group", "n_group", "r", "p_value"])


def ancestry_summary(association_df: pd.DataFrame) -> dict[str, float]:
    """Summarise :func:`ancestry_association` as the paper does.

    Parameters
    ----------
    association_df
        Output of :func:`ancestry_association`.

    Returns
    -------
    dict
        ``shared_median_abs_r`` (median |r| over shared factors and groups),
        ``private_min_max_abs_r`` (over private factors, the smallest of each factor's largest
        |r| across groups) and ``private_max_abs_r``.
    """
    shared = association_df.loc[association_df["kind"] == "shared", "r"].abs()
    private = association_df.loc[association_df["kind"] == "private"]
    per_factor = private.assign(abs_r=private["r"].abs()).groupby("factor")["abs_r"].max()
    return {
        "shared_median_abs_r": float(shared.median()) if len(shared) else float("nan"),
        "private_min_max_abs_r": float(per_factor.min()) if len(per_factor) else float("nan"),
        "private_max_abs_r": float(per_factor.max()) if len(per_factor) else float("nan"),
    }


def cell_type_association(
    sample_topics_df: pd.DataFrame,
    cell_scores_df: pd.DataFrame,
    tissue_s: pd.Series,
    *,
    threshold: float = 0.5,
    min_samples: int = 5,
) -> pd.DataFrame:
    """Kendall tau between factor proportions and cell-type scores within each tissue.

    Parameters
    ----------
    sample_topics_df
        Samples x K ``E[phi_lk]``.
    cell_scores_df
        Samples x cell types enrichment scores (NaN where a tissue has no score).
    tissue_s
        Tissue of each sample.
    threshold
        |tau| above which the factor captures the cell type (paper 0.5).
    min_samples
        Tissue-cell type pairs with fewer scored samples are skipped.

    Returns
    -------
    pandas.DataFrame
        ``tissue``, ``cell_type``, ``topic``, ``n_samples``, ``tau``, ``p_value``, ``captured``
        (schema ``cell_type_factors``).
    """
    samples = sample_topics_df.index.intersection(cell_scores_df.index, sort=False)
    tissue_s = tissue_s.reindex(samples)
    phi = sample_topics_df.loc[samples].to_numpy(dtype=float)
    rows = []
    for tissue in sorted(tissue_s.dropna().astype(str).unique()):
        in_tissue = (tissue_s.astype(str) == tissue).to_numpy()
        for cell_type in cell_scores_df.columns:
            scores = cell_scores_df.loc[samples, cell_type].to_numpy(dtype=float)
            mask = in_tissue & ~np.isnan(scores)
            if mask.sum() < min_samples or _is_constant(scores[mask]):
                continue
            for k in range(phi.shape[1]):
                column = phi[mask, k]
                if _is_constant(column):
                    tau, p = float("nan"), float("nan")
                else:
                    result = stats.kendalltau(column, scores[mask])
                    tau, p = float(result.statistic), float(result.pvalue)
                rows.append((tissue, str(cell_type), k, int(mask.sum()), tau, p))
    out = pd.DataFrame(rows, columns=["tissue", "cell_type", "topic", "n_samples", "tau", "p_value"])
    out["captured"] = out["tau"].abs().fillna(0) > threshold
    return out


def sample_attributes(
    samples: pd.Index,
    *,
    columns: list[str],
    sample_info_df: pd.DataFrame,
    individual_info_df: pd.DataFrame,
    sample_map_s: pd.Series,
) -> pd.DataFrame:
    """Collect sample-level values of sample or individual attributes.

    Parameters
    ----------
    samples
        Sample IDs.
    columns
        Attribute names (case-insensitive); looked up in the sample attributes first.
    sample_info_df, individual_info_df, sample_map_s
        As in :class:`tbeqtl.data.EQTLData`.

    Returns
    -------
    pandas.DataFrame
        Samples x found attributes (absent ones are skipped).
    """
    out = {}
    lower_s: dict[str, object] = {}
    lower_i: dict[str, object] = {}
    for lookup, frame in ((lower_s, sample_info_df), (lower_i, individual_info_df)):
        for column in frame.columns:  # the first column of a name wins, whatever its case
            lookup.setdefault(str(column).lower(), column)
    for name in columns:
        key = str(name).lower()
        if key in lower_s:
            values = sample_info_df[lower_s[key]].reindex(samples)
        elif key in lower_i:
            values = individual_info_df[lower_i[key]].reindex(sample_map_s.reindex(samples).to_numpy())
        else:
            continue
        out[name] = pd.Series(values.array, index=samples)  # keeps the column's dtype
    return pd.DataFrame(out, index=samples)


def covariate_association(
    sample_topics_df: pd.DataFrame,
    attributes_df: pd.DataFrame,
    *,
    fdr_level: float = 0.05,
    min_effect: float = 0.1,
) -> pd.DataFrame:
    """Test every factor against technical or demographic covariates and flag the associated ones.

    Parameters
    ----------
    sample_topics_df
        Samples x K ``E[phi_lk]``.
    attributes_df
        Samples x covariates (e.g. platform, batch, sex) from :func:`sample_attributes`.
    fdr_level
        BH FDR (:func:`tbeqtl.association.fdr.bh_fdr` over all the tests of the table) below
        which a test is significant.
    min_effect
        Minimum effect size (Kruskal-Wallis ``epsilon^2`` or Spearman ``rho^2``) to flag.

    Returns
    -------
    pandas.DataFrame
        ``topic``, ``covariate``, ``test`` ("kruskal"/"spearman"), ``statistic``, ``effect``,
        ``p_value``, ``fdr``, ``flagged`` (schema ``covariate_factors``).
    """
    from ..association.fdr import bh_fdr  # the one BH; imported here to keep this module torch-free

    samples = sample_topics_df.index.intersection(attributes_df.index, sort=False)
    phi = sample_topics_df.loc[samples].to_numpy(dtype=float)
    rows = []
    for covariate in attributes_df.columns:
        values = attributes_df.loc[samples, covariate]
        known = values.notna().to_numpy()
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric:
            x = values.to_numpy(dtype=float)[known]
            if _is_constant(x):
                continue
        else:
            labels = values[known].astype(str).to_numpy()
            levels = sorted(set(labels))
            if len(levels) < 2:
                continue
        n = int(known.sum())
        for k in range(phi.shape[1]):
            y = phi[known, k]
            if _is_constant(y):
                continue
            if numeric:
                result = stats.spearmanr(x, y)
                stat, p = float(result.statistic), float(result.pvalue)
                rows.append((k, str(covariate), "spearman", stat, stat ** 2, p))
            else:
                groups = [y[labels == level] for level in levels]
                result = stats.kruskal(*groups)
                stat, p = float(result.statistic), float(result.pvalue)
                rows.append((k, str(covariate), "kruskal", stat, stat / max(n - 1, 1), p))
    out = pd.DataFrame(rows, columns=["topic", "covariate", "test", "statistic", "effect", "p_value"])
    out["fdr"] = bh_fdr(out["p_value"].to_numpy(dtype=float))
    out["flagged"] = (out["fdr"] < fdr_level) & (out["effect"] >= min_effect)
    return out
