"""The operator reads Deployments from a watch index, not per tick: what changes behind its back
is still seen on the next tick, a steady tick fetches and writes nothing, and status writes that
change only what moves every tick wait for the refresh period."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import kmock
import pytest

from heteroscale.api.crd import PLURAL
from heteroscale.operator.handlers import Operator
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
    Api,
    ApiServerEmulator,
    Load,
    RecordingMetrics,
    ReplicaSetStandIn,
    controllers,
    cr_path,
    eventually,
    operator_in_test_loop,
    pdsg,
)

DECODE = f"/apis/apps/v1/namespaces/{NS}/deployments/chat-decode-g0"
#: ``pdsg()``'s tick interval, and the status refresh period of a 40 s stabilization window.
INTERVAL, REFRESH = 1.0, 10.0


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


def status_writes(emulator: ApiServerEmulator) -> list[float]:
    """When the operator wrote the group's status (the loop's time)."""
    return [at for at, r in emulator.arrivals if r.method == "PATCH" and r.url.path.endswith(f"/{PLURAL}/chat/status")]


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


@pytest.mark.looptime
async def test_a_deployment_scaled_behind_the_operators_back_is_seen_on_the_next_tick(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    load.decode_tps = 190.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg())
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="running")
        await eventually(lambda: decode_seen(metrics)[-1:] == [2], what="observed at 2")
        seen_before = len(decode_seen(metrics))
        await api.patch(DECODE, {"spec": {"replicas": 7}})
        # The watch delivers the change at once: the next tick (interval 1 s) counts the 7 replicas.
        await eventually(lambda: 7 in decode_seen(metrics)[seen_before:], timeout=INTERVAL + 0.1, what="7 observed")


@pytest.mark.looptime
async def test_a_steady_group_fetches_no_deployment_and_writes_its_status_at_the_refresh_period(
    emulator: ApiServerEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    load.decode_tps = 190.0
    body = pdsg()
    body["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = 40
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), body)
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="running")
        await eventually(
            lambda: emulator.objects[CR, NS, "chat"]["status"].get("current") == {"prefill": 1, "decode": 2},
            what="ready",
        )
        gets = operator_requests(emulator, "GET", "/deployments")
        steady_from = len(status_writes(emulator))
        ticks = len(decode_seen(metrics))
        await asyncio.sleep(35)
        assert len(decode_seen(metrics)) - ticks >= 34, "it kept ticking, once a second"
        assert operator_requests(emulator, "GET", "/deployments") == gets, "no Deployment fetched while steady"
        # Refresh period: a quarter of the 40 s window. Only what moves every tick changed (the
        # reading's age, the decision's time), so the status is written once a period: at the
        # first tick once 10 s have passed since the last write.
        steady = status_writes(emulator)[steady_from - 1 :]
        gaps = [b - a for a, b in itertools.pairwise(steady)]
        assert len(gaps) >= 3, steady
        assert all(REFRESH <= gap < REFRESH + INTERVAL for gap in gaps), gaps
        # A change that matters is written at once: on the next tick.
        load.decode_tps = 390.0
        await eventually(
            lambda: emulator.objects[CR, NS, "chat"]["status"]["desired"]["decode"] == 4, timeout=INTERVAL + 0.1
        )


def deployment_writes(emulator: ApiServerEmulator, name: str, since: int) -> list[tuple[str, object]]:
    """(method, body) of the operator's requests about Deployment ``name`` from arrival ``since``."""
    return [
        (r.method, r.data)
        for _, r in emulator.arrivals[since:]
        if r.url.path.endswith(f"/deployments/{name}") and "heteroscale" in r.headers.get("User-Agent", "")
    ]


async def scale_up(
    emulator: ApiServerEmulator, api: Api, load: Load, metrics: RecordingMetrics, behind: dict[str, Any] | None
) -> list[tuple[str, object]]:
    """Run the group at 2 decode, apply ``behind`` to the decode Deployment in the store directly
    (no watch event: the operator's watch lags behind it), then raise the load to 4 decode; the
    operator's requests about that Deployment from then on."""
    load.decode_tps = 190.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg())
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="running")
        await eventually(lambda: decode_seen(metrics)[-1:] == [2], what="observed at 2")
        if behind is not None:
            emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"].patch(behind)
        since = len(emulator.arrivals)
        load.decode_tps = 390.0
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 4, what="scaled up")
    return deployment_writes(emulator, "chat-decode-g0", since)


@pytest.mark.looptime
async def test_a_scale_up_reads_no_deployment_its_write_names_the_version_the_watch_saw(
    emulator: ApiServerEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    about = await scale_up(emulator, api, load, metrics, behind=None)
    assert [method for method, _ in about] == ["PATCH"], "written once, without reading it first"
    [(_, body)] = about
    assert isinstance(body, dict)
    # The emulator refuses a write naming a version other than the stored one (409): this one
    # named the version the watch had shown, and it was the current one.
    assert body["metadata"]["resourceVersion"], "on condition that it is as the watch saw it"


@pytest.mark.looptime
async def test_a_write_refused_because_the_watch_lagged_is_read_and_planned_again(
    emulator: ApiServerEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    # Another controller labels the Deployment; the operator's watch has not shown it yet.
    about = await scale_up(
        emulator, api, load, metrics, {"metadata": {"labels": {"team": "search"}, "resourceVersion": "1"}}
    )
    assert [method for method, _ in about][:3] == ["PATCH", "GET", "PATCH"], "refused (409), read again, written"
    assert emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["metadata"]["labels"]["team"] == "search"
