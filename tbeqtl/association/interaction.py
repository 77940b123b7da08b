"""Genotype x interaction models (tensorQTL's ``--interaction``), exact in float64.

Model, per variant and phenotype (``n`` samples, ``k`` covariates, ``m`` interaction terms)::

    y ~ 1 + C + g + i_1 + ... + i_m + g*i_1 + ... + g*i_m

with ``g`` the mean-imputed dosage and ``g*i_j`` the product of the raw dosage and the raw term.
tensorQTL residualises ``y``, ``g``, each ``i_j`` and each ``g*i_j`` on the (centred) covariates and
regresses the residuals (Frisch-Waugh-Lovell: the same coefficients and standard errors as the
full OLS above) with ``dof = n - 2 - k - 2m``; the p-values are two-sided t tests.

tensorQTL solves the per-variant normal equations in float32. Here every variant's design is
orthonormalised instead (no squared condition number): the interaction terms, shared by every
variant, are residualised and QR-factorised once (:class:`InteractionModel`); per variant, the
genotype and product columns are residualised on the covariates, projected off the shared terms
and orthonormalised by classical Gram-Schmidt with one re-orthogonalisation pass ("twice is
enough"), vectorised over variants. That gives the full triangular factor ``R`` of each variant's
design, the coefficients ``R^-1 Q^T y``, ``se_j = sigma ||row_j(R^-1)||`` and the explicit residual
sum of squares. Variants whose design is rank deficient (a column within ``1e-10`` relative of
the span of the others, e.g. a monomorphic variant) get NaN statistics; a phenotype with a
missing value gives NaN statistics (tensorQTL's behaviour, issue #187).

Column names (:func:`interaction_columns`): with one term, tensorQTL's fixed names
``b_g b_g_se pval_g b_i b_i_se pval_i b_gi b_gi_se pval_gi`` whatever the term is called; with
several terms, tensorQTL's naming by term name ``<v>``: ``b_<v> b_<v>_se pval_<v>`` for the term's
main effect and ``b_g-<v> b_g-<v>_se pval_g-<v>`` for its product with the genotype. tensorQTL
orders each triple ``pval, b, se``; here it is ``b, se, pval``.

Permutations (tensorQTL has none) are in :mod:`tbeqtl.association.interaction_perm`: per phenotype
and term the window's largest ``t^2`` of ``g*i_j``, against the same maximum over permutations of
the phenotype's residuals on ``[1, C, i]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ..errors import InputError

__all__ = [
    "InteractionDesign",
    "InteractionModel",
    "interaction_association",
    "interaction_columns",
    "interaction_maf_mask",
    "top_interaction_association",
]

logger = logging.getLogger(__name__)

#: A design column is rank deficient when its norm after projection is at most this fraction of
#: its norm before any projection (rounding leaves ~1e-16 of it in a column inside the span).
RANK_TOL = 1e-10

#: tensorQTL's slack on the interaction MAF threshold (``maf >= threshold - 1e-7``).
MAF_SLACK = 1e-7

#: Variants per chunk in :func:`interaction_association` (bounds the ``(v, 1+m, n)`` work arrays).
CHUNK = 2048


def interaction_columns(names: Sequence[str]) -> list[str]:
    """Output columns of the interaction model, tensorQTL's names.

    Parameters
    ----------
    names
        Interaction term names (one or more).

    Returns
    -------
    list of str
        One term: ``b_g b_g_se pval_g b_i b_i_se pval_i b_gi b_gi_se pval_gi`` (any term name).
        Several terms ``v``: ``b_g b_g_se pval_g``, then per term ``b_<v> b_<v>_se pval_<v>
        b_g-<v> b_g-<v>_se pval_g-<v>``.

    Raises
    ------
    InputError
        No terms, or term names giving duplicate columns (e.g. a term named ``g``).
    """
    names = [str(v) for v in names]
    if not names:
        raise InputError("no interaction term given")
    cols = ["b_g", "b_g_se", "pval_g"]
    if len(names) == 1:
        return cols + ["b_i", "b_i_se", "pval_i", "b_gi", "b_gi_se", "pval_gi"]
    for v in names:
        cols += [f"b_{v}", f"b_{v}_se", f"pval_{v}", f"b_g-{v}", f"b_g-{v}_se", f"pval_g-{v}"]
    dup = pd.Index(cols)[pd.Index(cols).duplicated()]
    if len(dup):
        raise InputError("interaction term names give duplicate output columns", ids=dup.unique())
    return cols


def _maf(genotypes: np.ndarray) -> np.ndarray:
    af = genotypes.sum(axis=1) / (2.0 * genotypes.shape[1])
    return np.minimum(af, 1.0 - af)


def interaction_maf_mask(genotypes: np.ndarray, interaction: np.ndarray, *, threshold: float) -> np.ndarray:
    """Select the variants to test, by tensorQTL's rule for interaction tests.

    A variant is dropped when its (imputed) dosages are all 0, all 1 or all 2; with
    ``threshold > 0``, also when, for some term, its MAF in the lower or the upper half of the
    samples is below ``threshold`` (with tensorQTL's slack: ``maf >= threshold - 1e-7``). The
    halves of a term: the samples sorted by the term's value with a stable sort; the first
    ``n // 2`` form the lower half, the rest the upper half.

    tensorQTL 1.0.10 applies the half-split MAF rule only with one interaction term (its source
    marks several terms as unfinished and then only drops 0/1/2-constant rows); here it is applied
    to every term, so with several terms fewer variants may be tested than by tensorQTL.

    Parameters
    ----------
    genotypes
        v x n imputed dosages.
    interaction
        n x m interaction terms (a 1-D array is one term), in the sample order of ``genotypes``.
    threshold
        Minimum MAF in each half (0 or less: only the constant-row rule).

    Returns
    -------
    numpy.ndarray
        bool (v,): True for the variants to test.
    """
    g = np.asarray(genotypes, dtype=np.float64)
    terms = np.asarray(interaction, dtype=np.float64)
    terms = terms[:, None] if terms.ndim == 1 else terms
    if terms.shape[0] != g.shape[1]:
        raise InputError(f"interaction has {terms.shape[0]} samples, genotypes {g.shape[1]}")
    keep = ~((g == 0).all(axis=1) | (g == 1).all(axis=1) | (g == 2).all(axis=1))
    if threshold <= 0:
        return keep
    n = g.shape[1]
    for j in range(terms.shape[1]):
        order = np.argsort(terms[:, j], kind="stable")
        lower, upper = order[: n // 2], order[n // 2 :]
        keep &= _maf(g[:, lower]) >= threshold - MAF_SLACK
        keep &= _maf(g[:, upper]) >= threshold - MAF_SLACK
    return keep


def _residualize(x: np.ndarray, q: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """``x - (x Q) Q^T`` on the last axis (``inplace``: overwrite ``x``, which must be C-contiguous)."""
    if x.ndim == 1:
        return x - q @ (q.T @ x)
    if inplace and not x.flags.c_contiguous:
        raise ValueError("in-place residualisation needs a C-contiguous array")
    flat = (x if inplace else np.array(x, order="C")).reshape(-1, x.shape[-1])  # one BLAS product
    flat -= (flat @ q) @ q.T
    return flat.reshape(x.shape)


def _orthonormalize(cols: np.ndarray, raw_norms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched Gram-Schmidt with re-orthogonalisation (CGS2) of ``cols`` (v, p, n), in place.

    Returns ``Q`` (the same array, orthonormal rows per variant), ``R`` (v, p, p) upper triangular
    with ``cols = R^T Q`` per variant, and the rank-deficient variants.
    """
    v, p, _ = cols.shape
    r = np.zeros((v, p, p))
    deficient = np.zeros(v, dtype=bool)
    for j in range(p):
        x = cols[:, j, :]
        for _ in range(2 if j else 0):
            c = np.einsum("vkn,vn->vk", cols[:, :j, :], x)  # (v, j)
            x -= np.einsum("vk,vkn->vn", c, cols[:, :j, :])
            r[:, :j, j] += c
        norm = np.sqrt(np.einsum("vn,vn->v", x, x))
        bad = ~(norm > RANK_TOL * raw_norms[:, j])
        deficient |= bad
        r[:, j, j] = np.where(bad, 1.0, norm)
        x /= r[:, j, j][:, None]
    return cols, r, deficient


@dataclass(frozen=True)
class InteractionDesign:
    """The orthonormalised designs of a set of variants (from :meth:`InteractionModel.prepare`).

    Parameters
    ----------
    q_var
        (v, 1+m, n): per variant, orthonormal basis of its genotype and product columns after
        removing the covariates and the interaction terms.
    r_inv
        (v, p, p) with ``p = 1 + 2m``: inverse of the full triangular factor, columns in the order
        ``i_1..i_m, g, g*i_1..g*i_m``.
    deficient
        (v,) bool: rank-deficient designs (NaN statistics).
    """

    q_var: np.ndarray
    r_inv: np.ndarray
    deficient: np.ndarray

    def __len__(self) -> int:
        return int(self.q_var.shape[0])

    def subset(self, rows) -> InteractionDesign:
        """Return the designs of some variants (an index array, a boolean mask or a slice)."""
        return InteractionDesign(self.q_var[rows], self.r_inv[rows], self.deficient[rows])


class InteractionModel:
    """The interaction terms and covariates of a cohort, prepared once.

    Parameters
    ----------
    interaction
        n x m interaction terms (a 1-D array is one term), in the sample order of the data.
    covariate_q
        n x (k+1) orthonormal basis of ``[1, C]``
        (:func:`tbeqtl.association.residualize.covariate_basis`).
    n_covariates
        ``k`` in ``dof = n - 2 - k - 2m``; default ``covariate_q.shape[1] - 1``.
    names
        Term names (default ``i``, or ``i1, i2, ...`` for several terms).

    Raises
    ------
    InputError
        Sample counts differ, a term is constant or collinear with the covariates (named), or no
        residual degrees of freedom are left.
    """

    def __init__(self, interaction, covariate_q: np.ndarray, *, n_covariates: int | None = None, names=None):
        terms = np.array(interaction, dtype=np.float64, order="C")  # a private copy
        terms = terms[:, None] if terms.ndim == 1 else terms
        q = np.ascontiguousarray(covariate_q, dtype=np.float64)
        n, m = terms.shape
        if q.shape[0] != n:
            raise InputError(f"interaction has {n} samples, the covariate basis {q.shape[0]}")
        if names is None:
            names = ["i"] if m == 1 else [f"i{j + 1}" for j in range(m)]
        self.names = [str(v) for v in names]
        if len(self.names) != m:
            raise InputError(f"{len(self.names)} names for {m} interaction terms")
        self.columns = interaction_columns(self.names)
        if not np.isfinite(terms).all():
            raise InputError("interaction terms have missing values", ids=self._bad(~np.isfinite(terms)))
        self.n_samples, self.n_terms = n, m
        k = q.shape[1] - 1 if n_covariates is None else int(n_covariates)
        self.dof = n - 2 - k - 2 * m
        if self.dof <= 0:
            raise InputError(f"no residual degrees of freedom: n={n}, {k} covariates, {m} interaction terms")
        self.q_cov = q
        self.terms = terms
        resid = _residualize(terms.T, q)  # m x n
        u, s = np.linalg.qr(resid.T)  # n x m, m x m
        bad = ~(np.abs(np.diag(s)) > RANK_TOL * np.linalg.norm(terms, axis=0))
        if bad.any():
            raise InputError(
                "interaction term(s) constant, or linear combinations of the covariates and other terms",
                ids=[self.names[j] for j in np.flatnonzero(bad)],
            )
        self.u = np.ascontiguousarray(u)
        self.s = s

    def _bad(self, mask: np.ndarray) -> list[str]:
        return [self.names[j] for j in np.flatnonzero(mask.any(axis=0))]

    def prepare(self, genotypes: np.ndarray) -> InteractionDesign:
        """Orthonormalise the designs of a block of variants (reusable for many phenotypes).

        Parameters
        ----------
        genotypes
            v x n imputed dosages (float64, no NaN), sample order of the model.

        Returns
        -------
        InteractionDesign
            The variants' designs.
        """
        g = np.asarray(genotypes, dtype=np.float64)
        if g.ndim != 2 or g.shape[1] != self.n_samples:
            raise InputError(f"genotypes must be v x {self.n_samples}; got shape {g.shape}")
        if np.isnan(g).any():
            raise InputError("genotypes have missing values: impute them before the interaction test")
        v, m = g.shape[0], self.n_terms
        cols = np.empty((v, 1 + m, self.n_samples))
        cols[:, 0, :] = g
        cols[:, 1:, :] = g[:, None, :] * self.terms.T[None, :, :]
        raw = np.sqrt(np.einsum("vjn,vjn->vj", cols, cols))
        cols = _residualize(cols, self.q_cov, inplace=True)
        flat = cols.reshape(-1, self.n_samples)
        proj = flat @ self.u  # coordinates on the shared terms
        flat -= proj @ self.u.T
        proj = proj.reshape(v, 1 + m, m)
        q_var, r_var, deficient = _orthonormalize(cols, raw)
        p = 1 + 2 * m
        r = np.zeros((v, p, p))
        r[:, :m, :m] = self.s
        r[:, :m, m:] = np.swapaxes(proj, 1, 2)
        r[:, m:, m:] = r_var
        return InteractionDesign(q_var=q_var, r_inv=np.linalg.inv(r), deficient=deficient)

    def split_phenotypes(self, phenotypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residualise phenotypes on the covariates and split them along the interaction terms.

        Parameters
        ----------
        phenotypes
            P x n values (finite), sample order of the model.

        Returns
        -------
        y1 : numpy.ndarray
            P x n: the residuals, minus their projection on the residualised terms.
        uy : numpy.ndarray
            P x m: their coordinates on the orthonormalised terms.
        """
        y_r = _residualize(np.array(phenotypes, dtype=np.float64, ndmin=2), self.q_cov)
        uy = y_r @ self.u
        return y_r - uy @ self.u.T, uy

    def _statistics(self, q_var, r_inv, y1, uy) -> np.ndarray:
        """Statistics of N pairs: designs (N, 1+m, n) and (N, p, p), phenotypes (N, n) and (N, m)."""
        m = self.n_terms
        c = np.einsum("vjn,vn->vj", q_var, y1)  # (N, 1+m)
        resid = y1 - np.einsum("vj,vjn->vn", c, q_var)
        rss = np.einsum("vn,vn->v", resid, resid)
        qty = np.concatenate([uy, c], axis=1)  # (N, p)
        theta = np.einsum("vjk,vk->vj", r_inv, qty)
        se = np.sqrt(rss / self.dof)[:, None] * np.sqrt(np.einsum("vjk,vjk->vj", r_inv, r_inv))
        with np.errstate(divide="ignore", invalid="ignore"):
            pval = 2.0 * special.stdtr(self.dof, -np.abs(theta / se))  # = 2 t.sf(|t|), bit for bit
        order = [m] + [j for t in range(m) for j in (t, m + 1 + t)]  # g, then (i_t, g*i_t) per term
        out = np.empty((theta.shape[0], len(self.columns)))
        for slot, j in enumerate(order):
            out[:, 3 * slot : 3 * slot + 3] = np.column_stack([theta[:, j], se[:, j], pval[:, j]])
        return out

    def test(self, design: InteractionDesign, phenotype: np.ndarray) -> np.ndarray:
        """Statistics of one phenotype against prepared variants.

        Parameters
        ----------
        design
            From :meth:`prepare`.
        phenotype
            (n,) values in the sample order of the model.

        Returns
        -------
        numpy.ndarray
            v x ``len(self.columns)`` float64, in the order of :attr:`columns`.
        """
        y = np.asarray(phenotype, dtype=np.float64).reshape(-1)
        v = len(design)
        if y.size != self.n_samples:
            raise InputError(f"phenotype has {y.size} samples, the model {self.n_samples}")
        if not np.isfinite(y).all() or v == 0:
            return np.full((v, len(self.columns)), np.nan)
        y1, uy = self.split_phenotypes(y)
        out = self._statistics(
            design.q_var,
            design.r_inv,
            np.broadcast_to(y1, (v, y.size)),
            np.broadcast_to(uy, (v, self.n_terms)),
        )
        out[design.deficient] = np.nan
        return out

    def test_pairs(
        self, design: InteractionDesign, rows, *, y1: np.ndarray, uy: np.ndarray, cols
    ) -> np.ndarray:
        """Statistics of (variant ``rows[i]``, phenotype ``cols[i]``) pairs.

        Parameters
        ----------
        design
            From :meth:`prepare`.
        rows, cols
            Variant positions in ``design`` and phenotype positions in ``y1``/``uy``.
        y1, uy
            From :meth:`split_phenotypes`.

        Returns
        -------
        numpy.ndarray
            One row per pair, columns :attr:`columns`.
        """
        out = self._statistics(design.q_var[rows], design.r_inv[rows], y1[cols], uy[cols])
        out[design.deficient[rows]] = np.nan
        return out

    def screen(self, design: InteractionDesign, y1: np.ndarray, uy: np.ndarray, *, t_threshold: float):
        """Pairs whose largest ``|t|`` of a genotype x term coefficient may reach ``t_threshold``.

        One matrix product per block of variants gives every phenotype's coordinates; the
        residual sum of squares is taken as ``||y1||^2 - ||c||^2`` there, so the screen keeps
        ``|t| >= t_threshold (1 - 1e-6)``; recompute the candidates with :meth:`test_pairs`.

        Parameters
        ----------
        design
            From :meth:`prepare`.
        y1, uy
            From :meth:`split_phenotypes` (P phenotypes).
        t_threshold
            The ``|t|`` to reach.

        Returns
        -------
        rows, cols : numpy.ndarray
            Variant and phenotype positions of the candidate pairs.
        """
        m, n_phen = self.n_terms, y1.shape[0]
        gi = np.arange(m + 1, 2 * m + 1)
        row_norm = np.sqrt(np.einsum("vjk,vjk->vj", design.r_inv[:, gi], design.r_inv[:, gi]))  # (v, m)
        y_ss = np.einsum("pn,pn->p", y1, y1)
        step = max(1, (1 << 22) // max(n_phen * (1 + m), 1))
        rows, cols = [], []
        for a in range(0, len(design), step):
            q = design.q_var[a : a + step]
            c = (q.reshape(-1, self.n_samples) @ y1.T).reshape(q.shape[0], 1 + m, n_phen)
            sigma = np.sqrt(np.clip(y_ss - np.einsum("vjp,vjp->vp", c, c), 0.0, None) / self.dof)
            r_inv = design.r_inv[a : a + step][:, gi]
            theta = np.einsum("vjk,pk->vjp", r_inv[:, :, :m], uy) + np.einsum(
                "vjk,vkp->vjp", r_inv[:, :, m:], c
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.abs(theta) / (row_norm[a : a + step, :, None] * sigma[:, None, :])
            hit = (t >= t_threshold * (1.0 - 1e-6)).any(axis=1) & ~design.deficient[a : a + step, None]
            r, col = np.nonzero(hit)
            rows.append(r + a)
            cols.append(col)
        if not rows:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(rows), np.concatenate(cols)


def interaction_association(
    genotypes: np.ndarray,
    phenotype: np.ndarray,
    interaction: np.ndarray,
    *,
    covariate_q: np.ndarray,
    n_covariates: int | None = None,
    names: Sequence[str] | None = None,
    index=None,
) -> pd.DataFrame:
    """Fit ``y ~ 1 + C + g + i + g:i`` for every variant (tensorQTL's interaction test), exactly.

    For repeated calls with the same interaction terms, build one :class:`InteractionModel`
    and use its :meth:`~InteractionModel.prepare` / :meth:`~InteractionModel.test`.

    Parameters
    ----------
    genotypes
        v x n imputed dosages (float64).
    phenotype
        (n,) phenotype values.
    interaction
        n x m interaction terms (1-D: one term).
    covariate_q
        n x (k+1) orthonormal basis of ``[1, C]``.
    n_covariates
        ``k`` (default: ``covariate_q.shape[1] - 1``); ``dof = n - 2 - k - 2m``.
    names
        Term names for the columns (default ``["i"]``; see :func:`interaction_columns`).
    index
        Row labels (e.g. variant IDs); default a RangeIndex.

    Returns
    -------
    pandas.DataFrame
        v rows, columns :func:`interaction_columns` ``(names)``, float64; NaN rows for
        rank-deficient designs, all NaN for a phenotype with missing values.
    """
    model = InteractionModel(interaction, covariate_q, n_covariates=n_covariates, names=names)
    g = np.asarray(genotypes, dtype=np.float64)
    g = g[None, :] if g.ndim == 1 else g
    blocks = [
        model.test(model.prepare(g[a : a + CHUNK]), phenotype) for a in range(0, g.shape[0], CHUNK)
    ] or [np.empty((0, len(model.columns)))]
    return pd.DataFrame(np.vstack(blocks), columns=model.columns, index=index)


def _gi_t_columns(df: pd.DataFrame) -> list[tuple[str, str]]:
    if "b_gi" in df.columns:
        return [("b_gi", "b_gi_se")]
    pairs = [(c, f"{c}_se") for c in df.columns if c.startswith("b_g-") and not c.endswith("_se")]
    pairs = [(b, s) for b, s in pairs if s in df.columns]
    if not pairs:
        raise InputError("no genotype x interaction columns (b_gi or b_g-<term>) in the table")
    return pairs


def top_interaction_association(pairs_df: pd.DataFrame, *, by: str = "phenotype_id") -> pd.DataFrame:
    """Per phenotype, the pair with the largest ``|t|`` of a genotype x interaction term.

    tensorQTL's ``cis_qtl_top_assoc`` rule: ``argmax over variants of max_j |b_gi_j / b_gi_j_se|``
    (NaN rows ignored, first row on ties). Phenotypes with only NaN rows are left out.

    Parameters
    ----------
    pairs_df
        Pairs with a ``by`` column and the interaction columns (:func:`interaction_columns`).
    by
        The grouping column.

    Returns
    -------
    pandas.DataFrame
        One row of ``pairs_df`` per phenotype (order of first appearance), index reset.
    """
    if by not in pairs_df.columns:
        raise InputError(f"the pairs table has no {by!r} column")
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.column_stack(
            [
                np.abs(pairs_df[b].to_numpy(float) / pairs_df[s].to_numpy(float))
                for b, s in _gi_t_columns(pairs_df)
            ]
        )
    best = np.where(np.isnan(score), -np.inf, score).max(axis=1)
    best[np.isnan(score).all(axis=1)] = np.nan
    frame = pd.DataFrame({"key": pairs_df[by].to_numpy(), "score": best, "row": np.arange(len(pairs_df))})
    frame = frame[frame["score"].notna()]
    rows = frame.loc[frame.groupby("key", sort=False)["score"].idxmax(), "row"].to_numpy()
    return pairs_df.iloc[rows].reset_index(drop=True)
