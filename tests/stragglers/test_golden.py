"""Golden tests: the three real traces against the StragglerAnalysis artifact's own results.

Expected figures are read from the bundled artifact JSON files, never typed in.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from heteroscale.stragglers.attribution import slowest
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
    assert pytest.approx(expected("mw", name)["Mw"], abs=1e-3) == analysis.attribution.M_W
    assert pytest.approx(expected("ms", name)["Ms"], abs=1e-3) == analysis.attribution.M_S


@pytest.mark.parametrize("name", TRACES)
def test_m_w_fixes_the_workers_the_artifact_ranks_slowest(name: str) -> None:
    # The artifact scores a worker min(S_dp, S_stage) from its published decomposition and fixes
    # the top 3% (rounded up), ties to the lower global rank.
    result, analysis = expected("result", name), real_analysis(name)
    by_dp = {int(k.split(",")[0]): v for k, v in result["blocking_decompose_by_dp_rank"].items()}
    by_stage = {int(k.split(",")[0]): v for k, v in result["blocking_decompose_by_stage"].items()}
    rank = analysis.rank
    scores = {int(rank[d, s]): min(by_dp[d], by_stage[s]) for d in by_dp for s in by_stage}
    count = -(-len(scores) * 3 // 100)
    theirs = sorted(scores, key=lambda r: (scores[r], -r), reverse=True)[:count]
    assert [int(rank[w]) for w in analysis.attribution.slowest_workers] == theirs


def test_ties_go_to_the_lower_global_rank() -> None:
    # As the artifact sorts: copies of one DP rank tie exactly, and only some may be fixed.
    scores = np.ones((10, 4))
    scores[[2, 5, 7], 1] = 1.2
    rank = np.arange(4)[None, :] * 10 + (9 - np.arange(10))[:, None]  # against DP rank order
    assert slowest(scores, rank) == ((7, 1), (5, 1))


@pytest.mark.parametrize("name", TRACES)
def test_m_w_what_if_fixes_the_workers_with_the_largest_own_slowdown(name: str) -> None:
    attr = real_analysis(name).attribution
    chosen = set(attr.slowest_workers_what_if)
    assert len(chosen) == len(attr.slowest_workers)
    others = [attr.by_worker[w] for w in np.ndindex(attr.by_worker.shape) if w not in chosen]
    assert min(attr.by_worker[w] for w in chosen) >= max(others)


def test_m_w_what_if_differs_where_a_dp_rank_is_slow_on_both_stages() -> None:
    # SE: S_dp counts a DP rank's workers on both stages, so min(S_dp, S_stage) ranks a worker of
    # DP rank 27 (slow a little on stage 0 too) above one of DP rank 10 that is slower on its own;
    # the per-worker what-if picks the latter, and fixing it explains more of the slowdown.
    attr = real_analysis("SE").attribution
    assert attr.slowest_workers != attr.slowest_workers_what_if
    assert attr.M_W_what_if > attr.M_W


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
    assert analysis.diagnosis.suspect_ranks == (int(analysis.rank[int(dp), int(stage)]),)
