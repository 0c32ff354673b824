"""The entry points: prefill/decode replica targets to deployment groups over an inventory (pure).

API::

    plan(inventory, current_groups: Sequence[GroupStatus], targets: RoleTargets,
         spec: PDServingGroupSpec, name: str, namespace: str = "") -> Plan
    plan_many(inventory, requests: Sequence[PlanRequest]) -> list[Plan]   # same order as requests
    Ledger(inventory).plan(requests) -> list[Plan]   # kept between runs: see ledger.py

The values asked and answered are in :mod:`~heteroscale.placement.request` and
:mod:`~heteroscale.placement.result`. Each PDServingGroup is planned by one
:class:`~heteroscale.placement.cycle.Cycle` (its steps are listed there), highest
``spec.priority`` first, over one shared capacity index, so what a higher priority reserves is
gone for the lower ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import GroupStatus
from heteroscale.placement.capacity import CapacityIndex, Reservation
from heteroscale.placement.cycle import Cycle
from heteroscale.placement.inventory import Inventory
from heteroscale.placement.request import PlanRequest, RoleTargets
from heteroscale.placement.result import Plan


def plan_many(inventory: Inventory, requests: Sequence[PlanRequest]) -> list[Plan]:
    """Plan several PDServingGroups competing for one inventory, highest ``spec.priority`` first
    (then by namespace and name); plans come back in the order of ``requests``."""
    return [plan for plan, _ in serve(CapacityIndex(inventory), inventory, requests)]


def serve(
    index: CapacityIndex, inventory: Inventory, requests: Sequence[PlanRequest]
) -> list[tuple[Plan, list[Reservation]]]:
    """Plan ``requests`` over ``index`` (what it holds already stays taken), highest priority
    first; each plan comes back, in the order of ``requests``, with the reservations its cycle
    made (what :meth:`CapacityIndex.release` gives back)."""
    for request in requests:
        if request.spec.topology != inventory.topology:
            raise ValueError(
                f"PDServingGroup {request.name!r} uses topology labels that differ from the inventory's; "
                "build one inventory per topology"
            )
    order = sorted(
        range(len(requests)), key=lambda i: (-requests[i].spec.priority, requests[i].namespace, requests[i].name)
    )
    reserved: dict[int, list[Reservation]] = {i: [] for i in order}
    plans: dict[int, Plan] = {}
    # A higher priority takes what is not bound yet; equal priorities keep what they were given.
    for _, tier in itertools.groupby(order, key=lambda i: requests[i].spec.priority):
        cycles = [(i, Cycle(index, inventory, requests[i])) for i in tier]
        for i, cycle in cycles:
            mark = index.mark()
            cycle.hold()
            reserved[i] += index.since(mark)
        for i, cycle in cycles:
            mark = index.mark()
            plans[i] = cycle.run()
            reserved[i] += index.since(mark)
    index.forget()
    return [(plans[i], reserved[i]) for i in range(len(requests))]


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
