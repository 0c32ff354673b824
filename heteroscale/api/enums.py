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
    {Reason.METRIC_MISSING, Reason.METRIC_INVALID, Reason.METRIC_STALE, Reason.METRIC_PARTIAL, Reason.PODS_STARTING}
)
#: Hold reasons that are about the signal itself (MetricsAvailable is False under them).
METRIC_REASONS = frozenset({Reason.METRIC_MISSING, Reason.METRIC_INVALID, Reason.METRIC_STALE, Reason.METRIC_PARTIAL})


class ConditionType(StrEnum):
    READY = "Ready"
    METRICS_AVAILABLE = "MetricsAvailable"
    SCALING_ACTIVE = "ScalingActive"
    RATIO_SATISFIED = "RatioSatisfied"
    CONFLICT = "Conflict"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"
