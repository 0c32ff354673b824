"""Malformed traces and metadata get an error that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

from heteroscale.stragglers.analysis import analyze
from heteroscale.stragglers.trace import JobMeta, Trace, TraceError
from tests.stragglers.conftest import Row, make_trace

GOOD: list[Row] = [
    (d, 0, 0, name, start, 1.0, 0)
    for d in (0, 1)
    for name, start in (("forward-compute", 0.0), ("backward-compute", 1.0), ("optimizer", 2.0))
]
META = JobMeta(name="unit", dp=2, pp=1)


def columns(rows: list[Row]) -> dict[str, np.ndarray]:
    trace = make_trace(rows, pp=1)
    names = ["dp_rank", "stage", "rank", "step", "start_ts", "duration", "seq_id", "mc", "gmc", "mb_id"]
    result = {name: getattr(trace, name) for name in names}
    result["optype"] = np.array([r[3] for r in rows])
    return result


def test_good_trace_passes() -> None:
    assert analyze(make_trace(GOOD, pp=1), META).replay.slowdown == pytest.approx(1.0)


def test_empty_trace() -> None:
    empty = Trace.from_columns({name: np.array([], dtype=np.int64) for name in columns(GOOD)})
    with pytest.raises(TraceError, match="trace is empty"):
        analyze(empty, META)


def test_missing_column() -> None:
    cols = columns(GOOD)
    del cols["mb_id"], cols["seq_id"]
    with pytest.raises(TraceError, match=r"missing column.*seq_id, mb_id"):
        Trace.from_columns(cols)


def test_unknown_op_type() -> None:
    rows = [*GOOD[:-1], (1, 0, 0, "data-load", 2.0, 1.0, 0)]
    with pytest.raises(TraceError, match=r"unknown op type.*data-load"):
        make_trace(rows, pp=1)


def test_negative_duration() -> None:
    rows = [*GOOD[:-1], (1, 0, 0, "optimizer", 2.0, -0.5, 0)]
    with pytest.raises(TraceError, match=r"negative duration.*step 0, dp_rank 1, stage 0, optimizer"):
        analyze(make_trace(rows, pp=1), META)


def test_sizes_that_do_not_match_the_metadata() -> None:
    with pytest.raises(TraceError, match=r"dp_rank values .* do not match metadata dp_size=4"):
        analyze(make_trace(GOOD, pp=1), JobMeta(name="unit", dp=4, pp=1))
    with pytest.raises(TraceError, match=r"stage values .* do not match metadata pp_size=2"):
        analyze(make_trace(GOOD, pp=1), JobMeta(name="unit", dp=2, pp=2))


def test_worker_lacking_an_op() -> None:
    with pytest.raises(TraceError, match="step 0, dp_rank 1, stage 0 lacks optimizer #0"):
        analyze(make_trace(GOOD[:-1], pp=1), META)


def test_duplicated_op() -> None:
    with pytest.raises(TraceError, match="records an op twice"):
        analyze(make_trace([*GOOD, GOOD[-1]], pp=1), META)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"pp_size": 1}, "missing dp_size"),
        ({"dp_size": 0, "pp_size": 1}, "dp_size must be a positive integer"),
        ({"dp_size": 2, "pp_size": 2, "tp_size": 2, "world_size": 4}, r"world_size 4 != dp·pp·tp·cp"),
    ],
)
def test_bad_metadata(raw: dict, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        JobMeta.from_mapping(raw)
