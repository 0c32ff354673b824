"""One PDServingGroup's planning cycle over the shared capacity index (pure).

:func:`~heteroscale.placement.plan.plan_many` runs one cycle per PDServingGroup, in
``spec.priority`` order (highest first), over one shared
:class:`~heteroscale.placement.capacity.CapacityIndex`:

1. The *lead* role is decode (prefill when the decode target is 0); the other role *follows*
   with ``ceil(lead * target_follow / target_lead)`` instances per group
   (:mod:`~heteroscale.placement.roles`).
2. Scale-in of the lead role shrinks groups on premium (then slow) resources first, smaller
   groups first, so groups empty and are removed; a cut that would make the rest of the cycle
   place less of either role is passed over for the next group, and when no whole cut is safe,
   groups are cut partly (the largest safe part of each, in the same order); when that leaves
   excess, the same again with each group in turn cut last. Freed GPUs are not reused in the same
   cycle: the next cycle's inventory shows them.
3. Kept groups reserve what their pods not yet bound to nodes need; a group that no longer fits
   keeps what fits and the rest is placed elsewhere. Bound instances are never given up because
   a follower cannot be placed: a group whose follower floor (the ratio's share rounded down)
   has no room keeps its bound lead instances with what fits of its follower, and the follower
   instances it lacks are reported as a shortfall of their own that names the group.
   Across requests of one priority, every request's kept groups are reserved before any of them
   grows or creates a group (:meth:`Cycle.hold`), so a group whose pods are not bound yet is
   never displaced by an equal-priority request that merely sorts first; a higher priority may
   take that room.
4. Existing groups grow before new groups are created.
5. A new group takes the most preferred GPU type pair with room and the best domain for it
   (:mod:`~heteroscale.placement.domains`).
6. The follower total is apportioned over groups by largest remainder, so every group keeps the
   ratio within one instance (except a group of step 3 kept below its follower floor); then the
   reservations are made for real.

Steps 3 to 6 run first as a trial (reserving, then rolling back) while step 2 judges cuts, then
once for real. What does not fit is reported as a shortfall (:mod:`~heteroscale.placement.report`)
rather than over-committing a node. Groups listed in ``current_groups`` whose name does not
follow the naming scheme, or whose GPU type the spec no longer allows, are given up (their
instances are planned again like new ones).
"""

from __future__ import annotations

from heteroscale.api.enums import Role
from heteroscale.placement.capacity import CapacityIndex
from heteroscale.placement.domains import DomainChoice
from heteroscale.placement.group import Group, per_role
from heteroscale.placement.inventory import Inventory
from heteroscale.placement.report import plan_of
from heteroscale.placement.request import PlanRequest
from heteroscale.placement.result import Plan, deployment_name
from heteroscale.placement.roles import RoleSetup
from heteroscale.placement.sizing import GroupSizing


