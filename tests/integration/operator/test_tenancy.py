"""Whoever may write a PDServingGroup in one namespace is a tenant: each test here is an attack or
an accident (issue #11's items 1-9) played against the real operator over HTTP, and what the
operator must not do because of it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kmock
import pytest

from heteroscale.api.config import OperatorConfig, PriorityGrant, PrometheusEndpoint
from heteroscale.api.labels import ANNOTATION_ADOPT, LABEL_SERVING
from heteroscale.metrics.reader import PrometheusReader
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    FAKE_EPOCH,
    NS,
    PODS,
    Api,
    ApiServerEmulator,
    Load,
    RecordingMetrics,
    condition,
    controllers,
    cr_path,
    deployment,
    events,
    eventually,
    node,
    operator_in_test_loop,
    pdsg,
    referencing,
    start_operator,
    writes,
)


def replicas(emulator: kmock.KubernetesEmulator, name: str, namespace: str = NS) -> int:
    return int(emulator.objects[DEPLOYMENTS, namespace, name]["spec"]["replicas"])


def writes_to(emulator: kmock.KubernetesEmulator, name: str, kind: str = "deployments") -> list[Any]:
    return [r for r in writes(emulator, f"/{kind}") if r.url.path.rstrip("/").endswith(f"/{kind}/{name}")]


@pytest.fixture
def tenant_host() -> Iterator[list[str]]:
    """A server the tenant controls: it records every request that reaches it, headers included."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(f"{self.path} {self.headers.get('Authorization')}")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[]}}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    seen.append(f"http://127.0.0.1:{server.server_port}")
    yield seen
    server.shutdown()
    server.server_close()


async def test_1_a_spec_cannot_send_the_operators_token_anywhere(
    emulator: kmock.KubernetesEmulator, api: Api, metrics: RecordingMetrics, tenant_host: list[str], tmp_path: Any
) -> None:
    """Item 1: URL and token file chosen in the spec were the operator's own token sent to the tenant."""
    token = tmp_path / "token"
    token.write_text("operator-service-account-token")
    url = tenant_host.pop(0)
    # The admin's endpoint reads a token file of the operator's; the tenant tries to point it elsewhere.
    config = OperatorConfig(
        prometheus_endpoints={"default": PrometheusEndpoint(url=url + "/admin", bearer_token_file=str(token))}
    )
    running = start_operator(emulator, PrometheusReader, metrics, config=config)
    try:
        body = pdsg("thief")
        body["spec"]["metric"] = {"prometheus": {"url": url, "bearerTokenFile": str(token)}}
        await api.create(cr_path(), body)
        ready = await eventually(lambda: condition(emulator.objects[CR, NS, "thief"], "Ready"), what="a condition")
        assert (ready["reason"], "configured by the cluster admin" in ready["message"]) == ("InvalidSpec", True)
        # And an endpoint the admin did not configure is not a URL either: it is refused by name.
        await api.create(cr_path(), pdsg("guess", metric={"prometheus": {"endpoint": "tenant-prometheus"}}))
        refused = await eventually(lambda: condition(emulator.objects[CR, NS, "guess"], "Ready"), what="refused")
        assert refused["reason"] == "NotAllowed"
        assert "'tenant-prometheus' is not configured" in refused["message"]
        await asyncio.sleep(1.0)
    finally:
        await running.shutdown()
    assert not [r for r in tenant_host if not r.startswith("/admin")], "the tenant's URL got a request"
    assert writes(emulator) == []


async def test_1_an_endpoint_serves_only_the_namespaces_it_names(
    emulator: kmock.KubernetesEmulator, api: Api, metrics: RecordingMetrics, load: Load
) -> None:
    asked: list[str] = []

    def readers(endpoint: PrometheusEndpoint) -> Load:
        asked.append(endpoint.url)
        return load

    config = OperatorConfig(
        prometheus_endpoints={
            "default": PrometheusEndpoint(url="http://shared:9090"),
            "team-a": PrometheusEndpoint(url="http://team-a:9090", namespaces=("team-a",)),
        }
    )
    running = start_operator(emulator, readers, metrics, config=config)
    try:
        await api.create(cr_path(), pdsg(metric={"prometheus": {"endpoint": "team-a"}}))
        refused = await eventually(lambda: condition(emulator.objects[CR, NS, "chat"], "Ready"), what="refused")
        assert refused["reason"] == "NotAllowed"
        assert "not allowed for namespace 'serving'" in refused["message"]
        await asyncio.sleep(0.5)
    finally:
        await running.shutdown()
    assert asked == [], "no reader was built for an endpoint the namespace may not use"
    assert writes(emulator) == []


