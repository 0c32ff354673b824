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
    """Instances created but not ready yet (model still loading)."""
    by_gpu_type: Mapping[str, int] = field(default_factory=dict)
    """Instances asked for now, per GPU type; weights the per-type decode targets."""


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
    prefill_missed_tps: float | None = None
    """KV-cache-missed prefill tokens/s over the metric window, for an adaptive ratio; None if unread."""
    decode_reporting: int | None = None
    """Decode instances whose series make up decode_tps now; None when unknown. Fewer than the
    ready decode instances means the reading is a partial sum."""
