"""Plans kept between placement runs, so that a run plans only the requests that changed (pure).

:func:`~heteroscale.placement.plan.plan_many` plans every request on a fresh capacity index. An
operator with a thousand PDServingGroups sees a few of them change at a time, and planning all of
them for each change costs a thousand cycles a run (issue #15). A :class:`Ledger` keeps the index
between runs, with every request's reservations in it and each request's plan.
:meth:`Ledger.plan` gives back the reservations of the requests it plans again
(:meth:`~heteroscale.placement.capacity.CapacityIndex.release`, to the very nodes they took) and
plans them, highest ``spec.priority`` first, against what every other request holds.

What a run of only the changed requests cannot do, and a full run (a new ledger) does:

* let a higher priority take room that a lower priority holds but whose pods are not bound yet:
  :meth:`Ledger.outranks` says when a request left short might gain from that;
* see another inventory: a ledger plans over the inventory it was built from (the bound pods its
  cycles read come from it too), so the caller builds a new one when the inventory changed;
* plan again the requests it was not given: a request left short is not planned again because
  another one freed room unless the caller passes it (the operator's plan book passes every
  request left short in every run).

A full run and a run of the changed requests give the same plans when none of these applies:
both serve each tier's kept groups before any of them grows, and a request whose request did
not change keeps the groups it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from heteroscale.placement.capacity import CapacityIndex, Reservation
from heteroscale.placement.inventory import Inventory
from heteroscale.placement.plan import serve
from heteroscale.placement.request import PlanRequest
from heteroscale.placement.result import Plan

#: (namespace, name) of a PDServingGroup.
Key = tuple[str, str]


def key_of(request: PlanRequest) -> Key:
    return (request.namespace, request.name)


class Ledger:
    """One inventory's capacity index kept between runs, with each request's plan and reservations."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.index = CapacityIndex(inventory, releasable=True)
        self.plans: dict[Key, Plan] = {}
        """The last plan of every request the ledger holds."""
        self.short: set[Key] = set()
        """The requests whose last plan left them short (``unschedulable``): a caller that plans
        them in every run finds them without walking every plan."""
        self._priority: dict[Key, int] = {}
        self._reserved: dict[Key, list[Reservation]] = {}

    def plan(self, requests: Sequence[PlanRequest]) -> list[Plan]:
        """Plan ``requests`` (one per group), each in place of the group's previous one, against
        what the others hold; plans come back in the order of ``requests``."""
        for request in requests:
            self.drop(key_of(request))
        planned = serve(self.index, self.inventory, requests)
        for request, (plan, reserved) in zip(requests, planned, strict=True):
            key = key_of(request)
            self.plans[key] = plan
            if plan.unschedulable:
                self.short.add(key)
            self._priority[key] = request.spec.priority
            self._reserved[key] = reserved
        return [plan for plan, _ in planned]

    def drop(self, key: Key) -> None:
        """Give back what the group's request reserved and forget its plan (unknown: nothing)."""
        self.index.release(self._reserved.pop(key, []))
        self.plans.pop(key, None)
        self.short.discard(key)
        self._priority.pop(key, None)

    def outranks(self, keys: Iterable[Key]) -> bool:
        """Whether a run of every request might place more for one of these groups: one of them
        is short of what it asked, and a group of lower priority holds room (a full run serves
        the higher priority first; this ledger's runs serve only the groups they plan)."""
        short = [self._priority[k] for k in keys if k in self.short]
        return bool(short) and min(self._priority.values()) < max(short)