@pytest.fixture
def user_deployments(emulator: kmock.KubernetesEmulator) -> None:
    emulator.objects[DEPLOYMENTS, NS, "user-prefill"] = deployment("user-prefill", 1)
    emulator.objects[DEPLOYMENTS, NS, "user-decode"] = deployment("user-decode", 2)


@pytest.mark.looptime
@pytest.mark.usefixtures("user_deployments")
async def test_2_switching_from_references_to_templates_leaves_the_users_deployments_alone(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    load.decode_tps = 390.0  # 4 decode, 2 prefill
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), referencing())
        await eventually(lambda: replicas(emulator, "user-decode") == 4, what="the reference scaled")
        status = await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"].get("groups"))
        assert {g["name"]: g["owned"] for g in status} == {"user-prefill": False, "user-decode": False}
        before = len(writes(emulator))
        # The same group, now with templates (a merge patch: null removes the references).
        roles = {r: {**v, "deploymentRef": None} for r, v in pdsg()["spec"]["roles"].items()}
        emulator.objects[CR, NS, "chat"].patch({"spec": {"roles": roles}})
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 4, what="owned Deployments created")
        await asyncio.sleep(1.5)
    assert not emulator.objects[DEPLOYMENTS, NS, "user-decode"].deleted
    assert (replicas(emulator, "user-prefill"), replicas(emulator, "user-decode")) == (2, 4)
    later = writes(emulator)[before:]
    assert not [r for r in later if "/user-" in r.url.path], "a referenced Deployment was written after the switch"


@pytest.mark.looptime
async def test_2_switching_from_templates_to_references_drains_and_removes_what_the_group_owned(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    load.decode_tps = 190.0  # 2 decode, 1 prefill
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg())
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="owned Deployments")
        emulator.objects[DEPLOYMENTS, NS, "user-prefill"] = deployment("user-prefill", 1)
        emulator.objects[DEPLOYMENTS, NS, "user-decode"] = deployment("user-decode", 1)
        roles = {r: {**v, "template": None} for r, v in referencing()["spec"]["roles"].items()}
        emulator.objects[CR, NS, "chat"].patch({"spec": {"roles": roles}})
        await eventually(
            lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"].deleted, what="the owned ones removed"
        )
        # The load moved to the referenced Deployments.
        await eventually(lambda: replicas(emulator, "user-decode") == 2, what="the reference took the load")
    assert emulator.objects[DEPLOYMENTS, NS, "chat-prefill-g0"].deleted


@pytest.mark.looptime
async def test_3_a_deployment_with_the_wanted_name_is_not_taken_without_its_owners_consent(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    """Item 3: a group restored without its status, over Deployments its earlier self left
    (--cascade=orphan), while Prometheus is down. It scaled one 6 -> 1 before."""
    leftover = deployment("chat-decode-g0", 6)
    emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"] = leftover
    load.decode_tps = None
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg())
        refused = await eventually(
            lambda: (c := condition(emulator.objects[CR, NS, "chat"], "Ready")) and c["reason"] == "NotOwned" and c,
            what="NotOwned",
        )
        assert ANNOTATION_ADOPT in refused["message"], "the message says how to hand it over"
        await eventually(lambda: events(emulator, "NotOwned"), what="a NotOwned Event")
        await asyncio.sleep(1.0)
        assert writes(emulator) == [], "nothing written while the name clash stands"
        # Its owner consents: the group takes it over, and a hold never lowers it.
        await api.patch(
            f"/apis/apps/v1/namespaces/{NS}/deployments/chat-decode-g0",
            {"metadata": {"annotations": {ANNOTATION_ADOPT: "chat"}}},
        )
        adopted = await eventually(
            lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["metadata"].get("ownerReferences"),
            what="adopted",
        )
        assert adopted[0]["uid"] == "uid-chat"
        await eventually(lambda: events(emulator, "Adopted"), what="an Adopted Event")
        await asyncio.sleep(1.0)
        assert replicas(emulator, "chat-decode-g0") == 6


