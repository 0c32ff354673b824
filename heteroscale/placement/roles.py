"""One request's two roles as the planning cycle sees them (pure).

The *lead* role is decode (prefill when the decode target is 0); the other role *follows* with
``ceil(lead * target_follow / target_lead)`` instances per group. This module owns which role
leads, each role's target, GPU types, instance size and view of the nodes, and the follower's
share of a group's lead instances. It reserves nothing.
"""

from __future__ import annotations

from heteroscale.api.enums import Role
from heteroscale.placement.capacity import CapacityIndex, ViewId
from heteroscale.placement.request import PlanRequest
from heteroscale.placement.tolerations import role_view


class RoleSetup:
    """Lead and follower of one request, fixed for its cycle."""

    def __init__(self, request: PlanRequest, index: CapacityIndex) -> None:
        spec = request.spec
        targets = request.targets
        self.lead = Role.DECODE if targets.decode > 0 else Role.PREFILL
        self.follow = Role.PREFILL if self.lead is Role.DECODE else Role.DECODE
        self.target = {role: max(0, targets.of(role)) for role in Role}
        roles = {Role.PREFILL: spec.roles.prefill, Role.DECODE: spec.roles.decode}
        self.types = {role: roles[role].gpu_types for role in Role}
        self.gpus = {role: roles[role].gpus_per_instance for role in Role}
        # Each role sees the nodes its own template tolerates.
        self.view: dict[Role, ViewId] = {
            role: index.intern(role_view(roles[role].template, spec.topology.gpu_resource)) for role in Role
        }
        # Fixed for the cycle and asked for on every trial of every domain: computed once.
        self.by_size = sorted((self.lead, self.follow), key=lambda r: -self.gpus[r])
        # On a shared pool, slot counts decide what fits when both roles see the same nodes and
        # the larger instance size is a multiple of the smaller (e.g. 8 and 4 GPUs): one large
        # instance then uses exactly that many small slots.
        big, small = sorted(self.gpus.values(), reverse=True)
        self.slot_counts_decide = big % small == 0 and self.view[Role.PREFILL] == self.view[Role.DECODE]

    def need(self, role: Role, lead: int, *, at_least: bool = False) -> int:
        """Instances of ``role`` a group with ``lead`` lead instances wants: for the follower the
        ratio's share rounded up, or with ``at_least`` rounded down (the least the ratio allows)."""
        if role is self.lead:
            return lead
        t_lead = self.target[self.lead]
        if not t_lead:
            return 0
        share = lead * self.target[self.follow]
        return share // t_lead if at_least else -(-share // t_lead)
