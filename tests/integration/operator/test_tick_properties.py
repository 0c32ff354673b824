"""Random PDServingGroups over random cluster states, through whole ticks over HTTP: whatever the
spec, the status it carries, the Deployments and pods around it and the reading, a tick

* never crashes (every outcome is a status write or a refusal),
* writes to no Deployment the group does not own or reference (and no referenced Deployment that
  another controller manages), to no pod outside the Deployments it may act on, and to no other
  PDServingGroup,
* and lowers no Deployment's replicas when its decision was a hold.

The ticks are :func:`heteroscale.operator.reconcile.tick` itself, called directly (kopf's watch
machinery is not what is under test here) with the operator's real client against KMock's
emulator. The reading comes from the generated case, so every odd value reaches the policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import kmock
import kopf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heteroscale.api.config import OperatorConfig
from heteroscale.api.enums import HOLD_REASONS
from heteroscale.api.labels import (
    ANNOTATION_ADOPT,
    LABEL_DEPLOYMENT,
    LABEL_PDSG,
    LABEL_ROLE,
    LABEL_SERVING,
    NOT_SERVING,
    selector_labels,
)
from heteroscale.metrics.reader import Signals
from heteroscale.operator import indexes
from heteroscale.operator.conflicts import group_references
from heteroscale.operator.kube import ApiError, KubeClient
from heteroscale.operator.ownership import controller_of
from heteroscale.operator.reconcile import Cluster, Context, tick
from heteroscale.operator.store import Store
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
    PODS,
    REPLICASETS,
    RecordingMetrics,
    cr_path,
    node,
    pdsg,
    template,
)

GROUP_UID = "uid-chat"
NAMES = ["chat-prefill", "chat-decode", "chat-prefill-g0", "chat-decode-g0", "chat-decode-g1", "user-p", "user-d"]
OWNERS = {
    "group": {"apiVersion": "heteroscale.io/v1alpha1", "kind": "PDServingGroup", "name": "chat", "uid": GROUP_UID},
    "other-group": {"apiVersion": "heteroscale.io/v1alpha1", "kind": "PDServingGroup", "name": "x", "uid": "uid-x"},
    "rollout": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "r", "uid": "uid-r"},
}


@dataclass(frozen=True)
class Existing:
    name: str
    owner: str | None
    replicas: int
    ready: int
    ours_labelled: bool
    expressions: bool
    adopt: bool


@dataclass(frozen=True)
class Case:
    spec: dict[str, Any]
    status: dict[str, Any]
    deployments: tuple[Existing, ...]
    bystanders: int
    readings: tuple[Signals, Signals, Signals]
    rival: bool
    """Another, older PDServingGroup references user-d."""


existing = st.builds(
    Existing,
    name=st.sampled_from(NAMES),
    owner=st.sampled_from([None] * 4 + ["group"] * 4 + ["other-group", "rollout"]),
    replicas=st.integers(0, 6),
    ready=st.sampled_from([6, 6, 6, 0, 1, 2]),  # mostly all ready: pods starting hold every scale-in
    ours_labelled=st.booleans(),
    expressions=st.booleans(),
    adopt=st.booleans(),
)

# Mostly readings the policy acts on, so that most ticks write; every odd kind now and then.
readings = st.builds(
    Signals,
    decode_tps=st.sampled_from([None, math.nan, -1.0, 0.0, *[50.0, 190.0, 400.0, 900.0, 2000.0] * 3]),
    metric_age_seconds=st.sampled_from([None, 500.0, *[1.0] * 8]),
    prefill_missed_tps=st.none(),
    tbt_seconds=st.sampled_from([None, None, 0.01, 0.5]),
    problem=st.none(),
    decode_reporting=st.sampled_from([None, None, None, 0, 1, 6]),
)


@st.composite
def roles(draw: st.DrawFn, present: list[str]) -> dict[str, Any]:
    out = {}
    taken: set[str] = set()
    for role, gpu in (("prefill", "L20"), ("decode", "H20")):
        source = draw(st.sampled_from(["template"] * 6 + ["ref"] * 5 + ["bad-template"]))
        if source == "template":
            out[role] = {"template": template(role), "gpuTypes": [gpu], "gpusPerInstance": 1}
        elif source == "ref":
            # Mostly a Deployment that exists, and mostly not the other role's (both are refused).
            pool = [n for n in present if n not in taken] or NAMES
            name = draw(st.sampled_from(pool) if draw(st.integers(0, 4)) else st.sampled_from(NAMES))
            taken.add(name)
            out[role] = {"deploymentRef": {"name": name}, "gpuTypes": [gpu]}
        else:
            out[role] = {"template": {"metadata": "x", "spec": {}}, "gpuTypes": [gpu]}
    return out


@st.composite
def cases(draw: st.DrawFn) -> Case:
    deployments = tuple({d.name: d for d in draw(st.lists(existing, min_size=1, max_size=6))}.values())
    body = pdsg()["spec"]
    body["mode"] = draw(st.sampled_from(["Enforce", "Enforce", "Enforce", "DryRun"]))
    body["roles"] = draw(roles([d.name for d in deployments]))
    body["decode"]["minReplicas"] = draw(st.integers(0, 3))
    body["prefill"]["minReplicas"] = draw(st.integers(0, 2))
    body["behavior"]["scaleDown"]["drainSeconds"] = draw(st.sampled_from([0, 0, 1, 30]))
    if not draw(st.integers(0, 5)):
        query = draw(st.sampled_from(['sum(rate(t{namespace="{namespace}"}[1m]))', 'sum(rate(t{namespace="x"}[1m]))']))
        body["metric"] = {"engine": "custom", "query": query}
    groups = [
        {
            "name": name,
            "role": draw(st.sampled_from(["prefill", "decode"])),
            "gpuType": "H20",
            "desired": draw(st.integers(0, 5)),
            "owned": draw(st.booleans()),
        }
        for name in draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=3))
    ]
    status: dict[str, Any] = {"groups": groups}
    if draw(st.booleans()):
        drained = draw(st.lists(st.sampled_from([*NAMES, "bystander-0"]), max_size=3))
        status["drain"] = {
            "started": 0,
            "reason": "ScaledDown",
            "groups": [{"name": draw(st.sampled_from(NAMES)), "replicas": 0, "pods": [f"{p}-rs-0" for p in drained]}],
        }
    return Case(
        body,
        status,
        deployments,
        draw(st.integers(0, 2)),
        (draw(readings), draw(readings), draw(readings)),
        draw(st.integers(0, 3)) == 0,
    )


def deployment_object(d: Existing) -> dict[str, Any]:
    labels = {"app": d.name}
    if d.ours_labelled:
        role = "decode" if "decode" in d.name or d.name.endswith("-d") else "prefill"
        labels |= {LABEL_PDSG: "chat", LABEL_ROLE: role, LABEL_DEPLOYMENT: d.name}
    selector: dict[str, Any] = {"matchLabels": {"app": d.name}}
    if d.expressions:
        selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": [d.name]}]}
    owners = [{**OWNERS[d.owner], "controller": True}] if d.owner else []
    annotations = {ANNOTATION_ADOPT: "chat"} if d.adopt else {}
    meta = {"name": d.name, "namespace": NS, "uid": f"uid-{d.name}", "labels": labels, "annotations": annotations}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {**meta, "ownerReferences": owners},
        "spec": {"replicas": d.replicas, "selector": selector, "template": {"metadata": {"labels": labels}}},
        "status": {"readyReplicas": min(d.ready, d.replicas)},
    }


def seed(emulator: kmock.KubernetesEmulator, case: Case) -> None:
    emulator.objects.clear()
    for d in case.deployments:
        emulator.objects[DEPLOYMENTS, NS, d.name] = deployment_object(d)
        controllers(emulator, d.name, d.replicas)
    for i in range(case.bystanders):
        # A bare pod with a Deployment's labels.
        emulator.objects[PODS, NS, f"bystander-{i}-rs-0"] = {
            "metadata": {"name": f"bystander-{i}-rs-0", "namespace": NS, "labels": {"app": NAMES[i]}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    foreign = {"kind": "ReplicaSet", "name": "foreign", "uid": "uid-foreign", "controller": True}
    for name in NAMES:
        # A pod another ReplicaSet controls that any Deployment of that name would select (the
        # labels of a seeded one and of one the operator creates): overlapping selectors. The
        # newest pod, so a drain that took it for the Deployment's would choose it first.
        role = "decode" if "decode" in name or name.endswith("-d") else "prefill"
        emulator.objects[PODS, NS, f"lookalike-{name}-rs-0"] = {
            "metadata": {
                "name": f"lookalike-{name}-rs-0",
                "creationTimestamp": "2030-01-01T00:00:00Z",
                "namespace": NS,
                "labels": {"app": name, **selector_labels("chat", role, name)},
                "ownerReferences": [foreign],
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }
    body = pdsg()
    body["spec"], body["status"] = case.spec, case.status
    body["metadata"]["creationTimestamp"] = "2026-06-01T00:00:00Z"
    emulator.objects[CR, NS, "chat"] = body
    if case.rival:
        other = pdsg("other")
        other["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        other["spec"]["roles"]["decode"] = {"deploymentRef": {"name": "user-d"}, "gpuTypes": ["H20"]}
        emulator.objects[CR, NS, "other"] = other


def controllers(emulator: kmock.KubernetesEmulator, name: str, replicas: int) -> None:
    """What the API server and the Deployment and ReplicaSet controllers keep true: a uid, one
    ReplicaSet the Deployment controls, and that many pods it controls (named ``<name>-rs-<i>``)."""
    rs = f"{name}-rs"
    if (REPLICASETS, NS, rs) not in emulator.objects:
        emulator.objects[REPLICASETS, NS, rs] = {
            "metadata": {
                "name": rs,
                "namespace": NS,
                "uid": f"uid-{rs}",
                "ownerReferences": [{"kind": "Deployment", "name": name, "uid": f"uid-{name}", "controller": True}],
            }
        }
    template_labels = emulator.objects[DEPLOYMENTS, NS, name]["spec"]["template"].get("metadata", {}).get("labels")
    for i in range(replicas):
        if (PODS, NS, f"{rs}-{i}") in emulator.objects and not emulator.objects[PODS, NS, f"{rs}-{i}"].deleted:
            continue
        emulator.objects[PODS, NS, f"{rs}-{i}"] = {
            "metadata": {
                "name": f"{rs}-{i}",
                "namespace": NS,
                "labels": dict(template_labels or {}),
                "ownerReferences": [{"kind": "ReplicaSet", "name": rs, "uid": f"uid-{rs}", "controller": True}],
            },
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }


def settle(emulator: kmock.KubernetesEmulator) -> None:
    """Between ticks, every Deployment gets its uid, ReplicaSet and ready pods (surplus pods go)."""
    for key in [k for k in list(emulator.objects) if str(k[0]) == str(kmock.resource(DEPLOYMENTS))]:
        obj = emulator.objects[key]
        if obj.deleted:
            continue
        name, want = key[2], obj["spec"].get("replicas", 0)
        patch: dict[str, Any] = {"status": {"replicas": want, "readyReplicas": want}}
        if not obj["metadata"].get("uid"):
            patch["metadata"] = {"uid": f"uid-{name}"}
        obj.patch(patch)
        controllers(emulator, name, want)
        for pod_key in [k for k in list(emulator.objects) if str(k[0]) == str(kmock.resource(PODS))]:
            pod_name = pod_key[2]
            if pod_name.startswith(f"{name}-rs-") and int(pod_name.rsplit("-", 1)[-1]) >= want:
                emulator.objects[pod_key].delete()


@dataclass
class Reading:
    signals: Signals

    def read(self, spec: Any, scope: Any, decode: Any, prefill: Any, now: float) -> Signals:
        return self.signals


def may_write(case: Case, before: dict[str, Any]) -> set[str]:
    """Deployments the group may write: its own, what it references that no other controller runs,
    and what its owner annotated for adoption by this group."""
    refs = {r["deploymentRef"]["name"] for r in case.spec["roles"].values() if "deploymentRef" in r}
    allowed = set()
    for name, obj in before.items():
        controller = controller_of(obj)
        adoptable = (obj["metadata"].get("annotations") or {}).get(ANNOTATION_ADOPT) == "chat"
        if (controller is not None and controller.get("uid") == GROUP_UID) or (
            controller is None and (name in refs or adoptable)
        ):
            allowed.add(name)
    return allowed


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
async def test_ticks_stay_inside_the_group_and_never_lower_on_a_hold(
    kmock: kmock.KubernetesEmulator, case: Case
) -> None:
    kmock.resources.load_bundled()
    seed(kmock, case)
    nodes = [node(f"h20-{i}", "H20", "s2-a") for i in range(2)] + [node(f"l20-{i}", "L20", "s2-a") for i in range(2)]
    deployments = Store(indexes.deployment_index)
    cluster = Cluster(
        references={k: [v] for k, v in group_references(kmock.objects[CR, NS, "other"]).items()} if case.rival else {},
        deployments=deployments,
    )
    for body in nodes:
        cluster.nodes.put(body)
    client = KubeClient(kopf.ConnectionInfo(server=str(kmock.url)), attempts=1)
    metrics = RecordingMetrics()
    clock = [1_000_000.0]
    reading = Reading(case.readings[0])
    ctx = Context(client, lambda endpoint: reading, metrics, lambda: clock[0], cluster, OperatorConfig())
    try:
        for signals in case.readings:
            reading.signals = signals
            live = {
                k[2]: kmock.objects[k] for k in list(kmock.objects) if str(k[0]) == str(kmock.resource(DEPLOYMENTS))
            }
            before = {name: obj.raw for name, obj in live.items() if not obj.deleted}
            deployments.replace(None, list(before.values()))  # as the operator's watch keeps them
            sizes = {name: obj["spec"]["replicas"] for name, obj in before.items()}
            start = len(list(kmock))
            try:
                interval = await tick(ctx, NS, "chat", lambda *event: None)
            except ApiError:
                interval = 1  # the loop reports it and retries; not a crash
            assert interval >= 1
            requests = list(kmock)[start:]
            allowed = may_write(case, before)
            for request in requests:
                if request.method not in {"POST", "PATCH", "PUT", "DELETE"}:
                    continue
                path = request.url.path
                if "/deployments" in path:
                    if request.method == "POST":
                        owner = request.data["metadata"]["ownerReferences"][0]
                        assert owner["uid"] == GROUP_UID, request.data
                        assert owner["controller"], request.data
                        allowed.add(request.data["metadata"]["name"])
                        continue
                    name = path.rstrip("/").rsplit("/", 1)[-1]
                    assert name in allowed, (request.method, name, sorted(allowed))
                elif "/pods/" in path:
                    pod = path.rsplit("/", 1)[-1]
                    assert pod.rsplit("-rs-", 1)[0] in allowed, (pod, sorted(allowed))
                else:
                    assert path in {cr_path("chat") + "/status"}, path
            decision = kmock.objects[CR, NS, "chat"].get("status", {}).get("lastDecision") or {}
            if decision.get("time") is not None and decision.get("reason") in HOLD_REASONS:
                # A hold lowers nothing and starts no drain (an owned Deployment already at 0 may go).
                for name, size in sizes.items():
                    obj = kmock.objects[DEPLOYMENTS, NS, name]
                    now_size = 0 if obj.deleted else obj["spec"]["replicas"]
                    assert now_size >= size, (name, size, now_size, decision)
                drained = [
                    r
                    for r in requests
                    if r.method == "PATCH"
                    and "/pods/" in r.url.path
                    and (r.data.get("metadata", {}).get("labels") or {}).get(LABEL_SERVING) == NOT_SERVING
                ]
                assert not drained, decision
            clock[0] += 40
            kmock.objects[CR, NS, "chat"].patch({"status": {"lastDecision": None}})
            settle(kmock)
    finally:
        await client.close()
