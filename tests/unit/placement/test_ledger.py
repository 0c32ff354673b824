"""Plans kept between runs: reservations given back to the nodes they took, runs of the changed
groups that never over-commit a node, and when a run of every group could place more."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heteroscale.placement import Ledger, PlanRequest, RoleTargets, inventory_from_k8s
from heteroscale.placement.capacity import CapacityIndex
from heteroscale.placement.ledger import key_of
from tests.unit.placement.cluster import MiniPod, layout, pdsg_spec
from tests.unit.placement.scheduler import as_status
from tests.unit.placement.test_properties import _check_capacity, _check_groups, clusters, requests


def buckets(index: CapacityIndex) -> dict[Any, tuple[dict[int, int], list[int]]]:
    """Every bucket's histogram (empty bins left out) and where each of its nodes is."""
    return {
        (key, b.slow, b.premium, b.taints): ({f: c for f, c in b.free.items() if c}, list(b.at))
        for key, bs in index._pools.items()
        for b in bs
    }


def consistent(index: CapacityIndex) -> None:
    """The histogram counts the nodes it numbers, and no node has more free GPUs than it offers."""
    for bs in index._pools.values():
        for b in bs:
            assert b.members is not None
            assert {f: c for f, c in b.free.items() if c} == {f: len(m) for f, m in b.members.items() if m}
            assert all(b.at[n] == f for f, m in b.members.items() for n in m)
            assert all(0 <= f <= 8 for f in b.at)


@settings(max_examples=100, deadline=None)
@given(clusters(), requests(), st.data())
def test_changed_groups_planned_again_never_over_commit_a_node(
    cluster: tuple[list[Any], list[Any]], reqs: list[PlanRequest], data: st.DataObject
) -> None:
    """Groups change one after another (new targets, sent with the groups they were planned),
    and some leave; each run plans only those, against what the others hold: every plan still
    packs onto the nodes, and dropping every group gives back exactly the free nodes it started from."""
    nodes, pods = cluster
    inventory = inventory_from_k8s(nodes, pods, reqs[0].spec.topology)
    ledger = Ledger(inventory)
    start = buckets(ledger.index)
    ledger.plan(reqs)
    current = {key_of(r): r for r in reqs}
    for _ in range(data.draw(st.integers(1, 4))):
        changed = data.draw(st.lists(st.sampled_from(sorted(current)), unique=True, min_size=1))
        again = []
        for key in changed:
            request = current[key]
            decode = data.draw(st.integers(0, 30))
            targets = RoleTargets(request.spec.ratio.prefill_for(decode), decode)
            again.append(replace(request, targets=targets, current_groups=tuple(as_status(ledger.plans[key]))))
        ledger.plan(again)
        current.update((key_of(r), r) for r in again)
        consistent(ledger.index)
        assert ledger.short == {key for key, plan in ledger.plans.items() if plan.unschedulable}
        live = list(current.values())
        _check_capacity(nodes, pods, live, [ledger.plans[key_of(r)] for r in live])
        for request in again:
            _check_groups(request, ledger.plans[key_of(request)])
    for key in list(current):
        ledger.drop(key)
        consistent(ledger.index)
    assert buckets(ledger.index) == start, "every node has its free GPUs back"
    assert not ledger.plans
    assert not ledger.short


def test_a_release_goes_to_the_nodes_the_reservation_took() -> None:
    """Two groups of 4-GPU instances share 8-GPU nodes: the one planned first half-fills a node
    that the second then fills. Given back, the first group's half goes back to that node, not to
    a free one: no node is left with 4 free GPUs to move back to 8, as a histogram alone would try."""
    nodes = layout([MiniPod("s2-0", "s2-0-s1-0", ("H20", "H20", "H20", "H20"))])
    spec = pdsg_spec(("H20",), ("H20",), ratio=(1, 1), prefill_gpus=4, decode_gpus=4)
    inventory = inventory_from_k8s(nodes, [], spec.topology)
    ledger = Ledger(inventory)
    ledger.plan([PlanRequest("a", spec, RoleTargets(1, 2))])
    ledger.plan([PlanRequest("b", spec, RoleTargets(1, 2))])
    (bucket,) = ledger.index._pools[("s2-0", "H20")]
    assert sorted(bucket.at) == [0, 0, 0, 8], "a: a node and a half (12 GPUs); b: the other half and a node"
    ledger.drop(("", "a"))
    consistent(ledger.index)
    assert sorted(bucket.at) == [0, 4, 8, 8], "b keeps its whole node and its half of the shared one"


def test_a_short_group_is_outranked_only_by_a_lower_priority_that_holds_room() -> None:
    nodes = layout([MiniPod("s2-0", "s2-0-s1-0", ("H20", "L20"))])

    def request(name: str, priority: int) -> PlanRequest:
        spec = pdsg_spec(("L20",), ("H20",), ratio=(1, 1), prefill_gpus=8, decode_gpus=8, priority=priority)
        return PlanRequest(name, spec, RoleTargets(1, 1))

    ledger = Ledger(inventory_from_k8s(nodes, [], request("x", 0).spec.topology))
    (low,) = ledger.plan([request("low", 10)])
    assert not low.unschedulable
    (same,) = ledger.plan([request("same", 10)])
    assert same.unschedulable
    assert not ledger.outranks([("", "same")]), "a full run serves equal priorities' kept groups first"
    (high,) = ledger.plan([request("high", 500)])
    assert high.unschedulable, "this ledger's run leaves low's room to low"
    assert ledger.outranks([("", "high")]), "a full run would give it low's room"
    assert not ledger.outranks([("", "low")]), "low is not short"


def test_only_an_index_that_numbers_its_nodes_releases() -> None:
    nodes = layout([MiniPod("s2-0", "s2-0-s1-0", ("H20", "L20"))])
    spec = pdsg_spec()
    index = CapacityIndex(inventory_from_k8s(nodes, [], spec.topology))
    mark = index.mark()
    index.take("s2-0", "H20", index.intern(()), 8, 1)
    # A histogram cannot tell which node to give back to.
    with pytest.raises(ValueError, match="releasable"):
        index.release(index.since(mark))
