"""Scale to and from zero end to end: the real operator, the real ``PrometheusReader`` and the real
``prometheus`` binary scraping a fake gateway (the activation signal) and fake vLLM engines.

activation above the threshold → both roles created together at the ratio → decode metrics flow →
normal scaling → zero traffic → idle for ``idleSeconds`` → both roles to zero. ``idleSeconds`` has
a minimum of 60: the operator's clock runs ahead of the wall clock by an offset the test moves, and
the reader asks Prometheus at the wall clock (:class:`WallClockReader`), so the idle period passes
at once while every reading stays real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import kmock
import pytest

from heteroscale.api.config import OperatorConfig, PrometheusEndpoint
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.metrics.queries import Scope
from heteroscale.metrics.reader import PrometheusReader, Signals
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
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
from tests.integration.operator.test_fleet_rules import Clock
from tests.integration.operator.test_lifecycle import Engines, live_pods
from tests.integration.prom import Exporter, Launcher, PodLoad, PrometheusServer

pytestmark = pytest.mark.prometheus

WINDOW_SECONDS = 4
#: The gateway's requests counter: a fake pod's prompt-tokens counter stands for it (any counter
#: that exists while no engine runs will do; its rate is requests/s at the gateway).
ACTIVATION = 'sum(rate(vllm:prompt_tokens_total{namespace="{namespace}",pod="gateway"}[{window}]))'


class WallClockReader:
    """The real reader, asked at the wall clock while the operator's clock runs ahead."""

    def __init__(self, reader: PrometheusReader, clock: Clock) -> None:
        self.reader, self.clock = reader, clock

    def read(
        self, spec: PDServingGroupSpec, scope: Scope, decode: Sequence[str], prefill: Sequence[str], now: float
    ) -> Signals:
        return self.reader.read(spec, scope, decode, prefill, now - self.clock.offset)


def replicas(emulator: kmock.KubernetesEmulator, name: str) -> int:
    obj = emulator.objects[DEPLOYMENTS, NS, name]
    return 0 if obj.deleted else int(obj["spec"]["replicas"])


def exists(emulator: kmock.KubernetesEmulator, name: str) -> bool:
    try:
        return not emulator.objects[DEPLOYMENTS, NS, name].deleted
    except KeyError:
        return False


async def test_scale_from_zero_and_back(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    metrics: RecordingMetrics,
    launch: Launcher,
) -> None:
    exporter = launch.exporter([PodLoad(NS, "gateway", "vllm")])
    server = launch.prometheus({"engines": [exporter.target]})
    engines = Engines(emulator, exporter)
    feeding = asyncio.create_task(engines.run())
    clock = Clock()
    config = OperatorConfig(prometheus_endpoints={"default": PrometheusEndpoint(url=server.url)})
    running = start_operator(
        emulator, lambda source: WallClockReader(PrometheusReader(source), clock), metrics, config=config, clock=clock
    )
    try:
        await _from_zero_and_back(emulator, api, exporter, server, engines, clock)
    finally:
        feeding.cancel()
        await running.shutdown()


async def _from_zero_and_back(
    emulator: kmock.KubernetesEmulator,
    api: Api,
    exporter: Exporter,
    server: PrometheusServer,
    engines: Engines,
    clock: Clock,
) -> None:
    body = pdsg()
    spec = body["spec"]
    spec["metric"] = {"window": f"{WINDOW_SECONDS}s", "prometheus": {"endpoint": "default"}}
    spec["decode"]["minReplicas"] = spec["prefill"]["minReplicas"] = 0
    spec["behavior"]["zeroTrafficReadings"] = 2
    spec["behavior"]["scaleToZero"] = {"idleSeconds": 60, "activationQuery": ACTIVATION, "activationThreshold": 0.5}
    server.wait_for('vllm:prompt_tokens_total{pod="gateway"}')
    await api.create(cr_path(), body)

    # No requests at the gateway: the group stays at zero, inactive, and creates nothing.
    inactive = await eventually(
        lambda: (c := condition(emulator.objects[CR, NS, "chat"], "Active")) and c["status"] == "False" and c,
        timeout=30,
        what="Active False at zero",
    )
    assert inactive["reason"] == "ScaledToZero"
    assert not exists(emulator, "chat-decode-g0")
    assert not exists(emulator, "chat-prefill-g0")

    # Requests arrive (2/s, above the threshold 0.5): one prefill/decode set starts, both together.
    exporter.update(NS, "gateway", prompt_tps=2.0)
    await eventually(lambda: exists(emulator, "chat-decode-g0"), timeout=30, what="decode created")
    assert exists(emulator, "chat-prefill-g0"), "prefill is created in the same tick as decode"
    assert (replicas(emulator, "chat-prefill-g0"), replicas(emulator, "chat-decode-g0")) == (1, 1)
    activating = await eventually(lambda: events(emulator, "Activating"), what="an Activating Event")
    assert "prefill 0->1, decode 0->1 together" in activating[0]["message"]

    # The engines serve: decode tokens/s flows and the ordinary rules scale on it (250 → 3 decode, 2 prefill).
    engines.decode_tps = 250.0
    await eventually(lambda: replicas(emulator, "chat-decode-g0") == 3, timeout=40, what="decode scaled to 3")
    await eventually(lambda: replicas(emulator, "chat-prefill-g0") == 2, what="prefill at 1:2")
    active = condition(emulator.objects[CR, NS, "chat"], "Active")
    assert active is not None
    assert active["status"] == "True"

    # Traffic stops, at the engines and at the gateway: one set stays while the group is idle...
    engines.decode_tps = 0.0
    exporter.update(NS, "gateway", prompt_tps=0.0)
    await eventually(lambda: replicas(emulator, "chat-decode-g0") == 1, timeout=40, what="back to one set")
    await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["policyState"].get("idleSince"), timeout=30)
    assert replicas(emulator, "chat-prefill-g0") == 1
    # ...and both go to zero once it has been idle for idleSeconds.
    clock.offset = 61.0
    await eventually(
        lambda: not exists(emulator, "chat-decode-g0") or replicas(emulator, "chat-decode-g0") == 0,
        timeout=30,
        what="decode to zero",
    )
    await eventually(
        lambda: not exists(emulator, "chat-prefill-g0") or replicas(emulator, "chat-prefill-g0") == 0,
        what="prefill to zero",
    )
    assert events(emulator, "ScaledToZero")
    await eventually(lambda: not live_pods(emulator, "decode"), what="no decode pod left")
