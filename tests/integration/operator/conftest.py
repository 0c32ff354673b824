"""The real operator, in-process under kopf, against KMock's Kubernetes emulator over HTTP.

The emulator runs no controllers and assigns no uids, so :class:`ReplicaSetStandIn` plays the part
of the API server's uid assignment, the Deployment and ReplicaSet controllers and the kubelet: it
gives each Deployment a uid and one ReplicaSet it controls, makes the Deployment's pods exist (owned
by that ReplicaSet) and be ready, and removes surplus pods in the controller's order (not ready
first, then the lowest pod-deletion-cost). That order is the documented Kubernetes behaviour the
soft scale-in relies on.

Two ways to run the operator: :func:`start_operator` runs kopf in a thread of its own, on the wall
clock, as in production; :func:`operator_in_test_loop` runs it in the test's own event loop, so that
under ``@pytest.mark.looptime`` the operator, the emulator, the controllers' stand-in and the test
all share looptime's fake clock. Tests whose behaviour is about time (cooldowns, windows, drains,
backoff, refresh periods) use the second: their waits take no wall time and the ticks fall on exact
instants of the fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import signal
import threading
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import attrs
import jsonpatch
import kmock
import kopf
import pytest

from heteroscale.api.crd import GROUP, PLURAL, VERSION
from heteroscale.api.labels import ANNOTATION_DELETION_COST, LABEL_SERVING
from heteroscale.metrics.reader import Signals
from heteroscale.operator.handlers import Operator
from heteroscale.operator.signals import ReaderFactory

CR = f"{GROUP}/{VERSION}/{PLURAL}"
DEPLOYMENTS = "apps/v1/deployments"
REPLICASETS = "apps/v1/replicasets"
PODS = "v1/pods"
NODES = "v1/nodes"
EVENTS = "v1/events"
NS = "serving"
#: The User-Agent of the controllers' stand-in's requests.
STANDIN_AGENT = "replicaset-standin"


@dataclass
class Load:
    """Stands in for the Prometheus reader where a test needs a decode rate exactly at a value on a
    given tick (fault injection, restarts, DryRun, conflicts): a real Prometheus' rate() moves
    through its window over several ticks. The lifecycle test uses the real reader and server."""

    decode_tps: float | None = 50.0
    reporting: int | None = None
    """Decode pods the reading comes from; None: unknown (no partial-data check)."""
    prefill_queued: float | None = None
    prefill_rps: float | None = None
    """The prefill queue's readings (requests waiting, prefills ended per second); None: unread."""
    reads: int = 0
    scopes: list[Any] = field(default_factory=list)
    held: str | None = None
    """The group whose reads block until ``release`` is set: its tick caught half-way."""
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def read(self, spec: Any, scope: Any, decode: Any, prefill: Any, now: float) -> Signals:
        self.reads += 1
        self.scopes.append(scope)
        if self.held is not None and any(name.startswith(f"{self.held}-") for name in decode):
            self.holding.set()
            self.release.wait(timeout=120)
        age = 1.0 if self.decode_tps is not None else None
        problem = None if self.decode_tps is not None else "no data"
        return Signals(
            self.decode_tps,
            age,
            None,
            None,
            problem,
            decode_reporting=self.reporting,
            prefill_queued=self.prefill_queued,
            prefill_rps=self.prefill_rps,
        )


@dataclass
class RecordingMetrics:
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def __getattr__(self, method: str) -> Callable[..., None]:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *args: self.calls.append((method, args))

    def scale_events(self) -> list[tuple[Any, ...]]:
        return [args for method, args in self.calls if method == "count_scale_event"]


