"""Names and labels the operator puts on the objects it manages, and its deployment groups (pure).

Everything downstream works on :class:`GroupPlan` lists, which come from one of two places:

* template mode (both roles have a ``template``): ``heteroscale.placement.plan`` splits each role
  over deployment groups ``<pdsg>-<role>-<group>`` pinned to a GPU type and a domain
  (:func:`from_plan`); between ticks the groups live in ``status.groups`` (:func:`from_status`);
* a role with a ``deploymentRef``: one Deployment per role (:func:`role_groups`). Placement cannot
  split a Deployment the user owns, so such a PDServingGroup is not placed at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec, RoleSpec
from heteroscale.api.status import GroupStatus
from heteroscale.placement import Plan, PlannedGroup

LABEL_PDSG = "heteroscale.io/pdservinggroup"
LABEL_ROLE = "heteroscale.io/role"
LABEL_GROUP = "heteroscale.io/group"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "heteroscale"
#: The Service of a role selects ``heteroscale.io/serving: "true"``; soft scale-in sets it to
#: "false" on the pods about to go, so they stop getting requests but keep running for drainSeconds.
LABEL_SERVING = "heteroscale.io/serving"
SERVING = "true"
NOT_SERVING = "false"
#: Honoured by the ReplicaSet controller: among equally ready pods, the lowest cost is deleted first.
ANNOTATION_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
#: The lowest int32: below any cost a user may have set, so exactly the drained pods go.
DRAINED_DELETION_COST = str(-(2**31))


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


def uses_placement(spec: PDServingGroupSpec) -> bool:
    """Template mode: the operator owns every Deployment, so placement may split and move them."""
    return spec.roles.prefill.template is not None and spec.roles.decode.template is not None


def from_plan(plan: Plan) -> list[GroupPlan]:
    return [GroupPlan(g.name, g.role, g.gpu_type, g.domain, g.replicas, True, g) for g in plan.groups]


def from_status(groups: Sequence[GroupStatus]) -> list[GroupPlan]:
    """The template-mode groups the last tick wrote, at the replicas it wanted."""
    return [GroupPlan(g.name, g.role, g.gpu_type, g.domain, g.desired, True) for g in groups]


def role_groups(spec: PDServingGroupSpec, pdsg: str, prefill: int, decode: int) -> list[GroupPlan]:
    """One group per role, outside template mode: the ``deploymentRef``, or ``<pdsg>-<role>`` for a
    role with a template, on the role's most preferred GPU type at cluster scope."""
    groups = []
    for role, replicas in ((Role.PREFILL, prefill), (Role.DECODE, decode)):
        source = role_spec(spec, role)
        ref = source.deployment_ref
        name = ref.name if ref is not None else f"{pdsg}-{role.value}"
        groups.append(GroupPlan(name, role, source.gpu_types[0], "", replicas, owned=ref is None))
    return groups


def role_spec(spec: PDServingGroupSpec, role: Role) -> RoleSpec:
    return spec.roles.prefill if role is Role.PREFILL else spec.roles.decode


def selector_labels(pdsg: str, group: GroupPlan) -> dict[str, str]:
    """Labels that identify a group's pods; never includes the serving label (flipping it during a
    drain must not take the pod out of its ReplicaSet)."""
    return {LABEL_PDSG: pdsg, LABEL_ROLE: group.role.value, LABEL_GROUP: group.name}
