"""How much a deployment group can hold in its domain, and reserving it (pure).

For one request's roles over the shared :class:`~heteroscale.placement.capacity.CapacityIndex`:
free slots and ranks of a group's pools, whether a lead count fits with its follower share,
the most lead instances a group can hold, the highest rank a reservation would touch, and the
reservation itself. Larger instances are reserved first: with that order best-fit packing on a
shared pool never strands room the smaller role could use.
"""

from __future__ import annotations

from heteroscale.api.enums import Role
from heteroscale.placement.capacity import LOWEST_RANK, CapacityIndex
from heteroscale.placement.group import Group
from heteroscale.placement.order import Rank
from heteroscale.placement.roles import RoleSetup


class GroupSizing:
    """Measures and reserves groups of one request in the shared index."""

    def __init__(self, index: CapacityIndex, roles: RoleSetup) -> None:
        self.index = index
        self.roles = roles

    def rank(self, group: Group) -> Rank:
        """The highest rank of the nodes the group's roles may use in its domain."""
        view = self.roles.view
        ranks = (r for role in Role for r in self.index.ranks(group.domain, group.types[role], view[role]))
        return max(ranks, default=LOWEST_RANK)

    def slots(self, group: Group, role: Role, gpus: int | None = None) -> int:
        """Free slots of ``role``'s pool in the group's domain (for ``gpus`` GPUs, default the role's)."""
        gpus = self.roles.gpus[role] if gpus is None else gpus
        return sum(self.index.slots(group.domain, group.types[role], self.roles.view[role], gpus))

    def rank_for(self, group: Group, role: Role, instances: int, gpus: int | None = None) -> Rank | None:
        gpus = self.roles.gpus[role] if gpus is None else gpus
        return self.index.rank_for(group.domain, group.types[role], self.roles.view[role], gpus, instances)

    def take(self, group: Group, role: Role, instances: int) -> int:
        roles = self.roles
        return self.index.take(group.domain, group.types[role], roles.view[role], roles.gpus[role], instances)

    def missing(self, group: Group, role: Role, count: int) -> int:
        """Instances of ``role`` still to reserve for the group to hold ``count``."""
        return max(0, count - group.bound[role]) - group.reserved[role]

    def demand(self, group: Group, lead: int) -> list[tuple[Role, int]]:
        """What holding ``lead`` lead instances still needs per role, larger instances first."""
        need = self.roles.need
        return [
            (role, max(0, self.missing(group, role, need(role, lead, at_least=True)))) for role in self.roles.by_size
        ]

    @staticmethod
    def shared_pool(group: Group) -> bool:
        """True when both roles draw on one pool (same GPU type)."""
        return group.types[Role.PREFILL] == group.types[Role.DECODE]

    def fits(self, group: Group, lead: int) -> bool:
        """Whether the group can hold ``lead`` lead instances on its one shared pool."""
        (big_role, big_n), (small_role, small_n) = self.demand(group, lead)
        if self.roles.slot_counts_decide:
            gpus = self.roles.gpus
            per_big = gpus[big_role] // gpus[small_role]
            big_slots = self.slots(group, big_role)
            small_slots = self.slots(group, big_role, gpus[small_role])
            return big_n <= big_slots and small_n + per_big * big_n <= small_slots
        mark = self.index.mark()
        try:
            return all(self.take(group, role, n) == n for role, n in ((big_role, big_n), (small_role, small_n)))
        finally:
            self.index.rollback(mark)

    def reserve(self, group: Group, counts: dict[Role, int]) -> None:
        """Reserve capacity for the group to hold ``counts``; a part that does not fit lowers it."""
        for role in sorted(counts, key=lambda r: -self.roles.gpus[r]):
            want = self.missing(group, role, counts[role])
            got = self.take(group, role, want) if want > 0 else 0
            group.reserved[role] += got
            group.count[role] = min(counts[role], group.bound[role] + group.reserved[role])

    def max_lead(self, group: Group, ceiling: int) -> int:
        """The most lead instances, up to ``ceiling``, the group can hold."""
        lead, follow, target = self.roles.lead, self.roles.follow, self.roles.target

        def room(role: Role) -> int:
            return group.bound[role] + group.reserved[role] + self.slots(group, role)

        hi = min(ceiling, room(lead))
        if not self.shared_pool(group):
            # Independent pools: the follower's room bounds the lead directly.
            if target[follow]:
                # The largest lead whose rounded-down follower share fits the follower's room.
                hi = min(hi, ((room(follow) + 1) * target[lead] - 1) // target[follow])
            return max(hi, 0)
        lo = 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.fits(group, mid):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def touched_rank(self, group: Group, lead: int) -> Rank:
        """The highest rank the group's reservation for ``lead`` lead instances touches."""
        (big_role, big_n), (small_role, small_n) = self.demand(group, lead)
        if self.shared_pool(group) and self.roles.slot_counts_decide:
            # Large instances fill the lowest ranks first and use per_big small slots each.
            gpus = self.roles.gpus
            per_big = gpus[big_role] // gpus[small_role]
            ranks = (
                self.rank_for(group, big_role, big_n),
                self.rank_for(group, big_role, small_n + per_big * big_n, gpus[small_role]),
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