@dataclass
class ReplicaSetStandIn:
    emulator: kmock.KubernetesEmulator
    removed: list[tuple[str, str | None]] = field(default_factory=list)
    """(pod, its serving label when it was removed)."""
    _names: itertools.count[int] = field(default_factory=itertools.count)

    def step(self) -> list[tuple[str, str, dict[str, Any]]]:
        """One pass of the controllers. Pods and ReplicaSets are written to the store directly (no
        watcher of the operator's needs their events); what it changes on Deployments is returned as
        (namespace, name, patch), for :meth:`run` to send through the API like any controller, so
        the operator's watch of Deployments sees it."""
        changed: list[tuple[str, str, dict[str, Any]]] = []
        objects = self.emulator.objects
        for key in [k for k in objects if str(k[0]) == str(kmock.resource(DEPLOYMENTS))]:
            deployment = objects[key]
            if deployment.deleted:
                continue
            _, namespace, name = key
            replica_set = self._replica_set(namespace, name, deployment)
            want = deployment["spec"].get("replicas", 0)
            pods = [
                objects[k]
                for k in objects
                if str(k[0]) == str(kmock.resource(PODS))
                and k[1] == namespace
                and not objects[k].deleted
                and any(
                    o.get("uid") == replica_set["metadata"]["uid"]
                    for o in objects[k]["metadata"].get("ownerReferences", [])
                )
            ]
            for _ in range(want - len(pods)):
                # Named as the ReplicaSet controller names them (<deployment>-<hash>-<suffix>), which
                # is what the metrics queries match pods of a Deployment by.
                pod_name = f"{name}-7d4f9b-{next(self._names):05d}"
                labels = dict(deployment["spec"]["template"].get("metadata", {}).get("labels", {}))
                objects[PODS, namespace, pod_name] = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod_name,
                        "namespace": namespace,
                        "uid": f"uid-pod-{pod_name}",
                        "labels": labels,
                        "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "ownerReferences": [owner("ReplicaSet", replica_set)],
                    },
                    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
                }
            surplus = len(pods) - want
            if surplus > 0:

                def cost(pod: Any) -> int:
                    return int((pod["metadata"].get("annotations") or {}).get(ANNOTATION_DELETION_COST, "0"))

                for pod in sorted(pods, key=cost)[:surplus]:
                    self.removed.append((pod["metadata"]["name"], pod["metadata"]["labels"].get(LABEL_SERVING)))
                    pod.delete()
            # Ready as the kubelet reports it: a test may mark a pod not ready (a stuck pod).
            ready = sum(1 for pod in pods if not pod.deleted and pod_ready(pod)) + max(0, want - len(pods))
            if deployment.get("status", {}).get("readyReplicas") != ready:
                changed.append((namespace, name, {"status": {"replicas": want, "readyReplicas": ready}}))
        return changed

    def _replica_set(self, namespace: str, deployment_name: str, deployment: Any) -> Any:
        """The one ReplicaSet the Deployment controls (a template change would make another; the
        tests need only one)."""
        objects = self.emulator.objects
        name = f"{deployment_name}-7d4f9b"
        key = (REPLICASETS, namespace, name)
        existing = next(
            (
                objects[k]
                for k in objects
                if str(k[0]) == str(kmock.resource(REPLICASETS))
                and k[1:] == (namespace, name)
                and not objects[k].deleted
            ),
            None,
        )
        if existing is not None:
            return existing
        labels = dict(deployment["spec"]["template"].get("metadata", {}).get("labels", {}))
        objects[key] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": f"uid-rs-{namespace}-{name}",
                "labels": labels,
                "ownerReferences": [owner("Deployment", deployment)],
            },
            "spec": {"selector": plain(deployment.raw["spec"]["selector"])},
        }
        return objects[key]

    async def run(self) -> None:
        # Its own User-Agent, so the tests tell its writes from the operator's (see :func:`writes`).
        agent = {"User-Agent": STANDIN_AGENT}
        async with aiohttp.ClientSession(base_url=str(self.emulator.url), headers=agent) as session:
            while True:
                for namespace, name, patch in self.step():
                    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
                    headers = {"Content-Type": "application/merge-patch+json"}
                    async with session.patch(path, json=patch, headers=headers) as response:
                        response.release()
                await asyncio.sleep(0.05)


