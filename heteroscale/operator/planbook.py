"""The shared planning step: every placed PDServingGroup's latest request, planned together.

Each group's loop ticks on its own, but capacity is shared: planned alone, whichever group ticks
first takes the free GPUs (priority ignored), and two groups scaling out at once both count the
same free GPUs until their pods bind. So a tick does not plan its group alone: it puts the group's
request in the :class:`PlanBook` and takes its plan out of one :func:`plan_many` over all requests
of that topology, which serves them in ``spec.priority`` order, each counting what the ones before
it reserved.

The book keeps each request as its plan makes it (the groups at their planned replicas, which the
tick is about to write): so until those pods bind, every other group's plan reserves them, and the
next tick's request, rebuilt from the same groups, is equal and changes nothing. ``plan_many`` runs
again only when a request or the inventory changed since the last run, and a group whose request
did not change and placed all it asked for takes its plan from the last run without waiting for
the next one. So a steady tick never waits for placement, a
changed one waits for at most the run under way and its own, and changes that arrive together
are planned in one run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from heteroscale.api.spec import Topology
from heteroscale.api.status import GroupStatus
from heteroscale.placement import Inventory, Plan, PlannedGroup, PlanRequest, plan_many

#: (namespace, name) of a PDServingGroup.
Key = tuple[str, str]


def as_current_group(group: PlannedGroup | GroupStatus) -> GroupStatus:
    """A group as placement reads it in ``current_groups``. Its readiness is left out: placement does
    not read it, and a pod turning ready must not count as a changed request."""
    desired = group.replicas if isinstance(group, PlannedGroup) else group.desired
    return GroupStatus(name=group.name, role=group.role, gpu_type=group.gpu_type, domain=group.domain, desired=desired)


def _normal(request: PlanRequest, groups: Sequence[PlannedGroup | GroupStatus]) -> PlanRequest:
    """The request with ``groups`` as its current groups, in one canonical form: equal inputs then
    compare equal, whatever order or sequence type they came in."""
    current = tuple(sorted((as_current_group(g) for g in groups), key=lambda g: g.name))
    return replace(request, current_groups=current)


def _topology(topology: Topology) -> str:
    return topology.model_dump_json()


@dataclass
class _Shelf:
    """The requests of one topology (``plan_many`` takes one inventory, hence one topology)."""

    requests: dict[Key, PlanRequest] = field(default_factory=dict)
    """Each group's request, in its planned form once it has been planned."""
    planned_from: dict[Key, PlanRequest] = field(default_factory=dict)
    """The request each planned form came from: sent again, it is no change."""
    version: int = 0
    """Bumped whenever a request is added, changed or dropped."""
    planned_for: tuple[int, Inventory] | None = None
    plans: dict[Key, Plan] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    runs: int = 0
    """Runs started so far: a caller that registered before a run started has its plan from it."""

    def put(self, key: Key, request: PlanRequest) -> None:
        if request in (self.requests.get(key), self.planned_from.get(key)):
            return
        self.requests[key] = request
        self.planned_from.pop(key, None)
        self.version += 1

    def settled(self, key: Key) -> Plan | None:
        """The plan of a request that has not changed since the last run planned it, when it placed
        all it asked for: that keeps its place whatever the others ask (a run they need recomputes
        it too, and the next tick takes that). None: wait for the runs as usual; a group left short
        must, as capacity another group or a node freed may fit it now."""
        plan = self.plans.get(key)
        if plan is None or key not in self.planned_from or plan.unschedulable:
            return None
        return plan

    def drop(self, key: Key) -> None:
        self.planned_from.pop(key, None)
        if self.requests.pop(key, None) is not None:
            self.version += 1

    async def current_plans(self, inventory: Inventory) -> dict[Key, Plan]:
        """The plans of every request, recomputed only if a request or the inventory changed.

        ``plan_many`` runs in a worker thread, one run at a time. Groups that tick while it runs
        register their requests and wait; the next run then covers all of them at once, so a burst
        of changes (a traffic ramp moving every group) costs about two runs, not one per group.
        """
        registered = self.runs
        async with self.lock:
            # A run that started after this caller registered planned its request already: more
            # changes since then are the business of the callers that made them. Without this, every
            # caller queued behind a run would start one more run for the changes that arrived
            # meanwhile, and with a thousand groups ticking, the runs would follow one another.
            if self.runs > registered:
                return self.plans
            # The inventory is compared by identity: the operator's cluster view hands out the same
            # object until a Node or Pod changes, and a new one after.
            if self.planned_for is None or self.planned_for[0] != self.version or self.planned_for[1] is not inventory:
                self.runs += 1
                version, asked = self.version, dict(self.requests)
                plans = await asyncio.to_thread(plan_many, inventory, list(asked.values()))
                self.plans = dict(zip(asked, plans, strict=True))
                for key, request in asked.items():
                    # Keep each request as its plan makes it (the groups at their planned
                    # replicas, which its next tick writes), so the groups planned after it
                    # reserve them before their pods bind; unless it changed meanwhile.
                    if self.requests.get(key) is request:
                        self.requests[key] = _normal(request, self.plans[key].groups)
                        self.planned_from[key] = request
                self.planned_for = (version, inventory)
            return self.plans


