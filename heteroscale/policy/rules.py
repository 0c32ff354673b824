"""The policy's rules, one function each, every one returning the reason it gives (pure).

Kubernetes' HPA builds its replica count the same way (``convertDesiredReplicasWithRules`` and
its neighbours in the replica calculator): each rule takes the count so far and returns the count
it allows with the condition reason and message that explain it. :func:`heteroscale.policy.decide`
applies them in order; the order is the contract documented there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from heteroscale.api.enums import Reason
from heteroscale.api.spec import LatencyGuard, PDServingGroupSpec
from heteroscale.api.status import PolicyState, Recommendation
from heteroscale.policy import capacity, latency, stabilization
from heteroscale.policy.decision import Decision
from heteroscale.policy.observation import Observation
from heteroscale.policy.ratio import Pair, pair_for


@dataclass(frozen=True)
class Signal:
    """What :func:`untrusted_signal` found wrong with the reading."""

    reason: Reason
    message: str


@dataclass(frozen=True)
class Recommended:
    """Decode instances the load asks for (the proportional rule and the latency guard)."""

    decode: int
    #: Reasons that shaped it (the latency guard).
    notes: tuple[Reason, ...]
    #: "x tok/s needs n decode at t tok/s each", and the guard's step when it fired.
    load: str
    #: Decode instances the latency guard asks for when a tier is breached, whether or not the
    #: load asks for more (0: no breach).
    guarded: int = 0
    #: With an adaptive ratio in force: prefill instances the guard asks for on a TTFT or prefill
    #: queue breach (0: none), counted from the prefill instances serving (:func:`guard_prefill`).
    prefill_guarded: int = 0


@dataclass(frozen=True)
class Step:
    """Decode instances the damping rules allow this tick."""

    decode: int
    #: Why the count did not move towards the recommendation (None when it moved).
    held: Reason | None
    #: What the count waits for, for the message ("" when nothing).
    wait: str
    notes: tuple[Reason, ...]


def hold(spec: PDServingGroupSpec, observation: Observation, reason: Reason, why: str, state: PolicyState) -> Decision:
    """Nothing moves on the signal's account. As Kubernetes' HPA does without metrics, pools below
    their minimum (just raised in the spec, say) are still brought up to it, never down."""
    cur_p, cur_d = observation.prefill.replicas, observation.decode.replicas
    if cur_d >= spec.decode.min_replicas and cur_p >= spec.prefill.min_replicas:
        return Decision(cur_p, cur_d, reason, f"{why}; holding at prefill {cur_p}, decode {cur_d}", state)
    floor = pair_for(spec, max(cur_d, spec.decode.min_replicas))
    prefill, decode = max(cur_p, floor.prefill), max(cur_d, floor.decode)
    raised = f"only the minimums apply: prefill {cur_p}->{prefill}, decode {cur_d}->{decode}"
    return Decision(prefill, decode, reason, f"{why}; {raised}", state)


def untrusted_signal(spec: PDServingGroupSpec, observation: Observation) -> Signal | None:
    """A missing, non-finite or negative, or stale reading; None when the reading can be used."""
    tps = observation.decode_tps
    age = observation.metric_age_seconds
    if tps is None:
        return Signal(Reason.METRIC_MISSING, "no decode tokens/s reading from Prometheus")
    if not math.isfinite(tps) or tps < 0:
        return Signal(Reason.METRIC_INVALID, f"decode tokens/s reading {tps} is not a finite, non-negative number")
    stale_after = spec.metric.stale_after_seconds
    if age is None or not math.isfinite(age) or age > stale_after:
        shown = "unknown" if age is None else f"{age:.0f}s"
        return Signal(
            Reason.METRIC_STALE, f"decode tokens/s reading is stale (age {shown} > staleAfter {stale_after}s)"
        )
    return None


def partial_reading(observation: Observation) -> Signal | None:
    """Fewer decode instances report than are ready: the reading is a partial sum, a lower bound of
    the load. It may justify more instances, never fewer."""
    reporting, ready = observation.decode_reporting, observation.decode.ready
    if reporting is None or reporting >= ready:
        return None
    return Signal(
        Reason.METRIC_PARTIAL,
        f"only {reporting} of {ready} ready decode instances report decode tokens/s, so the reading is partial",
    )


def usable_activation(observation: Observation) -> float | None:
    """The activation reading when it can be trusted (finite, non-negative), else None."""
    reading = observation.activation
    if reading is None or not math.isfinite(reading) or reading < 0:
        return None
    return reading


def at_zero(
    spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float, floor_reason: Reason | None
) -> Decision:
    """A group with ``scaleToZero`` and no decode instance asked for. Only the activation reading and
    the floors in force can wake it (nothing reports decode tokens/s): a floor above zero, or a
    reading above ``activationThreshold``, starts one prefill/decode set at the ratio (both roles
    together; at least the floors); a reading at or below it keeps both roles at zero; no usable
    reading holds where it is (a missing signal never scales anything, in or out)."""
    cur_p = observation.prefill.replicas
    zero = spec.behavior.scale_to_zero
    assert zero is not None  # only called for groups that may be at zero
    cleared = state.model_copy(update={"zero_readings": 0, "idle_since": None, "recommendations": []})
    start = pair_for(spec, 1)
    # Waking is a hold: nothing goes down, not even prefill left over without decode.
    start = replace(start, prefill=max(start.prefill, cur_p))
    started = cleared.model_copy(update={"last_scale_up_time": now})
    starting = f"starting prefill {cur_p}->{start.prefill}, decode 0->{start.decode} together"
    if start.detail:
        starting += f"; {start.detail}"
    if floor_reason is not None:
        why = "a floor in force is above zero"
        return Decision(
            start.prefill,
            start.decode,
            floor_reason,
            f"{why}: {starting}",
            started,
            recommended_decode=0,
            notes=start.notes,
        )
    reading = usable_activation(observation)
    threshold = zero.activation_threshold
    if reading is None:
        problem = Reason.METRIC_MISSING if observation.activation is None else Reason.METRIC_INVALID
        shown = "no" if observation.activation is None else f"an unusable ({observation.activation})"
        why = f"at zero decode instances with {shown} activation reading (behavior.scaleToZero.activationQuery)"
        return Decision(cur_p, 0, problem, f"{why}; holding at prefill {cur_p}, decode 0", cleared)
    if reading > threshold:
        why = f"activation reading {reading:g} is above activationThreshold {threshold:g}"
        ratio = f"{spec.ratio.prefill}:{spec.ratio.decode}"
        return Decision(
            start.prefill,
            start.decode,
            Reason.ACTIVATING,
            f"{why}: {starting} at {ratio}",
            started,
            recommended_decode=0,
            notes=start.notes,
        )
    update: dict[str, object] = {"last_scale_down_time": now} if cur_p > 0 else {}
    stays = f"prefill {cur_p}->0, decode stays 0" if cur_p else "both roles stay at zero"
    why = f"activation reading {reading:g} is at or below activationThreshold {threshold:g}"
    return Decision(0, 0, Reason.SCALED_TO_ZERO, f"{why}: {stays}", cleared.model_copy(update=update))


def activating(spec: PDServingGroupSpec, observation: Observation, signal: Signal, state: PolicyState) -> Decision:
    """A cold start in progress: no decode instance is ready yet, so no decode tokens/s can exist.
    Held like any missing reading, under the name of what is happening."""
    why = (
        f"activating: {observation.decode.starting} decode and {observation.prefill.starting} prefill instance(s) "
        f"starting, none serving decode yet ({signal.message})"
    )
    return hold(spec, observation, Reason.ACTIVATING, why, state)


def zero_traffic(spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float) -> Decision:
    """A zero reading holds until ``zeroTrafficReadings`` consecutive zeros, then both roles go to
    their minimum in one explicit step (unless pods are still starting). With ``scaleToZero`` the
    minimum while serving is one prefill/decode set, and both roles go to zero once the group has
    been idle (zero readings and the activation reading at or below its threshold) for
    ``idleSeconds`` and the floors in force are zero."""
    cur_p, cur_d = observation.prefill.replicas, observation.decode.replicas
    zeros = state.zero_readings + 1
    zero = spec.behavior.scale_to_zero
    idle_since, idle = _idle(spec, observation, state, now)
    counted = state.model_copy(update={"zero_readings": zeros, "idle_since": idle_since})
    wanted = spec.behavior.zero_traffic_readings
    if zeros < wanted:
        why = f"zero decode throughput ({zeros}/{wanted} readings)" + (f"; {idle}" if idle else "")
        return hold(spec, observation, Reason.ZERO_TRAFFIC, why, counted)
    if observation.prefill.starting or observation.decode.starting:
        return hold(
            spec, observation, Reason.PODS_STARTING, "zero decode throughput, but pods are still starting", counted
        )
    floors_zero = spec.decode.min_replicas == 0 and spec.prefill.min_replicas == 0
    if zero is not None and idle_since is not None and now - idle_since >= zero.idle_seconds and floors_zero:
        return Decision(
            0,
            0,
            Reason.SCALED_TO_ZERO,
            f"idle for {now - idle_since:.0f}s (idleSeconds {zero.idle_seconds}): both roles to zero: "
            f"prefill {cur_p}->0, decode {cur_d}->0",
            counted.model_copy(update={"recommendations": [], "last_scale_down_time": now, "idle_since": None}),
            recommended_decode=0,
        )
    # With scaleToZero the minimums are 0; while it serves, the group keeps one set at the ratio.
    floor = pair_for(spec, 0 if zero is None else 1)
    update: dict[str, object] = {"recommendations": []}
    if floor.decode < cur_d:
        update["last_scale_down_time"] = now
    return Decision(
        floor.prefill,
        floor.decode,
        Reason.ZERO_TRAFFIC,
        f"no decode traffic for {zeros} readings; both roles at their minimum: "
        f"prefill {cur_p}->{floor.prefill}, decode {cur_d}->{floor.decode}"
        + (f"; {floor.detail}" if floor.detail else "")
        + (f"; {idle}" if idle else ""),
        counted.model_copy(update=update),
        recommended_decode=0,
        notes=floor.notes,
    )


def _idle(
    spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float
) -> tuple[float | None, str]:
    """On a trusted zero reading: when the idle stretch began (None: not idle, or no scaleToZero)
    and what to say about it."""
    zero = spec.behavior.scale_to_zero
    if zero is None:
        return None, ""
    reading = usable_activation(observation)
    if reading is None:
        return None, "no usable activation reading, so not idle (scale to zero waits for one)"
    if reading > zero.activation_threshold:
        return None, f"activation reading {reading:g} is above activationThreshold {zero.activation_threshold:g}"
    since = state.idle_since if state.idle_since is not None else now
    if spec.decode.min_replicas or spec.prefill.min_replicas:
        return since, f"idle for {now - since:.0f}s, but a floor in force is above zero"
    return since, f"idle for {now - since:.0f}s; zero after idleSeconds {zero.idle_seconds}"


def recommend(
    spec: PDServingGroupSpec, observation: Observation, tps: float, adaptive: bool = False
) -> tuple[Recommended, bool]:
    """Decode instances = ceil(TPS / target per instance), the target weighted by the GPU types now
    serving; within the tolerance band the current count stands. The latency guard may add a
    tiered step on top. Also returns whether the load was within the tolerance band.

    With a fixed ratio one decode count carries both roles, so a breach of any latency steps
    decode and prefill follows the ratio. With an ``adaptive`` ratio in force each role has a
    count of its own, so each steps on its own latency: decode on TBT, prefill on TTFT and its
    queue (``prefill_guarded``). A TTFT breach is a prefill queue, which decode instances do not
    drain: stepped on it, decode took the room prefill needed (the adaptive lane of the burst
    days, docs/simulator.md)."""
    cur_d = observation.decode.replicas
    behavior = spec.behavior
    target = capacity.weighted_target(
        spec.decode.target_tps_per_instance, observation.decode.by_gpu_type, spec.roles.decode.gpu_types[0]
    )
    needed = capacity.instances_for(tps, target)
    load = f"{tps:,.0f} tok/s needs {needed} decode at {target:,.0f} tok/s each"
    in_band = capacity.within_tolerance(tps, cur_d, target, behavior.tolerance)
    recommended = cur_d if in_band else needed
    notes: tuple[Reason, ...] = ()
    guard = behavior.latency_guard
    waited = None
    if guard is not None and guard.ttft_seconds is not None:
        waited = latency.queue_wait(observation.prefill_queued, observation.prefill_rps)
    tbt, ttft = observation.tbt_seconds, observation.ttft_seconds
    readings = (None, None) if adaptive else (ttft, waited)
    guarded, step = _guard_step(guard, "", observation.decode.ready, tbt, *readings)
    if guarded > recommended:
        recommended = guarded
        notes = (Reason.LATENCY_GUARD,)
        shown = replace(observation, ttft_seconds=None) if adaptive else observation
        load += f"; {_latency_text(shown, None if adaptive else waited)} is {step}"
    prefill_guarded = 0
    if adaptive:
        prefill_guarded, prefill_step = _guard_step(guard, "prefill ", observation.prefill.ready, None, ttft, waited)
        if prefill_guarded:
            load += f"; {_latency_text(replace(observation, tbt_seconds=None), waited)} is {prefill_step}"
    return Recommended(recommended, notes, load, guarded, prefill_guarded), in_band


def _guard_step(
    guard: LatencyGuard | None, role: str, serving: int, tbt: float | None, ttft: float | None, waited: float | None
) -> tuple[int, str]:
    """Instances of a role after the latency guard's step on the readings given, counted from the
    ``serving`` ones, and the text of the step (``role`` names the instances it adds, "" for the
    decode count that carries both roles); (0, "") when no tier is breached."""
    factor = latency.overshoot(guard, tbt, ttft, waited)
    tier = latency.breached_tier(guard, factor)
    sized = latency.step_factor(guard, tbt, ttft, waited)
    if guard is None or tier is None or factor is None or sized is None:
        return 0, ""
    guarded = latency.guarded(serving, tier, sized, guard.proportional)
    text = f"{factor:.2f}x the SLO (tier {tier.over}x), +{guarded - serving} {role}on {serving} serving"
    if guard.proportional and sized < factor:
        present = "the prefill queue" if tbt is None else "TBT and the prefill queue"
        text += f" (sized by {present}, {sized:.2f}x: the TTFT histogram lags)"
    return guarded, text


def guard_prefill(
    spec: PDServingGroupSpec, current: int, wanted: int, recommended: Recommended
) -> tuple[int, Recommended]:
    """An adaptive ratio's prefill recommendation raised to the latency guard's prefill step
    (limited per period by ``scaleUp.maxStepPercent`` of the prefill replicas, as every scale-up),
    and decode raised as far as the band's ``maxRatio`` needs to pair it: one joint decision, the
    pair kept within the declared band. Returns ``wanted`` and ``recommended`` as they were when
    the guard asks prefill for no more."""
    adaptive = spec.ratio.adaptive
    if adaptive is None or recommended.prefill_guarded <= wanted:
        return wanted, recommended
    limit = stabilization.step_up_limit(current, spec.behavior.scale_up)
    prefill = max(wanted, min(recommended.prefill_guarded, limit))
    paired = math.ceil(prefill / adaptive.max_ratio - 1e-9)
    if paired <= recommended.decode:
        return prefill, recommended
    notes = tuple(dict.fromkeys((*recommended.notes, Reason.LATENCY_GUARD)))
    return prefill, replace(recommended, decode=paired, notes=notes, guarded=max(recommended.guarded, paired))


def _latency_text(observation: Observation, waited: float | None) -> str:
    shown = [
        f"{name} {value:.3f}s"
        for name, value in (
            ("TBT", observation.tbt_seconds),
            ("TTFT", observation.ttft_seconds),
            ("prefill queue wait", waited),
        )
        if value is not None
    ]
    return " / ".join(shown)


def scale_up(spec: PDServingGroupSpec, state: PolicyState, now: float, current: int, recommended: Recommended) -> Step:
    """Scale-out obeys its cooldown and step limit. A latency-guard step skips the cooldown: the
    cooldown lets a throughput step take effect before the next reading, but the guard steps on
    top of the instances serving, so while its last step is still starting it asks for nothing
    more, and a latency breach on a surge cannot wait a minute. That holds too when the load asks
    for as much or more than the guard (found by the monotonicity property: otherwise more load
    could yield fewer instances): the guard's step goes ahead, the rest waits for the cooldown."""
    up = spec.behavior.scale_up
    limit = stabilization.step_up_limit(current, up)
    cooldown = 0.0 if Reason.LATENCY_GUARD in recommended.notes else stabilization.up_cooldown_left(state, now, up)
    if cooldown > 0:
        wait = f"scale-up cooldown {cooldown:.0f}s left"
        if recommended.guarded > current:
            return Step(min(recommended.guarded, limit), None, f"{wait} for the rest", (Reason.LATENCY_GUARD,))
        return Step(current, Reason.COOLDOWN_ACTIVE, wait, ())
    desired = min(recommended.decode, limit)
    return Step(desired, None, "", (Reason.STEP_LIMITED,) if desired < recommended.decode else ())


