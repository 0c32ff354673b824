"""The `heteroscale` command line: crd, decide, plan and run, on the bundled data and on user mistakes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from heteroscale.api.crd import render_crd
from heteroscale.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "samples" / "chat-h20.yaml"


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


# --- Mistakes a user makes: each gets one line on stderr and a non-zero exit, never a traceback. ---

NODES = ROOT / "deploy" / "samples" / "nodes-example.json"
PODS = ROOT / "deploy" / "samples" / "pods-example.json"
PLAN_GROUP = ROOT / "deploy" / "samples" / "pdsg-plan-example.yaml"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``heteroscale ARGV``, argparse's exits included."""
    try:
        status = main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def plan_args(*extra: str, nodes: Path = NODES, group: Path = PLAN_GROUP) -> list[str]:
    return ["plan", "--nodes", str(nodes), "--pods", str(PODS), "--group", str(group), *extra]


def bad_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


MISTAKES = {
    "bad number": (
        ["decide", "--spec", str(SAMPLE), "--scale", "abc"],
        "argument --scale: must be a number, got 'abc'",
    ),
    "zero scale": (["decide", "--spec", str(SAMPLE), "--scale", "0"], "argument --scale: must be a number > 0"),
    "negative SLO": (["simulate", "--tbt-slo", "-0.05"], "argument --tbt-slo: must be a number > 0, got '-0.05'"),
    "negative count": (
        plan_args("--prefill", "-1", "--decode", "3"),
        "argument --prefill: must be a whole number >= 0",
    ),
    "port out of range": (["run", "--metrics-port", "70000"], "argument --metrics-port: must be a port number"),
    "unknown flag": (["decide", "--spec", str(SAMPLE), "--sclae", "2"], "unrecognized arguments: --sclae 2"),
    "missing flag": (["plan", "--nodes", str(NODES)], "the following arguments are required"),
    "unknown log format": (["run", "--log-format", "xml"], "argument --log-format: invalid choice: 'xml'"),
    "missing spec file": (["decide", "--spec", "nope.yaml"], "cannot read PDServingGroup nope.yaml: No such file"),
    "pods given as nodes": (plan_args("--prefill", "1", "--decode", "3", nodes=PODS), "holds Pod objects, not Nodes"),
    "spec given as nodes": (
        plan_args("--prefill", "1", "--decode", "3", nodes=PLAN_GROUP),
        "is not a Node list (PDServingGroup): give the output of `kubectl get nodes -o json`",
    ),
}


@pytest.mark.parametrize(("argv", "words"), MISTAKES.values(), ids=MISTAKES.keys())
def test_each_mistake_is_one_line_and_a_non_zero_exit(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    status, _, err = run_cli(argv, capsys)
    assert status == 2
    assert err.count("\n") == 1, err
    assert words in err
    assert err.startswith(f"heteroscale {argv[0]}: error: ")


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("nodes.json", '{"kind": "List", "items": [', "is not valid JSON: line 1 column 28: Expecting value"),
        ("nodes.yaml", "kind: [List\n", "is not valid YAML: line 2 column 1"),
        ("nodes.json", "[]", "is not a Node list (list)"),
        ("nodes.json", '{"kind": "List", "items": {}}', "items must be a list of Node objects"),
    ],
)
def test_unreadable_node_lists_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, words: str
) -> None:
    nodes = Path(bad_file(tmp_path, name, text))
    status, _, err = run_cli(plan_args("--prefill", "1", "--decode", "1", nodes=nodes), capsys)
    assert (status, err.count("\n")) == (2, 1), err
    assert words in err


def test_plan_reports_a_bad_spec_by_field_path_like_decide(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    group = Path(
        bad_file(
            tmp_path,
            "g.yaml",
            PLAN_GROUP.read_text().replace("minReplicas: 1, maxReplicas: 64", "minReplicas: 100, maxReplicas: 64"),
        )
    )
    status, _, err = run_cli(plan_args("--prefill", "1", "--decode", "1", group=group), capsys)
    assert status == 2
    assert err == f"heteroscale plan: error: {group}: spec.decode: minReplicas must be <= maxReplicas (got 100 > 64)\n"


def test_several_spec_problems_get_a_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = SAMPLE.read_text().replace("minReplicas: 3", "minReplicas: -3").replace("tolerance: 0.1", "tolerance: x")
    status, _, err = run_cli(["decide", "--spec", bad_file(tmp_path, "s.yaml", text)], capsys)
    assert status == 2
    lines = err.splitlines()
    assert lines[0].endswith("s.yaml: 2 problems:")
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["spec.decode.minReplicas", "spec.behavior.tolerance"]
    assert "pydantic" not in err


def test_unschedulable_plan_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(plan_args("--prefill", "4", "--decode", "12"), capsys)
    assert status == 1
    assert "Unschedulable: 1 of 12 decode instance(s)" in out


def test_plan_that_fits_exits_0_and_json_dash_is_stdout_alone(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(plan_args("--prefill", "1", "--decode", "3", "--json", "-"), capsys)
    assert status == 0
    plan = json.loads(out)  # nothing but the JSON on stdout
    assert {(g["role"], g["replicas"]) for g in plan["groups"]} == {("prefill", 1), ("decode", 3)}
    assert plan["unschedulable"] == []


def test_plan_names_the_label_values_it_saw_for_a_type_no_node_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    group = Path(bad_file(tmp_path, "g.yaml", PLAN_GROUP.read_text().replace("[H20]", "[H100]")))
    group.write_text(group.read_text().replace("{H20: 2200}", "{H100: 2200}"))
    status, _, err = run_cli(plan_args("--prefill", "1", "--decode", "3", group=group), capsys)
    assert status == 1
    assert (
        "hint: no node has GPU type H100: nvidia.com/gpu.product values seen (nodes): NVIDIA-H20 (14), NVIDIA-L20 (10)"
        in err
    )


def test_json_into_a_missing_folder_creates_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "deeper" / "plan.json"
    assert run_cli(plan_args("--prefill", "1", "--decode", "3", "--json", str(out)), capsys)[0] == 0
    assert json.loads(out.read_text())["unschedulable"] == []


def test_json_onto_a_folder_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(["decide", "--spec", str(SAMPLE), "--json", str(tmp_path)], capsys)
    assert (status, err.count("\n")) == (2, 1)
    assert f"cannot write --json {tmp_path}: Is a directory" in err


def test_decide_json_dash_writes_only_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(["decide", "--spec", str(SAMPLE), "--json", "-"], capsys)
    assert status == 0
    assert len(json.loads(out)) == 58
    assert not Path("-").exists()


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(["run", "--help"], capsys)
    assert status == 0
    text = " ".join(out.split())  # argparse wraps lines at the terminal's width
    assert "port of /metrics; 0 turns it off (default: 9090)" in text
    assert "(default: plain)" in text
    assert "(default: False)" not in text  # a flag's False default says nothing


def test_a_missing_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now fails as if it were not installed
    status, _, err = run_cli(["simulate", "--hours", "0.1"], capsys)
    assert status == 2
    assert err == (
        "heteroscale simulate: error: needs tqdm, which the [sim] extra installs: pip install 'heteroscale[sim]'\n"
    )
