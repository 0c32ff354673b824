"""A stand-in for the kube-scheduler and for the operator's status, for placement tests that
run several cycles: a plan's new instances are bound best fit to nodes their role may use, and a
plan is read back as the ``status.groups`` of the next cycle. Independent of the package."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from heteroscale.api.enums import Role
from heteroscale.api.labels import LABEL_DEPLOYMENT
from heteroscale.api.status import GroupStatus
from heteroscale.placement import Plan, PlanRequest
from tests.unit.placement.cluster import GPU_LABEL, S2, pod


def usable(node: dict[str, Any], tolerations: list[dict[str, str]]) -> bool:
    """Whether a pod with ``tolerations`` may run on ``node``: every NoSchedule/NoExecute taint but
    the GPU's is tolerated by an Exists toleration of its key (the only kind the tests make)."""
    keys = {t["key"] for t in tolerations}
    return all(
        t["key"] in keys or t["key"] == "nvidia.com/gpu"
        for t in node["spec"]["taints"]
        if t["effect"] in ("NoSchedule", "NoExecute")
    )


def role_tolerations(request: PlanRequest, role: Role) -> list[dict[str, str]]:
    """The tolerations of the role's pod template."""
    roles = request.spec.roles
    template = (roles.prefill if role is Role.PREFILL else roles.decode).template or {}
    return list(template["spec"].get("tolerations") or [])


def bind(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], request: PlanRequest, result: Plan
) -> list[dict[str, Any]]:
    """Apply a plan as the scheduler would: new instances' pods land, best fit, on their nodes."""
    free = {n["metadata"]["name"]: 8 for n in nodes}
    bound: dict[str, int] = defaultdict(int)
    for p in pods:
        free[p["spec"]["nodeName"]] -= int(p["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
        bound[p["metadata"]["labels"].get(LABEL_DEPLOYMENT, "")] += 1
    tainted = {n["metadata"]["name"] for n in nodes if not usable(n, [])}
    added = []
    for g in sorted(result.groups, key=lambda g: -g.gpus_per_instance):
        where = [
            n["metadata"]["name"]
            for n in nodes
            if n["metadata"]["labels"][S2] == g.domain
            and n["metadata"]["labels"][GPU_LABEL] == g.gpu_type
            and usable(n, role_tolerations(request, g.role))
        ]
        for i in range(g.replicas - bound[g.name]):
            # Roles that may use tainted nodes go there first, leaving the others' nodes free.
            name = min(
                (w for w in where if free[w] >= g.gpus_per_instance), key=lambda w: (w not in tainted, free[w], w)
            )
            free[name] -= g.gpus_per_instance
            added.append(
                pod(f"{g.name}-{bound[g.name] + i}", name, g.gpus_per_instance, labels={LABEL_DEPLOYMENT: g.name})
            )
    return [*pods, *added]


def as_status(result: Plan) -> list[GroupStatus]:
    """The plan as the operator reports it once its Deployments have their replicas."""
    return [
        GroupStatus(
            name=g.name, role=g.role, gpu_type=g.gpu_type, domain=g.domain, desired=g.replicas, current=g.replicas
        )
        for g in result.groups
    ]
