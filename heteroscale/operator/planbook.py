"""The shared planning step: every placed PDServingGroup's latest request, planned together.

Each group's loop ticks on its own, but capacity is shared: planned alone, whichever group ticks
first takes the free GPUs (priority ignored), and two groups scaling out at once both count the
same free GPUs until their pods bind. So a tick does not plan its group alone: it puts the group's
request in the :class:`PlanBook` and takes its plan out of a run over all requests of that
topology, which serves them in ``spec.priority`` order, each counting what the others reserved.

The book keeps each request as its plan makes it (the groups at their planned replicas, which the
tick is about to write): so until those pods bind, every other group's plan reserves them, and the
next tick's request, rebuilt from the same groups, is equal and changes nothing. A run happens
only when a request or the inventory changed since the last run, and a group whose request did
not change and placed all it asked for takes its plan from the last run without waiting for the
next one. So a steady tick never waits for placement, a changed one waits for at most the run
under way and its own, and changes that arrive together are planned in one run, which wakes
their ticks together (not one per turn of the event loop, as a lock hands over).

A run plans only what changed: the book keeps a :class:`~heteroscale.placement.Ledger` (the
capacity index with every group's reservations) between runs, and a run plans the groups whose
request changed, and those left short, against what the others hold (at a thousand groups a run
of every group cost 0.14-0.9 s; issue #15). A run plans every group afresh, on a new ledger,
when a group left short might gain from it: a lower priority holds room the full run would give
it, or the inventory changed (a Node or Pod did); and after a run failed. Otherwise a changed
inventory is taken up by the first run at least :data:`REFRESH_S` after the last full one: pods
binding change the inventory all the time, but not the free room (a bound pod's GPUs move from
its group's reservation to its node's requests), so planning on the inventory of a few seconds
ago misplaces nothing that the scheduler would not refuse (such a pod stays Pending until the
next full run sees why), and a full run per change would cost as much as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from heteroscale.api.spec import Topology
from heteroscale.api.status import GroupStatus
from heteroscale.placement import Inventory, Ledger, Plan, PlannedGroup, PlanRequest, plan_many
from heteroscale.placement.ledger import Key

#: The oldest a ledger's inventory may be, in seconds, when a run plans changed groups after the
#: inventory changed: the first such run after this plans every group on the new inventory.
REFRESH_S = 10.0


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
    """The requests of one topology (a ledger plans over one inventory, hence one topology)."""

    requests: dict[Key, PlanRequest] = field(default_factory=dict)
    """Each group's request, in its planned form once it has been planned."""
    planned_from: dict[Key, PlanRequest] = field(default_factory=dict)
    """The request each planned form came from: sent again, it is no change."""
    version: int = 0
    """Bumped whenever a request is added, changed or dropped."""
    planned_for: tuple[int, Inventory] | None = None
    plans: dict[Key, Plan] = field(default_factory=dict)
    inventory: Inventory | None = None
    """The inventory the latest caller passed: the next run plans on it."""
    next_run: asyncio.Future[dict[Key, Plan]] | None = None
    """The plans of the next run to start, for the callers waiting for it."""
    driver: asyncio.Task[None] | None = None
    changed: set[Key] = field(default_factory=set)
    """Groups whose request was added, changed or dropped since the last run started."""
    ledger: Ledger | None = None
    refreshed: float = 0.0
    """When the ledger was built (the event loop's clock)."""

    def put(self, key: Key, request: PlanRequest) -> None:
        if request in (self.requests.get(key), self.planned_from.get(key)):
            return
        self.requests[key] = request
        self.planned_from.pop(key, None)
        self.version += 1
        self.changed.add(key)

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
            self.changed.add(key)

    def current(self, inventory: Inventory) -> bool:
        """Whether the last run planned the requests as they are, on this inventory (compared by
        identity: the operator's cluster view hands out the same object until a Node or Pod
        changes, and a new one after)."""
        return self.planned_for is not None and self.planned_for[0] == self.version and self.planned_for[1] is inventory

    async def current_plans(self, inventory: Inventory) -> dict[Key, Plan]:
        """The plans of every request, planned again only if a request or the inventory changed.

        A run happens in a worker thread, one run at a time. A caller whose request changed waits
        for the first run that starts after it registered (not the one under way, which planned
        without it) and no longer: groups that tick while a run is under way all wait for the next
        one, which covers all of them at once and wakes them together. Runs follow one another
        while callers wait: each plans only what changed, so that costs what the changes cost
        (a run of every group per change would not; see the module's docstring).
        """
        self.inventory = inventory
        if self.current(inventory):
            return self.plans
        if self.next_run is None:
            self.next_run = asyncio.get_running_loop().create_future()
        waiting = self.next_run
        if self.driver is None or self.driver.done():
            self.driver = asyncio.create_task(self._drive(), name="placement runs")
        # Shielded: a caller cancelled (its group deleted) leaves the run to the others.
        return await asyncio.shield(waiting)

    async def _drive(self) -> None:
        """Run while callers wait, each run answering those that registered before it started."""
        while self.next_run is not None:
            waiting, self.next_run = self.next_run, None
            try:
                await self._run_once()
            except Exception as exc:  # every caller of this run sees why it failed
                # The ledger may be part way through the run: the next run plans every group afresh.
                self.ledger, self.planned_for = None, None
                waiting.set_exception(exc)
            else:
                waiting.set_result(self.plans)

    async def _run_once(self) -> None:
        inventory = self.inventory
        assert inventory is not None, "a caller passed its inventory before the run"
        if self.current(inventory):
            return
        version, asked, changed = self.version, dict(self.requests), self.changed
        self.changed = set()
        now = asyncio.get_running_loop().time()
        fresh = self.ledger is None or (self.ledger.inventory is not inventory and now - self.refreshed >= REFRESH_S)
        ledger, planned = await asyncio.to_thread(_run, self.ledger, inventory, asked, changed, fresh=fresh)
        if ledger is not self.ledger:
            self.ledger, self.refreshed = ledger, now
        self.plans = dict(ledger.plans)
        for key in planned:
            request = asked[key]
            # Keep each request as its plan makes it (the groups at their planned replicas,
            # which its next tick writes), so the groups planned after it reserve them before
            # their pods bind; unless it changed meanwhile.
            if self.requests.get(key) is request:
                self.requests[key] = _normal(request, self.plans[key].groups)
                self.planned_from[key] = request
        self.planned_for = (version, inventory)


def _run(
    ledger: Ledger | None, inventory: Inventory, asked: dict[Key, PlanRequest], changed: set[Key], *, fresh: bool
) -> tuple[Ledger, list[Key]]:
    """One run (in a worker thread): on the kept ledger, the groups that changed and those left
    short; every group on a new ledger when ``fresh``, or when one left short might gain from it
    (see the module's docstring). Returns the ledger and the groups it planned."""
    if ledger is not None and not fresh:
        for key in changed - asked.keys():
            ledger.drop(key)
        # Set operations, not a walk of every request: a run comes every few ticks, and at a
        # thousand groups that walk took 0.15-0.3 ms of a 2 ms run. serve() orders what it plans.
        again = sorted((changed | ledger.short | (asked.keys() - ledger.plans.keys())) & asked.keys())
        ledger.plan([asked[k] for k in again])
        short = not ledger.short.isdisjoint(again)
        if not ledger.outranks(again) and not (short and ledger.inventory is not inventory):
            return ledger, again
    ledger = Ledger(inventory)
    ledger.plan(list(asked.values()))
    return ledger, list(asked)


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
