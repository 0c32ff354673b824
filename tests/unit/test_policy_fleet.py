"""Scale to and from zero, stuck pods and manual edits: a table per rule, and their invariants."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heteroscale.api.enums import HOLD_REASONS, Reason
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import ManualHold, PolicyState, Recommendation
from heteroscale.policy import Decision, Observation, PoolObservation, decide
from heteroscale.policy.observation import ManualEdit
from tests.specs import merge
from tests.unit.test_policy import DAMPED, NOW, run
from tests.unit.test_policy_properties import specs as base_specs
from tests.unit.test_policy_schedules import problems

ACTIVATION = 'sum(rate(gateway_requests_total{namespace="{namespace}",service="chat"}[{window}]))'
ZERO: dict[str, Any] = {
    "decode": {"minReplicas": 0},
    "prefill": {"minReplicas": 0},
    "behavior": {
        "zeroTrafficReadings": 3,
        "scaleToZero": {"idleSeconds": 120, "activationQuery": ACTIVATION, "activationThreshold": 0.5},
    },
}


def pools(
    prefill: int, decode: int, *, starting: tuple[int, int] = (0, 0), stuck: tuple[int, int] = (0, 0)
) -> tuple[PoolObservation, PoolObservation]:
    (ps, ds), (pk, dk) = starting, stuck
    return (
        PoolObservation(prefill, prefill - ps - pk, ps, {}, pk),
        PoolObservation(decode, decode - ds - dk, ds, {"H20": decode}, dk),
    )


def seen(
    tps: float | None,
    prefill: int,
    decode: int,
    *,
    activation: float | None = None,
    starting: tuple[int, int] = (0, 0),
    stuck: tuple[int, int] = (0, 0),
    edit: ManualEdit | None = None,
) -> Observation:
    p, d = pools(prefill, decode, starting=starting, stuck=stuck)
    return Observation(tps, 1.0, p, d, activation=activation, manual_edit=edit)


# --- The spec: refused by the models and the API server alike -------------------------------

# (override, field path, words, also refused by the CRD schema)
BAD: list[tuple[str, dict[str, Any], str, str, bool]] = [
    ("decode 0 without activation", {"decode": {"minReplicas": 0}}, "spec", "needs behavior.scaleToZero", True),
    (
        "zero with minimums 1",
        {"behavior": ZERO["behavior"]},
        "spec",
        "needs decode.minReplicas and prefill.minReplicas 0",
        True,
    ),
    (
        "zero with prefill minimum 1",
        {**ZERO, "prefill": {"minReplicas": 1}},
        "spec",
        "needs decode.minReplicas and prefill.minReplicas 0",
        True,
    ),
    (
        "activation on pods",
        merge(
            ZERO, {"behavior": {"scaleToZero": {"activationQuery": 'sum(x{namespace="{namespace}",pod=~"{pods}"})'}}}
        ),
        "spec.behavior.scaleToZero.activationQuery",
        "cannot use {pods}",
        False,
    ),
    (
        "activation not PromQL",
        merge(ZERO, {"behavior": {"scaleToZero": {"activationQuery": "sum(rate(x[1m])"}}}),
        "spec.behavior.scaleToZero.activationQuery",
        "not valid PromQL",
        False,
    ),
    (
        "no activation query",
        merge(ZERO, {"behavior": {"scaleToZero": {"activationQuery": ""}}}),
        "spec.behavior.scaleToZero.activationQuery",
        "at least 1 character",
        True,
    ),
    (
        "idle under a minute",
        merge(ZERO, {"behavior": {"scaleToZero": {"idleSeconds": 10}}}),
        "spec.behavior.scaleToZero.idleSeconds",
        "greater than or equal to 60",
        True,
    ),
    (
        "start timeout 0",
        {"behavior": {"podStartTimeoutSeconds": 0}},
        "spec.behavior.podStartTimeoutSeconds",
        "greater than or equal to 30",
        True,
    ),
    (
        "negative hold",
        {"behavior": {"manualHoldSeconds": -1}},
        "spec.behavior.manualHoldSeconds",
        "greater than or equal to 0",
        True,
    ),
]


@pytest.mark.parametrize(("override", "field", "words", "crd_rejects"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_fleet_settings_name_the_field_and_the_fix(
    override: dict[str, Any], field: str, words: str, crd_rejects: bool
) -> None:
    model, crd = problems(override)
    assert any(line.startswith(f"{field}:") and words in line for line in model), model
    assert bool(crd) == crd_rejects


def test_scale_to_zero_passes_both_validators() -> None:
    assert problems(ZERO) == ([], [])


# --- Scale from zero --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "prefill", "activation", "expected", "reason"),
    [
        # Above the threshold: one set at the ratio, both roles in the same decision.
        ((1, 3), 0, 2.0, (1, 1), Reason.ACTIVATING),
        ((2, 1), 0, 2.0, (2, 1), Reason.ACTIVATING),
        ((7, 2), 0, 0.6, (4, 1), Reason.ACTIVATING),
        # At or below it: zero stays zero; a prefill left without decode goes too.
        ((1, 3), 0, 0.5, (0, 0), Reason.SCALED_TO_ZERO),
        ((1, 3), 2, 0.0, (0, 0), Reason.SCALED_TO_ZERO),
        # No usable reading: nothing moves, in or out.
        ((1, 3), 0, None, (0, 0), Reason.METRIC_MISSING),
        ((1, 3), 2, None, (2, 0), Reason.METRIC_MISSING),
        ((1, 3), 0, math.nan, (0, 0), Reason.METRIC_INVALID),
        ((1, 3), 2, -1.0, (2, 0), Reason.METRIC_INVALID),
    ],
)
def test_a_group_at_zero_wakes_only_on_its_activation_reading(
    ratio: tuple[int, int], prefill: int, activation: float | None, expected: tuple[int, int], reason: Reason
) -> None:
    # Decode tokens/s is missing at zero (nothing reports it) and does not matter.
    decision = run(
        seen(None, prefill, 0, activation=activation), ratio={"prefill": ratio[0], "decode": ratio[1]}, **ZERO
    )
    assert ((decision.prefill, decision.decode), decision.reason) == (expected, reason), decision.message
    if reason is Reason.ACTIVATING:
        assert decision.state.last_scale_up_time == NOW
        assert "together" in decision.message


def test_a_floor_in_force_wakes_a_group_at_zero_without_activation() -> None:
    floor = [{"name": "always", "cron": "* * * * *", "minReplicas": {"decode": 3}}]
    decision = run(seen(None, 0, 0, activation=None), schedules=floor, ratio={"prefill": 1, "decode": 3}, **ZERO)
    assert ((decision.prefill, decision.decode), decision.reason) == ((1, 3), Reason.SCHEDULE_FLOOR)


def test_while_the_cold_start_runs_the_missing_reading_is_activating() -> None:
    starting = run(seen(None, 1, 1, activation=3.0, starting=(1, 1)), **ZERO)
    assert ((starting.prefill, starting.decode), starting.reason) == ((1, 1), Reason.ACTIVATING)
    assert starting.held
    # Without scaleToZero the same observation is a plain missing reading.
    plain = run(seen(None, 1, 1, starting=(1, 1)))
    assert plain.reason is Reason.METRIC_MISSING
    # Pods past their start timeout are not activating any more: the reading is missing, and why.
    stuck = run(seen(None, 1, 1, activation=3.0, stuck=(1, 1)), **ZERO)
    assert stuck.reason is Reason.METRIC_MISSING
    assert Reason.PODS_STUCK in stuck.notes


# --- Scale to zero ----------------------------------------------------------------------------


def day(
    readings: list[tuple[float | None, float | None]], *, start: tuple[int, int] = (2, 4), **spec: Any
) -> list[Decision]:
    """Ticks 15 s apart over (decode tokens/s, activation) readings, the pools reaching each
    decision's counts before the next tick."""
    prefill, decode = start
    state, out = PolicyState(), []
    for tick, (tps, activation) in enumerate(readings):
        decision = run(seen(tps, prefill, decode, activation=activation), state, now=NOW + 15 * tick, **spec)
        prefill, decode, state = decision.prefill, decision.decode, decision.state
        out.append(decision)
    return out


