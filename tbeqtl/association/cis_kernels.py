"""Numerical kernels of tensorQTL-style cis mapping: one chromosome in memory, exact float64 statistics.

Notation: ``n`` analysed samples, ``Q`` an orthonormal basis (n x (k+1)) of the intercept and the
``k`` covariates, ``df = n - 2 - k``. For a phenotype ``y``, ``y_res = y - Q Q^T y`` and its unit
vector ``u = y_res / ||y_res||``. For a variant ``g`` (imputed dosages), ``g_res = g - Q Q^T g``.
Because ``u`` is orthogonal to every column of ``Q`` (the intercept included),
``<g, u> = <g_res, u>``: the raw dosages enter the products and only ``||g_res||`` is needed per
variant, computed once per chromosome (:func:`load_chromosome`), explicitly and in float64.

Nominal statistics of a pair (:func:`association_stats`; exactly OLS ``y ~ 1 + C + g``):
``r = <g, u> / ||g_res||``, ``slope = <g, y_res> / ||g_res||^2``,
``slope_se = ||y_res|| sqrt((1 - r^2) / df) / ||g_res||``, ``t = r sqrt(df / (1 - r^2))``,
``p = 2 P(T_df > |t|) = I_{1 - r^2}(df/2, 1/2)``.

Permutations (:func:`scan_permutations`): for each permutation ``j`` the maximum over the window
of ``r_vj^2`` with the permuted phenotype residualised on the unpermuted covariates. The
(variants x samples) x (samples x permutations) products are done in float32, block by block
(the running maximum kept, the block discarded), and every (variant, permutation) pair the
float32 error bound cannot exclude from being the maximum is recomputed in float64; the
reported maxima are therefore the float64 ones (see :func:`scan_permutations` for the bound).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..errors import InputError

__all__ = [
    "BlockStore",
    "ChromGenotypes",
    "ScanResult",
    "WindowCache",
    "association_stats",
    "block_statistics",
    "chromosome_variants",
    "extend_basis",
    "float32_error_factor",
    "load_chromosome",
    "open_chromosome",
    "read_block",
    "residual_unit",
    "scan_permutations",
    "worker_count",
]

logger = logging.getLogger(__name__)

#: Unit roundoff of float32 (2^-24).
U32 = float(np.finfo(np.float32).eps) / 2.0
#: A variant whose residual norm is below ``||g - mean|| / UNTESTABLE_RATIO`` (R^2 on the
#: covariates above 1 - 1e-10) is treated as collinear with the covariates: not testable.
UNTESTABLE_RATIO = 1e5
#: Variants with ``||g - mean|| / ||g_res||`` above this go through the permutation scan in
#: float64 (their float32 error bound would be too loose to prune anything).
EXACT_RATIO = 16.0
#: Variants read per block when loading a chromosome.
LOAD_BLOCK = 8192
#: Variants per block of the permutation products.
SCAN_BLOCK = 1024


@dataclass
class ChromGenotypes:
    """One chromosome's genotypes over the analysed samples, sorted by (position, variant ID).

    Attributes
    ----------
    chrom : str
        Chromosome name.
    ids : numpy.ndarray
        Variant IDs (object array of str), sorted by position then ID.
    pos : numpy.ndarray
        int64 positions (non-decreasing).
    store : numpy.ndarray
        Dosages, variants x samples: int8 when every call is a hard call 0/1/2 (1 byte per call),
        float32 otherwise; missing calls hold a placeholder (the exact float64 imputed values
        come from :meth:`rows64`).
    miss_rows : numpy.ndarray
        Sorted rows with missing calls.
    miss_mask : numpy.ndarray
        bool, ``len(miss_rows)`` x samples: which calls of those rows were missing.
    mean : numpy.ndarray
        Mean dosage over the non-missing calls (float64): the imputed value.
    af, ma_samples, ma_count : numpy.ndarray
        tensorQTL's allele frequency (float64) and minor-allele sample and allele counts (int32).
    centered_norm : numpy.ndarray
        ``||g - mean(g)||`` (float64).
    res_norm : numpy.ndarray
        ``||g_res||`` (float64), 0 for variants that are not testable.
    monomorphic : numpy.ndarray
        bool: every imputed value equals the first one (tensorQTL's rule).
    testable : numpy.ndarray
        bool: neither monomorphic nor collinear with the covariates.
    """

    chrom: str
    ids: np.ndarray
    pos: np.ndarray
    store: np.ndarray
    miss_rows: np.ndarray
    miss_mask: np.ndarray
    mean: np.ndarray
    af: np.ndarray
    ma_samples: np.ndarray
    ma_count: np.ndarray
    centered_norm: np.ndarray
    res_norm: np.ndarray
    monomorphic: np.ndarray
    testable: np.ndarray

    @property
    def n_variants(self) -> int:
        """Number of variants."""
        return int(self.store.shape[0])

    @property
    def maf(self) -> np.ndarray:
        """Minor allele frequency ``min(af, 1 - af)``."""
        return np.minimum(self.af, 1.0 - self.af)

    def rows64(self, rows) -> np.ndarray:
        """Exact imputed float64 dosages of ``rows`` (a slice or an int array).

        Parameters
        ----------
        rows
            Row positions.

        Returns
        -------
        numpy.ndarray
            float64, ``len(rows)`` x samples; missing calls hold the float64 variant mean.
        """
        idx = np.arange(self.n_variants)[rows] if isinstance(rows, slice) else np.asarray(rows)
        if isinstance(self.store, BlockStore):
            return self.store.rows64(idx, self.mean)
        out = self.store[rows].astype(np.float64)
        if self.miss_rows.size and idx.size:
            loc = np.searchsorted(self.miss_rows, idx)
            loc_clip = np.minimum(loc, self.miss_rows.size - 1)
            hit = self.miss_rows[loc_clip] == idx
            for k in np.flatnonzero(hit):
                out[k, self.miss_mask[loc_clip[k]]] = self.mean[idx[k]]
        return out


class BlockStore:
    """A chromosome's genotypes read block by block on demand, blocks left of the windows dropped.

    Stands in for the chromosome-sized ``ChromGenotypes.store`` when the source lists the
    variants by (position, ID) (:func:`open_chromosome`): a block of ``block`` variants is read
    (:func:`read_block`) the first time a row of it is asked for, and :meth:`release` drops the
    blocks before a row once the phenotype windows have moved past it. With phenotypes in
    position order the blocks held span one window plus a block on each side, whatever the
    number of variants. ``peak_blocks`` records the most blocks held at once.

    Parameters
    ----------
    source, chrom, samples
        Where the genotypes come from (as :func:`read_block`).
    n_variants
        Variants of the chromosome.
    block
        Variants per block.
    """

    def __init__(self, source, chrom: str, *, samples, n_variants: int, block: int):
        self.source, self.chrom, self.samples = source, chrom, list(samples)
        self.shape = (n_variants, len(self.samples))
        self.block = block
        self.blocks: dict[int, np.ndarray] = {}
        self.peak_blocks = 0
        self.reads = 0

    def _get(self, k: int) -> np.ndarray:
        if k not in self.blocks:
            start, stop = k * self.block, min((k + 1) * self.block, self.shape[0])
            raw, codes = read_block(self.source, self.chrom, samples=self.samples, start=start, stop=stop)
            self.blocks[k] = codes if codes is not None else raw  # int8 (negative missing) or float32 (NaN)
            self.reads += 1
            self.peak_blocks = max(self.peak_blocks, len(self.blocks))
        return self.blocks[k]

    def rows64(self, idx: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """float64 rows ``idx`` with missing calls set to the variant's ``mean`` (the imputed value)."""
        out = np.empty((idx.size, self.shape[1]))
        ks = idx // self.block
        for k in np.unique(ks):
            sel = np.flatnonzero(ks == k)
            values = self._get(int(k))[idx[sel] - k * self.block]
            missing = values < 0 if values.dtype == np.int8 else np.isnan(values)
            part = values.astype(np.float64)
            if missing.any():
                part[missing] = np.broadcast_to(mean[idx[sel], None], part.shape)[missing]
            out[sel] = part
        return out

    def release(self, first_row: int) -> None:
        """Drop the blocks that end before chromosome row ``first_row``."""
        for k in [k for k in self.blocks if (k + 1) * self.block <= first_row]:
            del self.blocks[k]


def _residual_norms(
    centered: np.ndarray, cnorm2: np.ndarray, q: np.ndarray, rhs: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``||x - Q Q^T x||`` of centred rows ``x`` (and ``x @ rhs`` from the same product).

    ``||x_res||^2 = ||x||^2 - ||Q^T x||^2`` (one product); its relative rounding error is about
    ``eps (k+1) ||x||^2 / ||x_res||^2``, below 1e-11 while ``||x_res||^2 >= 1e-4 ||x||^2``. Rows
    below that (R^2 on the covariates above 0.9999) get ``x_res`` explicitly, projected twice.
    ``rhs`` (n x m), when given, joins ``Q`` in one GEMM (one pass over the rows instead of two);
    its products are returned (None without it).
    """
    k = q.shape[1]
    both = centered @ (q if rhs is None else np.hstack([q, rhs]))
    proj = both[:, :k]
    rn2 = cnorm2 - np.einsum("ij,ij->i", proj, proj)
    redo = np.flatnonzero(rn2 < 1e-4 * cnorm2)
    if redo.size:
        sub = centered[redo]
        sub -= (sub @ q) @ q.T
        sub -= (sub @ q) @ q.T
        rn2[redo] = np.einsum("ij,ij->i", sub, sub)
    return np.sqrt(np.clip(rn2, 0.0, None)), (None if rhs is None else both[:, k:])


def _allele_counts(x: np.ndarray, sums: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Allele frequency, minor-allele samples and count of imputed dosages (rows of ``x``), as tensorQTL.

    ``sums`` are the row sums (float64). The sum of the dosages above 0.5 is truncated to an
    integer as tensorQTL's ``.int()`` does (a float sum that is mathematically an integer must not
    fall just below it: 1e-9 of slack).
    """
    two_n = 2 * n
    af = sums / two_n
    low = af <= 0.5
    above = x > 0.5
    n_above = np.count_nonzero(above, axis=1)
    n_below = np.count_nonzero(x < 1.5, axis=1)
    s = np.einsum("ij,ij->i", x, above, dtype=np.float64)
    s_int = np.floor(s + 1e-9 * np.maximum(1.0, s)).astype(np.int64)
    ma_samples = np.where(low, n_above, n_below).astype(np.int32)
    ma_count = np.where(low, s_int, two_n - s_int).astype(np.int32)
    return af, ma_samples, ma_count


_STATS = (
    ("mean", np.float64),
    ("af", np.float64),
    ("ma_samples", np.int32),
    ("ma_count", np.int32),
    ("centered_norm", np.float64),
    ("res_norm", np.float64),
    ("monomorphic", bool),
    ("testable", bool),
)


def _hard_counts(codes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Compute sums, allele counts, monomorphism and centred squared norms of int8 hard calls.

    For a row without missing calls, with ``n_g`` samples of genotype ``g``: the dosage sum is
    ``s = n1 + 2 n2``, the samples above 0.5 ``n1 + n2`` (their dosage sum ``s``), below 1.5
    ``n0 + n1``: the values :func:`_allele_counts` gives on the float dosages, exactly. The
    centred squared norm ``sum_i (g_i - s/n)^2 = (n (n1 + 4 n2) - s^2) / n`` is an exact integer
    ratio, so it is correctly rounded (a float sum of the centred values is within ~n eps of it).
    Rows with missing calls (negative codes) get NaN sums; their statistics come from the imputed
    float64 values. Three vectorised reductions of the int8 rows (sum, count above 0, min).
    """
    n = codes.shape[1]
    acc = np.int16 if 2 * n < np.iinfo(np.int16).max else np.int32  # holds 2 n (missing rows: unused)
    s = codes.sum(axis=1, dtype=acc).astype(np.int64)  # n1 + 2 n2 (where nothing is missing)
    n12 = (codes > 0).view(np.uint8).sum(axis=1, dtype=acc).astype(np.int64)  # n1 + n2
    missing = codes.min(axis=1, initial=0) < 0
    n2 = s - n12
    n1 = n12 - n2
    n0 = n - n12
    sums = np.where(missing, np.nan, s.astype(np.float64))
    af = sums / (2 * n)
    low = af <= 0.5
    ma_samples = np.where(low, n12, n0 + n1).astype(np.int32)
    ma_count = np.where(low, s, 2 * n - s).astype(np.int32)
    mono = (n0 == n) | (n1 == n) | (n2 == n)
    cn2 = (n * (n1 + 4 * n2) - s * s).astype(np.float64) / n
    return sums, af, ma_samples, ma_count, mono, cn2


def _block_stats(
    raw: np.ndarray | None,
    q: np.ndarray,
    buf: np.ndarray,
    *,
    codes: np.ndarray | None = None,
    rhs: np.ndarray | None = None,
) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray | None]:
    """Impute one block and compute its per-variant statistics; ``buf[:b]`` holds the centred float64 rows.

    ``codes``: the block's int8 hard calls (negative = missing) when it holds only hard calls
    (faster counts, same values); ``raw`` (float32, NaN missing) may then be None, otherwise its
    missing calls are imputed in place (float32-rounded). Returns the statistics, the rows with
    missing calls, their missing masks, and the centred rows' products with ``rhs`` (None without
    it; computed in the GEMM of the projection on ``q``).
    """
    b, n = (raw if raw is not None else codes).shape
    x64 = buf[:b]
    if codes is None:
        sums = raw.sum(axis=1, dtype=np.float64)
        np.copyto(x64, raw)
    else:
        sums, af, ma_samples, ma_count, mono, cn2 = _hard_counts(codes)
        np.copyto(x64, codes)  # rows with missing calls are imputed below
    rows_nan = np.flatnonzero(np.isnan(sums))
    masks = np.isnan(raw[rows_nan]) if raw is not None else codes[rows_nan] < 0
    if rows_nan.size:
        sub = x64[rows_nan]
        counts = n - masks.sum(axis=1)
        obs = np.where(masks, 0.0, sub).sum(axis=1)
        means = np.divide(obs, counts, out=np.zeros_like(obs), where=counts > 0)
        sub[masks] = np.broadcast_to(means[:, None], sub.shape)[masks]
        x64[rows_nan] = sub
        if raw is not None:
            raw[rows_nan] = sub  # float32-rounded imputed values
        sums[rows_nan] = sub.sum(axis=1)
    if codes is None:
        af, ma_samples, ma_count = _allele_counts(raw, sums, n)
        mono = np.all(raw == raw[:, :1], axis=1)
    if rows_nan.size:  # the exact counts of imputed rows come from the float64 values
        af[rows_nan], ma_samples[rows_nan], ma_count[rows_nan] = _allele_counts(
            x64[rows_nan], sums[rows_nan], n
        )
    if rows_nan.size:
        mono[rows_nan] = np.all(x64[rows_nan] == x64[rows_nan, :1], axis=1)
    mean = sums / n
    x64 -= mean[:, None]
    if codes is None:
        cn2 = np.einsum("ij,ij->i", x64, x64)
    elif rows_nan.size:  # imputed rows: from their centred float64 values
        cn2[rows_nan] = np.einsum("ij,ij->i", x64[rows_nan], x64[rows_nan])
    rnorm, products = _residual_norms(x64, cn2, q, rhs)
    cnorm = np.sqrt(cn2)
    testable = ~mono & (cnorm > 0) & (rnorm * UNTESTABLE_RATIO > cnorm)
    stats = {
        "mean": mean,
        "af": af,
        "ma_samples": ma_samples,
        "ma_count": ma_count,
        "centered_norm": cnorm,
        "res_norm": np.where(testable, rnorm, 0.0),
        "monomorphic": mono,
        "testable": testable,
    }
    return stats, rows_nan, masks, products


def _float_calls(codes: np.ndarray) -> np.ndarray:
    """float32 dosages of int8 hard calls (NaN where missing)."""
    raw = codes.astype(np.float32)
    raw[codes < 0] = np.nan
    return raw


def block_statistics(
    raw, codes, q: np.ndarray, *, rhs: np.ndarray | None = None
) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """Per-variant statistics of one block read by :func:`read_block`, its centred float64 rows and products.

    Parameters
    ----------
    raw, codes
        The block as :func:`read_block` returns it.
    q
        Orthonormal basis (n x (k+1)) of the intercept and covariates.
    rhs
        Optional n x m matrix (e.g. residualised phenotypes): its products with the centred rows
        are computed in the same GEMM as the projection on ``q``.

    Returns
    -------
    stats : dict
        ``mean af ma_samples ma_count centered_norm res_norm monomorphic testable`` per variant
        (the :class:`ChromGenotypes` attributes), exactly as :func:`load_chromosome` computes them.
    centred : numpy.ndarray
        float64 ``g - mean(g)`` (missing calls imputed with the mean, so 0 there), variants x samples.
    products : numpy.ndarray or None
        ``centred @ rhs`` (variants x m), or None without ``rhs``.
    """
    shape = (raw if raw is not None else codes).shape
    buf = np.empty(shape)
    stats, _, _, products = _block_stats(raw, q, buf, codes=codes, rhs=rhs)
    return stats, buf, products


def _hard_codes(raw: np.ndarray) -> np.ndarray | None:
    """int8 copy of a block of hard calls (0/1/2, -1 where missing), or None if it holds other values."""
    nan = np.isnan(raw)
    finite = np.where(nan, np.float32(0), raw)
    codes = finite.astype(np.int8)
    if not (np.array_equal(codes, finite) and codes.min(initial=0) >= 0 and codes.max(initial=0) <= 2):
        return None
    codes[nan] = -1
    return codes


def read_block(
    source, chrom: str, *, samples, start: int, stop: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Read variants ``start:stop`` of a chromosome as ``(raw, codes)``.

    ``codes`` are int8 hard calls (0/1/2, negative = missing) when the block holds only hard
    calls, read straight from sources that offer ``read_chrom_codes`` (PLINK 2 hard calls: no
    float copy, ``raw`` is then None); otherwise ``raw`` is the float32 block (NaN missing) and
    ``codes`` its int8 copy if every value is a hard call.
    """
    reader = getattr(source, "read_chrom_codes", None)
    codes = None if reader is None else reader(chrom, samples=samples, start=start, stop=stop)
    if codes is not None:
        raw = None
    else:
        raw = np.asarray(source.read_chrom(chrom, samples=samples, start=start, stop=stop), dtype=np.float32)
        codes = _hard_codes(raw)
    shape = (raw if raw is not None else codes).shape
    if shape != (stop - start, len(samples)):
        raise InputError(
            f"genotype source returned a {shape} block for {chrom} variants {start}:{stop} "
            f"(expected {(stop - start, len(samples))})"
        )
    return raw, codes


def _position_order(pos: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Order of variants by position, then ID among variants sharing a position."""
    order = np.argsort(pos, kind="stable")
    p = pos[order]
    tie = np.flatnonzero(p[1:] == p[:-1])
    if tie.size:
        starts = tie[np.r_[True, np.diff(tie) > 1]]
        for a in starts:
            b = a + 1
            while b < p.size and p[b] == p[a]:
                b += 1
            seg = order[a:b]
            order[a:b] = seg[np.argsort(ids[seg].astype(str), kind="stable")]
    return order


def chromosome_variants(source, chrom: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IDs and positions of a chromosome's variants in the source's order, and their (position, ID) order.

    Parameters
    ----------
    source
        A :class:`~tbeqtl.io.genotypes.GenotypeSource`.
    chrom
        Chromosome (as in ``source.variant_df``).

    Returns
    -------
    ids : numpy.ndarray
        Variant IDs (object array), in ``read_chrom`` order.
    pos : numpy.ndarray
        int64 positions.
    order : numpy.ndarray
        Permutation sorting them by (position, ID).
    """
    vdf = source.variant_df
    sel = np.flatnonzero(vdf["chrom"].to_numpy() == chrom)
    ids = np.asarray(vdf.index.to_numpy()[sel], dtype=object)
    pos = vdf["pos"].to_numpy()[sel].astype(np.int64)
    return ids, pos, _position_order(pos, ids)


#: Most worker threads of the block passes (each holds a block or two in flight).
MAX_WORKERS = 8


def worker_count() -> int:
    """Worker threads of the block passes: ``OMP_NUM_THREADS`` (``--threads``), else the CPUs; at most 8."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    n = int(env) if env.isdigit() else len(os.sched_getaffinity(0))
    return max(1, min(n, MAX_WORKERS))


def _loaded_blocks(source, chrom: str, *, samples: list, q: np.ndarray, n_var: int, block: int):
    """Yield ``(start, stop, raw, codes, stats, rows_nan, masks)`` per block, in order.

    Blocks are read and their statistics computed on worker threads (``OMP_NUM_THREADS`` of them,
    BLAS held to one thread each; reads are serialised by the source), at most ``workers + 1`` in
    flight. Each block's statistics depend on that block alone, so they do not depend on the threads.
    """
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    def work(start: int) -> tuple:
        stop = min(start + block, n_var)
        raw, codes = read_block(source, chrom, samples=samples, start=start, stop=stop)
        buf = np.empty((stop - start, len(samples)))
        return (start, stop, raw, codes, *_block_stats(raw, q, buf, codes=codes)[:3])

    workers = worker_count()
    with ThreadPoolExecutor(max_workers=workers) as pool, threadpool_limits(limits=1, user_api="blas"):
        inflight = deque()
        for start in range(0, n_var, block):
            inflight.append(pool.submit(work, start))
            if len(inflight) > workers:
                yield inflight.popleft().result()
        while inflight:
            yield inflight.popleft().result()


def open_chromosome(source, chrom: str, *, samples, q: np.ndarray, block: int = LOAD_BLOCK) -> ChromGenotypes:
    """:func:`load_chromosome` with the genotypes kept on disk: read once for the statistics, then by block.

    When the source lists the chromosome's variants by (position, ID), a first pass computes every
    per-variant statistic (exactly as :func:`load_chromosome`, blocks discarded), and the store is a
    :class:`BlockStore` that reads the blocks the windows need (:meth:`ChromGenotypes.rows64` gives
    the same float64 rows); otherwise the chromosome is loaded (:func:`load_chromosome`).

    Parameters
    ----------
    source, chrom, samples, q, block
        As :func:`load_chromosome`.

    Returns
    -------
    ChromGenotypes
        Its ``store`` a :class:`BlockStore` (memory: the blocks under the current windows, plus
        ~150 bytes per variant) or the loaded array.
    """
    ids, pos, order = chromosome_variants(source, chrom)
    if not np.array_equal(order, np.arange(order.size)):
        return load_chromosome(source, chrom, samples=samples, q=q, block=block)
    samples = list(samples)
    stats = {name: np.empty(ids.size, dtype=dt) for name, dt in _STATS}
    for start, stop, _, _, block_stats, _, _ in _loaded_blocks(
        source, chrom, samples=samples, q=q, n_var=ids.size, block=block
    ):
        for name, _ in _STATS:
            stats[name][start:stop] = block_stats[name]
    store = BlockStore(source, chrom, samples=samples, n_variants=ids.size, block=block)
    empty = np.empty(0, dtype=np.int64)
    return ChromGenotypes(
        chrom=chrom,
        ids=ids,
        pos=pos,
        store=store,
        miss_rows=empty,
        miss_mask=np.empty((0, len(samples)), dtype=bool),
        **stats,
    )


def load_chromosome(source, chrom: str, *, samples, q: np.ndarray, block: int = LOAD_BLOCK) -> ChromGenotypes:
    """Read one chromosome, impute, and compute every per-variant quantity once.

    Parameters
    ----------
    source
        A :class:`~tbeqtl.io.genotypes.GenotypeSource`.
    chrom
        Chromosome (as in ``source.variant_df``).
    samples
        Genotype individual of each analysed sample (the cohort's ``genotype_ids``).
    q
        Orthonormal basis (n x (k+1)) of the intercept and covariates.
    block
        Variants read and processed at a time.

    Returns
    -------
    ChromGenotypes
        The chromosome, variants sorted by (position, ID): its dosages in one int8 matrix (hard
        calls) or float32 matrix (dosages) and float64 per-variant statistics.

    Notes
    -----
    Memory: ``V n`` bytes for ``V`` variants and ``n`` samples (``4 V n`` with dosages) for the
    whole chromosome, plus ~150 bytes per variant and ``workers + 1`` blocks (``block x n``
    float64 each) while reading (:func:`_loaded_blocks`); the store is not streamed (see
    :mod:`tbeqtl.association.cis`; the nominal pass streams, :mod:`.cis_nominal`).
    """
    ids, pos, order = chromosome_variants(source, chrom)
    in_order = bool(np.all(order == np.arange(order.size)))
    dest_of = np.empty(order.size, dtype=np.int64)
    dest_of[order] = np.arange(order.size)
    n_var, n = ids.size, len(samples)
    store = None
    stats = {name: np.empty(n_var, dtype=dt) for name, dt in _STATS}
    miss_rows, miss_masks = [], []
    samples = list(samples)
    for start, stop, raw, codes, block_stats, rows_nan, masks in _loaded_blocks(
        source, chrom, samples=samples, q=q, n_var=n_var, block=block
    ):
        if store is None:
            store = np.empty((n_var, n), dtype=np.float32 if codes is None else np.int8)
        elif codes is None and store.dtype == np.int8:
            store = store.astype(np.float32)  # dosages after hard calls: widen once
        dest = slice(start, stop) if in_order else dest_of[start:stop]
        if codes is None or store.dtype == np.int8:
            store[dest] = raw if codes is None else codes
        else:  # hard calls after dosages: stored as floats (missing calls are filled by rows64)
            store[dest] = codes
        for name, _ in _STATS:
            stats[name][dest] = block_stats[name]
        if rows_nan.size:
            miss_rows.append(dest_of[start:stop][rows_nan])
            miss_masks.append(masks)
    if miss_rows:
        rows, masks = np.concatenate(miss_rows), np.concatenate(miss_masks)
        by = np.argsort(rows)
        rows, masks = rows[by], masks[by]
    else:
        rows, masks = np.empty(0, dtype=np.int64), np.empty((0, n), dtype=bool)
    if store is None:
        store = np.empty((0, n), dtype=np.int8)
    return ChromGenotypes(
        chrom=chrom, ids=ids[order], pos=pos[order], store=store, miss_rows=rows, miss_mask=masks, **stats
    )


def residual_unit(values: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residualise rows on ``q`` (an orthonormal basis containing the intercept direction) and scale.

    Rows are centred, projected once, and projected again where the first pass cancelled most
    of them (``||x_res||^2 < 1e-4 ||x - mean||^2``), so they are orthogonal to ``q`` to float64
    precision relative to their own norm.

    Parameters
    ----------
    values
        m x n float64 rows (not modified).
    q
        n x c orthonormal columns spanning the intercept and the covariates.

    Returns
    -------
    unit : numpy.ndarray
        m x n residuals scaled to unit norm (zero rows stay 0).
    norms : numpy.ndarray
        Residual norms.
    """
    x = np.array(values, dtype=np.float64, copy=True, ndmin=2)
    x -= x.mean(axis=1, keepdims=True)
    centered = np.einsum("ij,ij->i", x, x)
    x -= (x @ q) @ q.T
    norms2 = np.einsum("ij,ij->i", x, x)
    again = np.flatnonzero(norms2 < 1e-4 * centered)
    if again.size:
        sub = x[again]
        sub -= (sub @ q) @ q.T
        x[again] = sub
        norms2[again] = np.einsum("ij,ij->i", sub, sub)
    norms = np.sqrt(norms2)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    x *= scale[:, None]
    return x, norms


def extend_basis(q: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Orthonormal columns spanning ``columns`` orthogonalised against ``q`` (Gram-Schmidt, twice).

    Parameters
    ----------
    q
        n x c orthonormal basis.
    columns
        n x s new covariates (e.g. selected variants' dosages).

    Returns
    -------
    numpy.ndarray
        n x s orthonormal columns, orthogonal to ``q``: ``[q, result]`` spans ``[q, columns]``.

    Raises
    ------
    InputError
        A new column lies in the span of ``q`` and the columns before it.
    """
    basis = q
    added = []
    for col in np.asarray(columns, dtype=np.float64).T:
        v = col - basis @ (basis.T @ col)
        v -= basis @ (basis.T @ v)
        norm = np.linalg.norm(v)
        if norm <= 1e-10 * max(np.linalg.norm(col - col.mean()), 1e-300):
            raise InputError("a conditioning variant is collinear with the covariates and earlier variants")
        v /= norm
        added.append(v)
        basis = np.column_stack([basis, v])
    return np.column_stack(added) if added else np.empty((q.shape[0], 0))


def association_stats(dots, res_norm, *, y_norm: float, df: float) -> dict[str, np.ndarray]:
    """OLS statistics of the variants of one phenotype from ``<g, y_res>``.

    Parameters
    ----------
    dots
        ``<g, y_res>`` per variant (float64; ``y_res`` the residualised phenotype, not scaled).
    res_norm
        ``||g_res||`` per variant (0 = not testable: NaN statistics).
    y_norm
        ``||y_res||``.
    df
        Residual degrees of freedom ``n - 2 - k``.

    Returns
    -------
    dict
        ``r``, ``r2``, ``slope``, ``slope_se``, ``tstat``, ``pval`` (float64 arrays).
    """
    dots = np.asarray(dots, dtype=np.float64)
    res_norm = np.asarray(res_norm, dtype=np.float64)
    ok = res_norm > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(ok, dots / (res_norm * y_norm), np.nan)
        r = np.clip(r, -1.0, 1.0)
        one_minus = (1.0 - r) * (1.0 + r)
        slope = np.where(ok, dots / (res_norm * res_norm), np.nan)
        slope_se = np.sqrt(one_minus / df) * y_norm / res_norm
        tstat = r * np.sqrt(df / one_minus)
        pval = _pvalue(r, one_minus, df)
    return {
        "r": r,
        "r2": r * r,
        "slope": slope,
        "slope_se": np.where(ok, slope_se, np.nan),
        "tstat": tstat,
        "pval": pval,
    }


def _pvalue(r: np.ndarray, one_minus: np.ndarray, df: float) -> np.ndarray:
    """``p = I_{1 - r^2}(df/2, 1/2)``, as ``2 P(T_df < -|t|)`` (scipy's ``stdtr``) where ``|r| < 0.4``.

    Near ``r = 0`` the argument ``1 - r^2`` rounds to a multiple of ``2^-53`` and ``p ~ 1 - c |r|``
    inherits an absolute error of ``c 2^-53 / |r|`` (1e-8 at ``|r| = 1e-8``); ``stdtr`` of
    ``t = r sqrt(df / (1 - r^2))`` is accurate to ~1e-16 relative there (checked against mpmath,
    and as fast as ``betainc``). Where ``|r| >= 0.4``, ``betainc`` on ``(1 - r)(1 + r)`` is the
    more accurate (~4e-15 vs ~9e-14 relative at |r| = 0.7; they cross near |r| = 0.4).
    """
    small = r * r < 0.16
    p = np.empty_like(one_minus)
    rs = r[small]
    p[small] = 2.0 * special.stdtr(df, -np.abs(rs) * np.sqrt(df / one_minus[small]))
    p[~small] = special.betainc(df / 2.0, 0.5, one_minus[~small])
    return p


def float32_error_factor(n: int) -> float:
    """``gamma = (n + 3) u / (1 - (n + 3) u)`` with ``u = 2^-24``: see :func:`scan_permutations`."""
    m = (n + 3) * U32
    return m / (1.0 - m)


@dataclass
class ScanResult:
    """One phenotype's window scanned against its permutations.

    Attributes
    ----------
    dots : numpy.ndarray
        ``<g, u>`` per window variant (float64; ``u`` the unit residual phenotype).
    res_norm : numpy.ndarray
        ``||g_res||`` per window variant w.r.t. the basis used (0 = not testable).
    r2_perm : numpy.ndarray
        float64 maximum of ``r^2`` over the testable window variants, per permutation.
    r2_perm_float32 : numpy.ndarray or None
        The float32 maxima before the float64 recomputation (only with ``keep_float32``).
    bound : float
        Largest float32 error bound ``delta_v`` on ``|r|`` over the variants scanned in float32.
    n_candidates : int
        (variant, permutation) pairs recomputed in float64.
    """

    dots: np.ndarray
    res_norm: np.ndarray
    r2_perm: np.ndarray
    r2_perm_float32: np.ndarray | None
    bound: float
    n_candidates: int


def _window_norms(chromg, vb, x64, extra, q_full):
    """Residual norms of block rows w.r.t. ``[Q, extra]`` (downdated, recomputed where that cancels)."""
    base = chromg.res_norm[vb]
    if extra is None:
        return base.copy()
    proj = x64 @ extra  # <g, q_l> = <g_res, q_l> since q_l is orthogonal to Q
    rn2 = base * base - np.einsum("ij,ij->i", proj, proj)
    redo = np.flatnonzero((base > 0) & (rn2 < 1e-4 * base * base))
    if redo.size:
        sub = x64[redo] - chromg.mean[vb[redo], None]
        sub -= (sub @ q_full) @ q_full.T
        sub -= (sub @ q_full) @ q_full.T
        rn2[redo] = np.einsum("ij,ij->i", sub, sub)
    rn = np.sqrt(np.clip(rn2, 0.0, None))
    ok = (base > 0) & (rn * UNTESTABLE_RATIO > chromg.centered_norm[vb])
    return np.where(ok, rn, 0.0)


def _exact_candidates(chromg, cand_v, cand_j, norms_of, yp: np.ndarray, r2_perm: np.ndarray) -> None:
    """Recompute candidate pairs in float64 and raise ``r2_perm`` to their maxima (in place)."""
    n_perm = yp.shape[0]
    uniq, inv, counts = np.unique(cand_v, return_inverse=True, return_counts=True)
    x = chromg.rows64(uniq)
    norms = norms_of(uniq)
    dense = counts > max(n_perm // 16, 1)
    if dense.any():
        r = (x[dense] @ yp.T) / norms[dense, None]
        np.maximum(r2_perm, (r * r).max(axis=0), out=r2_perm)
    sparse = ~dense[inv]
    v_loc, j = inv[sparse], cand_j[sparse]
    chunk = 8192
    for s in range(0, v_loc.size, chunk):
        vl, jj = v_loc[s : s + chunk], j[s : s + chunk]
        r = np.einsum("ij,ij->i", x[vl], yp[jj]) / norms[vl]
        np.maximum.at(r2_perm, jj, r * r)


class WindowCache:
    """Prepared blocks of a chromosome's tested variants, kept while phenotype windows slide along it.

    The tested variants (``keep``, sorted rows) are cut into blocks of ``block`` consecutive
    tested variants; a block holds its exact float64 rows and their float32 scaled, centred
    copies ``fl32((g - mean) / ||g_res||)`` (rows with ``rho > EXACT_RATIO`` zeroed: they go through
    float64). A window of tested variants is a contiguous range of them, so it is a run of block
    slices, prepared once however many windows share them. Phenotypes come in position order:
    :meth:`release` drops the blocks left of the current window.

    Parameters
    ----------
    chromg
        The chromosome.
    keep
        Sorted rows of the variants to test.
    block
        Tested variants per block.
    float32
        Also prepare the float32 scaled copies (False: the exact rows only, for nominal products).
    device
        A :class:`~tbeqtl.association.cis_device.TorchDevice`: the float32 copies are kept there
        (uploaded once per block, reused by every window over it), or None (host numpy).
    """

    def __init__(
        self,
        chromg: ChromGenotypes,
        keep: np.ndarray,
        *,
        block: int = SCAN_BLOCK,
        float32: bool = True,
        device=None,
    ):
        self.chromg, self.keep, self.block, self.float32 = chromg, keep, block, float32
        self.device = device
        self._blocks: dict[int, tuple] = {}

    def _get(self, k: int) -> tuple:
        if k not in self._blocks:
            g = self.chromg
            rows = self.keep[k * self.block : (k + 1) * self.block]
            x64 = g.rows64(rows)
            if not self.float32:  # float64 rows only (nominal products)
                self._blocks[k] = (rows, x64, *([np.empty((rows.size, 0))] * 4))
                return self._blocks[k]
            norms = g.res_norm[rows]
            ratio = g.centered_norm[rows] / norms
            exact = ratio > EXACT_RATIO
            z = (x64 - g.mean[rows, None]) * (1.0 / norms)[:, None]
            z[exact] = 0.0
            z32 = z.astype(np.float32) if self.device is None else self.device.put(z)
            self._blocks[k] = (rows, x64, norms, ratio, exact, z32)
        return self._blocks[k]

    def release(self, first_kept: int) -> None:
        """Forget the blocks ending before tested variant ``first_kept`` (and the genotype blocks there)."""
        for k in [k for k in self._blocks if (k + 1) * self.block <= first_kept]:
            del self._blocks[k]
        if isinstance(self.chromg.store, BlockStore) and first_kept < self.keep.size:
            self.chromg.store.release(int(self.keep[first_kept]))

    def pieces(self, vidx: np.ndarray):
        """Yield ``(offset, rows, x64, norms, ratio, exact, z32)`` slices covering the window ``vidx``."""
        a = int(np.searchsorted(self.keep, vidx[0])) if vidx.size else 0
        if vidx.size and not np.array_equal(self.keep[a : a + vidx.size], vidx):
            raise ValueError("window rows are not a contiguous run of the cached tested variants")
        b = a + vidx.size
        pos = a
        while pos < b:
            k = pos // self.block
            lo, hi = pos - k * self.block, min(b, (k + 1) * self.block) - k * self.block
            rows, x64, norms, ratio, exact, z = self._get(k)
            yield pos - a, rows[lo:hi], x64[lo:hi], norms[lo:hi], ratio[lo:hi], exact[lo:hi], z[lo:hi]
            pos += hi - lo


def _rows_pieces(chromg, vidx, block):
    """``(offset, rows, x64)`` blocks of a window, converted for this window only."""
    for s in range(0, vidx.size, block):
        vb = vidx[s : s + block]
        yield s, vb, chromg.rows64(vb)


def _fresh_pieces(chromg, rows_pieces, extra, q_full):
    """Like :meth:`WindowCache.pieces`, with norms (and float32 rows) for the extra covariates."""
    for s, vb, x64, *_ in rows_pieces:
        nb = _window_norms(chromg, vb, x64, extra, q_full)
        ok = nb > 0
        ratio = np.divide(chromg.centered_norm[vb], nb, out=np.full(vb.size, np.inf), where=ok)
        exact = ok & (ratio > EXACT_RATIO)
        scan = ok & ~exact
        z = np.zeros(x64.shape, dtype=np.float32)
        z[scan] = (x64[scan] - chromg.mean[vb[scan], None]) * (1.0 / nb[scan])[:, None]
        yield s, vb, x64, nb, np.where(scan, ratio, 0.0), exact, z


def _rescaled_pieces(chromg, cache_pieces, extra, q_full):
    """Reuse cached float32 rows with extra covariates: norms downdated, one rescale factor per row.

    The cached ``z = fl32((g - mean) / ||g_res||)`` times a permutation orthogonal to ``[Q, extra]``
    is ``r * n_extra / ||g_res||`` with ``n_extra`` the norm of ``g`` residualised on ``[Q, extra]``:
    the product rescaled by ``||g_res|| / n_extra`` (0 for rows not scanned in float32) is the
    conditional correlation, without converting the window again.
    """
    for s, vb, x64, base_nb, _, base_exact, z in cache_pieces:
        nb = _window_norms(chromg, vb, x64, extra, q_full)
        ok = nb > 0
        ratio = np.divide(chromg.centered_norm[vb], nb, out=np.full(vb.size, np.inf), where=ok)
        exact = ok & (base_exact | (ratio > EXACT_RATIO))
        scan = ok & ~exact
        scale = np.divide(base_nb, nb, out=np.zeros(vb.size), where=scan).astype(np.float32)
        yield s, vb, x64, nb, np.where(scan, ratio, 0.0), exact, z, scale


class _NumpyScan:
    """The float32 part of :func:`scan_permutations` on the host (numpy BLAS).

    Per block: ``r = |z @ fl32(yp)^T|`` (rescaled first when a factor is given), column maxima
    ``bm``, running lower bounds ``L = max(L, bm - delta)`` of the true maxima, and the pairs with
    ``r >= L_j - delta`` in the permutations whose maximum the block may hold (``bm + delta >= L``);
    after the first blocks few do. :class:`~tbeqtl.association.cis_device.TorchScan` is the same
    on a torch device.
    """

    def __init__(self, yp: np.ndarray, *, rows: int, keep_float32: bool = False):
        self.n_perm = yp.shape[0]
        self.yp32t = np.ascontiguousarray(yp.astype(np.float32).T)  # convert, then transpose: faster
        self.rbuf = np.empty((rows, self.n_perm), dtype=np.float32)
        self.lower = np.full(self.n_perm, -np.inf, dtype=np.float32)
        self.m32 = np.zeros(self.n_perm, dtype=np.float32) if keep_float32 else None

    def block(self, z: np.ndarray, scale: np.ndarray | None, delta: np.float32):
        """Candidate ``(rows, cols, values)`` of one block of float32 rows ``z`` (see the class)."""
        r = np.matmul(z, self.yp32t, out=self.rbuf[: z.shape[0]])
        if scale is not None:
            np.multiply(r, scale[:, None], out=r)
        np.abs(r, out=r)
        bm = r.max(axis=0)
        if self.m32 is not None:
            np.maximum(self.m32, bm, out=self.m32)
        np.maximum(self.lower, bm - delta, out=self.lower)
        cols = np.flatnonzero(bm + delta >= self.lower)
        if not cols.size:
            return cols, cols, np.empty(0, dtype=np.float32)
        sub = r if cols.size == self.n_perm else r[:, cols]
        rows, cc = np.nonzero(sub >= (self.lower[cols] - delta)[None, :])
        return rows, cols[cc], sub[rows, cc]

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the final float32 lower bounds per permutation and the float32 maxima (or None)."""
        return self.lower, self.m32


def scan_permutations(
    chromg: ChromGenotypes,
    vidx: np.ndarray,
    *,
    u: np.ndarray,
    yp: np.ndarray,
    extra: np.ndarray | None = None,
    q_full: np.ndarray | None = None,
    cache: WindowCache | None = None,
    block: int = SCAN_BLOCK,
    keep_float32: bool = False,
    device=None,
) -> ScanResult:
    """Nominal products and permutation maxima of ``r^2`` over one phenotype's window.

    Parameters
    ----------
    chromg
        The chromosome.
    vidx
        Window variants (rows of ``chromg``), in position order.
    u
        Unit residual phenotype (n,), orthogonal to the basis in use.
    yp
        Unit residual permuted phenotypes (P x n float64), orthogonal to the basis in use.
    extra
        Columns added to the covariate basis (n x s, orthonormal and orthogonal to ``Q``), as in
        the conditional passes; the residual norms are downdated for them.
    q_full
        ``[Q, extra]`` (needed with ``extra``).
    cache
        Prepared blocks shared by the windows of a chromosome (``vidx`` must then be a contiguous
        run of its tested variants); with ``extra`` its float32 rows are reused, each product row
        rescaled by ``||g_res|| / n_extra`` (the bound below then holds with ``rho_v`` taken on
        ``n_extra``, two more roundings of relative size ``u`` added).
    block
        Variants per float32 product block (without a cache).
    keep_float32
        Also return the float32 maxima (for tests of the bound).
    device
        A :class:`~tbeqtl.association.cis_device.TorchDevice` for the float32 products, their
        maxima and the candidate selection (:class:`~tbeqtl.association.cis_device.TorchScan`), or
        None (numpy). The candidates' float64 recomputation and ``dots`` stay on the host.

    Returns
    -------
    ScanResult
        Products, norms, and the float64 permutation maxima.

    Notes
    -----
    Each variant enters the float32 product as ``x_v = fl32((g_v - mean_v) / ||g_res,v||)`` (computed
    in float64 from the exact dosages, rounded once), the permutations as ``fl32(yp_j)``. With
    ``u = 2^-24`` and ``rho_v = ||g_v - mean_v|| / ||g_res,v||`` (>= 1; 1 / sqrt(1 - R^2) of the
    variant on the covariates), the float32 correlation obeys

        ``| |r32_vj| - |r_vj| | <= delta_v = gamma * rho_v``,  ``gamma = (n + 3) u / (1 - (n + 3) u)``

    (the standard bound ``gamma_n sum |x_i y_i|`` of a dot product in any summation order, plus
    one rounding of each operand; ``sum |x_i y_i| <= rho_v`` by Cauchy-Schwarz since ``yp_j`` has
    unit norm and is orthogonal to the intercept). For n = 445 and rho = 1, delta = 2.7e-5; on
    ``r^2``, ``|r32^2 - r^2| <= delta (2 |r| + delta)``, so the float32 maxima alone would be within
    ``2 delta + delta^2`` of the float64 maxima (``ScanResult.r2_perm_float32``; tested).
    With ``L_j = max_v (|r32_vj| - delta_v)`` a lower bound of the true maximum, every pair with
    ``|r32_vj| + delta_v >= L_j`` is recomputed in float64 and no other pair can hold the maximum,
    so ``r2_perm`` is the float64 maximum (to float64 rounding, ~1e-15) whatever float32 does.
    Variants with ``rho_v > EXACT_RATIO`` are computed in float64 for every permutation.

    On a torch device the bound holds as long as the float32 GEMM is IEEE float32 (products and
    accumulation, any order): CUDA's TF32 must be off, which the cis functions ensure
    (:meth:`~tbeqtl.association.cis_device.TorchDevice.exact_float32`). The device's float32
    products may round differently from numpy's, so the candidate sets may differ, but both
    contain every pair that can hold a maximum: ``r2_perm`` is the same float64 maximum (bit for
    bit in the tests on CPU torch; at worst the float64 rounding of a dense vs a per-pair product).
    """
    n_perm, n = yp.shape
    nw = vidx.size
    dots = np.empty(nw)
    norms = np.empty(nw)
    rows_max = min(cache.block if cache is not None else block, max(nw, 1))
    if device is None:
        scanner = _NumpyScan(yp, rows=rows_max, keep_float32=keep_float32)
    else:
        scanner = device.scan(yp, keep_float32=keep_float32)
    gamma = float32_error_factor(n)
    rec_v, rec_j, rec_val, rec_d = [], [], [], []
    exact_rows = []
    bound = 0.0
    if cache is not None and extra is None and cache.float32:
        pieces = cache.pieces(vidx)
    elif cache is not None and cache.float32:
        pieces = _rescaled_pieces(chromg, cache.pieces(vidx), extra, q_full)
    else:
        rows = cache.pieces(vidx) if cache is not None else _rows_pieces(chromg, vidx, block)
        pieces = _fresh_pieces(chromg, rows, extra, q_full)
    for s, _, x64, nb, ratio, exact, z, *rescale in pieces:
        m = nb.size
        dots[s : s + m] = x64 @ u
        norms[s : s + m] = nb
        if exact.any():
            exact_rows.append(s + np.flatnonzero(exact))
        scanned = (nb > 0) & ~exact
        scan_ratio = ratio[scanned]
        if not scan_ratio.size:
            continue
        # + 4u: the float32 comparisons round values of magnitude <= 1 by at most u each; a
        # rescaled product (cached rows with extra covariates) adds the rounding of the factor and
        # of the multiplication, relative u each
        slack = 6 if rescale else 4
        delta = np.float32(gamma * scan_ratio.max() * (1 + slack * U32) + slack * U32)
        bound = max(bound, float(delta))
        rows, cols, vals = scanner.block(z, rescale[0] if rescale else None, delta)
        real = scanned[rows]  # zero rows stand for variants not in the float32 product
        if real.any():
            rec_v.append(s + rows[real])
            rec_j.append(cols[real])
            rec_val.append(vals[real])
            rec_d.append(np.full(int(real.sum()), delta, dtype=np.float32))
    lower, m32 = scanner.result()
    r2_perm = np.zeros(n_perm)
    n_cand = 0
    if rec_v:
        cv, cj = np.concatenate(rec_v), np.concatenate(rec_j)
        keep = np.concatenate(rec_val) + np.concatenate(rec_d) >= lower[cj]
        cv, cj = cv[keep], cj[keep]
        n_cand = int(cv.size)
        _exact_candidates(chromg, vidx[cv], cj, _norm_lookup(vidx, norms), yp, r2_perm)
    if exact_rows:
        loc = np.concatenate(exact_rows)
        x = chromg.rows64(vidx[loc])
        r = (x @ yp.T) / norms[loc, None]
        np.maximum(r2_perm, (r * r).max(axis=0), out=r2_perm)
    r2_32 = None if m32 is None else m32.astype(np.float64) ** 2
    return ScanResult(
        dots=dots, res_norm=norms, r2_perm=r2_perm, r2_perm_float32=r2_32, bound=bound, n_candidates=n_cand
    )


def _norm_lookup(vidx: np.ndarray, norms: np.ndarray):
    """Map chromosome rows (a subset of ``vidx``, which is sorted) to their window norms."""

    def lookup(rows: np.ndarray) -> np.ndarray:
        return norms[np.searchsorted(vidx, rows)]

    return lookup
