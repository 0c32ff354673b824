"""Create → scale up at the ratio → soft scale-in after the window → delete, with decode tokens/s
read by the real ``PrometheusReader`` from the real ``prometheus`` binary scraping a fake vLLM
exporter whose ``pod`` label is the name of a pod of the operator's decode Deployment."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import kmock
import pytest

from heteroscale.api.config import OperatorConfig, PrometheusEndpoint
from heteroscale.metrics.reader import PrometheusReader
from heteroscale.operator.handlers import Operator
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
    PODS,
    Api,
    RecordingMetrics,
    ReplicaSetStandIn,
    condition,
    cr_path,
    events,
    eventually,
    pdsg,
    start_operator,
)
from tests.integration.prom import Exporter, Launcher, PodLoad, PrometheusServer

pytestmark = pytest.mark.prometheus

WINDOW_SECONDS = 4


def replicas(emulator: kmock.KubernetesEmulator, name: str) -> int:
    return int(emulator.objects[DEPLOYMENTS, NS, name]["spec"]["replicas"])


def live_pods(emulator: kmock.KubernetesEmulator, role: str | None = None) -> list[Any]:
    return sorted(
        (
            p
            for k in list(emulator.objects)
            if str(k[0]) == str(kmock.resource(PODS))
            for p in [emulator.objects[k]]
            if not p.deleted and (role is None or p["metadata"]["labels"].get("heteroscale.io/role") == role)
        ),
        key=lambda p: p["metadata"]["name"],
    )


class Engines:
    """Plays the vLLM engines of the decode pods the stand-in ReplicaSet controller created: every
    live decode pod exports its counters (a pod that does not would make the reading partial), and
    the whole decode rate is served by the oldest one (the drain takes the newest, so it never
    leaves); the others' counters stay flat. One growing series keeps ``rate()`` free of the
    start-of-series extrapolation that spreading the load over pods as they come and go would add;
    the operator's query sums over all pods of its Deployments either way."""

    def __init__(self, emulator: kmock.KubernetesEmulator, exporter: Exporter) -> None:
        self.emulator, self.exporter = emulator, exporter
        self.decode_tps = 0.0
        self.served: set[str] = set()

    def step(self) -> None:
        pods = [p["metadata"]["name"] for p in live_pods(self.emulator, "decode")]
        for pod in self.served - set(pods):
            self.exporter.remove(NS, pod)
        for i, pod in enumerate(pods):
            self.exporter.set_load(PodLoad(NS, pod, "vllm", decode_tps=self.decode_tps if i == 0 else 0.0))
        self.served = set(pods)

    async def run(self) -> None:
        while True:
            self.step()
            await asyncio.sleep(0.1)


@pytest.fixture
def prometheus(launch: Launcher) -> tuple[Exporter, PrometheusServer]:
    """The launcher stops both after the module."""
    exporter = launch.exporter()
    return exporter, launch.prometheus({"engines": [exporter.target]})


async def test_lifecycle(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    metrics: RecordingMetrics,
    prometheus: tuple[Exporter, PrometheusServer],
) -> None:
    exporter, server = prometheus
    engines = Engines(emulator, exporter)
    engines.decode_tps = 80.0
    feeding = asyncio.create_task(engines.run())
    # The admin's configuration names the endpoint; the group only picks it by name.
    config = OperatorConfig(prometheus_endpoints={"default": PrometheusEndpoint(url=server.url)})
    running = start_operator(emulator, PrometheusReader, metrics, config=config)
    try:
        await _lifecycle(emulator, cluster, api, metrics, engines, server, running.operator)
    finally:
        feeding.cancel()
        await running.shutdown()


