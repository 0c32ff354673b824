"""Each dependency rule on small hand-built traces, checked through the replay it drives."""

from __future__ import annotations

import numpy as np
import pytest

from heteroscale.stragglers.analysis import analyze
from heteroscale.stragglers.dependency import DependencyModel, build_dependency_model
from heteroscale.stragglers.op_tensor import OpTensor, build_op_tensor
from heteroscale.stragglers.replay import Replay, recorded_work, step_times
from heteroscale.stragglers.trace import OP_CODE, JobMeta
from tests.stragglers.conftest import Row, make_trace


def build(rows: list[Row], dp: int, pp: int) -> tuple[OpTensor, DependencyModel]:
    meta = JobMeta(name="unit", dp=dp, pp=pp)
    ops = build_op_tensor(make_trace(rows, pp), meta)
    return ops, build_dependency_model(ops, pp, 1, use_dp=dp > 1)


def replay(rows: list[Row], dp: int, pp: int) -> Replay:
    return analyze(make_trace(rows, pp), JobMeta(name="unit", dp=dp, pp=pp)).replay


def op(ops: OpTensor, optype: str, stage: int = 0, seq: int = 0) -> int:
    layout = ops.layout
    match = (layout.optype == OP_CODE[optype]) & (layout.stage == stage) & (layout.seq_id == seq)
    return int(np.flatnonzero(match)[0])


def deps_of(model: DependencyModel, k: int) -> set[int]:
    return set(model.deps[k].tolist())


# Two pipeline stages, one microbatch, DP 1. Recorded times are consistent with the model.
PIPELINE: list[Row] = [
    (0, 0, 0, "forward-compute", 0.0, 1.0, 0),
    (0, 0, 0, "forward-send", 1.0, 0.1, 0),
    (0, 0, 0, "backward-recv", 0.0, 3.1, 0),
    (0, 0, 0, "backward-compute", 3.1, 2.0, 0),
    (0, 0, 0, "optimizer", 5.1, 0.1, 0),
    (0, 1, 0, "forward-recv", 0.0, 1.1, 0),
    (0, 1, 0, "forward-compute", 1.1, 1.0, 0),
    (0, 1, 0, "backward-compute", 2.1, 0.9, 0),
    (0, 1, 0, "backward-send", 3.0, 0.1, 0),
    (0, 1, 0, "optimizer", 3.1, 0.1, 0),
]


def test_replay_of_a_consistent_trace_reproduces_it() -> None:
    rep = replay(PIPELINE, dp=1, pp=2)
    assert rep.replayed == pytest.approx([5.2])
    assert rep.replay_error == pytest.approx(0.0, abs=1e-12)


def test_recv_before_compute_before_send() -> None:
    ops, model = build(PIPELINE, dp=1, pp=2)
    assert op(ops, "forward-compute", 0) in deps_of(model, op(ops, "forward-send", 0))
    assert op(ops, "forward-recv", 1) in deps_of(model, op(ops, "forward-compute", 1))
    assert op(ops, "backward-compute", 1) in deps_of(model, op(ops, "backward-send", 1))
    assert op(ops, "backward-recv", 0) in deps_of(model, op(ops, "backward-compute", 0))
    # A slower forward on stage 0 delays everything downstream by the same amount.
    work = recorded_work(ops, model)
    work[op(ops, "forward-compute", 0)] += 1.0
    assert step_times(model, work[:, :, None, :])[0, 0] == pytest.approx(6.2)


def test_communication_counts_only_transfer_time() -> None:
    ops, model = build(PIPELINE, dp=1, pp=2)
    work = recorded_work(ops, model)
    # backward-recv waited 3.0 s for its peer; only the 0.1 s after the peer launched is transfer.
    assert work[op(ops, "backward-recv", 0), 0, 0] == pytest.approx(0.1)
    assert work[op(ops, "forward-send", 0), 0, 0] == pytest.approx(0.1)