def test_an_idle_group_keeps_one_set_then_goes_to_zero_after_idle_seconds() -> None:
    ticks = day([(0.0, 0.0)] * 12, **merge(ZERO, {"ratio": {"prefill": 1, "decode": 2}}))
    counts = [(d.prefill, d.decode, d.reason) for d in ticks]
    # Three zeros, then one set at the ratio; idle since the first tick, so zero once 120 s passed
    # (tick 8, at 120 s); then it stays there.
    assert counts[:2] == [(2, 4, Reason.ZERO_TRAFFIC)] * 2
    assert counts[2:8] == [(1, 1, Reason.ZERO_TRAFFIC)] * 6
    assert counts[8:] == [(0, 0, Reason.SCALED_TO_ZERO)] * 4
    assert "idle for 120s" in ticks[8].message


@pytest.mark.parametrize(
    ("interruption", "why"),
    [
        ((0.0, None), "no usable activation reading"),  # the activation query fails
        ((0.0, math.inf), "no usable activation reading"),
        ((0.0, 0.6), "above activationThreshold"),  # a request waits at the gateway
        ((None, 0.0), ""),  # decode tokens/s missing: not evidence of idleness
        ((50.0, 0.0), ""),  # traffic
    ],
)
def test_anything_but_trusted_idleness_restarts_the_idle_clock(
    interruption: tuple[float | None, float | None], why: str
) -> None:
    # Idle for 105 s, one tick that is not, then idle again: zero comes 120 s after the interruption.
    readings = [(0.0, 0.0)] * 8 + [interruption] + [(0.0, 0.0)] * 10
    ticks = day(readings, **ZERO)
    assert all(d.decode > 0 for d in ticks[:17]), [d.reason for d in ticks]
    assert ticks[17].reason is Reason.SCALED_TO_ZERO
    assert why in ticks[8].message


