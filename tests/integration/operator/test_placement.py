"""Placement through the real operator: labelled Nodes in the emulator, Deployments per deployment
group pinned to a domain that has both GPU types, a shortfall reported, and a scale-in that drains
the groups that shrink and deletes the one that leaves the plan; two PDServingGroups competing for
room for one, placed in priority order.

The decode rate comes from the :class:`Load` stand-in: each step needs an exact target on the next
tick, which a real Prometheus' moving rate window cannot give (the lifecycle test uses the real one).
"""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from heteroscale.operator.handlers import Operator
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
    Api,
    Load,
    RecordingMetrics,
    ReplicaSetStandIn,
    condition,
    controllers,
    cr_path,
    events,
    eventually,
    node,
    operator_in_test_loop,
    pdsg,
)

GPUS = 4  # per instance: an 8-GPU node holds two


@pytest.fixture
def gpu_nodes() -> list[dict[str, Any]]:
    return [
        # s2-a has H20 but no L20: a group's prefill could not sit next to its decode there.
        node("a-h20-0", "H20", "s2-a", "s1-a"),
        node("a-h20-1", "H20", "s2-a", "s1-a"),
        # s2-b: room for 2 decode and 2 prefill.
        node("b-h20-0", "H20", "s2-b", "s1-b"),
        node("b-l20-0", "L20", "s2-b", "s1-b"),
        # s2-c: room for 4 decode and 2 prefill.
        node("c-h20-0", "H20", "s2-c", "s1-c"),
        node("c-h20-1", "H20", "s2-c", "s1-c"),
        node("c-l20-0", "L20", "s2-c", "s1-c"),
    ]


def live_deployments(emulator: kmock.KubernetesEmulator) -> dict[str, Any]:
    return {
        k[2]: emulator.objects[k]
        for k in list(emulator.objects)
        if str(k[0]) == str(kmock.resource(DEPLOYMENTS)) and not emulator.objects[k].deleted
    }


