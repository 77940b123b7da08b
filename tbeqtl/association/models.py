"""The three MatrixEQTL models: ``linear``, ``anova`` and ``linear_cross``.

Each model turns a block of raw SNP rows into one or two matrices of unit-norm residual
vectors (``U``), orthogonal to the covariates (and to each other), so that the products
``U_j @ E~^T`` with the unit residual expression ``E~`` give the partial correlations ``r_j``
from which the test statistic follows:

* ``linear``: ``U = s~`` (residual dosage); ``t = r sqrt(df / (1 - r^2))``, ``df = n - k - 2``,
  ``beta = r ||e_res|| / ||s_res||``.
* ``anova``: ``U_1, U_2`` = residual dummies of the 2nd and 3rd most frequent genotype of the
  SNP (the most frequent is the reference; a missing genotype has both dummies 0), the second
  orthogonalised against the first; ``R^2 = r_1^2 + r_2^2``, ``F = R^2 / (1 - R^2) * df / 2`` on
  (2, df) degrees of freedom, ``df = n - k - 3``; no beta.
* ``linear_cross``: ``U_1 = s~``, ``U_2`` = residual of ``s * c_last`` (the last covariate)
  orthogonalised against ``s~``; the interaction's ``t = r_2 sqrt(df / (1 - r_1^2 - r_2^2))``,
  ``df = n - k - 3``, ``beta = r_2 ||e_res|| / ||i_res||``.

``score`` is a monotone function of the statistic used for thresholds and histograms
(``|r|``, ``R^2`` and ``t^2``), cheap to compute on a whole block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

from ..errors import InputError
from .residualize import EPS, impute_row_mean, residualize_rows

__all__ = ["MODELS", "Model", "get_model", "p_from_stat", "stat_from_r"]

XMIN = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class SnpBlock:
    """Prepared SNP rows of one block.

    Parameters
    ----------
    mats
        One (linear) or two (anova, cross) m x n arrays of unit residual vectors.
    beta_norm
        ``||s_res||`` (linear) or ``||i_res||`` (cross) per row; None for anova.
    """

    mats: tuple[np.ndarray, ...]
    beta_norm: np.ndarray | None


@dataclass(frozen=True)
class Model:
    """One MatrixEQTL model.

    Parameters
    ----------
    name
        ``"linear"``, ``"anova"`` or ``"linear_cross"``.
    stat_name
        Output column of the statistic (``t_stat`` or ``f_stat``).
    extra_df
        Parameters beyond the intercept and covariates (1 or 2): ``df = n - k - 1 - extra_df``.
    """

    name: str
    stat_name: str
    extra_df: int

    @property
    def n_mats(self) -> int:
        """Number of unit vectors per SNP."""
        return 1 if self.name == "linear" else 2

    def df(self, n_samples: int, n_covariates: int) -> int:
        """Residual degrees of freedom ``n - k - 1 - extra_df``.

        Parameters
        ----------
        n_samples, n_covariates
            n and k.

        Returns
        -------
        int
            df.
        """
        return n_samples - n_covariates - 1 - self.extra_df

    # -- SNP preparation --------------------------------------------------------------
    def prepare(self, raw: np.ndarray, q: np.ndarray, *, cross: np.ndarray | None = None) -> SnpBlock:
        """Turn raw SNP rows (NaN = missing) into unit residual vectors.

        Parameters
        ----------
        raw
            m x n dosages (a copy is made).
        q
            Covariate basis (n x (k+1)).
        cross
            The last covariate's raw values (``linear_cross`` only).

        Returns
        -------
        SnpBlock
            The prepared block.
        """
        if self.name == "anova":
            return _prepare_anova(raw, q)
        x = impute_row_mean(np.array(raw, dtype=np.float64, copy=True))
        if self.name == "linear":
            unit, norms = residualize_rows(x, q)
            return SnpBlock(mats=(unit,), beta_norm=norms)
        inter = x * cross[None, :]
        unit, _ = residualize_rows(x, q)
        inter_unit, inter_norm = _second_vector(inter, q, unit)
        return SnpBlock(mats=(unit, inter_unit), beta_norm=inter_norm)

    # -- statistics -------------------------------------------------------------------
    def score(self, mats, *, df: int, inflate: float = 0.0):
        """Monotone score of the statistic from block products (numpy or torch arrays).

        Parameters
        ----------
        mats
            The correlation products ``r_j`` (one or two S x G arrays).
        df
            Degrees of freedom.
        inflate
            Add this to every ``|r_j|`` first (an upper bound of the true score when the
            products carry an error up to ``inflate``).

        Returns
        -------
        array
            ``|r|`` (linear), ``R^2`` (anova) or ``t^2`` (linear_cross).
        """
        if self.name == "linear":
            return abs(mats[0]) + inflate if inflate else abs(mats[0])
        a = abs(mats[0]) + inflate if inflate else mats[0]
        b = abs(mats[1]) + inflate if inflate else mats[1]
        if self.name == "anova":
            return a * a + b * b
        rs2 = a * a
        ri2 = b * b
        rest = 1.0 - rs2 - ri2
        rest = abs(rest) * (rest > 0)  # +0 when r_s^2 + r_i^2 >= 1: t^2 = +inf (numpy and torch alike)
        return ri2 * df / rest

    def score_from_stat(self, stat: np.ndarray, *, df: int) -> np.ndarray:
        """Score value of statistic values (for thresholds and histogram edges).

        Parameters
        ----------
        stat
            |t| or F values (may be inf).
        df
            Degrees of freedom.

        Returns
        -------
        numpy.ndarray
            The scores.
        """
        stat = np.asarray(stat, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if self.name == "linear":
                out = np.where(np.isinf(stat), 1.0, stat / np.sqrt(df + stat * stat))
            elif self.name == "anova":
                out = np.where(np.isinf(stat), 1.0, 2 * stat / (df + 2 * stat))
            else:
                out = stat * stat
        return out

    def critical_stat(self, p_threshold: float, *, df: int) -> float:
        """Statistic value at which the p-value equals ``p_threshold`` (output when ``stat >= it``).

        Parameters
        ----------
        p_threshold
            The p-value threshold.
        df
            Degrees of freedom.

        Returns
        -------
        float
            ``qt(p/2, df, lower=FALSE)`` or ``qf(p, 2, df, lower=FALSE)``.
        """
        if p_threshold >= 1:
            return 0.0
        if p_threshold <= 0:
            return float("inf")
        from scipy import stats  # imported where used: scipy.stats costs 0.3 s at import

        if self.name == "anova":
            return float(stats.f.isf(p_threshold, 2, df))
        return float(stats.t.isf(p_threshold / 2, df))

    def critical_stats(self, p_thresholds, *, df: int) -> np.ndarray:
        """Vectorised :meth:`critical_stat`.

        Parameters
        ----------
        p_thresholds
            p-value thresholds.
        df
            Degrees of freedom.

        Returns
        -------
        numpy.ndarray
            The critical statistics (0 for p >= 1, inf for p <= 0).
        """
        p = np.asarray(p_thresholds, dtype=float)
        inner = np.clip(p, XMIN, 1.0)
        from scipy import stats

        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.name == "anova":
                out = stats.f.isf(inner, 2, df)
            else:
                out = stats.t.isf(inner / 2, df)
        return np.where(p >= 1, 0.0, np.where(p <= 0, np.inf, out))

    def stat_from_r(self, rs: tuple[np.ndarray, ...], *, df: int) -> np.ndarray:
        """Signed t (linear, cross) or F (anova) from exact float64 correlations.

        Parameters
        ----------
        rs
            ``r_j`` per pair (one or two 1-D arrays).
        df
            Degrees of freedom.

        Returns
        -------
        numpy.ndarray
            The statistics.
        """
        return stat_from_r(self.name, rs, df=df)


def stat_from_r(model: str, rs, *, df: int) -> np.ndarray:
    """Statistic from correlations (see :class:`Model`).

    Parameters
    ----------
    model
        Model name.
    rs
        One or two arrays of correlations.
    df
        Degrees of freedom.

    Returns
    -------
    numpy.ndarray
        t (signed) or F.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if model == "linear":
            r = rs[0]
            r2 = np.minimum(r * r, 1.0)
            return np.where(r2 >= 1.0, np.sign(r) * np.inf, r * np.sqrt(df / (1.0 - r2)))
        if model == "anova":
            big_r2 = np.minimum(rs[0] ** 2 + rs[1] ** 2, 1.0)
            return np.where(big_r2 >= 1.0, np.inf, big_r2 / (1.0 - big_r2) * df / 2.0)
        rs2 = rs[0] ** 2
        ri = rs[1]
        rest = np.maximum(1.0 - rs2 - ri * ri, 0.0)
        return np.where(rest <= 0, np.sign(ri) * np.inf, ri * np.sqrt(df / rest))