def test_a_missing_activation_reading_never_scales_to_zero() -> None:
    ticks = day([(0.0, None)] * 40, **ZERO)
    assert min(d.decode for d in ticks) == 1
    assert Reason.SCALED_TO_ZERO not in {d.reason for d in ticks}


def test_a_partial_zero_is_not_idle() -> None:
    state = PolicyState(zero_readings=10, idle_since=NOW - 1000)
    partial = replace(seen(0.0, 1, 2, activation=0.0), decode_reporting=1)
    decision = run(partial, state, **ZERO)
    assert (decision.decode, decision.reason) == (2, Reason.METRIC_PARTIAL)
    assert decision.state.idle_since is None


@pytest.mark.parametrize(
    ("starting", "stuck", "expected", "reason"),
    [
        ((0, 1), (0, 0), (1, 2), Reason.PODS_STARTING),  # a pod within its timeout blocks it
        ((0, 0), (0, 1), (0, 0), Reason.SCALED_TO_ZERO),  # a stuck one does not
        ((0, 0), (1, 0), (0, 0), Reason.SCALED_TO_ZERO),
    ],
)
def test_going_to_zero_waits_for_starting_pods_not_for_stuck_ones(
    starting: tuple[int, int], stuck: tuple[int, int], expected: tuple[int, int], reason: Reason
) -> None:
    state = PolicyState(zero_readings=5, idle_since=NOW - 200)
    decision = run(seen(0.0, 1, 2, activation=0.0, starting=starting, stuck=stuck), state, **ZERO)
    assert ((decision.prefill, decision.decode), decision.reason) == (expected, reason), decision.message
    assert (Reason.PODS_STUCK in decision.notes) == (sum(stuck) > 0)


def test_a_floor_in_force_keeps_an_idle_group_up() -> None:
    floor = [{"name": "always", "cron": "* * * * *", "minReplicas": {"decode": 2}}]
    state = PolicyState(zero_readings=5, idle_since=NOW - 1000)
    decision = run(seen(0.0, 2, 2, activation=0.0), state, schedules=floor, **ZERO)
    assert (decision.prefill, decision.decode) == (2, 2)
    assert "a floor in force is above zero" in decision.message


# --- Stuck pods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("starting", "stuck", "decode", "reason"),
    [
        ((0, 2), (0, 0), 10, Reason.PODS_STARTING),
        ((2, 0), (0, 0), 10, Reason.PODS_STARTING),
        ((0, 0), (0, 2), 1, Reason.SCALED_DOWN),  # stuck pods no longer block scale-in
        ((0, 0), (3, 0), 1, Reason.SCALED_DOWN),
        ((1, 0), (0, 2), 10, Reason.PODS_STARTING),  # but one within the timeout still does
    ],
)
def test_only_pods_within_their_start_timeout_block_scale_in(
    starting: tuple[int, int], stuck: tuple[int, int], decode: int, reason: Reason
) -> None:
    decision = run(seen(100.0, 10, 10, starting=starting, stuck=stuck))
    assert (decision.decode, decision.reason) == (decode, reason), decision.message
    if sum(stuck):
        assert Reason.PODS_STUCK in {decision.reason, *decision.notes}
        assert "podStartTimeoutSeconds 600s" in decision.message


