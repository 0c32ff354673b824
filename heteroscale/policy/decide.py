"""``decide()``: one coordinated prefill/decode scaling step (pure: no I/O, no clock reads).

The order of the rules matters and is the contract users rely on:

1. An untrustworthy signal (missing, NaN/Inf/negative, stale) holds both roles where they are;
   only a pool below its minimum is brought up to it (as the HPA does without metrics).
2. Zero throughput holds until ``zeroTrafficReadings`` consecutive zeros, then both roles go to
   their minimum in one explicit step.
3. Decode instances = ceil(TPS / target per instance), the target weighted by the GPU types now
   serving; within the tolerance band the current count stands. The latency guard may add a
   tiered step on top.
4. Scale-out obeys its cooldown and step limit. Scale-in waits while pods are starting, takes the
   highest recommendation of the stabilization window, waits out its cooldown after any scale
   action, and obeys its step limit.
5. Decode is clamped to its bounds and prefill follows from the ratio in the same decision; a
   prefill bound that breaks the ratio is repaired by raising decode (see :mod:`ratio`).
"""

from __future__ import annotations

import math

from heteroscale.api.enums import Reason
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import PolicyState
from heteroscale.policy import capacity, latency, stabilization
from heteroscale.policy.decision import Decision
from heteroscale.policy.observation import Observation
from heteroscale.policy.ratio import pair_for

# When several reasons shaped an outcome, the one a person most needs to see comes first.
_PRIMARY_ORDER = (Reason.CLAMPED_TO_MAX, Reason.RATIO_REPAIRED, Reason.CLAMPED_TO_MIN, Reason.LATENCY_GUARD)


