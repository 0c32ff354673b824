"""`heteroscale curate` on trace files: the objective's promise, a held-out slice, the output, the
determinism, and one clear error for every bad workload.

The curated workload is the first half of the bundled Azure conversation trace, the held-out one
its second half, each written as an Azure CSV file and replayed as the same six morning hours
(06:00 to 12:00 of the diurnal day, a small fleet): a different slice of the same trace.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import pytest
import yaml

from heteroscale.api.crd import build_crd
from heteroscale.api.enums import Role
from heteroscale.api.manifest import parse_manifest
from heteroscale.cli import main
from heteroscale.curate import evaluate
from heteroscale.curate.knobs import GUARD_TIERS, KNOBS, Knob
from heteroscale.curate.objective import Score, rank
from heteroscale.placement import Inventory
from heteroscale.simulate import workload as wl
from heteroscale.simulate.engine import EngineConfig
from heteroscale.simulate.inventory import simulated_inventory
from heteroscale.simulate.perfmodel import ModelSpec, load_gpu_perf
from heteroscale.simulate.service import Service, Slo, spec_document
from heteroscale.simulate.stresstest import derive
from tests.k8s_schema import validate

REPO = Path(__file__).resolve().parents[2]
DAY = ["--hours", "6", "--start-hour", "6", "--fleet-scale", "8"]


def _split_conv(folder: Path) -> tuple[Path, Path]:
    """The bundled conversation trace's first and second halves (by time) as Azure CSV files."""
    resource = resources.files("heteroscale.data").joinpath("azure_llm_2023/AzureLLMInferenceTrace_conv.csv.gz")
    with resources.as_file(resource) as path:
        header, *rows = gzip.decompress(Path(path).read_bytes()).decode().splitlines()
    times = [datetime.fromisoformat(row.split(",", 1)[0][:26]).timestamp() for row in rows]
    middle = (times[0] + times[-1]) / 2
    first, second = folder / "conv-first-half.csv", folder / "conv-second-half.csv"
    first.write_text("\n".join([header, *(r for r, t in zip(rows, times, strict=True) if t < middle)]) + "\n")
    second.write_text("\n".join([header, *(r for r, t in zip(rows, times, strict=True) if t >= middle)]) + "\n")
    return first, second


@dataclass(frozen=True)
class Curated:
    workload: Path
    holdout: Path
    spec: dict
    report: dict
    said: str
    """What the command printed."""


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Curated:
    folder = tmp_path_factory.mktemp("curate")
    first, second = _split_conv(folder)
    args = ["curate", "--workload", str(first), *DAY, "--candidates", "12", "--workers", "2", "--no-progress"]
    args += ["--holdout", str(second), "--out", str(folder / "spec.yaml"), "--report", str(folder / "report")]
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        assert main(args) == 0
    return Curated(
        first,
        second,
        yaml.safe_load((folder / "spec.yaml").read_text()),
        json.loads((folder / "report" / "report.json").read_text()),
        said.getvalue(),
    )


def _score(entry: dict) -> Score:
    return Score(entry["gpu_hours"], entry["slo_attainment"], entry["scale_actions"], entry["slo_attainment_low"])


_DAY = functools.partial(wl.scale, hours=6, fleet_scale=8, diurnal=True, start_hour=6)


def _stress(path: Path) -> Service:
    """The service the command derives from the trace file ``path`` (its stress test)."""
    return derive(
        _DAY(wl.load(str(path))),
        load_gpu_perf(),
        prefill_gpus=["L20", "H20"],
        decode_gpus=["H20"],
        slo=Slo(),
        model=ModelSpec(),
        gpus_per_instance=8,
    )


def _setting(workload: Path, path: Path) -> evaluate.Setting:
    """``path`` replayed as the command replays it, for the service the command derived from the
    curated ``workload`` (the held-out slice is run with the curated workload's service)."""
    return evaluate.setting(_DAY(wl.load(str(path))), _stress(workload), EngineConfig())


def _held_out(workload: Path, holdout: Path, spec: dict) -> tuple[evaluate.Setting, list[dict], Inventory]:
    """The held-out replay as the command sets it up: the written spec and the defaults, for the
    curated workload's service, on a cluster sized for the held-out trace."""
    at = _setting(workload, holdout)
    return at, [spec["spec"], spec_document(at.service, at.config.interval_s)], simulated_inventory(_stress(holdout))


