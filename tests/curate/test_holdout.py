"""The held-out evaluation (`heteroscale simulate --holdout`): a spec chosen on the trace's first
half, every policy judged on a day built from its second half, configured from the first."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest

from heteroscale.cli import main
from heteroscale.curate.holdout import held_out
from heteroscale.curate.knobs import DEFAULTS, KNOBS, apply
from heteroscale.simulate import workload as wl
from heteroscale.simulate.catalog import CURATED
from heteroscale.simulate.engine import EngineConfig
from heteroscale.simulate.inventory import simulated_inventory
from heteroscale.simulate.perfmodel import ModelSpec, load_gpu_perf
from heteroscale.simulate.service import Service, Slo, spec_document
from heteroscale.simulate.stresstest import derive
from heteroscale.simulate.study import run_study
from heteroscale.simulate.verdict import verdict

# A short, small day: the mechanics, not the evidence (that is docs/simulator.md's held-out table).
_DAY = functools.partial(wl.scale, hours=3.0, fleet_scale=30.0, diurnal=True)
CONFIG = EngineConfig()


def test_the_halves_split_the_trace_in_time_and_keep_every_request_once() -> None:
    trace = wl.load("azure-conv")
    first, second = wl.halves(trace)
    middle = trace.duration_s / 2
    assert first.size + second.size == trace.size
    assert first.size > 0
    assert second.size > 0
    assert first.duration_s + second.duration_s == pytest.approx(trace.duration_s)
    assert first.arrival_s.max() < middle <= second.arrival_s.min() + middle
    assert second.arrival_s.min() >= 0
    assert second.arrival_s.max() < second.duration_s
    # The second half is the original's tail, shifted to start at 0, tokens and prefix hits alongside.
    np.testing.assert_allclose(second.arrival_s + middle, trace.arrival_s[first.size :])
    for column in ("input_tokens", "output_tokens", "cached_tokens"):
        joined = np.concatenate([getattr(first, column), getattr(second, column)])
        np.testing.assert_array_equal(joined, getattr(trace, column))
    assert (first.name, second.name) == ("azure-conv (first half)", "azure-conv (second half)")


def test_a_trace_whose_requests_all_fall_in_one_half_cannot_be_split() -> None:
    lopsided = wl.Trace("t", np.array([0.0, 1.0]), np.ones(2), np.ones(2), np.zeros(2), duration_s=10.0)
    with pytest.raises(ValueError, match="all its requests arrive in one of them"):
        wl.halves(lopsided)


def _stress(workload: wl.Workload) -> Service:
    return derive(
        workload,
        load_gpu_perf(),
        prefill_gpus=["L20", "H20"],
        decode_gpus=["H20"],
        slo=Slo(tbt_s=0.05),
        model=ModelSpec(),
        gpus_per_instance=8,
        config=CONFIG,
    )


@functools.cache
def _days() -> tuple[wl.Workload, wl.Workload, Service]:
    first, second = wl.halves(wl.load("azure-conv"))
    train, test = _DAY(first), _DAY(second)
    return train, test, _stress(train)


def test_a_whole_spec_document_runs_as_a_lane_of_its_own() -> None:
    _, test, service = _days()
    # A headroom of 0.95 and no latency guard (curation keeps one, a spec written by hand may
    # not): a merge onto the default spec would bring the guard back.
    levels = dict(zip((k.name for k in KNOBS), DEFAULTS, strict=True)) | {"headroom": 0.95}
    document = apply(spec_document(service, CONFIG.interval_s), tuple(levels.values()), service)
    del document["behavior"]["latencyGuard"]
    study = run_study(test, service, ["heteroscale"], CONFIG, documents={"leaner": document})
    assert list(study.runs) == ["heteroscale", "leaner"]
    leaner, defaults = study.runs["leaner"], study.runs["heteroscale"]
    assert leaner.policy == "leaner"
    assert leaner.traj.decode_instances.mean() < defaults.traj.decode_instances.mean()


def test_the_held_out_study_runs_the_curated_spec_on_the_second_day_configured_from_the_first() -> None:
    train, test, service = _days()
    cluster = simulated_inventory(_stress(test))
    result = held_out(train, test, service, cluster, CONFIG, ["heteroscale", "oracle"], candidates=8, seed=0, workers=2)
    # On this day the search moves off the defaults, so the curated lane can tell them apart.
    assert result.curation.choice.candidate != result.curation.defaults.candidate
    study = result.study
    assert list(study.runs) == ["heteroscale", "oracle", CURATED]
    # Configured from the training day: the same service (ratio, targets, peaks), not the test day's;
    # on the cluster sized for the day it serves.
    assert study.service is service
    assert study.inventory is cluster
    # Judged on the test day: every lane served the second half's requests, not the first's.
    for run in study.runs.values():
        assert run.weight.sum() == pytest.approx(test.weight.sum())
    assert test.weight.sum() != pytest.approx(train.weight.sum())
    # The curated lane is the curation's choice, run on the test day.
    again = run_study(
        test, service, [], CONFIG, documents={"again": result.curation.choice.document}, inventory=cluster
    )
    # The verdict reads the lane against the others, and says so when it misses the SLO.
    [line] = [v for v in verdict(study) if v.startswith("HeteroScale with the spec curated")]
    assert f"{study.summaries[CURATED].gpu_hours:,.0f} GPU-h" in line
    assert ("misses the 99% SLO" in line) == (study.summaries[CURATED].slo_attainment < 0.99)
    missing = dataclasses.replace(study.summaries[CURATED], slo_attainment=0.975)
    [line] = [
        v
        for v in verdict(dataclasses.replace(study, summaries=study.summaries | {CURATED: missing}))
        if v.startswith("HeteroScale with the spec curated")
    ]
    assert "97.50% SLO" in line
    assert "misses the 99% SLO here" in line
    curated = study.runs[CURATED].traj.decode_instances
    np.testing.assert_array_equal(curated, again.runs["again"].traj.decode_instances)
    assert not np.array_equal(curated, study.runs["heteroscale"].traj.decode_instances)


def test_the_cli_reports_the_held_out_day_and_keeps_bursts_off_the_training_day(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["simulate", "--holdout", "--hours", "1", "--fleet-scale", "10", "--candidates", "2"]
    base += ["--policies", "heteroscale,static", "--workers", "1", "--no-progress"]
    assert main([*base, "--json", str(tmp_path / "plain.json")]) == 0
    out = capsys.readouterr().out
    assert "trace azure-conv (second half)" in out
    assert "from the stress test on azure-conv (first half)" in out
    assert "heteroscale-curated: chosen from" in out
    assert "HeteroScale with the spec curated on the other day" in out
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert plain["holdout"]["curated_on"] == "azure-conv (first half)"
    assert set(plain["policies"]) == {"heteroscale", "static", CURATED}

    assert main([*base, "--burst", "0.25,20,3", "--json", str(tmp_path / "burst.json")]) == 0
    capsys.readouterr()
    burst = json.loads((tmp_path / "burst.json").read_text())
    # The surge reached the held-out day only: the spec and everything it was sized from are the same.
    assert burst["service"] == plain["service"]
    assert burst["holdout"] == plain["holdout"]
    assert burst["policies"]["static"]["gpu_hours"] == plain["policies"]["static"]["gpu_hours"]
    assert burst["policies"]["static"]["slo_attainment"] < plain["policies"]["static"]["slo_attainment"]


def test_candidates_without_holdout_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--candidates", "3", "--no-progress"]) == 2
    assert "add --holdout, or drop it" in capsys.readouterr().err
