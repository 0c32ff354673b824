"""``decide()``: one coordinated prefill/decode scaling step (pure: no I/O, no clock reads).

The order of the rules (:mod:`heteroscale.policy.rules`) matters and is the contract users rely on:

1. An untrustworthy signal (missing, NaN/Inf/negative, stale) holds both roles where they are;
   only a pool below its minimum is brought up to it (as the HPA does without metrics). A partial
   reading (fewer decode instances report than are ready) is a lower bound of the load: it may
   scale out, and otherwise holds (``MetricPartial``); it never scales in.
2. Zero throughput holds until ``zeroTrafficReadings`` consecutive zeros, then both roles go to
   their minimum in one explicit step.
3. Decode instances = ceil(TPS / target per instance), the target weighted by the GPU types now
   serving; within the tolerance band the current count stands. The latency guard may add a
   tiered step on top.
4. Scale-out obeys its cooldown and step limit. Scale-in waits while pods are starting, takes the
   highest recommendation of the stabilization window, waits out its cooldown after any scale
   action, and obeys its step limit.
5. Decode is clamped to its bounds and prefill follows from the ratio in the same decision; a
   prefill bound that breaks the ratio is repaired by raising decode (see :mod:`ratio`). With
   ``ratio.adaptive`` prefill instead follows its own KV-missed throughput, within the declared
   band of prefill per decode instance, with hysteresis; still in the same decision.
"""

from __future__ import annotations

from heteroscale.api.enums import Reason
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import PolicyState
from heteroscale.policy import rules, stabilization
from heteroscale.policy.decision import Decision
from heteroscale.policy.observation import Observation
from heteroscale.policy.ratio import Pair, adapted_prefill, pair_for


def decide(spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float) -> Decision:
    """Decide prefill and decode instance counts together for one tick."""
    cur_p, cur_d = observation.prefill.replicas, observation.decode.replicas
    no_zeros = state.model_copy(update={"zero_readings": 0})
    problem = rules.untrusted_signal(spec, observation)
    if problem is not None:
        return rules.hold(spec, observation, problem.reason, problem.message, no_zeros)
    tps = observation.decode_tps
    assert tps is not None  # untrusted_signal rejects a missing reading
    partial = rules.partial_reading(observation)
    if tps == 0:
        if partial is not None:
            return rules.hold(spec, observation, partial.reason, partial.message, no_zeros)
        return rules.zero_traffic(spec, observation, state, now)

    recommended, in_band = rules.recommend(spec, observation, tps)
    window = stabilization.remember(
        state, now, recommended.decode, spec.behavior.scale_down.stabilization_window_seconds
    )
    next_state = state.model_copy(update={"recommendations": window, "zero_readings": 0})
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
    adapted = adapted_prefill(spec, pair.decode, cur_p, observation.prefill_missed_tps)
    if adapted is not None:
        pair = Pair(
            adapted.prefill,
            pair.decode,
            pair.notes + adapted.notes,
            "; ".join(filter(None, [pair.detail, adapted.detail])),
        )
    notes = [*recommended.notes, *step.notes, *pair.notes]
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
