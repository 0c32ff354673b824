"""Shared fixtures: the bundled real traces and a builder for small hand-made traces."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from heteroscale.stragglers.analysis import Analysis, analyze
from heteroscale.stragglers.trace import JobMeta, Trace
from heteroscale.stragglers.trace_io import load_meta, load_trace

DATA = Path(str(resources.files("heteroscale") / "data" / "stragglers"))


@cache
def real_analysis(name: str) -> Analysis:
    meta = load_meta(DATA / f"meta-{name}.yaml")
    return analyze(load_trace(DATA / f"trace-{name}.parquet", meta), meta)


Row = tuple[int, int, int, str, float, float, int]  # dp_rank, stage, step, optype, start, duration, seq


def make_trace(rows: list[Row], pp: int) -> Trace:
    columns: dict[str, Any] = {
        "dp_rank": np.array([r[0] for r in rows]),
        "stage": np.array([r[1] for r in rows]),
        "step": np.array([r[2] for r in rows]),
        "optype": np.array([r[3] for r in rows]),
        "start_ts": np.array([r[4] for r in rows], dtype=float),
        "duration": np.array([r[5] for r in rows], dtype=float),
        "seq_id": np.array([r[6] for r in rows]),
    }
    columns["rank"] = columns["stage"] * (max(r[0] for r in rows) + 1) + columns["dp_rank"]
    compute = np.isin(columns["optype"], ["forward-compute", "backward-compute"])
    columns["mc"] = np.where(compute, 0, -1)
    columns["gmc"] = np.where(compute, columns["stage"], -1)
    columns["mb_id"] = np.where(compute, columns["seq_id"], -1)
    return Trace.from_columns(columns)


@pytest.fixture
def trace_builder() -> Callable[[list[Row], int], Trace]:
    return make_trace


def one_stage_job(dp: int = 1) -> JobMeta:
    return JobMeta(name="unit", dp=dp, pp=1)
