"""The trace as a dense tensor ``[template op, step, DP rank]`` (the paper's OpDuration tensor).

Every DP rank of every step runs the same ops: one *template op* is one (op type, seq_id, stage)
triple, and the trace fills one cell per (template op, step, DP rank). This module owns that
layout and the check that the trace fills it exactly once. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heteroscale.stragglers.trace import OP_TYPES, IntArray, JobMeta, Trace, TraceError, describe_row

Cube = npt.NDArray[np.float64]


@dataclass(frozen=True)
class OpTensor:
    """Dense per-op timings. Per-template-op fields have length K; cubes have shape (K, steps, dp).

    Times are offset so that each step's earliest op starts at 0. ``mc``/``gmc`` and the template
    times come from DP rank 0 of the first step, which is where the dependency model is read from.
    """

    optype: IntArray
    seq_id: IntArray
    stage: IntArray
    mc: IntArray
    gmc: IntArray
    steps: IntArray
    start: Cube
    end: Cube
    rank: IntArray  # global rank of each worker, shape (dp, pp)

    @property
    def n_ops(self) -> int:
        return len(self.optype)

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


def build_op_tensor(trace: Trace, meta: JobMeta) -> OpTensor:
    """Lay the rows out densely; raise :class:`TraceError` if a worker-step lacks or repeats an op."""
    max_seq = int(trace.seq_id.max()) + 1
    key = (trace.optype * max_seq + trace.seq_id) * meta.pp + trace.stage
    op_keys, op_index = np.unique(key, return_inverse=True)
    steps, step_index = np.unique(trace.step, return_inverse=True)
    n_ops, n_steps, dp = len(op_keys), len(steps), meta.dp
    cell = (op_index.reshape(-1) * n_steps + step_index.reshape(-1)) * dp + trace.dp_rank
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
    flat_start = np.empty(n_ops * n_steps * dp)
    flat_start[cell] = trace.start_ts
    flat_duration = np.empty(n_ops * n_steps * dp)
    flat_duration[cell] = trace.duration
    start = flat_start.reshape(n_ops, n_steps, dp)
    start = start - start.min(axis=(0, 2), keepdims=True)
    end = start + flat_duration.reshape(n_ops, n_steps, dp)

    template_row = np.empty(n_ops, dtype=np.int64)
    first = (step_index.reshape(-1) == 0) & (trace.dp_rank == 0)
    template_row[op_index.reshape(-1)[first]] = np.flatnonzero(first)
    rank = np.empty((meta.dp, meta.pp), dtype=np.int64)
    rank[trace.dp_rank, trace.stage] = trace.rank
    code, stage = np.divmod(op_keys, meta.pp)
    optype, seq_id = np.divmod(code, max_seq)
    return OpTensor(
        optype=optype,
        seq_id=seq_id,
        stage=stage,
        mc=trace.mc[template_row],
        gmc=trace.gmc[template_row],
        steps=steps,
        start=start,
        end=end,
        rank=rank,
    )
