"""The policy's view of the pools, from the Deployments' spec, status and annotations (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from heteroscale.api.enums import Role
from heteroscale.api.labels import ANNOTATION_LAST_REPLICAS
from heteroscale.operator.naming import GroupPlan
from heteroscale.policy.observation import ManualEdit, PoolObservation


def asked(deployment: Mapping[str, Any] | None) -> int:
    """Replicas a Deployment asks for now (0 when it does not exist yet)."""
    return int((deployment or {}).get("spec", {}).get("replicas") or 0)


def ready(deployment: Mapping[str, Any] | None) -> int:
    return int((deployment or {}).get("status", {}).get("readyReplicas") or 0)


def pool(
    role: Role,
    groups: Sequence[GroupPlan],
    deployments: Mapping[str, Mapping[str, Any] | None],
    stuck: Mapping[str, int] | None = None,
) -> PoolObservation:
    """One role summed over its groups. Pods asked for but not ready count as starting, which holds
    any scale-in until they are up (their readiness is the only progress signal the API offers),
    except the ``stuck`` ones per Deployment (not ready after podStartTimeoutSeconds), which do not."""
    replicas = ready_now = stuck_now = 0
    by_gpu: dict[str, int] = {}
    for group in groups:
        if group.role is not role:
            continue
        deployment = deployments.get(group.name)
        replicas += asked(deployment)
        serving = min(ready(deployment), asked(deployment))
        ready_now += serving
        stuck_now += min((stuck or {}).get(group.name, 0), asked(deployment) - serving)
        by_gpu[group.gpu_type] = by_gpu.get(group.gpu_type, 0) + asked(deployment)
    return PoolObservation(
        replicas=replicas,
        ready=ready_now,
        starting=replicas - ready_now - stuck_now,
        by_gpu_type=by_gpu,
        stuck=stuck_now,
    )


def last_written(deployment: Mapping[str, Any] | None) -> int | None:
    """The replicas the operator last wrote to the Deployment (its annotation); None when unknown."""
    value = ((deployment or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION_LAST_REPLICAS)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def manual_edit(groups: Sequence[GroupPlan], deployments: Mapping[str, Mapping[str, Any] | None]) -> ManualEdit | None:
    """The replicas a person set, per role: a role any of whose Deployments asks for other replicas
    than the operator last wrote to it, summed over the role's Deployments; None when none was."""
    edited: dict[Role, int] = {}
    for role in Role:
        mine = [deployments.get(g.name) for g in groups if g.role is role]
        if any((w := last_written(d)) is not None and w != asked(d) for d in mine):
            edited[role] = sum(asked(d) for d in mine)
    if not edited:
        return None
    return ManualEdit(prefill=edited.get(Role.PREFILL), decode=edited.get(Role.DECODE))
