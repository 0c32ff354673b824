"""The bundled traces load as published (figures from the data's own README, parsed with pandas)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from heteroscale.traces import decode_tps_series, load


@pytest.mark.parametrize(
    ("name", "rows", "span", "in_mean", "out_mean"),
    [
        ("azure-conv", 19_366, 3_502, 1_155, 211),
        ("azure-code", 8_819, 3_436, 2_048, 27.9),
        ("mooncake", 12_031, 3_537, 12_035, 343),
    ],
)
def test_bundled_traces_match_their_published_statistics(
    name: str, rows: int, span: float, in_mean: float, out_mean: float
) -> None:
    trace = load(name)
    assert len(trace.arrival) == rows
    assert trace.duration == pytest.approx(span, abs=1.0)
    assert trace.input_tokens.mean() == pytest.approx(in_mean, rel=0.001)
    assert trace.output_tokens.mean() == pytest.approx(out_mean, rel=0.005)
    assert np.all(np.diff(trace.arrival) >= 0)


def test_mooncake_prefix_blocks_cover_the_prompt() -> None:
    trace = load("mooncake")
    assert trace.hash_ids is not None
    blocks = np.array([len(h) for h in trace.hash_ids])
    assert np.array_equal(blocks, -(-trace.input_tokens // 512))  # ceil(input / 512), as the README says


def test_decode_series_conserves_tokens_over_whole_bins() -> None:
    trace = load("azure-conv")
    series = decode_tps_series(trace, 60.0)
    whole = trace.arrival < len(series) * 60.0
    assert series.sum() * 60.0 == pytest.approx(trace.output_tokens[whole].sum())


def test_user_trace_files_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "mine.csv.gz"
    with gzip.open(good, "wt") as handle:
        handle.write(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2024-01-01 00:00:01.0000000,10,5\n2024-01-01 00:00:00.5000000,20,7\n"
        )
    trace = load(str(good))
    assert trace.arrival.tolist() == [0.0, 0.5]
    assert trace.output_tokens.tolist() == [7, 5]
    bad = tmp_path / "bad.csv"
    bad.write_text("time,prompt\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        load(str(bad))
    with pytest.raises(FileNotFoundError, match="give one of"):
        load(str(tmp_path / "absent.csv"))
    broken = tmp_path / "x.jsonl"
    broken.write_text('{"timestamp": 0}\n')
    with pytest.raises(ValueError, match=r"x\.jsonl:1"):
        load(str(broken))
