"""Replay of a trace on its dependency model: recorded (T) and straggler-free (T_ideal) timelines.

Owns the op times fed to the simulator (compute: duration; communication: transfer time = own end
minus the latest start among its peers), the ideal times (compute: mean of its type; communication:
median transfer time of its type), the simulator itself and the job-level figures S, waste and the
replay error. Pure: no I/O, no clock.

The simulator walks the dependency model once in topological order and carries a whole tensor of
timelines at a time, shape ``(steps, G, L)``: ``L`` lanes are the DP ranks that DP collectives
synchronise, ``G`` independent what-if scenarios. Steps never interact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heteroscale.stragglers.dependency import DependencyModel
from heteroscale.stragglers.op_tensor import Cube, OpTensor
from heteroscale.stragglers.trace import COMM_TYPES, OP_TYPES

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


def ideal_work(ops: OpTensor, work: Cube) -> FloatArray:
    """Per template op: mean of its type for compute, median of its type for communication."""
    ideal = np.empty(ops.n_ops)
    for code in np.unique(ops.optype):
        mine = ops.optype == code
        values = work[mine]
        ideal[mine] = np.median(values) if OP_TYPES[code] in COMM_TYPES else values.mean()
    return ideal


def simulate(model: DependencyModel, work: FloatArray) -> FloatArray:
    """End times of every op; ``work`` has shape (K, steps, G, L) and every step starts at 0."""
    end = np.empty_like(work)
    for node in model.nodes:
        if not node.collective:
            k = node.members[0]
            _finish(end, model.deps[k], work[k], out=end[k])
            continue
        launched = None
        for k in node.members:
            mine = _launch(end, model.deps[k], work.shape[1:])
            launched = mine if launched is None else np.maximum(launched, mine)
        assert launched is not None
        if node.dp_sync:
            launched = launched.max(axis=-1, keepdims=True)
        for k in node.members:
            np.add(launched, work[k], out=end[k])
    return end


def _launch(end: FloatArray, deps: npt.NDArray[np.int64], shape: tuple[int, ...]) -> FloatArray:
    if len(deps) == 0:
        return np.zeros(shape)
    launched: FloatArray = end[deps[0]] if len(deps) == 1 else end[deps].max(axis=0)
    return launched


def _finish(end: FloatArray, deps: npt.NDArray[np.int64], work: FloatArray, out: FloatArray) -> None:
    if len(deps) == 0:
        out[...] = work
    else:
        np.add(_launch(end, deps, work.shape), work, out=out)


def step_times(model: DependencyModel, work: FloatArray) -> FloatArray:
    """Simulated step time, shape (steps, G): the last op end over all ops and lanes."""
    result: FloatArray = simulate(model, work).max(axis=(0, 3))
    return result


@dataclass(frozen=True)
class Replay:
    """The three timelines of one trace, per step, and what they say about the job."""

    steps: npt.NDArray[np.int64]
    recorded: FloatArray  # step times as recorded
    replayed: FloatArray  # T per step: replay of the recorded durations
    ideal: FloatArray  # T_ideal per step: every op at its ideal duration
    work: Cube  # recorded op times fed to the simulator, (K, steps, dp)
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


def replay(ops: OpTensor, model: DependencyModel) -> Replay:
    work = recorded_work(ops, model)
    ideal = ideal_work(ops, work)
    shape = (ops.n_ops, len(ops.steps), 1, work.shape[2])
    return Replay(
        steps=ops.steps,
        recorded=ops.recorded_step_time(),
        replayed=step_times(model, work[:, :, None, :])[:, 0],
        ideal=step_times(model, np.broadcast_to(ideal[:, None, None, None], shape).copy())[:, 0],
        work=work,
        ideal_work=ideal,
    )
