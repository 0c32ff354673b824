"""The latency safety net: tiered extra scale-out when TBT exceeds its SLO (pure).

Latency is not proportional to load (flat, then a cliff), so it never drives scaling on its own;
it only adds a fixed step on top of the throughput recommendation when the SLO is at risk.
"""

from __future__ import annotations

import math

from heteroscale.api.spec import LatencyGuard, LatencyTier


def breached_tier(guard: LatencyGuard | None, tbt_seconds: float | None) -> LatencyTier | None:
    """The highest tier whose threshold (SLO * over) the observed TBT exceeds."""
    if guard is None or tbt_seconds is None or not math.isfinite(tbt_seconds):
        return None
    hit = [tier for tier in guard.tiers if tbt_seconds > guard.slo_seconds * tier.over]
    return max(hit, key=lambda tier: tier.over, default=None)


def guarded(current: int, tier: LatencyTier) -> int:
    """Decode instances after the tier's extra step (at least one more)."""
    return current + max(1, math.ceil(current * tier.step_percent / 100))
