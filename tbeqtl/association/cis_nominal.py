"""Nominal cis pairs of one chromosome, streamed to parquet (see :func:`tbeqtl.association.cis.map_nominal`).

:func:`write_nominal_streamed` (every non-interaction run) reads the chromosome in blocks of
variants on worker threads: each block's per-variant statistics, one product of its centred float64
rows with the residualised phenotypes whose windows meet it, and the pairs of each phenotype cut
out; a phenotype is written once the blocks have passed the end of its window. Genotype memory is
a few blocks, whatever the number of variants. :func:`write_nominal_chromosome` (interaction
terms) works on a loaded chromosome: phenotypes in groups of neighbours whose windows overlap, the
union of their windows converted once (:class:`~tbeqtl.association.cis_kernels.WindowCache`).
Rows go to a :class:`pyarrow.parquet.ParquetWriter` in row groups, written by a background
thread, so memory does not grow with the number of pairs.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from ..atomic import atomic_path
from ..schema import validate_table
from .cis_kernels import (
    WindowCache,
    association_stats,
    block_statistics,
    chromosome_variants,
    read_block,
    residual_unit,
    worker_count,
)

__all__ = ["ParquetStream", "pair_schema", "write_nominal_chromosome", "write_nominal_streamed"]

logger = logging.getLogger(__name__)

#: Largest union of windows (variants) converted to float64 at once.
MAX_UNION = 16_384
#: Largest union of windows whose interaction designs are prepared at once.
MAX_UNION_INTERACTION = 2_048
#: Largest group of phenotypes sharing one product.
MAX_GROUP = 64
#: Variants per cached block of float64 rows (each converted once, shared by the windows over it).
CACHE_BLOCK = 2_048
#: Rows per parquet row group.
ROWS_PER_GROUP = 262_144
#: Variants read and tested at a time by the streamed pass (:func:`write_nominal_streamed`).
STREAM_BLOCK = 4_096


def pair_schema(*, has_end: bool, stat_columns: list[str]) -> pa.Schema:
    """Arrow schema of a pair file: ids, distances, allele counts, then ``stat_columns`` (float64)."""
    fields = [("phenotype_id", pa.string()), ("variant_id", pa.string()), ("start_distance", pa.int32())]
    if has_end:
        fields.append(("end_distance", pa.int32()))
    fields += [("af", pa.float64()), ("ma_samples", pa.int32()), ("ma_count", pa.int32())]
    fields += [(c, pa.float64()) for c in stat_columns]
    return pa.schema(fields)


def repeated_strings(names: list[str], counts: list[int]) -> pa.Array:
    """Arrow string array of ``names[i]`` repeated ``counts[i]`` times, built from its buffers.

    (``pa.array`` of an object array of 2.7M repeated IDs costs ~0.5 s; this costs a few ms.)
    """
    encoded = [name.encode("utf-8") for name in names]
    lengths = np.repeat(np.array([len(e) for e in encoded], dtype=np.int64), counts)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = pa.py_buffer(b"".join(e * int(k) for e, k in zip(encoded, counts, strict=True)))
    if offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(lengths.size, pa.py_buffer(offsets.astype(np.int32)), data)
    return pa.LargeStringArray.from_buffers(lengths.size, pa.py_buffer(offsets), data).cast(pa.string())


class ParquetStream:
    """Write a parquet file in row groups from a background thread; atomic (temp file renamed on success).

    Parameters
    ----------
    path
        Destination.
    schema
        Arrow schema of the rows.
    table_name
        Schema registry name checked (:func:`~tbeqtl.schema.validate_table`) on the first batch.
    variant_ids
        Arrow string array the ``variant_id`` column is taken from (by row position).
    term_columns
        Columns named after interaction terms, not in the registered schema (not validated).
    """

    def __init__(
        self, path: Path, schema: pa.Schema, *, table_name: str, variant_ids: pa.Array, term_columns=()
    ):
        self.path, self.schema, self.table_name, self.variant_ids = path, schema, table_name, variant_ids
        self.term_columns = tuple(term_columns)
        self._parts: list[dict] = []
        self._buffered = 0
        self.n_rows = 0
        self._validated = False
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None

    def __enter__(self) -> ParquetStream:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        # dictionary pages for the repeated IDs only: on the float columns the dictionary attempt costs
        # 60% of the encoding time and falls back to plain pages (GEUVADIS chr18, 2.7M pairs: 1.0 ->
        # 0.4 s CPU, 101 -> 99 MB, snappy)
        ids = [c for c in ("phenotype_id", "variant_id") if c in self.schema.names]
        self._writer = pq.ParquetWriter(tmp, self.schema, compression="snappy", use_dictionary=ids)
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write_table(table)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = exc

    def add(self, phenotype_id: str, rows: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        """Queue one phenotype's pairs: chromosome rows of its variants and the other columns."""
        self._parts.append({"phenotype_id": phenotype_id, "rows": rows, **columns})
        self._buffered += rows.size
        if self._buffered >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._parts:
            return
        counts = [p["rows"].size for p in self._parts]
        arrays = {
            "phenotype_id": repeated_strings([p["phenotype_id"] for p in self._parts], counts),
            "variant_id": self.variant_ids.take(pa.array(np.concatenate([p["rows"] for p in self._parts]))),
        }
        for field in self.schema:
            if field.name not in arrays:
                values = np.concatenate([p[field.name] for p in self._parts])
                arrays[field.name] = pa.array(
                    values.astype(field.type.to_pandas_dtype(), copy=False), field.type
                )
        table = pa.table([arrays[f.name] for f in self.schema], schema=self.schema)
        if not self._validated:
            head = table.slice(0, 5).to_pandas()
            if self.term_columns:  # several interaction terms: names made of the term names
                head = head.drop(columns=list(self.term_columns))
            validate_table(head, self.table_name)
            self._validated = True
        self._parts, self._buffered = [], 0
        self.n_rows += table.num_rows
        self._check()
        self._queue.put(table)

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def __exit__(self, exc_type, exc, tb) -> bool:
        failure = exc
        try:
            if failure is None:
                self._flush()
        except BaseException as err:  # noqa: BLE001 - re-raised below, after the thread stops
            failure = err
        finally:
            self._queue.put(None)
            self._thread.join()
            self._writer.close()
        if failure is None and self._error is not None:
            failure = self._error
        if failure is None and self.n_rows > 0:
            self._atomic.__exit__(None, None, None)  # rename onto the destination
            return False
        discard = failure if failure is not None else _Empty()
        self._atomic.__exit__(type(discard), discard, discard.__traceback__)  # remove the temporary file
        if failure is not None and failure is not exc:
            raise failure
        return False