def required(deployment: Any) -> dict[str, list[str]]:
    """Required node affinity as {label: allowed values} (one term, as the operator renders it)."""
    affinity = deployment["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return {e["key"]: e["values"] for e in term["matchExpressions"] if e["operator"] == "In"}


def selected_nodes(deployment: Any, nodes: list[dict[str, Any]]) -> set[str]:
    wanted = required(deployment)
    return {
        n["metadata"]["name"]
        for n in nodes
        if all(n["metadata"]["labels"].get(key) in values for key, values in wanted.items())
    }


def sizes(emulator: kmock.KubernetesEmulator) -> dict[str, int]:
    return {name: d["spec"]["replicas"] for name, d in live_deployments(emulator).items()}


@pytest.mark.looptime
async def test_groups_land_in_domains_with_both_gpu_types_and_shrink_per_group(
    emulator: kmock.KubernetesEmulator,
    api: Api,
    load: Load,
    metrics: RecordingMetrics,
    gpu_nodes: list[dict[str, Any]],
) -> None:
    async with controllers(emulator) as cluster, operator_in_test_loop(emulator, load, metrics):
        body = pdsg()
        for role in ("prefill", "decode"):
            body["spec"]["roles"][role]["gpusPerInstance"] = GPUS
        load.decode_tps = 80.0
        await api.create(cr_path(), body)
        await eventually(lambda: sizes(emulator) == {"chat-prefill-g0": 1, "chat-decode-g0": 1}, what="first group")
        # Best fit: s2-b leaves the least room over; s2-a cannot hold the prefill half.
        for name, gpu in (("chat-prefill-g0", "L20"), ("chat-decode-g0", "H20")):
            deployment = live_deployments(emulator)[name]
            gpu_values = [gpu, f"NVIDIA-{gpu}", f"Tesla-{gpu}"]  # every spelling GFD may label
            assert required(deployment) == {"nvidia.com/gpu.product": gpu_values, "heteroscale.io/s2": ["s2-b"]}
            assert selected_nodes(deployment, gpu_nodes) == {f"b-{gpu.lower()}-0"}
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            assert container["resources"]["requests"]["nvidia.com/gpu"] == str(GPUS)
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in deployment["spec"][
                "template"
            ]["spec"]["tolerations"]

        # 600 tok/s → 6 decode, 3 prefill: more than s2-b holds, so a second group opens in s2-c.
        load.decode_tps = 600.0
        await eventually(lambda: len(sizes(emulator)) == 4, what="a second group")
        await eventually(lambda: sum(sizes(emulator).values()) == 9, what="6 decode and 3 prefill placed")
        deployments = live_deployments(emulator)
        for group in ("g0", "g1"):
            prefill, decode = deployments[f"chat-prefill-{group}"], deployments[f"chat-decode-{group}"]
            assert required(prefill)["heteroscale.io/s2"] == required(decode)["heteroscale.io/s2"], (
                "P and D share a domain"
            )
        assert required(deployments["chat-decode-g1"])["heteroscale.io/s2"] == ["s2-c"]
        assert sizes(emulator) == {"chat-prefill-g0": 1, "chat-decode-g0": 2, "chat-prefill-g1": 2, "chat-decode-g1": 4}
        groups = await eventually(
            lambda: (
                len(emulator.objects[CR, NS, "chat"]["status"]["groups"]) == 4
                and emulator.objects[CR, NS, "chat"]["status"]["groups"]
            )
        )
        assert {(g["name"], g["domain"]) for g in groups} == {
            ("chat-prefill-g0", "s2-b"),
            ("chat-decode-g0", "s2-b"),
            ("chat-prefill-g1", "s2-c"),
            ("chat-decode-g1", "s2-c"),
        }

        # 1000 tok/s → 10 decode: only 6 fit next to a prefill. Reported, nothing over-committed.
        load.decode_tps = 1000.0
        ready = await eventually(
            lambda: (
                (c := condition(emulator.objects[CR, NS, "chat"], "Ready")) and c["reason"] == "Unschedulable" and c
            ),
            what="Unschedulable",
        )
        assert "4 of 10 decode" in ready["message"], ready["message"]
        warning = await eventually(lambda: events(emulator, "Unschedulable"), what="an Unschedulable Event")
        assert warning[0]["type"] == "Warning"
        assert sum(v for k, v in sizes(emulator).items() if "decode" in k) == 6

        # 150 tok/s → 2 decode, 1 prefill. The smaller group (g0) shrinks first and leaves the plan: its
        # pods are drained, then its Deployments go to 0 and are deleted; g1 drains its surplus.
        removed_before = len(cluster.removed)
        load.decode_tps = 150.0
        await eventually(
            lambda: sizes(emulator) == {"chat-prefill-g1": 1, "chat-decode-g1": 2},
            timeout=30,
            what="g0 gone, g1 at 2+1",
        )
        removed = cluster.removed[removed_before:]
        assert all(serving == "false" for _, serving in removed), removed
        by_group = sorted(pod.rsplit("-", 2)[0] for pod, _ in removed)
        assert by_group == ["chat-decode-g0"] * 2 + ["chat-decode-g1"] * 2 + ["chat-prefill-g0"] + ["chat-prefill-g1"]
        for name in ("chat-prefill-g0", "chat-decode-g0"):
            history = [v["spec"]["replicas"] for v in emulator.objects[DEPLOYMENTS, NS, name].history if v]
            assert history[-1] == 0, "scaled to 0 before it was deleted"
        removed_events = await eventually(lambda: events(emulator, "GroupRemoved"), what="GroupRemoved Events")
        assert "chat-prefill-g0, chat-decode-g0" in removed_events[0]["message"], removed_events
        assert condition(emulator.objects[CR, NS, "chat"], "Ready")["reason"] != "Unschedulable"


@pytest.mark.parametrize("gpu_nodes", [[node("h20-0", "H20", "s2-a"), node("l20-0", "L20", "s2-a")]])
@pytest.mark.parametrize("high", ["alpha", "beta"])
async def test_competing_groups_are_placed_in_priority_order_whichever_ticks_first(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    load: Load,
    gpu_nodes: list[dict[str, Any]],
    operator: Operator,
    high: str,
) -> None:
    """Room for one group of one 8-GPU prefill and one 8-GPU decode. Both groups are created at
    once, alpha first: with either one the high priority group, the order they tick in does not
    decide (the emulator binds no pod, so whatever the first tick created stays a reservation)."""
    low = "beta" if high == "alpha" else "alpha"
    load.decode_tps = 80.0  # 1 decode, 1 prefill each
    for name in ("alpha", "beta"):
        body = pdsg(name, priority=500 if name == high else 10)
        for role in ("prefill", "decode"):
            body["spec"]["roles"][role]["gpusPerInstance"] = 8
        await api.create(cr_path(), body)

    def settled() -> bool:
        ready = condition(emulator.objects[CR, NS, low], "Ready")
        return (
            sizes(emulator) == {f"{high}-prefill-g0": 1, f"{high}-decode-g0": 1}
            and ready is not None
            and ready["reason"] == "Unschedulable"
        )

    await eventually(settled, what=f"{high} placed, {low} Unschedulable")
    ready = condition(emulator.objects[CR, NS, low], "Ready")
    assert ready is not None
    assert "decode" in ready["message"], ready["message"]
    warnings = await eventually(
        lambda: [e for e in events(emulator, "Unschedulable") if e["involvedObject"]["name"] == low],
        what=f"an Unschedulable Event for {low}",
    )
    assert warnings[0]["type"] == "Warning"
    assert not [e for e in events(emulator, "Unschedulable") if e["involvedObject"]["name"] == high]

    # The high priority group goes, deleted half-way through a tick that outlasts the grace period
    # (kopf cancels it then): its reservation with it, so the other one is placed. Deletion runs
    # through kopf (daemon stopped, finalizer removed) on the wall clock: on a loaded machine that
    # alone can take seconds, hence the longer waits.
    load.held = high
    await eventually(load.holding.is_set, what=f"a tick of {high} under way")
    try:
        await api.delete(cr_path(high))
        await eventually(lambda: emulator.objects[CR, NS, high].deleted, what=f"{high} gone", timeout=30)
    finally:
        load.release.set()  # a read still held keeps its worker thread, so the operator, running
    await eventually(
        lambda: (
            {k: v for k, v in sizes(emulator).items() if k.startswith(low)}
            == {f"{low}-prefill-g0": 1, f"{low}-decode-g0": 1}
        ),
        what=f"{low} placed",
        timeout=30,
    )
    await eventually(
        lambda: (c := condition(emulator.objects[CR, NS, low], "Ready")) is not None and c["reason"] != "Unschedulable",
        what=f"{low} no longer Unschedulable",
    )


async def test_a_tick_under_way_when_its_group_is_deleted_finishes_its_writes(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    load: Load,
    operator: Operator,
) -> None:
    """A group's loop stops between ticks; a tick under way when the group is deleted (or the
    operator stops) gets the grace period to finish, so what it writes is written whole: a drain's
    pod labels are not left without the status that records the drain."""
    load.decode_tps = 80.0
    await api.create(cr_path(), pdsg("solo"))
    await eventually(lambda: sizes(emulator) == {"solo-prefill-g0": 1, "solo-decode-g0": 1}, what="solo at 1+1")
    load.held = "solo"
    try:
        await eventually(load.holding.is_set, what="a tick of solo under way")
        load.decode_tps = 150.0  # what the held tick reads when it goes on: 2 decode
        await api.delete(cr_path("solo"))
        await eventually(
            lambda: emulator.objects[CR, NS, "solo"].get("metadata", {}).get("deletionTimestamp"),
            what="solo marked for deletion",
        )
    finally:
        load.release.set()
    await eventually(lambda: sizes(emulator).get("solo-decode-g0") == 2, what="the held tick's scale-up written")
    await eventually(lambda: emulator.objects[CR, NS, "solo"].deleted, what="solo gone", timeout=30)