@pytest.mark.looptime
async def test_3_a_name_clash_the_watch_has_not_shown_yet_is_never_written(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    """Item 3 when the watch lags: the group's first writes trust the watch (no Deployment there),
    the API server refuses the create of the taken name, and the tick reads again and plans again
    around it: refused, or placed under other names, but the taken Deployment is never written."""
    load.decode_tps = 190.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg("other"))
        await eventually(lambda: replicas(emulator, "other-decode-g0") == 2, what="the operator is running")
        # In the store directly: no watch event, so the operator's index does not have it.
        emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"] = deployment("chat-decode-g0", 6)
        await api.create(cr_path(), pdsg())
        await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"]["lastDecision"], what="a tick")
        await asyncio.sleep(3.0)
    creates = [r.data["metadata"]["name"] for r in writes(emulator) if r.method == "POST"]
    assert "chat-decode-g0" in creates, "the create trusted the watch, and the API server refused it"
    assert writes(emulator, "/deployments/chat-decode-g0") == [], "the taken Deployment is never written"
    taken = emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]
    assert (replicas(emulator, "chat-decode-g0"), taken["metadata"].get("ownerReferences")) == (6, None)


def bystander(name: str, labels: dict[str, str], owners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": labels, "ownerReferences": owners},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


@pytest.mark.looptime
async def test_4_soft_scale_in_drains_only_the_deployments_own_pods(
    emulator: ApiServerEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    """Item 4: a referenced Deployment selecting with matchExpressions, and pods of other apps with
    the same labels. Before, the selector was read as empty and every pod of the namespace matched."""
    decode = deployment("user-decode", 4)
    decode["spec"]["selector"] = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["user-decode"]}]}
    emulator.objects[DEPLOYMENTS, NS, "user-decode"] = decode
    emulator.objects[DEPLOYMENTS, NS, "user-prefill"] = deployment("user-prefill", 2)
    # A pod of another app, and one with the Deployment's labels that another ReplicaSet owns.
    foreign_rs = {"kind": "ReplicaSet", "name": "other-rs", "uid": "uid-other-rs", "controller": True}
    emulator.objects[PODS, NS, "web-0"] = bystander("web-0", {"app": "web"}, [])
    emulator.objects[PODS, NS, "lookalike-0"] = bystander("lookalike-0", {"app": "user-decode"}, [foreign_rs])
    load.decode_tps = 190.0  # 2 decode: two of user-decode's four pods drain
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        body = referencing()
        body["spec"]["behavior"]["scaleDown"]["drainSeconds"] = 3
        await api.create(cr_path(), body)
        drain = await eventually(lambda: emulator.objects[CR, NS, "chat"]["status"].get("drain"), what="a drain")
        [group] = [g for g in drain["groups"] if g["name"] == "user-decode"]
        assert len(group["pods"]) == 2
        assert all(p.startswith("user-decode-7d4f9b-") for p in group["pods"])
        await eventually(lambda: replicas(emulator, "user-decode") == 2, what="the scale-in", timeout=10)
    # The replicas are lowered at the first tick (interval 1 s) once the 3 s drain period is over.
    lowered = next(
        at
        for at, r in emulator.arrivals
        if r.method == "PATCH" and r.url.path.endswith("/deployments/user-decode") and r.data["spec"]["replicas"] == 2
    )
    assert 3 <= FAKE_EPOCH + lowered - drain["started"] < 3 + 1
    for name in ("web-0", "lookalike-0"):
        assert writes_to(emulator, name, "pods") == [], f"{name} was touched"
        assert LABEL_SERVING not in emulator.objects[PODS, NS, name]["metadata"]["labels"]


