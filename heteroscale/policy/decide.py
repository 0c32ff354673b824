"""``decide()``: one coordinated prefill/decode scaling step (pure: no I/O, no clock reads).

The order of the rules (:mod:`heteroscale.policy.rules`) matters and is the contract users rely on:

0. The floors and ratio in force (:mod:`floors`): the ``spec.schedules`` entry in force at ``now``
   (:mod:`schedule`) raises the roles' ``minReplicas`` and may replace the ratio; a manual edit
   (:mod:`manual`) is a floor for ``manualHoldSeconds``. Every rule below keeps them as it keeps
   the spec's own minimums, holds included.
1. With ``scaleToZero``, a group with no decode instance asked for is woken only by a floor above
   zero or an activation reading above its threshold (one prefill/decode set at the ratio,
   ``Activating``), stays at zero on a reading at or below it (``ScaledToZero``), and holds on no
   usable reading. While its first decode instances start, the missing decode reading is reported
   as ``Activating``.
2. An untrustworthy signal (missing, NaN/Inf/negative, stale) holds both roles where they are;
   only a pool below its minimum is brought up to it (as the HPA does without metrics). A partial
   reading (fewer decode instances report than are ready) is a lower bound of the load: it may
   scale out, and otherwise holds (``MetricPartial``); it never scales in.
3. Zero throughput holds until ``zeroTrafficReadings`` consecutive zeros, then both roles go to
   their minimum in one explicit step (with ``scaleToZero``: one set at the ratio, and zero after
   ``idleSeconds`` idle, ``ScaledToZero``).
4. Decode instances = ceil(TPS / target per instance), the target weighted by the GPU types now
   serving; within the tolerance band the current count stands. The latency guard may add a
   tiered step on top.
5. Scale-out obeys its cooldown and step limit. Scale-in waits while pods are starting (within
   ``podStartTimeoutSeconds``; stuck pods beyond it do not block it), takes the highest
   recommendation of the stabilization window, waits out its cooldown after any scale action, and
   obeys its step limit.
6. Decode is clamped to its bounds and prefill follows from the ratio in the same decision; a
   prefill bound that breaks the ratio is repaired by raising decode (see :mod:`ratio`). With
   ``ratio.adaptive`` prefill instead follows its own KV-missed throughput, within the declared
   band of prefill per decode instance, with hysteresis; still in the same decision. Its latency
   guard steps each role on its own latency (decode on TBT in step 4, prefill on TTFT and its
   queue), decode rising with prefill's step as far as the band's ``maxRatio`` needs.
7. Reporting: a floor raised by a schedule or a manual hold is reported as ``ScheduleFloor`` or
   ``ManualOverride`` where the spec's own would be ``ClampedToMin``; stuck pods add ``PodsStuck``
   (the primary reason when nothing else moved); the entry in force is returned for the status.
"""

from __future__ import annotations

from dataclasses import replace

from heteroscale.api.enums import HOLD_REASONS, Reason
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import PolicyState
from heteroscale.policy import floors, manual, rules, schedule, stabilization
from heteroscale.policy.decision import Decision
from heteroscale.policy.observation import Observation
from heteroscale.policy.ratio import Pair, adapted_prefill, pair_for, wanted_prefill


def decide(spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float) -> Decision:
    """Decide prefill and decode instance counts together for one tick."""
    held = manual.held(spec, observation, state, now)
    in_force = floors.effective(spec, schedule.in_force(spec.schedules, now), held)
    if held != state.manual_hold:
        state = state.model_copy(update={"manual_hold": held})
    decision = _decide(in_force.spec, observation, state, now, in_force.decode_source or in_force.prefill_source)
    plain = in_force.schedule is None and in_force.hold is None and observation.manual_edit is None
    if plain and not (observation.prefill.stuck or observation.decode.stuck):
        return decision  # nothing of step 7 to report
    return _reported(spec, decision, in_force, observation, now)


