"""Names and labels the operator puts on the objects it manages (pure).

:func:`plan_groups` is the single seam between the operator and placement: until
``heteroscale.placement.plan`` lands, every role is one deployment group on the role's most
preferred GPU type, at cluster scope. Everything downstream works on :class:`GroupPlan` lists, so
switching to the planner changes only this function.
"""

from __future__ import annotations

from dataclasses import dataclass

from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec, RoleSpec

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


def plan_groups(spec: PDServingGroupSpec, pdsg: str, prefill: int, decode: int) -> list[GroupPlan]:
    """Deployment groups for the replica targets. Placement seam: one group per role for now."""
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
