"""The `heteroscale` command line: crd and decide, on the bundled data and on user files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from heteroscale.api.crd import render_crd
from heteroscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "samples" / "chat-h20.yaml"


def test_module_entry_point_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "heteroscale", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    for command in ("crd", "decide"):
        assert command in result.stdout


def test_crd_stdout_is_the_generated_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd", "--stdout"]) == 0
    assert capsys.readouterr().out == render_crd()


def test_crd_writes_the_file(tmp_path: Path) -> None:
    assert main(["crd", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "pdservinggroups.heteroscale.io.yaml").read_text() == render_crd()


def test_decide_replays_a_series_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = tmp_path / "series.csv"
    # 20k tok/s, then a missing reading, then a fresh one: the hold shows in the middle.
    series.write_text("t,decode_tps,tbt\n0,20000,\n60,,\n120,20000,0.03\n")
    out = tmp_path / "rows.json"
    assert main(["decide", "--spec", str(SAMPLE), "--series", str(series), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [set(r) for r in rows] == [{"t", "decode_tps", "prefill", "decode", "reason"}] * 3
    assert rows[0]["reason"] == "ScaledUp"
    assert rows[1] == {**rows[0], "t": 60.0, "decode_tps": None, "reason": "MetricMissing"}
    assert rows[2]["decode"] >= rows[0]["decode"]
    table = capsys.readouterr().out
    assert "MetricMissing" in table
    assert "no decode tokens/s reading" in table


def test_decide_on_the_bundled_trace(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    assert main(["decide", "--spec", str(SAMPLE), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 58  # whole minutes of the hour-long Azure conversation trace
    reasons = {r["reason"] for r in rows}
    assert {"ScaledUp", "ScaledDown"} <= reasons
    for row in rows:
        assert row["prefill"] == -(-row["decode"] // 3)  # the sample's 1:3 ratio, every tick


def test_decide_reports_a_bad_spec_by_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SAMPLE.read_text().replace("minReplicas: 3", "minReplicas: 300"))
    assert main(["decide", "--spec", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "spec.decode: minReplicas must be <= maxReplicas (got 300 > 96)" in err


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("0,100\n10,abc\n", "series.csv:2: 'abc' is not a number"),
        ("0,100\n0,200\n", "series.csv:2: time 0.0 does not increase"),
        ("0,100,1,2\n", "expected 2 or 3 columns"),
        ("t,decode_tps\n", "no data rows"),
    ],
)
def test_decide_reports_bad_series_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, words: str
) -> None:
    series = tmp_path / "series.csv"
    series.write_text(content)
    assert main(["decide", "--spec", str(SAMPLE), "--series", str(series)]) == 2
    assert words in capsys.readouterr().err


def test_decide_reports_an_unknown_trace(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decide", "--spec", str(SAMPLE), "--trace", "nope"]) == 2
    assert "give one of azure-conv, azure-code, mooncake" in capsys.readouterr().err
