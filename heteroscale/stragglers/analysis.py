"""The whole what-if analysis of one trace, in passes over chunks of whole steps.

Steps never interact in a replay, so a trace is analysed a chunk of steps at a time, in four passes:

1. record: lay each chunk out like the first step (:class:`~.op_tensor.Layout`), compute its recorded op times
   (transfer time for communication), replay them (T per step) and sum what the ideal durations and
   the forward/backward correlation need;
2. ideal durations: per op type the mean (from those sums) or, for communication, the exact median
   (:mod:`.median`, which reads the chunks' recorded op times again);
3. what-if: every attribution scenario of each chunk (T_ideal, by op type, stage, DP rank, worker,
   last stage ideal);
4. M_W: each chunk again, with the workers that M_W and M_W_what_if choose made ideal.

The caller says where chunks come from (:class:`Chunks`: an in-memory trace, Parquet row groups),
where their recorded op times wait between passes (:class:`WorkStore`: memory, files) and how the
chunks of one pass run (:class:`MapChunks`: in turn, or in worker processes). Memory then stays
bounded by the largest chunk, whatever the trace's length. Results do not depend on the order or
the process in which chunks run. Pure composition of the core modules; the CLI, the exporter and
the tests all start here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import numpy as np

from heteroscale.stragglers.attribution import (
    Attribution,
    StepTimes,
    Workers,
    attribute,
    fixed_workers_times,
    step_what_ifs,
)
from heteroscale.stragglers.chunked import MapChunks, serial_map
from heteroscale.stragglers.dependency import DependencyModel, build_dependency_model
from heteroscale.stragglers.median import exact_medians
from heteroscale.stragglers.op_tensor import Cube, Layout, OpTensor, build_op_tensor
from heteroscale.stragglers.replay import FloatArray, Replay, ideal_work, recorded_work, step_times
from heteroscale.stragglers.root_cause import Diagnosis, diagnose, forward_backward_sums
from heteroscale.stragglers.trace import COMM_TYPES, OP_TYPES, IntArray, JobMeta, Trace, validate

CHUNK_OPS = 1 << 17  # ops per chunk: enough to vectorise the replay, few enough to bound memory


class Chunks(Protocol):
    """A trace as chunks of whole steps, in step order; no step is split between chunks."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Trace: ...


class WorkStore(Protocol):
    """Keeps each chunk's recorded op times (K, steps, dp) from the first pass to the later ones."""

    def save(self, index: int, work: Cube) -> None: ...

    def load(self, index: int) -> Cube: ...


class MemoryStore:
    """Recorded op times kept in this process (for :func:`serial_map` only)."""

    def __init__(self) -> None:
        self._works: dict[int, Cube] = {}

    def save(self, index: int, work: Cube) -> None:
        self._works[index] = work

    def load(self, index: int) -> Cube:
        return self._works[index]


@dataclass(frozen=True)
class Analysis:
    meta: JobMeta
    n_ops: int
    rank: IntArray  # (dp, pp): global rank of each worker
    replay: Replay
    attribution: Attribution
    diagnosis: Diagnosis
    nodes: dict[int, str]


def analyze(trace: Trace, meta: JobMeta) -> Analysis:
    """Analyse a trace held in memory. Raise :class:`~heteroscale.stragglers.trace.TraceError` when
    it cannot be analysed."""
    return analyze_chunks(split_steps(trace), meta, MemoryStore(), serial_map)


def split_steps(trace: Trace, chunk_ops: int = CHUNK_OPS) -> list[Trace]:
    """Chunks of consecutive steps, each closed once it holds ``chunk_ops`` ops or more."""
    _, step_index, counts = np.unique(trace.step, return_inverse=True, return_counts=True)
    chunk_of_step = chunk_boundaries(counts, chunk_ops)
    if len(trace) == 0 or chunk_of_step[-1] == 0:
        return [trace]
    chunk = chunk_of_step[step_index.reshape(-1)]
    order = np.argsort(chunk, kind="stable")
    ends = np.cumsum(np.bincount(chunk))
    names = [n for n in Trace.__dataclass_fields__ if n != "nodes"]
    return [
        Trace(**{n: getattr(trace, n)[order[a:b]] for n in names}, nodes=trace.nodes)
        for a, b in zip(np.concatenate([[0], ends[:-1]]), ends, strict=True)
    ]


def chunk_boundaries(counts: Sequence[int] | IntArray, chunk_ops: int = CHUNK_OPS) -> IntArray:
    """Chunk index of each unit (a step, a group of row groups) holding ``counts`` ops, in order:
    a chunk is closed once it holds ``chunk_ops`` ops or more."""
    chunk = np.empty(len(counts), dtype=np.int64)
    current = filled = 0
    for i, count in enumerate(counts):
        if filled >= chunk_ops:
            current, filled = current + 1, 0
        chunk[i] = current
        filled += int(count)
    return chunk