def test_stuck_pods_are_the_primary_reason_when_nothing_else_moves() -> None:
    steady = run(seen(1000.0, 10, 10, stuck=(0, 3)))
    assert (steady.decode, steady.reason) == (10, Reason.PODS_STUCK)
    assert Reason.WITHIN_TOLERANCE in steady.notes
    assert not steady.held
    held = run(seen(None, 10, 10, stuck=(0, 3)))
    assert (held.reason, held.notes) == (Reason.METRIC_MISSING, (Reason.PODS_STUCK,))


def test_no_replacement_is_asked_for_stuck_pods() -> None:
    # 3 of 10 decode pods are stuck; 1000 tok/s at 100 each needs 10, which are asked for already.
    assert run(seen(1000.0, 10, 10, stuck=(0, 3))).decode == 10
    assert run(seen(1300.0, 10, 10, stuck=(0, 3))).decode == 13  # the load still scales out


# --- Manual edits -----------------------------------------------------------------------------


def test_a_manual_scale_up_is_a_floor_until_it_expires() -> None:
    edit = seen(1000.0, 20, 20, edit=ManualEdit(decode=20))
    first = run(edit, **DAMPED)
    assert (first.decode, first.reason) == (20, Reason.MANUAL_OVERRIDE)
    assert first.state.manual_hold == ManualHold(decode=20, since=NOW, until=NOW + 600)
    assert "a person set decode 20: held as a floor" in first.message
    # Later ticks keep it, with no edit seen; the floor binds where minReplicas would.
    later = run(seen(1000.0, 20, 20), first.state, now=NOW + 599, **DAMPED)
    assert (later.decode, later.reason) == (20, Reason.MANUAL_OVERRIDE)
    assert "manual floor decode 20 for another 1s" in later.message
    # Then the ordinary rules resume: the window's highest recommendation, the step limit.
    resumed = run(seen(1000.0, 20, 20), later.state, now=NOW + 600, **DAMPED)
    assert resumed.state.manual_hold is None
    assert (resumed.decode, resumed.reason) == (16, Reason.SCALED_DOWN)


def test_a_manual_scale_down_does_not_stop_the_policy_scaling_out_for_load() -> None:
    decision = run(seen(2000.0, 10, 10, edit=ManualEdit(prefill=10, decode=10)))
    assert (decision.decode, decision.reason) == (20, Reason.SCALED_UP)
    assert Reason.MANUAL_OVERRIDE in decision.notes


def test_with_no_hold_an_edit_is_reported_and_the_rules_apply_at_once() -> None:
    decision = run(seen(1000.0, 20, 20, edit=ManualEdit(decode=20)), behavior={"manualHoldSeconds": 0})
    assert decision.decode == 10
    assert decision.state.manual_hold is None
    assert Reason.MANUAL_OVERRIDE in decision.notes
    assert "manualHoldSeconds is 0" in decision.message


def test_a_prefill_edit_raises_decode_to_keep_the_ratio_and_edits_add_up() -> None:
    ratio = {"ratio": {"prefill": 1, "decode": 3}}
    first = run(seen(300.0, 6, 3, edit=ManualEdit(prefill=6)), **ratio)
    assert (first.prefill, first.decode) == (6, 16)  # 6 prefill at 1:3 need 16 decode
    # A later decode edit keeps the prefill floor and restarts the hold.
    second = run(seen(300.0, 6, 20, edit=ManualEdit(decode=20)), first.state, now=NOW + 300, **ratio)
    assert second.state.manual_hold == ManualHold(prefill=6, decode=20, since=NOW + 300, until=NOW + 900)
    assert (second.prefill, second.decode) == (7, 20)


def test_a_manual_floor_above_max_is_capped_by_max() -> None:
    decision = run(seen(100.0, 150, 150, edit=ManualEdit(prefill=150, decode=150)), decode={"maxReplicas": 100})
    assert decision.decode == 100


def test_the_new_state_round_trips_through_the_status_json() -> None:
    decision = run(seen(1000.0, 20, 20, edit=ManualEdit(decode=20)), PolicyState(idle_since=NOW - 5))
    state = decision.state.model_copy(update={"idle_since": NOW - 5})
    wire = json.loads(json.dumps(state.model_dump(mode="json", by_alias=True, exclude_none=True)))
    assert PolicyState.model_validate(wire) == state
    assert {"manualHold", "idleSince"} <= wire.keys()


# --- Invariants over generated specs and observations ------------------------------------------


