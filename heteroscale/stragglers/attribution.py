"""Attribution of a slowdown to op types, DP ranks, PP stages and workers (what-if re-simulation).

``S_g = T_ideal^{-g} / T_ideal``: replay with only group ``g`` left as recorded and everything
else at its ideal time. ``M_W`` and ``M_S`` go the other way: replay as recorded with only some
workers (or the last stage) made ideal, and report the share of ``T - T_ideal`` that disappears.

Which workers ``M_W`` fixes: the slowest 3% (rounded up) by a worker score. The paper (§5.1) and
its artifact score a worker by ``min(S_dp, S_stage)`` of its DP rank and stage, which needs DP + PP
what-ifs instead of DP x PP; that is ``M_W``, the figure the paper publishes and the root cause
reads. ``M_W_what_if`` scores each worker by its own what-if slowdown ``S_w`` (only that worker
recorded), which this module computes as well. The two differ where a DP rank is slow on more than
one stage: S_dp counts all of them, so the approximation can rank such a rank's worker above a
worker that is slower on its own (SE: M_W 0.025, M_W_what_if 0.030).

Per DP rank and per worker, a naive what-if costs one full replay per DP rank, each as large as the
trace: quadratic in DP. But in such a scenario every other DP rank runs with ideal times, so they
all follow one identical timeline, and DP ranks only meet in DP collectives, which take the
latest launch over ranks. One recorded lane plus one ideal lane therefore replays the scenario
exactly, and all DP ranks' scenarios run side by side in one pass of size 2 x (trace / DP) x DP.

Every scenario is independent per step: :func:`step_what_ifs` and :func:`fixed_workers_times`
replay some steps, :func:`attribute` combines all steps. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from heteroscale.stragglers import trace as t
from heteroscale.stragglers.dependency import DependencyModel
from heteroscale.stragglers.op_tensor import Cube, Layout
from heteroscale.stragglers.replay import FloatArray, Replay, step_times
from heteroscale.stragglers.trace import OP_TYPES, IntArray

WORKER_PERCENT = 3  # M_W fixes the slowest 3% of workers, rounded up (the artifact's RATIO)
_PP_COMM_GROUP = {
    t.FORWARD_SEND: "forward-pp-comm",
    t.FORWARD_RECV: "forward-pp-comm",
    t.BACKWARD_SEND: "backward-pp-comm",
    t.BACKWARD_RECV: "backward-pp-comm",
}

Workers = tuple[tuple[int, int], ...]  # (dp_rank, stage) pairs


@dataclass(frozen=True)
class StepTimes:
    """Simulated step times of each attribution scenario; rows follow the steps replayed."""

    ideal: FloatArray  # (steps,): every op ideal
    by_optype: dict[str, FloatArray]  # (steps,) per op-type group: only that group recorded
    by_stage: FloatArray  # (steps, pp): only that stage recorded
    by_dp_rank: FloatArray  # (steps, dp): only that DP rank recorded
    by_worker: FloatArray  # (steps, dp, pp): only that worker recorded
    last_stage_ideal: FloatArray  # (steps,): all recorded but the last stage

    @staticmethod
    def concatenate(parts: Sequence[StepTimes]) -> StepTimes:
        def cat(name: str) -> FloatArray:
            return np.concatenate([getattr(p, name) for p in parts])

        return StepTimes(
            ideal=cat("ideal"),
            by_optype={g: np.concatenate([p.by_optype[g] for p in parts]) for g in parts[0].by_optype},
            by_stage=cat("by_stage"),
            by_dp_rank=cat("by_dp_rank"),
            by_worker=cat("by_worker"),
            last_stage_ideal=cat("last_stage_ideal"),
        )


@dataclass(frozen=True)
class Attribution:
    """Slowdowns per group; ``*_step`` arrays are per step (rows follow ``Replay.steps``)."""

    by_optype: dict[str, float]
    by_optype_step: dict[str, FloatArray]
    by_dp_rank: FloatArray  # (dp,)
    by_dp_rank_step: FloatArray  # (steps, dp)
    by_stage: FloatArray  # (pp,)
    by_stage_step: FloatArray  # (steps, pp)
    by_worker: FloatArray  # (dp, pp): S_w, only this worker recorded
    worker_score: FloatArray  # (dp, pp): min(S_dp, S_stage), the paper's approximation of S_w
    slowest_workers: Workers  # the top 3% by worker_score, slowest first: what M_W fixes
    M_W: float
    slowest_workers_what_if: Workers  # the top 3% by by_worker: what M_W_what_if fixes
    M_W_what_if: float
    M_S: float


def optype_group(code: int) -> str:
    """Send and recv of one direction are attributed together, as in the paper."""
    name = OP_TYPES[code]
    return _PP_COMM_GROUP.get(name, name)


Mask = npt.NDArray[np.bool_]


class _Scenarios:
    """What-if work (see :class:`~heteroscale.stragglers.replay.Work`), made one op at a time: in
    timeline (g, l) op k keeps its recorded time where ``keep[k, g, l]`` and is ideal elsewhere.

    DP ranks run along the lanes (``dp_along="lanes"``: scenario g is any mix of recorded ops) or
    along the scenarios (``"scenarios"``: scenario g is DP rank g's recorded lane beside ideal ones).
    """

    def __init__(self, rec: Cube, ideal: FloatArray, keep: Mask, dp_along: Literal["lanes", "scenarios"]) -> None:
        self.shape = (rec.shape[0], rec.shape[1], *keep.shape[1:])
        self._rec = rec[:, :, None, :] if dp_along == "lanes" else rec[:, :, :, None]
        self._ideal = ideal[:, None, None, None]
        self._keep = keep
        self._mixed: Mask = np.asarray(keep.any(axis=(1, 2)))

    def __getitem__(self, k: int, /) -> FloatArray:
        if not self._mixed[k]:
            ideal: FloatArray = self._ideal[k]
            return ideal
        mixed: FloatArray = np.where(self._keep[k], self._rec[k], self._ideal[k])
        return mixed


def _nonnegative(rec: Cube, ideal: FloatArray) -> Mask:
    """Ops whose recorded and ideal times are all ≥ 0 (transfer times may be slightly negative)."""
    result: Mask = (rec >= 0).all(axis=(1, 2)) & (ideal >= 0)
    return result


def _keep_recorded(model: DependencyModel, rec: Cube, ideal: FloatArray, keep: Mask, nonnegative: Mask) -> FloatArray:
    """Step times (steps, G): scenario g keeps recorded the ops ``keep[:, g, :]`` (K, G, dp) marks."""
    return step_times(model, _Scenarios(rec, ideal, keep, dp_along="lanes"), nonnegative)


def step_what_ifs(ops: Layout, model: DependencyModel, rec: Cube, ideal: FloatArray) -> StepTimes:
    """All scenarios but M_W for the steps of ``rec`` (K, steps, dp) laid out in ``ops``."""
    dp = rec.shape[2]
    pp = ops.rank.shape[1]
    groups = np.array([optype_group(int(c)) for c in ops.optype])
    names = sorted(set(groups.tolist()))
    masks = [groups == name for name in names] + [ops.stage == s for s in range(pp)] + [ops.stage != pp - 1]
    keep = np.repeat(np.stack(masks, axis=1)[:, :, None], dp, axis=2)
    nonnegative = _nonnegative(rec, ideal)
    times = _keep_recorded(model, rec, ideal, keep, nonnegative)
    by_worker = np.stack(
        [_one_dp_rank_recorded(model, rec, ideal, ops.stage == s, nonnegative) for s in range(pp)], axis=2
    )
    ideal_only = np.zeros((ops.n_ops, 1, 1), dtype=bool)
    return StepTimes(
        ideal=step_times(model, _Scenarios(rec[:, :, :1], ideal, ideal_only, dp_along="lanes"), ideal >= 0)[:, 0],
        by_optype={name: times[:, i] for i, name in enumerate(names)},
        by_stage=times[:, len(names) : len(names) + pp],
        by_dp_rank=_one_dp_rank_recorded(model, rec, ideal, np.ones(ops.n_ops, dtype=bool), nonnegative),
        by_worker=by_worker,
        last_stage_ideal=times[:, -1],
    )


def fixed_workers_times(
    ops: Layout, model: DependencyModel, rec: Cube, ideal: FloatArray, selections: Sequence[Workers]
) -> FloatArray:
    """Step times (steps, len(selections)): all recorded but selection g's workers, which are ideal."""
    keep = np.ones((ops.n_ops, len(selections), rec.shape[2]), dtype=bool)
    for g, workers in enumerate(selections):
        for d, s in workers:
            keep[ops.stage == s, g, d] = False
    return _keep_recorded(model, rec, ideal, keep, _nonnegative(rec, ideal))


def _one_dp_rank_recorded(
    model: DependencyModel, rec: Cube, ideal: FloatArray, recorded_ops: Mask, nonnegative: Mask
) -> FloatArray:
    """Step times (steps, dp): scenario d keeps DP rank d's ``recorded_ops`` as recorded, all else ideal.

    Lane 0 is DP rank d; lane 1 stands for every other DP rank (absent at DP = 1).
    """
    dp = rec.shape[2]
    keep = np.zeros((len(recorded_ops), dp, 1 if dp == 1 else 2), dtype=bool)
    keep[recorded_ops, :, 0] = True
    return step_times(model, _Scenarios(rec, ideal, keep, dp_along="scenarios"), nonnegative)


def slowest(scores: FloatArray, rank: IntArray) -> Workers:
    """The top WORKER_PERCENT % of workers by score, slowest first; ties go to the lower global rank
    (as in the artifact's ``compute_mw.py``, so the published M_W reproduces)."""
    dp, pp = scores.shape
    count = -(-dp * pp * WORKER_PERCENT // 100)
    order = sorted(np.ndindex(dp, pp), key=lambda w: (-scores[w], rank[w]))
    return tuple((int(d), int(s)) for d, s in order[:count])


def attribute(
    rep: Replay,
    times: StepTimes,
    rank: IntArray,
    replay_fixed: Callable[[Sequence[Workers]], FloatArray],
) -> Attribution:
    """Combine every step's scenario times; ``replay_fixed`` replays all steps with the given worker
    selections made ideal (see :func:`fixed_workers_times`), for M_W."""
    mean_ideal = rep.ideal.mean()
    by_dp_rank = times.by_dp_rank.mean(axis=0) / mean_ideal
    by_stage = times.by_stage.mean(axis=0) / mean_ideal
    by_worker = times.by_worker.mean(axis=0) / mean_ideal
    worker_score = np.minimum(by_dp_rank[:, None], by_stage[None, :])
    paper, what_if = slowest(worker_score, rank), slowest(by_worker, rank)
    fixed = replay_fixed([paper, what_if])
    pp = rank.shape[1]
    return Attribution(
        by_optype={name: float(v.mean() / mean_ideal) for name, v in times.by_optype.items()},
        by_optype_step={name: v / rep.ideal for name, v in times.by_optype.items()},
        by_dp_rank=by_dp_rank,
        by_dp_rank_step=times.by_dp_rank / rep.ideal[:, None],
        by_stage=by_stage,
        by_stage_step=times.by_stage / rep.ideal[:, None],
        by_worker=by_worker,
        worker_score=worker_score,
        slowest_workers=paper,
        M_W=_explained(rep, fixed[:, 0]),
        slowest_workers_what_if=what_if,
        M_W_what_if=_explained(rep, fixed[:, 1]),
        M_S=_explained(rep, times.last_stage_ideal) if pp > 1 else 0.0,
    )


def _explained(rep: Replay, fixed: FloatArray) -> float:
    """Share of T - T_ideal that disappears when the chosen ops are made ideal."""
    total = rep.replayed.mean() - rep.ideal.mean()
    if total <= 1e-12 * rep.replayed.mean():
        return 0.0
    return float((rep.replayed.mean() - fixed.mean()) / total)
