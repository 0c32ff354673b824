"""Hand-computed plans on the HeteroScale fabric: S2 big-pods of four S1 mini-pods of eight nodes
with eight GPUs, H20 and L20. Every instance here takes a whole node (8 GPUs), so each
expectation is a count of nodes."""

from __future__ import annotations

from typing import Any

from heteroscale.api.enums import Reason, Role
from heteroscale.api.labels import LABEL_DEPLOYMENT
from heteroscale.api.status import GroupStatus
from heteroscale.placement import (
    Plan,
    PlanRequest,
    RoleTargets,
    inventory_from_k8s,
    plan_many,
    render_pod_template,
)
from tests.unit.placement.cluster import MiniPod, layout, pdsg_spec, pod

H20_S1 = ["H20"] * 8
L20_S1 = ["L20"] * 8
MIXED_S1 = ["H20"] * 4 + ["L20"] * 4


def big_pod(s2: str, *minis: list[str]) -> list[MiniPod]:
    return [MiniPod(s2, f"{s2}-s1-{i}", types) for i, types in enumerate(minis)]


def homogeneous(s2: str, types: list[str]) -> list[MiniPod]:
    return big_pod(s2, types, types, types, types)


#: A mixed S2 (premium): H20 S1s (medium), an L20 S1 and a mixed S1 (high: 4 H20 + 4 L20).
MIXED = big_pod("s2-a", H20_S1, H20_S1, L20_S1, MIXED_S1)


def groups(result: Plan) -> set[tuple[str, str, str, str, int]]:
    return {(g.group, g.role.value, g.gpu_type, g.domain, g.replicas) for g in result.groups}


def run(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], *requests: PlanRequest, slow: tuple[str, ...] = ()
) -> list[Plan]:
    return plan_many(inventory_from_k8s(nodes, pods, requests[0].spec.topology, slow), list(requests))


def request(
    name: str,
    decode: int,
    prefill: int,
    types: tuple[str, str] = ("H20", "H20"),
    *,
    priority: int = 100,
    current: list[GroupStatus] | None = None,
) -> PlanRequest:
    """Prefill on ``types[0]``, decode on ``types[1]``, ratio 1:1, 8 GPUs per instance."""
    spec = pdsg_spec((types[0],), (types[1],), ratio=(1, 1), priority=priority)
    return PlanRequest(name, spec, RoleTargets(prefill, decode), current or (), "serving")


def status(name: str, group: str, gpu_type: str, domain: str, replicas: int) -> list[GroupStatus]:
    return [
        GroupStatus(name=f"{name}-{role.value}-{group}", role=role, gpu_type=gpu_type, domain=domain, desired=replicas)
        for role in Role
    ]


def bound(name: str, group: str, nodes: list[str]) -> list[dict[str, Any]]:
    """Running pods of a group: one instance per node, alternating prefill and decode."""
    return [
        pod(f"{name}-{i}", n, 8, labels={LABEL_DEPLOYMENT: f"{name}-{role.value}-{group}"})
        for i, n in enumerate(nodes)
        for role in [(Role.PREFILL, Role.DECODE)[i % 2]]
    ]


def test_homogeneous_group_prefers_the_all_h20_big_pod_over_the_mixed_one() -> None:
    # The mixed big-pod sorts first by name; an H20-only group must still take the plain one.
    nodes = layout([*MIXED, *homogeneous("s2-b", H20_S1)])
    (result,) = run(nodes, [], request("chat", 4, 4))
    assert groups(result) == {("g0", "prefill", "H20", "s2-b", 4), ("g0", "decode", "H20", "s2-b", 4)}


