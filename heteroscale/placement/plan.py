"""``plan()``: prefill/decode replica targets to deployment groups over an inventory (pure).

API::

    plan(inventory, current_groups: Sequence[GroupStatus], targets: RoleTargets,
         spec: PDServingGroupSpec, name: str, namespace: str = "") -> Plan
    plan_many(inventory, requests: Sequence[PlanRequest]) -> list[Plan]   # same order as requests
    Plan(name, groups: tuple[PlannedGroup, ...], unschedulable: tuple[Shortfall, ...])
    PlannedGroup(name, group, role, gpu_type, domain, replicas, gpus_per_instance, nodes_available)
    Shortfall(role, gpu_type, instances, message, reason=Reason.UNSCHEDULABLE)

A deployment group is one prefill and one decode Deployment, named ``<pdsg>-<role>-<group>``,
both pinned to one colocation domain, each role to one GPU type. One cycle, per PDServingGroup
in ``spec.priority`` order (highest first) over one shared capacity index:

1. The *lead* role is decode (prefill when the decode target is 0); the other role *follows*
   with ``ceil(lead * target_follow / target_lead)`` instances per group.
2. Scale-in of the lead role shrinks groups on premium (then slow) resources first, smaller
   groups first, so groups empty and are removed; a cut that would make the rest of the cycle
   place less of either role is passed over for the next group, and when no whole cut is safe,
   groups are cut partly (the largest safe part of each, in the same order). Freed GPUs are not reused in
   the same cycle: the next cycle's inventory shows them.
3. Kept groups reserve what their pods not yet bound to nodes need; a group that no longer fits
   keeps what fits and the rest is placed elsewhere. Bound instances are never given up because
   a follower cannot be placed: a group whose follower floor (the ratio's share rounded down)
   has no room keeps its bound lead instances with what fits of its follower, and the follower
   instances it lacks are reported as a shortfall of their own that names the group.
   Across requests of one priority, every request's kept groups are reserved before any of them
   grows or creates a group, so a group whose pods are not bound yet is never displaced by an
   equal-priority request that merely sorts first; a higher priority may take that room.
4. Existing groups grow before new groups are created.
5. A new group takes the most preferred GPU type pair (decode's order, then prefill's) that has
   room anywhere, and the domain whose reservation touches the least premium rank; among those,
   one that takes all that is left with the least capacity to spare (best fit), else the one
   taking the most.
6. The follower total is apportioned over groups by largest remainder, so every group keeps the
   ratio within one instance (except a group of step 3 kept below its follower floor); then the
   reservations are made for real.

What does not fit is reported as a :class:`Shortfall` (reason ``Unschedulable``) rather than
over-committing a node. Groups listed in ``current_groups`` whose name does not follow the
naming scheme, or whose GPU type the spec no longer allows, are given up (their instances are
planned again like new ones).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from heteroscale.api.enums import Reason, Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import GroupStatus
from heteroscale.placement.capacity import LOWEST_RANK, CapacityIndex, Need, Slots
from heteroscale.placement.inventory import Inventory
from heteroscale.placement.order import Rank
from heteroscale.placement.tolerations import role_view


@dataclass(frozen=True)
class RoleTargets:
    """Instances wanted per role (what the policy decided)."""

    prefill: int
    decode: int

    def of(self, role: Role) -> int:
        return self.prefill if role is Role.PREFILL else self.decode


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
    for a group kept below its follower floor (step 3 of the cycle above), the group's GPU type."""
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


@dataclass(frozen=True)
class PlanRequest:
    """One PDServingGroup's input to :func:`plan_many`."""

    name: str
    spec: PDServingGroupSpec
    targets: RoleTargets
    current_groups: Sequence[GroupStatus] = ()
    namespace: str = ""


def deployment_name(pdsg: str, role: Role, group: str) -> str:
    return f"{pdsg}-{role.value}-{group}"