@st.composite
def fleet_specs(draw: st.DrawFn) -> PDServingGroupSpec:
    spec = draw(base_specs())
    update: dict[str, Any] = {}
    if draw(st.booleans()):
        floors = {"decode": draw(st.integers(0, spec.decode.max_replicas))}
        update["schedules"] = [{"name": "always", "cron": "* * * * *", "minReplicas": floors}]
    document = merge(spec.model_dump(by_alias=True, exclude_none=True), update)
    document["behavior"]["manualHoldSeconds"] = draw(st.sampled_from([0, 300]))
    return PDServingGroupSpec.model_validate(document)


@st.composite
def fleet_observations(draw: st.DrawFn, spec: PDServingGroupSpec) -> Observation:
    def pool(lo: int, hi: int, gpu: dict[str, int] | None = None) -> PoolObservation:
        n = draw(st.integers(lo, hi))
        starting = draw(st.integers(0, n))
        stuck = draw(st.integers(0, n - starting))
        return PoolObservation(n, n - starting - stuck, starting, gpu or {"H20": n}, stuck)

    decode = pool(spec.decode.min_replicas, spec.decode.max_replicas)
    prefill = pool(spec.prefill.min_replicas, spec.prefill.max_replicas)
    edit = draw(st.none() | st.builds(ManualEdit, st.none() | st.integers(0, 50), st.none() | st.integers(0, 50)))
    return Observation(
        decode_tps=draw(st.none() | st.sampled_from([0.0, math.nan]) | st.floats(0, 400_000)),
        metric_age_seconds=draw(st.floats(0, 200)),
        prefill=prefill,
        decode=decode,
        decode_reporting=draw(st.none() | st.integers(0, 80)),
        activation=draw(st.none() | st.sampled_from([0.0, math.nan, -1.0]) | st.floats(0, 100)),
        manual_edit=edit,
    )


@st.composite
def fleet_states(draw: st.DrawFn) -> PolicyState:
    hold = draw(
        st.none()
        | st.builds(
            ManualHold,
            decode=st.integers(0, 30),
            since=st.just(NOW - 100.0),
            until=st.sampled_from([NOW - 1.0, NOW + 100.0]),
        )
    )
    return PolicyState(
        recommendations=[Recommendation(time=NOW - 10, decode=draw(st.integers(0, 80)))],
        last_scale_up_time=draw(st.none() | st.floats(NOW - 1000, NOW)),
        zero_readings=draw(st.integers(0, 10)),
        idle_since=draw(st.none() | st.floats(NOW - 3000, NOW)),
        manual_hold=hold,
    )


def _floors(spec: PDServingGroupSpec, observation: Observation, state: PolicyState, decision: Decision) -> int:
    """The decode floor the decision must keep: the spec's, the schedule's, the manual hold's."""
    floors = [spec.decode.min_replicas]
    if decision.schedule is not None and decision.schedule.decode_floor is not None:
        floors.append(decision.schedule.decode_floor)
    hold = decision.state.manual_hold
    if hold is not None and hold.decode is not None:
        floors.append(hold.decode)
    return min(max(floors), spec.decode.max_replicas)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_bounds_floors_and_holds(data: st.DataObject) -> None:
    spec = data.draw(fleet_specs())
    observation = data.draw(fleet_observations(spec))
    state = data.draw(fleet_states())
    decision = decide(spec, observation, state, NOW)
    assert spec.decode.min_replicas <= decision.decode <= spec.decode.max_replicas
    assert spec.prefill.min_replicas <= decision.prefill <= spec.prefill.max_replicas
    if decision.reason is not Reason.SCALED_TO_ZERO:
        assert decision.decode >= _floors(spec, observation, state, decision), decision.message
    if decision.reason in HOLD_REASONS:
        assert decision.decode >= observation.decode.replicas
        assert decision.prefill >= observation.prefill.replicas
    assert decision == decide(spec, observation, state, NOW)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_only_trusted_idleness_or_a_low_activation_reading_reaches_zero(data: st.DataObject) -> None:
    spec = data.draw(fleet_specs())
    observation = data.draw(fleet_observations(spec))
    decision = decide(spec, observation, data.draw(fleet_states()), NOW)
    if decision.reason is not Reason.SCALED_TO_ZERO:
        return
    assert spec.behavior.scale_to_zero is not None
    threshold = spec.behavior.scale_to_zero.activation_threshold
    assert observation.activation is not None
    assert 0 <= observation.activation <= threshold
    if observation.decode.replicas > 0:
        assert observation.decode_tps == 0.0
        reporting = observation.decode_reporting
        assert reporting is None or reporting >= observation.decode.ready
        assert observation.decode.starting == observation.prefill.starting == 0