def test_mixed_s1_is_kept_free_for_groups_needing_both_types_and_used_for_them() -> None:
    # "big" (H20/H20, priority first) needs 48 nodes: the 32 of s2-b, then 16 of s2-a's 20 H20
    # nodes. Taking its two H20 S1s (medium) keeps the mixed S1's 4 H20 free, which is exactly
    # what "pair" (L20 prefill + H20 decode, only possible in s2-a) needs next to the L20s.
    nodes = layout([*MIXED, *homogeneous("s2-b", H20_S1)])
    big = request("big", 24, 24, priority=10)
    pair = request("pair", 4, 4, ("L20", "H20"), priority=1)
    result_big, result_pair = run(nodes, [], big, pair)
    assert groups(result_big) == {
        ("g0", "prefill", "H20", "s2-b", 16),
        ("g0", "decode", "H20", "s2-b", 16),
        ("g1", "prefill", "H20", "s2-a", 8),
        ("g1", "decode", "H20", "s2-a", 8),
    }
    assert groups(result_pair) == {("g0", "prefill", "L20", "s2-a", 4), ("g0", "decode", "H20", "s2-a", 4)}
    assert not result_big.unschedulable
    assert not result_pair.unschedulable


def test_a_full_domain_is_skipped_and_the_group_lands_in_the_next() -> None:
    nodes = layout([*homogeneous("s2-a", H20_S1), *homogeneous("s2-b", H20_S1)])
    full = [pod(f"other-{n['metadata']['name']}", n["metadata"]["name"], 8) for n in nodes[:32]]
    (result,) = run(nodes, full, request("chat", 3, 3))
    assert groups(result) == {("g0", "prefill", "H20", "s2-b", 3), ("g0", "decode", "H20", "s2-b", 3)}


def test_existing_groups_grow_before_new_groups_are_created() -> None:
    # g0 runs 2+2 in s2-b; s2-a (first by name) is empty, but g0 grows to 5+5 in place.
    nodes = layout([*homogeneous("s2-a", H20_S1), *homogeneous("s2-b", H20_S1)])
    pods = bound("chat", "g0", [f"s2-b-s1-0-n{i}" for i in range(4)])
    grow = request("chat", 5, 5, current=status("chat", "g0", "H20", "s2-b", 2))
    (result,) = run(nodes, pods, grow)
    assert groups(result) == {("g0", "prefill", "H20", "s2-b", 5), ("g0", "decode", "H20", "s2-b", 5)}


def test_scale_in_shrinks_premium_groups_first_and_removes_empty_ones() -> None:
    # g0 (2+2) sits on s2-b (plain H20), g1 (2+2) on an H20 S1 of the mixed s2-a (premium).
    # Going from 4+4 to 2+2 cuts g1 first, which empties it: it is removed, g0 stays as it is.
    nodes = layout([*MIXED, *homogeneous("s2-b", H20_S1)])
    pods = [
        *bound("chat", "g0", [f"s2-b-s1-0-n{i}" for i in range(4)]),
        *bound("chat", "g1", [f"s2-a-s1-0-n{i}" for i in range(4)]),
    ]
    current = [*status("chat", "g0", "H20", "s2-b", 2), *status("chat", "g1", "H20", "s2-a", 2)]
    (result,) = run(nodes, pods, request("chat", 2, 2, current=current))
    assert groups(result) == {("g0", "prefill", "H20", "s2-b", 2), ("g0", "decode", "H20", "s2-b", 2)}


def test_competing_groups_are_served_in_priority_order() -> None:
    # One big-pod of 32 H20 nodes; "a" and "b" each want 16+16. "b" has the higher priority and
    # gets it all, although "a" comes first in the request list and by name.
    nodes = layout(homogeneous("s2-a", H20_S1))
    result_a, result_b = run(nodes, [], request("a", 16, 16, priority=1), request("b", 16, 16, priority=5))
    assert groups(result_b) == {("g0", "prefill", "H20", "s2-a", 16), ("g0", "decode", "H20", "s2-a", 16)}
    assert result_a.groups == ()
    assert {(s.role, s.instances, s.reason) for s in result_a.unschedulable} == {
        (Role.PREFILL, 16, Reason.UNSCHEDULABLE),
        (Role.DECODE, 16, Reason.UNSCHEDULABLE),
    }