@dataclass(frozen=True)
class _Context:
    """What every chunk's pass needs; small enough to send to worker processes."""

    meta: JobMeta
    layout: Layout
    model: DependencyModel
    chunks: Chunks
    store: WorkStore


@dataclass(frozen=True)
class _Recorded:
    n_ops: int
    steps: IntArray
    recorded: FloatArray
    replayed: FloatArray
    work_sum: FloatArray  # (K,): per template op, over the chunk's steps and DP ranks
    fb_sums: FloatArray  # (3, pp): see forward_backward_sums


def analyze_chunks(chunks: Chunks, meta: JobMeta, store: WorkStore, map_chunks: MapChunks) -> Analysis:
    """Analyse a trace given as chunks of steps (see the module docstring)."""
    first = chunks[0]
    validate(first, meta)
    ops = build_op_tensor(first, meta)
    # CP ranks also synchronise gradients, so the DP stream exists even at DP = 1.
    model = build_dependency_model(ops, meta.pp, meta.vpp, use_dp=meta.dp * meta.cp > 1)
    ctx = _Context(meta, ops.layout, model, chunks, store)
    rest = range(1, len(chunks))
    records = [_record_ops(ctx, 0, first, ops), *map_chunks(partial(_record, ctx), rest)]
    # Every step names every rank: the first step's machines are the job's.
    nodes = dict(first.nodes or {})
    del first, ops

    ideal = _ideal_work(ctx, records, map_chunks)
    every = range(len(chunks))
    times = StepTimes.concatenate(map_chunks(partial(_what_ifs, ctx, ideal), every))
    rep = Replay(
        steps=np.concatenate([r.steps for r in records]),
        recorded=np.concatenate([r.recorded for r in records]),
        replayed=np.concatenate([r.replayed for r in records]),
        ideal=times.ideal,
        ideal_work=ideal,
    )

    def replay_fixed(selections: Sequence[Workers]) -> FloatArray:
        return np.concatenate(map_chunks(partial(_fixed_workers, ctx, ideal, tuple(selections)), every))

    attr = attribute(rep, times, ctx.layout.rank, replay_fixed)
    fb_sums = np.sum([r.fb_sums for r in records], axis=0)
    return Analysis(
        meta=meta,
        n_ops=sum(r.n_ops for r in records),
        rank=ctx.layout.rank,
        replay=rep,
        attribution=attr,
        diagnosis=diagnose(rep, attr, fb_sums, ctx.layout.rank, nodes),
        nodes=nodes,
    )


def _record(ctx: _Context, index: int) -> _Recorded:
    trace = ctx.chunks[index]
    validate(trace, ctx.meta)
    return _record_ops(ctx, index, trace, build_op_tensor(trace, ctx.meta, ctx.layout))


def _record_ops(ctx: _Context, index: int, trace: Trace, ops: OpTensor) -> _Recorded:
    work = recorded_work(ops, ctx.model)
    ctx.store.save(index, work)
    return _Recorded(
        n_ops=len(trace),
        steps=ops.steps,
        recorded=ops.recorded_step_time(),
        replayed=step_times(ctx.model, work[:, :, None, :])[:, 0],
        work_sum=work.sum(axis=(1, 2)),
        fb_sums=forward_backward_sums(ops),
    )


def _ideal_work(ctx: _Context, records: Sequence[_Recorded], map_chunks: MapChunks) -> FloatArray:
    optype = ctx.layout.optype
    cells = sum(len(r.steps) for r in records) * ctx.meta.dp
    work_sum = np.sum([r.work_sum for r in records], axis=0)
    codes = [int(c) for c in np.unique(optype)]
    means = {c: float(work_sum[optype == c].sum() / ((optype == c).sum() * cells)) for c in codes}
    medians = exact_medians(partial(_comm_work, ctx), len(ctx.chunks), map_chunks)
    return ideal_work(optype, means, medians)


def _comm_work(ctx: _Context, index: int) -> dict[int, FloatArray]:
    """A chunk's recorded times of each communication op type, whose ideal is their median."""
    optype = ctx.layout.optype
    work = ctx.store.load(index)
    return {int(c): work[optype == c].ravel() for c in np.unique(optype) if OP_TYPES[c] in COMM_TYPES}


def _what_ifs(ctx: _Context, ideal: FloatArray, index: int) -> StepTimes:
    return step_what_ifs(ctx.layout, ctx.model, ctx.store.load(index), ideal)


def _fixed_workers(ctx: _Context, ideal: FloatArray, selections: Sequence[Workers], index: int) -> FloatArray:
    return fixed_workers_times(ctx.layout, ctx.model, ctx.store.load(index), ideal, selections)