@dataclass
class PlanBook:
    """Every placed PDServingGroup's latest request, by topology; plans computed together."""

    _shelves: dict[str, _Shelf] = field(default_factory=dict)
    _topology_of: dict[Key, str] = field(default_factory=dict)

    async def plan(self, request: PlanRequest, inventory: Inventory) -> Plan:
        """Register ``request`` (replacing the group's previous one) and return its plan, planned
        with every registered request of its topology; ``inventory`` is that topology's."""
        key = (request.namespace, request.name)
        topology = _topology(request.spec.topology)
        if self._topology_of.get(key, topology) != topology:
            self.drop(*key)  # The group moved to another topology: it competes there now.
        self._topology_of[key] = topology
        shelf = self._shelves.setdefault(topology, _Shelf())
        shelf.put(key, _normal(request, request.current_groups))
        # A steady group does not wait for runs that other groups' changes need.
        settled = shelf.settled(key)
        if settled is not None:
            return settled
        while True:
            plans = await shelf.current_plans(inventory)
            if key in plans:
                return plans[key]
            # Dropped and registered again while a run was under way: plan once more with it.
            shelf.put(key, _normal(request, request.current_groups))

    async def preview(self, request: PlanRequest, inventory: Inventory) -> Plan:
        """The plan ``request`` would get, without reserving anything for it (DryRun: no pods will
        use it). Not cached: only DryRun groups ask, and each asks once per tick."""
        key = (request.namespace, request.name)
        shelf = self._shelves.get(_topology(request.spec.topology), _Shelf())
        others = [r for k, r in shelf.requests.items() if k != key]
        plans = await asyncio.to_thread(plan_many, inventory, [*others, request])
        return plans[-1]

    def seed(self, request: PlanRequest) -> None:
        """Register what a group holds before its first tick (from its status, after a restart),
        so that the first ticks of the others count its pods that are not bound yet. Its own first
        tick replaces it; a group already registered is left alone."""
        key = (request.namespace, request.name)
        if key not in self._topology_of:
            topology = self._topology_of[key] = _topology(request.spec.topology)
            self._shelves.setdefault(topology, _Shelf()).put(key, _normal(request, request.current_groups))

    def __contains__(self, key: Key) -> bool:
        return key in self._topology_of

    def drop(self, namespace: str, name: str) -> None:
        """Forget a group that no longer reserves capacity (deleted, invalid, DryRun, not placed)."""
        topology = self._topology_of.pop((namespace, name), None)
        if topology is not None:
            self._shelves[topology].drop((namespace, name))