def pod_ready(pod: Any) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def plain(value: Any) -> Any:
    """The emulator's stored views as plain JSON values."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def owner(kind: str, obj: Any) -> dict[str, Any]:
    """A controller ownerReference to ``obj``, as the Deployment and ReplicaSet controllers write it."""
    api = "apps/v1"
    return {
        "apiVersion": api,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
    }


def node(name: str, gpu: str, s2: str, s1: str = "s1-a", gpus: int = 8) -> dict[str, Any]:
    """A Ready GPU node labelled as the GPU operator and the switch-tier labelling would."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "nvidia.com/gpu.product": gpu,
                "heteroscale.io/s0": f"{name}-s0",
                "heteroscale.io/s1": s1,
                "heteroscale.io/s2": s2,
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "96", "memory": "1Ti", "nvidia.com/gpu": str(gpus)},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


#: Room for every test's groups in one S2 domain: 16 H20 and 16 L20 GPUs.
DEFAULT_NODES = [node(f"h20-{i}", "H20", "s2-a") for i in range(2)] + [
    node(f"l20-{i}", "L20", "s2-a") for i in range(2)
]


@attrs.define(kw_only=True)
class ApiServerEmulator(kmock.KubernetesEmulator):
    """KMock's emulator, plus what an API server does to every object it writes: a uid and a
    creation time on creation, a new ``resourceVersion`` on every write through the API, and a
    write that names a ``resourceVersion`` other than the stored one refused with 409 Conflict
    (optimistic concurrency; KMock stores whatever version it is given). Without a uid from the
    start, the uid a controller adds later looks to kopf like another object, and an index would
    keep both. A JSON patch whose ``test`` op fails is answered 422 Invalid, as an API server does
    (KMock answers 500). It also notes when each request arrived.

    A test that changes the store directly (``emulator.objects[...]``) changes no version and
    sends no watch event: that is how a test makes the operator's watch lag behind a change."""

    arrivals: list[tuple[float, kmock.Request]] = attrs.field(factory=list, init=False)
    """(the loop's time, request) of every request, in order: on the fake clock under looptime."""
    versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1000), init=False)
    refusing: Callable[[kmock.Request], bool] = attrs.field(default=lambda request: False, init=False)
    """Requests for which this is true are answered 503 and change nothing: a write that never
    reached the store (KMock's own error reactions answer after the emulator applied the write)."""

    async def _handle(self, request: kmock.Request) -> Any:
        self.arrivals.append((asyncio.get_running_loop().time(), request))
        if self.refusing(request):
            raise kmock.KubernetesError(status=503, reason="ServiceUnavailable", message="refused by the test")
        writes = request.action in (kmock.action.CREATE, kmock.action.UPDATE)
        if writes and isinstance(request.data, dict):
            metadata = request.data.setdefault("metadata", {})
            if request.action == kmock.action.CREATE:
                metadata.setdefault("uid", str(uuid.uuid4()))
                metadata.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            else:
                self._precondition(request, metadata.get("resourceVersion"))
            metadata["resourceVersion"] = str(next(self.versions))
        return await super()._handle(request)

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        # A JSON patch whose "test" op fails (kopf tests the resourceVersion it saw before it
        # patches finalizers) is answered 422 Invalid by a real API server, and kopf then patches
        # again on its next cycle. KMock answers 500, which kopf retries with the same stale test
        # nine times over many seconds: a status write of ours between kopf's read and its patch
        # then held a deletion up past a test's timeout.
        if isinstance(exc, jsonpatch.JsonPatchTestFailed):
            exc = kmock.KubernetesError(
                status=422, reason="Invalid", message=f"the server rejected our request due to an error: {exc}"
            )
        return await super()._render_error(exc)

    def _precondition(self, request: kmock.Request, expected: str | None) -> None:
        if expected is None or request.resource is None or request.name is None:
            return
        try:
            stored = self.objects[request.resource, request.namespace, request.name]
        except KeyError:
            return  # KMock answers 404 itself
        if stored.deleted:
            return
        if (stored.get("metadata") or {}).get("resourceVersion") != expected:
            raise kmock.KubernetesError(
                status=409,
                reason="Conflict",
                message="the object has been modified; please apply your changes to the latest version and try again",
            )


