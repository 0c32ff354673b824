"""`heteroscale stragglers analyze|serve` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from heteroscale.cli import main
from tests.stragglers.conftest import DATA

KEYS = {
    "slowdown",
    "waste",
    "replay_error",
    "by_optype",
    "by_dp_rank",
    "by_stage",
    "by_worker",
    "M_W",
    "M_W_what_if",
    "M_S",
    "slowest_workers",
    "slowest_workers_what_if",
    "root_causes",
    "suspect_ranks",
}


def test_analyze_prints_a_report_and_writes_json_and_heatmap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, png = tmp_path / "st.json", tmp_path / "st.png"
    argv = [
        "stragglers",
        "analyze",
        "--trace",
        str(DATA / "trace-ST.parquet"),
        "--meta",
        str(DATA / "meta-ST.yaml"),
    ]
    assert main([*argv, "--json", str(out), "--heatmap", str(png)]) == 0
    report = capsys.readouterr().out
    assert "stage imbalance" in report
    assert "rebalance the pipeline partition" in report
    result = json.loads(out.read_text())
    assert set(result) >= KEYS
    assert result["root_causes"] == ["last_stage"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analyze_json_dash_is_stdout_alone_and_a_heatmap_folder_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "new" / "st.png"
    argv = ["stragglers", "analyze", "--trace", str(DATA / "trace-ST.parquet"), "--meta", str(DATA / "meta-ST.yaml")]
    assert main([*argv, "--json", "-", "--heatmap", str(png)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["root_causes"] == ["last_stage"]  # nothing but the JSON on stdout
    assert "stage imbalance" in captured.err, "the report goes to stderr"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not Path("-").exists()


def test_bad_input_is_an_error_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = tmp_path / "meta.yaml"
    meta.write_text("dp_size: 3\npp_size: 4\n")
    argv = ["stragglers", "analyze", "--trace", str(DATA / "trace-ST.parquet"), "--meta", str(meta)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "dp_rank values {0, 1} do not match metadata dp_size=3" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("value", "message"), [("0", "must be a whole number >= 1"), ("two", "must be a whole number")]
)
def test_workers_must_be_a_positive_integer(value: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["stragglers", "analyze", "--trace", str(DATA / "trace-ST.parquet"), "--meta", str(DATA / "meta-ST.yaml")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--workers", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --workers: {message}, got '{value}'" in err
    assert "Traceback" not in err


def test_serve_exposes_metrics_and_writes_slow_nodes(tmp_path: Path) -> None:
    slow = tmp_path / "slow.json"
    argv = [
        sys.executable,
        "-m",
        "heteroscale",
        "stragglers",
        "serve",
        "--trace",
        str(DATA / "trace-ST.parquet"),
        "--meta",
        str(DATA / "meta-ST.yaml"),
        "--port",
        "0",
        "--address",
        "127.0.0.1",
        "--slow-nodes",
        str(slow),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(2)]
        url = lines[1].split(" on ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = reply.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert 'heteroscale_straggler_job_slowdown{job="ST"}' in body
    assert json.loads(slow.read_text())["slow_nodes"] == []
