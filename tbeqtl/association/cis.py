"""tensorQTL's cis workflow in exact float64: nominal pairs, permutations, conditional passes.

The functions keep tensorQTL 1.0.10's names, argument orientations and output columns
(``../shared/docs/tensorqtl-semantics.md``), so a tensorQTL script changes its import line:

- :func:`map_nominal`: every cis pair, one parquet file per chromosome;
- :func:`map_cis`: one row per phenotype, its top variant with permutation and beta-approximated
  p-values (then :func:`~tbeqtl.association.post.calculate_qvalues`);
- :func:`map_independent`: forward-backward conditional mapping of the eGenes.

Differences from tensorQTL: statistics are exact float64 OLS (tensorQTL: float32, ~1e-5
relative); the permutations come from a seeded :class:`numpy.random.Generator` drawn over the
samples sorted by ID (tensorQTL: numpy's global legacy seed over the input order), so results do
not depend on the order of any input, and the same seed gives the same permutations in every
mode; genotypes may hold more individuals than the phenotypes, in any order (subset by ID);
variants are ordered by (position, ID) within a chromosome whatever the input order; phenotypes
with missing values are skipped with a warning (tensorQTL returns NaN for them); variants
collinear with the covariates (``R^2 > 1 - 1e-10``) are not testable, like monomorphic ones.

Genotypes are streamed by blocks of variants. :func:`map_nominal` reads each block once
(:func:`.cis_nominal.write_nominal_streamed`): per-variant statistics, one product with the
phenotypes whose windows meet the block, pairs written per phenotype once its window is read.
:func:`map_cis` and :func:`map_independent` make one pass for the per-variant statistics (imputed
mean, allele counts, residual norm on the covariates, in float64; :func:`.cis_kernels.open_chromosome`),
then read the int8 blocks under the current windows on demand and drop those the windows have
left (:class:`.cis_kernels.BlockStore`).

Backends (``backend=``, :mod:`.cis_device`): ``"auto"`` runs the heavy products with torch on CUDA
when a GPU is present, else with numpy (torch is then not imported); ``"torch"``/``"torch-cpu"``
force torch. On a torch device run the float32 permutation products with their maxima and the
candidate selection (TF32 disabled; the window's float32 rows stay on the device, the permuted
phenotypes are uploaded once per phenotype) and the nominal block GEMMs; the float64
recomputation of the candidates and every statistic stay on the host. The permutation,
adaptive and independent tables are then the numpy backend's (bit for bit on CPU torch in the
tests); nominal statistics agree to ~1e-14 relative (a float64 GEMM of another library). The
interaction models (:func:`map_nominal` with ``interaction_df``,
:func:`~tbeqtl.association.interaction_perm.map_cis_interaction`) run in numpy.

Memory: the genotype blocks under the current windows (int8 hard calls, float32 dosages; a
window plus a block at each end), with their float64 and float32 copies (``12 n`` bytes per
window variant, ~50 MB for a 1 Mb window of GEUVADIS chr18), ~150 bytes per variant of the
chromosome (IDs, positions, float64 statistics), and with ``P`` permutations the permuted
phenotypes (``12 P n`` bytes) and one float32 product block (``1,024 P 4`` bytes); it does not grow
with the number of genotype calls. A source that does not list a chromosome's variants by
position (an unsorted DataFrame) is loaded whole (``V n`` bytes of int8).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, format_ids
from ..schema import validate_table
from .cis_device import cis_device, device_scope
from .cis_inputs import CisInputs, Ticker, prepare_cis
from .cis_kernels import (
    ChromGenotypes,
    WindowCache,
    association_stats,
    extend_basis,
    load_chromosome,
    open_chromosome,
    residual_unit,
    scan_permutations,
)
from .cis_nominal import write_nominal_chromosome, write_nominal_streamed
from .permutation import beta_approximated_pvalue, canonical_permutations

__all__ = ["CIS_COLUMNS", "map_cis", "map_independent", "map_nominal"]

logger = logging.getLogger(__name__)

#: Relative tolerance on ``r^2`` within which variants tie for the top (the first one is reported).
TIE_RTOL = 1e-12

#: map_cis output columns (index ``phenotype_id``), tensorQTL's order.
CIS_COLUMNS = [
    "num_var",
    "beta_shape1",
    "beta_shape2",
    "true_df",
    "pval_true_df",
    "variant_id",
    "start_distance",
    "end_distance",
    "ma_samples",
    "ma_count",
    "af",
    "pval_nominal",
    "slope",
    "slope_se",
    "pval_perm",
    "pval_beta",
]
_INT_COLUMNS = ("num_var", "start_distance", "end_distance", "ma_samples", "ma_count")


def _variant_filter(chromg: ChromGenotypes, *, maf_threshold: float, mac_threshold: int) -> np.ndarray:
    """Variants passing tensorQTL's MAF filter (after imputation) and the minor-allele-count filter."""
    keep = np.ones(chromg.n_variants, dtype=bool)
    if maf_threshold > 0:
        keep &= chromg.maf >= maf_threshold
    if mac_threshold > 0:
        keep &= chromg.ma_count >= mac_threshold
    dropped = int((~keep).sum())
    if dropped:
        logger.info(
            "%s: %d of %d variants below maf_threshold=%g / mac_threshold=%d",
            chromg.chrom,
            dropped,
            keep.size,
            maf_threshold,
            mac_threshold,
        )
    return keep


