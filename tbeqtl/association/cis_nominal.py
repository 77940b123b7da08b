"""Nominal cis pairs of one chromosome, streamed to parquet (see :func:`tbeqtl.association.cis.map_nominal`).

Phenotypes are taken in groups of neighbours whose windows overlap: the union of their windows
is multiplied by the group's residualised phenotypes in one product, then each phenotype's
window is cut out. The float64 rows come from a :class:`~tbeqtl.association.cis_kernels.WindowCache`
(each variant converted once while the windows slide over it). Rows go to a
:class:`pyarrow.parquet.ParquetWriter` in row groups, written by a background thread, so memory
does not grow with the number of pairs.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_path
from ..schema import validate_table
from .cis_kernels import WindowCache, association_stats, residual_unit

__all__ = ["ParquetStream", "pair_schema", "write_nominal_chromosome"]

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


def pair_schema(*, has_end: bool, stat_columns: list[str]) -> pa.Schema:
    """Arrow schema of a pair file: ids, distances, allele counts, then ``stat_columns`` (float64)."""
    fields = [("phenotype_id", pa.string()), ("variant_id", pa.string()), ("start_distance", pa.int32())]
    if has_end:
        fields.append(("end_distance", pa.int32()))
    fields += [("af", pa.float64()), ("ma_samples", pa.int32()), ("ma_count", pa.int32())]
    fields += [(c, pa.float64()) for c in stat_columns]
    return pa.schema(fields)


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
            "phenotype_id": pa.array(
                np.repeat(np.array([p["phenotype_id"] for p in self._parts], dtype=object), counts),
                pa.string(),
            ),
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
    for off, _, x64, *_ in cache.pieces(listed[a0:b0]):
        np.matmul(x64, y_res, out=products[off : off + x64.shape[0]])  # <g, y_res>
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