def _decide(
    spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float, floor_reason: Reason | None
) -> Decision:
    """Steps 1-6 on the spec with the floors and ratio in force."""
    cur_p, cur_d = observation.prefill.replicas, observation.decode.replicas
    zero = spec.behavior.scale_to_zero
    if zero is not None and cur_d == 0:
        return rules.at_zero(spec, observation, state, now, floor_reason)
    no_zeros = state.model_copy(update={"zero_readings": 0, "idle_since": None})
    problem = rules.untrusted_signal(spec, observation)
    if problem is not None:
        if zero is not None and observation.decode.ready == 0 and observation.decode.starting > 0:
            return rules.activating(spec, observation, problem, no_zeros)
        return rules.hold(spec, observation, problem.reason, problem.message, no_zeros)
    tps = observation.decode_tps
    assert tps is not None  # untrusted_signal rejects a missing reading
    partial = rules.partial_reading(observation)
    if tps == 0:
        if partial is not None:
            return rules.hold(spec, observation, partial.reason, partial.message, no_zeros)
        return rules.zero_traffic(spec, observation, state, now)

    missed = observation.prefill_missed_tps
    wanted_p = wanted_prefill(spec, cur_p, missed)
    recommended, in_band = rules.recommend(spec, observation, tps, adaptive=wanted_p is not None)
    prefill_guarded = False
    if wanted_p is not None:
        unguarded = wanted_p
        wanted_p, recommended = rules.guard_prefill(spec, cur_p, wanted_p, recommended)
        prefill_guarded = wanted_p > unguarded
    window = stabilization.remember(
        state, now, recommended.decode, spec.behavior.scale_down.stabilization_window_seconds, wanted_p
    )
    next_state = state.model_copy(update={"recommendations": window, "zero_readings": 0, "idle_since": None})
    starting = observation.prefill.starting + observation.decode.starting
    if recommended.decode > cur_d:
        step = rules.scale_up(spec, state, now, cur_d, recommended)
    elif partial is not None:
        return rules.hold(spec, observation, partial.reason, f"{partial.message}; {recommended.load}", next_state)
    elif recommended.decode < cur_d:
        if starting:
            why = f"{recommended.load}, but {starting} pod(s) are still starting"
            return rules.hold(spec, observation, Reason.PODS_STARTING, why, next_state)
        step = rules.scale_down(spec, state, now, cur_d, window)
    else:
        step = rules.steady(spec, cur_d, in_band)

    pair = pair_for(spec, step.decode)
    adapted = None
    if wanted_p is not None:
        assert missed is not None  # wanted_prefill needs a reading
        adapted = adapted_prefill(spec, pair.decode, cur_p, missed, wanted_p, window)
        pair = Pair(
            adapted.prefill,
            pair.decode,
            pair.notes + adapted.notes,
            "; ".join(filter(None, [pair.detail, adapted.detail])),
        )
    notes = [*recommended.notes, *step.notes, *pair.notes, *([Reason.LATENCY_GUARD] if prefill_guarded else [])]
    prefill, decode, kept = rules.keep_until_scale_in_allowed(spec, observation, state, now, pair)
    if partial is not None:
        # Nothing goes down on a partial reading, whatever else (an adaptive ratio) would lower.
        prefill, decode = max(prefill, cur_p), max(decode, cur_d)
    waits = [w for w in (step.wait, kept) if w]
    # Cooldowns follow decode, the role the load drives. A prefill-only change restores the ratio
    # (e.g. after placement could not place a prefill instance); restarting the cooldown for it
    # would block decode from answering load for as long as the repair keeps recurring.
    if decode > cur_d:
        next_state = next_state.model_copy(update={"last_scale_up_time": now})
    elif decode < cur_d:
        next_state = next_state.model_copy(update={"last_scale_down_time": now})
    elif prefill != cur_p and adapted is None:
        notes.append(Reason.RATIO_REPAIRED)
        waits.append(f"prefill restores the {spec.ratio.prefill}:{spec.ratio.decode} ratio")

    scaled_up = prefill > cur_p or decode > cur_d
    scaled_down = prefill < cur_p or decode < cur_d
    primary = rules.primary_reason(notes, scaled_up, scaled_down, step.held)
    change = f"prefill {cur_p}->{prefill}, decode {cur_d}->{decode}"
    parts = [change if (scaled_up or scaled_down) else f"no change at prefill {cur_p}, decode {cur_d}"]
    parts += [recommended.load, *(["; ".join(waits)] if waits else []), *([pair.detail] if pair.detail else [])]
    if Reason.STEP_LIMITED in notes:
        parts.append("step limited by maxStepPercent")
    return Decision(
        prefill=prefill,
        decode=decode,
        reason=primary,
        message="; ".join(parts),
        state=next_state,
        recommended_decode=recommended.decode,
        notes=tuple(r for r in dict.fromkeys(notes) if r is not primary),
    )


def _reported(
    spec: PDServingGroupSpec, decision: Decision, in_force: floors.Floors, observation: Observation, now: float
) -> Decision:
    """Step 7: name the floors' sources, report stuck pods and manual edits, attach the schedule."""
    cur = (observation.prefill.replicas, observation.decode.replicas)
    moved = (decision.prefill, decision.decode) != cur
    reason, notes = decision.reason, list(decision.notes)
    source = in_force.decode_source or in_force.prefill_source
    if source is not None:
        # The floor in force is the schedule's or the person's, not minReplicas: say whose.
        reason = source if reason is Reason.CLAMPED_TO_MIN else reason
        notes = [source if n is Reason.CLAMPED_TO_MIN else n for n in notes]
        if decision.held and moved:
            notes += list(in_force.raised_by)
    parts = [decision.message]
    edited = manual.edited_text(observation)
    if edited and in_force.hold is None:
        parts.append(f"{edited}; manualHoldSeconds is 0, so it is not held: the policy's rules apply to it")
    elif edited:
        parts.append(f"{edited}: held as a floor")
    if edited or in_force.hold is not None:
        notes.append(Reason.MANUAL_OVERRIDE)
    if detail := in_force.detail(now):
        parts.append(detail)
    stuck = observation.prefill.stuck + observation.decode.stuck
    if stuck:
        parts.append(
            f"{observation.prefill.stuck} prefill and {observation.decode.stuck} decode pod(s) not ready after "
            f"podStartTimeoutSeconds {spec.behavior.pod_start_timeout_seconds}s: stuck, they do not block scale-in"
        )
        notes.append(Reason.PODS_STUCK)
        if not moved and reason not in HOLD_REASONS:
            notes.insert(0, reason)
            reason = Reason.PODS_STUCK
    if edited and not moved and reason not in HOLD_REASONS and reason is not Reason.PODS_STUCK:
        notes.insert(0, reason)
        reason = Reason.MANUAL_OVERRIDE
    return replace(
        decision,
        reason=reason,
        message="; ".join(parts),
        notes=tuple(r for r in dict.fromkeys(notes) if r is not reason),
        schedule=in_force.schedule.status() if in_force.schedule is not None else None,
    )