def _window(chromg: ChromGenotypes, idx: np.ndarray, start: int, end: int, window: int) -> np.ndarray:
    """Rows of ``idx`` (sorted chromosome rows) with ``start - window <= pos <= end + window``."""
    lo = np.searchsorted(chromg.pos, start - window, side="left")
    hi = np.searchsorted(chromg.pos, end + window, side="right")
    return idx[np.searchsorted(idx, lo) : np.searchsorted(idx, hi)]


def _check_common(*, window, maf_threshold, mac_threshold) -> int:
    if window is None or window < 0:
        raise InputError(f"window must be >= 0, got {window}")
    if not 0 <= maf_threshold < 0.5 + 1e-12:
        raise InputError(f"maf_threshold must lie in [0, 0.5], got {maf_threshold}")
    if mac_threshold < 0:
        raise InputError(f"mac_threshold must be >= 0, got {mac_threshold}")
    return int(window)


# --------------------------------------------------------------------------------------------- nominal
def map_nominal(
    genotype_df,
    variant_df,
    phenotype_df: pd.DataFrame,
    phenotype_pos_df: pd.DataFrame,
    prefix: str,
    covariates_df: pd.DataFrame | None = None,
    *,
    maf_threshold: float = 0,
    mac_threshold: int = 0,
    interaction_df=None,
    maf_threshold_interaction: float = 0.05,
    window: int = 1_000_000,
    output_dir=".",
    sample_map=None,
    gtex_ids: bool = False,
    show_progress: bool | None = None,
    backend: str = "auto",
) -> dict[str, Path]:
    """Every cis variant-phenotype pair, written as ``<output_dir>/<prefix>.cis_qtl_pairs.<chrom>.parquet``.

    Parameters
    ----------
    genotype_df
        Variants x individuals dosages (ALT counts; int8 with -9 or NaN missing) with
        ``variant_df``, or a genotype source (then ``variant_df=None``). May hold more
        individuals than the phenotypes, in any order.
    variant_df
        ``chrom`` (or ``chr``) and ``pos`` per variant ID, for a DataFrame ``genotype_df``.
    phenotype_df
        Phenotypes x samples.
    phenotype_pos_df
        Indexed by phenotype: ``chr``/``chrom`` and ``pos`` or ``start``/``end`` (1-based;
        sorted within each chromosome).
    prefix
        File name prefix.
    covariates_df
        Samples x covariates (tensorQTL's orientation; the transpose is recognised by ID).
    maf_threshold, mac_threshold
        Drop variants with ``min(af, 1 - af) < maf_threshold`` or ``ma_count < mac_threshold``
        (after mean imputation over the analysed samples).
    interaction_df
        Interaction term(s), samples x terms (a Series is one term): tensorQTL's interaction
        model ``y ~ g + i + g:i`` per term set, with its interaction MAF rule.
    maf_threshold_interaction
        tensorQTL's MAF threshold within the lower and upper halves of each term.
    window
        cis window (bp) on each side; both ends inclusive.
    output_dir
        Where the files go.
    sample_map, gtex_ids
        Phenotype sample -> genotype individual (see :func:`~tbeqtl.association.cohort.align_cohort`).
    show_progress
        Progress bar (default: when stderr is a terminal; otherwise periodic log lines).
    backend
        Where the block products run: ``"auto"`` (torch on CUDA when available, else numpy; torch
        is not imported on a machine without a GPU driver), ``"numpy"``, ``"torch"`` (CUDA if
        available, else CPU) or ``"torch-cpu"`` (:mod:`.cis_device`). The statistics are float64
        on the host either way (equal to ~1e-15 relative). The interaction model runs in numpy.

    Returns
    -------
    dict
        Chromosome -> path of its pair file (chromosomes with at least one pair).

    Notes
    -----
    Columns (schema ``cis_qtl_pairs``): ``phenotype_id variant_id start_distance [end_distance]
    af ma_samples ma_count pval_nominal slope slope_se``, ``end_distance`` when the phenotype
    positions are intervals, as tensorQTL writes them; with ``interaction_df`` the interaction
    columns replace ``pval_nominal slope slope_se``. Integers are int32 as in tensorQTL; every
    float is float64 (tensorQTL stores slopes in float32): the statistics are exact OLS.
    Monomorphic variants (and variants collinear with the covariates) are kept as rows with NaN
    statistics, as tensorQTL writes them, unless a MAF/MAC threshold drops them; the interaction
    mode drops them (as tensorQTL does). Each chromosome's file is written in row groups as the
    phenotypes are done, through a temporary file renamed at the end.
    """
    window = _check_common(window=window, maf_threshold=maf_threshold, mac_threshold=mac_threshold)
    device = cis_device(backend)
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
    model = None
    if inputs.cohort.interaction_df is not None:
        from .interaction import InteractionModel

        inter = inputs.cohort.interaction_df
        model = InteractionModel(
            inter.to_numpy(),
            inputs.q,
            n_covariates=inputs.basis.n_covariates,
            names=list(map(str, inter.columns)),
        )
        if device is not None:
            logger.info("the interaction model runs in numpy (backend %r not used)", backend)
    output_dir = Path(output_dir)
    files = {}
    ticker = Ticker(inputs.n_phenotypes, desc="cis nominal", enabled=show_progress)
    for chrom, pids in inputs.by_chrom.items():
        path = output_dir / f"{prefix}.cis_qtl_pairs.{chrom}.parquet"
        if model is None:  # genotypes streamed by blocks
            n_rows = write_nominal_streamed(
                inputs,
                chrom,
                pids=pids,
                path=path,
                window=window,
                maf_threshold=maf_threshold,
                mac_threshold=mac_threshold,
                ticker=ticker,
                device=device,
            )
            if n_rows:
                files[chrom] = path
            continue
        chromg = load_chromosome(inputs.source, chrom, samples=inputs.cohort.genotype_ids, q=inputs.q)
        listed = np.flatnonzero(
            _variant_filter(chromg, maf_threshold=maf_threshold, mac_threshold=mac_threshold)
        )
        n_rows = write_nominal_chromosome(
            inputs,
            chromg,
            pids=pids,
            listed=listed,
            path=path,
            window=window,
            model=model,
            maf_threshold_interaction=maf_threshold_interaction,
            ticker=ticker,
        )
        if n_rows:
            files[chrom] = path
        del chromg
    ticker.close()
    return files


