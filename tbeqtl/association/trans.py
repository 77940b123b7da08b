"""tensorQTL's trans mapping, exact in float64, with genotypes streamed in variant blocks.

:func:`map_trans` tests every variant against every phenotype (``y ~ 1 + C + g``) and keeps the
pairs with ``p <= pval_threshold``; :func:`filter_cis` then drops pairs near their phenotype, as
tensorQTL's ``trans.filter_cis`` does.

How the work is organised (``n`` samples, ``k`` covariates, ``P`` phenotypes):

* the cohort is aligned by ID (:func:`~tbeqtl.association.cohort.align_cohort`): the genotype
  input may hold more individuals, in any order; samples are put in ID order, so results do not
  depend on the input order;
* the covariate basis ``Q`` of ``[1, C]`` is built once and the phenotypes are residualised on it
  once per run and scaled to unit norm (``E~``, P x n);
* genotypes are read per chromosome in blocks of ``batch_size`` variants
  (``read_chrom(chrom, samples=..., start=, stop=)``): memory is bounded by the block, never the
  whole matrix. Per block: mean imputation over the analysed samples, tensorQTL's MAF filter
  (``min(af, 1 - af) >= maf_threshold``, after imputation), a minor-allele-count filter
  (tensorQTL's ``ma_count >= mac_threshold``), monomorphic variants (every value equal to the
  first) and variants whose residual is zero (collinear with the covariates) dropped; the rest
  residualised and scaled to unit norm (``U``);
* partial correlations ``R = U E~^T`` by matrix products over sub-blocks of rows; pairs with
  ``|r| >= r_thr`` are candidates, where ``r_thr`` is the correlation whose two-sided t-test
  p-value equals ``pval_threshold`` at ``dof = n - 2 - k``.

Precision (``precision=``): ``"float32"`` (default) runs the products in single precision as a
screen, with the safe margin ``delta = 1.01 (n + 2) 2^-24`` on ``|r|`` (the rounding error bound
of a dot product of two unit vectors of length ``n``, inputs rounded to float32 included), then
recomputes every candidate's ``r`` in float64 and keeps ``p <= pval_threshold`` exactly: the pairs
and statistics returned are those of the float64 computation (``precision="float64"``), at the
float32 speed. All reported statistics are float64:
``b = r ||e_res|| / ||g_res||``, ``b_se = ||e_res|| / ||g_res|| sqrt((1 - r^2) / dof)``,
``t = r sqrt(dof / (1 - r^2))``, ``pval = 2 P(T_dof > |t|)``, ``af = sum(g) / 2n`` (imputed).
These equal OLS of ``y ~ 1 + C + g`` (Frisch-Waugh-Lovell).

With interaction terms (``interaction_s``), every pair is tested with tensorQTL's interaction
model (``y ~ 1 + C + g + i + g:i``, :mod:`tbeqtl.association.interaction`) in float64: per block,
the variants' designs are orthonormalised once, one matrix product per sub-block gives every
phenotype's coordinates, pairs whose ``|t|`` of a genotype x term coefficient may reach the
threshold (with a relative slack of 1e-6 for the residual sum of squares taken by difference)
are recomputed exactly, and those with ``min_j pval_g-<term_j> <= pval_threshold`` are kept
(tensorQTL's rule on ``pval_gi``; it offers one term and returns only the p-values; here every
column of the interaction model is returned). The MAF rule is then tensorQTL's interaction rule
(MAF in both halves of the samples split at each term's median).

The number of tests run (variants tested x phenotypes tested) is recorded in ``df.attrs`` for
FDR over the tests run, with the variant and phenotype counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ..data import harmonize_chrom
from ..errors import InputError
from ..io.genotypes import as_genotype_source
from ..logs import progress
from .cohort import align_cohort
from .interaction import InteractionModel, interaction_maf_mask
from .residualize import covariate_basis, impute_row_mean, residualize_rows

__all__ = ["TRANS_COLUMNS", "filter_cis", "map_trans", "minor_allele_count", "r_threshold"]

logger = logging.getLogger(__name__)

#: Output columns of :func:`map_trans` (tensorQTL's).
TRANS_COLUMNS = ["variant_id", "phenotype_id", "pval", "b", "b_se", "af"]

#: Elements (rows x phenotypes) of one correlation sub-block (64 MiB in float64).
GEMM_ELEMENTS = 1 << 23

#: Variants whose interaction designs are held at once (``(1 + m) n`` float64 each).
INTERACTION_CHUNK = 4096


def r_threshold(pval_threshold: float, dof: int) -> float:
    """Return the ``|r|`` at which the two-sided t-test p-value equals ``pval_threshold``.

    Parameters
    ----------
    pval_threshold
        p-value threshold in (0, 1].
    dof
        Residual degrees of freedom.

    Returns
    -------
    float
        ``t / sqrt(dof + t^2)`` with ``t = T_dof^-1(1 - pval_threshold / 2)``.
    """
    from scipy import stats  # imported where used (0.3 s)

    t = stats.t.isf(pval_threshold / 2.0, dof)
    return float(t / np.sqrt(dof + t * t))


def minor_allele_count(genotypes: np.ndarray) -> np.ndarray:
    """Count minor alleles as tensorQTL's ``ma_count`` does, for imputed dosages (v x n).

    ``int(sum of g over g > 0.5)`` when ``af <= 0.5``, else ``2n`` minus it.

    Parameters
    ----------
    genotypes
        v x n imputed dosages.

    Returns
    -------
    numpy.ndarray
        int64 (v,).
    """
    n2 = 2 * genotypes.shape[1]
    af = genotypes.sum(axis=1) / n2
    count = np.where(genotypes > 0.5, genotypes, 0.0).sum(axis=1).astype(np.int64)
    return np.where(af <= 0.5, count, n2 - count)


@dataclass
class _Counts:
    read: int = 0
    maf: int = 0
    mac: int = 0
    monomorphic: int = 0
    collinear: int = 0
    tested: int = 0


@dataclass(frozen=True)
class _Phenotypes:
    ids: pd.Index
    unit: np.ndarray  # P x n, unit residuals
    norms: np.ndarray  # ||e_res||
    unit32: np.ndarray | None


def _prepare_phenotypes(phenotype_df: pd.DataFrame, q: np.ndarray, *, f32: bool) -> _Phenotypes:
    values = phenotype_df.to_numpy(np.float64, copy=True)
    nan = ~np.isfinite(values).all(axis=1)
    if nan.any():
        logger.warning(
            "%d phenotype(s) with missing values not tested: %s",
            int(nan.sum()),
            ", ".join(phenotype_df.index[nan][:10]),
        )
    unit, norms = residualize_rows(values[~nan], q)
    ids = phenotype_df.index[~nan]
    dead = norms == 0
    if dead.any():
        logger.warning(
            "%d phenotype(s) constant after removing the covariates not tested: %s",
            int(dead.sum()),
            ", ".join(ids[dead][:10]),
        )
    unit, norms, ids = np.ascontiguousarray(unit[~dead]), norms[~dead], ids[~dead]
    return _Phenotypes(ids, unit, norms, unit.astype(np.float32) if f32 else None)


def _filter_block(
    raw: np.ndarray, *, maf_threshold: float, mac_threshold: int, counts: _Counts, terms=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Impute; drop monomorphic variants, then apply the MAF and MAC filters.

    With interaction ``terms`` (n x m), the MAF rule is tensorQTL's interaction rule
    (:func:`~tbeqtl.association.interaction.interaction_maf_mask`). Returns the kept rows, their
    imputed dosages and ``af``.
    """
    g = impute_row_mean(raw.astype(np.float64))
    af = g.sum(axis=1) / (2.0 * g.shape[1])
    keep = ~(g == g[:, :1]).all(axis=1)
    counts.monomorphic += int((~keep).sum())
    if maf_threshold > 0:
        if terms is None:
            ok = np.minimum(af, 1.0 - af) >= maf_threshold
        else:
            ok = interaction_maf_mask(g, terms, threshold=maf_threshold)
        counts.maf += int((keep & ~ok).sum())
        keep &= ok
    if mac_threshold > 0:
        ok = minor_allele_count(g) >= mac_threshold
        counts.mac += int((keep & ~ok).sum())
        keep &= ok
    rows = np.flatnonzero(keep)
    return rows, g[rows], af[rows]


