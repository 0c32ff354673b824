"""The trace as a dense tensor ``[template op, step, DP rank]`` (the paper's OpDuration tensor).

Every DP rank of every step runs the same ops: one *template op* is one (op type, seq_id, stage)
triple, and the trace fills one cell per (template op, step, DP rank). This module owns that
layout and the check that the trace fills it exactly once. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heteroscale.stragglers.trace import OP_TYPES, IntArray, Ints, JobMeta, Trace, TraceError, describe_row

Cube = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Layout:
    """What every step of a trace shares: its K template ops, in key order, and its workers.

    ``mc``/``gmc`` come from DP rank 0 of the first step, which is where the dependency model is read
    from. Small: it travels to worker processes with every chunk.
    """

    keys: IntArray  # one number per template op: (optype, seq_id, stage)
    max_seq: int  # the key's radix for seq_id
    optype: IntArray
    seq_id: IntArray
    stage: IntArray
    mc: IntArray
    gmc: IntArray
    rank: IntArray  # global rank of each worker, shape (dp, pp)
    first_step: int

    @property
    def n_ops(self) -> int:
        return len(self.optype)


@dataclass(frozen=True)
class OpTensor:
    """Dense per-op timings of some steps: cubes of shape (K, steps, dp) in ``layout``'s op order.

    Times are offset so that each step's earliest op starts at 0.
    """

    layout: Layout
    steps: IntArray
    start: Cube
    end: Cube

    @property
    def n_ops(self) -> int:
        return self.layout.n_ops

    @property
    def duration(self) -> Cube:
        result: Cube = self.end - self.start
        return result

    def template_start(self) -> npt.NDArray[np.float64]:
        return self.start[:, 0, 0]

    def template_end(self) -> npt.NDArray[np.float64]:
        return self.end[:, 0, 0]

    def recorded_step_time(self) -> npt.NDArray[np.float64]:
        """Per step: latest end minus earliest start over every op, as recorded."""
        result: npt.NDArray[np.float64] = self.end.max(axis=(0, 2)) - self.start.min(axis=(0, 2))
        return result


def build_op_tensor(trace: Trace, meta: JobMeta, layout: Layout | None = None) -> OpTensor:
    """Lay the rows out densely; raise :class:`TraceError` if a worker-step lacks or repeats an op.

    A trace read in chunks of steps is laid out in the first chunk's ``layout``: the same template
    ops in the same order, the same ``mc``/``gmc`` and the same global ranks.
    """
    max_seq = int(trace.seq_id.max()) + 1 if layout is None else layout.max_seq
    key = (trace.optype.astype(np.int64) * max_seq + trace.seq_id) * meta.pp + trace.stage
    if layout is None:
        op_keys, op_index = _distinct(key)
    else:
        # An op the layout lacks is an error; one it has that a step lacks, an empty cell below.
        op_keys = layout.keys
        op_index = np.minimum(np.searchsorted(op_keys, key), len(op_keys) - 1)
        unknown = (op_keys[op_index] != key) | (trace.seq_id >= max_seq)
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise TraceError(
                f"trace records an op that step {layout.first_step} does not ({describe_row(trace, row)}); "
                f"every step must run the same ops"
            )
    steps, step_index = _distinct(trace.step)
    n_ops, n_steps, dp = len(op_keys), len(steps), meta.dp
    cell = (op_index * n_steps + step_index) * dp + trace.dp_rank
    counts = np.bincount(cell, minlength=n_ops * n_steps * dp)
    if (counts > 1).any():
        dup = int(np.flatnonzero(counts[cell] > 1)[0])
        raise TraceError(f"trace records an op twice ({describe_row(trace, dup)})")
    if (counts == 0).any():
        empty = int(np.flatnonzero(counts == 0)[0])
        k, rest = divmod(empty, n_steps * dp)
        s, d = divmod(rest, dp)
        code, stage = divmod(int(op_keys[k]), meta.pp)
        optype, seq = divmod(code, max_seq)
        raise TraceError(
            f"step {int(steps[s])}, dp_rank {d}, stage {stage} lacks {OP_TYPES[optype]} #{seq} that other "
            f"workers record; every DP rank of every step must run the same ops"
        )
    start: Cube = np.empty((n_ops, n_steps, dp))
    start.reshape(-1)[cell] = trace.start_ts
    start -= start.min(axis=(0, 2), keepdims=True)
    end: Cube = np.empty((n_ops, n_steps, dp))
    end.reshape(-1)[cell] = trace.duration
    end += start

    rank = np.empty((meta.dp, meta.pp), dtype=np.int64)
    rank[trace.dp_rank, trace.stage] = trace.rank
    if layout is not None:
        if not np.array_equal(rank, layout.rank):
            d, s = (int(i[0]) for i in np.nonzero(rank != layout.rank))
            raise TraceError(
                f"dp_rank {d}, stage {s} is global rank {int(rank[d, s])} in step {int(steps[0])} but "
                f"{int(layout.rank[d, s])} in step {layout.first_step}; a worker must keep its rank"
            )
        return OpTensor(layout, steps, start, end)
    template_row = np.empty(n_ops, dtype=np.int64)
    first = (step_index == 0) & (trace.dp_rank == 0)
    template_row[op_index[first]] = np.flatnonzero(first)
    codes, stages = np.divmod(op_keys, meta.pp)
    optypes, seq_ids = np.divmod(codes, max_seq)
    layout = Layout(
        keys=op_keys,
        max_seq=max_seq,
        optype=optypes,
        seq_id=seq_ids,
        stage=stages,
        mc=trace.mc[template_row].astype(np.int64),
        gmc=trace.gmc[template_row].astype(np.int64),
        rank=rank,
        first_step=int(steps[0]),
    )
    return OpTensor(layout, steps, start, end)


def _distinct(values: Ints) -> tuple[IntArray, IntArray]:
    """Sorted distinct values and each value's index among them, like ``np.unique(...,
    return_inverse=True)`` but by counting where the values span a narrow range (steps, op keys)."""
    low, high = int(values.min()), int(values.max())
    if high - low > 4 * len(values):
        distinct, index = np.unique(values, return_inverse=True)
        return distinct.astype(np.int64), index.reshape(-1)
    offset = values.astype(np.int64) - low
    present = np.bincount(offset, minlength=high - low + 1) > 0
    return np.flatnonzero(present) + low, (np.cumsum(present) - 1)[offset]
