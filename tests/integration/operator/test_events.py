"""How the operator presents itself: Events name it as their source (`kubectl describe` shows
"heteroscale-operator" and the pod, not kopf's defaults "kopf" and "dev"), and a namespaced operator
asks only for what the namespaced install's RBAC grants."""

from __future__ import annotations

import asyncio
import threading

import kmock
import kopf
import pytest

from heteroscale.operator.handlers import Operator
from heteroscale.operator.main import serve_namespaces
from tests.integration.operator.conftest import (
    NS,
    Api,
    Load,
    RecordingMetrics,
    ReplicaSetStandIn,
    cr_path,
    events,
    eventually,
    pdsg,
    start_operator,
)

POD = "heteroscale-operator-5d8f7c9b4-x7k2p"


async def test_events_name_the_operator_and_its_pod(
    emulator: kmock.KubernetesEmulator,
    load: Load,
    metrics: RecordingMetrics,
    cluster: ReplicaSetStandIn,
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POD_NAME", POD)  # what the Deployment's downward API sets
    running = start_operator(emulator, load, metrics)
    try:
        load.decode_tps = 300.0
        await api.create(cr_path(), pdsg())
        posted = await eventually(lambda: events(emulator), what="an Event")
    finally:
        await running.shutdown()
    for event in posted:
        assert event["source"] == {"component": "heteroscale-operator"}
        assert event["reportingComponent"] == "heteroscale-operator"
        assert event["reportingInstance"] == POD


async def test_a_namespaced_operator_lists_no_namespaces_and_watches_no_crds(
    emulator: kmock.KubernetesEmulator,
    load: Load,
    metrics: RecordingMetrics,
    cluster: ReplicaSetStandIn,
    api: Api,
) -> None:
    """What the namespaced install's RBAC grants is enough: no cluster-wide namespace list, no CRD
    watch (kopf would ask, be refused, warn and fall back)."""
    connect = lambda **_: kopf.ConnectionInfo(server=str(emulator.url))  # noqa: E731
    operator = Operator(lambda source: load, metrics, connect=connect, namespaces=[NS])
    serve_namespaces(operator, [NS])
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(
            kopf.operator(registry=operator.registry, namespaces=[NS], standalone=True, stop_flag=stop)
        ),
        daemon=True,
    )
    thread.start()
    try:
        load.decode_tps = 300.0
        await api.create(cr_path(), pdsg())
        await eventually(lambda: events(emulator), what="an Event: the namespaced operator works")
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 30)
    paths = [request.url.path for request in list(emulator) if request.method == "GET"]
    assert "/api/v1/namespaces" not in paths
    assert not [p for p in paths if p.endswith("/customresourcedefinitions")]
    # It reads its own namespace, and of what has no namespace, Nodes only.
    assert any(p.startswith(f"/api/v1/namespaces/{NS}/") for p in paths)
    resources = [p for p in paths if p.count("/") > (2 if p.startswith("/api/") else 3)]  # not discovery
    assert {p for p in resources if f"/namespaces/{NS}/" not in p} == {"/api/v1/nodes"}