def test_a_group_planned_on_an_earlier_cycle_keeps_its_room_until_its_pods_bind() -> None:
    # "b" was planned 2+2 into the small s2-a (4 nodes) on the last cycle; its pods are not bound
    # yet. "a" is new, sorts first by name and would fit s2-a best, but s2-a is b's: a new group
    # goes where nobody's group is, and b is not moved (its Deployments drained and deleted).
    nodes = layout([MiniPod("s2-a", "s2-a-s1-0", ["H20"] * 4), *homogeneous("s2-b", H20_S1)])
    planned = request("b", 2, 2, current=status("b", "g0", "H20", "s2-a", 2))
    result_a, result_b = run(nodes, [], request("a", 2, 2), planned)
    assert groups(result_b) == {("g0", "prefill", "H20", "s2-a", 2), ("g0", "decode", "H20", "s2-a", 2)}
    assert groups(result_a) == {("g0", "prefill", "H20", "s2-b", 2), ("g0", "decode", "H20", "s2-b", 2)}
    assert not result_a.unschedulable
    assert not result_b.unschedulable


def test_slow_nodes_are_used_last() -> None:
    # s2-a's nodes are all stragglers: the group takes s2-b, and spills onto s2-a only when
    # s2-b is full (16+16 fill s2-b's 32 nodes, the 17th pair goes to s2-a).
    nodes = layout([*homogeneous("s2-a", H20_S1), *homogeneous("s2-b", H20_S1)])
    slow = tuple(n["metadata"]["name"] for n in nodes[:32])
    (small,) = run(nodes, [], request("chat", 3, 3), slow=slow)
    assert groups(small) == {("g0", "prefill", "H20", "s2-b", 3), ("g0", "decode", "H20", "s2-b", 3)}
    (large,) = run(nodes, [], request("chat", 17, 17), slow=slow)
    assert groups(large) == {
        ("g0", "prefill", "H20", "s2-b", 16),
        ("g0", "decode", "H20", "s2-b", 16),
        ("g1", "prefill", "H20", "s2-a", 1),
        ("g1", "decode", "H20", "s2-a", 1),
    }


def test_what_does_not_fit_is_unschedulable_and_nothing_is_over_committed() -> None:
    # 32 nodes, 6 of them full and 4 half used: 22 whole nodes plus four 4-GPU holes. 20+20
    # instances of 8 GPUs want 40 whole nodes; 11+11 fit, 9+9 are short.
    nodes = layout(homogeneous("s2-a", H20_S1))
    names = [n["metadata"]["name"] for n in nodes]
    pods = [pod(f"full-{i}", names[i], 8) for i in range(6)] + [pod(f"half-{i}", names[6 + i], 4) for i in range(4)]
    (result,) = run(nodes, pods, request("chat", 20, 20))
    assert groups(result) == {("g0", "prefill", "H20", "s2-a", 11), ("g0", "decode", "H20", "s2-a", 11)}
    assert {(s.role, s.instances, s.reason) for s in result.unschedulable} == {
        (Role.PREFILL, 9, Reason.UNSCHEDULABLE),
        (Role.DECODE, 9, Reason.UNSCHEDULABLE),
    }
    assert "9 of 20 decode" in next(s.message for s in result.unschedulable if s.role is Role.DECODE)


DEDICATED = {"key": "dedicated", "value": "prefill", "effect": "NoSchedule"}
TOLERATE = {"key": "dedicated", "operator": "Equal", "value": "prefill", "effect": "NoSchedule"}


