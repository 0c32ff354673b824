"""What placement answers (values): a plan's Deployments, what could not be placed, and how the
Deployments are named.

A deployment group is one prefill and one decode Deployment, named ``<pdsg>-<role>-<group>``,
both pinned to one colocation domain, each role to one GPU type.
"""

from __future__ import annotations

from dataclasses import dataclass

from heteroscale.api.enums import Reason, Role


def deployment_name(pdsg: str, role: Role, group: str) -> str:
    return f"{pdsg}-{role.value}-{group}"


@dataclass(frozen=True)
class PlannedGroup:
    """One Deployment of a deployment group: a role on one GPU type in one domain."""

    name: str
    """Deployment name, ``<pdsg>-<role>-<group>``."""
    group: str
    role: Role
    gpu_type: str
    domain: str
    """Value of the colocation tier label; empty for cluster scope."""
    replicas: int
    gpus_per_instance: int
    nodes_available: int
    """Schedulable nodes of this GPU type in this domain."""


@dataclass(frozen=True)
class Shortfall:
    """Instances of a role that could not be placed."""

    role: Role
    gpu_type: str | None
    """The most preferred GPU type of the role (None when the role allows none that exist), or
    for a group kept below its follower floor (step 3 of :mod:`heteroscale.placement.cycle`), the
    group's GPU type."""
    instances: int
    message: str
    reason: Reason = Reason.UNSCHEDULABLE


@dataclass(frozen=True)
class Plan:
    """Deployment groups for one PDServingGroup and what could not be placed."""

    name: str
    groups: tuple[PlannedGroup, ...]
    unschedulable: tuple[Shortfall, ...]

    def replicas(self, role: Role) -> int:
        return sum(g.replicas for g in self.groups if g.role is role)
