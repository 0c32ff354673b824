"""The whole what-if analysis of one trace: validation, replay, attribution and diagnosis.

Pure composition of the core modules; the CLI, the exporter and the tests all start here.
"""

from __future__ import annotations

from dataclasses import dataclass

from heteroscale.stragglers.attribution import Attribution, attribute
from heteroscale.stragglers.dependency import build_dependency_model
from heteroscale.stragglers.op_tensor import OpTensor, build_op_tensor
from heteroscale.stragglers.replay import Replay, replay
from heteroscale.stragglers.root_cause import Diagnosis, diagnose
from heteroscale.stragglers.trace import JobMeta, Trace, validate


@dataclass(frozen=True)
class Analysis:
    meta: JobMeta
    n_ops: int
    ops: OpTensor
    replay: Replay
    attribution: Attribution
    diagnosis: Diagnosis
    nodes: dict[int, str]


def analyze(trace: Trace, meta: JobMeta) -> Analysis:
    """Raise :class:`~heteroscale.stragglers.trace.TraceError` when the trace cannot be analysed."""
    validate(trace, meta)
    ops = build_op_tensor(trace, meta)
    # CP ranks also synchronise gradients, so the DP stream exists even at DP = 1.
    model = build_dependency_model(ops, meta.pp, meta.vpp, use_dp=meta.dp * meta.cp > 1)
    rep = replay(ops, model)
    attr = attribute(ops, model, rep)
    nodes = dict(trace.nodes or {})
    return Analysis(
        meta=meta,
        n_ops=len(trace),
        ops=ops,
        replay=rep,
        attribution=attr,
        diagnosis=diagnose(ops, rep, attr, nodes),
        nodes=nodes,
    )