def test_same_stream_ops_run_in_launch_order_and_gaps_are_replay_error() -> None:
    rows: list[Row] = [
        (0, 0, 0, "forward-compute", 0.0, 1.0, 0),
        (0, 0, 0, "backward-compute", 2.0, 2.0, 0),  # 1 s of untraced work before it
        (0, 0, 0, "optimizer", 4.0, 0.5, 0),
    ]
    ops, model = build(rows, dp=1, pp=1)
    assert deps_of(model, op(ops, "backward-compute")) == {op(ops, "forward-compute")}
    rep = replay(rows, dp=1, pp=1)
    assert rep.replayed == pytest.approx([3.5])
    assert rep.replay_error == pytest.approx(4.5 / 3.5 - 1)
    assert not rep.replay_trusted


def data_parallel_rows(slow_backward: float) -> list[Row]:
    rows: list[Row] = []
    for d, bwd in ((0, 1.0), (1, slow_backward)):
        rows += [
            (d, 0, 0, "params-all-gather", 0.0, 0.5, 0),
            (d, 0, 0, "forward-compute", 0.5, 1.0, 0),
            (d, 0, 0, "backward-compute", 1.5, bwd, 0),
            (d, 0, 0, "grads-reduce-scatter", 1.5 + bwd, slow_backward - bwd + 0.5, 0),
            (d, 0, 0, "optimizer", 1.5 + slow_backward + 0.5, 0.1, 0),
        ]
    return rows


def test_params_all_gather_before_first_forward_and_last_backward_before_reduce_scatter() -> None:
    ops, model = build(data_parallel_rows(2.0), dp=2, pp=1)
    assert op(ops, "params-all-gather") in deps_of(model, op(ops, "forward-compute"))
    assert op(ops, "backward-compute") in deps_of(model, op(ops, "grads-reduce-scatter"))


def test_collective_transfers_only_after_all_members_launched() -> None:
    ops, model = build(data_parallel_rows(2.0), dp=2, pp=1)
    rs = op(ops, "grads-reduce-scatter")
    # DP rank 0 launched at 2.5 and waited for rank 1 (launched 3.5): both transfer 0.5 s.
    assert recorded_work(ops, model)[rs, 0] == pytest.approx([0.5, 0.5])
    rep = replay(data_parallel_rows(2.0), dp=2, pp=1)
    assert rep.replayed == pytest.approx([4.1])
    # Ideal: backward at its mean (1.5 s) on both ranks, so the collective launches at 3.0.
    assert rep.ideal == pytest.approx([3.6])
    assert rep.slowdown == pytest.approx(4.1 / 3.6)


def test_ideal_uses_mean_for_compute_and_median_for_communication() -> None:
    ops, _ = build(data_parallel_rows(4.0), dp=2, pp=1)
    rep = replay(data_parallel_rows(4.0), dp=2, pp=1)
    assert rep.ideal_work[op(ops, "backward-compute")] == pytest.approx(2.5)
    assert rep.ideal_work[op(ops, "grads-reduce-scatter")] == pytest.approx(0.5)


def test_step_time_is_the_latest_end_even_after_a_negative_time() -> None:
    ops, model = build(PIPELINE, dp=1, pp=2)
    work = recorded_work(ops, model)
    # A time may come out slightly negative (clock skew): the op before it then ends last.
    work[op(ops, "optimizer", 0)] = -0.05
    nonnegative = (work >= 0).all(axis=(1, 2))
    assert step_times(model, work[:, :, None, :])[0, 0] == pytest.approx(5.1)
    assert step_times(model, work[:, :, None, :], nonnegative)[0, 0] == pytest.approx(5.1)
    # Only because the backward before that optimizer is compared too.
    assert model.may_end_last(nonnegative)[op(ops, "backward-compute", 0)]
    assert not model.may_end_last(np.ones(ops.n_ops, dtype=bool))[op(ops, "backward-compute", 0)]
