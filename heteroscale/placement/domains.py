"""Where a new deployment group goes: its GPU types and colocation domain (pure).

A new group takes the most preferred GPU type pair (the lead role's order, then the follower's)
that has room anywhere, and the domain with the least key ``(touched rank, takes less than
asked, spare lead slots or minus the lead instances taken, domain)``: the domain whose
reservation touches the least premium rank; among those, one that takes all that is asked with
the least capacity to spare (best fit), else the one taking the most.

Two searches find that domain. When slot counts alone give every domain's key (the roles on
pools of their own, or on one pool where slot counts decide), :meth:`DomainChoice.best_at_once`
computes all keys at once with numpy over the index's cumulative slots; otherwise
:meth:`DomainChoice.best_pruned` visits domains by increasing lower bound of their key
(:class:`~heteroscale.placement.order.DomainOrder`) and stops at the first bound not below the
best key found.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from heteroscale.api.enums import Role
from heteroscale.placement.capacity import CapacityIndex, Need, Slots
from heteroscale.placement.group import Group
from heteroscale.placement.order import Rank
from heteroscale.placement.roles import RoleSetup
from heteroscale.placement.sizing import GroupSizing


class DomainChoice:
    """Chooses and reserves new groups for one request."""

    def __init__(self, index: CapacityIndex, roles: RoleSetup, sizing: GroupSizing) -> None:
        self.index = index
        self.roles = roles
        self.sizing = sizing

    def new_group(self, ceiling: int, used: set[str]) -> Group | None:
        """The best new group for up to ``ceiling`` lead instances, reserved; None if none fits.
        Its id is the first ``g<n>`` not in ``used``."""
        roles = self.roles
        lead_role, follow = roles.lead, roles.follow
        gid = next(f"g{n}" for n in range(len(used) + 1) if f"g{n}" not in used)
        follow_types = roles.types[follow] if roles.target[follow] else roles.types[follow][:1]
        for lead_t in roles.types[lead_role]:
            for follow_t in follow_types:
                types = {lead_role: lead_t, follow: follow_t}
                best = self.best_at_once(types, ceiling) if self.at_once(types) else self.best_pruned(types, ceiling)
                if best is not None:
                    domain, lead = best
                    group = Group(gid, domain, types)
                    self.sizing.reserve(group, {lead_role: lead, follow: roles.need(follow, lead)})
                    return group
        return None

    def ratio_class(self) -> tuple[int, int]:
        """``(a, b)``: at most ``a / b`` lead instances per follower instance, with ``a`` or
        ``b`` equal to 1, rounded so that few values occur and requests share the capacity
        index's domain orders; ``(1, 0)`` without a follower target."""
        t_lead, t_follow = self.roles.target[self.roles.lead], self.roles.target[self.roles.follow]
        if not t_follow:
            return 1, 0
        if t_follow > t_lead:
            return 1, t_follow // t_lead
        return -(-t_lead // t_follow), 1

    def needs(self, types: dict[Role, str]) -> tuple[Need, Need | None]:
        """What a new group of ``types`` needs of the lead and (None without a target) the follower."""
        roles = self.roles
        lead = Need(types[roles.lead], roles.view[roles.lead], roles.gpus[roles.lead])
        if not roles.target[roles.follow]:
            return lead, None
        return lead, Need(types[roles.follow], roles.view[roles.follow], roles.gpus[roles.follow])

    def at_once(self, types: dict[Role, str]) -> bool:
        """Whether slot counts alone give every domain's new-group key (:meth:`best_at_once`):
        the roles on pools of their own, or on one pool where slot counts decide; otherwise the
        key needs trial reservations (:meth:`best_pruned`)."""
        return types[Role.PREFILL] != types[Role.DECODE] or self.roles.slot_counts_decide

    def best_pruned(self, types: dict[Role, str], ceiling: int) -> tuple[str, int] | None:
        """The domain with the least new-group key and its lead instances (None if none fits),
        visiting domains by increasing lower bound of their key and stopping at the first bound
        not below the best key found."""
        sizing = self.sizing
        best: tuple[tuple[Rank, bool, int, str], int] | None = None
        # One probe is moved from domain to domain (measuring it reserves nothing).
        probe = Group("", "", types)
        for bound in self.index.candidates(*self.needs(types), self.ratio_class(), ceiling):
            # Keys come no lower than their bounds, which come in increasing order.
            if best is not None and bound >= best[0]:
                break
            probe.domain = domain = bound[-1]
            lead = sizing.max_lead(probe, ceiling)
            if lead <= 0:
                continue
            lead_slots = sizing.slots(probe, self.roles.lead)
            fit = (lead < ceiling, lead_slots - lead if lead == ceiling else -lead)
            key = (sizing.touched_rank(probe, lead), *fit, domain)
            if best is None or key < best[0]:
                best = (key, lead)
        return None if best is None else (best[0][-1], best[1])

    def best_at_once(self, types: dict[Role, str], ceiling: int) -> tuple[str, int] | None:
        """What :meth:`best_pruned` finds, from the exact key of every domain computed at once
        (numpy over domains) with the arithmetic of
        :meth:`~heteroscale.placement.sizing.GroupSizing.max_lead` and
        :meth:`~heteroscale.placement.sizing.GroupSizing.touched_rank` for a group that has
        nothing yet: the lead instances from slot counts, the touched rank as the first column
        of the index's cumulative slots that holds the reservation."""
        roles = self.roles
        lead_role, follow, sizes = roles.lead, roles.follow, roles.gpus
        lead_need, follow_need = self.needs(types)
        domains = self.index.paired(lead_need, follow_need)
        if not domains:
            return None
        t_lead, t_follow = roles.target[lead_role], roles.target[follow]

        def cumulative(role: Role, gpus: int) -> Slots:
            return self.index.cumulative(lead_need, follow_need, Need(types[role], roles.view[role], gpus))

        def counts(lead: Slots) -> dict[Role, Slots]:
            """What holding ``lead`` lead instances needs per role (demand() of an empty group)."""
            return {lead_role: lead, follow: lead * t_follow // t_lead}

        def touched(cum: Slots, instances: Slots) -> Slots:
            # The first column holding them; column 0 (the lowest rank) when nothing is to be
            # reserved, as rank_for() answers, and touched_rank() reads "does not fit" as it too.
            first: Slots = np.argmax(cum >= instances[:, None], axis=1)
            return first

        big, small = roles.by_size
        lead_cum = cumulative(lead_role, sizes[lead_role])
        lead_slots = lead_cum[:, -1]
        hi = np.minimum(ceiling, lead_slots)
        if types[Role.PREFILL] == types[Role.DECODE]:
            # One pool where slot counts decide (fits()): the largest lead up to ``hi`` whose big
            # instances fit in big slots and, with per_big small slots each, leave the small ones room.
            per_big = sizes[big] // sizes[small]
            big_cum, small_cum = cumulative(big, sizes[big]), cumulative(big, sizes[small])

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
                follow_cum = cumulative(follow, sizes[follow])
                hi = np.minimum(hi, ((follow_cum[:, -1] + 1) * t_lead - 1) // t_follow)
            lead = np.maximum(hi, 0)
            rank = touched(lead_cum, lead)
            if follow_need is not None:
                rank = np.maximum(rank, touched(follow_cum, counts(lead)[follow]))
        takes_less = lead < ceiling
        fit = np.where(takes_less, -lead, lead_slots - lead)
        fitting = np.flatnonzero(lead > 0)
        if not len(fitting):
            return None
        # Keys compared as (rank, takes less, fit, domain): lexsort's last key is its first.
        first = fitting[np.lexsort((fitting, fit[fitting], takes_less[fitting], rank[fitting]))[0]]
        return domains[first], int(lead[first])