@pytest.fixture
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    """Every operator test's emulator is an :class:`ApiServerEmulator`."""
    return {**kmock_options, "cls": ApiServerEmulator}


@pytest.fixture
def gpu_nodes() -> list[dict[str, Any]]:
    """The Node objects the emulator starts with (a test may override this fixture)."""
    return DEFAULT_NODES


@pytest.fixture
def emulator(kmock: kmock.KubernetesEmulator, gpu_nodes: list[dict[str, Any]]) -> kmock.KubernetesEmulator:
    kmock.resources.load_bundled()
    for body in gpu_nodes:
        kmock.objects[NODES, None, body["metadata"]["name"]] = body
    kmock.resources[CR] = kmock.ResourceInfo(
        kind="PDServingGroup",
        singular="pdservinggroup",
        namespaced=True,
        subresources={"status"},
        verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
    )
    return kmock


@pytest.fixture
def load() -> Load:
    return Load()


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@contextlib.asynccontextmanager
async def controllers(emulator: kmock.KubernetesEmulator) -> AsyncIterator[ReplicaSetStandIn]:
    """The controllers' stand-in, running in the current event loop until the block ends."""
    standin = ReplicaSetStandIn(emulator)
    task = asyncio.create_task(standin.run())
    try:
        yield standin
    finally:
        stopped(task)


def stopped(task: asyncio.Task[None]) -> None:
    """Stop a stand-in's loop, raising what ended it early: a stand-in that died would otherwise
    leave a test waiting for pods that nothing creates or removes any more."""
    if task.done():
        task.result()
    task.cancel()


@pytest.fixture
async def cluster(emulator: kmock.KubernetesEmulator) -> AsyncIterator[ReplicaSetStandIn]:
    """The stand-in on the wall clock. Fixtures run before looptime starts the test's fake clock,
    so a test on that clock starts it with :func:`controllers` in its own body instead."""
    async with controllers(emulator) as standin:
        yield standin


