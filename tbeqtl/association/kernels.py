"""The streaming block kernel: SNP blocks x all genes by GEMM, thresholded on the fly.

For each block of SNP rows the model's unit residual vectors ``U_j`` (m x n) are multiplied by
the unit residual expression ``E~`` (G x n): ``R_j = U_j E~^T`` holds the partial correlations of
every pair of the block. Only what is needed leaves the block:

* the cis pairs (looked up by :class:`~tbeqtl.association.cistrans.CisIndex`) are read out and
  then zeroed in ``R`` so that the rest of the block is the trans set;
* pairs whose score passes the output threshold of their pool are kept (indices + exact
  float64 correlations);
* the number of tests, the p-value histogram counts and the per-SNP/per-gene best score of each
  pool are accumulated.

Memory is bounded by the block (``m x G`` per product), not by the number of tests.

Precision: ``float64`` computes everything in double precision. ``float32`` runs the products in
single precision as a screen with a safe margin ``delta = 1.01 (n + 2) 2^-24`` on every ``|r_j|``
(a bound on the rounding error of a dot product of two unit vectors of length n), then recomputes
every candidate pair (and every cis pair) exactly in float64: the rows output are identical to
the float64 run. Histogram counts and per-SNP/gene minimum p-values of the trans pool then come
from the float32 products (they can differ for tests within ~1e-6 of a bin edge).

Backends: ``numpy`` (multi-threaded BLAS) or ``torch`` (used on a CUDA device when one is
present; it also runs on CPU).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..logs import progress
from .models import Model

__all__ = ["KernelOutput", "PoolAccumulator", "resolve_backend", "stream_blocks"]

logger = logging.getLogger(__name__)


def resolve_backend(backend: str = "auto") -> tuple[str, str]:
    """Choose the compute backend.

    Parameters
    ----------
    backend
        ``"auto"`` (torch on CUDA when available, else numpy), ``"numpy"``, ``"torch"``
        (torch on CUDA if available, else CPU), ``"torch-cpu"``.

    Returns
    -------
    (str, str)
        Backend name and device.
    """
    if backend == "numpy":
        return "numpy", "cpu"
    if backend in ("auto", "torch", "torch-cpu"):
        cuda = False
        if backend != "torch-cpu":
            try:
                import torch

                cuda = bool(torch.cuda.is_available())
            except ImportError:  # pragma: no cover - torch is a dependency
                cuda = False
        if cuda:
            return "torch", "cuda"
        return ("numpy", "cpu") if backend == "auto" else ("torch", "cpu")
    from ..errors import InputError

    raise InputError(f"unknown backend {backend!r}; choose auto, numpy, torch or torch-cpu")


class _NumpyOps:
    #: elements per chunk of the elementwise pass (fits in cache)
    chunk_elements = 1 << 17

    def __init__(self, dtype):
        self.dtype = dtype
        self._buffers: dict = {}

    def put(self, a):
        return np.ascontiguousarray(a, dtype=self.dtype)

    def gemm(self, a, b, *, slot: int = 0):
        # reuse one output buffer per slot: no fresh pages (and page faults) for every block
        buf = self._buffers.get(slot)
        if buf is None or buf.shape[0] < a.shape[0] or buf.shape[1] != b.shape[0]:
            buf = np.empty((a.shape[0], b.shape[0]), dtype=self.dtype)
            self._buffers[slot] = buf
        out = buf[: a.shape[0]]
        np.matmul(a, b.T, out=out)
        return out

    def scan(self, mats, model, *, df, threshold, inflate=0.0, edges=None, extremes=False):
        n_rows, n_cols = mats[0].shape
        step = max(1, self.chunk_elements // max(n_cols, 1))
        rows, cols = [], []
        counts = None if edges is None else np.zeros(edges.size + 1, dtype=np.int64)
        rowmax = np.zeros(n_rows) if extremes else None
        colmax = np.zeros(n_cols) if extremes else None
        linear = model.name == "linear"
        buf = np.empty((step, n_cols), dtype=mats[0].dtype) if linear else None
        for a in range(0, n_rows, step):
            chunk = [m[a : a + step] for m in mats]
            if linear:  # |r| >= thr - delta: one pass into a reused buffer, and it is also the exact score
                score = np.abs(chunk[0], out=buf[: chunk[0].shape[0]])
                flat = np.flatnonzero(score.ravel() >= threshold - inflate)
            else:
                score = model.score(chunk, df=df, inflate=inflate)
                flat = np.flatnonzero(score.ravel() >= threshold)
            if flat.size:
                r, c = np.divmod(flat, n_cols)
                rows.append(r + a)
                cols.append(c)
            if counts is not None or extremes:
                exact = model.score(chunk, df=df) if inflate and not linear else score
                if counts is not None:
                    idx = np.searchsorted(edges, exact.ravel(), side="right")
                    counts += np.bincount(idx, minlength=edges.size + 1)
                if extremes:
                    rowmax[a : a + step] = exact.max(axis=1)
                    np.maximum(colmax, exact.max(axis=0), out=colmax)
        rows = np.concatenate(rows) if rows else np.empty(0, np.int64)
        cols = np.concatenate(cols) if cols else np.empty(0, np.int64)
        return rows, cols, counts, rowmax, colmax

    def take(self, m, rows, cols):
        return np.asarray(m[rows, cols], dtype=np.float64)

    def zero(self, m, rows, cols):
        m[rows, cols] = 0

    def errstate(self):
        return np.errstate(divide="ignore", invalid="ignore", over="ignore")


class _TorchOps:
    def __init__(self, dtype, device):
        import torch

        self.torch = torch
        self.dtype = torch.float32 if dtype == np.float32 else torch.float64
        self.device = device

    def put(self, a):
        return self.torch.as_tensor(np.ascontiguousarray(a), dtype=self.dtype, device=self.device)

    def gemm(self, a, b, *, slot: int = 0):
        return a @ b.T

    def _idx(self, a):
        return self.torch.as_tensor(a, dtype=self.torch.int64, device=self.device)

    def scan(self, mats, model, *, df, threshold, inflate=0.0, edges=None, extremes=False):
        torch = self.torch
        score = model.score(mats, df=df, inflate=inflate)
        idx = torch.nonzero(score >= threshold).cpu().numpy()
        counts = rowmax = colmax = None
        if edges is not None or extremes:
            exact = model.score(mats, df=df) if inflate else score
            if edges is not None:
                e = torch.as_tensor(edges, dtype=exact.dtype, device=self.device)
                bins = torch.bucketize(exact.reshape(-1), e, right=True)
                counts = torch.bincount(bins, minlength=edges.size + 1).cpu().numpy()
            if extremes:
                rowmax = exact.amax(dim=1).double().cpu().numpy()
                colmax = exact.amax(dim=0).double().cpu().numpy()
        return idx[:, 0], idx[:, 1], counts, rowmax, colmax

    def take(self, m, rows, cols):
        return m[self._idx(rows), self._idx(cols)].double().cpu().numpy()

    def zero(self, m, rows, cols):
        m[self._idx(rows), self._idx(cols)] = 0

    def errstate(self):
        return np.errstate(divide="ignore", invalid="ignore", over="ignore")


@dataclass
class PoolAccumulator:
    """What one pool (cis, trans or all) collects across blocks.

    Parameters
    ----------
    name
        Pool name.
    threshold
        Output threshold on the score (pairs with ``score >= threshold`` are kept, then
        re-checked exactly on the statistic).
    hist_edges
        Ascending score edges of the histogram, or None.
    n_snps, n_genes
        Sizes, for the per-SNP/gene best score.
    """

    name: str
    threshold: float
    hist_edges: np.ndarray | None
    n_snps: int
    n_genes: int
    snp: list = field(default_factory=list)
    gene: list = field(default_factory=list)
    r: list = field(default_factory=list)
    n_tests: int = 0
    hist_counts: np.ndarray | None = None
    best_snp: np.ndarray | None = None
    best_gene: np.ndarray | None = None

    def __post_init__(self):
        if self.hist_edges is not None:
            self.hist_counts = np.zeros(self.hist_edges.size + 1, dtype=np.int64)
        self.best_snp = np.zeros(self.n_snps)
        self.best_gene = np.zeros(self.n_genes)


@dataclass
class KernelOutput:
    """Everything the kernel returns.

    Parameters
    ----------
    pools
        Pool name -> :class:`PoolAccumulator` with the kept pairs (``snp``, ``gene`` index arrays
        and exact ``r`` tuples), test counts, histogram counts and best scores.
    cis_by_gene
        Number of cis tests per gene (to count tests per gene-type stratum).
    beta_norm
        Per SNP, the norm used for beta (||s_res|| or ||i_res||), or None.
    """

    pools: dict
    cis_by_gene: np.ndarray
    beta_norm: np.ndarray | None


def _exact_r(block_mats64, e64, rows_local, genes):
    return tuple(np.einsum("ij,ij->i", m[rows_local], e64[genes]) for m in block_mats64)


def stream_blocks(
    genotypes: np.ndarray,
    expression_unit: np.ndarray,
    model: Model,
    *,
    sample_index: np.ndarray | None = None,
    q: np.ndarray,
    df: int,
    cis_index=None,
    cis_pool: PoolAccumulator | None = None,
    trans_pool: PoolAccumulator,
    cross: np.ndarray | None = None,
    block_size: int = 1024,
    precision: str = "float64",
    backend: str = "numpy",
    device: str = "cpu",
    min_pvalues: bool = False,
    show_progress: bool | None = None,
) -> KernelOutput:
    """Run every SNP x gene test in SNP blocks.

    Parameters
    ----------
    genotypes
        S x n raw dosages (NaN = missing); not modified.
    sample_index
        Column indices putting ``genotypes`` in the sample order of ``expression_unit`` (None: already).
    expression_unit
        G x n unit residual expression ``E~`` (float64).
    model
        The model.
    q
        Covariate basis.
    df
        Degrees of freedom.
    cis_index
        :class:`~tbeqtl.association.cistrans.CisIndex` or None (no cis split: one pool).
    cis_pool, trans_pool
        Accumulators; without a cis split ``trans_pool`` is the ``all`` pool.
    cross
        Last covariate (``linear_cross``).
    block_size
        SNPs per block.
    precision
        ``"float64"`` or ``"float32"`` (screen, then exact float64 recompute).
    backend, device
        ``"numpy"``/``"torch"`` and the torch device.
    min_pvalues
        Track the best score per SNP and gene.
    show_progress
        Progress bar switch (default: automatic).

    Returns
    -------
    KernelOutput
        Kept pairs and counts.
    """
    n_snps, n_samples = genotypes.shape
    n_genes = expression_unit.shape[0]
    f32 = precision == "float32"
    ops = (
        _TorchOps(np.float32 if f32 else np.float64, device)
        if backend == "torch"
        else _NumpyOps(np.float32 if f32 else np.float64)
    )
    e_dev = ops.put(expression_unit)
    delta = 1.01 * (n_samples + 2) * 2.0**-24 if f32 else 0.0
    cis_by_gene = np.zeros(n_genes, dtype=np.int64)
    beta_norm = np.zeros(n_snps) if model.name != "anova" else None
    starts = range(0, n_snps, block_size)
    n_blocks = len(starts)
    for start in progress(
        starts, desc=f"{model.name} tests", total=n_blocks, enabled=show_progress if n_blocks > 1 else False
    ):
        stop = min(start + block_size, n_snps)
        raw = genotypes[start:stop] if sample_index is None else genotypes[start:stop][:, sample_index]
        block = model.prepare(raw, q, cross=cross)
        if beta_norm is not None:
            beta_norm[start:stop] = block.beta_norm
        mats = [ops.gemm(ops.put(m), e_dev, slot=j) for j, m in enumerate(block.mats)]
        with ops.errstate():
            if cis_index is not None:
                c_snp, c_gene = cis_index.pairs(start, stop)
            else:
                c_snp = c_gene = np.empty(0, np.int64)
            n_cis = c_snp.size
            if cis_pool is not None:
                cis_pool.n_tests += n_cis
                np.add.at(cis_by_gene, c_gene, 1)
                if n_cis:
                    local = c_snp - start
                    r_exact = (
                        _exact_r(block.mats, expression_unit, local, c_gene)
                        if f32
                        else tuple(ops.take(m, local, c_gene) for m in mats)
                    )
                    score = np.asarray(model.score(r_exact, df=df))
                    _account(cis_pool, score, c_snp, c_gene, r_exact, min_pvalues=min_pvalues)
                    for m in mats:
                        ops.zero(m, local, c_gene)
            # trans (or all) pool: the whole block with cis entries zeroed
            trans_pool.n_tests += (stop - start) * n_genes - n_cis
            want_hist = trans_pool.hist_edges is not None
            rows, cols, counts, rowmax, colmax = ops.scan(
                mats,
                model,
                df=df,
                threshold=trans_pool.threshold,
                inflate=delta,
                edges=trans_pool.hist_edges if want_hist else None,
                extremes=min_pvalues,
            )
            if rows.size and n_cis and (f32 or trans_pool.threshold <= 0):
                # cis entries are zeroed: they can only pass a threshold <= 0 (or <= delta in float32)
                ok = ~_is_cis(rows + start, cols, c_snp, c_gene, n_genes)
                rows, cols = rows[ok], cols[ok]
            if rows.size:
                if f32:  # exact float64 recomputation of the screened candidates
                    r_exact = _exact_r(block.mats, expression_unit, rows, cols)
                    ok = np.asarray(model.score(r_exact, df=df)) >= trans_pool.threshold
                    _keep(trans_pool, rows[ok] + start, cols[ok], tuple(r[ok] for r in r_exact))
                else:
                    _keep(trans_pool, rows + start, cols, tuple(ops.take(m, rows, cols) for m in mats))
            if counts is not None:
                # the zeroed cis entries fell in the bin of score 0: remove them
                counts[np.searchsorted(trans_pool.hist_edges, 0.0, side="right")] -= n_cis
                trans_pool.hist_counts += counts
            if min_pvalues:
                np.maximum(trans_pool.best_snp[start:stop], rowmax, out=trans_pool.best_snp[start:stop])
                np.maximum(trans_pool.best_gene, colmax, out=trans_pool.best_gene)
        del mats
    pools = {trans_pool.name: trans_pool}
    if cis_pool is not None:
        pools = {cis_pool.name: cis_pool, trans_pool.name: trans_pool}
    return KernelOutput(pools=pools, cis_by_gene=cis_by_gene, beta_norm=beta_norm)


def _is_cis(snps, genes, c_snp, c_gene, n_genes):
    key = snps.astype(np.int64) * n_genes + genes
    cis_key = np.sort(c_snp.astype(np.int64) * n_genes + c_gene)
    pos = np.searchsorted(cis_key, key)
    pos = np.minimum(pos, cis_key.size - 1)
    return cis_key[pos] == key


def _keep(pool: PoolAccumulator, snps, genes, rs) -> None:
    if snps.size:
        pool.snp.append(np.asarray(snps, dtype=np.int64))
        pool.gene.append(np.asarray(genes, dtype=np.int64))
        pool.r.append(rs)


def _account(pool: PoolAccumulator, score, snps, genes, rs, *, min_pvalues: bool) -> None:
    keep = score >= pool.threshold
    _keep(pool, snps[keep], genes[keep], tuple(r[keep] for r in rs))
    if pool.hist_counts is not None:
        idx = np.searchsorted(pool.hist_edges, score, side="right")
        pool.hist_counts += np.bincount(idx, minlength=pool.hist_edges.size + 1)
    if min_pvalues:
        np.maximum.at(pool.best_snp, snps, score)
        np.maximum.at(pool.best_gene, genes, score)
