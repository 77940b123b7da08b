"""Permutation cis mapping of genotype x interaction effects, with the beta approximation.

tensorQTL has no interaction permutations (its maintainer, issue #28); tbeqtl defines them as
follows (:func:`map_cis_interaction`).

Statistic. For a phenotype ``y`` and interaction term ``i_j``, every variant ``g`` of the cis
window is fitted by the full interaction model of :mod:`tbeqtl.association.interaction`,
``y ~ 1 + C + g + i_1..i_m + g:i_1..g:i_m`` (``dof = n - 2 - k - 2m``), and ``t_gj`` is the t
statistic of ``g:i_j``. The phenotype's statistic for term ``j`` is ``T_j = max_g t_gj^2`` over the
variants passing tensorQTL's interaction MAF rule (:func:`~.interaction.interaction_maf_mask`);
each term gets its own row and its own null.

Null. ``e``, the residuals of ``y`` on ``[1, C, i_1..i_m]``, is permuted with the run's one
permutation set (drawn over the samples sorted by ID, as :func:`~.cis.map_cis` does); for each
permutation ``pi`` every variant's ``t_gj`` is recomputed with ``e_pi`` as the phenotype and
``T_j(pi) = max_g t_gj(pi)^2``. Rationale: under normal errors and no interaction, each ``t_gj``
has an exact t distribution whether or not ``g`` (or any other column of the model) has an effect,
because the main effects are in the model; so the distribution of the window maximum depends on
the design only, and permuting the residuals of the model without any genotype gives it
approximately (the genotype main effect left in ``e`` only rescales it, and ``t`` is
scale-free). tensorQTL's ``map_cis`` makes the same exchangeability assumption for its covariates
(it permutes the raw phenotype and residualises on the unpermuted covariates).

Then, as ``map_cis``: ``pval_perm = (#{T_j(pi) >= T_j} + 1) / (nperm + 1)``; the beta
approximation (:func:`~.permutation.beta_approximated_pvalue`) of the maxima written as
``r^2 = t^2 / (t^2 + dof)`` (the two-sided t p-value with ``dof`` degrees of freedom is
``I_{1 - r^2}(dof/2, 1/2)``), giving ``true_df``, ``beta_shape1/2``, ``pval_true_df`` and
``pval_beta``; :func:`interaction_qvalues` adds Storey q-values and ``pval_nominal_threshold``
within each term (a threshold on the pairs' ``pval_gi``).

Computation. Per permutation, ``t_gj`` needs only the coordinates ``c = Q_g^T y*`` of the permuted
residual ``y*`` (re-residualised on ``[1, C, i]``) on the orthonormalised genotype and product
columns ``Q_g`` of the variant (prepared once per chromosome block,
:meth:`~.interaction.InteractionModel.prepare`): with ``R^-1`` the inverse triangular factor,
``b_gj = R^-1[gj, g..] c``, ``rss = ||y*||^2 - ||c||^2`` and ``t = b / (sqrt(rss / dof) ||R^-1[gj]||)``.
The coordinates of a block of variants against all permutations are one float64 matrix product.
``rss`` by subtraction has relative error below ``~4 n eps ||y*||^2 / rss``; pairs with
``rss < 1e-3 ||y*||^2`` (not seen in practice under permutation: ``Q_g`` has 1 + m columns) are
recomputed with the explicit residual, so every ``t^2`` is within ``4e3 n eps`` relative of the
exact value (2e-10 at n = 445; the tests compare with a refitting loop at 1e-9).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..errors import InputError, format_ids
from ..schema import validate_table
from .cis import _check_common, _check_nperm, _variant_filter, _window
from .cis_inputs import CisInputs, Ticker, prepare_cis
from .cis_kernels import load_chromosome
from .interaction import InteractionDesign, InteractionModel, interaction_maf_mask
from .permutation import beta_approximated_pvalue, canonical_permutations

__all__ = ["INTERACTION_PERM_COLUMNS", "interaction_qvalues", "map_cis_interaction"]

logger = logging.getLogger(__name__)

#: map_cis_interaction output columns (index ``phenotype_id``), before the q-values.
INTERACTION_PERM_COLUMNS = [
    "num_var",
    "beta_shape1",
    "beta_shape2",
    "true_df",
    "pval_true_df",
    "variant_id",
    "start_distance",
    "af",
    "ma_samples",
    "ma_count",
    "interaction",
    "b_g",
    "b_g_se",
    "pval_g",
    "b_i",
    "b_i_se",
    "pval_i",
    "b_gi",
    "b_gi_se",
    "pval_gi",
    "pval_perm",
    "pval_beta",
]
_INT_COLUMNS = ("num_var", "start_distance", "ma_samples", "ma_count")
_STAT_COLUMNS = ("b_g", "b_g_se", "pval_g", "b_i", "b_i_se", "pval_i", "b_gi", "b_gi_se", "pval_gi")
#: Tested variants per prepared design block (shared by the windows over it).
DESIGN_BLOCK = 1024
#: Bytes of one block of permutation coordinates (variants x (1+m) x permutations, float64).
PRODUCT_BYTES = 8 << 20
#: ``rss < RSS_EXACT ||y*||^2``: recompute the pair with the explicit residual.
RSS_EXACT = 1e-3


class _DesignCache:
    """Prepared interaction designs of a chromosome's tested variants, in blocks, released leftwards."""

    def __init__(self, chromg, tested: np.ndarray, model: InteractionModel, *, block: int = DESIGN_BLOCK):
        self.chromg, self.tested, self.model, self.block = chromg, tested, model, block
        self._blocks: dict[int, InteractionDesign] = {}

    def _get(self, k: int) -> InteractionDesign:
        if k not in self._blocks:
            rows = self.tested[k * self.block : (k + 1) * self.block]
            self._blocks[k] = self.model.prepare(self.chromg.rows64(rows))
        return self._blocks[k]

    def release(self, first_kept: int) -> None:
        """Forget the blocks that end before tested variant number ``first_kept``."""
        for k in [k for k in self._blocks if (k + 1) * self.block <= first_kept]:
            del self._blocks[k]

    def pieces(self, a: int, b: int):
        """Yield the designs of tested variants ``a:b`` (positions in ``tested``), block by block."""
        pos = a
        while pos < b:
            k = pos // self.block
            lo, hi = pos - k * self.block, min(b, (k + 1) * self.block) - k * self.block
            yield self._get(k).subset(slice(lo, hi))
            pos += hi - lo


