"""A ``scaleTargetRef`` workload over HTTP: a LeaderWorkerSet-shaped custom resource, scaled through
its ``/scale`` subresource, with pods owned through a leader StatefulSet (issue #14, part 5).

KMock serves custom resources but not the ``/scale`` subresource's semantics: it routes
``.../leaderworkersets/<name>/scale`` to the object itself (a PATCH there merges into the stored
object, which for ``{"spec": {"replicas": n}}`` is what the real subresource does to a
LeaderWorkerSet), and a GET would return the object, not a Scale. :func:`serve_scale` adds the
reactions that answer GET and PATCH with the Scale built from the stored object, as the API server
does from the CRD's scale subresource paths (``.spec.replicas``, ``.status.replicas``,
``.status.hpaPodSelector``).

:class:`LeaderWorkerSetStandIn` plays the LeaderWorkerSet and StatefulSet controllers: one leader
StatefulSet per LeaderWorkerSet (controlled by it), leader pods ``<name>-<i>`` controlled by that
StatefulSet, created ready, and removed from the highest ordinal down on a scale-in, as a
StatefulSet does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import kmock
import pytest

from heteroscale.api.config import OperatorConfig, ScaleTargetKind
from heteroscale.api.labels import LABEL_SERVING
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
    PODS,
    Api,
    Load,
    RecordingMetrics,
    condition,
    controllers,
    cr_path,
    deployment,
    events,
    eventually,
    operator_in_test_loop,
    plain,
    referencing,
    stopped,
    writes,
)

LWS_GROUP, LWS_VERSION, LWS_PLURAL = "leaderworkerset.x-k8s.io", "v1", "leaderworkersets"
LWS = f"{LWS_GROUP}/{LWS_VERSION}/{LWS_PLURAL}"
STATEFULSETS = "apps/v1/statefulsets"
NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
WORKER_INDEX = "leaderworkerset.sigs.k8s.io/worker-index"
ALLOWED = OperatorConfig(
    scale_targets=(
        ScaleTargetKind(api_version=f"{LWS_GROUP}/{LWS_VERSION}", kind="LeaderWorkerSet", plural=LWS_PLURAL),
    )
)


def lws(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{LWS_GROUP}/{LWS_VERSION}",
        "kind": "LeaderWorkerSet",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {"replicas": replicas, "leaderWorkerTemplate": {"size": 1}},
        "status": {"replicas": replicas, "hpaPodSelector": f"{NAME_LABEL}={name},{WORKER_INDEX}=0"},
    }


def lws_path(name: str) -> str:
    return f"/apis/{LWS_GROUP}/{LWS_VERSION}/namespaces/{NS}/{LWS_PLURAL}/{name}"


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def controller_ref(kind: str, obj: Any, api_version: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"], "controller": True}


@dataclass
class LeaderWorkerSetStandIn:
    emulator: kmock.KubernetesEmulator
    removed: list[tuple[str, str | None]] = field(default_factory=list)
    """(pod, its serving label when it was removed)."""

    def step(self) -> None:
        objects = self.emulator.objects
        for key in [k for k in objects if str(k[0]) == str(kmock.resource(LWS))]:
            target = objects[key]
            if target.deleted:
                continue
            _, namespace, name = key
            # The store's ``in`` needs resource objects in its keys (reading accepts strings).
            sts_key = (kmock.resource(STATEFULSETS), namespace, name)
            if sts_key not in objects:
                objects[sts_key] = {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "uid": f"uid-sts-{name}",
                        "ownerReferences": [controller_ref("LeaderWorkerSet", target, f"{LWS_GROUP}/{LWS_VERSION}")],
                    },
                }
            sts = objects[sts_key]
            want = int(target["spec"]["replicas"])
            for index in range(want):
                pod_key = (kmock.resource(PODS), namespace, f"{name}-{index}")
                if pod_key in objects and not objects[pod_key].deleted:
                    continue
                objects[pod_key] = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"{name}-{index}",
                        "namespace": namespace,
                        "uid": f"uid-pod-{name}-{index}",
                        "labels": {NAME_LABEL: name, WORKER_INDEX: "0", "app": name},
                        "creationTimestamp": stamp(),
                        "ownerReferences": [controller_ref("StatefulSet", sts, "apps/v1")],
                    },
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                }
            for pod_key in [k for k in objects if str(k[0]) == str(kmock.resource(PODS)) and k[1] == namespace]:
                pod = objects[pod_key]
                if pod.deleted:
                    # A deleted object keeps its key but has no body (the ReplicaSets' stand-in
                    # removes the prefill pods in the same namespace).
                    continue
                prefix, _, ordinal = pod_key[2].rpartition("-")
                owners = pod["metadata"].get("ownerReferences") or []
                ours = any(o.get("uid") == sts["metadata"]["uid"] for o in owners)
                if ours and prefix == name and int(ordinal) >= want:
                    self.removed.append((pod_key[2], pod["metadata"]["labels"].get(LABEL_SERVING)))
                    pod.delete()
            if target.get("status", {}).get("replicas") != want:
                target.patch({"status": {"replicas": want}})

    async def run(self) -> None:
        while True:
            self.step()
            await asyncio.sleep(0.05)


def serve_scale(emulator: kmock.KubernetesEmulator) -> None:
    """GET and PATCH ``/scale`` answer with the Scale of the stored LeaderWorkerSet (see the module
    docstring: KMock itself has already merged a PATCH's body into the object)."""

    def scale(request: Any) -> dict[str, Any]:
        obj = plain(emulator.objects[LWS, request.namespace, request.name].raw)
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": request.name, "namespace": request.namespace},
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {"replicas": obj["status"]["replicas"], "selector": obj["status"]["hpaPodSelector"]},
        }

    for verb in ("get", "patch"):
        emulator[verb, kmock.resource(LWS), kmock.subresource("scale")] << scale


