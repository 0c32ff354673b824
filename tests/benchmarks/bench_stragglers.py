"""Benchmark: full what-if analysis (replay, attribution by op type, DP rank, stage and worker,
M_W, M_S, diagnosis) of a ~1,000,000-op trace.

The trace is the real ST trace (DP 2 x PP 4, 32 steps) with its DP ranks copied 148 times:
DP 296 x PP 4 x 32 steps = 1,004,032 ops. Copies keep every collective consistent and leave the
slowdown unchanged, which the benchmark checks. Run: ``python -m tests.benchmarks.bench_stragglers``
or ``pytest tests/benchmarks/bench_stragglers.py``.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from heteroscale.stragglers.analysis import analyze
from heteroscale.stragglers.trace import JobMeta, Trace
from heteroscale.stragglers.trace_io import load_meta, load_trace
from tests.stragglers.conftest import DATA

COPIES = 148


def tiled_trace() -> tuple[Trace, JobMeta]:
    meta = load_meta(DATA / "meta-ST.yaml")
    trace = load_trace(DATA / "trace-ST.parquet", meta)
    copy = np.repeat(np.arange(COPIES), len(trace))
    dp_rank = np.tile(trace.dp_rank, COPIES) + copy * meta.dp
    stage = np.tile(trace.stage, COPIES)
    big_meta = replace(meta, dp=meta.dp * COPIES)
    tiled = Trace(
        dp_rank=dp_rank,
        stage=stage,
        rank=stage * big_meta.dp + dp_rank,
        **{
            name: np.tile(getattr(trace, name), COPIES)
            for name in ("step", "optype", "start_ts", "duration", "seq_id", "mc", "gmc", "mb_id")
        },
    )
    return tiled, big_meta


def run() -> float:
    trace, meta = tiled_trace()
    started = time.perf_counter()
    analysis = analyze(trace, meta)
    elapsed = time.perf_counter() - started
    reference = analyze(*_small())
    print(
        f"{len(trace):,} ops (DP {meta.dp} x PP {meta.pp} x {len(analysis.replay.steps)} steps): "
        f"full analysis in {elapsed:.2f} s; S = {analysis.replay.slowdown:.4f} "
        f"(ST alone {reference.replay.slowdown:.4f}), M_W = {analysis.attribution.M_W:.3f}, "
        f"M_S = {analysis.attribution.M_S:.3f}, causes {[str(c) for c in analysis.diagnosis.causes]}"
    )
    assert analysis.replay.slowdown == pytest.approx(reference.replay.slowdown, rel=1e-6)
    return elapsed


def _small() -> tuple[Trace, JobMeta]:
    meta = load_meta(DATA / "meta-ST.yaml")
    return load_trace(DATA / "trace-ST.parquet", meta), meta


@pytest.mark.benchmark
def test_one_million_ops() -> None:
    run()


if __name__ == "__main__":
    run()
