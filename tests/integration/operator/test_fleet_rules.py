"""Stuck pods and manual edits, through the real operator against the emulator over HTTP.

The operator's clock is the wall clock plus an offset the test moves forward, to pass
``podStartTimeoutSeconds`` (minimum 30) and ``manualHoldSeconds`` without waiting for them; the
decode reading comes from :class:`Load`, which does not depend on the clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest

from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
    PODS,
    Api,
    Load,
    RecordingMetrics,
    ReplicaSetStandIn,
    condition,
    cr_path,
    events,
    eventually,
    pdsg,
    start_operator,
)

DECODE = "chat-decode-g0"
PREFILL = "chat-prefill-g0"


class Clock:
    """Wall time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def running(
    emulator: kmock.KubernetesEmulator, load: Load, metrics: RecordingMetrics, clock: Clock
) -> AsyncIterator[None]:
    operator = start_operator(emulator, load, metrics, clock=clock)
    yield
    await operator.shutdown()


def replicas(emulator: kmock.KubernetesEmulator, name: str) -> int:
    return int(emulator.objects[DEPLOYMENTS, NS, name]["spec"]["replicas"])


def status(emulator: kmock.KubernetesEmulator) -> dict[str, Any]:
    return dict(emulator.objects[CR, NS, "chat"].get("status") or {})


def decode_pods(emulator: kmock.KubernetesEmulator) -> list[Any]:
    return [
        emulator.objects[k]
        for k in list(emulator.objects)
        if str(k[0]) == str(kmock.resource(PODS))
        and not emulator.objects[k].deleted
        and emulator.objects[k]["metadata"]["name"].startswith(DECODE)
    ]


async def test_a_stuck_pod_stops_blocking_scale_in_after_the_timeout(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    load: Load,
    metrics: RecordingMetrics,
    clock: Clock,
    running: None,
) -> None:
    body = pdsg()
    body["spec"]["behavior"]["podStartTimeoutSeconds"] = 30
    load.decode_tps = 250.0  # 3 decode at 100 tok/s each, 2 prefill at 1:2
    await api.create(cr_path(), body)
    await eventually(lambda: replicas(emulator, DECODE) == 3 and len(decode_pods(emulator)) == 3, what="3 decode")
    # One decode pod never becomes ready (CrashLoopBackOff): the kubelet reports it so.
    pod = decode_pods(emulator)[-1]
    pod.patch({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})
    await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, DECODE]["status"]["readyReplicas"] == 2)

    # Load falls: within the timeout the not-ready pod counts as starting and blocks the scale-in.
    load.decode_tps = 50.0
    await eventually(
        lambda: status(emulator)["lastDecision"]["reason"] == "PodsStarting", timeout=20, what="PodsStarting hold"
    )
    assert replicas(emulator, DECODE) == 3
    assert not events(emulator, "PodsStuck")

    # Past podStartTimeoutSeconds after its creation it is stuck: reported, and no longer blocking.
    clock.offset = 31.0
    await eventually(lambda: events(emulator, "PodsStuck"), timeout=20, what="a PodsStuck Event")
    assert "0 prefill and 1 decode pod(s) not ready 30s" in events(emulator, "PodsStuck")[0]["message"]
    stuck = [args for method, args in metrics.calls if method == "observe_decision" and args[3].decode.stuck == 1]
    assert stuck, "the exported metrics saw the stuck pod"
    await eventually(lambda: replicas(emulator, DECODE) == 1, timeout=30, what="decode scaled in past the stuck pod")
    await eventually(lambda: replicas(emulator, PREFILL) == 1, timeout=30, what="prefill follows at the ratio")


async def test_a_manual_edit_is_held_as_a_floor_then_released(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    load: Load,
    clock: Clock,
    running: None,
) -> None:
    body = pdsg()
    body["spec"]["behavior"]["manualHoldSeconds"] = 120
    load.decode_tps = 50.0  # 1 decode, 1 prefill
    await api.create(cr_path(), body)
    await eventually(lambda: replicas(emulator, DECODE) == 1 and status(emulator).get("lastDecision"))
    annotations = emulator.objects[DEPLOYMENTS, NS, DECODE]["metadata"]["annotations"]
    assert annotations["heteroscale.io/last-replicas"] == "1", "the operator records what it wrote"

    # kubectl scale deployment chat-decode-g0 --replicas=4
    await api.patch(f"/apis/apps/v1/namespaces/{NS}/deployments/{DECODE}", {"spec": {"replicas": 4}})
    found = await eventually(lambda: events(emulator, "ManualOverride"), what="a ManualOverride Event")
    assert "a person set decode 4" in found[0]["message"]
    override = await eventually(lambda: condition(emulator.objects[CR, NS, "chat"], "ManualOverride"))
    assert override["status"] == "True"
    hold = status(emulator)["policyState"]["manualHold"]
    assert hold["decode"] == 4
    assert hold["until"] - hold["since"] == 120
    # The floor holds decode at 4 (the load asks for 1) and prefill follows it at 1:2.
    await eventually(lambda: replicas(emulator, PREFILL) == 2, what="prefill raised to the ratio")
    # Several ticks (1 s apart) and the stabilization window (3 s) pass: the floor keeps decode.
    await asyncio.sleep(4)
    assert replicas(emulator, DECODE) == 4
    assert status(emulator)["lastDecision"]["reason"] == "ManualOverride"
    assert len(events(emulator, "ManualOverride")) == 1, "one edit, one Event"

    # After manualHoldSeconds the policy resumes: decode goes back to what the load needs.
    clock.offset = 121.0
    await eventually(lambda: replicas(emulator, DECODE) == 1, timeout=30, what="decode back to 1 after the hold")
    await eventually(lambda: replicas(emulator, PREFILL) == 1, timeout=30, what="prefill back to 1")
    released = await eventually(lambda: condition(emulator.objects[CR, NS, "chat"], "ManualOverride"))
    assert released["status"] == "False"
    assert status(emulator)["policyState"].get("manualHold") is None