async def _lifecycle(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    metrics: RecordingMetrics,
    engines: Engines,
    server: PrometheusServer,
    operator: Operator,
) -> None:
    body = pdsg()
    body["spec"]["metric"] = {"window": f"{WINDOW_SECONDS}s", "prometheus": {"endpoint": "default"}}
    await api.create(cr_path(), body)
    await eventually(lambda: replicas(emulator, "chat-decode-g0") == 1, what="decode Deployment created")
    decode = emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]
    prefill = emulator.objects[DEPLOYMENTS, NS, "chat-prefill-g0"]
    assert prefill["spec"]["replicas"] == 1
    owner = decode["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "PDServingGroup",
        "chat",
        "uid-chat",
        True,
    )
    pod_labels = decode["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["heteroscale.io/serving"] == "true"
    assert pod_labels["app"] == "chat-decode"
    assert "heteroscale.io/serving" not in decode["spec"]["selector"]["matchLabels"]
    terms = decode["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert terms == [
        {
            "matchExpressions": [
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["H20", "NVIDIA-H20", "Tesla-H20"]},
                {"key": "heteroscale.io/s2", "operator": "In", "values": ["s2-a"]},
            ]
        }
    ]
    assert "L20" in str(prefill["spec"]["template"]["spec"]["affinity"]["nodeAffinity"])
    # The reader found the exporter's series through the pod names: Prometheus' number is in status.
    await eventually(
        lambda: abs(emulator.objects[CR, NS, "chat"]["status"]["decodeTPS"] - 80.0) < 8,
        timeout=30,
        what="80 tok/s read",
    )

    # Load rises: 450 tok/s at 100 per decode instance → 5 decode, and 3 prefill at 1:2.
    engines.decode_tps = 450.0
    await eventually(lambda: replicas(emulator, "chat-decode-g0") == 5, timeout=30, what="decode scaled to 5")
    await eventually(lambda: replicas(emulator, "chat-prefill-g0") == 3, what="prefill scaled to 3")
    decode_history = [v["spec"]["replicas"] for v in emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"].history if v]
    prefill_history = [v["spec"]["replicas"] for v in emulator.objects[DEPLOYMENTS, NS, "chat-prefill-g0"].history if v]
    # The rate climbs through the window, so the policy may take more than one step; never down.
    assert decode_history == sorted(decode_history), decode_history
    assert prefill_history == sorted(prefill_history), prefill_history
    ups = await eventually(
        lambda: [e for e in events(emulator, "ScaledUp") if "decode 1->" in e["message"]], what="a ScaledUp Event"
    )
    assert "prefill 1->" in ups[0]["message"], "both pools in one decision"
    await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["desired"] == {"prefill": 3, "decode": 5})
    await eventually(lambda: len(live_pods(emulator)) == 8, what="8 pods")

    # Load falls to 150 tok/s → 2 decode, 1 prefill; only after the 3 s stabilization window.
    dropped = time.monotonic()
    engines.decode_tps = 150.0
    await eventually(
        lambda: any(
            v and v.get("metadata", {}).get("labels", {}).get("heteroscale.io/serving") == "false"
            for k in list(emulator.objects)
            if str(k[0]) == str(kmock.resource(PODS))
            for v in emulator.objects[k].history
        ),
        timeout=30,
        what="a pod taken out of serving",
    )
    assert time.monotonic() - dropped >= 3.0 - 0.5, "scale-in waited for the stabilization window"
    await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["drain"]["groups"], what="drain in status")

    await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, timeout=30, what="decode scaled in to 2")
    await eventually(lambda: replicas(emulator, "chat-prefill-g0") == 1, timeout=30, what="prefill scaled in to 1")
    await eventually(lambda: len(cluster.removed) == 5, what="5 pods removed")
    assert all(serving == "false" for _, serving in cluster.removed), cluster.removed
    await eventually(lambda: events(emulator, "DrainComplete"), what="a DrainComplete Event")
    decode_history = [v["spec"]["replicas"] for v in emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"].history if v]
    assert decode_history[decode_history.index(5) :] == sorted(decode_history[decode_history.index(5) :], reverse=True)
    ready = await eventually(lambda: condition(emulator.objects[CR, NS, "chat"], "Ready"))
    assert ready is not None
    directions = sorted({(role, d) for _, _, role, d in metrics.scale_events()})
    assert directions == [("decode", "down"), ("decode", "up"), ("prefill", "down"), ("prefill", "up")]

    await api.delete(cr_path("chat"))
    await eventually(lambda: emulator.objects[CR, NS, "chat"].deleted, what="PDServingGroup gone")
    # The emulator has no garbage collector: the ownerReference is what makes Kubernetes delete them.
    assert emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["metadata"]["ownerReferences"][0]["uid"] == "uid-chat"
