"""The pure parts of curation: the knobs and the specs they make, the search's candidates, the
objective, and the workload made from a request history."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from heteroscale.api.crd import build_crd
from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.curate import knobs, search
from heteroscale.curate.knobs import DEFAULTS, KNOBS
from heteroscale.curate.objective import Score, best, rank
from heteroscale.curate.profile import History, LengthHistogram, to_workload
from heteroscale.simulate import workload as wl
from heteroscale.simulate.heteroscale_adapter import HeteroScale
from heteroscale.simulate.perfmodel import ModelSpec, load_gpu_perf
from heteroscale.simulate.service import Service, Slo, spec_document
from heteroscale.simulate.stresstest import derive
from tests.k8s_schema import validate


@cache
def _service() -> Service:
    workload = wl.scale(wl.load("azure-conv"), hours=0.5, fleet_scale=4)
    return derive(
        workload,
        load_gpu_perf(),
        prefill_gpus=["L20", "H20"],
        decode_gpus=["H20"],
        slo=Slo(),
        model=ModelSpec(),
        gpus_per_instance=8,
    )


def test_the_defaults_are_the_simulators_own_heteroscale_spec() -> None:
    """The defaults candidate changes nothing in the spec the simulator runs as `heteroscale`, so
    'never worse than the defaults' compares with what `heteroscale simulate` reports."""
    document = spec_document(_service(), 15.0)
    assert knobs.apply(document, DEFAULTS, _service()) == document


def test_every_level_of_every_knob_makes_a_spec_the_api_and_the_crd_accept() -> None:
    service = _service()
    document = spec_document(service, 15.0)
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    candidates = [c for _, c in search.depth(DEFAULTS)] + search.breadth(20, seed=3)
    for spec in (knobs.apply(document, c, service) for c in candidates):
        PDServingGroupSpec.model_validate(spec)
        assert validate(schema, spec) == []


def test_a_headroom_scales_the_decode_targets_and_a_floor_follows_the_static_peak() -> None:
    service = _service()
    levels = dict(zip([k.name for k in KNOBS], DEFAULTS, strict=True))
    levels |= {"headroom": 0.9, "min_decode": 0.5, "latency_guard": "early", "max_replicas": 1.25}
    spec = knobs.apply(spec_document(service, 15.0), tuple(levels.values()), service)
    for gpu, target in service.decode_target_tps.items():
        assert spec["decode"]["targetTPSPerInstance"][gpu] == pytest.approx(target * 0.9 / 0.8, abs=0.05)
    assert spec["decode"]["minReplicas"] == math.ceil(0.5 * service.static_peak[1])
    assert spec["decode"]["maxReplicas"] == math.ceil(1.25 * service.static_peak[1])
    assert spec["behavior"]["latencyGuard"]["tiers"] == knobs.GUARD_TIERS["early"]


def test_an_adaptive_ratio_is_the_simulators_adaptive_lane_at_the_candidates_headroom() -> None:
    """At the default headroom the adaptive level is exactly `heteroscale-adaptive`'s ratio block;
    another headroom moves its prefill target as it moves the decode targets."""
    service = _service()
    levels = dict(zip([k.name for k in KNOBS], DEFAULTS, strict=True)) | {"ratio": "adaptive"}
    at_default = knobs.apply(spec_document(service, 15.0), tuple(levels.values()), service)
    assert PDServingGroupSpec.model_validate(at_default) == HeteroScale(service, 15.0, (1, 1), adaptive=True).spec
    leaner = knobs.apply(spec_document(service, 15.0), tuple((levels | {"headroom": 0.9}).values()), service)
    block = leaner["ratio"]["adaptive"]
    preferred = service.prefill_target_tps[service.preferred_gpu(Role.PREFILL)]
    assert block["prefillTargetTPSPerInstance"] == pytest.approx(preferred * 0.9 / 0.8, abs=0.05)
    ratio = service.ratio[0] / service.ratio[1]
    assert (block["minRatio"], block["maxRatio"]) == (round(0.5 * ratio, 3), round(2.0 * ratio, 3))
    assert "adaptive" not in knobs.apply(spec_document(service, 15.0), DEFAULTS, service)["ratio"]


def test_the_first_round_starts_with_the_defaults_and_is_seeded() -> None:
    first = search.breadth(30, seed=7)
    assert first[0] == DEFAULTS
    assert len(set(first)) == 30
    assert first == search.breadth(30, seed=7)
    assert first != search.breadth(30, seed=8)
    for candidate in first:
        assert all(level in knob.levels for level, knob in zip(candidate, KNOBS, strict=True))


def test_the_second_round_moves_one_knob_at_a_time_through_all_its_levels() -> None:
    base = search.breadth(2, seed=1)[1]
    moved = search.depth(base)
    assert len(moved) == sum(len(k.levels) - 1 for k in KNOBS)
    for k, candidate in moved:
        differs = [i for i in range(len(KNOBS)) if candidate[i] != base[i]]
        assert differs == [k]


@st.composite
def scores(draw: st.DrawFn) -> Score:
    attainment = draw(st.floats(0, 1))
    return Score(
        gpu_hours=draw(st.floats(1, 1e5)),
        slo_attainment=attainment,
        scale_actions=draw(st.integers(0, 1000)),
        slo_attainment_low=draw(st.floats(0, attainment)),
    )


@given(st.lists(scores(), min_size=1, max_size=30))
def test_the_choice_is_never_worse_than_the_first_candidate(candidates: list[Score]) -> None:
    chosen = candidates[best(candidates, 0.99)]
    defaults = candidates[0]
    assert rank(chosen, 0.99) <= rank(defaults, 0.99)
    if defaults.assured(0.99):
        assert chosen.assured(0.99)
        assert chosen.gpu_hours <= defaults.gpu_hours
    else:
        assert chosen.assured(0.99) or chosen.slo_attainment_low >= defaults.slo_attainment_low


def test_the_objective_prefers_meeting_the_slo_with_confidence_then_gpu_hours_then_fewer_actions() -> None:
    cheap_miss = Score(10, 0.98, 0, 0.97)
    dear_hit = Score(20, 0.995, 9, 0.993)
    same_hit_fewer = Score(20, 0.995, 3, 0.991)
    assert best([cheap_miss, dear_hit, same_hit_fewer], 0.99) == 2
    assert best([Score(5, 0.5, 0, 0.4), Score(9, 0.7, 0, 0.6)], 0.99) == 1
    assert best([Score(7, 1.0, 2, 1.0), Score(7, 1.0, 2, 1.0)], 0.99) == 0
    # A cheaper candidate that meets the target on the day but not with confidence loses to a
    # dearer one that does; among those that do not, the higher bound wins, not the attainment.
    lucky = Score(10, 0.992, 0, 0.985)
    assert best([lucky, dear_hit], 0.99) == 1
    assert best([lucky, Score(12, 0.991, 0, 0.988)], 0.99) == 1


def _histogram() -> LengthHistogram:
    bounds = {1.0: 0.0, 10.0: 100.0, 100.0: 400.0, 1000.0: 900.0, math.inf: 1000.0}
    return LengthHistogram.from_buckets(bounds, "test")


def test_lengths_drawn_from_a_histogram_fall_in_its_buckets_in_its_shares() -> None:
    histogram = _histogram()
    lengths = histogram.sample(200_000, np.random.default_rng(0))
    assert lengths.min() >= 1
    counts, _ = np.histogram(lengths - 0.5, bins=[-np.inf, 1, 10, 100, 1000, np.inf])
    # Beyond the last finite bound (10% here): put at it, so in its bucket.
    np.testing.assert_allclose(counts / lengths.size, [0.0, 0.1, 0.3, 0.5 + 0.1, 0.0], atol=0.005)
    assert (lengths == 1000).mean() == pytest.approx(0.1, abs=0.005)


def test_an_empty_histogram_says_so() -> None:
    with pytest.raises(ValueError, match="prompt: no requests observed in the range"):
        LengthHistogram.from_buckets({10.0: 0.0, math.inf: 0.0}, "prompt")
    with pytest.raises(ValueError, match="not a Prometheus histogram"):
        LengthHistogram.from_buckets({10.0: 3.0}, "prompt")


def test_a_history_becomes_a_workload_with_its_requests_at_its_rate() -> None:
    rate = np.concatenate([np.full(60, 2.0), np.full(60, 12.0), np.full(60, 6.0)])
    history = History("serving/chat", 0.0, 60.0, rate, _histogram(), _histogram())
    workload = to_workload(history, seed=4)
    assert workload.duration_s == 3 * 3600
    per_hour = workload.offered(np.ones(workload.trace.size), 3600.0)
    np.testing.assert_allclose(per_hour, [2 * 3600, 12 * 3600, 6 * 3600], rtol=0.03)
    assert float(workload.weight.sum()) == pytest.approx(history.requests, rel=0.03)
    with pytest.raises(ValueError, match="no requests in the range"):
        to_workload(History("serving/chat", 0.0, 60.0, np.zeros(10), _histogram(), _histogram()), seed=0)
