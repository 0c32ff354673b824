"""Reason codes, condition types and other closed vocabularies shared by every package.

The policy returns a :class:`Reason`; the operator turns it into status and Events and the
simulator counts it, so the words a user reads are the same everywhere.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PREFILL = "prefill"
    DECODE = "decode"


class Mode(StrEnum):
    ENFORCE = "Enforce"
    DRY_RUN = "DryRun"


class Engine(StrEnum):
    VLLM = "vllm"
    SGLANG = "sglang"
    CUSTOM = "custom"


class Reason(StrEnum):
    """Why a decision came out as it did; one per Decision."""

    SCALED_UP = "ScaledUp"
    SCALED_DOWN = "ScaledDown"
    WITHIN_TOLERANCE = "WithinTolerance"
    COOLDOWN_ACTIVE = "CooldownActive"
    STABILIZING = "Stabilizing"
    METRIC_MISSING = "MetricMissing"
    METRIC_INVALID = "MetricInvalid"
    METRIC_STALE = "MetricStale"
    METRIC_PARTIAL = "MetricPartial"
    PODS_STARTING = "PodsStarting"
    ZERO_TRAFFIC = "ZeroTraffic"
    LATENCY_GUARD = "LatencyGuard"
    CLAMPED_TO_MAX = "ClampedToMax"
    CLAMPED_TO_MIN = "ClampedToMin"
    RATIO_REPAIRED = "RatioRepaired"
    STEP_LIMITED = "StepLimited"
    SCALED_TO_ZERO = "ScaledToZero"
    """behavior.scaleToZero: both roles at (or going to) zero after idleSeconds without traffic."""
    ACTIVATING = "Activating"
    """A group at zero starts one prefill/decode set on its activation reading; a hold until a decode
    instance is ready and decode tokens/s flows."""
    PODS_STUCK = "PodsStuck"
    """Pods not ready after behavior.podStartTimeoutSeconds: reported, and they no longer block scale-in."""
    MANUAL_OVERRIDE = "ManualOverride"
    """A person changed a managed Deployment's replicas; the counts they set are a floor until it expires."""
    SCHEDULE_FLOOR = "ScheduleFloor"
    """The floor of the spec.schedules entry in force raised the count (as ClampedToMin for minReplicas)."""
    # Reasons the operator/placement add; the policy never returns these.
    UNSCHEDULABLE = "Unschedulable"
    CONFLICT = "Conflict"
    INVALID_SPEC = "InvalidSpec"
    DRY_RUN = "DryRun"
    NOT_ALLOWED = "NotAllowed"
    """The spec asks for something outside its namespace's boundary (an endpoint or series the
    cluster admin did not allow it)."""
    NOT_OWNED = "NotOwned"
    """A Deployment the group wants exists but is not the group's; nothing is taken over silently."""
    DEPLOYMENT_MISSING = "DeploymentMissing"
    ADOPTED = "Adopted"
    GROUP_REMOVED = "GroupRemoved"
    DRAIN_COMPLETE = "DrainComplete"
    DRAIN_CANCELLED = "DrainCancelled"
    RECONCILE_FAILED = "ReconcileFailed"
    """A tick failed (the API server refused or did not answer, or an internal error); retried with backoff."""
    # Condition reasons for the healthy state of a condition.
    RECONCILED = "Reconciled"
    PODS_NOT_READY = "PodsNotReady"
    METRIC_READ = "MetricRead"
    RATIO_HELD = "RatioHeld"
    NO_CONFLICT = "NoConflict"


#: Reasons under which the policy refuses to change anything because the signal is untrustworthy.
HOLD_REASONS = frozenset(
    {
        Reason.METRIC_MISSING,
        Reason.METRIC_INVALID,
        Reason.METRIC_STALE,
        Reason.METRIC_PARTIAL,
        Reason.PODS_STARTING,
        Reason.ACTIVATING,
    }
)
#: Hold reasons that are about the signal itself (MetricsAvailable is False under them).
METRIC_REASONS = frozenset({Reason.METRIC_MISSING, Reason.METRIC_INVALID, Reason.METRIC_STALE, Reason.METRIC_PARTIAL})


class ConditionType(StrEnum):
    READY = "Ready"
    METRICS_AVAILABLE = "MetricsAvailable"
    SCALING_ACTIVE = "ScalingActive"
    RATIO_SATISFIED = "RatioSatisfied"
    CONFLICT = "Conflict"
    ACTIVE = "Active"
    """As KEDA's: True while the group serves or is Activating, False (reason ScaledToZero) at zero.
    Only groups with behavior.scaleToZero have it."""
    MANUAL_OVERRIDE = "ManualOverride"
    """True (reason ManualOverride) while a person's edit is held as a floor (PolicyState.manualHold)."""


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"