# --------------------------------------------------------------------------------------------- permutations
#: Permutations residualised at a time (their passes over the rows then stay in cache: 10,000 x 445
#: in one go is memory-bound, ~45 ms; in chunks of 512, ~29 ms, with the same rows on this machine).
PERMUTATION_CHUNK = 512


def _unit_permutations(y: np.ndarray, perms: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Permuted raw phenotypes residualised on the unpermuted covariates, unit rows (P x n)."""
    unit = np.empty(perms.shape)
    for a in range(0, len(perms), PERMUTATION_CHUNK):
        unit[a : a + PERMUTATION_CHUNK] = residual_unit(y[perms[a : a + PERMUTATION_CHUNK]], q)[0]
    return unit


def _top_row(
    inputs: CisInputs, chromg, vidx, scan, *, pid: str, y_norm: float, dof: int, nperm: int
) -> tuple[dict, int] | None:
    """map_cis row of the top variant of a scan (None when no variant is testable)."""
    ok = scan.res_norm > 0
    if not ok.any():
        return None
    st = association_stats(scan.dots * y_norm, scan.res_norm, y_norm=y_norm, df=dof)
    r2 = np.where(ok, st["r2"], -1.0)
    # first variant on ties (tensorQTL), ties taken to float64 rounding: mirrored variants (g and
    # 2 - g) have the same r^2 up to ~1e-16, and which one rounds higher depends on the BLAS threads
    i = int(np.argmax(r2 >= r2.max() * (1.0 - TIE_RTOL)))
    v = int(vidx[i])
    r2_top = float(st["r2"][i])
    start, end = inputs.bounds(pid)
    row = {
        "num_var": int(ok.sum()),
        **beta_approximated_pvalue(scan.r2_perm, r2_top, dof),
        "variant_id": chromg.ids[v],
        "start_distance": int(chromg.pos[v] - start),
        "end_distance": int(chromg.pos[v] - end),
        "ma_samples": int(chromg.ma_samples[v]),
        "ma_count": int(chromg.ma_count[v]),
        "af": float(chromg.af[v]),
        "pval_nominal": float(st["pval"][i]),
        "slope": float(st["slope"][i]),
        "slope_se": float(st["slope_se"][i]),
        "pval_perm": float((np.sum(scan.r2_perm >= r2_top) + 1) / (nperm + 1)),
    }
    return row, v


def _cis_frame(rows: list[dict], index: list[str], *, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    table = pd.DataFrame(rows, index=pd.Index(index, name="phenotype_id"), columns=CIS_COLUMNS + list(extra))
    for col in _INT_COLUMNS + tuple(c for c in extra if c == "rank"):
        table[col] = table[col].astype(np.int32)
    table["variant_id"] = table["variant_id"].astype(object)
    for col in table.columns:
        if col not in _INT_COLUMNS and col not in ("variant_id", "rank"):
            table[col] = table[col].astype(np.float64)
    return table


def _check_nperm(nperm: int) -> int:
    if isinstance(nperm, str):
        raise InputError(f'nperm must be an integer here ("adaptive" is a map_cis option), got {nperm!r}')
    if int(nperm) < 10:
        raise InputError(f"nperm must be at least 10 for the beta approximation, got {nperm}")
    return int(nperm)


#: ``nperm="adaptive"``: permutations of the first stage, and of the phenotypes not settled by it.
ADAPTIVE_FIRST = 1_000
ADAPTIVE_MAX = 10_000
#: ``nperm="adaptive"``: half-width of the band around the provisional eGene threshold, in binomial
#: standard errors of a 1,000-permutation p-value, in which a phenotype's call is not settled.
ADAPTIVE_Z = 3.0


class _Chromosomes:
    """The loaded chromosome (and its tested variants and cache), reloaded only when it changes."""

    def __init__(self, inputs: CisInputs, *, maf_threshold: float, mac_threshold: int, device=None):
        self.inputs, self.maf, self.mac = inputs, maf_threshold, mac_threshold
        self.device = device
        self.chrom, self.state = None, None

    def get(self, chrom: str):
        if chrom != self.chrom:
            self.state = None  # free the previous chromosome before reading the next
            chromg = open_chromosome(
                self.inputs.source, chrom, samples=self.inputs.cohort.genotype_ids, q=self.inputs.q
            )
            keep = np.flatnonzero(
                chromg.testable & _variant_filter(chromg, maf_threshold=self.maf, mac_threshold=self.mac)
            )
            self.chrom, self.state = chrom, (chromg, keep, WindowCache(chromg, keep, device=self.device))
        return self.state


def _permutation_pass(
    inputs: CisInputs, chroms: _Chromosomes, pids_by_chrom: dict, perms: np.ndarray, *, window: int, ticker
) -> tuple[dict[str, dict], int]:
    """map_cis rows (by phenotype) of the listed phenotypes with the permutations ``perms``."""
    rows, n_empty = {}, 0
    for chrom, pids in pids_by_chrom.items():
        chromg, keep, cache = chroms.get(chrom)
        for pid in pids:
            ticker.advance()
            start, end = inputs.bounds(pid)
            vidx = _window(chromg, keep, start, end, window)
            if not vidx.size:
                n_empty += 1
                continue
            cache.release(int(np.searchsorted(keep, vidx[0])))
            y = inputs.values[pid]
            u, y_norm = residual_unit(y, inputs.q)
            yp = _unit_permutations(y, perms, inputs.q)
            scan = scan_permutations(chromg, vidx, u=u[0], yp=yp, cache=cache, device=chroms.device)
            rows[pid], _ = _top_row(
                inputs, chromg, vidx, scan, pid=pid, y_norm=float(y_norm[0]), dof=inputs.df, nperm=len(perms)
            )
    return rows, n_empty


def _unsettled(table: pd.DataFrame, *, fdr: float, qvalue_lambda: float | None) -> pd.Index:
    """Phenotypes whose eGene call at ``fdr`` the first adaptive stage does not settle (see map_cis)."""
    from .post import calculate_qvalues

    p = table["pval_beta"].to_numpy(float)
    if np.isnan(p).all():
        return table.index
    cols = ["pval_beta", "pval_perm", "beta_shape1", "beta_shape2"]
    q = calculate_qvalues(table[cols].copy(), fdr=fdr, qvalue_lambda=qvalue_lambda)["qval"].to_numpy(float)
    passing, failing = p[q <= fdr], p[q > fdr]
    if not passing.size:
        p_t = 0.0
    else:  # tensorQTL's threshold: midpoint between the last passing and the first failing p-value
        p_t = (passing.max() + failing.min()) / 2 if failing.size else float(passing.max())

    def se(x):
        return np.sqrt(x * (1.0 - x) / ADAPTIVE_FIRST)

    with np.errstate(invalid="ignore"):
        near = np.abs(p - p_t) <= ADAPTIVE_Z * (se(p) + se(p_t))
    return table.index[np.isnan(p) | near]


def _check_adaptive(nperm, fdr: float) -> bool:
    if isinstance(nperm, str):
        if nperm != "adaptive":
            raise InputError(f"nperm must be an integer or 'adaptive', got {nperm!r}")
        if not 0 < fdr < 1:
            raise InputError(f"fdr must lie in (0, 1), got {fdr}")
        return True
    return False


def map_cis(
    genotype_df,
    variant_df,
    phenotype_df: pd.DataFrame,
    phenotype_pos_df: pd.DataFrame,
    covariates_df: pd.DataFrame | None = None,
    *,
    nperm: int | str = 10_000,
    seed=0,
    maf_threshold: float = 0,
    mac_threshold: int = 0,
    window: int = 1_000_000,
    sample_map=None,
    gtex_ids: bool = False,
    fdr: float = 0.05,
    qvalue_lambda: float | None = None,
    show_progress: bool | None = None,
    backend: str = "auto",
) -> pd.DataFrame:
    """Permutation cis mapping: each phenotype's top variant with permutation and beta-approximated p-values.

    Parameters
    ----------
    genotype_df, variant_df, phenotype_df, phenotype_pos_df, covariates_df
        As for :func:`map_nominal`.
    nperm
        Permutations (one set, drawn over the samples sorted by ID, serves every phenotype), or
        ``"adaptive"``: 1,000 for the phenotypes whose eGene call at ``fdr`` they settle, 10,000 for
        the others (see Notes).
    seed
        Seed of the permutations (an int or a :class:`numpy.random.Generator`).
    maf_threshold, mac_threshold
        Variant filters (see :func:`map_nominal`).
    window
        cis window (bp), both ends inclusive.
    sample_map, gtex_ids
        Sample -> individual mapping.
    fdr, qvalue_lambda
        ``nperm="adaptive"`` only: the q-value level whose eGene calls the first stage must settle,
        and the lambda of the provisional q-values (as for
        :func:`~tbeqtl.association.post.calculate_qvalues`; use the values given to it afterwards).
    show_progress
        Progress bar (default: when stderr is a terminal; otherwise periodic log lines).
    backend
        Where the float32 permutation products and their candidate selection run (see
        :func:`map_nominal` and :mod:`.cis_device`); the permutation maxima are the float64 ones
        on every backend (TF32 disabled on CUDA).

    Returns
    -------
    pandas.DataFrame
        Schema ``cis_qtl`` without ``qval``/``pval_nominal_threshold`` (add them with
        :func:`~tbeqtl.association.post.calculate_qvalues`): index ``phenotype_id``, columns
        ``num_var beta_shape1 beta_shape2 true_df pval_true_df variant_id start_distance
        end_distance ma_samples ma_count af pval_nominal slope slope_se pval_perm pval_beta``;
        rows by chromosome (natural order), then position, then ID. With ``nperm="adaptive"``,
        ``table.attrs["nperm"]`` maps each phenotype to the permutations its row used.

    Notes
    -----
    Per phenotype, as FastQTL and tensorQTL: the raw phenotype is permuted and each permuted
    vector residualised on the unpermuted covariates; ``r2_perm[j]`` is the largest ``r^2`` over the
    window's variants (monomorphic, filtered and covariate-collinear variants dropped; ``num_var``
    counts the variants tested). The top variant is the largest nominal ``r^2`` (first in
    position order on ties). ``pval_perm = (#{r2_perm >= r2_top} + 1) / (nperm + 1)``; ``true_df``
    makes the moment-matched Beta shape1 of the permutation p-values 1, ``(beta_shape1,
    beta_shape2)`` are the Beta MLE at ``true_df``, ``pval_true_df = p(r2_top, true_df)`` and
    ``pval_beta = Beta_cdf(pval_true_df)``. The permutation maxima are the float64 values (the
    float32 products only prune; see :func:`~tbeqtl.association.cis_kernels.scan_permutations`).

    ``nperm="adaptive"`` draws one set of 10,000 permutations. Stage 1 runs every phenotype on its
    first 1,000 and computes provisional q-values of ``pval_beta`` (``fdr``, ``qvalue_lambda``) and
    tensorQTL's threshold ``p_t`` (midpoint between the largest ``pval_beta`` at ``q <= fdr`` and the
    smallest above; 0 without eGenes). With ``se(x) = sqrt(x (1 - x) / 1000)``, the binomial
    standard error of a 1,000-permutation p-value ``x`` (the beta fit interpolates the permutation
    p-values, so it is not less precise in the body of the distribution; far in the tail, where it
    extrapolates, ``p`` is far below any threshold ``p_t``), a phenotype is rerun on all 10,000
    permutations when ``|pval_beta - p_t| <= 3 (se(pval_beta) + se(p_t))`` or its beta fit failed;
    the others are settled at 1,000: their call would change only if their p-value or the threshold
    moved by more than three standard errors. Rerun phenotypes use the full set, of which the
    first stage's permutations are the prefix, so their rows equal those of ``nperm=10000`` with the
    same seed exactly. Worst case (every phenotype near the threshold): 11,000 permutations per
    phenotype and a second reading of their chromosomes, 1.1x the fixed 10,000.
    """
    window = _check_common(window=window, maf_threshold=maf_threshold, mac_threshold=mac_threshold)
    adaptive = _check_adaptive(nperm, fdr)
    nperm = ADAPTIVE_MAX if adaptive else _check_nperm(nperm)
    device = cis_device(backend)
    inputs = prepare_cis(
        genotype_df,
        variant_df,
        phenotype_df,
        phenotype_pos_df=phenotype_pos_df,
        covariates_df=covariates_df,
        sample_map=sample_map,
        gtex_ids=gtex_ids,
    )
    perms = canonical_permutations(inputs.cohort.samples, nperm, seed=seed)
    chroms = _Chromosomes(inputs, maf_threshold=maf_threshold, mac_threshold=mac_threshold, device=device)
    with device_scope(device):
        table = _map_cis_stages(
            inputs,
            chroms,
            perms,
            adaptive=adaptive,
            window=window,
            fdr=fdr,
            qvalue_lambda=qvalue_lambda,
            show_progress=show_progress,
        )
    chroms.state = None
    n_fail = int(table["pval_beta"].isna().sum())

    if n_fail:
        logger.warning(
            "beta approximation impossible (< 10 distinct permutation maxima) for %d phenotype(s): %s",
            n_fail,
            format_ids(table.index[table["pval_beta"].isna()]),
        )
    validate_table(table.reset_index(), "cis_qtl")
    return table


def _map_cis_stages(inputs, chroms, perms, *, adaptive, window, fdr, qvalue_lambda, show_progress):
    """Build the map_cis table: one pass on ``perms`` (fixed), or the two adaptive stages."""
    ticker = Ticker(inputs.n_phenotypes, desc="cis permutations", enabled=show_progress)
    stage1 = perms[:ADAPTIVE_FIRST] if adaptive else perms
    rows, n_empty = _permutation_pass(inputs, chroms, inputs.by_chrom, stage1, window=window, ticker=ticker)
    ticker.close()
    if n_empty:
        logger.info("%d phenotype(s) without a testable variant in their cis window skipped", n_empty)
    table = _cis_frame(list(rows.values()), list(rows))
    if adaptive:
        todo = _unsettled(table, fdr=fdr, qvalue_lambda=qvalue_lambda)
        logger.info(
            "adaptive permutations: %d of %d phenotype(s) settled at %d",
            len(table) - len(todo),
            len(table),
            ADAPTIVE_FIRST,
        )
        rows.update(_adaptive_stage2(inputs, chroms, todo, perms, window=window, show_progress=show_progress))
        table = _cis_frame(list(rows.values()), list(rows))
        table.attrs["nperm"] = {p: len(perms) if p in set(todo) else ADAPTIVE_FIRST for p in table.index}
    return table


def _adaptive_stage2(inputs, chroms, todo: pd.Index, perms, *, window, show_progress) -> dict[str, dict]:
    """Rows of the phenotypes the first adaptive stage left unsettled, on every permutation."""
    todo = set(todo)
    by_chrom = {c: [p for p in pids if p in todo] for c, pids in inputs.by_chrom.items()}
    by_chrom = {c: pids for c, pids in by_chrom.items() if pids}
    if chroms.chrom in by_chrom:  # the chromosome still loaded first
        by_chrom = {chroms.chrom: by_chrom.pop(chroms.chrom), **by_chrom}
    logger.info("adaptive permutations: %d phenotype(s) rerun at %d", len(todo), len(perms))
    ticker = Ticker(len(todo), desc="cis permutations (adaptive)", enabled=show_progress)
    rows, _ = _permutation_pass(inputs, chroms, by_chrom, perms, window=window, ticker=ticker)
    ticker.close()
    return rows


# --------------------------------------------------------------------------------------------- independent
class _Conditional:
    """One phenotype's scans with selected variants added to the covariates.

    The covariate basis grows by one Gram-Schmidt column per selected variant (its imputed dosage
    orthogonalised against ``[Q, earlier columns]``, :func:`~.cis_kernels.extend_basis`); the
    phenotype and its permutations, residualised once on ``Q``, are updated by the new columns
    only, and the variants' residual norms are downdated from the once-per-chromosome ones.
    """

    def __init__(
        self,
        inputs: CisInputs,
        chromg,
        vidx,
        pid: str,
        perms: np.ndarray,
        nperm: int,
        cache=None,
        *,
        device=None,
    ):
        self.inputs, self.chromg, self.vidx, self.pid, self.nperm = inputs, chromg, vidx, pid, nperm
        self.cache, self.device = cache, device
        y = inputs.values[pid]
        u, norm = residual_unit(y, inputs.q)
        self.y_res = u[0] * norm[0]
        self.yp = _unit_permutations(y, perms, inputs.q)

    def basis(self, selected: list[int], base: np.ndarray | None = None) -> np.ndarray:
        """Columns added for ``selected``; with ``base`` (the columns of ``selected[:-1]``) one more."""
        dosages = self.chromg.rows64(np.asarray(selected if base is None else selected[-1:]))
        if base is None:
            return extend_basis(self.inputs.q, dosages.T)
        return np.column_stack([base, extend_basis(np.column_stack([self.inputs.q, base]), dosages.T)])

    def scan(self, extra: np.ndarray) -> tuple[dict, int] | None:
        """Top variant and its statistics with the added basis columns ``extra`` (n x s)."""
        y = self.y_res - extra @ (extra.T @ self.y_res)
        y -= extra @ (extra.T @ y)
        y_norm = float(np.linalg.norm(y))
        if y_norm <= 1e-12 * np.linalg.norm(self.y_res):  # the selected variants explain the phenotype
            return None
        yp = self.yp - (self.yp @ extra) @ extra.T
        yp -= (yp @ extra) @ extra.T
        yp /= np.linalg.norm(yp, axis=1, keepdims=True)
        q_full = np.column_stack([self.inputs.q, extra])
        scan = scan_permutations(
            self.chromg,
            self.vidx,
            u=y / y_norm,
            yp=yp,
            extra=extra,
            q_full=q_full,
            cache=self.cache,
            device=self.device,
        )
        dof = self.inputs.df - extra.shape[1]
        return _top_row(
            self.inputs, self.chromg, self.vidx, scan, pid=self.pid, y_norm=y_norm, dof=dof, nperm=self.nperm
        )


def _egenes(cis_df: pd.DataFrame, fdr: float) -> tuple[pd.DataFrame, float]:
    if "qval" not in cis_df.columns:
        raise InputError("cis_df has no 'qval' column: run calculate_qvalues(cis_df) first")
    missing = [c for c in CIS_COLUMNS if c not in cis_df.columns]
    if missing:
        raise InputError("cis_df lacks map_cis columns", ids=missing)
    cis_df = cis_df.copy()
    cis_df.index = pd.Index(cis_df.index.astype(str), name="phenotype_id")
    signif = cis_df[cis_df["qval"] <= fdr]
    if signif.empty:
        raise InputError(f"no eGene at FDR {fdr} in cis_df (no qval <= {fdr}): nothing to map conditionally")
    threshold = float(signif["pval_beta"].max())
    logger.info(
        "%d eGene(s) at FDR %g; significance threshold on pval_beta: %.6g", len(signif), fdr, threshold
    )
    return signif, threshold


def map_independent(
    genotype_df,
    variant_df,
    cis_df: pd.DataFrame,
    phenotype_df: pd.DataFrame,
    phenotype_pos_df: pd.DataFrame,
    covariates_df: pd.DataFrame | None = None,
    *,
    fdr: float = 0.05,
    nperm: int = 10_000,
    seed=0,
    maf_threshold: float = 0,
    mac_threshold: int = 0,
    window: int = 1_000_000,
    sample_map=None,
    gtex_ids: bool = False,
    show_progress: bool | None = None,
    backend: str = "auto",
) -> pd.DataFrame:
    """Conditionally independent cis-QTLs of the eGenes: tensorQTL's forward-backward mapping.

    Parameters
    ----------
    genotype_df, variant_df
        As for :func:`map_cis`.
    cis_df
        :func:`map_cis` output with ``qval`` (:func:`~tbeqtl.association.post.calculate_qvalues`).
    phenotype_df, phenotype_pos_df, covariates_df
        As for :func:`map_cis` (every eGene must be in ``phenotype_df``).
    fdr
        eGenes are the phenotypes with ``qval <= fdr``; the significance threshold of every step is
        the largest ``pval_beta`` among them.
    nperm, seed
        Permutations (one set, as in :func:`map_cis`).
    maf_threshold, mac_threshold, window, sample_map, gtex_ids, show_progress, backend
        As for :func:`map_cis`.

    Returns
    -------
    pandas.DataFrame
        Schema ``cis_independent_qtl``: ``phenotype_id``, the map_cis columns (statistics of
        each variant in its conditional model) and ``rank``.

    Notes
    -----
    Forward: start from the eGene's map_cis top variant (its ``cis_df`` row); repeatedly add the
    last selected variant's imputed dosage to the covariates (one Gram-Schmidt column; ``df``
    drops by one per variant), rerun the permutation scan and select the new top variant while
    its ``pval_beta <= threshold``. Backward (two or more selected): for each selected variant
    ``k`` (``rank = k``), condition on all the others and keep the new top variant if it passes
    the threshold and was not already kept. With one selected variant the output is its
    ``cis_df`` row with ``rank = 1``. Variants collinear with the conditioning set are not
    tested (``num_var`` counts the variants tested).

    Raises
    ------
    InputError
        ``cis_df`` without ``qval`` or without eGenes at ``fdr``; eGenes absent from the
        phenotypes; a top variant of ``cis_df`` absent from its window.
    """
    window = _check_common(window=window, maf_threshold=maf_threshold, mac_threshold=mac_threshold)
    nperm = _check_nperm(nperm)
    device = cis_device(backend)
    signif, threshold = _egenes(cis_df, fdr)
    pheno_ids = pd.Index(phenotype_df.index.astype(str))
    absent = signif.index.difference(pheno_ids, sort=False)
    if len(absent):
        raise InputError("eGenes of cis_df absent from phenotype_df", ids=absent)
    pheno = phenotype_df.set_axis(pheno_ids, axis=0).loc[signif.index]
    inputs = prepare_cis(
        genotype_df,
        variant_df,
        pheno,
        phenotype_pos_df=phenotype_pos_df,
        covariates_df=covariates_df,
        sample_map=sample_map,
        gtex_ids=gtex_ids,
    )
    perms = canonical_permutations(inputs.cohort.samples, nperm, seed=seed)
    rows, index = [], []
    ticker = Ticker(inputs.n_phenotypes, desc="cis independent", enabled=show_progress)
    filters = {"maf_threshold": maf_threshold, "mac_threshold": mac_threshold}
    with device_scope(device):
        for chrom, pids in inputs.by_chrom.items():
            for pid, row in _independent_chromosome(
                inputs,
                chrom,
                pids,
                signif,
                threshold,
                perms,
                window=window,
                filters=filters,
                device=device,
                ticker=ticker,
            ):
                rows.append(row)
                index.append(pid)
    ticker.close()
    table = _cis_frame(rows, index, extra=("rank",)).reset_index()
    validate_table(table, "cis_independent_qtl")
    logger.info("%d independent cis-QTL(s) for %d eGene(s)", len(table), table["phenotype_id"].nunique())
    return table


def _independent_chromosome(
    inputs, chrom, pids, signif, threshold, perms, *, window, filters, device, ticker
) -> list[tuple[str, dict]]:
    """``(phenotype, row)`` of the independent cis-QTLs of one chromosome's eGenes."""
    chromg = open_chromosome(inputs.source, chrom, samples=inputs.cohort.genotype_ids, q=inputs.q)
    keep = np.flatnonzero(chromg.testable & _variant_filter(chromg, **filters))
    row_of = pd.Index(chromg.ids[keep])
    # float64 and float32 rows shared by every scan of the windows (the float32 ones on the device)
    cache = WindowCache(chromg, keep, device=device)
    out = []
    for pid in pids:
        ticker.advance()
        start, end = inputs.bounds(pid)
        vidx = _window(chromg, keep, start, end, window)
        top = signif.loc[pid, "variant_id"]
        loc = row_of.get_indexer([str(top)])[0]
        if loc < 0 or not vidx.size or not vidx[0] <= keep[loc] <= vidx[-1]:
            raise InputError(
                f"top variant {top} of {pid} in cis_df is not a tested variant of its window "
                "(same window and filters as map_cis needed)"
            )
        cache.release(int(np.searchsorted(keep, vidx[0])))
        cond = _Conditional(inputs, chromg, vidx, pid, perms, len(perms), cache, device=device)
        out += [(pid, row) for row in _independent_one(cond, signif.loc[pid], int(keep[loc]), threshold)]
    return out


def _independent_one(cond: _Conditional, top_row: pd.Series, top_v: int, threshold: float) -> list[dict]:
    """Forward then backward pass of one eGene; rows with ``rank``."""
    forward = [{c: top_row[c] for c in CIS_COLUMNS}]
    selected = [top_v]
    extra = cond.basis(selected)
    while len(selected) < cond.vidx.size:
        res = cond.scan(extra)
        if res is None or not res[0]["pval_beta"] <= threshold:
            break
        forward.append(res[0])
        selected.append(res[1])
        extra = cond.basis(selected, extra)  # one more Gram-Schmidt column
    if len(selected) == 1:
        return [{**forward[0], "rank": 1}]
    kept, seen = [], set()
    for k, v in enumerate(selected, 1):
        res = cond.scan(cond.basis([w for w in selected if w != v]))
        if res is None:
            continue
        row, top = res
        if row["pval_beta"] <= threshold and top not in seen:
            kept.append({**row, "rank": k})
            seen.add(top)
    return kept
