"""Root-cause patterns of a straggling job, with the paper's thresholds, and the suspects they name.

* straggling job: S ≥ 1.1;
* worker problem: M_W > 0.5 (the slowest 3% of workers, ranked as the paper does, explain most
  of the slowdown);
* stage imbalance: M_S ≥ 0.5 (the last pipeline stage explains most of it);
* sequence-length imbalance: forward and backward compute durations of microbatches correlate
  ≥ 0.9 (a long sequence is slow both ways).

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from heteroscale.stragglers.attribution import Attribution
from heteroscale.stragglers.op_tensor import OpTensor
from heteroscale.stragglers.replay import FloatArray, Replay
from heteroscale.stragglers.trace import BACKWARD_COMPUTE, FORWARD_COMPUTE, OP_CODE, IntArray

STRAGGLING_SLOWDOWN = 1.1
WORKER_M_W = 0.5
LAST_STAGE_M_S = 0.5
SEQUENCE_CORRELATION = 0.9


class Cause(StrEnum):
    WORKER = "worker"
    LAST_STAGE = "last_stage"
    SEQUENCE_IMBALANCE = "sequence_imbalance"


@dataclass(frozen=True)
class Diagnosis:
    straggling: bool
    causes: tuple[Cause, ...]
    fb_correlation: float  # the job's forward/backward correlation (median over stages)
    fb_correlation_by_stage: FloatArray
    suspect_workers: tuple[tuple[int, int], ...]  # (dp_rank, stage)
    suspect_ranks: tuple[int, ...]
    suspect_nodes: tuple[str, ...]


def forward_backward_sums(ops: OpTensor) -> FloatArray:
    """Per stage, over the steps of ``ops``: sums of fwd·bwd, fwd² and bwd², shape (3, pp), where fwd
    and bwd are the forward and backward durations of the same microbatch.

    Each worker-step's mean is removed first: a slow worker or a heavy stage shifts all of its
    microbatches together and would otherwise look like correlated microbatches. What is left is
    the microbatch-to-microbatch variation that sequence lengths cause. Sums of steps add up, so a
    trace read in chunks of steps gives the same correlation.
    """
    layout = ops.layout
    pp = layout.rank.shape[1]
    duration = ops.duration
    sums = np.zeros((3, pp))
    for stage in range(pp):
        pair = []
        for code in (OP_CODE[FORWARD_COMPUTE], OP_CODE[BACKWARD_COMPUTE]):
            mine = np.flatnonzero((layout.stage == stage) & (layout.optype == code))
            mine = mine[np.lexsort((layout.seq_id[mine], layout.mc[mine]))]
            values = duration[mine]
            pair.append(values - values.mean(axis=0, keepdims=True))
        fwd, bwd = pair
        if fwd.shape != bwd.shape or fwd.shape[0] < 2:
            continue
        sums[:, stage] = (fwd * bwd).sum(), (fwd**2).sum(), (bwd**2).sum()
    return sums


def forward_backward_correlation(sums: FloatArray) -> FloatArray:
    """Per stage: Pearson correlation of forward vs backward duration of the same microbatch, from
    the sums of :func:`forward_backward_sums` over all steps (0 where a stage has no variation)."""
    spread = np.sqrt(sums[1] * sums[2])
    result: FloatArray = np.divide(sums[0], spread, out=np.zeros_like(spread), where=spread > 0)
    return result


def diagnose(rep: Replay, attr: Attribution, fb_sums: FloatArray, rank: IntArray, nodes: dict[int, str]) -> Diagnosis:
    by_stage = forward_backward_correlation(fb_sums)
    # Sequence lengths hit every stage, since every stage runs the same microbatches; the median
    # keeps one stage's local noise from deciding.
    correlation = float(np.median(by_stage))
    straggling = rep.slowdown >= STRAGGLING_SLOWDOWN
    causes: list[Cause] = []
    if straggling:
        if attr.M_W > WORKER_M_W:
            causes.append(Cause.WORKER)
        if attr.M_S >= LAST_STAGE_M_S:
            causes.append(Cause.LAST_STAGE)
        if correlation >= SEQUENCE_CORRELATION:
            causes.append(Cause.SEQUENCE_IMBALANCE)
    suspects = attr.slowest_workers if Cause.WORKER in causes else ()
    ranks = tuple(int(rank[w]) for w in suspects)
    node_names = tuple(dict.fromkeys(nodes[r] for r in ranks if r in nodes))
    return Diagnosis(
        straggling=straggling,
        causes=tuple(causes),
        fb_correlation=correlation,
        fb_correlation_by_stage=by_stage,
        suspect_workers=suspects,
        suspect_ranks=ranks,
        suspect_nodes=node_names,
    )