def test_the_curated_spec_is_never_worse_than_the_defaults_on_its_workload(curated: Curated) -> None:
    """Replayed on its own, apart from the search: the spec written is the one scored, and the
    objective ranks it no worse than the simulator's own HeteroScale spec (the defaults)."""
    at = _setting(curated.workload, curated.workload)
    (alone,) = evaluate.score_specs(at, [curated.spec["spec"]])
    defaults = evaluate.baselines(at)["heteroscale"]
    report = curated.report["comparison"]
    assert alone.gpu_hours == pytest.approx(report["curated"]["gpu_hours"], abs=1e-3)
    assert alone.slo_attainment == pytest.approx(report["curated"]["slo_attainment"], abs=1e-6)
    assert defaults.gpu_hours == pytest.approx(report["defaults"]["gpu_hours"], abs=1e-3)
    assert rank(alone, 0.99) <= rank(defaults, 0.99)
    assert alone.slo_attainment >= 0.99


def test_the_choice_is_judged_by_its_lower_bound_and_the_command_says_when_it_falls_short(curated: Curated) -> None:
    """The objective asks the attainment's 95% lower bound over the workload's hours to reach the
    target; a choice that reaches it only on the day is written, with a line that says so."""
    chosen = curated.report["comparison"]["curated"]
    assert chosen["slo_attainment_low"] <= chosen["slo_attainment"]
    assured = chosen["slo_attainment_low"] >= 0.99
    assert curated.report["chosen"]["meets_objective"] is assured
    assert ("but not with 95% confidence over its hours" in curated.said) is (not assured)
    candidates = curated.report["candidates"]
    if any(c["slo_attainment_low"] >= 0.99 for c in candidates):
        cheapest = min(c["gpu_hours"] for c in candidates if c["slo_attainment_low"] >= 0.99)
        assert chosen["gpu_hours"] == pytest.approx(cheapest, abs=1e-3)
    else:
        assert chosen["slo_attainment_low"] == pytest.approx(max(c["slo_attainment_low"] for c in candidates))


def test_the_held_out_report_is_the_written_spec_and_the_defaults_replayed_on_the_slice(curated: Curated) -> None:
    """Whether the choice holds on a slice it was not chosen on is an outcome, not a promise; the
    24 h held-out days and their acceptance
    are measured by ``python -m tests.benchmarks.bench_holdout``. Here: the report holds what the written spec and the
    defaults do on the held-out slice."""
    held = curated.report["holdout"]
    assert held["source"] == str(curated.holdout)
    at, documents, cluster = _held_out(curated.workload, curated.holdout, curated.spec)
    spec, defaults = evaluate.score_specs(at, documents, inventory=cluster)
    for name, score in (("curated", spec), ("defaults", defaults)):
        assert score.gpu_hours == pytest.approx(held[name]["gpu_hours"], abs=1e-3)
        assert score.slo_attainment == pytest.approx(held[name]["slo_attainment"], abs=1e-6)


def test_a_heavier_held_out_trace_is_replayed_on_a_cluster_sized_for_it(tmp_path: Path) -> None:
    """The cluster is the environment, sized for the trace it serves (as ``simulate --holdout``
    sizes it): a held-out trace with three times the requests of the curated one, replayed on the
    curated trace's cluster, would measure that cluster's size, not the spec."""
    first, second = _split_conv(tmp_path)
    header, *rows = second.read_text().splitlines()
    heavy = tmp_path / "conv-second-half-3x.csv"
    heavy.write_text("\n".join([header, *(row for row in rows for _ in range(3))]) + "\n")
    out = tmp_path / "heavy"
    args = ["curate", "--workload", str(first), *DAY, "--candidates", "3", "--workers", "2", "--no-progress"]
    main([*args, "--holdout", str(heavy), "--out", str(out / "spec.yaml"), "--report", str(out)])
    held = json.loads((out / "report.json").read_text())["holdout"]
    at, documents, cluster = _held_out(first, heavy, yaml.safe_load((out / "spec.yaml").read_text()))
    sized = evaluate.score_specs(at, documents, inventory=cluster)
    small = evaluate.score_specs(at, documents)
    for name, score, on_small in zip(("curated", "defaults"), sized, small, strict=True):
        assert score.gpu_hours == pytest.approx(held[name]["gpu_hours"], abs=1e-3)
        assert score.slo_attainment == pytest.approx(held[name]["slo_attainment"], abs=1e-6)
        assert (on_small.gpu_hours, on_small.slo_attainment) != pytest.approx(
            (score.gpu_hours, score.slo_attainment)
        ), "on the curated trace's cluster the heavier trace runs otherwise: the test tells the two apart"


def test_the_output_is_a_valid_dry_run_group_with_what_was_simulated(curated: Curated) -> None:
    group = parse_manifest(curated.spec)
    assert group.spec.mode == "DryRun"
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert validate(schema, curated.spec["spec"]) == []
    service = curated.report["service"]
    assert (group.spec.ratio.prefill, group.spec.ratio.decode) == (
        service["ratio"]["prefill"],
        service["ratio"]["decode"],
    )
    assert group.spec.roles.of(Role.DECODE).gpu_types == service["gpu_types"]["decode"]
    knobs = curated.report["chosen"]["knobs"]
    assert group.spec.behavior.tolerance == knobs["tolerance"]
    assert group.spec.behavior.scale_down.stabilization_window_seconds == knobs["stabilization_window"]
    guard = group.spec.behavior.latency_guard
    assert guard is not None
    assert [tier.model_dump(by_alias=True) for tier in guard.tiers] == GUARD_TIERS[knobs["latency_guard"]]
    assert (group.spec.ratio.adaptive is None) == (knobs["ratio"] == "fixed")