@pytest.mark.looptime
async def test_4_drained_pod_names_in_the_status_are_checked_before_they_are_touched(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    """Anyone who may write the status could name another app's pod in status.drain; putting it
    "back in serving" would be a write to a pod the group does not own."""
    emulator.objects[PODS, NS, "web-0"] = bystander("web-0", {"app": "web"}, [])
    load.decode_tps = 190.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg())
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="running")
        planted = {"started": 0, "groups": [{"name": "chat-decode-g0", "replicas": 2, "pods": ["web-0"]}]}
        emulator.objects[CR, NS, "chat"].patch({"status": {"drain": {**planted, "reason": "ScaledDown"}}})
        load.decode_tps = 990.0  # load comes back: the "drain" is cancelled, its pods put back
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 10, what="scaled out")
    assert writes_to(emulator, "web-0", "pods") == []


def creates(emulator: ApiServerEmulator) -> list[float]:
    """When the operator tried to create a Deployment (the loop's time)."""
    return [at for at, r in emulator.arrivals if r.method == "POST" and r.url.path.endswith("/deployments")]


@pytest.mark.looptime
async def test_5_a_persistent_api_error_is_reported_and_backed_off(
    emulator: ApiServerEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    """Item 5: a 403 on every Deployment write was retried every second with nothing reported."""
    emulator["post", kmock.resource(DEPLOYMENTS)] << 403
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg())
        failed = await eventually(
            lambda: (
                (c := condition(emulator.objects[CR, NS, "chat"], "Ready")) and c["reason"] == "ReconcileFailed" and c
            ),
            what="ReconcileFailed",
        )
        assert "403" in failed["message"]
        await eventually(lambda: events(emulator, "ReconcileFailed"), what="a ReconcileFailed Event")
        await eventually(lambda: len(creates(emulator)) >= 6, what="six attempts")
    attempts = creates(emulator)
    # error_retry_seconds 0.2, doubling: 0.2, 0.4, 0.8, 1.6, 3.2 s between attempts, not 0.2 each.
    # A tick's own work takes no fake time, save what looptime counts while a worker thread runs.
    gaps = [b - a for a, b in itertools.pairwise(attempts[:6])]
    assert gaps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2], abs=0.06), gaps
    assert all(r.method == "POST" for r in writes(emulator)), "nothing else written while it fails"
    kinds = {args[2] for method, args in metrics.calls if method == "count_reconcile_error"}
    assert kinds == {"api_403"}


