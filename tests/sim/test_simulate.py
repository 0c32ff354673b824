"""Simulator tier: conservation, determinism, model sanity, CLI, and the policy orderings."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.cli import main
from heteroscale.placement import Inventory, RoleTargets, plan
from heteroscale.simulate import fabric, report
from heteroscale.simulate import placer as placer_module
from heteroscale.simulate import workload as wl
from heteroscale.simulate.catalog import DEFAULT_POLICIES
from heteroscale.simulate.engine import EngineConfig, run
from heteroscale.simulate.fabric import NODES_PER_S2, S2
from heteroscale.simulate.inventory import GPUS_PER_NODE, simulated_inventory
from heteroscale.simulate.perfmodel import InstanceModel, Layout, ModelSpec, kv_transfer_seconds
from heteroscale.simulate.placer import PAIRED, Placer
from heteroscale.simulate.policies import SimObservation
from heteroscale.simulate.service import METRIC_WINDOW_S, Service, adaptive_ratio, spec_document
from heteroscale.simulate.study import Study, run_study
from heteroscale.simulate.summary import gpu_hours, summarize
from heteroscale.simulate.verdict import verdict
from tests.sim import scenarios

PERF = scenarios.PERF


def _service(w: wl.Workload) -> Service:
    return scenarios.service("l20-prefill", w)


class _Schedule:
    """10 P + 2 D for the first half hour, then 20 P + 4 D."""

    name = "schedule"
    interval_s = 15.0
    paired = False

    def initial(self) -> tuple[int, int]:
        return 10, 2

    def decide(self, obs: SimObservation) -> tuple[int, int]:
        return (10, 2) if obs.now < 1800 else (20, 4)


def test_every_request_finishes_or_is_dropped_and_gpu_hours_integrate_instances() -> None:
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=2)
    svc = _service(w)
    cfg = EngineConfig()
    # A cluster sized for the schedule's own peak, so nothing is capped by placement here.
    inventory = simulated_inventory(dataclasses.replace(svc, static_peak=(20, 4)))
    r = run(w, svc, _Schedule(), cfg, inventory=inventory)
    assert not r.traj.unschedulable.any()
    s = summarize(r)
    assert s.requests == pytest.approx(w.weight.sum())
    assert r.weight[r.finished].sum() + s.dropped == pytest.approx(s.requests)
    assert np.isfinite(r.ttft_s[r.finished]).all()
    assert np.isinf(r.ttft_s[~r.finished]).all()
    horizon = r.steps * cfg.dt
    expected = (12 * 1800 + 24 * (horizon - 1800)) * 8 / 3600
    assert gpu_hours(r) == pytest.approx(expected)
    # The new instances take the start-up delay to become ready.
    startup = svc.instance(Role.PREFILL).startup_seconds
    s_up = int(1800 / cfg.dt)
    assert r.traj.prefill_ready[s_up] == 10
    assert r.traj.prefill_instances[s_up] == 20
    assert r.traj.prefill_ready[s_up + math.ceil(startup / cfg.dt) + 1] == 20


def test_overload_drops_requests_it_cannot_finish() -> None:
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=50)
    r = run(w, _service(w), _Schedule(), EngineConfig())
    s = summarize(r)
    assert s.dropped > 0
    assert r.weight[r.finished].sum() + s.dropped == pytest.approx(s.requests)


def test_workload_scaling() -> None:
    base = wl.load("azure-conv")
    fast = wl.scale(base, hours=base.duration_s / 3600 / 4, time_scale=4)
    assert fast.size == pytest.approx(base.size, rel=0.01)
    day = wl.scale(base, hours=24, diurnal=True, seed=1)
    per_hour = day.offered(np.ones(base.size), 3600.0)
    assert per_hour[14] > 3 * per_hour[2]  # peak at 14:00, trough at 02:00
    sampled = np.bincount((day.arrival_s // 3600).astype(int), weights=day.weight, minlength=24)
    assert sampled.sum() == pytest.approx(per_hour.sum(), rel=0.01)  # the sample stands for everyone
    assert wl.scale(base, hours=2, seed=3).arrival_s.tolist() == wl.scale(base, hours=2, seed=3).arrival_s.tolist()
    big = wl.scale(base, hours=base.duration_s / 3600, fleet_scale=100.5)
    assert big.copies == 101
    assert big.offered(np.ones(base.size), 60.0).sum() == pytest.approx(100.5 * base.size, rel=0.01)


def test_fleet_load_fluctuates_like_independent_users() -> None:
    """A fleet X times the trace's is X independent populations: per-minute offered prefill work
    has a coefficient of variation falling like 1/sqrt(X), so CV(4) / CV(64) = 4.

    Tolerance from the same theory: the sum's variance over one tile is X*var plus, for every pair
    of copies, the trace's autocovariance at their (uniformly random) lag. Averaged over random
    lags that term is ~0, with relative standard deviation sqrt(2 * mean(rho^2) / tiles) on the
    variance (rho: the trace's circular autocorrelation of per-minute work); the CV ratio's
    relative error is sqrt(2)/2 of that, and we allow three standard deviations.
    """
    base = wl.load("azure-conv")
    work = InstanceModel(PERF["L20"], ModelSpec(), Layout(1, 8)).prefill_seconds(
        base.input_tokens - base.cached_tokens, base.cached_tokens
    )
    hours = 24
    cv = {}
    for x in (4, 64):
        per_minute = wl.scale(base, hours=hours, fleet_scale=x, seed=7).offered(work, 60.0)
        cv[x] = per_minute.std() / per_minute.mean()
    minutes = np.bincount((base.arrival_s // 60).astype(int), weights=work)[: int(base.duration_s // 60)]
    dev = minutes - minutes.mean()
    rho = np.array([dev @ np.roll(dev, k) for k in range(dev.size)]) / (dev @ dev)
    tiles = hours * 3600 / base.duration_s
    tolerance = 3 * math.sqrt(2) / 2 * math.sqrt(2 * np.mean(rho**2) / tiles)
    assert cv[4] / cv[64] == pytest.approx(4.0, rel=tolerance)


def test_mooncake_prefix_hits_reduce_prefill_work() -> None:
    m = wl.load("mooncake")
    assert (m.cached_tokens > 0).any()
    assert (m.cached_tokens < m.input_tokens).all()
    share = m.cached_tokens.sum() / m.input_tokens.sum()
    assert 0.1 < share < 0.5  # the README's block reuse is 36.6%, the prefix-only share is lower or equal


def test_perf_model_is_monotone_and_ordered_by_hardware() -> None:
    model = ModelSpec()
    h20, l20, h100 = (InstanceModel(PERF[g], model, Layout(8, 1)) for g in ("H20", "L20", "H100"))
    steps = h20.decode_step_seconds(np.array([1.0, 16, 64, 256]), 2000)
    assert (np.diff(steps) > 0).all()
    tokens, zero = np.array([4096.0]), np.array([0.0])
    assert (
        h100.prefill_seconds(tokens, zero)[0]
        < h20.prefill_seconds(tokens, zero)[0]
        < l20.prefill_seconds(tokens, zero)[0]
    )
    assert h20.prefill_seconds(tokens, np.array([8192.0]))[0] > h20.prefill_seconds(tokens, zero)[0]
    assert h20.kv_capacity_tokens > h100.kv_capacity_tokens > l20.kv_capacity_tokens > 0
    assert kv_transfer_seconds(model, 400, tokens, 1.0)[0] > kv_transfer_seconds(model, 400, tokens, 0.0)[0]


def test_cli_is_deterministic_and_writes_the_json_shape(tmp_path: Path) -> None:
    args = ["simulate", "--trace", "azure-code", "--hours", "0.5", "--fleet-scale", "5", "--no-progress"]
    assert main([*args, "--json", str(tmp_path / "a.json"), "--out", str(tmp_path / "png")]) == 0
    assert main([*args, "--json", str(tmp_path / "b.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    assert a == json.loads((tmp_path / "b.json").read_text())
    for name in DEFAULT_POLICIES:
        assert set(a["policies"][name]) >= {
            "gpu_hours",
            "avg_utilization",
            "slo_attainment",
            "ttft_p99",
            "tbt_p99",
            "scale_actions",
        }
    assert "decode_tps" in a["signals"]
    assert a["verdict"]
    assert len(list((tmp_path / "png").glob("*.png"))) == 6
    assert main(["simulate", "--policies", "magic"]) == 2


SHORT_RUN = ["simulate", "--trace", "azure-code", "--hours", "0.25", "--fleet-scale", "5", "--no-progress"]


def test_cli_json_dash_is_stdout_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SHORT_RUN, "--policies", "heteroscale", "--json", "-"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # nothing but the JSON on stdout
    assert set(document["policies"]) == {"heteroscale"}
    assert "GPU-h" in captured.err, "the table goes to stderr"
    assert not Path("-").exists()


def test_cli_out_that_cannot_be_a_folder_is_one_line_before_simulating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main([*SHORT_RUN, "--out", str(blocker / "png")]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert f"cannot write --out into {blocker / 'png'}" in captured.err
    assert captured.out == "", "nothing simulated"


def _spec(svc: Service) -> PDServingGroupSpec:
    return PDServingGroupSpec.model_validate(spec_document(svc, 15.0))


def test_heteroscale_is_placed_by_the_real_planner_in_pairs_that_grow_and_shrink() -> None:
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=50)
    svc = _service(w)
    spec = _spec(svc)
    inventory = simulated_inventory(svc)
    placer = Placer(inventory, spec, paired=True)
    p, d = svc.ratio
    first = placer.place(3 * p, 3 * d)
    assert first.groups == plan(inventory, [], RoleTargets(3 * p, 3 * d), spec, PAIRED).groups
    names = {g.name for g in first.groups}
    for k in (5, 2, 6):
        placed = placer.place(k * p, k * d)
        assert placed.unschedulable == 0
        assert sum(placed.counts[Role.PREFILL].values()) == k * p
        assert sum(placed.counts[Role.DECODE].values()) == k * d
        by_group: dict[str, set[str]] = {}
        for g in placed.groups:
            by_group.setdefault(g.group, set()).add(g.domain)
        assert all(len(domains) == 1 for domains in by_group.values())  # P and D of a group share an S2
        assert placed.cross_domain_fraction == 0.0
    # Groups carried from plan to plan keep their names: they grew and shrank, not re-planned.
    assert names & {g.name for g in placed.groups}


def test_planned_instances_are_bound_to_nodes_of_their_groups_type_and_domain() -> None:
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=50)
    svc = _service(w)
    inventory = simulated_inventory(svc)
    planned_once = plan(inventory, [], RoleTargets(5 * svc.ratio[0], 5 * svc.ratio[1]), _spec(svc), PAIRED)
    bound = placer_module.bound_inventory(inventory, [planned_once])
    planned: Counter[tuple[str, str]] = Counter()
    for g in planned_once.groups:
        assert bound.bound_instances("", g.name) == g.replicas
        planned[g.gpu_type, g.domain] += g.replicas * g.gpus_per_instance
    requested: Counter[tuple[str, str]] = Counter()
    for n in bound.nodes:
        assert n.requested <= n.allocatable
        if n.requested:
            requested[n.gpu_type, str(n.tiers[-1])] += n.requested
    assert requested == planned


def test_a_running_group_whose_follower_share_no_longer_fits_keeps_its_instances() -> None:
    """Targets at a ratio whose follower share no S2 holds (an adaptive ratio past the fabric):
    the planner starts no new group for them, but the groups already running keep their bound
    instances with what fits of the follower, as in the operator. (Before the simulator bound
    its instances to nodes, every group was dropped and the fleet went to zero.)"""
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=50)
    svc = _service(w)
    inventory = simulated_inventory(svc)
    p, d = svc.ratio
    too_many = NODES_PER_S2 + 1  # prefill per decode instance: more than one S2 has nodes
    fresh = Placer(inventory, _spec(svc), paired=True).place(2 * too_many, 2)
    assert sum(fresh.counts[Role.DECODE].values()) == 0, "no new group is started without its follower"
    placer = Placer(inventory, _spec(svc), paired=True)
    placer.place(3 * p, 3 * d)
    kept = placer.place(2 * too_many, 2)
    assert sum(kept.counts[Role.DECODE].values()) == 2
    assert 0 < sum(kept.counts[Role.PREFILL].values()) < 2 * too_many
    assert kept.unschedulable > 0


def test_an_adaptive_band_stops_at_the_prefill_share_one_s2_holds() -> None:
    """A band past what one S2 holds beside a decode instance asks for groups placement cannot
    make; a service at cluster scope has no such limit."""
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=50)
    pinned = dataclasses.replace(_service(w), ratio=(28, 1))
    assert pinned.colocate
    top = fabric.prefill_beside_one_decode(pinned.gpus_per_instance)
    assert adaptive_ratio(pinned)["maxRatio"] == top < 2 * 28
    assert adaptive_ratio(dataclasses.replace(pinned, ratio=(7, 2)))["maxRatio"] == 7.0
    assert adaptive_ratio(dataclasses.replace(pinned, colocate=""))["maxRatio"] == 56.0


def test_placement_runs_only_when_the_targets_change(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = placer_module.plan_many

    def counting(inventory: Inventory, requests: list[placer_module.PlanRequest]) -> list[placer_module.Plan]:
        calls.append([r.targets for r in requests])
        return real(inventory, requests)

    monkeypatch.setattr(placer_module, "plan_many", counting)
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=2)
    run(w, _service(w), _Schedule(), EngineConfig())
    # _Schedule asks for two target pairs; each call plans both pools (one PDServingGroup each).
    assert calls == [[RoleTargets(10, 0), RoleTargets(0, 2)], [RoleTargets(20, 0), RoleTargets(0, 4)]]


def test_a_too_small_cluster_caps_instances_and_counts_the_unschedulable() -> None:
    w = wl.scale(wl.load("azure-conv"), hours=1, fleet_scale=2)
    svc = _service(w)
    full = simulated_inventory(svc)
    nodes = 16  # fewer than the 24 instances _Schedule asks for in its second half hour
    small = Inventory(nodes=full.nodes[:nodes], bound={}, topology=full.topology)
    r = run(w, svc, _Schedule(), EngineConfig(), inventory=small)
    held = r.traj.prefill_instances + r.traj.decode_instances
    assert held.max() <= nodes * GPUS_PER_NODE // r.gpus_per_instance
    assert r.traj.unschedulable.max() >= 24 - nodes
    assert summarize(r).unschedulable_instance_steps == int(r.traj.unschedulable.sum()) > 0


TRACES = ("azure-conv", "mooncake", "azure-code")
#: Scenario A's three days and B's conv day (B's other days are in the docs: each day costs a pass).
DAYS = [("l20-prefill", t) for t in TRACES] + [("h800-prefill", "azure-conv")]
DAY_POLICIES = ["heteroscale", "heteroscale-adaptive", "hpa-util", "independent", "static", "oracle"]


@functools.cache
def _day(scenario: str, trace: str) -> tuple[Service, Study]:
    """A docs run: 24 h diurnal day of one scenario."""
    w = scenarios.day(scenario, wl.load(trace))
    svc = scenarios.service(scenario, w)
    return svc, run_study(w, svc, DAY_POLICIES, EngineConfig(), workers=2)


def test_the_oracle_searched_in_its_own_process_finds_what_it_finds_in_the_policies_pass() -> None:
    w = wl.scale(wl.load("azure-conv"), hours=2, fleet_scale=50, diurnal=True, start_hour=10)
    svc = _service(w)
    together = run_study(w, svc, ["heteroscale", "oracle"], EngineConfig(), workers=1)
    apart = run_study(w, svc, ["heteroscale", "oracle"], EngineConfig(), workers=2)
    assert together.oracle is not None
    assert apart.oracle is not None
    assert apart.oracle.tried == together.oracle.tried, "the same search, round by round"
    assert apart.summaries == together.summaries


def _measured(scenario: str, trace: str, reason: str) -> object:
    return pytest.param(scenario, trace, marks=pytest.mark.xfail(strict=True, reason=reason))


def _days(**measured: str) -> list[object]:
    """DAYS, those named ``<scenario>/<trace>`` as strict xfails with their measured reason."""
    return [_measured(sc, t, measured[f"{sc}/{t}"]) if f"{sc}/{t}" in measured else (sc, t) for sc, t in DAYS]


@pytest.mark.parametrize(("scenario", "trace"), DAYS)
def test_no_policy_meeting_the_slo_uses_fewer_gpu_hours_than_the_oracle(scenario: str, trace: str) -> None:
    s = _day(scenario, trace)[1].summaries
    assert s["oracle"].slo_attainment >= 0.99
    for name, summary in s.items():
        if summary.slo_attainment >= 0.99:
            assert s["oracle"].gpu_hours <= summary.gpu_hours, name


@pytest.mark.parametrize(("scenario", "trace"), DAYS)
def test_the_oracle_is_the_least_provisioning_it_tried_that_meets_the_slo(scenario: str, trace: str) -> None:
    """The search brackets its answer: it is the cheapest candidate that met 99%, and a cheaper one
    missed, so the bound is not loose by construction."""
    study = _day(scenario, trace)[1]
    found = study.oracle
    assert found is not None
    met = [t for t in found.tried if t.slo_attainment >= 0.99]
    assert min(t.gpu_hours for t in met) == pytest.approx(study.summaries["oracle"].gpu_hours)
    assert any(t.slo_attainment < 0.99 and t.gpu_hours < study.summaries["oracle"].gpu_hours for t in found.tried)


@pytest.mark.parametrize(("scenario", "trace"), DAYS)
def test_a_service_whose_smallest_group_exceeds_an_s2_is_relaxed_to_cluster_scope(scenario: str, trace: str) -> None:
    svc = _day(scenario, trace)[0]
    p, d = svc.ratio
    smallest = 1 + math.ceil(p / d)  # one decode instance and its prefill share, one node each
    assert svc.colocate == ("" if smallest > NODES_PER_S2 else S2)
    assert _spec(svc).topology.colocate == svc.colocate


@pytest.mark.parametrize(("scenario", "trace"), DAYS)
def test_every_policy_fits_the_cluster_and_heteroscale_keeps_kv_in_its_domain(scenario: str, trace: str) -> None:
    svc, study = _day(scenario, trace)
    gpus = sum(n.allocatable for n in study.inventory.nodes)
    for name, r in study.runs.items():
        if name != "oracle":  # not placed: it bounds any placement
            assert ((r.traj.prefill_instances + r.traj.decode_instances) * r.gpus_per_instance).max() <= gpus
    assert svc.colocate  # every day's smallest group fits an S2 under the calibrated model
    for paired in ("heteroscale", "heteroscale-adaptive"):
        assert (study.runs[paired].traj.cross_domain == 0).all(), paired
    # Pools placed on their own land where placement keeps mixed domains free, away from each other.
    assert all(study.summaries[p].cross_domain_fraction > 0 for p in ("hpa-util", "independent", "static"))


@pytest.mark.parametrize(("scenario", "trace"), DAYS)
def test_heteroscale_meets_the_slo_on_a_fleet_of_hundreds(scenario: str, trace: str) -> None:
    svc, study = _day(scenario, trace)
    assert sum(svc.static_peak) >= 100
    assert study.summaries["heteroscale"].slo_attainment >= 0.99


@pytest.mark.parametrize(("scenario", "trace"), DAYS)
def test_heteroscale_uses_fewer_gpu_hours_than_static_peak(scenario: str, trace: str) -> None:
    s = _day(scenario, trace)[1].summaries
    assert s["static"].slo_attainment >= 0.99
    assert s["heteroscale"].gpu_hours < s["static"].gpu_hours


@pytest.mark.parametrize(
    ("scenario", "trace"),
    _days(
        **{
            "l20-prefill/azure-code": "measured 13.6k vs 11.8k GPU-h: at 199:7 every decode instance brings 28 "
            "prefill instances, so prefill moves in steps of a quarter of its fleet",
        }
    ),
)
def test_heteroscale_uses_fewer_gpu_hours_than_hpa_on_utilisation(scenario: str, trace: str) -> None:
    s = _day(scenario, trace)[1].summaries
    assert s["heteroscale"].slo_attainment >= 0.99
    assert s["heteroscale"].gpu_hours < s["hpa-util"].gpu_hours


@pytest.mark.parametrize(
    ("scenario", "trace"),
    _days(
        **{
            "l20-prefill/azure-conv": "measured 1.19x (13.3k vs 11.2k GPU-h): 20% target headroom against an "
            "oracle that knows the future",
            "l20-prefill/azure-code": "measured 1.31x (13.6k vs 10.3k GPU-h): prefill steps of 28 instances",
            "h800-prefill/azure-conv": "measured 1.23x (21.7k vs 17.7k GPU-h): decode-heavy, decode held at 80% "
            "of its SLO throughput",
        }
    ),
)
def test_heteroscale_is_within_115_percent_of_the_oracle(scenario: str, trace: str) -> None:
    s = _day(scenario, trace)[1].summaries
    assert s["heteroscale"].gpu_hours <= 1.15 * s["oracle"].gpu_hours


@pytest.mark.parametrize(
    ("scenario", "trace"),
    _days(
        **{
            "l20-prefill/azure-code": "measured 11,358 vs 11,286 GPU-h (+0.6%) at 99.45% SLO: the 199:7 ratio's "
            "rounding, which the band takes most of back",
            "h800-prefill/azure-conv": "measured 21,622 vs 21,573 GPU-h (+0.2%): its prefill scale-in waits out "
            "the stabilization window, as decode's does",
        }
    ),
)
def test_the_adaptive_ratio_uses_no_more_than_independent_pd(scenario: str, trace: str) -> None:
    s = _day(scenario, trace)[1].summaries
    assert s["heteroscale-adaptive"].slo_attainment >= 0.99
    assert s["heteroscale-adaptive"].gpu_hours <= s["independent"].gpu_hours


def test_the_verdict_against_the_oracle_gives_each_roles_excess_read_off_the_runs() -> None:
    study = _day("h800-prefill", "azure-conv")[1]
    [line] = [line for line in verdict(study) if line.startswith("vs the oracle")]

    def role_hours(policy: str, instances: str) -> float:
        r = study.runs[policy]
        return float(getattr(r.traj, instances).sum()) * r.gpus_per_instance * r.dt / 3600

    for role in ("prefill", "decode"):
        ours, oracle = role_hours("heteroscale", f"{role}_instances"), role_hours("oracle", f"{role}_instances")
        assert f"{role} {(ours / oracle - 1) * 100:+.0f}%" in line
    assert "fixed ratio" not in line  # the runs do not show the ratio as a cause (bench_gap: within 1%)


@pytest.mark.parametrize(
    ("scenario", "trace"),
    _days(
        **{
            "l20-prefill/mooncake": "measured 18:1: 12k-token prompts on L20 (119.5 BF16 TFLOPS) against "
            "343-token answers on H20",
            "l20-prefill/azure-code": "measured 199:7: 2k-token prompts against 28-token answers",
        }
    ),
)
def test_the_stress_test_ratio_is_in_the_papers_production_range(scenario: str, trace: str) -> None:
    svc = _day(scenario, trace)[0]
    assert not svc.ratio_warning
    p, d = svc.ratio
    assert 1 / 5 <= p / d <= 9


@pytest.mark.parametrize(("scenario", "trace"), DAYS[:1])
def test_every_heteroscale_tick_is_counted_by_its_reason_in_the_report(scenario: str, trace: str) -> None:
    """The table says why HeteroScale did what it did: one reason per tick, as the operator's
    status.lastDecision.reason; the baselines have no reason codes."""
    study = _day(scenario, trace)[1]
    run, config = study.runs["heteroscale"], EngineConfig()
    window, tick = round(METRIC_WINDOW_S / config.dt), round(config.interval_s / config.dt)
    assert sum(run.decisions.values()) == len(range(window, run.steps, tick))
    assert run.decisions.get("WithinTolerance", 0) > 0
    assert study.runs["hpa-util"].decisions == {}
    assert report.document(study)["policies"]["heteroscale"]["decisions"] == run.decisions
    line = next(x for x in report.table(study).splitlines() if x.startswith("decisions of heteroscale: "))
    most = max(run.decisions, key=lambda reason: run.decisions[reason])
    assert line.startswith(f"decisions of heteroscale: {most} {run.decisions[most]:,}")


def test_decode_gpu_utilisation_is_a_poor_signal() -> None:
    """As engines report it (whole percent), decode utilisation does not move with the need; decode
    TPS does (the paper's signal study)."""
    signals = _day("l20-prefill", "azure-conv")[1].signals
    assert signals["decode_tps"]["correlation"] > 0.9 > signals["decode_gpu_utilization"]["correlation"]
    assert signals["decode_tps"]["snr"] > 10 > signals["decode_gpu_utilization"]["snr"]
    assert signals["ttft"]["snr"] < signals["decode_tps"]["snr"]
