"""Create → scale up at the ratio → soft scale-in after the window → delete."""

from __future__ import annotations

import time

import kmock

from heteroscale.operator.handlers import Operator
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
)


def replicas(emulator: kmock.KubernetesEmulator, name: str) -> int:
    return int(emulator.objects[DEPLOYMENTS, NS, name]["spec"]["replicas"])


async def test_lifecycle(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    load: Load,
    metrics: RecordingMetrics,
    operator: Operator,
) -> None:
    load.decode_tps = 80.0
    await api.create(cr_path(), pdsg())
    await eventually(lambda: replicas(emulator, "chat-decode") == 1, what="decode Deployment created")
    decode = emulator.objects[DEPLOYMENTS, NS, "chat-decode"]
    prefill = emulator.objects[DEPLOYMENTS, NS, "chat-prefill"]
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
    assert terms == [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["H20"]}]}]
    prefill_terms = prefill["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    assert "L20" in str(prefill_terms)

    # Load rises: 490 tok/s at 100 per decode instance → 5 decode, and 3 prefill at 1:2.
    load.decode_tps = 490.0
    await eventually(lambda: replicas(emulator, "chat-decode") == 5, what="decode scaled to 5")
    await eventually(lambda: replicas(emulator, "chat-prefill") == 3, what="prefill scaled to 3")
    decode_history = [v["spec"]["replicas"] for v in emulator.objects[DEPLOYMENTS, NS, "chat-decode"].history if v]
    assert sorted(set(decode_history)) == [1, 5], "one coordinated step, no intermediate sizes"
    scaled_up = await eventually(lambda: events(emulator, "ScaledUp"), what="a ScaledUp Event")
    assert "prefill 1->3, decode 1->5" in scaled_up[0]["message"]
    await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["desired"] == {"prefill": 3, "decode": 5})

    # Load falls to 190 tok/s → 2 decode, 1 prefill; but only after the 3 s stabilization window.
    await eventually(
        lambda: (
            len(
                [
                    p
                    for k in emulator.objects
                    if str(k[0]) == str(kmock.resource(PODS))
                    for p in [emulator.objects[k]]
                    if not p.deleted
                ]
            )
            == 8
        ),
        what="8 pods",
    )
    dropped = time.monotonic()
    load.decode_tps = 190.0
    await eventually(
        lambda: any(
            v and v.get("metadata", {}).get("labels", {}).get("heteroscale.io/serving") == "false"
            for k in emulator.objects
            if str(k[0]) == str(kmock.resource(PODS))
            for v in emulator.objects[k].history
        ),
        what="a pod taken out of serving",
    )
    drain_started = time.monotonic()
    assert drain_started - dropped >= 3.0 - 0.5, "scale-in waited for the stabilization window"
    await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["drain"]["groups"], what="drain in status")
    assert replicas(emulator, "chat-decode") == 5, "replicas stay until the drain period is over"

    await eventually(lambda: replicas(emulator, "chat-decode") == 2, what="decode scaled in to 2")
    await eventually(lambda: replicas(emulator, "chat-prefill") == 1, what="prefill scaled in to 1")
    await eventually(lambda: len(cluster.removed) == 5, what="5 pods removed")
    assert all(serving == "false" for _, serving in cluster.removed), cluster.removed
    await eventually(lambda: events(emulator, "DrainComplete"), what="a DrainComplete Event")
    ready = await eventually(lambda: condition(emulator.objects[CR, NS, "chat"], "Ready"))
    assert ready is not None
    directions = sorted({(role, d) for _, _, role, d in metrics.scale_events()})
    assert directions == [("decode", "down"), ("decode", "up"), ("prefill", "down"), ("prefill", "up")]

    await api.delete(cr_path("chat"))
    await eventually(lambda: emulator.objects[CR, NS, "chat"].deleted, what="PDServingGroup gone")
    # The emulator has no garbage collector: the ownerReference is what makes Kubernetes delete them.
    assert emulator.objects[DEPLOYMENTS, NS, "chat-decode"]["metadata"]["ownerReferences"][0]["uid"] == "uid-chat"