def _candidates(unit: np.ndarray, phen: _Phenotypes, r_thr: float, *, f32: bool):
    """Rows/columns of the pairs with ``|r| >= r_thr`` (screened), and their exact float64 ``r``."""
    n = unit.shape[1]
    n_phen = phen.unit.shape[0]
    delta = 1.01 * (n + 2) * 2.0**-24 if f32 else 0.0
    screen = max(r_thr * (1.0 - 1e-12) - delta, 0.0)
    step = max(1, GEMM_ELEMENTS // max(n_phen, 1))
    mats = phen.unit32 if f32 else phen.unit
    left = unit.astype(np.float32) if f32 else unit
    rows, cols = [], []
    buf = np.empty((min(step, unit.shape[0]), n_phen), dtype=mats.dtype)
    for a in range(0, unit.shape[0], step):
        out = buf[: min(step, unit.shape[0] - a)]
        np.matmul(left[a : a + step], mats.T, out=out)
        # rows holding a candidate first (two reductions, no writes), then their columns
        hit = np.flatnonzero((out.max(axis=1) >= screen) | (out.min(axis=1) <= -screen))
        if hit.size:
            r, c = np.nonzero(np.abs(out[hit]) >= screen)
            rows.append(hit[r] + a)
            cols.append(c)
    rows = np.concatenate(rows) if rows else np.empty(0, np.int64)
    cols = np.concatenate(cols) if cols else np.empty(0, np.int64)
    r_exact = np.einsum("ij,ij->i", unit[rows], phen.unit[cols])
    return rows, cols, r_exact


def _pair_stats(r: np.ndarray, g_norm: np.ndarray, e_norm: np.ndarray, dof: int):
    """float64 p, b, b_se of pairs from their exact partial correlation and residual norms."""
    one_minus_r2 = np.clip((1.0 - r) * (1.0 + r), 0.0, None)
    ratio = e_norm / g_norm
    b = r * ratio
    b_se = ratio * np.sqrt(one_minus_r2 / dof)
    with np.errstate(divide="ignore"):
        t = r * np.sqrt(dof / one_minus_r2)
    pval = 2.0 * special.stdtr(dof, -np.abs(t))  # = 2 t.sf(|t|), bit for bit
    # |r| = 1: t is infinite, p = 0 (betainc gives the same limit)
    pval = np.where(np.isfinite(t), pval, special.betainc(dof / 2.0, 0.5, one_minus_r2))
    return pval, b, b_se


def _block_ranges(source, batch_size: int):
    chroms = source.variant_df["chrom"].to_numpy()
    for chrom in source.chromosomes:
        ids = source.variant_df.index[chroms == chrom]
        for start in range(0, len(ids), batch_size):
            yield chrom, start, min(start + batch_size, len(ids)), ids[start : start + batch_size]


def map_trans(
    genotype_df,
    phenotype_df: pd.DataFrame,
    covariates_df: pd.DataFrame | None = None,
    *,
    variant_df: pd.DataFrame | None = None,
    interaction_s=None,
    pval_threshold: float = 1e-5,
    maf_threshold: float = 0.05,
    mac_threshold: int = 0,
    batch_size: int = 20_000,
    sample_map=None,
    gtex_ids: bool = False,
    precision: str = "float32",
    show_progress: bool | None = None,
) -> pd.DataFrame:
    """Every variant x phenotype association with ``p <= pval_threshold`` (tensorQTL's ``map_trans``).

    Parameters
    ----------
    genotype_df
        Variants x individuals dosages (DataFrame; tensorQTL's int8 with -9 missing, or float with
        NaN), or a :class:`~tbeqtl.io.genotypes.GenotypeSource` (streamed by block).
    phenotype_df
        Phenotypes x samples.
    covariates_df
        Samples x covariates (either orientation, aligned by ID); no missing values.
    variant_df
        ``chrom``/``pos`` per variant, for a DataFrame ``genotype_df`` (optional here: without it
        the table is one block sequence in its row order).
    interaction_s
        Interaction term(s) by sample (a Series, or samples x terms): test ``y ~ 1 + C + g + i +
        g:i`` instead (see :mod:`tbeqtl.association.interaction`), keep the pairs whose smallest
        genotype x term p-value is ``<= pval_threshold``, and apply tensorQTL's interaction MAF
        rule with ``maf_threshold`` (its trans mode does the same).
    pval_threshold
        Keep pairs with ``pval <= pval_threshold`` (in (0, 1]).
    maf_threshold
        Keep variants with ``min(af, 1 - af) >= maf_threshold`` after imputation (tensorQTL's
        Python default 0.05; 0 disables).
    mac_threshold
        Keep variants with tensorQTL's ``ma_count >= mac_threshold`` (0 disables).
    batch_size
        Variants read per block (memory).
    sample_map, gtex_ids
        Phenotype sample -> genotype individual (see :func:`~tbeqtl.association.cohort.align_cohort`).
    precision
        ``"float32"`` (screen + exact float64 recomputation; identical output) or ``"float64"``
        (interaction tests always run in float64).
    show_progress
        Progress bar over blocks (default: automatic).

    Returns
    -------
    pandas.DataFrame
        Columns ``variant_id phenotype_id pval b b_se af`` (statistics float64), variants in input
        order, phenotypes in ``phenotype_df`` order within a variant; with ``interaction_s``,
        ``variant_id phenotype_id``, the columns of
        :func:`~tbeqtl.association.interaction.interaction_columns` and ``af``. ``attrs``: ``n_tests``
        (variants tested x phenotypes tested), ``n_variants`` (tested), ``n_phenotypes``
        (tested), ``n_samples``, ``n_covariates``, ``dof``, ``n_variants_read`` and the variants
        dropped per rule (``n_dropped_maf``, ``n_dropped_mac``, ``n_dropped_monomorphic``,
        ``n_dropped_collinear``).

    Raises
    ------
    InputError
        Bad thresholds, samples without genotypes, missing covariate values, collinear covariates,
        constant or collinear interaction terms, no degrees of freedom.
    """
    if not 0 < pval_threshold <= 1:
        raise InputError(f"pval_threshold must be in (0, 1]; got {pval_threshold}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1; got {batch_size}")
    if precision not in ("float32", "float64"):
        raise InputError(f"precision must be 'float32' or 'float64'; got {precision!r}")
    source = _as_source(genotype_df, variant_df)
    cohort = align_cohort(
        phenotype_df,
        source.samples,
        covariates_df,
        interaction_df=interaction_s,
        sample_map=sample_map,
        gtex_ids=gtex_ids,
    )
    run = _TransRun.build(
        cohort,
        pval_threshold=pval_threshold,
        maf_threshold=maf_threshold,
        mac_threshold=mac_threshold,
        f32=precision == "float32",
    )
    individuals = [str(s) for s in cohort.genotype_ids]
    parts = []
    blocks = list(_block_ranges(source, batch_size))
    for chrom, start, stop, ids in progress(
        blocks, desc="trans blocks", total=len(blocks), enabled=show_progress if len(blocks) > 1 else False
    ):
        raw = source.read_chrom(chrom, samples=individuals, start=start, stop=stop)
        if raw.shape != (stop - start, cohort.n_samples):
            raise InputError(
                f"genotype source returned shape {raw.shape} for {chrom} variants {start}:{stop} "
                f"and {cohort.n_samples} samples"
            )
        parts.append(run.test_block(raw, ids))
    out = pd.concat(parts, ignore_index=True) if parts else _empty(run.columns)
    out.attrs.update(run.attrs())
    logger.info(
        "trans: %d variants x %d phenotypes = %d tests; %d pairs with p <= %g",
        run.counts.tested,
        run.phen.ids.size,
        run.counts.tested * run.phen.ids.size,
        len(out),
        pval_threshold,
    )
    return out


@dataclass
class _TransRun:
    """What stays fixed over the blocks of one run, and the running variant counts."""

    phen: _Phenotypes
    q: np.ndarray
    n_samples: int
    n_covariates: int
    dof: int
    r_thr: float
    pval_threshold: float
    maf_threshold: float
    mac_threshold: int
    f32: bool
    counts: _Counts
    model: InteractionModel | None = None
    split: tuple[np.ndarray, np.ndarray] | None = None  # the model's y1, uy of the phenotypes

    @classmethod
    def build(cls, cohort, *, pval_threshold, maf_threshold, mac_threshold, f32) -> _TransRun:
        n = cohort.n_samples
        cov = cohort.covariates_df
        basis = covariate_basis(
            None if cov is None else cov.to_numpy().T,
            n,
            names=None if cov is None else list(cov.columns),
            collinear="drop",
        )
        dof = n - 2 - basis.n_covariates
        if dof <= 0:
            raise InputError(f"no residual degrees of freedom: {n} samples, {basis.n_covariates} covariates")
        phen = _prepare_phenotypes(cohort.phenotype_df, basis.q, f32=f32)
        model = split = None
        if cohort.interaction_df is not None:
            inter = cohort.interaction_df
            model = InteractionModel(
                inter.to_numpy(), basis.q, n_covariates=basis.n_covariates, names=list(inter.columns)
            )
            dof, f32 = model.dof, False
            split = model.split_phenotypes(phen.unit * phen.norms[:, None])
        return cls(
            phen=phen,
            q=basis.q,
            n_samples=n,
            n_covariates=basis.n_covariates,
            dof=dof,
            r_thr=r_threshold(pval_threshold, dof),
            pval_threshold=pval_threshold,
            maf_threshold=maf_threshold,
            mac_threshold=mac_threshold,
            f32=f32,
            counts=_Counts(),
            model=model,
            split=split,
        )

    def test_block(self, raw: np.ndarray, ids: pd.Index) -> pd.DataFrame:
        """Filter, residualise and test one block of raw dosages (variants ``ids``)."""
        self.counts.read += raw.shape[0]
        rows, g, af = _filter_block(
            raw,
            maf_threshold=self.maf_threshold,
            mac_threshold=self.mac_threshold,
            counts=self.counts,
            terms=None if self.model is None else self.model.terms,
        )
        if self.model is not None:
            return self._test_interaction(rows, g, af, ids)
        unit, g_norm = residualize_rows(g, self.q)
        live = g_norm > 0
        self.counts.collinear += int((~live).sum())
        rows, unit, g_norm, af = rows[live], unit[live], g_norm[live], af[live]
        self.counts.tested += rows.size
        if rows.size == 0 or self.phen.ids.size == 0:
            return _empty(self.columns)
        i, j, r = _candidates(unit, self.phen, self.r_thr, f32=self.f32)
        pval, b, b_se = _pair_stats(r, g_norm[i], self.phen.norms[j], self.dof)
        keep = pval <= self.pval_threshold
        i, j = i[keep], j[keep]
        return pd.DataFrame(
            {
                "variant_id": np.asarray(ids[rows[i]], dtype=object),
                "phenotype_id": np.asarray(self.phen.ids[j], dtype=object),
                "pval": pval[keep],
                "b": b[keep],
                "b_se": b_se[keep],
                "af": af[i],
            }
        )

    def _test_interaction(self, rows, g, af, ids) -> pd.DataFrame:
        """Interaction tests of the filtered variants of a block against every phenotype."""
        model, (y1, uy) = self.model, self.split
        p_cols = [k for k, c in enumerate(model.columns) if c == "pval_gi" or c.startswith("pval_g-")]
        from scipy import stats

        t_thr = float(stats.t.isf(self.pval_threshold / 2.0, self.dof))
        parts = []
        for a in range(0, rows.size, INTERACTION_CHUNK):
            design = model.prepare(g[a : a + INTERACTION_CHUNK])
            self.counts.collinear += int(design.deficient.sum())
            self.counts.tested += int((~design.deficient).sum())
            i, j = model.screen(design, y1, uy, t_threshold=t_thr)
            st = model.test_pairs(design, i, y1=y1, uy=uy, cols=j)
            keep = st[:, p_cols].min(axis=1) <= self.pval_threshold
            i, j, st = i[keep] + a, j[keep], st[keep]
            if not keep.any():
                continue
            frame = pd.DataFrame(st, columns=model.columns)
            frame.insert(0, "phenotype_id", np.asarray(self.phen.ids[j], dtype=object))
            frame.insert(0, "variant_id", np.asarray(ids[rows[i]], dtype=object))
            frame["af"] = af[i]
            parts.append(frame)
        return pd.concat(parts, ignore_index=True) if parts else _empty(self.columns)

    @property
    def columns(self) -> list[str]:
        """Output columns of the run."""
        if self.model is None:
            return TRANS_COLUMNS
        return ["variant_id", "phenotype_id", *self.model.columns, "af"]

    def attrs(self) -> dict:
        """Test and variant counts for ``DataFrame.attrs``."""
        c = self.counts
        return {
            "n_tests": int(c.tested) * int(self.phen.ids.size),
            "n_variants": int(c.tested),
            "n_phenotypes": int(self.phen.ids.size),
            "n_samples": int(self.n_samples),
            "n_covariates": int(self.n_covariates),
            "dof": int(self.dof),
            "n_variants_read": int(c.read),
            "n_dropped_maf": int(c.maf),
            "n_dropped_mac": int(c.mac),
            "n_dropped_monomorphic": int(c.monomorphic),
            "n_dropped_collinear": int(c.collinear),
        }


def _empty(columns=tuple(TRANS_COLUMNS)) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c.endswith("_id") else np.float64) for c in columns})


