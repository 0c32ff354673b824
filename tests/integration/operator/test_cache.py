"""The operator reads Deployments from a watch index, not per tick: what changes behind its back
is still seen on the next tick, a steady tick fetches and writes nothing, and status writes that
change only what moves every tick wait for the refresh period."""

from __future__ import annotations

import asyncio

import kmock

from heteroscale.operator.handlers import Operator
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
    Api,
    Load,
    RecordingMetrics,
    ReplicaSetStandIn,
    cr_path,
    eventually,
    pdsg,
)

DECODE = f"/apis/apps/v1/namespaces/{NS}/deployments/chat-decode-g0"


def replicas(emulator: kmock.KubernetesEmulator, name: str) -> int:
    return int(emulator.objects[DEPLOYMENTS, NS, name]["spec"]["replicas"])


def live_decode(emulator: kmock.KubernetesEmulator) -> int:
    """Decode replicas over the group's live Deployments."""
    return sum(
        int(obj["spec"]["replicas"])
        for key in list(emulator.objects)
        if str(key[0]) == str(kmock.resource(DEPLOYMENTS))
        for obj in [emulator.objects[key]]
        if not obj.deleted and key[2].startswith("chat-decode")
    )


def decode_seen(metrics: RecordingMetrics) -> list[int]:
    """The decode replicas each tick's observation saw, in order."""
    return [args[3].decode.replicas for method, args in metrics.calls if method == "observe_decision"]


def operator_requests(emulator: kmock.KubernetesEmulator, method: str, path: str) -> int:
    return len(
        [
            r
            for r in list(emulator)
            if r.method == method and path in r.url.path and "heteroscale" in r.headers.get("User-Agent", "")
        ]
    )


async def test_a_deployment_deleted_behind_the_operators_back_is_created_again(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    load: Load,
    metrics: RecordingMetrics,
    operator: Operator,
) -> None:
    load.decode_tps = 190.0
    await api.create(cr_path(), pdsg())
    await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="running")
    await api.delete(DECODE)
    await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"].deleted, what="deleted")
    # Placement may put the lost instances in a new deployment group: what counts is that the
    # group serves with two decode instances again.
    await eventually(lambda: live_decode(emulator) == 2, what="two decode instances again")


async def test_a_deployment_scaled_behind_the_operators_back_is_seen_on_the_next_tick(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    load: Load,
    metrics: RecordingMetrics,
    operator: Operator,
) -> None:
    load.decode_tps = 190.0
    await api.create(cr_path(), pdsg())
    await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="running")
    await eventually(lambda: decode_seen(metrics)[-1:] == [2], what="observed at 2")
    seen_before = len(decode_seen(metrics))
    await api.patch(DECODE, {"spec": {"replicas": 7}})
    # Within two ticks (interval 1 s) an observation counts the 7 replicas someone else set.
    await eventually(lambda: 7 in decode_seen(metrics)[seen_before:], timeout=3.0, what="7 observed")


async def test_a_steady_group_fetches_no_deployment_and_writes_its_status_at_the_refresh_period(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    load: Load,
    metrics: RecordingMetrics,
    operator: Operator,
) -> None:
    load.decode_tps = 190.0
    body = pdsg()
    # Refresh period: a quarter of a 40 s window, 10 s; ticks every second.
    body["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = 40
    await api.create(cr_path(), body)
    await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="running")
    await eventually(
        lambda: emulator.objects[CR, NS, "chat"]["status"].get("current") == {"prefill": 1, "decode": 2},
        what="ready",
    )
    gets = operator_requests(emulator, "GET", "/deployments")
    status_writes = operator_requests(emulator, "PATCH", "/status")
    ticks = len(decode_seen(metrics))
    await asyncio.sleep(4.0)
    assert len(decode_seen(metrics)) - ticks >= 3, "it kept ticking"
    assert operator_requests(emulator, "GET", "/deployments") == gets, "no Deployment fetched while steady"
    assert operator_requests(emulator, "PATCH", "/status") - status_writes <= 1, "status written every tick"
    # A change that matters is written at once.
    load.decode_tps = 390.0
    await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["desired"]["decode"] == 4, timeout=3.0)