class _Empty(Exception):
    """No rows: the temporary file is removed and nothing is written."""


def _groups(bounds: np.ndarray, *, max_union: int) -> list[tuple[int, int]]:
    """Consecutive phenotypes whose window union stays within ``max_union`` variants."""
    out, first = [], 0
    lo, hi = bounds[0] if len(bounds) else (0, 0)
    for i in range(1, len(bounds)):
        a, b = bounds[i]
        new_lo, new_hi = min(lo, a), max(hi, b)
        if i - first >= MAX_GROUP or new_hi - new_lo > max(max_union, b - a, hi - lo):
            out.append((first, i))
            first, lo, hi = i, a, b
        else:
            lo, hi = new_lo, new_hi
    if len(bounds):
        out.append((first, len(bounds)))
    return out


def write_nominal_chromosome(
    inputs,
    chromg,
    *,
    pids: list[str],
    listed: np.ndarray,
    path: Path,
    window: int,
    model,
    maf_threshold_interaction: float,
    ticker,
) -> int:
    """Write the pairs of one chromosome's phenotypes (see the module docstring).

    Parameters
    ----------
    inputs
        :class:`~tbeqtl.association.cis_inputs.CisInputs`.
    chromg
        The loaded chromosome.
    pids
        Its phenotypes, in output order.
    listed
        Chromosome rows passing the variant filters (sorted).
    path
        Destination file.
    window
        cis window (bp).
    model
        :class:`~tbeqtl.association.interaction.InteractionModel` for the interaction pairs, or None.
    maf_threshold_interaction
        Interaction MAF threshold (interaction mode).
    ticker
        Progress ticker (advanced per phenotype).

    Returns
    -------
    int
        Rows written (0: no file).
    """
    pos = inputs.positions.loc[pids]
    lo = np.searchsorted(chromg.pos, pos["start"].to_numpy() - window, side="left")
    hi = np.searchsorted(chromg.pos, pos["end"].to_numpy() + window, side="right")
    bounds = np.column_stack([np.searchsorted(listed, lo), np.searchsorted(listed, hi)])
    term_columns: list[str] = []
    if model is None:
        stat_columns, table_name = ["pval_nominal", "slope", "slope_se"], "cis_qtl_pairs"
    else:
        stat_columns, table_name = list(model.columns), "cis_qtl_pairs_interaction"
        if model.n_terms > 1:
            term_columns = stat_columns[3:]
    schema = pair_schema(has_end=inputs.has_end, stat_columns=stat_columns)
    ids = pa.array(chromg.ids, pa.string())
    cache = WindowCache(chromg, listed, block=CACHE_BLOCK, float32=False)
    empty = 0
    with ParquetStream(
        path, schema, table_name=table_name, variant_ids=ids, term_columns=term_columns
    ) as stream:
        for g0, g1 in _groups(bounds, max_union=MAX_UNION if model is None else MAX_UNION_INTERACTION):
            if model is None:
                empty += _nominal_group(inputs, chromg, pids[g0:g1], listed, bounds[g0:g1], stream, cache)
            else:
                empty += _interaction_group(
                    inputs,
                    chromg,
                    pids[g0:g1],
                    listed,
                    bounds[g0:g1],
                    stream,
                    model=model,
                    maf_threshold_interaction=maf_threshold_interaction,
                )
            ticker.advance(g1 - g0)
    if empty:
        logger.info("%s: %d phenotype(s) without a variant in their cis window skipped", chromg.chrom, empty)
    untestable = int((~chromg.testable[listed]).sum())
    if untestable and model is None:
        logger.info(
            "%s: %d monomorphic or covariate-collinear variant(s) written with NaN statistics",
            chromg.chrom,
            untestable,
        )
    logger.info("%s: %d pairs written to %s", chromg.chrom, stream.n_rows, path)
    return stream.n_rows


