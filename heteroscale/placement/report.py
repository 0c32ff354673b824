"""A cycle's groups as the :class:`~heteroscale.placement.result.Plan` it answers (pure).

One :class:`~heteroscale.placement.result.PlannedGroup` per role of each group, and a
:class:`~heteroscale.placement.result.Shortfall` for what did not fit, with a message that says
why: instances of a role no domain had room for, and, per group kept below its follower floor
(step 3 of :mod:`~heteroscale.placement.cycle`), the follower instances it lacks.
"""

from __future__ import annotations

from heteroscale.api.enums import Role
from heteroscale.placement.capacity import CapacityIndex
from heteroscale.placement.group import Group
from heteroscale.placement.request import PlanRequest
from heteroscale.placement.result import Plan, PlannedGroup, Shortfall, deployment_name
from heteroscale.placement.roles import RoleSetup


def plan_of(request: PlanRequest, roles: RoleSetup, index: CapacityIndex, groups: list[Group]) -> Plan:
    """The plan of ``request`` whose cycle planned ``groups`` over ``index``."""
    by_gid = sorted(groups, key=lambda g: (len(g.gid), g.gid))
    planned = [
        PlannedGroup(
            name=deployment_name(request.name, role, g.gid),
            group=g.gid,
            role=role,
            gpu_type=g.types[role],
            domain=g.domain,
            replicas=g.count[role],
            gpus_per_instance=roles.gpus[role],
            nodes_available=index.nodes_available(g.domain, g.types[role], roles.view[role]),
        )
        for g in by_gid
        for role in (Role.PREFILL, Role.DECODE)
    ]
    # Groups kept at their bound size below their follower floor (see the cycle's step 3): what
    # they lack is reported per group, so the ratio being off is explained where it happens.
    lead, follow = roles.lead, roles.follow
    off = {
        g.gid: lacking
        for g in by_gid
        if (lacking := roles.need(follow, g.count[lead], at_least=True) - g.count[follow]) > 0
    }
    scope = request.spec.topology.colocate or "the cluster"
    short = [*_unplaced(roles, groups, off, scope), *_ratio_off(request, roles, by_gid, off, scope)]
    return Plan(request.name, tuple(planned), tuple(short))


def _unplaced(roles: RoleSetup, groups: list[Group], off: dict[str, int], scope: str) -> list[Shortfall]:
    """Per role, the instances of its target no group holds (beyond those ``off`` names)."""
    short = []
    for role in Role:
        missing = roles.target[role] - sum(g.count[role] for g in groups)
        if role is roles.follow:
            missing -= sum(off.values())
        if missing > 0:
            types = roles.types[role]
            short.append(
                Shortfall(
                    role=role,
                    gpu_type=types[0],
                    instances=missing,
                    message=(
                        f"{missing} of {roles.target[role]} {role.value} instance(s) of "
                        f"{roles.gpus[role]} GPU(s) on {'/'.join(types)} do not fit: no {scope} "
                        "domain has room for them next to their group's other role"
                    ),
                )
            )
    return short


def _ratio_off(
    request: PlanRequest, roles: RoleSetup, groups: list[Group], off: dict[str, int], scope: str
) -> list[Shortfall]:
    """The follower instances each group ``off`` names lacks, in the order of ``groups``."""
    lead, follow = roles.lead, roles.follow
    return [
        Shortfall(
            role=follow,
            gpu_type=g.types[follow],
            instances=off[g.gid],
            message=(
                f"{off[g.gid]} {follow.value} instance(s) of {roles.gpus[follow]} GPU(s) on "
                f"{g.types[follow]} for {deployment_name(request.name, follow, g.gid)} "
                f"do not fit: {scope} domain {g.domain!r} is full, so its {g.count[lead]} "
                f"{lead.value} instance(s), which are bound and kept, run with {g.count[follow]} "
                f"{follow.value}: the ratio is temporarily off until room frees up there"
            ),
        )
        for g in groups
        if g.gid in off
    ]
