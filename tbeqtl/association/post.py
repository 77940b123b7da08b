"""After :func:`~tbeqtl.association.cis.map_cis`: eGene q-values, nominal thresholds, significant pairs.

tensorQTL's ``post.calculate_qvalues`` and ``post.get_significant_pairs``, without R: Storey's
q-values come from :func:`tbeqtl.association.fdr.storey_qvalue` (``qvalue::qvalue``'s pi0
estimate: cubic smoothing spline over lambda = 0.05 ... 0.95, or a fixed lambda).
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..errors import InputError, format_ids
from .cis_inputs import chrom_sort_key
from .fdr import estimate_pi0, storey_qvalue

__all__ = ["calculate_qvalues", "get_significant_pairs", "nominal_pair_files"]

logger = logging.getLogger(__name__)


def calculate_qvalues(
    cis_df: pd.DataFrame, *, fdr: float = 0.05, qvalue_lambda: float | None = None
) -> pd.DataFrame:
    """Add ``qval`` and ``pval_nominal_threshold`` to a :func:`~tbeqtl.association.cis.map_cis` table.

    Parameters
    ----------
    cis_df
        map_cis output (``pval_beta``, ``pval_perm``, ``beta_shape1``, ``beta_shape2``). The
        columns are added to it in place (as tensorQTL does) and it is returned.
    fdr
        FDR level defining the eGenes for the nominal thresholds.
    qvalue_lambda
        A fixed lambda for pi0: ``pi0 = #{p >= lambda} / (m (1 - lambda))``, capped at 1 (R's
        ``qvalue(p, lambda=...)``; tensorQTL's ``--qvalue_lambda``). Default: qvalue's smoother
        (when it gives pi0 <= 0, where R's qvalue stops, pi0 = 1 with a warning).

    Returns
    -------
    pandas.DataFrame
        ``cis_df`` with ``qval`` (Storey q-value of ``pval_beta``: ``pi0`` times the
        Benjamini-Hochberg values) and ``pval_nominal_threshold``.

    Notes
    -----
    tensorQTL's rule: ``p_t`` is the midpoint between the largest ``pval_beta`` with
    ``qval <= fdr`` and the smallest with ``qval > fdr`` (the largest itself when every phenotype
    passes), and each phenotype's threshold is ``Beta_ppf(p_t; beta_shape1, beta_shape2)``. With
    no phenotype at the FDR the threshold column is NaN (tensorQTL leaves it out). Phenotypes
    whose beta approximation failed (NaN ``pval_beta``) get NaN q-values; when every
    ``pval_beta`` is NaN the q-values use ``pval_perm``, as tensorQTL does.
    """
    for col in ("pval_beta", "pval_perm", "beta_shape1", "beta_shape2"):
        if col not in cis_df.columns:
            raise InputError(f"cis_df lacks the map_cis column {col!r}")
    if not 0 < fdr < 1:
        raise InputError(f"fdr must lie in (0, 1), got {fdr}")
    pval_col = "pval_beta" if cis_df["pval_beta"].notna().any() else "pval_perm"
    if pval_col == "pval_perm":
        logger.warning("no beta-approximated p-value: q-values computed from pval_perm")
    p = cis_df[pval_col].to_numpy(dtype=np.float64)
    ok = ~np.isnan(p)
    if not ok.any():
        raise InputError("cis_df has no p-value to compute q-values from")
    if (~ok).any():
        logger.warning(
            "%d phenotype(s) without %s get no q-value: %s",
            int((~ok).sum()),
            pval_col,
            format_ids(cis_df.index[~ok]),
        )
    if qvalue_lambda is None:
        try:
            pi0 = estimate_pi0(p[ok])
        except InputError:  # R's qvalue stops here; BH (pi0 = 1) is the conservative answer
            logger.warning(
                "the smoothed pi0 estimate is <= 0 (%d p-values): using pi0 = 1 (Benjamini-Hochberg); "
                "pass qvalue_lambda for a fixed lambda",
                int(ok.sum()),
            )
            pi0 = 1.0
    else:
        if not 0 <= qvalue_lambda < 1:
            raise InputError(f"qvalue_lambda must lie in [0, 1), got {qvalue_lambda}")
        pi0 = estimate_pi0(p[ok], lambdas=[float(qvalue_lambda)])
    q = np.full(p.size, np.nan)
    q[ok] = storey_qvalue(p[ok], pi0=pi0)
    cis_df["qval"] = q
    n_sig = int((q <= fdr).sum())
    logger.info("q-values: %d phenotypes, pi0 = %.4g, %d at FDR %g", int(ok.sum()), pi0, n_sig, fdr)
    cis_df["pval_nominal_threshold"] = np.nan
    if pval_col == "pval_beta" and n_sig:
        p_t = _min_p_threshold(p, q, fdr)
        logger.info("min p-value threshold at FDR %g: %.6g", fdr, p_t)
        from scipy import stats  # imported where used (0.3 s)

        cis_df["pval_nominal_threshold"] = stats.beta.ppf(
            p_t, cis_df["beta_shape1"].to_numpy(float), cis_df["beta_shape2"].to_numpy(float)
        )
    elif pval_col == "pval_beta":
        logger.warning("no phenotype at FDR %g: pval_nominal_threshold is NaN", fdr)
    return cis_df


def _min_p_threshold(p: np.ndarray, q: np.ndarray, fdr: float) -> float:
    """Midpoint between the largest passing and the smallest failing p-value (tensorQTL)."""
    passing = p[q <= fdr]
    failing = p[q > fdr]
    lb = float(passing.max())
    return (lb + float(failing.min())) / 2 if failing.size else lb


def nominal_pair_files(nominal_prefix_or_files) -> dict[str, Path]:
    """Chromosome -> pair file, from a prefix, a list of files or a mapping.

    Parameters
    ----------
    nominal_prefix_or_files
        The dict :func:`~tbeqtl.association.cis.map_nominal` returns; a list of files; one file;
        or a path prefix: every ``<prefix>*.parquet`` whose name contains ``cis_qtl_pairs``
        (``out/tbeqtl`` or ``out/tbeqtl.cis_qtl_pairs.`` both find ``out/tbeqtl.cis_qtl_pairs.chr1.parquet``).

    Returns
    -------
    dict
        Chromosome (the second-to-last dot-separated part of the name) -> path, in natural
        chromosome order.
    """
    if isinstance(nominal_prefix_or_files, Mapping):
        files = {str(k): Path(v) for k, v in nominal_prefix_or_files.items()}
    else:
        if isinstance(nominal_prefix_or_files, (str, Path)):
            given = Path(nominal_prefix_or_files)
            paths = (
                [given]
                if given.is_file()
                else [
                    Path(f)
                    for f in glob.glob(f"{glob.escape(str(nominal_prefix_or_files))}*.parquet")
                    if "cis_qtl_pairs" in Path(f).name
                ]
            )
        else:
            paths = [Path(f) for f in nominal_prefix_or_files]
        files = {p.name.split(".")[-2]: p for p in paths}
    if not files:
        raise InputError(f"no nominal pair files found for {nominal_prefix_or_files!s}")
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise InputError("nominal pair files not found", ids=missing)
    return {k: files[k] for k in sorted(files, key=chrom_sort_key)}


def get_significant_pairs(
    cis_df: pd.DataFrame, nominal_prefix_or_files, *, fdr: float = 0.05
) -> pd.DataFrame:
    """GTEx significant pairs: nominal pairs of the eGenes below each eGene's nominal threshold.

    Parameters
    ----------
    cis_df
        :func:`calculate_qvalues` output (``qval``, ``pval_nominal_threshold``), indexed by phenotype.
    nominal_prefix_or_files
        The :func:`~tbeqtl.association.cis.map_nominal` files (see :func:`nominal_pair_files`).
    fdr
        eGenes: ``qval <= fdr``.

    Returns
    -------
    pandas.DataFrame
        Schema ``cis_signif_pairs``: the pair columns of every pair with ``pval_nominal <
        pval_nominal_threshold`` of an eGene, plus ``pval_nominal_threshold``,
        ``min_pval_nominal`` (the eGene's top nominal p-value) and ``pval_beta``; chromosomes in
        natural order, each file's row order kept.
    """
    for col in ("qval", "pval_nominal_threshold", "pval_nominal", "pval_beta"):
        if col not in cis_df.columns:
            raise InputError(f"cis_df lacks {col!r}: run calculate_qvalues(cis_df) first")
    genes = cis_df.loc[cis_df["qval"] <= fdr, ["pval_nominal_threshold", "pval_nominal", "pval_beta"]].copy()
    genes.index = pd.Index(genes.index.astype(str), name="phenotype_id")
    genes = genes.rename(columns={"pval_nominal": "min_pval_nominal"})
    files = nominal_pair_files(nominal_prefix_or_files)
    frames = []
    top = float(genes["pval_nominal_threshold"].max()) if len(genes) else -np.inf
    for chrom, path in files.items():
        if "pval_nominal" not in pq.read_schema(path).names:
            raise InputError(
                "no pval_nominal column (interaction pairs have no nominal threshold)", path=path
            )
        if not len(genes):
            continue
        pairs = pq.read_table(path, filters=[("pval_nominal", "<", top)]).to_pandas()
        threshold = pairs["phenotype_id"].map(genes["pval_nominal_threshold"])
        frames.append(pairs[(pairs["pval_nominal"] < threshold).to_numpy()])
        logger.debug("%s: %d significant pairs", chrom, len(frames[-1]))
    if frames:
        out = pd.concat(frames, ignore_index=True)
    else:
        out = pq.read_schema(next(iter(files.values()))).empty_table().to_pandas()
    out = out.merge(genes, left_on="phenotype_id", right_index=True, how="left")
    logger.info("%d significant pairs for %d eGene(s) at FDR %g", len(out), len(genes), fdr)
    return out.reset_index(drop=True)