def decide(spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float) -> Decision:
    """Decide prefill and decode instance counts together for one tick."""
    cur_p, cur_d = observation.prefill.replicas, observation.decode.replicas
    where = f"holding at prefill {cur_p}, decode {cur_d}"

    def hold(reason: Reason, why: str, next_state: PolicyState) -> Decision:
        if cur_d >= spec.decode.min_replicas and cur_p >= spec.prefill.min_replicas:
            return Decision(cur_p, cur_d, reason, f"{why}; {where}", next_state)
        # As Kubernetes' HPA does without metrics: nothing moves on the signal's account, but pools
        # below their minimum (just raised in the spec, say) are brought up to it, never down.
        floor = pair_for(spec, max(cur_d, spec.decode.min_replicas))
        prefill, decode = max(cur_p, floor.prefill), max(cur_d, floor.decode)
        raised = f"only the minimums apply: prefill {cur_p}->{prefill}, decode {cur_d}->{decode}"
        return Decision(prefill, decode, reason, f"{why}; {raised}", next_state)

    tps = observation.decode_tps
    age = observation.metric_age_seconds
    no_zeros = state.model_copy(update={"zero_readings": 0})
    if tps is None:
        return hold(Reason.METRIC_MISSING, "no decode tokens/s reading from Prometheus", no_zeros)
    if not math.isfinite(tps) or tps < 0:
        why = f"decode tokens/s reading {tps} is not a finite, non-negative number"
        return hold(Reason.METRIC_INVALID, why, no_zeros)
    stale_after = spec.metric.stale_after_seconds
    if age is None or not math.isfinite(age) or age > stale_after:
        shown = "unknown" if age is None else f"{age:.0f}s"
        why = f"decode tokens/s reading is stale (age {shown} > staleAfter {stale_after}s)"
        return hold(Reason.METRIC_STALE, why, no_zeros)

    behavior = spec.behavior
    if tps == 0:
        zeros = state.zero_readings + 1
        counted = state.model_copy(update={"zero_readings": zeros})
        wanted = behavior.zero_traffic_readings
        if zeros < wanted:
            return hold(Reason.ZERO_TRAFFIC, f"zero decode throughput ({zeros}/{wanted} readings)", counted)
        if observation.prefill.starting or observation.decode.starting:
            return hold(Reason.PODS_STARTING, "zero decode throughput, but pods are still starting", counted)
        floor = pair_for(spec, 0)
        update: dict[str, object] = {"recommendations": []}
        if floor.decode < cur_d:
            update["last_scale_down_time"] = now
        return Decision(
            floor.prefill,
            floor.decode,
            Reason.ZERO_TRAFFIC,
            f"no decode traffic for {zeros} readings; both roles at their minimum: "
            f"prefill {cur_p}->{floor.prefill}, decode {cur_d}->{floor.decode}"
            + (f"; {floor.detail}" if floor.detail else ""),
            counted.model_copy(update=update),
            recommended_decode=0,
            notes=floor.notes,
        )

    target = capacity.weighted_target(
        spec.decode.target_tps_per_instance, observation.decode.by_gpu_type, spec.roles.decode.gpu_types[0]
    )
    needed = capacity.instances_for(tps, target)
    load = f"{tps:,.0f} tok/s needs {needed} decode at {target:,.0f} tok/s each"
    in_band = capacity.within_tolerance(tps, cur_d, target, behavior.tolerance)
    recommended = cur_d if in_band else needed
    notes: list[Reason] = []
    tier = latency.breached_tier(behavior.latency_guard, observation.tbt_seconds)
    if tier is not None and latency.guarded(cur_d, tier) > recommended:
        recommended = latency.guarded(cur_d, tier)
        notes.append(Reason.LATENCY_GUARD)
        load += f"; TBT {observation.tbt_seconds:.3f}s is over {tier.over}x the SLO, +{tier.step_percent}%"

    window = stabilization.remember(state, now, recommended, behavior.scale_down.stabilization_window_seconds)
    next_state = state.model_copy(update={"recommendations": window, "zero_readings": 0})

    held_reason: Reason | None = None
    wait = ""
    if recommended > cur_d:
        cooldown = stabilization.up_cooldown_left(state, now, behavior.scale_up)
        if cooldown > 0:
            desired, held_reason, wait = cur_d, Reason.COOLDOWN_ACTIVE, f"scale-up cooldown {cooldown:.0f}s left"
        else:
            desired = min(recommended, stabilization.step_up_limit(cur_d, behavior.scale_up))
            if desired < recommended:
                notes.append(Reason.STEP_LIMITED)
    elif recommended < cur_d:
        if observation.prefill.starting or observation.decode.starting:
            starting = observation.prefill.starting + observation.decode.starting
            return hold(Reason.PODS_STARTING, f"{load}, but {starting} pod(s) are still starting", next_state)
        highest = stabilization.stabilized(window)
        cooldown = stabilization.down_cooldown_left(state, now, behavior.scale_down)
        if highest >= cur_d:
            desired, held_reason = cur_d, Reason.STABILIZING
            wait = f"the last {behavior.scale_down.stabilization_window_seconds}s recommended up to {highest}"
        elif cooldown > 0:
            desired, held_reason, wait = cur_d, Reason.COOLDOWN_ACTIVE, f"scale-down cooldown {cooldown:.0f}s left"
        else:
            desired = max(highest, stabilization.step_down_limit(cur_d, behavior.scale_down))
            if desired > highest:
                notes.append(Reason.STEP_LIMITED)
    else:
        desired, held_reason = cur_d, Reason.WITHIN_TOLERANCE
        wait = f"within ±{behavior.tolerance:.0%} of the target" if in_band else "at target"

    pair = pair_for(spec, desired)
    notes.extend(pair.notes)
    prefill, decode = pair.prefill, pair.decode
    starting = observation.prefill.starting + observation.decode.starting
    scale_in_blocked = starting > 0 or stabilization.down_cooldown_left(state, now, behavior.scale_down) > 0
    if scale_in_blocked and (prefill < cur_p or decode < cur_d):
        # Restoring the ratio by removing instances is a scale-in like any other: it waits for
        # starting pods and the cooldown. Only the spec's bounds apply at once.
        decode = max(decode, min(cur_d, spec.decode.max_replicas))
        prefill = max(pair_for(spec, decode).prefill, min(cur_p, spec.prefill.max_replicas))
        wait = (wait + "; " if wait else "") + "instances above the ratio stay until scale-in is allowed"
    scaled_up = prefill > cur_p or decode > cur_d
    scaled_down = prefill < cur_p or decode < cur_d
    # Cooldowns follow decode, the role the load drives. A prefill-only change restores the ratio
    # (e.g. after placement could not place a prefill instance); restarting the cooldown for it
    # would block decode from answering load for as long as the repair keeps recurring.
    if decode > cur_d:
        next_state = next_state.model_copy(update={"last_scale_up_time": now})
    elif decode < cur_d:
        next_state = next_state.model_copy(update={"last_scale_down_time": now})
    elif prefill != cur_p:
        notes.append(Reason.RATIO_REPAIRED)
        wait = (wait + "; " if wait else "") + f"prefill restores the {spec.ratio.prefill}:{spec.ratio.decode} ratio"

    primary = next((r for r in _PRIMARY_ORDER if r in notes), None)
    if primary is None:
        if scaled_up:
            primary = Reason.SCALED_UP
        elif scaled_down:
            primary = Reason.SCALED_DOWN
        else:
            primary = held_reason or Reason.WITHIN_TOLERANCE
    change = f"prefill {cur_p}->{prefill}, decode {cur_d}->{decode}"
    parts = [change if (scaled_up or scaled_down) else f"no change at prefill {cur_p}, decode {cur_d}", load]
    parts += [p for p in (wait, pair.detail) if p]
    if Reason.STEP_LIMITED in notes:
        parts.append("step limited by maxStepPercent")
    secondary = tuple(r for r in dict.fromkeys(notes) if r is not primary)
    return Decision(
        prefill=prefill,
        decode=decode,
        reason=primary,
        message="; ".join(parts),
        state=next_state,
        recommended_decode=recommended,
        notes=secondary,
    )