@pytest.fixture
async def api(emulator: kmock.KubernetesEmulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(base_url=str(emulator.url)) as session:
        yield Api(session)


@dataclass
class Api:
    session: aiohttp.ClientSession

    async def create(self, path: str, body: dict[str, Any]) -> None:
        async with self.session.post(path, json=body) as response:
            assert response.status < 300, await response.text()

    async def delete(self, path: str) -> None:
        async with self.session.delete(path) as response:
            assert response.status < 300, await response.text()

    async def patch(self, path: str, body: dict[str, Any]) -> None:
        """A merge patch, as ``kubectl patch --type merge`` (or ``kubectl annotate``) sends it."""
        headers = {"Content-Type": "application/merge-patch+json"}
        async with self.session.patch(path, json=body, headers=headers) as response:
            assert response.status < 300, await response.text()


@dataclass
class Running:
    operator: Operator
    stop: threading.Event
    thread: threading.Thread

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.to_thread(self.thread.join, 30)
        assert not self.thread.is_alive(), "the operator did not stop"


def _operator(
    emulator: kmock.KubernetesEmulator, load: Load | ReaderFactory, metrics: RecordingMetrics, **options: Any
) -> Operator:
    """The operator's handlers, logged in to the emulator, retrying a failed tick after 0.2 s; a
    tick under way when its loop stops has 2 s to finish."""
    return Operator(
        (lambda source: load) if isinstance(load, Load) else load,
        metrics,
        connect=lambda **_: kopf.ConnectionInfo(server=str(emulator.url)),
        **{"error_retry_seconds": 0.2, "stop_grace_seconds": 2.0, **options},
    )


def start_operator(
    emulator: kmock.KubernetesEmulator, load: Load | ReaderFactory, metrics: RecordingMetrics, **options: Any
) -> Running:
    """Run kopf in its own thread and loop, as in production, on the wall clock."""
    operator = _operator(emulator, load, metrics, **options)
    stop = threading.Event()

    def main() -> None:
        asyncio.run(kopf.operator(registry=operator.registry, clusterwide=True, standalone=True, stop_flag=stop))

    thread = threading.Thread(target=main, name="operator", daemon=True)
    thread.start()
    return Running(operator, stop, thread)


@pytest.fixture
async def operator(
    emulator: kmock.KubernetesEmulator, load: Load, metrics: RecordingMetrics
) -> AsyncIterator[Operator]:
    running = start_operator(emulator, load, metrics)
    yield running.operator
    await running.shutdown()


#: The operator's ``now`` at the fake clock's zero (2026-01-01T00:00:00Z): a fixed instant, so a
#: test on looptime's clock sees the same timestamps on every run.
FAKE_EPOCH = 1_767_225_600.0

#: Set in the task that runs kopf in the test's loop, and so in every task kopf spawns from it.
_SPAWNED_BY_OPERATOR: contextvars.ContextVar[bool] = contextvars.ContextVar("spawned_by_operator", default=False)


#: The tasks kopf spawned in the test's loop (the task factory hands back futures, in its types).
_Spawned = weakref.WeakSet[asyncio.Future[Any]]


class _NotSpawnedBy(Collection[asyncio.Task[Any]]):
    """Every task but those in ``spawned``: kopf's ``run_tasks(ignored=...)`` cancels the tasks that
    appeared while the operator ran unless they are "ignored"; in the test's loop those include the
    emulator's request handlers and the stand-in, which must outlive the operator (a restart test
    runs a second one against them)."""

    def __init__(self, spawned: _Spawned) -> None:
        self.spawned = spawned

    def __contains__(self, task: object) -> bool:
        return task not in self.spawned

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(())

    def __len__(self) -> int:
        return 0


@contextlib.contextmanager
def _recording_spawned(loop: asyncio.AbstractEventLoop) -> Iterator[_Spawned]:
    """Record every task created from a context where :data:`_SPAWNED_BY_OPERATOR` is set (Python
    3.11 has no ``Task.get_context()`` to ask afterwards)."""
    spawned: _Spawned = weakref.WeakSet()
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> asyncio.Future[Any]:
        task = previous(loop, coro, **kwargs) if previous is not None else asyncio.Task(coro, loop=loop, **kwargs)
        if _SPAWNED_BY_OPERATOR.get():
            spawned.add(task)
        return task

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    try:
        yield spawned
    finally:
        loop.set_task_factory(previous)


@contextlib.asynccontextmanager
async def operator_in_test_loop(
    emulator: kmock.KubernetesEmulator, load: Load | ReaderFactory, metrics: RecordingMetrics, **options: Any
) -> AsyncIterator[Operator]:
    """The operator under kopf in the test's own event loop, stopped when the block ends.

    Under ``@pytest.mark.looptime`` everything in that loop runs on its fake clock: kopf's daemon
    waits, the API client's timeouts and backoff, the emulator, the stand-in and the test's own
    waits. The operator's ``now`` (cooldowns, windows, drains, the status refresh) is read from the
    same clock, so a 40 s window takes 40 fake seconds and no wall time. kopf runs from the public
    ``spawn_tasks``/``run_tasks`` pair that ``kopf.operator`` is made of, told to leave alone every
    task it did not spawn (see :class:`_NotSpawnedBy`)."""
    loop = asyncio.get_running_loop()
    operator = _operator(emulator, load, metrics, clock=lambda: FAKE_EPOCH + loop.time(), **options)
    stop = asyncio.Event()

    async def run(spawned: _Spawned) -> None:
        _SPAWNED_BY_OPERATOR.set(True)
        tasks = await kopf.spawn_tasks(registry=operator.registry, clusterwide=True, standalone=True, stop_flag=stop)
        await kopf.run_tasks(tasks, ignored=_NotSpawnedBy(spawned))

    with _recording_spawned(loop) as spawned:
        running = asyncio.create_task(run(spawned))
        try:
            yield operator
        finally:
            stop.set()
            await asyncio.wait_for(running, 30)
            # kopf handles SIGINT/SIGTERM in the loop of the main thread; give them back to pytest.
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


async def eventually(check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll until ``check()`` is truthy (and return it) or fail with the last value seen. Timed on
    the loop's clock: the wall clock in a plain test, the fake one under looptime."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    value = None
    while loop.time() < deadline:
        try:
            value = check()
        except (KeyError, ValueError, TypeError):
            value = None
        if value:
            return value
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what or check}: last {value!r}")


def template(role: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": f"chat-{role}"}},
        "spec": {"containers": [{"name": "engine", "image": "vllm/vllm-openai:v0.6.0"}]},
    }


def pdsg(name: str = "chat", **spec: Any) -> dict[str, Any]:
    """A PDServingGroup with short windows (seconds, not minutes) so a test sees a whole cycle."""
    body: dict[str, Any] = {
        "mode": "Enforce",
        "ratio": {"prefill": 1, "decode": 2},
        "decode": {"targetTPSPerInstance": {"H20": 100}, "minReplicas": 1, "maxReplicas": 10},
        "prefill": {"minReplicas": 1, "maxReplicas": 10},
        "behavior": {
            "intervalSeconds": 1,
            "scaleUp": {"cooldownSeconds": 0},
            "scaleDown": {
                "cooldownSeconds": 0,
                "stabilizationWindowSeconds": 3,
                "maxStepPercent": 100,
                "drainSeconds": 1,
            },
        },
        "roles": {
            "prefill": {"template": template("prefill"), "gpuTypes": ["L20"], "gpusPerInstance": 1},
            "decode": {"template": template("decode"), "gpuTypes": ["H20"], "gpusPerInstance": 1},
        },
    }
    body.update(spec)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PDServingGroup",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "resourceVersion": "1", "generation": 1},
        "spec": body,
    }