def _tested_rows(chromg, model, *, maf_threshold, mac_threshold, maf_threshold_interaction) -> np.ndarray:
    """Chromosome rows tested in interaction mode: testable, variant filters, interaction MAF rule."""
    keep = np.flatnonzero(
        chromg.testable & _variant_filter(chromg, maf_threshold=maf_threshold, mac_threshold=mac_threshold)
    )
    ok = np.zeros(keep.size, dtype=bool)
    for a in range(0, keep.size, 8192):
        ok[a : a + 8192] = interaction_maf_mask(
            chromg.rows64(keep[a : a + 8192]), model.terms, threshold=maf_threshold_interaction
        )
    if (~ok).any():
        logger.info(
            "%s: %d of %d variants fail the interaction MAF rule (threshold %g)",
            chromg.chrom,
            int((~ok).sum()),
            keep.size,
            maf_threshold_interaction,
        )
    return keep[ok]


def _gi_rows(model: InteractionModel) -> np.ndarray:
    """Rows of ``R^-1`` of the genotype x term coefficients (design order ``i.., g, g*i..``)."""
    return np.arange(model.n_terms + 1, 2 * model.n_terms + 1)


def _permuted_residuals(model: InteractionModel, y: np.ndarray, perms: np.ndarray):
    """``e_pi`` re-split on the model: (y1 (P x n), uy (P x m), ||y1||^2 (P,)) of every permutation."""
    y1, _ = model.split_phenotypes(y)
    y1p, uyp = model.split_phenotypes(y1[0][perms])
    return y1p, uyp, np.einsum("pn,pn->p", y1p, y1p)