def scale_down(
    spec: PDServingGroupSpec, state: PolicyState, now: float, current: int, window: list[Recommendation]
) -> Step:
    """Scale-in takes the highest recommendation of the stabilization window, waits out its
    cooldown after any scale action, and obeys its step limit. (Starting pods are checked first,
    by the caller: they turn the whole decision into a hold.)"""
    down = spec.behavior.scale_down
    highest = stabilization.stabilized(window)
    if highest >= current:
        wait = f"the last {down.stabilization_window_seconds}s recommended up to {highest}"
        return Step(current, Reason.STABILIZING, wait, ())
    cooldown = stabilization.down_cooldown_left(state, now, down)
    if cooldown > 0:
        return Step(current, Reason.COOLDOWN_ACTIVE, f"scale-down cooldown {cooldown:.0f}s left", ())
    desired = max(highest, stabilization.step_down_limit(current, down))
    return Step(desired, None, "", (Reason.STEP_LIMITED,) if desired > highest else ())


def steady(spec: PDServingGroupSpec, current: int, in_band: bool) -> Step:
    """The recommendation equals the current count."""
    wait = f"within ±{spec.behavior.tolerance:.0%} of the target" if in_band else "at target"
    return Step(current, Reason.WITHIN_TOLERANCE, wait, ())