@dataclass
class _Group:
    gid: str
    domain: str
    types: dict[Role, str]
    count: dict[Role, int]
    bound: dict[Role, int]
    reserved: dict[Role, int] = field(default_factory=lambda: {Role.PREFILL: 0, Role.DECODE: 0})


class _Planner:
    """One PDServingGroup's cycle over a shared index."""

    def __init__(self, index: CapacityIndex, inventory: Inventory, request: PlanRequest) -> None:
        self.index = index
        self.inventory = inventory
        self.request = request
        self.held: dict[str, int] = {}
        """Instances per Deployment that :meth:`hold` reserved this cycle: bound from then on."""
        spec = request.spec
        targets = request.targets
        self.lead = Role.DECODE if targets.decode > 0 else Role.PREFILL
        self.follow = Role.PREFILL if self.lead is Role.DECODE else Role.DECODE
        self.target = {role: max(0, targets.of(role)) for role in Role}
        roles = {Role.PREFILL: spec.roles.prefill, Role.DECODE: spec.roles.decode}
        self.types = {role: roles[role].gpu_types for role in Role}
        self.gpus = {role: roles[role].gpus_per_instance for role in Role}
        # Each role sees the nodes its own template tolerates.
        self.view = {role: index.intern(role_view(roles[role].template, spec.topology.gpu_resource)) for role in Role}
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

    def rank(self, group: _Group) -> Rank:
        ranks = (r for role in Role for r in self.index.ranks(group.domain, group.types[role], self.view[role]))
        return max(ranks, default=LOWEST_RANK)

    def slots(self, group: _Group, role: Role, gpus: int | None = None) -> int:
        """Free slots of ``role``'s pool in the group's domain (for ``gpus`` GPUs, default the role's)."""
        gpus = self.gpus[role] if gpus is None else gpus
        return sum(self.index.slots(group.domain, group.types[role], self.view[role], gpus))

    def rank_for(self, group: _Group, role: Role, instances: int, gpus: int | None = None) -> Rank | None:
        gpus = self.gpus[role] if gpus is None else gpus
        return self.index.rank_for(group.domain, group.types[role], self.view[role], gpus, instances)

    def take(self, group: _Group, role: Role, instances: int) -> int:
        return self.index.take(group.domain, group.types[role], self.view[role], self.gpus[role], instances)

    # -- capacity -------------------------------------------------------------------------

    def missing(self, group: _Group, role: Role, count: int) -> int:
        """Instances of ``role`` still to reserve for the group to hold ``count``."""
        return max(0, count - group.bound[role]) - group.reserved[role]

    def demand(self, group: _Group, lead: int) -> list[tuple[Role, int]]:
        """What holding ``lead`` lead instances still needs per role, larger instances first: with
        that order best-fit packing on a shared pool never strands room the smaller role could use."""
        return [
            (role, max(0, self.missing(group, role, self.need(role, lead, at_least=True)))) for role in self.by_size
        ]

    def shared_pool(self, group: _Group) -> bool:
        """True when both roles draw on one pool (same GPU type)."""
        return group.types[Role.PREFILL] == group.types[Role.DECODE]

    def fits(self, group: _Group, lead: int) -> bool:
        """Whether the group can hold ``lead`` lead instances on its one shared pool."""
        (big_role, big_n), (small_role, small_n) = self.demand(group, lead)
        if self.slot_counts_decide:
            per_big = self.gpus[big_role] // self.gpus[small_role]
            big_slots = self.slots(group, big_role)
            small_slots = self.slots(group, big_role, self.gpus[small_role])
            return big_n <= big_slots and small_n + per_big * big_n <= small_slots
        mark = self.index.mark()
        try:
            return all(self.take(group, role, n) == n for role, n in ((big_role, big_n), (small_role, small_n)))
        finally:
            self.index.rollback(mark)

    def reserve(self, group: _Group, counts: dict[Role, int]) -> None:
        """Reserve capacity for the group to hold ``counts``; a part that does not fit lowers it."""
        for role in sorted(counts, key=lambda r: -self.gpus[r]):
            want = self.missing(group, role, counts[role])
            got = self.take(group, role, want) if want > 0 else 0
            group.reserved[role] += got
            group.count[role] = min(counts[role], group.bound[role] + group.reserved[role])

    def max_lead(self, group: _Group, ceiling: int) -> int:
        """The most lead instances, up to ``ceiling``, the group can hold."""

        def room(role: Role) -> int:
            return group.bound[role] + group.reserved[role] + self.slots(group, role)

        hi = min(ceiling, room(self.lead))
        if not self.shared_pool(group):
            # Independent pools: the follower's room bounds the lead directly.
            follow_target = self.target[self.follow]
            if follow_target:
                # The largest lead whose rounded-down follower share fits the follower's room.
                hi = min(hi, ((room(self.follow) + 1) * self.target[self.lead] - 1) // follow_target)
            return max(hi, 0)
        lo = 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits(group, mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def touched_rank(self, group: _Group, lead: int) -> Rank:
        """The highest rank the group's reservation for ``lead`` lead instances touches."""
        (big_role, big_n), (small_role, small_n) = self.demand(group, lead)
        if self.shared_pool(group) and self.slot_counts_decide:
            # Large instances fill the lowest ranks first and use per_big small slots each.
            per_big = self.gpus[big_role] // self.gpus[small_role]
            ranks = (
                self.rank_for(group, big_role, big_n),
                self.rank_for(group, big_role, small_n + per_big * big_n, self.gpus[small_role]),
            )
        elif self.shared_pool(group):
            mark = self.index.mark()
            self.take(group, big_role, big_n)
            after = self.rank_for(group, small_role, small_n)
            self.index.rollback(mark)
            ranks = (self.rank_for(group, big_role, big_n), after)
        else:
            ranks = (self.rank_for(group, big_role, big_n), self.rank_for(group, small_role, small_n))
        return max(r or LOWEST_RANK for r in ranks)

    # -- the cycle ------------------------------------------------------------------------

    def existing(self) -> list[_Group]:
        by_gid: dict[str, _Group] = {}
        for status in self.request.current_groups:
            prefix = f"{self.request.name}-{status.role.value}-"
            if not status.name.startswith(prefix) or status.gpu_type not in self.types[status.role]:
                continue
            gid = status.name[len(prefix) :]
            group = by_gid.setdefault(
                gid,
                _Group(gid, status.domain, {}, {Role.PREFILL: 0, Role.DECODE: 0}, {Role.PREFILL: 0, Role.DECODE: 0}),
            )
            if group.domain != status.domain:
                continue
            group.types[status.role] = status.gpu_type
            group.count[status.role] = status.desired
            bound = self.inventory.bound_instances(self.request.namespace, status.name)
            group.bound[status.role] = bound + self.held.get(status.name, 0)
        for group in by_gid.values():
            for role in Role:
                # A group missing one half gets the role's most preferred type present in its domain.
                present = [t for t in self.types[role] if self.index.nodes_available(group.domain, t, self.view[role])]
                group.types.setdefault(role, (present or self.types[role])[0])
        return sorted(by_gid.values(), key=lambda g: (len(g.gid), g.gid))

    def ratio_class(self) -> tuple[int, int]:
        """``(a, b)``: at most ``a / b`` lead instances per follower instance, with ``a`` or
        ``b`` equal to 1, rounded so that few values occur and requests share the capacity
        index's domain orders; ``(1, 0)`` without a follower target."""
        t_lead, t_follow = self.target[self.lead], self.target[self.follow]
        if not t_follow:
            return 1, 0
        if t_follow > t_lead:
            return 1, t_follow // t_lead
        return -(-t_lead // t_follow), 1

    def new_group(self, ceiling: int, used: set[str]) -> _Group | None:
        """The best new group for up to ``ceiling`` lead instances, or None if none fits."""
        gid = next(f"g{n}" for n in range(len(used) + 1) if f"g{n}" not in used)
        follow_types = self.types[self.follow] if self.target[self.follow] else self.types[self.follow][:1]
        for lead_t in self.types[self.lead]:
            for follow_t in follow_types:
                types = {self.lead: lead_t, self.follow: follow_t}
                best = self.best_at_once(types, ceiling) if self.at_once(types) else self.best_pruned(types, ceiling)
                if best is not None:
                    domain, lead = best
                    group = _Group(
                        gid, domain, types, {Role.PREFILL: 0, Role.DECODE: 0}, {Role.PREFILL: 0, Role.DECODE: 0}
                    )
                    self.reserve(group, {self.lead: lead, self.follow: self.need(self.follow, lead)})
                    return group
        return None

    def needs(self, types: dict[Role, str]) -> tuple[Need, Need | None]:
        """What a new group of ``types`` needs of the lead and (None without a target) the follower."""
        lead = Need(types[self.lead], self.view[self.lead], self.gpus[self.lead])
        if not self.target[self.follow]:
            return lead, None
        return lead, Need(types[self.follow], self.view[self.follow], self.gpus[self.follow])

    def at_once(self, types: dict[Role, str]) -> bool:
        """Whether slot counts alone give every domain's new-group key (:meth:`best_at_once`):
        the roles on pools of their own, or on one pool where slot counts decide; otherwise the
        key needs trial reservations (:meth:`best_pruned`)."""
        return types[Role.PREFILL] != types[Role.DECODE] or self.slot_counts_decide

    def best_pruned(self, types: dict[Role, str], ceiling: int) -> tuple[str, int] | None:
        """The domain with the least new-group key and its lead instances (None if none fits),
        visiting domains by increasing lower bound of their key and stopping at the first bound
        not below the best key found. The key: (touched rank, takes less than ``ceiling``, spare
        lead slots or minus the lead instances, domain)."""
        no_bound = {Role.PREFILL: 0, Role.DECODE: 0}
        best: tuple[tuple[Rank, bool, int, str], int] | None = None
        # One probe is moved from domain to domain (measuring it reserves nothing).
        probe = _Group("", "", types, no_bound, no_bound)
        for bound in self.index.candidates(*self.needs(types), self.ratio_class(), ceiling):
            # Keys come no lower than their bounds, which come in increasing order.
            if best is not None and bound >= best[0]:
                break
            probe.domain = domain = bound[-1]
            lead = self.max_lead(probe, ceiling)
            if lead <= 0:
                continue
            lead_slots = self.slots(probe, self.lead)
            fit = (lead < ceiling, lead_slots - lead if lead == ceiling else -lead)
            key = (self.touched_rank(probe, lead), *fit, domain)
            if best is None or key < best[0]:
                best = (key, lead)
        return None if best is None else (best[0][-1], best[1])

    def best_at_once(self, types: dict[Role, str], ceiling: int) -> tuple[str, int] | None:
        """What :meth:`best_pruned` finds, from the exact key of every domain computed at once
        (numpy over domains) with the arithmetic of :meth:`max_lead` and :meth:`touched_rank` for
        a group that has nothing yet: the lead instances from slot counts, the touched rank as
        the first column of the index's cumulative slots that holds the reservation."""
        lead_need, follow_need = self.needs(types)
        domains = self.index.paired(lead_need, follow_need)
        if not domains:
            return None
        t_lead, t_follow = self.target[self.lead], self.target[self.follow]

        def cumulative(role: Role, gpus: int) -> Slots:
            return self.index.cumulative(lead_need, follow_need, Need(types[role], self.view[role], gpus))

        def counts(lead: Slots) -> dict[Role, Slots]:
            """What holding ``lead`` lead instances needs per role (demand() of an empty group)."""
            return {self.lead: lead, self.follow: lead * t_follow // t_lead}

        def touched(cum: Slots, instances: Slots) -> Slots:
            # The first column holding them; column 0 (the lowest rank) when nothing is to be
            # reserved, as rank_for() answers, and touched_rank() reads "does not fit" as it too.
            first: Slots = np.argmax(cum >= instances[:, None], axis=1)
            return first

        big, small = self.by_size
        lead_cum = cumulative(self.lead, self.gpus[self.lead])
        lead_slots = lead_cum[:, -1]
        hi = np.minimum(ceiling, lead_slots)
        if types[Role.PREFILL] == types[Role.DECODE]:
            # One pool where slot counts decide (fits()): the largest lead up to ``hi`` whose big
            # instances fit in big slots and, with per_big small slots each, leave the small ones room.
            per_big = self.gpus[big] // self.gpus[small]
            big_cum, small_cum = cumulative(big, self.gpus[big]), cumulative(big, self.gpus[small])

            def fits(lead: Slots) -> NDArray[np.bool_]:
                need = counts(lead)
                return (need[big] <= big_cum[:, -1]) & (need[small] + per_big * need[big] <= small_cum[:, -1])

            # max_lead()'s bisection, on every domain at once (each stops where its own does).
            lo = np.zeros_like(hi)
            while (active := lo < hi).any():
                mid = (lo + hi + 1) // 2
                ok = fits(mid)
                lo = np.where(active & ok, mid, lo)
                hi = np.where(active & ~ok, mid - 1, hi)
            lead = lo
            need = counts(lead)
            rank = np.maximum(touched(big_cum, need[big]), touched(small_cum, need[small] + per_big * need[big]))
        else:
            # Pools of their own (max_lead()): the follower's room bounds the lead directly, and
            # each role touches its own pool's rank (nothing of the follower without a target).
            if follow_need is not None:
                follow_cum = cumulative(self.follow, self.gpus[self.follow])
                hi = np.minimum(hi, ((follow_cum[:, -1] + 1) * t_lead - 1) // t_follow)
            lead = np.maximum(hi, 0)
            rank = touched(lead_cum, lead)
            if follow_need is not None:
                rank = np.maximum(rank, touched(follow_cum, counts(lead)[self.follow]))
        takes_less = lead < ceiling
        fit = np.where(takes_less, -lead, lead_slots - lead)
        fitting = np.flatnonzero(lead > 0)
        if not len(fitting):
            return None
        # Keys compared as (rank, takes less, fit, domain): lexsort's last key is its first.
        first = fitting[np.lexsort((fitting, fit[fitting], takes_less[fitting], rank[fitting]))[0]]
        return domains[first], int(lead[first])

    def apportion(self, groups: list[_Group]) -> dict[str, int]:
        """Follower instances per group: the ratio's share of the follower target, rounded down,
        plus one for the groups with the largest remainders that have room for it."""
        t_lead, t_follow = self.target[self.lead], self.target[self.follow]
        if not t_lead:
            return {g.gid: 0 for g in groups}
        shares = {g.gid: divmod(g.count[self.lead] * t_follow, t_lead) for g in groups}
        total = -(-sum(g.count[self.lead] for g in groups) * t_follow // t_lead)
        result = {gid: whole for gid, (whole, _) in shares.items()}
        extra = total - sum(result.values())
        # A group has room when its trial reservation got the rounded-up share.
        roomy = [g.gid for g in groups if shares[g.gid][1] and g.count[self.follow] > shares[g.gid][0]]
        for gid in sorted(roomy, key=lambda gid: (-shares[gid][1], len(gid), gid))[:extra]:
            result[gid] += 1
        return result

    def run(self) -> Plan:
        groups = self.existing()
        used = {g.gid for g in groups}
        return self.result(self.place(self.scale_in(groups, used), used, commit=True))

    def scale_in(self, groups: list[_Group], used: set[str]) -> list[_Group]:
        """Cut the lead role down to its target: groups on premium (then slow) resources first,
        smaller groups first. A cut is taken only if the cycle still places as much of each role
        as it would without cutting (up to the targets): the follower instances of a removed
        group must move to the remaining groups, and when those have no room for them (e.g. a
        group holding lead instances without its follower share, next to a full pool) the cut
        loses instances that a different cut keeps. Whole cuts are tried first, then partial
        ones (largest first): when every domain is full, cutting one group whole moves its
        follower share to full domains, while cutting each group a little keeps every group's
        bound follower. Excess no such cut sheds is cut in plain preference order."""
        lead = self.lead
        excess = sum(g.count[lead] for g in groups) - self.target[lead]
        if excess <= 0:
            return groups
        keeps = {role: min(self.target[role], n) for role, n in self.placed(groups, used).items()}

        def loses(group: _Group, cut: int) -> bool:
            """Whether cutting ``cut`` from ``group`` makes the cycle place less than ``keeps``."""
            group.count[lead] -= cut
            if any(n < keeps[role] for role, n in self.placed(groups, used).items()):
                group.count[lead] += cut
                return True
            return False

        order = sorted(groups, key=lambda g: (tuple(-r for r in self.rank(g)), g.count[lead], len(g.gid), g.gid))
        # Whole cuts first (they empty groups), then the largest partial cut of each group that
        # the trial accepts: when every whole cut strands follower instances (each remaining
        # group's domain is full), shrinking several groups keeps each its bound follower.
        for partial in (False, True):
            for group in order:
                most = min(excess, group.count[lead])
                if most <= 0:
                    continue
                for cut in range(most, 0, -1) if partial else (most,):
                    if not loses(group, cut):
                        excess -= cut
                        break
        for group in order:
            cut = min(excess, group.count[lead])
            group.count[lead] -= cut
            excess -= cut
        return [g for g in groups if g.count[lead] > 0]

    def placed(self, groups: list[_Group], used: set[str]) -> dict[Role, int]:
        """Instances per role the rest of the cycle would place for these groups (a trial)."""
        planned = self.place(groups, used, commit=False)
        return {role: sum(g.count[role] for g in planned) for role in Role}

    def by_rank(self, groups: list[_Group]) -> list[_Group]:
        """Groups on the least premium resources first: they keep and grow first."""
        return sorted(groups, key=lambda g: (self.rank(g), len(g.gid), g.gid))

    def keep(self, group: _Group) -> None:
        """Reserve what an existing group keeps of its lead instances and their follower share.

        Bound lead instances are never given up because their follower floor has no room: their
        pods hold the nodes, so dropping them frees nothing this cycle. The group then keeps them
        with what fits of its follower (result() reports the rest); more lead instances than bound
        would only put the ratio further off."""
        lead = group.count[self.lead]
        keep = max(self.max_lead(group, lead), min(lead, group.bound[self.lead]))
        self.reserve(group, {self.lead: keep, self.follow: self.need(self.follow, keep)})

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

    def place(self, kept: list[_Group], used: set[str], *, commit: bool) -> list[_Group]:
        """Keep, grow, then create groups for the lead target, apportion the follower, and
        reserve it all; returns the groups. ``kept`` and ``used`` are left alone (the groups are
        copies), and without ``commit`` so is the index."""
        lead, follow = self.lead, self.follow
        groups = [
            _Group(g.gid, g.domain, dict(g.types), dict(g.count), dict(g.bound)) for g in kept if g.count[lead] > 0
        ]
        taken = set(used)
        mark = self.index.mark()
        by_rank = self.by_rank(groups)
        for group in by_rank:
            self.keep(group)
        left = self.target[lead] - sum(g.count[lead] for g in groups)
        for group in by_rank:
            grow = self.max_lead(group, group.count[lead] + left)
            if grow > group.count[lead]:
                left -= grow - group.count[lead]
                self.reserve(group, {lead: grow, follow: self.need(follow, grow)})
        groups = [g for g in groups if g.count[lead] > 0]
        while left > 0:
            created = self.new_group(left, taken)
            if created is None:
                break
            taken.add(created.gid)
            groups.append(created)
            left -= created.count[lead]
        follower = self.apportion(groups)
        self.index.rollback(mark)
        for group in groups:
            group.reserved = {Role.PREFILL: 0, Role.DECODE: 0}
            self.reserve(group, {lead: group.count[lead], follow: follower[group.gid]})
        if not commit:
            self.index.rollback(mark)
        return [g for g in groups if g.count[lead] > 0]

    def result(self, groups: list[_Group]) -> Plan:
        planned = [
            PlannedGroup(
                name=deployment_name(self.request.name, role, g.gid),
                group=g.gid,
                role=role,
                gpu_type=g.types[role],
                domain=g.domain,
                replicas=g.count[role],
                gpus_per_instance=self.gpus[role],
                nodes_available=self.index.nodes_available(g.domain, g.types[role], self.view[role]),
            )
            for g in sorted(groups, key=lambda g: (len(g.gid), g.gid))
            for role in (Role.PREFILL, Role.DECODE)
        ]
        short = []
        scope = self.request.spec.topology.colocate or "the cluster"
        # Groups kept at their bound size below their follower floor (see place()): what they
        # lack is reported per group, so the ratio being off is explained where it happens.
        off = {
            g.gid: lacking
            for g in groups
            if (lacking := self.need(self.follow, g.count[self.lead], at_least=True) - g.count[self.follow]) > 0
        }
        for role in Role:
            missing = self.target[role] - sum(g.count[role] for g in groups)
            if role is self.follow:
                missing -= sum(off.values())
            if missing > 0:
                types = self.types[role]
                short.append(
                    Shortfall(
                        role=role,
                        gpu_type=types[0],
                        instances=missing,
                        message=(
                            f"{missing} of {self.target[role]} {role.value} instance(s) of "
                            f"{self.gpus[role]} GPU(s) on {'/'.join(types)} do not fit: no {scope} "
                            "domain has room for them next to their group's other role"
                        ),
                    )
                )
        for g in sorted(groups, key=lambda g: (len(g.gid), g.gid)):
            if g.gid in off:
                follow, lead = self.follow.value, self.lead.value
                short.append(
                    Shortfall(
                        role=self.follow,
                        gpu_type=g.types[self.follow],
                        instances=off[g.gid],
                        message=(
                            f"{off[g.gid]} {follow} instance(s) of {self.gpus[self.follow]} GPU(s) on "
                            f"{g.types[self.follow]} for {deployment_name(self.request.name, self.follow, g.gid)} "
                            f"do not fit: {scope} domain {g.domain!r} is full, so its {g.count[self.lead]} {lead} "
                            f"instance(s), which are bound and kept, run with {g.count[self.follow]} {follow}: "
                            "the ratio is temporarily off until room frees up there"
                        ),
                    )
                )
        return Plan(self.request.name, tuple(planned), tuple(short))


def plan_many(inventory: Inventory, requests: Sequence[PlanRequest]) -> list[Plan]:
    """Plan several PDServingGroups competing for one inventory, highest ``spec.priority`` first
    (then by namespace and name); plans come back in the order of ``requests``."""
    for request in requests:
        if request.spec.topology != inventory.topology:
            raise ValueError(
                f"PDServingGroup {request.name!r} uses topology labels that differ from the inventory's; "
                "build one inventory per topology"
            )
    index = CapacityIndex(inventory)
    order = sorted(
        range(len(requests)), key=lambda i: (-requests[i].spec.priority, requests[i].namespace, requests[i].name)
    )
    plans: dict[int, Plan] = {}
    # A higher priority takes what is not bound yet; equal priorities keep what they were given.
    for _, tier in itertools.groupby(order, key=lambda i: requests[i].spec.priority):
        planners = [(i, _Planner(index, inventory, requests[i])) for i in tier]
        for _, planner in planners:
            planner.hold()
        plans.update((i, planner.run()) for i, planner in planners)
    return [plans[i] for i in range(len(requests))]


def plan(
    inventory: Inventory,
    current_groups: Sequence[GroupStatus],
    targets: RoleTargets,
    spec: PDServingGroupSpec,
    name: str,
    namespace: str = "",
) -> Plan:
    """Plan one PDServingGroup alone (see :func:`plan_many`)."""
    return plan_many(inventory, [PlanRequest(name, spec, targets, current_groups, namespace)])[0]
