"""A Parquet trace streamed in chunks of steps, in worker processes, gives the in-memory result."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from heteroscale.stragglers import analysis
from heteroscale.stragglers.analysis import MemoryStore, analyze_chunks, split_steps
from heteroscale.stragglers.chunked import serial_map
from heteroscale.stragglers.parquet_trace import plan_chunks, read_parquet
from heteroscale.stragglers.report import to_json
from heteroscale.stragglers.streaming import analyze_parquet
from heteroscale.stragglers.trace import TraceError
from heteroscale.stragglers.trace_io import load_meta
from tests.benchmarks.straggler_traces import write_replicated_trace
from tests.stragglers.conftest import DATA, real_analysis

SMALL_CHUNKS = 12_000  # ops: SE (2,496 per step) in chunks of five steps


def write_by_step(table: pa.Table, path: Path, steps_per_group: int = 1) -> None:
    """The trace in step order, ``steps_per_group`` steps per row group."""
    table = table.sort_by("step")
    steps = table.column("step").to_numpy()
    bounds = np.flatnonzero(np.diff(steps)) + 1
    starts = [0, *bounds[steps_per_group - 1 :: steps_per_group].tolist()]
    with pq.ParquetWriter(path, table.schema) as writer:
        for a, b in zip(starts, [*starts[1:], len(steps)], strict=True):
            writer.write_table(table.slice(a, b - a))


def assert_same(mine: Any, theirs: Any, rel: float, where: str = "") -> None:
    """Equal JSON results, numbers within ``rel`` (0: bit for bit)."""
    if isinstance(mine, dict):
        assert mine.keys() == theirs.keys(), where
        for key in mine:
            assert_same(mine[key], theirs[key], rel, f"{where}/{key}")
    elif isinstance(mine, list):
        assert len(mine) == len(theirs), where
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            assert_same(a, b, rel, f"{where}[{i}]")
    elif isinstance(mine, float) and rel:
        assert mine == pytest.approx(theirs, rel=rel, abs=1e-15), where
    else:
        assert mine == theirs, where


@pytest.fixture(scope="module")
def se_by_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("se") / "trace-SE.parquet"
    write_by_step(pq.read_table(DATA / "trace-SE.parquet"), path)
    return path


def test_streamed_in_worker_processes_equals_in_memory(se_by_step: Path) -> None:
    meta = load_meta(DATA / "meta-SE.yaml")
    streamed = analyze_parquet(se_by_step, meta, workers=2, chunk_ops=SMALL_CHUNKS)
    chunks = split_steps(read_parquet(DATA / "trace-SE.parquet"), SMALL_CHUNKS)
    assert len(chunks) == len(plan_chunks(se_by_step, SMALL_CHUNKS)) == 9
    # The same chunks of steps give the same result bit for bit, whichever process ran them.
    assert_same(to_json(streamed), to_json(analyze_chunks(chunks, meta, MemoryStore(), serial_map)), rel=0)
    # Other chunks only sum the mean ideal durations in another order.
    assert_same(to_json(streamed), to_json(real_analysis("SE")), rel=1e-12)


def test_plan_keeps_row_groups_that_share_steps_together(tmp_path: Path) -> None:
    table = pq.read_table(DATA / "trace-ST.parquet")
    per_step, two_steps, mixed = tmp_path / "per-step.parquet", tmp_path / "two.parquet", tmp_path / "mixed.parquet"
    write_by_step(table, per_step)
    write_by_step(table, two_steps, steps_per_group=2)
    # Rows of all steps in every row group: nothing can be read apart.
    shuffled = table.take(np.random.default_rng(0).permutation(table.num_rows))
    pq.write_table(shuffled, mixed, row_group_size=1_000)
    steps = len(np.unique(table.column("step").to_numpy()))
    rows_per_step = table.num_rows // steps
    assert plan_chunks(per_step, chunk_ops=1).row_groups == tuple((g,) for g in range(steps))
    assert plan_chunks(per_step, chunk_ops=3 * rows_per_step).row_groups[0] == (0, 1, 2)
    assert plan_chunks(two_steps, chunk_ops=1).row_groups == tuple((g,) for g in range(steps // 2))
    assert plan_chunks(mixed, chunk_ops=1).row_groups == (tuple(range(pq.ParquetFile(mixed).num_row_groups)),)
    meta = load_meta(DATA / "meta-ST.yaml")
    for path in (per_step, mixed):
        assert_same(to_json(analyze_parquet(path, meta, workers=2, chunk_ops=1)), to_json(real_analysis("ST")), 1e-12)


def test_nodes_are_read_with_the_chunks(tmp_path: Path) -> None:
    table = pq.read_table(DATA / "trace-ST.parquet")
    rank = table.column("rank").to_numpy()
    node = pa.array([f"gpu-{r // 4}" for r in rank]).dictionary_encode()
    path = tmp_path / "trace.parquet"
    write_by_step(table.append_column("node", node), path)
    analysis = analyze_parquet(path, load_meta(DATA / "meta-ST.yaml"), workers=2, chunk_ops=1)
    assert analysis.nodes == {r: f"gpu-{r // 4}" for r in range(8)}


def test_a_bad_step_in_a_worker_process_is_a_trace_error(tmp_path: Path) -> None:
    table = pq.read_table(DATA / "trace-ST.parquet")
    steps = table.column("step").to_numpy()
    last = steps.max()
    # The last step loses one op of one worker: only the process that reads that step sees it.
    drop = np.flatnonzero(steps == last)[5]
    path = tmp_path / "trace.parquet"
    write_by_step(table.take(np.delete(np.arange(table.num_rows), drop)), path)
    with pytest.raises(TraceError, match=rf"step {last}, dp_rank \d, stage \d lacks"):
        analyze_parquet(path, load_meta(DATA / "meta-ST.yaml"), workers=2, chunk_ops=1)


def _die(*_: object) -> None:
    os._exit(1)  # as the kernel's out-of-memory killer would end a worker


@pytest.mark.timeout(60)
def test_a_worker_process_that_dies_is_an_error_not_a_hang(se_by_step: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analysis, "_what_ifs", _die)
    with pytest.raises(TraceError, match=r"a worker process died while analysing .* try fewer --workers"):
        analyze_parquet(se_by_step, load_meta(DATA / "meta-SE.yaml"), workers=2, chunk_ops=SMALL_CHUNKS)


def test_a_worker_that_changes_rank_between_steps_is_a_trace_error(tmp_path: Path) -> None:
    table = pq.read_table(DATA / "trace-ST.parquet")
    steps, rank = table.column("step").to_numpy(), table.column("rank").to_numpy()
    swapped = np.where((steps == steps.max()) & (rank == 0), 1, np.where((steps == steps.max()) & (rank == 1), 0, rank))
    path = tmp_path / "trace.parquet"
    write_by_step(table.set_column(table.schema.get_field_index("rank"), "rank", pa.array(swapped, pa.int16())), path)
    with pytest.raises(TraceError, match=r"is global rank 1 in step \d+ but 0 in step \d+"):
        analyze_parquet(path, load_meta(DATA / "meta-ST.yaml"), workers=1, chunk_ops=1)


def test_benchmark_trace_copies_dp_ranks_without_changing_the_slowdown(tmp_path: Path) -> None:
    trace, meta_path = write_replicated_trace(2, tmp_path)
    meta = load_meta(meta_path)
    analysis = analyze_parquet(trace, meta, workers=1)
    se = real_analysis("SE")
    assert meta.dp == 2 * se.meta.dp
    assert pq.ParquetFile(trace).num_row_groups == len(se.replay.steps)
    assert analysis.n_ops == 2 * se.n_ops
    assert analysis.replay.slowdown == pytest.approx(se.replay.slowdown, rel=1e-12)
    assert pytest.approx(se.attribution.M_S, rel=1e-9) == analysis.attribution.M_S
    np.testing.assert_allclose(analysis.attribution.by_dp_rank, np.tile(se.attribution.by_dp_rank, 2), rtol=1e-12)