def _common_columns(inputs, chromg, pid: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    start, end = inputs.bounds(pid)
    out = {"start_distance": (chromg.pos[rows] - start).astype(np.int32)}
    if inputs.has_end:
        out["end_distance"] = (chromg.pos[rows] - end).astype(np.int32)
    out.update(af=chromg.af[rows], ma_samples=chromg.ma_samples[rows], ma_count=chromg.ma_count[rows])
    return out


def _nominal_group(inputs, chromg, pids, listed, bounds, stream, cache) -> int:
    a0, b0 = int(bounds[:, 0].min()), int(bounds[:, 1].max())
    if b0 <= a0:
        return len(pids)
    cache.release(a0)
    unit, norms = residual_unit(np.vstack([inputs.values[p] for p in pids]), inputs.q)
    y_res = np.ascontiguousarray((unit * norms[:, None]).T)
    products = np.empty((b0 - a0, len(pids)))
    for off, rows, x64, *_ in cache.pieces(listed[a0:b0]):
        centred = x64 - chromg.mean[rows, None]  # as the streamed pass (same rounding)
        np.matmul(centred, y_res, out=products[off : off + x64.shape[0]])  # <g, y_res>
    empty = 0
    for k, pid in enumerate(pids):
        a, b = int(bounds[k, 0]), int(bounds[k, 1])
        if b <= a:
            empty += 1
            continue
        rows = listed[a:b]
        st = association_stats(
            products[a - a0 : b - a0, k], chromg.res_norm[rows], y_norm=float(norms[k]), df=inputs.df
        )
        stream.add(
            pid,
            rows,
            {
                **_common_columns(inputs, chromg, pid, rows),
                "pval_nominal": st["pval"],
                "slope": st["slope"],
                "slope_se": st["slope_se"],
            },
        )
    return empty


def _interaction_group(
    inputs, chromg, pids, listed, bounds, stream, *, model, maf_threshold_interaction: float
) -> int:
    """Interaction pairs of a group of phenotypes: the union's designs prepared once."""
    from .interaction import interaction_maf_mask

    a0, b0 = int(bounds[:, 0].min()), int(bounds[:, 1].max())
    union = listed[a0:b0]
    tested = chromg.testable[union]  # tensorQTL drops monomorphic rows in this mode
    if not tested.any():
        return len(pids)
    g = chromg.rows64(union[tested])
    mask = np.asarray(interaction_maf_mask(g, model.terms, threshold=maf_threshold_interaction), dtype=bool)
    tested[np.flatnonzero(tested)[~mask]] = False
    if not tested.any():
        return len(pids)
    design = model.prepare(g[mask])
    slot = np.cumsum(tested) - 1  # position of a tested union row in the design
    empty = 0
    for k, pid in enumerate(pids):
        a, b = int(bounds[k, 0]) - a0, int(bounds[k, 1]) - a0
        local = np.flatnonzero(tested[a:b]) + a
        if local.size == 0:
            empty += 1
            continue
        stats = model.test(design.subset(slot[local]), inputs.values[pid])
        rows = union[local]
        stream.add(
            pid,
            rows,
            {
                **_common_columns(inputs, chromg, pid, rows),
                **{c: stats[:, j] for j, c in enumerate(model.columns)},
            },
        )
    return empty


# --------------------------------------------------------------------------------------------- streamed
class _BlockReader:
    """Blocks of a chromosome's variants in (position, ID) order, as :func:`read_block` gives them.

    A source listing the chromosome in that order is read block by block. Otherwise the whole
    chromosome is read once (int8 hard calls, float32 dosages) and the blocks are cut from it in
    sorted order, so both give the same blocks, hence the same statistics bit for bit.
    """

    def __init__(self, source, chrom: str, *, samples, order: np.ndarray):
        self.source, self.chrom, self.samples = source, chrom, list(samples)
        self.order = None if np.array_equal(order, np.arange(order.size)) else order
        self.whole = None
        if self.order is not None:
            logger.info("%s: variants not listed by position: the chromosome is read into memory", chrom)
            self.whole = read_block(source, chrom, samples=self.samples, start=0, stop=order.size)

    def read(self, start: int, stop: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Variants ``start:stop`` (sorted order) as ``(raw, codes)`` (``raw`` may be modified)."""
        if self.whole is None:
            return read_block(self.source, self.chrom, samples=self.samples, start=start, stop=stop)
        rows = self.order[start:stop]
        return tuple(None if a is None else a[rows] for a in self.whole)


@dataclass
class _Stream:
    """What every block of the streamed pass needs (read-only while the workers run)."""

    inputs: object
    reader: _BlockReader
    pos: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    y_res: np.ndarray
    y_norm: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    maf_threshold: float
    mac_threshold: int
    device: object = None
    y_res_device: object = None


def write_nominal_streamed(
    inputs,
    chrom: str,
    *,
    pids: list[str],
    path: Path,
    window: int,
    maf_threshold: float,
    mac_threshold: int,
    ticker,
    block: int | None = None,
    workers: int | None = None,
    device=None,
) -> int:
    """Write a chromosome's nominal pairs reading its genotypes block by block (memory bounded by blocks).

    The chromosome is read in blocks of ``block`` variants (int8 hard calls where the source
    offers them); each block's per-variant statistics are computed, its centred float64 rows
    multiplied once by the residualised phenotypes whose windows meet it (one GEMM), and the
    pairs of each phenotype cut out; a phenotype is written once the blocks reach the end of its
    window, in the phenotype order. Blocks run on ``workers`` threads (BLAS held to one thread
    each), at most ``workers + 1`` in flight, so genotype memory is ``(workers + 1) block n``
    bytes of int8 plus as many float64 blocks, whatever the number of variants. Statistics are
    those of :func:`write_nominal_chromosome` (the same float64 formulas on the same values).

    Parameters
    ----------
    inputs
        :class:`~tbeqtl.association.cis_inputs.CisInputs`.
    chrom
        Chromosome.
    pids
        Its phenotypes, in output order (sorted by start).
    path
        Destination file.
    window
        cis window (bp).
    maf_threshold, mac_threshold
        Variant filters (after imputation), as :func:`~tbeqtl.association.cis.map_nominal`.
    ticker
        Progress ticker (advanced per phenotype).
    block
        Variants per block (default :data:`STREAM_BLOCK`).
    workers
        Threads (default :func:`worker_count`).
    device
        A :class:`~tbeqtl.association.cis_device.TorchDevice` for the block GEMMs (the residual
        phenotypes uploaded once per chromosome; CPU torch held to one thread per worker, as BLAS
        is), or None (numpy).

    Returns
    -------
    int
        Rows written (0: no file).

    Notes
    -----
    A source that does not list the chromosome's variants by (position, ID) is read whole first
    (see :class:`_BlockReader`); the pairs are the same.
    """
    ids, pos, order = chromosome_variants(inputs.source, chrom)
    reader = _BlockReader(inputs.source, chrom, samples=inputs.cohort.genotype_ids, order=order)
    ids, pos = ids[order], pos[order]
    workers = worker_count() if workers is None else max(1, int(workers))
    block = STREAM_BLOCK if block is None else int(block)
    bounds = inputs.positions.loc[pids]
    unit, norms = residual_unit(np.vstack([inputs.values[p] for p in pids]), inputs.q)
    y_res = np.ascontiguousarray((unit * norms[:, None]).T)
    ctx = _Stream(
        inputs=inputs,
        reader=reader,
        pos=pos,
        lo=np.searchsorted(pos, bounds["start"].to_numpy() - window, side="left"),
        hi=np.searchsorted(pos, bounds["end"].to_numpy() + window, side="right"),
        y_res=y_res,
        y_norm=norms,
        starts=bounds["start"].to_numpy(),
        ends=bounds["end"].to_numpy(),
        maf_threshold=maf_threshold,
        mac_threshold=mac_threshold,
        device=device,
        y_res_device=None if device is None else device.put(y_res, dtype=np.float64),
    )
    stat_columns = ["pval_nominal", "slope", "slope_se"]
    schema = pair_schema(has_end=inputs.has_end, stat_columns=stat_columns)
    counts = {"empty": 0, "dropped": 0, "untestable": 0}
    variant_ids = pa.array(ids, pa.string())
    with (
        ParquetStream(path, schema, table_name="cis_qtl_pairs", variant_ids=variant_ids) as stream,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cis-nominal") as pool,
        threadpool_limits(limits=1, user_api="blas"),
        contextlib.nullcontext() if device is None else device.host_threads(1),
    ):
        emit = _Emitter(ctx, pids, stream, ticker, counts)
        inflight: deque = deque()
        for start in range(0, ids.size, block):
            inflight.append(pool.submit(_stream_block, ctx, start, min(start + block, ids.size)))
            if len(inflight) > workers:
                emit.take(*inflight.popleft().result())
        while inflight:
            emit.take(*inflight.popleft().result())
        emit.finish()
    _log_counts(chrom, counts, maf_threshold=maf_threshold, mac_threshold=mac_threshold, n_var=ids.size)
    logger.info("%s: %d pairs written to %s", chrom, stream.n_rows, path)
    return stream.n_rows


def _log_counts(chrom: str, counts: dict, *, maf_threshold, mac_threshold, n_var: int) -> None:
    if counts["dropped"]:
        logger.info(
            "%s: %d of %d variants below maf_threshold=%g / mac_threshold=%d",
            chrom,
            counts["dropped"],
            n_var,
            maf_threshold,
            mac_threshold,
        )
    if counts["empty"]:
        logger.info(
            "%s: %d phenotype(s) without a variant in their cis window skipped", chrom, counts["empty"]
        )
    if counts["untestable"]:
        logger.info(
            "%s: %d monomorphic or covariate-collinear variant(s) written with NaN statistics",
            chrom,
            counts["untestable"],
        )


def _stream_block(ctx: _Stream, start: int, stop: int) -> tuple[int, dict, dict]:
    """Pairs of the phenotypes whose windows meet variants ``start:stop``: ``(stop, pieces, counts)``."""
    inputs = ctx.inputs
    raw, codes = ctx.reader.read(start, stop)
    active = np.flatnonzero((ctx.lo < stop) & (ctx.hi > start) & (ctx.hi > ctx.lo))
    on_host = ctx.device is None and active.size > 0  # the products join the projection's GEMM
    stats, centred, products = block_statistics(
        raw, codes, inputs.q, rhs=ctx.y_res[:, active] if on_host else None
    )
    del raw, codes
    keep = np.ones(stop - start, dtype=bool)
    if ctx.maf_threshold > 0:
        keep &= np.minimum(stats["af"], 1.0 - stats["af"]) >= ctx.maf_threshold
    if ctx.mac_threshold > 0:
        keep &= stats["ma_count"] >= ctx.mac_threshold
    counts = {"dropped": int((~keep).sum()), "untestable": int((keep & ~stats["testable"]).sum())}
    pieces: dict[int, dict] = {}
    if not active.size:
        return stop, pieces, counts
    if products is None:
        products = ctx.device.nominal_products(centred, ctx.y_res_device, active)  # <g, y_res>
    for j, k in enumerate(active):
        a, b = max(int(ctx.lo[k]), start) - start, min(int(ctx.hi[k]), stop) - start
        local = a + np.flatnonzero(keep[a:b])
        if not local.size:
            continue
        st = association_stats(
            products[local, j], stats["res_norm"][local], y_norm=float(ctx.y_norm[k]), df=inputs.df
        )
        rows = start + local
        piece = {"rows": rows, "start_distance": (ctx.pos[rows] - ctx.starts[k]).astype(np.int32)}
        if inputs.has_end:
            piece["end_distance"] = (ctx.pos[rows] - ctx.ends[k]).astype(np.int32)
        piece.update(
            af=stats["af"][local],
            ma_samples=stats["ma_samples"][local],
            ma_count=stats["ma_count"][local],
            pval_nominal=st["pval"],
            slope=st["slope"],
            slope_se=st["slope_se"],
        )
        pieces[int(k)] = piece
    return stop, pieces, counts


class _Emitter:
    """Collect block pieces per phenotype; write each phenotype, in order, once its window is read."""

    def __init__(self, ctx: _Stream, pids: list[str], stream: ParquetStream, ticker, counts: dict):
        self.ctx, self.pids, self.stream, self.ticker, self.counts = ctx, pids, stream, ticker, counts
        self.pending: dict[int, list[dict]] = {}
        self.next = 0

    def take(self, stop: int, pieces: dict, counts: dict) -> None:
        """Add one block's result (blocks arrive in chromosome order)."""
        for key, value in counts.items():
            self.counts[key] += value
        for k, piece in pieces.items():
            self.pending.setdefault(k, []).append(piece)
        self._emit(until=stop)

    def finish(self) -> None:
        """Write every phenotype left (all blocks read)."""
        self._emit(until=None)

    def _emit(self, *, until: int | None) -> None:
        first = self.next
        while self.next < len(self.pids) and (until is None or self.ctx.hi[self.next] <= until):
            parts = self.pending.pop(self.next, [])
            for part in parts:  # in block order; the stream concatenates them once per row group
                self.stream.add(self.pids[self.next], part.pop("rows"), part)
            if not parts:
                self.counts["empty"] += 1
            self.next += 1
        self.ticker.advance(self.next - first)