class Cycle:
    """One PDServingGroup's cycle over a shared index."""

    def __init__(self, index: CapacityIndex, inventory: Inventory, request: PlanRequest) -> None:
        self.index = index
        self.inventory = inventory
        self.request = request
        self.roles = RoleSetup(request, index)
        self.sizing = GroupSizing(index, self.roles)
        self.domains = DomainChoice(index, self.roles, self.sizing)
        self.held: dict[str, int] = {}
        """Instances per Deployment that :meth:`hold` reserved this cycle: bound from then on."""

    def existing(self) -> list[Group]:
        """The request's current Deployments as groups (those it may keep), by id."""
        roles = self.roles
        by_gid: dict[str, Group] = {}
        for status in self.request.current_groups:
            prefix = f"{self.request.name}-{status.role.value}-"
            if not status.name.startswith(prefix) or status.gpu_type not in roles.types[status.role]:
                continue
            gid = status.name[len(prefix) :]
            group = by_gid.setdefault(gid, Group(gid, status.domain, {}))
            if group.domain != status.domain:
                continue
            group.types[status.role] = status.gpu_type
            group.count[status.role] = status.desired
            bound = self.inventory.bound_instances(self.request.namespace, status.name)
            group.bound[status.role] = bound + self.held.get(status.name, 0)
        for group in by_gid.values():
            for role in Role:
                # A group missing one half gets the role's most preferred type present in its domain.
                present = [
                    t for t in roles.types[role] if self.index.nodes_available(group.domain, t, roles.view[role])
                ]
                group.types.setdefault(role, (present or roles.types[role])[0])
        return sorted(by_gid.values(), key=lambda g: (len(g.gid), g.gid))

    def hold(self) -> None:
        """Reserve what the existing groups keep before any request of the same priority grows or
        creates groups, and count it as bound from then on. A group planned on an earlier cycle
        whose pods are not bound yet thus keeps its room: otherwise a request planned before it
        only by name could take that room for a new group, and the group would be moved to another
        domain (its Deployments drained and deleted) for nothing. A higher priority still takes
        room that is not bound yet (its requests are planned, and hold, first)."""
        for group in self.by_rank(self.existing()):
            self.keep(group)
            for role in Role:
                self.held[deployment_name(self.request.name, role, group.gid)] = group.reserved[role]

    def run(self) -> Plan:
        """Scale in, keep, grow, create and apportion for real; the request's plan."""
        groups = self.existing()
        used = {g.gid for g in groups}
        planned = self.place(self.scale_in(groups, used), used, commit=True)
        return plan_of(self.request, self.roles, self.index, planned)

    def scale_in(self, groups: list[Group], used: set[str]) -> list[Group]:
        """Cut the lead role down to its target (step 2): groups on premium (then slow) resources
        first, smaller groups first. A cut is taken only if the cycle still places as much of each
        role as it would without cutting (up to the targets): the follower instances of a removed
        group must move to the remaining groups, and when those have no room for them (e.g. a
        group holding lead instances without its follower share, next to a full pool) the cut
        loses instances that a different cut keeps. Whole cuts are tried first, then partial
        ones (largest first): when every domain is full, cutting one group whole moves its
        follower share to full domains, while cutting each group a little keeps every group's
        bound follower. The cuts are greedy, so when they leave excess they are tried again with
        each group in turn cut last; excess no such order sheds is cut in plain preference
        order."""
        lead = self.roles.lead
        excess = sum(g.count[lead] for g in groups) - self.roles.target[lead]
        if excess <= 0:
            return groups
        keeps = {role: min(self.roles.target[role], n) for role, n in self.placed(groups, used).items()}

        def loses(group: Group, cut: int) -> bool:
            """Whether cutting ``cut`` from ``group`` makes the cycle place less than ``keeps``."""
            group.count[lead] -= cut
            if any(n < keeps[role] for role, n in self.placed(groups, used).items()):
                group.count[lead] += cut
                return True
            return False

        order = sorted(groups, key=lambda g: (tuple(-r for r in self.sizing.rank(g)), g.count[lead], len(g.gid), g.gid))

        def shed(order: list[Group], excess: int) -> int:
            """Whole cuts first (they empty groups), then the largest partial cut of each group
            that the trial accepts: when every whole cut strands follower instances (each
            remaining group's domain is full), shrinking several groups keeps each its bound
            follower. Returns the excess left."""
            for partial in (False, True):
                for group in order:
                    most = min(excess, group.count[lead])
                    if most <= 0:
                        continue
                    for cut in range(most, 0, -1) if partial else (most,):
                        if not loses(group, cut):
                            excess -= cut
                            break
            return excess

        counts = [g.count[lead] for g in groups]
        left = shed(order, excess)
        # The cuts are greedy: early ones can take the groups the last ones needed (found by the
        # property tests: the two groups holding their whole follower share cut first, one that
        # could not grow its share in a full domain kept). Then each group in turn is kept for
        # last, in preference order, until an order sheds it all.
        for last in order if left else ():
            for group, count in zip(groups, counts, strict=True):
                group.count[lead] = count
            left = shed([g for g in order if g is not last] + [last], excess)
            if not left:
                break
        for group in order:
            cut = min(left, group.count[lead])
            group.count[lead] -= cut
            left -= cut
        return [g for g in groups if g.count[lead] > 0]

    def placed(self, groups: list[Group], used: set[str]) -> dict[Role, int]:
        """Instances per role the rest of the cycle would place for these groups (a trial)."""
        planned = self.place(groups, used, commit=False)
        return {role: sum(g.count[role] for g in planned) for role in Role}

    def by_rank(self, groups: list[Group]) -> list[Group]:
        """Groups on the least premium resources first: they keep and grow first."""
        return sorted(groups, key=lambda g: (self.sizing.rank(g), len(g.gid), g.gid))

    def keep(self, group: Group) -> None:
        """Reserve what an existing group keeps of its lead instances and their follower share
        (step 3).

        Bound lead instances are never given up because their follower floor has no room: their
        pods hold the nodes, so dropping them frees nothing this cycle. The group then keeps them
        with what fits of its follower (the report names what it lacks); more lead instances than
        bound would only put the ratio further off."""
        lead, follow = self.roles.lead, self.roles.follow
        count = group.count[lead]
        keep = max(self.sizing.max_lead(group, count), min(count, group.bound[lead]))
        self.sizing.reserve(group, {lead: keep, follow: self.roles.need(follow, keep)})

    def place(self, kept: list[Group], used: set[str], *, commit: bool) -> list[Group]:
        """Keep, grow, then create groups for the lead target, apportion the follower, and
        reserve it all (steps 3 to 6); returns the groups. ``kept`` and ``used`` are left alone
        (the groups are copies), and without ``commit`` so is the index."""
        lead = self.roles.lead
        groups = [g.copy() for g in kept if g.count[lead] > 0]
        mark = self.index.mark()
        by_rank = self.by_rank(groups)
        for group in by_rank:
            self.keep(group)
        left = self.grow(by_rank, self.roles.target[lead] - sum(g.count[lead] for g in groups))
        groups = [g for g in groups if g.count[lead] > 0]
        groups += self.create(left, used)
        self.settle(groups, mark)
        if not commit:
            self.index.rollback(mark)
        return [g for g in groups if g.count[lead] > 0]

    def grow(self, groups: list[Group], left: int) -> int:
        """Grow the groups, in order, by up to ``left`` lead instances in all (step 4); returns
        how many are left for new groups."""
        lead, follow = self.roles.lead, self.roles.follow
        for group in groups:
            grow = self.sizing.max_lead(group, group.count[lead] + left)
            if grow > group.count[lead]:
                left -= grow - group.count[lead]
                self.sizing.reserve(group, {lead: grow, follow: self.roles.need(follow, grow)})
        return left

    def create(self, left: int, used: set[str]) -> list[Group]:
        """New groups for up to ``left`` lead instances, while one fits (step 5); their ids are
        not in ``used``."""
        taken = set(used)
        created: list[Group] = []
        while left > 0:
            group = self.domains.new_group(left, taken)
            if group is None:
                break
            taken.add(group.gid)
            created.append(group)
            left -= group.count[self.roles.lead]
        return created

    def settle(self, groups: list[Group], mark: int) -> None:
        """Apportion the follower over the groups (step 6), undo the index back to ``mark`` and
        reserve each group's final counts: the trial reservations sized the groups, these hold them."""
        lead, follow = self.roles.lead, self.roles.follow
        follower = self.apportion(groups)
        self.index.rollback(mark)
        for group in groups:
            group.reserved = per_role()
            self.sizing.reserve(group, {lead: group.count[lead], follow: follower[group.gid]})

    def apportion(self, groups: list[Group]) -> dict[str, int]:
        """Follower instances per group: the ratio's share of the follower target, rounded down,
        plus one for the groups with the largest remainders that have room for it."""
        lead, follow = self.roles.lead, self.roles.follow
        t_lead, t_follow = self.roles.target[lead], self.roles.target[follow]
        if not t_lead:
            return {g.gid: 0 for g in groups}
        shares = {g.gid: divmod(g.count[lead] * t_follow, t_lead) for g in groups}
        total = -(-sum(g.count[lead] for g in groups) * t_follow // t_lead)
        result = {gid: whole for gid, (whole, _) in shares.items()}
        extra = total - sum(result.values())
        # A group has room when its trial reservation got the rounded-up share.
        roomy = [g.gid for g in groups if shares[g.gid][1] and g.count[follow] > shares[g.gid][0]]
        for gid in sorted(roomy, key=lambda gid: (-shares[gid][1], len(gid), gid))[:extra]:
            result[gid] += 1
        return result
