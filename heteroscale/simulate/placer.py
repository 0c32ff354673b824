"""Role targets to instances per GPU type, through the operator's real ``placement.plan``.

Every policy's targets pass through :class:`Placer` over the same simulated inventory
(:mod:`heteroscale.simulate.inventory`); there is no second placement algorithm here. How a
policy's targets become plans depends on what it scales:

* paired (HeteroScale): one PDServingGroup, ``plan(inventory, groups, RoleTargets(p, d), ...)``,
  so prefill and decode are placed as deployment groups, each group in one S2 domain;
* pools (the baselines, which scale each pool on its own): two PDServingGroups with the same
  spec, one holding only prefill (``RoleTargets(p, 0)``) and one only decode
  (``RoleTargets(0, d)``), planned together by ``plan_many`` over the one inventory so they
  compete for the same nodes. Placement puts each pool where it keeps mixed domains free, as it
  would any single-role group.

Like the operator, the groups of the previous plan are passed back as ``GroupStatus`` (desired =
planned replicas), so groups grow and shrink instead of being re-planned from scratch, and their
instances are bound to nodes, as the operator sees running pods (:func:`bound_inventory`): the
scheduler has put every planned instance on a node of its group's GPU type and domain, starting
or ready. That matters where a kept group no longer fits: placement never gives up a bound
instance because its follower share has no room (a group keeps it with what fits of the
follower), where an unbound one would be dropped. Placement runs only when the targets change,
and not again for targets it already planned from the same groups (``plan`` is pure).
Instances a plan reports unschedulable are not started.

KV routing, for the cross-domain share: a prefill instance hands its KV cache to the decode
instances of its own deployment group when the group has any (placement pins both to one
domain); a prefill instance without such partners (every pool-placed one) hands it to the whole
decode fleet in proportion to the instances, so the share of decode instances outside its domain
crosses domains. A group planned at cluster scope (domain "") is pinned to no S2: the scheduler
may put its pods on any node of its GPU type, so it is taken to be spread over the S2 big-pods
in proportion to their nodes of that type, and its KV stays in an S2 only as often as its
partners happen to share it. Pure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import GroupStatus
from heteroscale.placement import (
    Inventory,
    Node,
    Plan,
    PlannedGroup,
    PlanRequest,
    RoleTargets,
    bound_key,
    plan,
    plan_many,
)

#: PDServingGroup name of a paired policy's plans, and of each pool of an unpaired one.
PAIRED = "sim"
POOLS = {Role.PREFILL: "sim-prefill-pool", Role.DECODE: "sim-decode-pool"}


@dataclass(frozen=True)
class Placed:
    counts: dict[Role, dict[str, int]]
    #: Share of prefill instances whose KV goes to a decode instance in another S2 domain.
    cross_domain_fraction: float
    #: Instances of the targets that placement could not place (not started).
    unschedulable: int
    groups: tuple[PlannedGroup, ...]


#: Share of a GPU type's nodes in each S2 big-pod, per GPU type.
Spread = Mapping[str, Mapping[str, float]]


def s2_spread(inventory: Inventory) -> Spread:
    """Where a cluster-scoped group of each GPU type is taken to be (its nodes' S2 shares); the
    S2 is a node's topmost tier label."""
    nodes: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for node in inventory.nodes:
        if node.tiers[-1] is not None:  # an unlabelled node is in no S2
            nodes[node.gpu_type][node.tiers[-1]] += 1
    return {t: {s2: n / c.total() for s2, n in c.items()} for t, c in nodes.items()}


def _where(group: PlannedGroup, spread: Spread) -> Mapping[str, float]:
    return {group.domain: 1.0} if group.domain else spread[group.gpu_type]


def cross_domain_fraction(groups: Sequence[tuple[str, PlannedGroup]], spread: Spread) -> float:
    """The cross-domain share of ``(pdsg name, planned group)`` pairs, by the routing rule above."""
    decode_total = sum(g.replicas for _, g in groups if g.role is Role.DECODE)
    prefill_total = sum(g.replicas for _, g in groups if g.role is Role.PREFILL)
    if not decode_total or not prefill_total:
        return 0.0
    partners = {(name, g.group): g for name, g in groups if g.role is Role.DECODE and g.replicas}
    decode_in: defaultdict[str, float] = defaultdict(float)
    for _, g in groups:
        if g.role is Role.DECODE:
            for s2, share in _where(g, spread).items():
                decode_in[s2] += g.replicas * share / decode_total
    crossing = 0.0
    for name, g in groups:
        if g.role is not Role.PREFILL or not g.replicas:
            continue
        partner = partners.get((name, g.group))
        there = _where(partner, spread) if partner is not None else decode_in
        stays = sum(share * there.get(s2, 0.0) for s2, share in _where(g, spread).items())
        crossing += g.replicas * (1.0 - stays)
    return crossing / prefill_total


def bound_inventory(inventory: Inventory, plans: Sequence[Plan]) -> Inventory:
    """``inventory`` with the instances of ``plans`` bound to nodes: each group's on schedulable
    nodes of its GPU type in its domain (anywhere for a cluster-scoped group), filling nodes in
    mini-pods of one GPU type before those where types meet, which placement keeps free for the
    groups that need them (the order its premium ranks give), each mini-pod's nodes in name
    order. What finds no node stays unbound (the plan placed it, so that does not happen)."""
    types_in_s1: defaultdict[str | None, set[str]] = defaultdict(set)
    for node in inventory.nodes:
        types_in_s1[node.tiers[1] if len(node.tiers) > 1 else None].add(node.gpu_type)

    def mixed(node: Node) -> bool:
        return len(types_in_s1[node.tiers[1] if len(node.tiers) > 1 else None]) > 1

    order = sorted((n for n in inventory.nodes if n.schedulable), key=lambda n: (mixed(n), n.name))
    free = {n.name: n.free for n in order}
    used: Counter[str] = Counter()
    bound: Counter[str] = Counter()
    for group in (g for p in plans for g in p.groups):
        left = group.replicas
        for node in order:
            if not left:
                break
            if node.gpu_type != group.gpu_type or (group.domain and node.tiers[-1] != group.domain):
                continue
            fits = min(left, free[node.name] // group.gpus_per_instance)
            free[node.name] -= fits * group.gpus_per_instance
            used[node.name] += fits * group.gpus_per_instance
            left -= fits
        # The plans' PDServingGroups have no namespace (PlanRequest's default).
        bound[bound_key("", group.name)] += group.replicas - left
    nodes = tuple(replace(n, requested=n.requested + used[n.name]) if used[n.name] else n for n in inventory.nodes)
    return Inventory(nodes=nodes, bound={**inventory.bound, **bound}, topology=inventory.topology)


class Placer:
    """Carries one policy's deployment groups from plan to plan."""

    def __init__(self, inventory: Inventory, spec: PDServingGroupSpec, *, paired: bool) -> None:
        self._inventory = inventory
        self._spread = s2_spread(inventory)
        self._spec = spec
        self._paired = paired
        #: The plans in force: their groups are the next plan's current groups.
        self._plans: tuple[Plan, ...] = ()
        self._last: tuple[tuple[int, int], Placed] | None = None
        #: Plans already made, by (plans in force, targets). ``plan`` is pure and the inventory
        #: and spec are fixed, so the same current groups and targets give the same plans: a
        #: policy whose targets return to a value from the same groups (an oscillation between
        #: two sizes settles into such a cycle) reuses them instead of planning again.
        self._memo: dict[tuple[tuple[Plan, ...], int, int], tuple[tuple[Plan, ...], Placed]] = {}

    def place(self, prefill: int, decode: int) -> Placed:
        if self._last is not None and self._last[0] == (prefill, decode):
            return self._last[1]
        key = (self._plans, prefill, decode)
        if key not in self._memo:
            plans = self._plan(prefill, decode)
            self._memo[key] = (plans, self._placed(plans))
        self._plans, placed = self._memo[key]
        self._last = ((prefill, decode), placed)
        return placed

    def _plan(self, prefill: int, decode: int) -> tuple[Plan, ...]:
        current = {
            p.name: [
                GroupStatus(name=g.name, role=g.role, gpu_type=g.gpu_type, domain=g.domain, desired=g.replicas)
                for g in p.groups
            ]
            for p in self._plans
        }
        inventory = bound_inventory(self._inventory, self._plans)
        if self._paired:
            return (plan(inventory, current.get(PAIRED, ()), RoleTargets(prefill, decode), self._spec, PAIRED),)
        return tuple(
            plan_many(
                inventory,
                [
                    PlanRequest(name, self._spec, targets, current.get(name, ()))
                    for name, targets in (
                        (POOLS[Role.PREFILL], RoleTargets(prefill, 0)),
                        (POOLS[Role.DECODE], RoleTargets(0, decode)),
                    )
                ],
            )
        )

    def _placed(self, plans: tuple[Plan, ...]) -> Placed:
        counts: dict[Role, Counter[str]] = {Role.PREFILL: Counter(), Role.DECODE: Counter()}
        for p in plans:
            for g in p.groups:
                counts[g.role][g.gpu_type] += g.replicas
        return Placed(
            counts={role: dict(c) for role, c in counts.items()},
            cross_domain_fraction=cross_domain_fraction([(p.name, g) for p in plans for g in p.groups], self._spread),
            unschedulable=sum(s.instances for p in plans for s in p.unschedulable),
            groups=tuple(g for p in plans for g in p.groups),
        )
