"""When the operator must not act (DryRun, a conflicting autoscaler, a bad spec), faults of the API
server, and a restart between two ticks."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import kmock
import pytest

from heteroscale.api.crd import PLURAL
from heteroscale.operator.handlers import Operator
from heteroscale.operator.planbook import PlanBook
from heteroscale.placement import PlanRequest
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
    deployment,
    events,
    eventually,
    operator_in_test_loop,
    pdsg,
    referencing,
    writes,
)


@pytest.fixture
def user_deployments(emulator: kmock.KubernetesEmulator) -> None:
    emulator.objects[DEPLOYMENTS, NS, "user-prefill"] = deployment("user-prefill", 1)
    emulator.objects[DEPLOYMENTS, NS, "user-decode"] = deployment("user-decode", 2)


@pytest.mark.looptime
@pytest.mark.usefixtures("user_deployments")
async def test_dry_run_writes_status_only(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    load.decode_tps = 900.0
    async with operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), referencing(mode="DryRun"))
        obj = await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["lastDecision"], what="a decision")
        assert obj["reason"] == "ScaledUp"
        status = emulator.objects[CR, NS, "chat"]["status"]
        assert status["desired"] == {"prefill": 3, "decode": 6}
        assert condition(emulator.objects[CR, NS, "chat"], "ScalingActive")["reason"] == "DryRun"
        ticks = ticks_seen(metrics)
        await asyncio.sleep(5)
        assert ticks_seen(metrics) - ticks >= 4, "it kept ticking"
    assert writes(emulator) == []
    assert len(emulator.objects[DEPLOYMENTS, NS, "user-decode"].history) == 1


@pytest.mark.looptime
@pytest.mark.usefixtures("user_deployments")
async def test_conflicting_hpa_blocks_every_patch(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    await api.create(
        f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers",
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "old-hpa", "namespace": NS},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "user-decode"}},
        },
    )
    load.decode_tps = 900.0
    async with operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), referencing())
        conflict = await eventually(lambda: condition(emulator.objects[CR, NS, "chat"], "Conflict"), what="Conflict")
        assert conflict["status"] == "True"
        assert "HorizontalPodAutoscaler/old-hpa" in conflict["message"]
        warning = await eventually(lambda: events(emulator, "Conflict"), what="a Conflict Event")
        assert warning[0]["type"] == "Warning"
        ticks = ticks_seen(metrics)
        await asyncio.sleep(5)
        assert ticks_seen(metrics) - ticks >= 4, "it kept ticking"
    assert writes(emulator) == []
    assert len(events(emulator, "Conflict")) == 1, "one Event per transition, not per tick"


def ticks_seen(metrics: RecordingMetrics) -> int:
    return len([1 for method, _ in metrics.calls if method == "observe_reconcile"])


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, leaf = path.split(".")
    node = body["spec"]
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return body


BAD_SPECS: dict[str, tuple[str, Any, str]] = {
    "negative-ratio": ("ratio.prefill", -1, "spec.ratio.prefill"),
    "min-over-max": ("decode.minReplicas", 20, "minReplicas must be <= maxReplicas"),
    "prefill-min-over-max": ("prefill.minReplicas", 11, "minReplicas must be <= maxReplicas"),
    "unknown-gpu-target": ("decode.targetTPSPerInstance", {"H20": 100, "B200": 10}, "B200"),
    "missing-gpu-target": ("decode.targetTPSPerInstance", {"L20": 100}, "needs a decode.targetTPSPerInstance entry"),
    "empty-template": ("roles.decode.template", {}, "template.spec"),
    # Accepted by the CRD (templates keep unknown fields), crashed every tick before.
    "template-metadata-string": (
        "roles.decode.template",
        {"metadata": "oops", "spec": {"containers": [{"name": "e"}]}},
        "template.metadata",
    ),
    "both-roles-one-deployment": (
        "roles",
        {
            "prefill": {"deploymentRef": {"name": "shared"}, "gpuTypes": ["L20"]},
            "decode": {"deploymentRef": {"name": "shared"}, "gpuTypes": ["H20"]},
        },
        "each role needs its own",
    ),
    "zero-window": ("metric.window", "0s", "positive duration"),
    "zero-stale-after": ("metric.staleAfter", "0s", "positive duration"),
    "tenant-chosen-url": (
        "metric.prometheus",
        {"url": "http://tenant.example:9090", "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"},
        "configured by the cluster admin",
    ),
    "bad-promql": ("metric", {"engine": "custom", "query": "sum(rate(x[1m]"}, "not valid PromQL"),
    "unknown-engine": ("metric.engine", "tgi", "spec.metric.engine"),
    "custom-without-query": ("metric.engine", "custom", "query is required"),
    "bad-window": ("metric.window", "a minute", "spec.metric.window"),
    "zero-interval": ("behavior.intervalSeconds", 0, "spec.behavior.intervalSeconds"),
    "colocate-not-a-tier": ("topology.colocate", "rack", "colocate must be one of tiers"),
    "unknown-field": ("decode.maxReplica", 3, "unknown field"),
}


async def test_bad_specs_get_a_condition_and_an_event_and_touch_nothing(
    emulator: kmock.KubernetesEmulator, api: Api, operator: Operator
) -> None:
    for name, (path, value, _) in BAD_SPECS.items():
        await api.create(cr_path(), _set(pdsg(name), path, value))
    for name, (_, _, words) in BAD_SPECS.items():
        ready = await eventually(lambda n=name: condition(emulator.objects[CR, NS, n], "Ready"), what=name)
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec"), name
        assert words in ready["message"], (name, ready["message"])
    warnings = await eventually(
        lambda: len(events(emulator, "InvalidSpec")) >= len(BAD_SPECS) and events(emulator, "InvalidSpec")
    )
    assert {e["involvedObject"]["name"] for e in warnings} == set(BAD_SPECS)
    assert all(e["type"] == "Warning" for e in warnings)
    assert writes(emulator) == []
    assert writes(emulator, "/pods") == []


@pytest.mark.looptime
@pytest.mark.parametrize("fault", [409, 429, 500, "timeout"])
async def test_api_faults_end_in_the_right_state(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics, fault: int | str
) -> None:
    async def slow(request: Any) -> dict[str, Any]:
        await asyncio.sleep(2.0)  # longer than the operator's client timeout below
        return {}

    # The emulator applies the write and then answers with the fault, the nastiest case: a retry
    # must not add a second step on top of the first.
    deployments = emulator["patch", kmock.resource(DEPLOYMENTS)]
    deployments[:2] << (slow if fault == "timeout" else fault)
    emulator["patch", kmock.resource(CR)][:1] << (slow if fault == "timeout" else fault)
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics, client_timeout_seconds=0.5):
        load.decode_tps = 80.0
        await api.create(cr_path(), pdsg())
        await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["spec"]["replicas"] == 1)
        load.decode_tps = 490.0
        await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["spec"]["replicas"] == 5)
        await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, "chat-prefill-g0"]["spec"]["replicas"] == 3)
        await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["desired"] == {"prefill": 3, "decode": 5})
        await asyncio.sleep(5)
        for name, final in (("chat-decode-g0", 5), ("chat-prefill-g0", 3)):
            sizes = [v["spec"]["replicas"] for v in emulator.objects[DEPLOYMENTS, NS, name].history if v]
            assert sorted(set(sizes)) == sorted({1, final}), (name, sizes)
            assert sizes[-1] == final
        # The client's retries absorbed every fault inside its tick: no tick failed.
        assert not [args for method, args in metrics.calls if method == "count_reconcile_error"]
        # And the group's loop still ticks (a crashed daemon would leave the operator running but idle).
        ticks = ticks_seen(metrics)
        await eventually(lambda: ticks_seen(metrics) > ticks + 1, what="more ticks")


def _watches(emulator: kmock.KubernetesEmulator) -> int:
    return len([r for r in list(emulator) if r.method == "GET" and r.url.query.get("watch") and PLURAL in r.url.path])


async def test_dropped_watch_stream_is_resumed(
    emulator: kmock.KubernetesEmulator, cluster: ReplicaSetStandIn, api: Api, load: Load, operator: Operator
) -> None:
    """The first watch of PDServingGroups fails; the group is created only after that, so only a
    watch that kopf opened again can deliver it (the initial LIST came before it existed). If every
    watch failed, kopf would keep retrying that one request with growing pauses and never see it."""
    emulator["watch", kmock.resource(CR)][:1] << 500
    await eventually(lambda: _watches(emulator) >= 1, what="the first watch")
    await api.create(cr_path(), pdsg())
    await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["spec"]["replicas"] == 1, timeout=10)
    assert _watches(emulator) >= 2


@pytest.mark.looptime
async def test_restart_between_ticks_keeps_the_stabilization_window(
    emulator: kmock.KubernetesEmulator,
    api: Api,
    load: Load,
    metrics: RecordingMetrics,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seeded: list[tuple[str, str, int]] = []
    seed = PlanBook.seed

    def recording(self: PlanBook, request: PlanRequest) -> None:
        seeded.append((request.namespace, request.name, request.targets.decode))
        seed(self, request)

    monkeypatch.setattr(PlanBook, "seed", recording)
    window, interval = 4, 1
    spec = pdsg()
    spec["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] = window
    async with controllers(emulator):
        async with operator_in_test_loop(emulator, load, metrics):
            load.decode_tps = 490.0
            await api.create(cr_path(), spec)
            await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["spec"]["replicas"] == 5)
            await eventually(
                lambda: emulator.objects[CR, NS, "chat"]["status"]["desired"] == {"prefill": 3, "decode": 5}
            )
            load.decode_tps = 190.0
            await asyncio.sleep(1.5)  # at least one tick that remembers the high recommendation
        remembered = emulator.objects[CR, NS, "chat"]["status"]["policyState"]["recommendations"]
        last_high = max(r["time"] for r in remembered if r["decode"] == 5)
        assert any(r["decode"] == 2 for r in remembered), "a tick saw the low load before the restart"
        sizes_before = len(emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"].history)

        async with operator_in_test_loop(emulator, load, metrics):
            drain = await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["drain"], what="the drain")
            await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["spec"]["replicas"] == 2)
    # The restarted operator honoured the window from the status: the scale-in started at its first
    # tick once the last high recommendation was `window` seconds old, not before and not later.
    assert window <= drain["started"] - last_high < window + interval
    # Only the restarted operator's plan book started from the status (the first one's ticks
    # registered the group before its status held any group).
    assert seeded == [(NS, "chat", 5)]
    sizes = [
        v["spec"]["replicas"]
        for v in emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"].history[sizes_before - 1 :]
        if v
    ]
    assert sorted(set(sizes)) == [2, 5], sizes