def tainted(s2: str, h20_taints: list[dict[str, str]]) -> list[MiniPod]:
    """A mixed S2 (premium 1 everywhere): one H20 S1 with ``h20_taints``, one L20 S1 tainted
    ``dedicated=prefill:NoSchedule``."""
    return [MiniPod(s2, f"{s2}-s1-0", H20_S1, h20_taints), MiniPod(s2, f"{s2}-s1-1", L20_S1, [DEDICATED])]


def test_prefill_uses_a_tainted_s1_it_tolerates_next_to_untainted_decode_nodes() -> None:
    # s2-a: 8 untainted H20 + 8 tainted L20; s2-b: 8 + 8 untainted. 10+10 (L20 prefill, H20
    # decode): only the prefill template tolerates the taint. Both S2s hold 8 pairs, so the
    # first group takes 8+8 in s2-a (first by name), its prefill on the tainted L20s; the other
    # 2+2 go to s2-b.
    nodes = layout([*tainted("s2-a", []), *big_pod("s2-b", H20_S1, L20_S1)])
    spec = pdsg_spec(("L20",), ("H20",), ratio=(1, 1), prefill_tolerations=[TOLERATE])
    (result,) = run(nodes, [], PlanRequest("chat", spec, RoleTargets(10, 10), (), "serving"))
    assert groups(result) == {
        ("g0", "prefill", "L20", "s2-a", 8),
        ("g0", "decode", "H20", "s2-a", 8),
        ("g1", "prefill", "L20", "s2-b", 2),
        ("g1", "decode", "H20", "s2-b", 2),
    }
    # Rendered prefill pods tolerate the taint, decode pods do not need to.
    prefill = next(g for g in result.groups if g.role is Role.PREFILL and g.domain == "s2-a")
    assert TOLERATE in render_pod_template(prefill, spec, "chat")["spec"]["tolerations"]
    # Without the toleration the tainted L20s are out: s2-b alone holds 8 pairs, 2+2 are short.
    plain = pdsg_spec(("L20",), ("H20",), ratio=(1, 1))
    (result,) = run(nodes, [], PlanRequest("chat", plain, RoleTargets(10, 10), (), "serving"))
    assert groups(result) == {("g0", "prefill", "L20", "s2-b", 8), ("g0", "decode", "H20", "s2-b", 8)}
    assert {(s.role, s.instances) for s in result.unschedulable} == {(Role.PREFILL, 2), (Role.DECODE, 2)}


def test_prefill_does_not_use_a_tolerated_s2_where_its_decode_partner_cannot_run() -> None:
    # As above, but s2-a's H20s are tainted too and decode does not tolerate it: s2-a has no
    # decode node, so no group goes there although prefill could use its L20s.
    nodes = layout([*tainted("s2-a", [DEDICATED]), *big_pod("s2-b", H20_S1, L20_S1)])
    spec = pdsg_spec(("L20",), ("H20",), ratio=(1, 1), prefill_tolerations=[TOLERATE])
    (result,) = run(nodes, [], PlanRequest("chat", spec, RoleTargets(10, 10), (), "serving"))
    assert groups(result) == {("g0", "prefill", "L20", "s2-b", 8), ("g0", "decode", "H20", "s2-b", 8)}
    assert {(s.role, s.instances) for s in result.unschedulable} == {(Role.PREFILL, 2), (Role.DECODE, 2)}


def test_untolerated_prefer_no_schedule_nodes_are_used_last() -> None:
    # Like slow nodes: s2-a's nodes carry a PreferNoSchedule taint, so a 3+3 group takes s2-b.
    soft = [{"key": "maintenance", "value": "soon", "effect": "PreferNoSchedule"}]
    nodes = layout(
        [*(MiniPod(m.s2, m.s1, m.gpu_types, soft) for m in homogeneous("s2-a", H20_S1)), *homogeneous("s2-b", H20_S1)]
    )
    (result,) = run(nodes, [], request("chat", 3, 3))
    assert groups(result) == {("g0", "prefill", "H20", "s2-b", 3), ("g0", "decode", "H20", "s2-b", 3)}