def keep_until_scale_in_allowed(
    spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float, pair: Pair
) -> tuple[int, int, str]:
    """Restoring the ratio by removing instances is a scale-in like any other: it waits for starting
    pods and the cooldown. Only the spec's bounds apply at once. Returns (prefill, decode, why)
    where ``why`` is "" when nothing was kept."""
    cur_p, cur_d = observation.prefill.replicas, observation.decode.replicas
    prefill, decode = pair.prefill, pair.decode
    starting = observation.prefill.starting + observation.decode.starting
    blocked = starting > 0 or stabilization.down_cooldown_left(state, now, spec.behavior.scale_down) > 0
    if not blocked or (prefill >= cur_p and decode >= cur_d):
        return prefill, decode, ""
    decode = max(decode, min(cur_d, spec.decode.max_replicas))
    prefill = max(pair_for(spec, decode).prefill, min(cur_p, spec.prefill.max_replicas))
    return prefill, decode, "instances above the ratio stay until scale-in is allowed"


def primary_reason(notes: list[Reason], scaled_up: bool, scaled_down: bool, held: Reason | None) -> Reason:
    """When several reasons shaped an outcome, the one a person most needs to see."""
    for reason in (Reason.CLAMPED_TO_MAX, Reason.RATIO_REPAIRED, Reason.CLAMPED_TO_MIN, Reason.LATENCY_GUARD):
        if reason in notes:
            return reason
    if scaled_up:
        return Reason.SCALED_UP
    if scaled_down:
        return Reason.SCALED_DOWN
    return held or Reason.WITHIN_TOLERANCE
