"""What the policy sees on one tick: the decode-throughput reading and each pool's state.

Built by the operator from Prometheus and the Deployments, and by the simulator from its model;
the policy cannot tell the two apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PoolObservation:
    """One role's instances as they are now."""

    replicas: int
    """Instances asked for now (the Deployments' spec.replicas, summed over groups)."""
    ready: int
    """Instances serving."""
    starting: int = 0
    """Instances asked for whose pod is not ready yet but was created less than
    ``behavior.podStartTimeoutSeconds`` ago (image pull, model loading), and pods not created yet.
    They block scale-in: their load is not in the signal yet."""
    by_gpu_type: Mapping[str, int] = field(default_factory=dict)
    """Instances asked for now, per GPU type; weights the per-type decode targets."""
    stuck: int = 0
    """Instances asked for whose pod is still not ready ``behavior.podStartTimeoutSeconds`` after its
    creation (CrashLoopBackOff, an image that cannot be pulled, Unschedulable). They do not block
    scale-in and are reported (``PodsStuck``); ``replicas = ready + starting + stuck``. The policy
    asks for no replacement (it would meet the same cause); a scale-in removes them first (not-ready
    pods go first). For the ratio they count as missing: judged on serving pods they are absent."""


@dataclass(frozen=True)
class ManualEdit:
    """The replicas a person set, per role (summed over the role's Deployments); None for a role
    whose Deployments still ask for what the operator last wrote."""

    prefill: int | None = None
    decode: int | None = None


@dataclass(frozen=True)
class Observation:
    """The inputs of one decision, besides the spec and the carried state."""

    decode_tps: float | None
    """Decode tokens/s over the metric window; None when the query gave no usable answer."""
    metric_age_seconds: float | None
    """Age of the newest sample behind decode_tps; None when unknown."""
    prefill: PoolObservation
    decode: PoolObservation
    tbt_seconds: float | None = None
    """Time between tokens at the guard's quantile, for the latency safety net; None if unread."""
    ttft_seconds: float | None = None
    """Time to first token at the guard's quantile, for the latency safety net; None if unread."""
    prefill_queued: float | None = None
    """Requests waiting for a prefill engine now, for the latency safety net's queue estimate
    (:func:`heteroscale.policy.latency.queue_wait`); None if unread."""
    prefill_rps: float | None = None
    """Requests whose prefill ended per second over the metric window, for the same; None if unread."""
    prefill_missed_tps: float | None = None
    """KV-cache-missed prefill tokens/s over the metric window, for an adaptive ratio; None if unread."""
    decode_reporting: int | None = None
    """Decode instances whose series make up decode_tps now; None when unknown. Fewer than the
    ready decode instances means the reading is a partial sum."""
    activation: float | None = None
    """``behavior.scaleToZero.activationQuery``'s value now (requests or queued requests per second
    at the gateway); None when not configured or unread (no answer, no series, stale). A
    non-finite or negative value is treated as unread."""
    manual_edit: ManualEdit | None = None
    """Replicas a person set on this tick: a role's managed Deployments ask for other replicas than
    the operator last wrote to them; None when nothing was edited."""