def _as_source(genotype_df, variant_df):
    if isinstance(genotype_df, pd.DataFrame) and variant_df is None:
        # positions are not needed for trans tests: one pseudo-chromosome in row order
        variant_df = pd.DataFrame(
            {"chrom": "all", "pos": np.arange(1, len(genotype_df) + 1)}, index=genotype_df.index.astype(str)
        )
    return as_genotype_source(genotype_df, variant_df)


def _harmonized(values) -> np.ndarray:
    """Harmonised chromosome names, computed once per distinct value."""
    uniques, inverse = np.unique(np.asarray(values).astype(str), return_inverse=True)
    return np.asarray(harmonize_chrom(uniques), dtype=object)[inverse]


def _phenotype_bounds(phenotype_pos_df: pd.DataFrame) -> pd.DataFrame:
    """``chrom``, ``start``, ``end`` from tensorQTL's ``chr/pos``, ``chr/start/end`` or ``chrom/...``."""
    df = phenotype_pos_df.rename(columns={"chr": "chrom"})
    if "chrom" not in df.columns:
        raise InputError(
            f"phenotype positions need a chr or chrom column (found: {', '.join(map(str, df.columns))})"
        )
    if {"start", "end"} <= set(df.columns):
        start, end = df["start"], df["end"]
    elif "pos" in df.columns:
        start = end = df["pos"]
    elif "tss" in df.columns:
        start = end = df["tss"]
    else:
        raise InputError("phenotype positions need pos, or start and end columns")
    out = pd.DataFrame(
        {
            "chrom": _harmonized(df["chrom"]),
            "start": pd.to_numeric(start).to_numpy(np.int64),
            "end": pd.to_numeric(end).to_numpy(np.int64),
        },
        index=pd.Index(df.index.astype(str)),
    )
    return out