def cr_path(name: str = "", namespace: str = NS) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}" + (f"/{name}" if name else "")


def condition(obj: Any, type_: str) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def events(emulator: kmock.KubernetesEmulator, reason: str | None = None) -> list[dict[str, Any]]:
    """Events the operator posted. Read from the requests, not the stored objects: kopf posts Events
    with ``generateName``, which the emulator does not expand, so it keeps only the first one."""
    return [
        request.data
        for request in list(emulator)
        if request.method == "POST" and request.url.path.endswith("/events") and isinstance(request.data, dict)
        if reason is None or request.data.get("reason") == reason
    ]


def deployment(name: str, replicas: int = 2) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # What the API server would have given it; the tests put it in the store directly.
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": template("x")["spec"]},
        },
        "status": {"readyReplicas": replicas},
    }


def referencing(name: str = "chat", **spec: Any) -> dict[str, Any]:
    body = pdsg(name, **spec)
    body["spec"]["roles"] = {
        "prefill": {"deploymentRef": {"name": "user-prefill"}, "gpuTypes": ["L20"]},
        "decode": {"deploymentRef": {"name": "user-decode"}, "gpuTypes": ["H20"]},
    }
    return body


def writes(emulator: kmock.KubernetesEmulator, kind: str = "/deployments") -> list[Any]:
    """The writes of the operator (not of the controllers' stand-in) to objects of ``kind``."""
    return [
        r
        for r in list(emulator)
        if r.method in {"POST", "PATCH", "PUT", "DELETE"}
        and kind in r.url.path
        and r.headers.get("User-Agent") != STANDIN_AGENT
    ]
