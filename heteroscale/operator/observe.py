"""The policy's view of the pools, from the Deployments' spec and status (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from heteroscale.api.enums import Role
from heteroscale.operator.naming import GroupPlan
from heteroscale.policy.observation import PoolObservation


def asked(deployment: Mapping[str, Any] | None) -> int:
    """Replicas a Deployment asks for now (0 when it does not exist yet)."""
    return int((deployment or {}).get("spec", {}).get("replicas") or 0)


def ready(deployment: Mapping[str, Any] | None) -> int:
    return int((deployment or {}).get("status", {}).get("readyReplicas") or 0)


def pool(
    role: Role, groups: Sequence[GroupPlan], deployments: Mapping[str, Mapping[str, Any] | None]
) -> PoolObservation:
    """One role summed over its groups. Pods asked for but not ready count as starting, which holds
    any scale-in until they are up (their readiness is the only progress signal the API offers)."""
    replicas = ready_now = 0
    by_gpu: dict[str, int] = {}
    for group in groups:
        if group.role is not role:
            continue
        deployment = deployments.get(group.name)
        replicas += asked(deployment)
        ready_now += min(ready(deployment), asked(deployment))
        by_gpu[group.gpu_type] = by_gpu.get(group.gpu_type, 0) + asked(deployment)
    return PoolObservation(replicas=replicas, ready=ready_now, starting=replicas - ready_now, by_gpu_type=by_gpu)
