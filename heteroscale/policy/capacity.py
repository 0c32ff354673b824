"""Decode capacity from throughput: the proportional part of the policy (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping

# Guards ceil() against float noise such as 3.0000000000000004 instances.
_EPSILON = 1e-9


def weighted_target(targets: Mapping[str, float], by_gpu_type: Mapping[str, int], preferred: str) -> float:
    """Tokens/s per decode instance, averaged over the GPU types now serving, by instance count.

    With no instance of a known type (cold start) the most preferred type's target is used,
    since that is what placement will try first.
    """
    weights = {gpu: n for gpu, n in by_gpu_type.items() if n > 0 and gpu in targets}
    total = sum(weights.values())
    if total == 0:
        return targets[preferred]
    return sum(targets[gpu] * n for gpu, n in weights.items()) / total


def instances_for(decode_tps: float, target_per_instance: float) -> int:
    """Fewest decode instances that serve ``decode_tps`` at the target: ceil(load / target)."""
    return max(0, math.ceil(decode_tps / target_per_instance - _EPSILON))


def within_tolerance(decode_tps: float, current: int, target_per_instance: float, tolerance: float) -> bool:
    """HPA's dead band: load per instance within target * (1 +- tolerance) means no change."""
    if current <= 0:
        return False
    usage_ratio = decode_tps / (current * target_per_instance)
    return abs(usage_ratio - 1.0) <= tolerance
