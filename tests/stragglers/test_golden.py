"""Golden tests: the three real traces against the StragglerAnalysis artifact's own results.

Expected figures are read from the bundled artifact JSON files, never typed in.
"""

from __future__ import annotations

import json

import pytest

from tests.stragglers.conftest import DATA, real_analysis

TRACES = ["AR", "SE", "ST"]


def expected(kind: str, name: str) -> dict:
    return json.loads((DATA / f"{kind}-{name}.json").read_text())


@pytest.mark.parametrize("name", TRACES)
def test_slowdown_and_replay_error(name: str) -> None:
    result, analysis = expected("result", name), real_analysis(name)
    assert analysis.replay.slowdown == pytest.approx(result["blocking_slowdown"], rel=0.01)
    assert analysis.replay.replay_error == pytest.approx(result["launch_slowdown"] - 1, abs=0.005)
    assert analysis.replay.replay_trusted


@pytest.mark.parametrize("name", TRACES)
def test_per_step_slowdown(name: str) -> None:
    result, analysis = expected("result", name), real_analysis(name)
    mine = dict(zip(analysis.replay.steps.tolist(), analysis.replay.step_slowdown, strict=True))
    for step, value in result["blocking_step_slowdown"].items():
        assert mine[int(step)] == pytest.approx(value, rel=0.01)


@pytest.mark.parametrize("name", TRACES)
@pytest.mark.parametrize(("key", "field"), [("by_stage", "by_stage"), ("by_dp_rank", "by_dp_rank")])
def test_attribution_by_stage_and_dp_rank(name: str, key: str, field: str) -> None:
    result, analysis = expected("result", name), real_analysis(name)
    mine = getattr(analysis.attribution, field)
    theirs = result[f"blocking_decompose_{key}"]
    assert len(mine) == len(theirs)
    for index, value in theirs.items():
        assert mine[int(index)] == pytest.approx(value, rel=0.01)


@pytest.mark.parametrize("name", TRACES)
def test_attribution_by_optype(name: str) -> None:
    result, analysis = expected("result", name), real_analysis(name)
    theirs = result["blocking_decompose_by_optype"]
    assert set(analysis.attribution.by_optype) == set(theirs)
    for optype, value in theirs.items():
        assert analysis.attribution.by_optype[optype] == pytest.approx(value, rel=0.01)


@pytest.mark.parametrize("name", TRACES)
def test_m_w_and_m_s(name: str) -> None:
    analysis = real_analysis(name)
    assert pytest.approx(expected("mw", name)["Mw"], abs=0.03) == analysis.attribution.M_W
    assert pytest.approx(expected("ms", name)["Ms"], abs=0.03) == analysis.attribution.M_S


@pytest.mark.parametrize(
    ("name", "causes"),
    [("AR", ["worker"]), ("ST", ["last_stage"]), ("SE", ["last_stage", "sequence_imbalance"])],
)
def test_root_causes(name: str, causes: list[str]) -> None:
    diagnosis = real_analysis(name).diagnosis
    assert diagnosis.straggling
    assert [str(c) for c in diagnosis.causes] == causes


def test_worker_problem_names_the_slowed_worker() -> None:
    # AR slowed one worker on purpose; the artifact's per-DP-rank and per-stage attribution both
    # point at DP rank 0, stage 0.
    result = expected("result", "AR")
    dp = max(result["blocking_decompose_by_dp_rank"], key=result["blocking_decompose_by_dp_rank"].get)
    stage = max(result["blocking_decompose_by_stage"], key=result["blocking_decompose_by_stage"].get)
    analysis = real_analysis("AR")
    assert analysis.diagnosis.suspect_workers == ((int(dp), int(stage)),)
    assert analysis.diagnosis.suspect_ranks == (int(analysis.ops.rank[int(dp), int(stage)]),)