@pytest.mark.looptime
async def test_6_two_groups_on_one_deployment_the_later_one_is_refused(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    emulator.objects[DEPLOYMENTS, NS, "user-prefill"] = deployment("user-prefill", 1)
    emulator.objects[DEPLOYMENTS, NS, "user-decode"] = deployment("user-decode", 2)
    load.decode_tps = 390.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        first = referencing("first")
        first["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        await api.create(cr_path(), first)
        await eventually(lambda: replicas(emulator, "user-decode") == 4, what="the first scales")
        second = referencing("second")
        second["metadata"]["creationTimestamp"] = "2026-06-01T00:00:00Z"
        await api.create(cr_path(), second)
        conflict = await eventually(
            lambda: (c := condition(emulator.objects[CR, NS, "second"], "Conflict")) and c["status"] == "True" and c,
            what="the second refused",
        )
        assert "PDServingGroup/first already scales Deployment user-decode" in conflict["message"]
        await asyncio.sleep(1.0)
        assert condition(emulator.objects[CR, NS, "first"], "Conflict")["status"] == "False"


@pytest.mark.looptime
async def test_6_a_reference_to_another_groups_deployment_is_refused(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    load.decode_tps = 190.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg("owner"))
        await eventually(lambda: replicas(emulator, "owner-decode-g0") == 2, what="the owner runs")
        thief = pdsg("thief")
        thief["spec"]["roles"]["decode"] = {"deploymentRef": {"name": "owner-decode-g0"}, "gpuTypes": ["H20"]}
        load.decode_tps = 990.0
        await api.create(cr_path(), thief)
        conflict = await eventually(
            lambda: (c := condition(emulator.objects[CR, NS, "thief"], "Ready")) and c["reason"] == "Conflict" and c,
            what="the thief refused",
        )
        assert "controlled by PDServingGroup/owner" in conflict["message"]
    assert not [r for r in writes_to(emulator, "owner-decode-g0") if r.data.get("spec", {}).get("replicas") == 10]


@pytest.mark.looptime
async def test_7_a_custom_query_cannot_read_another_namespace(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        query = 'sum(rate(vllm:generation_tokens_total{namespace="other-tenant"}[1m]))'
        await api.create(cr_path(), pdsg(metric={"engine": "custom", "query": query}))
        refused = await eventually(lambda: condition(emulator.objects[CR, NS, "chat"], "Ready"), what="refused")
        assert refused["reason"] == "NotAllowed"
        assert "not confined to namespace 'serving'" in refused["message"]
        await asyncio.sleep(0.5)
    assert load.reads == 0
    assert emulator.objects[CR, NS, "chat"]["status"].get("decodeTPS") is None


@pytest.mark.looptime
async def test_7_the_admin_may_let_a_namespace_read_cluster_wide(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    async with (
        controllers(emulator),
        operator_in_test_loop(emulator, load, metrics, config=OperatorConfig(cluster_wide_query_namespaces=(NS,))),
    ):
        query = 'sum(rate(vllm:generation_tokens_total{namespace="other-tenant"}[1m]))'
        await api.create(cr_path(), pdsg(metric={"engine": "custom", "query": query}))
        await eventually(lambda: load.reads > 0, what="read")
    assert load.scopes[-1].cluster_wide


@pytest.mark.looptime
@pytest.mark.parametrize("gpu_nodes", [[node("h20-0", "H20", "s2-a"), node("l20-0", "L20", "s2-a")]])
@pytest.mark.parametrize("granted", [False, True])
async def test_8_priority_crosses_namespaces_only_where_the_admin_grants_it(
    emulator: kmock.KubernetesEmulator,
    api: Api,
    load: Load,
    metrics: RecordingMetrics,
    gpu_nodes: list[dict[str, Any]],
    granted: bool,
) -> None:
    """Room for one group. Team a's group (default priority) is placed; its pods are not bound yet
    (the emulator binds none), so a higher priority could take the room. Team b then asks for the
    highest priority there is: without a grant it counts as 100, a tie, and a keeps the room."""
    grants = (PriorityGrant(namespaces=("team-b",), ceiling=1000000),) if granted else ()
    load.decode_tps = 80.0

    async def create(namespace: str, priority: int) -> None:
        body = pdsg("chat", priority=priority)
        body["metadata"] = {**body["metadata"], "namespace": namespace, "uid": f"uid-{namespace}"}
        for role in ("prefill", "decode"):
            body["spec"]["roles"][role]["gpusPerInstance"] = 8
        await api.create(cr_path(namespace=namespace), body)

    def unschedulable(namespace: str) -> bool:
        ready = condition(emulator.objects[CR, namespace, "chat"], "Ready")
        return ready is not None and ready["reason"] == "Unschedulable"

    config = OperatorConfig(priority_grants=grants)
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics, config=config):
        await create("team-a", 100)
        await eventually(lambda: replicas(emulator, "chat-decode-g0", "team-a") == 1, what="team a placed")
        await create("team-b", 1000000)
        loser = "team-a" if granted else "team-b"
        await eventually(lambda: unschedulable(loser), what=f"{loser} unschedulable")
        if granted:
            await eventually(lambda: replicas(emulator, "chat-decode-g0", "team-b") == 1, what="team b placed")
        else:
            await asyncio.sleep(1.0)
            assert replicas(emulator, "chat-decode-g0", "team-a") == 1
            assert not unschedulable("team-a")


@pytest.mark.looptime
async def test_9_a_partial_reading_does_not_scale_in(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    """Item 9: two of four decode pods stop reporting; their share vanished from the sum and the
    group scaled in."""
    load.decode_tps = 390.0
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), pdsg())
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 4, what="4 decode")
        load.decode_tps, load.reporting = 190.0, 2
        decision = await eventually(
            lambda: (
                (d := emulator.objects[CR, NS, "chat"]["status"]["lastDecision"])["reason"] == "MetricPartial" and d
            ),
            what="MetricPartial",
        )
        assert "only 2 of 4" in decision["message"]
        await asyncio.sleep(1.0)
        assert replicas(emulator, "chat-decode-g0") == 4
        # All four report again, at the low rate: now it scales in.
        load.reporting = 4
        await eventually(lambda: replicas(emulator, "chat-decode-g0") == 2, what="scale-in")
