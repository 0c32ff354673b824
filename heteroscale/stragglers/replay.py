"""Replay of a trace on its dependency model: recorded (T) and straggler-free (T_ideal) timelines.

Owns the op times fed to the simulator (compute: duration; communication: transfer time = own end
minus the latest start among its peers), the ideal times (compute: mean of its type; communication:
median transfer time of its type), the simulator itself and the job-level figures S, waste and the
replay error. Pure: no I/O, no clock. The ideal times need statistics of the whole trace;
:mod:`heteroscale.stragglers.analysis` gathers them over chunks of steps.

The simulator walks the dependency model once in topological order and carries a whole tensor of
timelines at a time, shape ``(steps, G, L)``: ``L`` lanes are the DP ranks that DP collectives
synchronise, ``G`` independent what-if scenarios. Steps never interact.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from heteroscale.stragglers.dependency import DependencyModel
from heteroscale.stragglers.op_tensor import Cube, OpTensor
from heteroscale.stragglers.trace import COMM_TYPES, OP_TYPES, IntArray

FloatArray = npt.NDArray[np.float64]

# A transfer that would end more than 10 ms before its last peer started is a clock artefact; the
# artifact zeroes those and keeps smaller negatives.
_CLOCK_EPS = 1e-2
REPLAY_ERROR_LIMIT = 0.05


def recorded_work(ops: OpTensor, model: DependencyModel) -> Cube:
    """Per op: its duration, or for a collective member its transfer time (blocking removed)."""
    work = ops.duration.copy()
    for node in model.nodes:
        if not node.collective:
            continue
        members = list(node.members)
        launched = ops.start[members].max(axis=0)
        if node.dp_sync:
            launched = launched.max(axis=-1, keepdims=True)
        transfer = ops.end[members] - launched
        transfer[transfer <= -_CLOCK_EPS] = 0.0
        work[members] = transfer
    return work


def ideal_work(optype: IntArray, means: Mapping[int, float], medians: Mapping[int, float]) -> FloatArray:
    """Per template op: the mean of its type for compute, the median of its type for communication.

    ``means`` and ``medians`` map op-type codes to the mean and the median of the recorded work of
    every op of that type over the whole trace (all template ops of the type, steps and DP ranks).
    """
    ideal = np.empty(len(optype))
    for code in np.unique(optype):
        mine = optype == code
        ideal[mine] = medians[int(code)] if OP_TYPES[code] in COMM_TYPES else means[int(code)]
    return ideal


class Work(Protocol):
    """Op times for the simulator: ``work[k]`` is op k's time in every timeline, shaped (steps, G, L)
    or broadcastable to it. A plain array of shape (K, steps, G, L) is one; what-if scenarios make
    theirs one op at a time rather than hold G copies of the trace."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, k: int, /) -> FloatArray: ...


def simulate(model: DependencyModel, work: Work) -> FloatArray:
    """End times of every op, shape (K, steps, G, L); every step starts at 0."""
    end = np.empty(work.shape)
    launched = np.empty(work.shape[1:])
    for node in model.nodes:
        if not node.collective:
            k = node.members[0]
            _latest(end, model.deps[k], out=end[k])
            end[k] += work[k]
            continue
        for i, k in enumerate(node.members):
            # A member's own end slot is free until the transfer: it holds the member's launch.
            _latest(end, model.deps[k], out=launched if i == 0 else end[k])
            if i:
                np.maximum(launched, end[k], out=launched)
        start = launched.max(axis=-1, keepdims=True) if node.dp_sync else launched
        for k in node.members:
            np.add(start, work[k], out=end[k])
    return end


def _latest(end: FloatArray, deps: npt.NDArray[np.int64], out: FloatArray) -> None:
    """The latest end among ``deps`` (0 without any): when an op may launch."""
    if len(deps) == 0:
        out.fill(0.0)
        return
    first, *rest = deps.tolist()
    np.copyto(out, end[first])
    for d in rest:
        np.maximum(out, end[d], out=out)


def step_times(model: DependencyModel, work: Work, nonnegative: npt.NDArray[np.bool_] | None = None) -> FloatArray:
    """Simulated step time, shape (steps, G): the last op end over all ops and lanes.

    Where the caller knows which ops take no negative time in any timeline (``nonnegative``, per
    op), only the ops that may end last are compared: the same maximum, from a fraction of the ends.
    """
    end = simulate(model, work)
    if nonnegative is not None:
        end = end[model.may_end_last(nonnegative)]
    result: FloatArray = end.max(axis=(0, 3))
    return result


@dataclass(frozen=True)
class Replay:
    """The three timelines of one trace, per step, and what they say about the job."""

    steps: npt.NDArray[np.int64]
    recorded: FloatArray  # step times as recorded
    replayed: FloatArray  # T per step: replay of the recorded durations
    ideal: FloatArray  # T_ideal per step: every op at its ideal duration
    ideal_work: FloatArray  # (K,)

    @property
    def slowdown(self) -> float:
        return float(self.replayed.mean() / self.ideal.mean())

    @property
    def waste(self) -> float:
        return 1.0 - 1.0 / self.slowdown

    @property
    def replay_error(self) -> float:
        """How far the replay misses the recorded step time: untraced CPU work shows up here."""
        return float(self.recorded.mean() / self.replayed.mean() - 1.0)

    @property
    def replay_trusted(self) -> bool:
        return abs(self.replay_error) < REPLAY_ERROR_LIMIT

    @property
    def step_slowdown(self) -> FloatArray:
        ratio: FloatArray = self.replayed / self.ideal
        return ratio