def p_from_stat(model: str, stat: np.ndarray, *, df: int) -> np.ndarray:
    """p-value of t (two-sided) or F on (2, df), floored at the smallest normal double.

    Parameters
    ----------
    model
        Model name.
    stat
        Statistics.
    df
        Degrees of freedom.

    Returns
    -------
    numpy.ndarray
        ``2 pt(-|t|, df)`` or ``pf(F, 2, df, lower=FALSE)``.
    """
    stat = np.asarray(stat, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if model == "anova":
            p = special.fdtrc(2, df, stat)
        else:
            x = df / (df + stat * stat)
            p = special.betainc(df / 2.0, 0.5, np.where(np.isinf(stat), 0.0, x))
    p = np.where(stat == 0, 1.0, p)
    return np.maximum(p, XMIN)


def _second_vector(raw2: np.ndarray, q: np.ndarray, first_unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residualise ``raw2`` on Q, orthogonalise against ``first_unit``, scale; zero degenerate rows."""
    raw_ss = np.einsum("ij,ij->i", raw2, raw2)
    v = raw2 - (raw2 @ q) @ q.T
    v -= np.einsum("ij,ij->i", v, first_unit)[:, None] * first_unit
    res_ss = np.einsum("ij,ij->i", v, v)
    dead = res_ss <= raw_ss * EPS
    norms = np.sqrt(res_ss)
    norms[dead] = 0.0
    v *= np.divide(1.0, norms, out=np.zeros_like(norms), where=~dead)[:, None]
    return v, norms


def anova_dummies(raw: np.ndarray, categories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Build dummy rows of the 2nd and 3rd most frequent genotype of each SNP.

    Parameters
    ----------
    raw
        m x n genotypes, NaN = missing.
    categories
        The distinct genotype values of the data set (at most 3), ascending.

    Returns
    -------
    d1, d2 : numpy.ndarray
        m x n 0/1 arrays. Frequency ties are broken by ascending genotype value. A missing
        genotype has both dummies 0 (it falls in the reference group, the most frequent value).
    """
    m, n = raw.shape
    cats = np.full(3, np.nan)
    cats[: categories.size] = categories
    freq = np.stack([(raw == c).sum(axis=1) for c in cats], axis=1)  # NaN == NaN is False -> 0
    order = np.argsort(-freq, axis=1, kind="stable")  # ties: ascending category value
    second = cats[order[:, 1]]
    third = cats[order[:, 2]]
    d1 = (raw == second[:, None]).astype(np.float64)
    d2 = (raw == third[:, None]).astype(np.float64)
    return d1, d2


def _prepare_anova(raw: np.ndarray, q: np.ndarray) -> SnpBlock:
    values = np.asarray(raw, dtype=np.float64)
    finite = values[~np.isnan(values)]
    categories = np.unique(finite)
    if categories.size > 3:
        raise InputError(
            f"model 'anova' needs at most 3 distinct genotype values; found {categories.size} "
            f"({', '.join(map(str, categories[:6]))}{' ...' if categories.size > 6 else ''})"
        )
    d1, d2 = anova_dummies(values, categories)
    u1, _ = residualize_rows(d1, q)
    u2, _ = _second_vector(d2, q, u1)
    return SnpBlock(mats=(u1, u2), beta_norm=None)


MODELS = {
    "linear": Model("linear", "t_stat", 1),
    "anova": Model("anova", "f_stat", 2),
    "linear_cross": Model("linear_cross", "t_stat", 2),
}


def get_model(name: str) -> Model:
    """Look up a model by name.

    Parameters
    ----------
    name
        ``"linear"``, ``"anova"`` or ``"linear_cross"`` (MatrixEQTL's modelLINEAR, modelANOVA,
        modelLINEAR_CROSS; ``"cross"`` is accepted too).

    Returns
    -------
    Model
        The model.
    """
    key = {
        "cross": "linear_cross",
        "modelLINEAR": "linear",
        "modelANOVA": "anova",
        "modelLINEAR_CROSS": "linear_cross",
    }.get(name, name)
    if key not in MODELS:
        raise InputError(f"unknown model {name!r}; choose linear, anova or linear_cross")
    return MODELS[key]
