"""Attribution of a slowdown to op types, DP ranks, PP stages and workers (what-if re-simulation).

``S_g = T_ideal^{-g} / T_ideal``: replay with only group ``g`` left as recorded and everything
else at its ideal time. ``M_W`` and ``M_S`` go the other way: replay as recorded with only the
slowest 3% of workers (or the last stage) made ideal, and report the share of ``T - T_ideal``
that disappears. Pure: no I/O, no clock.

Per DP rank and per worker, a naive what-if costs one full replay per DP rank, each as large as the
trace: quadratic in DP. But in such a scenario every other DP rank runs with ideal times, so they
all follow one identical timeline, and DP ranks only meet in DP collectives, which take the
latest launch over ranks. One recorded lane plus one ideal lane therefore replays the scenario
exactly, and all DP ranks' scenarios run side by side in one pass of size 2 x (trace / DP) x DP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heteroscale.stragglers import trace as t
from heteroscale.stragglers.dependency import DependencyModel
from heteroscale.stragglers.op_tensor import Cube, OpTensor
from heteroscale.stragglers.replay import FloatArray, Replay, step_times
from heteroscale.stragglers.trace import OP_TYPES

WORKER_SHARE = 0.03  # M_W looks at the slowest 3% of workers (at least one)
_PP_COMM_GROUP = {
    t.FORWARD_SEND: "forward-pp-comm",
    t.FORWARD_RECV: "forward-pp-comm",
    t.BACKWARD_SEND: "backward-pp-comm",
    t.BACKWARD_RECV: "backward-pp-comm",
}


@dataclass(frozen=True)
class Attribution:
    """Slowdowns per group; ``*_step`` arrays are per step (rows follow ``Replay.steps``)."""

    by_optype: dict[str, float]
    by_optype_step: dict[str, FloatArray]
    by_dp_rank: FloatArray  # (dp,)
    by_dp_rank_step: FloatArray  # (steps, dp)
    by_stage: FloatArray  # (pp,)
    by_stage_step: FloatArray  # (steps, pp)
    by_worker: FloatArray  # (dp, pp)
    slowest_workers: tuple[tuple[int, int], ...]  # (dp_rank, stage), slowest first
    M_W: float
    M_S: float


def optype_group(code: int) -> str:
    """Send and recv of one direction are attributed together, as in the paper."""
    name = OP_TYPES[code]
    return _PP_COMM_GROUP.get(name, name)


def attribute(ops: OpTensor, model: DependencyModel, rep: Replay) -> Attribution:
    dp, pp = ops.rank.shape
    rec = rep.work
    ideal = np.broadcast_to(rep.ideal_work[:, None, None], rec.shape)
    mean_ideal = rep.ideal.mean()

    def keep_recorded(keep: npt.NDArray[np.bool_]) -> FloatArray:
        """Step times (steps,) of a full replay where ``keep`` (K, dp) marks recorded ops."""
        work = np.where(keep[:, None, :], rec, ideal)
        return step_times(model, work[:, :, None, :])[:, 0]

    groups = np.array([optype_group(int(c)) for c in ops.optype])
    by_optype_times = {
        name: keep_recorded(np.repeat((groups == name)[:, None], dp, axis=1)) for name in sorted(set(groups.tolist()))
    }
    by_stage_times = np.stack(
        [keep_recorded(np.repeat((ops.stage == s)[:, None], dp, axis=1)) for s in range(pp)], axis=1
    )
    by_dp_times = _one_dp_rank_recorded(model, rec, ideal, np.ones(ops.n_ops, dtype=bool))
    by_worker = np.stack(
        [_one_dp_rank_recorded(model, rec, ideal, ops.stage == s).mean(axis=0) / mean_ideal for s in range(pp)],
        axis=1,
    )

    n_slowest = max(1, math.ceil(WORKER_SHARE * dp * pp))
    # Ties go to the lower global rank so the choice is reproducible.
    order = sorted(np.ndindex(dp, pp), key=lambda w: (-by_worker[w], ops.rank[w]))
    slowest = tuple((int(d), int(s)) for d, s in order[:n_slowest])
    keep = np.ones((ops.n_ops, dp), dtype=bool)
    for d, s in slowest:
        keep[ops.stage == s, d] = False
    m_w = _explained(rep, keep_recorded(keep))
    m_s = _explained(rep, keep_recorded(np.repeat((ops.stage != pp - 1)[:, None], dp, axis=1)))

    return Attribution(
        by_optype={name: float(v.mean() / mean_ideal) for name, v in by_optype_times.items()},
        by_optype_step={name: v / rep.ideal for name, v in by_optype_times.items()},
        by_dp_rank=by_dp_times.mean(axis=0) / mean_ideal,
        by_dp_rank_step=by_dp_times / rep.ideal[:, None],
        by_stage=by_stage_times.mean(axis=0) / mean_ideal,
        by_stage_step=by_stage_times / rep.ideal[:, None],
        by_worker=by_worker,
        slowest_workers=slowest,
        M_W=m_w,
        M_S=m_s if pp > 1 else 0.0,
    )


def _one_dp_rank_recorded(
    model: DependencyModel, rec: Cube, ideal: Cube, recorded_ops: npt.NDArray[np.bool_]
) -> FloatArray:
    """Step times (steps, dp): scenario d keeps DP rank d's ``recorded_ops`` as recorded, all else ideal."""
    lane = np.where(recorded_ops[:, None, None], rec, ideal)
    work = lane[..., None] if rec.shape[2] == 1 else np.stack([lane, ideal], axis=-1)
    return step_times(model, work)


def _explained(rep: Replay, fixed: FloatArray) -> float:
    """Share of T - T_ideal that disappears when the chosen ops are made ideal."""
    total = rep.replayed.mean() - rep.ideal.mean()
    if total <= 1e-12 * rep.replayed.mean():
        return 0.0
    return float((rep.replayed.mean() - fixed.mean()) / total)