@pytest.fixture
def lws_emulator(emulator: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    emulator.resources[LWS] = kmock.ResourceInfo(
        kind="LeaderWorkerSet",
        singular="leaderworkerset",
        namespaced=True,
        subresources={"status", "scale"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )
    serve_scale(emulator)
    return emulator


def scale_target_group(name: str = "chat", **spec: Any) -> dict[str, Any]:
    """A group whose decode role is the LeaderWorkerSet ``serve-decode`` and whose prefill role is
    the Deployment ``user-prefill`` (a /scale target and a Deployment side by side)."""
    body = referencing(name, **spec)
    body["spec"]["roles"]["decode"] = {
        "scaleTargetRef": {
            "apiVersion": f"{LWS_GROUP}/{LWS_VERSION}",
            "kind": "LeaderWorkerSet",
            "name": "serve-decode",
        },
        "gpuTypes": ["H20"],
    }
    return body


def user_workloads(emulator: kmock.KubernetesEmulator, decode: int) -> None:
    """The Deployment ``user-prefill`` (1 replica) and the LeaderWorkerSet ``serve-decode``."""
    emulator.objects[DEPLOYMENTS, NS, "user-prefill"] = deployment("user-prefill", 1)
    emulator.objects[LWS, NS, "serve-decode"] = lws("serve-decode", decode)


@contextlib.asynccontextmanager
async def running(
    emulator: kmock.KubernetesEmulator, load: Load, metrics: RecordingMetrics
) -> AsyncIterator[LeaderWorkerSetStandIn]:
    """The controllers' stand-ins (ReplicaSets and LeaderWorkerSets) and the operator, allowed to
    scale LeaderWorkerSets, in the test's loop."""
    standin = LeaderWorkerSetStandIn(emulator)
    task = asyncio.create_task(standin.run())
    try:
        async with controllers(emulator), operator_in_test_loop(emulator, load, metrics, config=ALLOWED):
            yield standin
    finally:
        stopped(task)


def lws_replicas(emulator: kmock.KubernetesEmulator, name: str = "serve-decode") -> int:
    return int(emulator.objects[LWS, NS, name]["spec"]["replicas"])


def lws_writes(emulator: kmock.KubernetesEmulator) -> list[Any]:
    return writes(emulator, f"/{LWS_PLURAL}/")


def lookalike(name: str) -> dict[str, Any]:
    """A pod that matches the LeaderWorkerSet's selector but belongs to a StatefulSet the
    LeaderWorkerSet does not control; its ordinal is the highest, so a scale-in that ignored
    ownership would drain it first."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": {NAME_LABEL: "serve-decode", WORKER_INDEX: "0", "app": "serve-decode"},
            "creationTimestamp": stamp(),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": "other",
                    "uid": "uid-sts-other",
                    "controller": True,
                }
            ],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


@pytest.mark.looptime
async def test_a_scale_target_scales_up_on_load_then_drains_its_highest_ordinals_and_scales_in(
    lws_emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    emulator = lws_emulator
    user_workloads(emulator, 2)
    emulator.objects[STATEFULSETS, NS, "other"] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "other", "namespace": NS, "uid": "uid-sts-other"},
    }
    emulator.objects[PODS, NS, "serve-decode-9"] = lookalike("serve-decode-9")
    async with running(emulator, load, metrics) as standin:
        load.decode_tps = 390.0  # 4 decode at 100 tokens/s each
        body = scale_target_group()
        body["spec"]["behavior"]["scaleDown"]["drainSeconds"] = 3
        await api.create(cr_path(), body)
        await eventually(lambda: lws_replicas(emulator) == 4, what="the LeaderWorkerSet scaled up to 4")
        status = await eventually(
            lambda: (
                (s := emulator.objects[CR, NS, "chat"].get("status", {})).get("current", {}).get("decode") == 4 and s
            ),
            what="4 decode ready, counted from the owned pods",
        )
        [decode] = [g for g in status["groups"] if g["name"] == "serve-decode"]
        assert decode["writtenReplicas"] == 4, "the write is recorded in the group's own status"
        load.decode_tps = 190.0  # 2 decode: serve-decode-3 and serve-decode-2 leave
        drain = await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"].get("drain"), what="a drain")
        [group] = [g for g in drain["groups"] if g["name"] == "serve-decode"]
        assert sorted(group["pods"]) == ["serve-decode-2", "serve-decode-3"], "the StatefulSet's order"
        # Generous bounds on the fake clock cost nothing; on a loaded machine the operator's thread
        # hops (metric reads) take real time while the fake clock may jump ahead.
        await eventually(lambda: lws_replicas(emulator) == 2, what="the scale-in", timeout=60)
        await eventually(lambda: len(standin.removed) == 2, what="the two pods removed", timeout=60)
        emulator.objects[PODS, NS, "serve-decode-1"].patch(
            {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
        )
        await eventually(
            lambda: emulator.objects[CR, NS, "chat"]["status"]["current"]["decode"] == 1,
            what="readiness read from the pods (the LeaderWorkerSet still asks for 2)",
        )
    assert sorted(standin.removed) == [("serve-decode-2", "false"), ("serve-decode-3", "false")], (
        "only drained pods were removed"
    )
    paths = {r.url.path for r in lws_writes(emulator)}
    assert paths == {lws_path("serve-decode") + "/scale"}, "the LeaderWorkerSet is written through /scale only"
    assert writes(emulator, "/pods/serve-decode-9") == [], "a pod the target does not own is never drained"
    assert LABEL_SERVING not in emulator.objects[PODS, NS, "serve-decode-9"]["metadata"]["labels"]


@pytest.mark.looptime
async def test_an_edit_of_the_target_through_scale_is_seen_as_a_manual_edit(
    lws_emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    emulator = lws_emulator
    user_workloads(emulator, 1)
    async with running(emulator, load, metrics):
        load.decode_tps = 190.0
        await api.create(cr_path(), scale_target_group())
        await eventually(lambda: lws_replicas(emulator) == 2, what="scaled to 2")
        await asyncio.sleep(3)
        assert events(emulator, "ManualOverride") == [], "the operator's own write is not an edit"
        await api.patch(lws_path("serve-decode") + "/scale", {"spec": {"replicas": 5}})  # kubectl scale
        edited = await eventually(lambda: events(emulator, "ManualOverride"), what="a ManualOverride Event")
        assert edited[0]["message"].startswith("a person set decode 5 "), edited[0]["message"]
        await asyncio.sleep(3)
        assert lws_replicas(emulator) == 5, "the person's count is a floor while the hold lasts"


@pytest.mark.looptime
async def test_a_kind_the_admin_did_not_list_is_refused_and_nothing_is_written(
    lws_emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    emulator = lws_emulator
    user_workloads(emulator, 1)
    load.decode_tps = 590.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):  # no scaleTargets
        await api.create(cr_path(), scale_target_group())
        ready = await eventually(
            lambda: (c := condition(emulator.objects[CR, NS, "chat"], "Ready")) and c["reason"] == "NotAllowed" and c,
            what="NotAllowed",
        )
        assert "spec.roles.decode.scaleTargetRef" in ready["message"]
        assert "scaleTargets" in ready["message"], "the message names the fix"
        assert events(emulator, "NotAllowed"), "and an Event says so"
        await asyncio.sleep(3)
    assert lws_writes(emulator) == []
    assert writes(emulator) == []
    assert writes(emulator, "/pods") == []
    assert [r for r in emulator if r.url.path.startswith(lws_path("serve-decode"))] == [], "nothing read either"


@pytest.mark.looptime
async def test_an_hpa_on_the_target_is_a_conflict(
    lws_emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    emulator = lws_emulator
    user_workloads(emulator, 1)
    await api.create(
        f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers",
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "lws-hpa", "namespace": NS},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": f"{LWS_GROUP}/{LWS_VERSION}",
                    "kind": "LeaderWorkerSet",
                    "name": "serve-decode",
                }
            },
        },
    )
    load.decode_tps = 590.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics, config=ALLOWED):
        await api.create(cr_path(), scale_target_group())
        conflict = await eventually(lambda: condition(emulator.objects[CR, NS, "chat"], "Conflict"), what="Conflict")
        assert conflict["status"] == "True"
        assert "HorizontalPodAutoscaler/lws-hpa targets LeaderWorkerSet serve-decode" in conflict["message"]
        await asyncio.sleep(3)
    assert lws_writes(emulator) == []
    assert writes(emulator) == []


@pytest.mark.parametrize(
    ("text", "selector"),
    [
        (f"{NAME_LABEL}=x,{WORKER_INDEX}=0", {"matchLabels": {NAME_LABEL: "x", WORKER_INDEX: "0"}}),
        (
            "app==web, tier in (a, b)",
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}],
            },
        ),
        (
            "a!=b,!c,d,e notin (f)",
            {
                "matchExpressions": [
                    {"key": "a", "operator": "NotIn", "values": ["b"]},
                    {"key": "c", "operator": "DoesNotExist"},
                    {"key": "d", "operator": "Exists"},
                    {"key": "e", "operator": "NotIn", "values": ["f"]},
                ]
            },
        ),
    ],
)
def test_a_scale_selector_reads_back_as_the_label_selector_it_came_from(text: str, selector: dict[str, Any]) -> None:
    """The strings Kubernetes' ``metav1.FormatLabelSelector`` writes into ``/scale`` status."""
    from heteroscale.operator.labelselector import parse

    assert parse(text) == selector


@pytest.mark.parametrize(("text", "words"), [("", "empty"), ("gpu>2", "'gpu>2'"), ("a=b,a=c", "two values")])
def test_a_scale_selector_the_operator_cannot_read_is_refused_with_the_part_named(text: str, words: str) -> None:
    from heteroscale.operator.labelselector import parse

    with pytest.raises(ValueError, match=words):
        parse(text)