def filter_cis(
    pairs_df: pd.DataFrame,
    phenotype_pos_df: pd.DataFrame,
    variant_df: pd.DataFrame,
    *,
    window: int = 5_000_000,
) -> pd.DataFrame:
    """Drop pairs whose variant lies within ``window`` of the phenotype (tensorQTL's ``filter_cis``).

    A pair is dropped when the variant is on the phenotype's chromosome and
    ``start - window <= pos <= end + window`` (both ends inclusive).

    Parameters
    ----------
    pairs_df
        Pairs with ``variant_id`` and ``phenotype_id`` (e.g. from :func:`map_trans`).
    phenotype_pos_df
        Indexed by phenotype ID: ``chr``/``chrom`` with ``pos`` (tensorQTL's one-position form) or
        ``start``/``end``.
    variant_df
        Indexed by variant ID: ``chrom`` (or ``chr``) and ``pos``.
    window
        Distance in bp (default 5,000,000, tensorQTL's).

    Returns
    -------
    pandas.DataFrame
        The rows of ``pairs_df`` that are not cis, index reset (``attrs`` kept).

    Raises
    ------
    InputError
        Phenotypes or variants of the pairs without positions (named).
    """
    bounds = _phenotype_bounds(phenotype_pos_df)
    variants = variant_df.rename(columns={"chr": "chrom"})
    v_ids = pd.Index(pairs_df["variant_id"].astype(str))
    p_ids = pd.Index(pairs_df["phenotype_id"].astype(str))
    v_pos = pd.Index(variants.index.astype(str)).get_indexer(v_ids)
    p_pos = bounds.index.get_indexer(p_ids)
    if (p_pos < 0).any():
        raise InputError("phenotypes of the pairs without positions", ids=p_ids[p_pos < 0].unique())
    if (v_pos < 0).any():
        raise InputError("variants of the pairs without positions", ids=v_ids[v_pos < 0].unique())
    v_chrom = _harmonized(variants["chrom"])[v_pos]
    pos = pd.to_numeric(variants["pos"]).to_numpy(np.int64)[v_pos]
    same = v_chrom == bounds["chrom"].to_numpy()[p_pos]
    start, end = bounds["start"].to_numpy()[p_pos], bounds["end"].to_numpy()[p_pos]
    near = (start - window <= pos) & (pos <= end + window)
    out = pairs_df[~(same & near)].reset_index(drop=True)
    out.attrs = dict(pairs_df.attrs)
    return out
