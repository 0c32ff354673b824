"""docs/reference/reasons.md: every reason code, what it means and what to do.

The codes are :class:`heteroscale.api.enums.Reason`; the words are here. A code without an entry
stops ``heteroscale generate`` (and the drift test) with its name, so a new code is documented
before it ships.
"""

from __future__ import annotations

from heteroscale.api.enums import HOLD_REASONS, Reason
from heteroscale.reference import notice

#: (what it means, what to do) per reason code.
MEANINGS: dict[Reason, tuple[str, str]] = {
    Reason.SCALED_UP: (
        "Load (decode tokens/s over the target per instance) or the latency guard asked for more decode "
        "instances; prefill followed from the ratio.",
        "Nothing. Frequent ups and downs: see HeteroscaleFlapping.",
    ),
    Reason.SCALED_DOWN: (
        "Load fell; the stabilization window's highest recommendation and the cooldown allowed a smaller size.",
        "Nothing. Pods leave the Service first and are deleted after `drainSeconds`.",
    ),
    Reason.WITHIN_TOLERANCE: (
        "Load per instance is within `1 ± tolerance` of the target (the HPA's dead band): no change.",
        "Nothing.",
    ),
    Reason.COOLDOWN_ACTIVE: (
        "A change is wanted but the last scale action was too recent (`scaleUp.cooldownSeconds`, "
        "`scaleDown.cooldownSeconds`).",
        "Nothing, unless it persists through a traffic ramp: shorten the cooldown.",
    ),
    Reason.STABILIZING: (
        "Load fell, but a higher recommendation inside `stabilizationWindowSeconds` keeps the size.",
        "Nothing; the window prevents scaling in on a dip.",
    ),
    Reason.METRIC_MISSING: (
        "No decode tokens/s reading (empty result, Prometheus unreachable, HTTP error, timeout), or, for a group "
        "scaled to zero, no activation reading. The group holds its size and never scales in (or out of zero).",
        "See [MetricMissing](../operating.md#metricmissing-metricstale-metricinvalid).",
    ),
    Reason.METRIC_INVALID: (
        "The reading is NaN, infinite or negative. Held as for a missing reading.",
        "A custom query that divides by zero or subtracts counters; see "
        "[troubleshooting](../operating.md#metricmissing-metricstale-metricinvalid).",
    ),
    Reason.METRIC_STALE: (
        "A series behind the reading lags more than `metric.staleAfter`, or no series reports any more. "
        "Held as for a missing reading.",
        "The engines are not scraped any more; see "
        "[troubleshooting](../operating.md#metricmissing-metricstale-metricinvalid).",
    ),
    Reason.METRIC_PARTIAL: (
        "Fewer decode pods report decode tokens/s than are ready: the sum is partial, a lower bound of the "
        "load. It may scale out on it, never in.",
        "Some engines are not scraped (crashed exporter, a pod the monitor does not select); see "
        "[troubleshooting](../operating.md#metricpartial).",
    ),
    Reason.PODS_STARTING: (
        "Pods of the group are still starting: a scale-in waits until they are ready (their load is not in "
        "the signal yet). Only pods within `behavior.podStartTimeoutSeconds` of their creation count.",
        "Nothing; pods that never become ready turn into `PodsStuck` after the timeout.",
    ),
    Reason.PODS_STUCK: (
        "Pods not ready `behavior.podStartTimeoutSeconds` after their creation (CrashLoopBackOff, an image that "
        "cannot be pulled, Unschedulable). They no longer block scale-in (a scale-in removes them first), no "
        "replacement is asked for, and they count as missing for the ratio.",
        "Look at the pods (`kubectl describe pod`, `kubectl logs --previous`): fix the image, quota or node "
        "shortage named there.",
    ),
    Reason.SCALED_TO_ZERO: (
        "`behavior.scaleToZero`: the group was idle (zero decode tokens/s and the activation reading at or below "
        "`activationThreshold`) for `idleSeconds`, so both roles went to zero; or it is at zero and stays there.",
        "Nothing. The next request waits for a cold start (the activation delay plus the engines' start-up).",
    ),
    Reason.ACTIVATING: (
        "A group at zero saw its activation reading rise above `activationThreshold` and starts one "
        "prefill/decode set at the ratio; held (never scales in) until a decode instance serves and decode "
        "tokens/s flows.",
        "Nothing, unless it lasts longer than the engines' start-up: see `PodsStuck`.",
    ),
    Reason.MANUAL_OVERRIDE: (
        "A person changed a managed Deployment's replicas (e.g. `kubectl scale`). For "
        "`behavior.manualHoldSeconds` their counts are a floor (the policy may go higher, not lower); with 0 the "
        "policy's counts are written back at once.",
        "Nothing. For a lasting change edit the PDServingGroup (`minReplicas`, `schedules`) instead.",
    ),
    Reason.SCHEDULE_FLOOR: (
        "The floor of the `spec.schedules` entry in force (see `status.schedule`) raised the count, as "
        "`minReplicas` would (`ClampedToMin`).",
        "Nothing.",
    ),
    Reason.ZERO_TRAFFIC: (
        "`behavior.zeroTrafficReadings` consecutive zero readings: both roles go to their minimum.",
        "Nothing. A single zero is only held, in case the engines restarted.",
    ),
    Reason.LATENCY_GUARD: (
        "Time between tokens exceeds `sloSeconds x over` of a tier: decode adds that tier's `stepPercent`.",
        "If it stays above the SLO, the per-instance target is too high for it: lower `targetTPSPerInstance`.",
    ),
    Reason.CLAMPED_TO_MAX: (
        "Load asks for more than `maxReplicas` of decode (or the ratio for more than prefill's): capped.",
        "Raise `maxReplicas` (both roles, keeping the ratio) or add capacity; see HeteroscaleStuckAtMax.",
    ),
    Reason.CLAMPED_TO_MIN: (
        "The size the load asks for is below `minReplicas`: raised to it.",
        "Nothing.",
    ),
    Reason.RATIO_REPAIRED: (
        "A bound broke the declared ratio, so the short side was raised (a prefill minimum raises decode), "
        "or prefill alone changed to restore the ratio. Restarts no cooldown.",
        "Nothing; check the bounds if it repeats.",
    ),
    Reason.STEP_LIMITED: (
        "A scale action was cut to `maxStepPercent` (or `scaleUp.minStepInstances`) of the current size.",
        "Nothing; the next periods continue.",
    ),
    Reason.UNSCHEDULABLE: (
        "Placement found no room for some instances: no colocation domain has enough free GPUs of an "
        "allowed type for them next to their group's other role.",
        "See [Unschedulable](../operating.md#unschedulable).",
    ),
    Reason.CONFLICT: (
        "An HPA, a KEDA ScaledObject, another controller (ownerReference) or an earlier PDServingGroup "
        "manages one of the group's Deployments. The operator refuses to act.",
        "See [Conflict](../operating.md#conflict).",
    ),
    Reason.INVALID_SPEC: (
        "The spec fails validation (a rule the API server did not catch, e.g. a PromQL placeholder in the "
        "wrong place). Nothing is written but status and a Warning Event.",
        "See [InvalidSpec](../operating.md#invalidspec).",
    ),
    Reason.DRY_RUN: (
        "`mode: DryRun`: the decision is in status and Events; no Deployment is touched.",
        "Switch to `mode: Enforce` when the decisions look right.",
    ),
    Reason.NOT_ALLOWED: (
        "The spec asks for something its namespace may not have: a Prometheus endpoint the cluster admin did "
        "not configure or allow for the namespace, or a custom query that reads outside the namespace. "
        "Nothing is read or written.",
        "See [NotAllowed](../operating.md#notallowed) and the [security model](../security.md).",
    ),
    Reason.NOT_OWNED: (
        "A Deployment with the name the group wants exists but is not the group's (no controller "
        "ownerReference to it). Nothing is written.",
        "See [NotOwned](../operating.md#notowned): delete or rename it, reference it, or annotate it "
        "`heteroscale.io/adopt=<group>`.",
    ),
    Reason.DEPLOYMENT_MISSING: (
        "A `deploymentRef` names a Deployment that does not exist in the group's namespace. Nothing is written.",
        "Create the Deployment or fix the name.",
    ),
    Reason.ADOPTED: (
        "The group took over a Deployment whose owner annotated it `heteroscale.io/adopt=<group>`.",
        "Nothing.",
    ),
    Reason.GROUP_REMOVED: (
        "Deployments the group owned and no longer uses (left the plan, or left over from template mode) "
        "were drained to 0 and deleted.",
        "Nothing.",
    ),
    Reason.DRAIN_COMPLETE: (
        "The pods taken out of serving for a scale-in were removed after `drainSeconds`.",
        "Nothing.",
    ),
    Reason.DRAIN_CANCELLED: (
        "A drain was cancelled (load came back, latency degraded, or the signal could not be trusted): the "
        "pods serve again, with no cold start.",
        "Nothing.",
    ),
    Reason.RECONCILE_FAILED: (
        "A tick failed: the API server refused a request (403, 422 ...) or did not answer after retries, or "
        "an internal error. Retried with backoff, doubling up to 5 minutes.",
        "See [ReconcileFailed](../operating.md#reconcilefailed).",
    ),
    Reason.RECONCILED: ("Condition `Ready`: every instance asked for is ready.", "Nothing."),
    Reason.PODS_NOT_READY: (
        "Condition `Ready`: some instances asked for are not ready yet (the message names them).",
        "Nothing while they start; check the pods if it persists.",
    ),
    Reason.METRIC_READ: ("Condition `MetricsAvailable`: the reading was fresh and complete.", "Nothing."),
    Reason.RATIO_HELD: ("Condition `RatioSatisfied`: the counts keep the declared ratio.", "Nothing."),
    Reason.NO_CONFLICT: ("Condition `Conflict`: no other autoscaler targets the group's Deployments.", "Nothing."),
}


def page() -> str:
    missing = [reason.value for reason in Reason if reason not in MEANINGS]
    if missing:
        raise ValueError(f"reason codes without a meaning in heteroscale/reference/reasons.py: {', '.join(missing)}")
    rows = []
    for reason in Reason:
        meaning, action = MEANINGS[reason]
        rows.append(f"| `{reason.value}` | {'yes' if reason in HOLD_REASONS else ''} | {meaning} | {action} |")
    return (
        "\n\n".join(
            [
                "# Reason codes",
                notice("heteroscale/api/enums.py"),
                "Every decision carries one reason code: in `status.lastDecision.reason`, the `Reason` column of "
                "`kubectl get pdsg`, the Events of the PDServingGroup and `heteroscale_decisions_total{reason}`; "
                "`heteroscale decide` prints the same codes. A hold keeps the size because the signal cannot be "
                "trusted: it never scales in.",
                "\n".join(["| reason | hold | what it means | what to do |", "|---|---|---|---|", *rows]),
            ]
        )
        + "\n"
    )