def test_the_report_states_the_ratio_curve_the_baselines_and_each_knobs_effect(curated: Curated) -> None:
    report = curated.report
    assert {p["ratio"]["prefill"] * 1000 // p["ratio"]["decode"] for p in report["stress_test"]}
    assert set(report["comparison"]) == {"curated", "defaults", "hpa-util", "oracle"}
    assert len(report["candidates"]) >= 12
    assert sorted(e["knob"] for e in report["sensitivity"]) == sorted(k.name for k in KNOBS)
    assert all(len(e["levels"]) == len(k.levels) for e, k in zip(report["sensitivity"], _by_name(report), strict=True))
    assert report["candidates"][0]["knobs"] == report["chosen"]["defaults"]


def _by_name(report: dict) -> list[Knob]:
    """The knobs in the order the report's sensitivity lists them."""
    knobs = {k.name: k for k in KNOBS}
    return [knobs[e["knob"]] for e in report["sensitivity"]]


def _tiny(tmp_path: Path, name: str, *extra: str) -> tuple[bytes, bytes]:
    out = tmp_path / name
    args = ["curate", "--workload", "azure-conv", "--hours", "1", "--fleet-scale", "8", "--candidates", "3"]
    assert main([*args, "--no-progress", *extra, "--out", str(out / "spec.yaml"), "--report", str(out)]) == 0
    return (out / "spec.yaml").read_bytes(), (out / "report.json").read_bytes()


def test_the_same_inputs_and_seed_give_the_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    serial = _tiny(tmp_path, "serial", "--workers", "1")
    parallel = _tiny(tmp_path, "parallel", "--workers", "2")
    assert serial == parallel
    other_seed = _tiny(tmp_path, "seed", "--workers", "1", "--seed", "1")
    assert other_seed[1] != serial[1]


def test_a_group_given_keeps_its_roles_and_takes_the_curated_fields(tmp_path: Path) -> None:
    sample = REPO / "deploy" / "samples" / "chat-h20.yaml"
    _tiny(tmp_path, "group", "--workers", "1", "--group", str(sample))
    original = yaml.safe_load(sample.read_text())
    written = yaml.safe_load((tmp_path / "group" / "spec.yaml").read_text())
    assert written["metadata"] == original["metadata"]
    assert (
        written["spec"]["roles"]
        == parse_manifest(original).spec.model_dump(by_alias=True, exclude_none=True, mode="json")["roles"]
    )
    report = json.loads((tmp_path / "group" / "report.json").read_text())
    assert written["spec"]["ratio"] == report["service"]["ratio"]
    assert report["service"]["gpu_types"] == {"prefill": ["H20"], "decode": ["H20"]}


@pytest.mark.parametrize(
    ("write", "extra", "message"),
    [
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n", [], "has no requests"),
        (
            "when,prompt\n2023-11-16 18:15:47.0000000,10\n",
            [],
            "missing column(s) ['ContextTokens', 'GeneratedTokens', 'TIMESTAMP']",
        ),
        ("", ["--workload", "no-such-trace"], "no trace 'no-such-trace'"),
        ("", ["--workload", "azure-conv", "--deployments", "chat-decode"], "--deployments read a Prometheus history"),
        ("", ["--workload", "prometheus", "--prometheus-url", "http://127.0.0.1:9"], "needs --namespace"),
        ("", ["--workload", "prometheus", "--namespace", "serving", "--deployments", "d"], "exactly one of --config"),
        ("", ["--workload", "azure-conv", "--candidates", "0"], "--candidates must be at least 1"),
        (
            "",
            ["--workload", "azure-conv", "--group", str(REPO / "deploy/samples/chat-h20.yaml"), "--decode-gpus", "L20"],
            "roles.decode.gpuTypes ['H20'] differ from the simulated ['L20']",
        ),
    ],
    ids=["empty", "not-azure", "missing", "history-flag", "no-namespace", "no-endpoint", "no-candidates", "group-gpus"],
)
def test_a_bad_workload_or_flag_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write: str, extra: list[str], message: str
) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(write)
    args = extra or ["--workload", str(trace)]
    code = main(
        ["curate", *args, "--hours", "1", "--fleet-scale", "2", "--no-progress", "--out", str(tmp_path / "o.yaml")]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("heteroscale curate: error: ")
    assert message in err[0]
    assert not (tmp_path / "o.yaml").exists()
