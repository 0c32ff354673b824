"""A drain and its record: the status names the pods that leave before any of them leaves serving,
and a drain recorded by a tick that was cut short before its pods left serving gives them the
whole drain period once they do (never pods out of serving that no status remembers)."""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from heteroscale.api.labels import LABEL_SERVING, NOT_SERVING
from tests.integration.operator.conftest import (
    DEPLOYMENTS,
    FAKE_EPOCH,
    NS,
    Api,
    ApiServerEmulator,
    Load,
    RecordingMetrics,
    controllers,
    cr_path,
    eventually,
    operator_in_test_loop,
    pdsg,
)

DRAIN_SECONDS = 3


def decode_replicas(emulator: kmock.KubernetesEmulator) -> int:
    replicas: int = emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["spec"]["replicas"]
    return replicas


def draining_group() -> dict[str, Any]:
    body = pdsg()
    body["spec"]["behavior"]["scaleDown"]["drainSeconds"] = DRAIN_SECONDS
    return body


def out_of_serving(emulator: ApiServerEmulator) -> list[tuple[float, str]]:
    """(arrival, pod) of each patch that took a pod out of serving (whether or not it went through)."""
    return [
        (at, r.url.path.rsplit("/", 1)[-1])
        for at, r in emulator.arrivals
        if r.method == "PATCH"
        and "/pods/" in r.url.path
        and ((r.data or {}).get("metadata", {}).get("labels") or {}).get(LABEL_SERVING) == NOT_SERVING
    ]


def drain_records(emulator: ApiServerEmulator) -> list[tuple[float, dict[str, Any]]]:
    """(arrival, drain) of each status patch that wrote a drain."""
    return [
        (at, r.data["status"]["drain"])
        for at, r in emulator.arrivals
        if r.method == "PATCH"
        and r.url.path.endswith("/status")
        and isinstance(r.data, dict)
        and (r.data.get("status") or {}).get("drain")
    ]


def lowered_to(emulator: ApiServerEmulator, replicas: int) -> float:
    return next(
        at
        for at, r in emulator.arrivals
        if r.method == "PATCH"
        and r.url.path.endswith("/deployments/chat-decode-g0")
        and (r.data or {}).get("spec", {}).get("replicas") == replicas
    )


@pytest.mark.looptime
async def test_the_status_names_a_drains_pods_before_any_of_them_leaves_serving(
    emulator: ApiServerEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    load.decode_tps = 190.0  # 2 decode
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), draining_group())
        await eventually(lambda: decode_replicas(emulator) == 2, what="2 decode")
        load.decode_tps = 90.0  # 1 decode: one pod drains
        await eventually(lambda: decode_replicas(emulator) == 1, what="the scale-in", timeout=20)
    requests = [r for _, r in emulator.arrivals]
    [leaving] = [r for r in requests if "/pods/" in r.url.path and r.method == "PATCH"]
    pod = leaving.url.path.rsplit("/", 1)[-1]
    recording = [
        r
        for r in requests
        if r.url.path.endswith("/status")
        and r.method == "PATCH"
        and any(pod in g["pods"] for g in ((r.data or {}).get("status", {}).get("drain") or {}).get("groups", []))
    ]
    assert recording, "no status write named the drained pod"
    assert requests.index(recording[0]) < requests.index(leaving), "the pod left serving before the status named it"


@pytest.mark.looptime
async def test_a_drain_whose_pods_never_left_serving_gives_them_the_whole_period_once_they_do(
    emulator: ApiServerEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    """The tick that starts the drain writes it to the status and then cannot take the pod out of
    serving (every attempt of the client fails, as when the operator dies between the two writes).
    When the drain period ends, the pod is still serving: it leaves now and the drain starts over,
    so the replicas are lowered a whole period after the pod stopped taking traffic."""
    load.decode_tps = 190.0
    async with controllers(emulator) as cluster, operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), draining_group())
        await eventually(lambda: decode_replicas(emulator) == 2, what="2 decode")
        refused = iter(range(4))  # the client's four attempts: the tick fails after recording the drain
        emulator.refusing = lambda r: r.method == "PATCH" and "/pods/" in r.url.path and next(refused, None) is not None
        load.decode_tps = 90.0
        await eventually(lambda: decode_replicas(emulator) == 1, what="the scale-in", timeout=30)
    [(_, first), *later] = drain_records(emulator)
    [pod] = first["groups"][0]["pods"]
    pod_writes = [at for at, r in emulator.arrivals if r.method == "PATCH" and r.url.path.endswith(f"/pods/{pod}")]
    assert len(pod_writes) == 5, "four refused in the tick that recorded the drain, then the one that went through"
    [(left_at, left)] = out_of_serving(emulator)[-1:]
    assert left == pod
    assert left_at - (first["started"] - FAKE_EPOCH) >= DRAIN_SECONDS, "it left serving only when the period ended"
    restarted = [d for _, d in later if d["started"] > first["started"]]
    assert restarted, "the drain started over"
    assert lowered_to(emulator, 1) - left_at >= DRAIN_SECONDS, "lowered before a whole period out of serving"
    assert (pod, NOT_SERVING) in cluster.removed, "the ReplicaSet removed the drained pod, out of serving"
