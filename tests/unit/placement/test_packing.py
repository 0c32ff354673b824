"""The exact packing check itself: hand-written cases, and brute force on small random ones."""

from __future__ import annotations

from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.placement.packing import Instance, NodeRoom, packs


@pytest.mark.parametrize(
    ("nodes", "instances", "expected"),
    [
        ([], [], True),
        ([(8, False)], [], True),
        ([], [(2, True)], False),
        ([(8, False)], [(4, False), (4, False)], True),
        ([(8, False)], [(4, False), (4, False), (2, False)], False),
        ([(8, True)], [(2, False)], False),
        ([(8, True)], [(2, True)], True),
        ([(6, False), (6, False)], [(4, True), (4, True), (4, True)], False),
        # Decode (4 GPUs, tolerates the taint) on the tainted node and on both 4s, prefill (2 GPUs)
        # on the 6: every GPU used. Best fit largest first puts a decode on the untainted 6
        # (before the tainted one); best fit of the prefills first fills the 4s.
        ([(6, False), (4, False), (4, False), (6, True)], [(2, False)] * 3 + [(4, True)] * 3, True),
        ([(6, False), (4, False), (4, False), (6, True)], [(2, False)] * 4 + [(4, True)] * 3, False),
        # Total GPUs suffice, but no node holds the 8.
        ([(4, False), (4, False)], [(8, False)], False),
    ],
)
def test_packs(nodes: list[NodeRoom], instances: list[Instance], expected: bool) -> None:
    assert packs(nodes, instances) is expected


def _brute_force(nodes: list[NodeRoom], instances: list[Instance]) -> bool:
    """Every assignment of every instance to a node."""
    for where in product(range(len(nodes)), repeat=len(instances)):
        load = [0] * len(nodes)
        ok = True
        for (gpus, anywhere), n in zip(instances, where, strict=True):
            load[n] += gpus
            ok = ok and (anywhere or not nodes[n][1])
        if ok and all(used <= free for used, (free, _) in zip(load, nodes, strict=True)):
            return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([0, 2, 4, 6, 8]), st.booleans()), max_size=4),
    st.lists(st.tuples(st.sampled_from([2, 4, 8]), st.booleans()), max_size=6),
)
def test_packs_agrees_with_brute_force(nodes: list[NodeRoom], instances: list[Instance]) -> None:
    assert packs(nodes, instances) is _brute_force(nodes, instances)
