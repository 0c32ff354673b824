"""A PDServingGroup's deployment groups as the operator handles them (pure).

Everything downstream works on :class:`GroupPlan` lists, which come from one of three places:

* template mode (both roles have a ``template``): ``heteroscale.placement.plan`` splits each role
  over deployment groups ``<pdsg>-<role>-<group>`` pinned to a GPU type and a domain
  (:func:`from_plan`); between ticks the groups live in ``status.groups`` (:func:`from_status`);
* a role with a ``deploymentRef`` or a ``scaleTargetRef``: one Deployment (or /scale target) per
  role (:func:`role_groups`). Placement cannot split a workload the user owns, so such a
  PDServingGroup is not placed at all;
* Deployments the group owns (its controller ownerReference) that neither of the above lists,
  e.g. left over from the other mode (:func:`leftovers`): they are drained and removed.

``owned`` says which of the two a group is; the operator still checks every Deployment's
ownerReferences before it writes to it (:mod:`heteroscale.operator.ownership`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from heteroscale.api.enums import Role
from heteroscale.api.labels import ANNOTATION_DOMAIN, ANNOTATION_GPU_TYPE, LABEL_DEPLOYMENT, LABEL_GROUP, LABEL_ROLE
from heteroscale.api.spec import PDServingGroupSpec, ScaleTargetRef
from heteroscale.api.status import GroupStatus
from heteroscale.placement import Plan, PlannedGroup


@dataclass(frozen=True)
class GroupPlan:
    """One deployment group: a role's Deployment pinned to a GPU type and a domain."""

    name: str
    role: Role
    gpu_type: str
    domain: str
    replicas: int
    owned: bool
    """True when the operator creates the Deployment from a template; False for a deploymentRef."""
    planned: PlannedGroup | None = None
    """Placement's group, whose pod template the operator renders; None for a group known only from
    status (it keeps its template) and outside template mode."""
    group: str = ""
    """The P/D pair's id (``g0``) in template mode; empty outside placement."""
    target: ScaleTargetRef | None = None
    """The role's ``scaleTargetRef`` when it is not a Deployment (scaled through ``/scale``)."""


def uses_placement(spec: PDServingGroupSpec) -> bool:
    """Template mode: the operator owns every Deployment, so placement may split and move them."""
    return spec.roles.prefill.template is not None and spec.roles.decode.template is not None


def from_plan(plan: Plan) -> list[GroupPlan]:
    return [GroupPlan(g.name, g.role, g.gpu_type, g.domain, g.replicas, True, g, g.group) for g in plan.groups]


def from_status(groups: Sequence[GroupStatus]) -> list[GroupPlan]:
    """The owned groups the last tick wrote, at the replicas it wanted (referenced ones are not
    placement's to move)."""
    return [GroupPlan(g.name, g.role, g.gpu_type, g.domain, g.desired, True) for g in groups if g.owned]


def role_groups(spec: PDServingGroupSpec, pdsg: str, prefill: int, decode: int) -> list[GroupPlan]:
    """One group per role, outside template mode: the ``deploymentRef`` or ``scaleTargetRef``, or
    ``<pdsg>-<role>`` for a role with a template, on the role's most preferred GPU type at cluster scope."""
    groups = []
    for role, replicas in ((Role.PREFILL, prefill), (Role.DECODE, decode)):
        source = spec.roles.of(role)
        name = source.reference_name or f"{pdsg}-{role.value}"
        owned = source.reference_name is None
        groups.append(GroupPlan(name, role, source.gpu_types[0], "", replicas, owned=owned, target=source.scale_target))
    return groups


def leftovers(owned: Iterable[Mapping[str, Any]], listed: Iterable[GroupPlan]) -> list[GroupPlan]:
    """Owned Deployments no group in ``listed`` names, at the replicas they ask for now: they go to 0
    and are deleted like any group that leaves the plan (placement may also keep them, when their
    GPU type and domain annotations still fit). A Deployment without our role and Deployment labels
    is not one we could have made, and is left alone."""
    names = {g.name for g in listed}
    out = []
    for deployment in owned:
        meta = deployment.get("metadata") or {}
        labels = meta.get("labels") or {}
        name = meta.get("name", "")
        if name in names or labels.get(LABEL_DEPLOYMENT) != name or labels.get(LABEL_ROLE) not in set(Role):
            continue
        annotations = meta.get("annotations") or {}
        replicas = int((deployment.get("spec") or {}).get("replicas") or 0)
        gpu_type, domain = annotations.get(ANNOTATION_GPU_TYPE, ""), annotations.get(ANNOTATION_DOMAIN, "")
        out.append(
            GroupPlan(
                name, Role(labels[LABEL_ROLE]), gpu_type, domain, replicas, True, group=labels.get(LABEL_GROUP, "")
            )
        )
    return out