def _term_weights(model: InteractionModel, design: InteractionDesign) -> np.ndarray:
    """(v, m, 1+m): row ``g*i_j`` of ``R^-1`` on the variant's own columns over its norm (0: deficient).

    ``t_gj = sqrt(dof) (w_j . c) / sqrt(rss)`` with ``c = Q_g^T y``; ``R^-1`` is upper triangular,
    so the coordinates on the shared terms do not enter the genotype x term coefficients.
    """
    m = model.n_terms
    r_gi = design.r_inv[:, _gi_rows(model), :]
    w = r_gi[:, :, m:] / np.sqrt(np.einsum("vjk,vjk->vj", r_gi, r_gi))[:, :, None]
    w[design.deficient] = 0.0
    return w


def _scan_piece(model, design: InteractionDesign, y1p, uyp, yss, best, *, y1t) -> None:
    """Raise the running maxima ``best`` (m x P) of ``t_gj^2`` with the variants of one piece.

    ``y1p`` (P x n, and its transpose ``y1t``), ``uyp``, ``yss``: from :func:`_permuted_residuals`.
    """
    m, n = model.n_terms, model.n_samples
    n_perm = y1t.shape[1]
    w = _term_weights(model, design)
    step = max(1, PRODUCT_BYTES // (8 * (1 + m) * n_perm))
    for s in range(0, len(design), step):
        q = design.q_var[s : s + step]
        v = q.shape[0]
        c = (np.ascontiguousarray(q.transpose(1, 0, 2)).reshape(-1, n) @ y1t).reshape(1 + m, v, n_perm)
        rss = np.square(c[0])
        for k in range(1, 1 + m):
            rss += np.square(c[k])
        np.subtract(yss, rss, out=rss)
        loose = np.argwhere(rss < RSS_EXACT * yss)
        for j in range(m):
            num = w[s : s + v, j, 1 + j, None] * c[1 + j]
            for k in range(2 + j, 1 + m):
                num += w[s : s + v, j, k, None] * c[k]
            t2 = np.square(num, out=num)
            t2 /= rss
            t2 *= model.dof
            if loose.size:
                t2[loose[:, 0], loose[:, 1]] = _exact_t2(
                    model, design.subset(slice(s, s + v)), loose, y1p, uyp, j
                )
            np.fmax(best[j], np.fmax.reduce(t2, axis=0), out=best[j])


def _exact_t2(model, design, pairs: np.ndarray, y1p, uyp, j: int) -> np.ndarray:
    """``t_gj^2`` of the (variant, permutation) ``pairs`` with the explicit residual (0: deficient)."""
    stats = model.test_pairs(design, pairs[:, 0], y1=y1p, uy=uyp, cols=pairs[:, 1])
    t2 = (stats[:, 3 + 6 * j + 3] / stats[:, 3 + 6 * j + 4]) ** 2
    return np.where(np.isnan(t2), 0.0, t2)


def _observed(model, cache: _DesignCache, a: int, b: int, y: np.ndarray) -> np.ndarray:
    """Statistics (columns ``model.columns``) of the window's tested variants ``a:b``."""
    return np.vstack([model.test(d, y) for d in cache.pieces(a, b)])


def _term_row(inputs, chromg, row: int, pid: str, stats: np.ndarray, j: int, name: str) -> dict:
    start, _ = inputs.bounds(pid)
    term = stats[3 + 6 * j : 3 + 6 * j + 6]
    return {
        "variant_id": chromg.ids[row],
        "start_distance": int(chromg.pos[row] - start),
        "af": float(chromg.af[row]),
        "ma_samples": int(chromg.ma_samples[row]),
        "ma_count": int(chromg.ma_count[row]),
        "interaction": name,
        **dict(zip(_STAT_COLUMNS, [*stats[:3], *term], strict=True)),
    }


def _phenotype_rows(inputs, chromg, cache, tested, pid, perms, model, window, null):
    """Rows (one per term) of one phenotype; None when its window has no tested variant."""
    start, end = inputs.bounds(pid)
    vidx = _window(chromg, tested, start, end, window)
    if not vidx.size:
        return None
    a = int(np.searchsorted(tested, vidx[0]))
    b = a + vidx.size
    cache.release(a)
    y = inputs.values[pid]
    obs = _observed(model, cache, a, b, y)
    ok = np.isfinite(obs[:, 0])
    if not ok.any():
        return None
    y1p, uyp, yss = _permuted_residuals(model, y, perms)
    best = np.zeros((model.n_terms, perms.shape[0]))
    y1t = np.ascontiguousarray(y1p.T)
    for d in cache.pieces(a, b):
        _scan_piece(model, d, y1p, uyp, yss, best, y1t=y1t)
    rows = []
    for j, name in enumerate(model.names):
        t2_obs = (obs[:, 3 + 6 * j + 3] / obs[:, 3 + 6 * j + 4]) ** 2
        i = int(np.argmax(np.where(ok, t2_obs, -np.inf)))
        t2_top, t2_perm = float(t2_obs[i]), best[j]
        if null is not None:
            null[(pid, name)] = t2_perm.copy()
        dof = model.dof
        rows.append(
            {
                "num_var": int(ok.sum()),
                **beta_approximated_pvalue(t2_perm / (t2_perm + dof), t2_top / (t2_top + dof), dof),
                **_term_row(inputs, chromg, int(vidx[i]), pid, obs[i], j, name),
                "pval_perm": float((np.sum(t2_perm >= t2_top) + 1) / (perms.shape[0] + 1)),
            }
        )
    return rows


def _frame(rows: list[dict], index: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(rows, index=pd.Index(index, name="phenotype_id"), columns=INTERACTION_PERM_COLUMNS)
    for col in table.columns:
        if col in _INT_COLUMNS:
            table[col] = table[col].astype(np.int32)
        elif col in ("variant_id", "interaction"):
            table[col] = table[col].astype(object)
        else:
            table[col] = table[col].astype(np.float64)
    return table


def _model(inputs: CisInputs) -> InteractionModel:
    inter = inputs.cohort.interaction_df
    if inter is None:
        raise InputError("map_cis_interaction needs interaction_df (samples x terms)")
    return InteractionModel(
        inter.to_numpy(),
        inputs.q,
        n_covariates=inputs.basis.n_covariates,
        names=list(map(str, inter.columns)),
    )


def map_cis_interaction(
    genotype_df,
    variant_df,
    phenotype_df: pd.DataFrame,
    phenotype_pos_df: pd.DataFrame,
    covariates_df: pd.DataFrame | None = None,
    interaction_df=None,
    *,
    nperm: int = 10_000,
    seed=0,
    maf_threshold: float = 0,
    mac_threshold: int = 0,
    maf_threshold_interaction: float = 0.05,
    window: int = 1_000_000,
    sample_map=None,
    gtex_ids: bool = False,
    keep_null: bool = False,
    show_progress: bool | None = None,
) -> pd.DataFrame:
    """Permutation cis mapping of genotype x interaction effects: one row per phenotype and term.

    Parameters
    ----------
    genotype_df, variant_df, phenotype_df, phenotype_pos_df, covariates_df
        As for :func:`~tbeqtl.association.cis.map_cis`.
    interaction_df
        Interaction term(s), samples x terms (a Series is one term); no missing values, no constant
        term.
    nperm, seed
        Permutations (one set over the samples sorted by ID, the same as ``map_cis`` draws for a
        seed) and their seed.
    maf_threshold, mac_threshold
        Variant filters (see :func:`~tbeqtl.association.cis.map_nominal`).
    maf_threshold_interaction
        tensorQTL's MAF threshold within the lower and upper halves of each term.
    window
        cis window (bp), both ends inclusive.
    sample_map, gtex_ids
        Sample -> individual mapping.
    keep_null
        Put the permutation maxima of ``t^2`` in ``table.attrs["t2_perm"]`` (a dict keyed by
        ``(phenotype_id, term)``).
    show_progress
        Progress bar (default: when stderr is a terminal; otherwise periodic log lines).

    Returns
    -------
    pandas.DataFrame
        Schema ``cis_qtl_interaction`` without ``qval``/``pval_nominal_threshold`` (add them with
        :func:`interaction_qvalues`): index ``phenotype_id`` (repeated once per term), columns
        ``num_var beta_shape1 beta_shape2 true_df pval_true_df variant_id start_distance af
        ma_samples ma_count interaction b_g b_g_se pval_g b_i b_i_se pval_i b_gi b_gi_se pval_gi
        pval_perm pval_beta``: the top variant of the term (largest ``t_gi^2``, first in position
        order on ties), its full-model statistics (``b_i``/``b_gi`` are the term's), and the
        permutation p-values. Rows by chromosome, phenotype (as ``map_cis``), then term in the
        order of ``interaction_df``'s columns.

    Notes
    -----
    The statistic, its null and the rationale are in the module docstring. ``num_var`` counts the
    variants tested (testable, passing the variant filters and the interaction MAF rule, with a
    full-rank design). Phenotypes without such a variant in their window are skipped (counted in
    the log).

    Raises
    ------
    InputError
        No ``interaction_df``; a constant term, or one collinear with the covariates; bad options.
    """
    window = _check_common(window=window, maf_threshold=maf_threshold, mac_threshold=mac_threshold)
    nperm = _check_nperm(nperm)
    if interaction_df is None:
        raise InputError("map_cis_interaction needs interaction_df (samples x terms)")
    inputs = prepare_cis(
        genotype_df,
        variant_df,
        phenotype_df,
        phenotype_pos_df=phenotype_pos_df,
        covariates_df=covariates_df,
        interaction_df=interaction_df,
        sample_map=sample_map,
        gtex_ids=gtex_ids,
    )
    model = _model(inputs)
    perms = canonical_permutations(inputs.cohort.samples, nperm, seed=seed)
    null = {} if keep_null else None
    rows, index, n_empty = [], [], 0
    ticker = Ticker(inputs.n_phenotypes, desc="cis interaction permutations", enabled=show_progress)
    for chrom, pids in inputs.by_chrom.items():
        chromg = load_chromosome(inputs.source, chrom, samples=inputs.cohort.genotype_ids, q=inputs.q)
        tested = _tested_rows(
            chromg,
            model,
            maf_threshold=maf_threshold,
            mac_threshold=mac_threshold,
            maf_threshold_interaction=maf_threshold_interaction,
        )
        cache = _DesignCache(chromg, tested, model)
        for pid in pids:
            ticker.advance()
            found = _phenotype_rows(inputs, chromg, cache, tested, pid, perms, model, window, null)
            if found is None:
                n_empty += 1
                continue
            rows += found
            index += [pid] * len(found)
        del chromg, cache
    ticker.close()
    if n_empty:
        logger.info("%d phenotype(s) without a tested variant in their cis window skipped", n_empty)
    table = _frame(rows, index)
    failed = table.index[table["pval_beta"].isna()].unique()
    if len(failed):
        logger.warning(
            "beta approximation impossible (< 10 distinct permutation maxima) for %d phenotype(s): %s",
            len(failed),
            format_ids(failed),
        )
    if null is not None:
        table.attrs["t2_perm"] = null
    validate_table(table.reset_index(), "cis_qtl_interaction")
    return table


def interaction_qvalues(
    table: pd.DataFrame, *, fdr: float = 0.05, qvalue_lambda: float | None = None
) -> pd.DataFrame:
    """Add ``qval`` and ``pval_nominal_threshold`` within each interaction term.

    Parameters
    ----------
    table
        :func:`map_cis_interaction` output.
    fdr, qvalue_lambda
        As for :func:`~tbeqtl.association.post.calculate_qvalues`, applied to the rows of each
        term separately (each term is its own family of tests).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with the two columns, rows in the same order.
        ``pval_nominal_threshold`` is the term's threshold on ``pval_gi`` of a pair.
    """
    from .post import calculate_qvalues

    if "interaction" not in table.columns:
        raise InputError("the table has no 'interaction' column: not a map_cis_interaction table")
    out = table.copy()
    out["qval"] = np.nan
    out["pval_nominal_threshold"] = np.nan
    pos = np.arange(len(out))
    for name in pd.unique(out["interaction"]):
        sel = pos[(out["interaction"] == name).to_numpy()]
        logger.info("q-values of interaction term %s", name)
        part = calculate_qvalues(out.iloc[sel].copy(), fdr=fdr, qvalue_lambda=qvalue_lambda)
        for col in ("qval", "pval_nominal_threshold"):
            out.iloc[sel, out.columns.get_loc(col)] = part[col].to_numpy()
    return out
