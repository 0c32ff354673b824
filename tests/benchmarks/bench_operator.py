"""How many PDServingGroups one operator replica reconciles per 15 s period against the emulator.

Run on demand: ``python -m tests.benchmarks.bench_operator [groups ...]`` (default 50 200 500 1000).
Per size: N PDServingGroups with ``intervalSeconds: 15`` on a cluster of labelled GPU nodes, created
over one period so that their ticks spread over it, as they do once an operator has run a while. The
operator creates every group's first Deployments (warm-up; the Deployments are then marked ready as
the ReplicaSet controller would), a period passes (the groups' ticks settle at their phases), then
the decode rate jumps so that every group must scale up.
Printed, over the two periods after the jump:

- ticks completed per period: every group ticks once a period, so this must reach N;
- the p50/p99 duration of a tick;
- how many groups scaled within one period of the jump and within two (a Deployment patched, or
  created where placement puts the surge in a new deployment group), how many by their first tick
  after the jump (the ticks are spread over the period, so a group that ticked just before the
  jump sees it one period later, and its write lands a moment after one period), and the p50/p99
  time from the tick's start to its first such write;
- the CPU seconds per period of the operator's process and of the emulator's, how late each one's event loop
  woke a sleeper (p99), and placement's runs.

The target is 1,000 groups per period on the machine the benchmark runs on; the operator and the
emulator share its cores.

The API server is KMock's emulator in a process of its own, as a real API server is; the operator
runs in this process under kopf. Two things of the emulator's that a test needs and a benchmark does
not are changed in :class:`IndexedEmulator` (KMock's docstring invites subclassing for such cases):

- KMock keeps every request for assertions and matches each new one against its reactions by
  iterating that whole history, so a request costs O(requests so far); here the history shows only
  the request being served.
- A GET or PATCH by name scans every stored object; here it is a dict lookup by key, as an API server
  serves it from its watch cache.

It also names objects created with ``metadata.generateName`` (kopf's Events), and answers a list
with ``limit`` in pages, which KMock does not.
Everything else (watch streams, merge patches, the object store) is KMock's own. The ready marker in
the emulator's process plays the ReplicaSet controller, as the integration tests' stand-in does.
``--profile`` prints the top functions (cProfile) of the operator's loop and of the emulator's process.
``--restart`` then stops the operator and starts a new one on the same cluster (a failover, an
upgrade's new pod) and prints how long until every group ticked again, and the CPU that took.
``--pods=N`` puts N pods of other workloads in the cluster (about 3.5 KB of JSON each), which the
operator's pod watch lists.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import cProfile
import io
import itertools
import multiprocessing
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import kmock
import kopf

from heteroscale.metrics.reader import Signals
from heteroscale.operator import apply, collector, planbook, reconcile
from heteroscale.operator.handlers import Operator
from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NODES,
    PODS,
    ApiServerEmulator,
    RecordingMetrics,
    cr_path,
    node,
    pdsg,
    plain,
)

PERIOD = 15.0
DEPLOYMENT_RESOURCE = kmock.resource(DEPLOYMENTS)
GROUPS_PER_DOMAIN = 8


#: The request the current task is serving: KMock's "history" as IndexedEmulator shows it.
_serving: contextvars.ContextVar[kmock.Request] = contextvars.ContextVar("serving")


class _Serving(list[kmock.Request]):
    """KMock's request history reduced to the request being served. KMock matches a request to its
    reactions by iterating the history through each reaction's filters and looking for the request
    by identity; every request is served in a task of its own, so a context variable finds it."""

    def append(self, request: kmock.Request) -> None:
        pass

    def __iter__(self) -> Iterator[kmock.Request]:
        request = _serving.get(None)
        return iter(() if request is None else (request,))


class IndexedEmulator(ApiServerEmulator):
    """The tests' emulator (uids on creation) with O(1) requests by name and no request history
    (see the module doc)."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._requests = _Serving()
        self.names = itertools.count()
        self.written: set[tuple[Any, ...]] = set()
        """Deployments created or patched since the ready marker last looked (a watch's worth)."""
        self.first = 0
        """First Deployments (deployment group g0) created so far."""
        self.pages: dict[str, list[Any]] = {}
        """What is left of each paged list, by its ``continue`` token."""
        self.served: collections.Counter[str] = collections.Counter()
        """Requests served, by verb, resource (and subresource) and error: what the operator asks."""

    async def _handle(self, request: kmock.Request) -> Any:
        _serving.set(request)
        metadata = request.data.get("metadata", {}) if isinstance(request.data, dict) else {}
        if request.action == kmock.action.CREATE and metadata.get("generateName") and not metadata.get("name"):
            metadata["name"] = f"{metadata['generateName']}{next(self.names)}"
        verb = request.action.name.lower() if request.action else request.method.name.lower()
        kind = f"{verb} {request.resource.plural if request.resource else request.url.path}"
        kind += f"/{request.subresource}" if request.subresource else ""
        try:
            answer = await super()._handle(request)
        except kmock.KubernetesError as error:
            self.served[f"{kind} ({type(error).__name__.removeprefix('Kubernetes').removesuffix('Error')})"] += 1
            raise
        self.served[kind] += 1
        if request.resource == DEPLOYMENT_RESOURCE and request.action in {kmock.action.CREATE, kmock.action.UPDATE}:
            name = request.name or metadata.get("name")
            self.written.add((request.resource, request.namespace or metadata.get("namespace"), name))
            if request.action == kmock.action.CREATE and str(name).endswith("-g0"):
                self.first += 1
        return answer

    async def _serve_list(self, request: kmock.Request) -> dict[str, Any]:
        """A list in pages of ``limit`` objects with a ``continue`` token, as an API server answers
        it (KMock answers every object at once): the list of the first page, the rest kept for the
        tokens that follow."""
        limit, token = int(request.url.query.get("limit") or 0), request.url.query.get("continue")
        items = self.pages.pop(token) if token else (await super()._serve_list(request))["items"]
        meta: dict[str, Any] = {"resourceVersion": "..."}
        if limit and len(items) > limit:
            meta["continue"] = f"page-{next(self.names)}"
            items, self.pages[meta["continue"]] = items[:limit], items[limit:]
        return {"metadata": meta, "items": items}

    def _KubernetesEmulator__get_objs(self, request: kmock.Request, strict: bool) -> list[kmock.Object]:
        if strict and request.name is not None:
            found = self.objects._objects.get((request.resource, request.namespace, request.name))
            return [] if found is None else [found]
        return self._KubernetesEmulator__get_objs_scan(request, strict)  # type: ignore[no-any-return]

    _KubernetesEmulator__get_objs_scan = kmock.KubernetesEmulator._KubernetesEmulator__get_objs  # type: ignore[attr-defined]


async def mark_ready(emulator: IndexedEmulator) -> int:
    """What the ReplicaSet controller would report: every written Deployment's pods ready,
    announced to watchers as the API server would (the operator reads Deployments from its watch).
    Only the Deployments written since the last call, as a controller driven by its watch: a scan
    of every Deployment four times a second would load the emulator with O(groups) work per call.
    Returns how many first Deployments (deployment group g0) exist."""
    written, emulator.written = emulator.written, set()
    for key in written:
        deployment = emulator.objects._objects.get(key)
        if deployment is None or deployment.deleted:
            continue
        raw = deployment.raw
        want = raw["spec"].get("replicas", 0)
        if (raw.get("status") or {}).get("readyReplicas") != want:
            deployment.patch({"status": {"replicas": want, "readyReplicas": want}})
            event = {"type": "MODIFIED", "object": plain(deployment.raw)}
            await emulator._buses[DEPLOYMENT_RESOURCE].put(event)
    return emulator.first


def serve(groups: int, pipe: Connection, profile: bool, pods: int = 0) -> None:
    """The emulator's process: the API server plus the ReplicaSet controller's ready marker."""
    profiler = cProfile.Profile()
    if profile:
        profiler.enable()
    asyncio.run(_serve(groups, pipe, pods))
    if profile:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print("The emulator's process:\n" + out.getvalue(), flush=True)


async def _serve(groups: int, pipe: Connection, pods: int = 0) -> None:
    async with IndexedEmulator() as emulator, kmock.Server(emulator):
        emulator.resources.load_bundled()
        emulator.resources[CR] = kmock.ResourceInfo(
            kind="PDServingGroup",
            namespaced=True,
            subresources={"status"},
            verbs={"get", "list", "watch", "patch", "create"},
        )
        # One H20 and one L20 node (8 GPUs each) per group, GROUPS_PER_DOMAIN groups per S2 domain:
        # each group's surge (5 decode + 3 prefill of 1 GPU) fits.
        for i in range(groups):
            domain = f"s2-{i // GROUPS_PER_DOMAIN}"
            for gpu in ("H20", "L20"):
                body = node(f"{gpu.lower()}-{i}", gpu, domain, s1=f"s1-{i // GROUPS_PER_DOMAIN}")
                emulator.objects[NODES, None, body["metadata"]["name"]] = body
        # Pods of other workloads, as a real cluster has: the operator's pod watch lists them all.
        for i in range(pods):
            body = web_pod(i)
            emulator.objects[PODS, "other", body["metadata"]["name"]] = body
        pipe.send(str(emulator.url))
        # The groups are created over one period, so that their ticks spread over it as they do
        # once an operator has run for a while; created all at once, every period would start
        # with a burst of N ticks, and a 15 s window would count each group once or twice.
        async with aiohttp.ClientSession(base_url=str(emulator.url)) as session:
            begin = time.monotonic()
            for i in range(groups):
                body = pdsg(f"g{i}")
                body["spec"]["behavior"]["intervalSeconds"] = int(PERIOD)
                async with session.post(cr_path(), json=body) as response:
                    assert response.status < 300, await response.text()
                await asyncio.sleep(max(0.0, begin + PERIOD * (i + 1) / groups - time.monotonic()))
        announced = False
        lags: list[float] = []
        probe = asyncio.create_task(lagging(lags))
        while True:
            if pipe.poll():
                if pipe.recv() == "stop":
                    probe.cancel()
                    break
                # Asked for its CPU time, the requests served so far and its loop's lags since.
                pipe.send((time.process_time(), dict(emulator.served), lags[:]))
                lags.clear()
            exist = await mark_ready(emulator)
            if exist == 2 * groups and not announced:
                pipe.send("ready")
                announced = True
            await asyncio.sleep(0.25)


async def measure(groups: int, profile: bool, restart: bool = False, pods: int = 0) -> str:
    ticks: list[float] = []
    durations: list[float] = []
    tick_to_patch: dict[str, float] = {}
    wrote: dict[str, float] = {}
    started: dict[str, float] = {}
    first_after: dict[str, float] = {}  # each group's first tick after the jump, when it started
    at_first: set[str] = set()  # groups that scaled no later than at that tick
    jumped: list[float] = []
    original_patch, original_create, original_tick = (
        apply.Apply._patch_deployment,
        apply.Apply._create,
        reconcile._tick,
    )

    runs: list[tuple[float, float, int, bool]] = []  # (start, seconds, groups planned, all of them) per run
    original_run = planbook._run

    def timed_run(ledger: Any, *args: Any, **kwargs: Any) -> Any:
        begin = time.monotonic()
        kept, planned = original_run(ledger, *args, **kwargs)
        runs.append((begin, time.monotonic() - begin, len(planned), kept is not ledger))
        return kept, planned

    def written(name: str) -> None:
        if name not in wrote:
            wrote[name] = time.monotonic()
            tick_to_patch[name] = wrote[name] - started[name]
            if started[name] <= first_after.get(name, started[name]):
                at_first.add(name)

    async def timed_patch(self: Any, deployment: str, patch: Any) -> None:
        await original_patch(self, deployment, patch)
        written(self.name)

    async def timed_create(self: Any, group: Any, template: Any) -> None:
        await original_create(self, group, template)
        written(self.name)

    async def timed_tick(ctx: Any, namespace: str, name: str, *args: Any) -> int:
        started[name] = time.monotonic()
        if jumped and name not in first_after:
            first_after[name] = started[name]
        try:
            return await original_tick(ctx, namespace, name, *args)
        finally:
            ticks.append(time.monotonic())
            durations.append(ticks[-1] - started[name])

    decode_tps = 80.0

    class Rate:
        """The decode rate every group reads (a stand-in: no Prometheus in the loop being measured)."""

        def read(self, spec: Any, scope: Any, decode: Any, prefill: Any, now: float) -> Signals:
            return Signals(decode_tps, 1.0, None, None, None)

    apply.Apply._patch_deployment = timed_patch  # type: ignore[method-assign]
    apply.Apply._create = timed_create  # type: ignore[method-assign]
    reconcile._tick = timed_tick  # type: ignore[assignment]
    planbook._run = timed_run
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(groups, theirs, profile, pods), daemon=True
    )
    server.start()
    profiler = cProfile.Profile()
    rss_before = rss_mib()
    try:
        url = await asyncio.to_thread(ours.recv)
        operator = Operator(lambda s: Rate(), RecordingMetrics(), connect=lambda **_: kopf.ConnectionInfo(server=url))
        stop = asyncio.Event()
        begin = time.monotonic()
        running = asyncio.create_task(
            kopf.operator(registry=operator.registry, clusterwide=True, standalone=True, stop_flag=stop)
        )
        # Warm-up: every group's first two Deployments exist and are ready.
        await asyncio.wait_for(asyncio.to_thread(ours.recv), timeout=600)
        warm = time.monotonic() - begin
        # A period more, for the last creations' ready status and for the groups' ticks to settle
        # at their phases (a group's first tick is at once, its next at its phase): the jump
        # comes to an operator that has run a while.
        await asyncio.sleep(PERIOD)
        ticks.clear()
        durations.clear()
        tick_to_patch.clear()
        wrote.clear()
        at_first.clear()
        if profile:
            profiler.enable()
        decode_tps = 450.0
        jump, cpu = time.monotonic(), time.process_time()
        jumped.append(jump)
        server_cpu, served, _ = await asyncio.to_thread(ask_cpu, ours)
        lags: list[float] = []
        probe = asyncio.create_task(lagging(lags))
        await asyncio.sleep(2 * PERIOD)
        cpu = (time.process_time() - cpu) / 2
        server_cpu_after, served_after, server_lags = await asyncio.to_thread(ask_cpu, ours)
        probe.cancel()
        server_cpu = (server_cpu_after - server_cpu) / 2
        requests = served_after - served
        profiler.disable()
        per_period = sum(1 for t in ticks if t - jump <= 2 * PERIOD) / 2
        latencies = sorted(tick_to_patch.values())
        planning = [run[1:] for run in runs if run[0] >= jump]
        in_one = sum(1 for when in wrote.values() if when - jump <= PERIOD)
        per_group_kib = (rss_mib() - rss_before) * 1024 / groups
        stop.set()
        await asyncio.wait_for(running, 120)
        if restart:
            restarted = await _restart(url, groups, started)
    finally:
        apply.Apply._patch_deployment = original_patch  # type: ignore[method-assign]
        apply.Apply._create = original_create  # type: ignore[method-assign]
        reconcile._tick = original_tick  # type: ignore[assignment]
        planbook._run = original_run
        ours.send("stop")
        server.join(30)
    line = f"{groups:>5} groups: warm-up {warm:5.1f}s; {per_period:6.0f} ticks per {PERIOD:.0f}s period"
    line += f" (tick p50 {quantile(durations, 50):5.0f} ms, p99 {quantile(durations, 99):5.0f} ms); scaled "
    line += f"within one period {in_one:>5}, within two {len(latencies):>5}, by their first tick after the jump "
    line += f"{len(at_first):>5}"
    line += f"; tick→write p50 {quantile(latencies, 50):5.0f} ms, p99 {quantile(latencies, 99):5.0f} ms"
    line += f"; CPU per period: operator {cpu:4.1f}s, emulator {server_cpu:4.1f}s"
    line += f"; event-loop lag p99: operator {quantile(lags, 99):.0f} ms, emulator {quantile(server_lags, 99):.0f} ms"
    line += f"; operator memory {per_group_kib:.0f} KiB per group"
    if planning:
        seconds = [run[0] for run in planning]
        line += f"; {len(planning)} placement runs ({sum(run[2] for run in planning)} of every group)"
        line += f" planning {sum(run[1] for run in planning)} groups, {sum(seconds):.1f}s in all"
        line += f", longest {max(seconds):.2f}s"
    if restart:
        line += f"\n  restart: {restarted}"
    per_group = sum(requests.values()) / 2 / groups
    kinds = ", ".join(f"{kind} {count / 2 / groups:.2f}" for kind, count in requests.most_common())
    line += f"\n  API requests per group per period: {per_group:.1f} ({kinds})"
    if profile:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(r"heteroscale|kopf/_core", 40)
        stats.print_callers(r"deepcopy|_plain")
        line += "\n" + out.getvalue()
    return line


async def _restart(url: str, groups: int, started: dict[str, float]) -> str:
    """A new operator on the same cluster (a failover, or an upgrade's new pod): how long until
    every group has ticked again, and the CPU that took. ``started`` is the tick hook's record of
    each group's latest tick start."""
    operator = Operator(lambda s: _Holding(), RecordingMetrics(), connect=lambda **_: kopf.ConnectionInfo(server=url))
    stop = asyncio.Event()
    begin, cpu = time.monotonic(), time.process_time()
    running = asyncio.create_task(
        kopf.operator(registry=operator.registry, clusterwide=True, standalone=True, stop_flag=stop)
    )
    deadline = begin + 600
    while sum(1 for t in started.values() if t >= begin) < groups and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    ticked = sorted(t - begin for t in started.values() if t >= begin)
    cpu = time.process_time() - cpu
    stop.set()
    await asyncio.wait_for(running, 120)
    if len(ticked) < groups:
        return f"only {len(ticked)} of {groups} groups ticked within {deadline - begin:.0f} s"
    half = ticked[len(ticked) // 2]
    return f"every group ticked {ticked[-1]:.1f} s after the new operator started (half of them by {half:.1f} s); CPU {cpu:.1f} s"


class _Holding:
    """The decode rate the restarted operator reads: the rate the groups were scaled for."""

    def read(self, spec: Any, scope: Any, decode: Any, prefill: Any, now: float) -> Signals:
        return Signals(450.0, 1.0, None, None, None)


def web_pod(i: int) -> dict[str, Any]:
    """A running pod of a web Deployment without GPUs, as large as such a pod is when listed
    (about 3.5 KB of JSON: env, probes, a service-account volume, status with conditions)."""
    name, hash_ = f"web-{i // 10}", f"{i:010x}"[-10:]
    env = [{"name": f"SETTING_{k}", "value": f"value-{k}-{i}"} for k in range(8)]
    probe = {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1}
    condition = {"status": "True", "lastProbeTime": None, "lastTransitionTime": "2026-11-30T00:00:00Z"}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{name}-7d9f8c6b5-{hash_[-5:]}",
            "generateName": f"{name}-7d9f8c6b5-",
            "namespace": "other",
            "uid": f"00000000-0000-4000-8000-{i:012d}",
            "resourceVersion": "1",
            "creationTimestamp": "2026-11-30T00:00:00Z",
            "labels": {"app": name, "pod-template-hash": "7d9f8c6b5", "tier": "frontend"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-30T00:00:00Z"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{name}-7d9f8c6b5",
                    "uid": f"11111111-0000-4000-8000-{i // 10:012d}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "registry.example.com/team/web:1.27.3",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": env,
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
                    "readinessProbe": probe,
                    "livenessProbe": probe,
                    "volumeMounts": [
                        {"name": "kube-api-access", "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io"}
                    ],
                    "terminationMessagePath": "/dev/termination-log",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "volumes": [
                {
                    "name": "kube-api-access",
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {
                                "downwardAPI": {
                                    "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                                }
                            },
                        ],
                    },
                }
            ],
            "nodeName": f"cpu-node-{i % 200}",
            "serviceAccountName": "default",
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "tolerations": [
                {
                    "key": f"node.kubernetes.io/{t}",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
                for t in ("not-ready", "unreachable")
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": t, **condition} for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
            ],
            "hostIP": f"10.0.{i % 200 // 250}.{i % 200}",
            "podIP": f"10.244.{i // 250 % 256}.{i % 250}",
            "startTime": "2026-11-30T00:00:00Z",
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": True,
                    "restartCount": 0,
                    "image": "registry.example.com/team/web:1.27.3",
                    "imageID": "registry.example.com/team/web@sha256:" + "0" * 64,
                    "containerID": f"containerd://{i:064x}",
                    "started": True,
                    "state": {"running": {"startedAt": "2026-11-30T00:00:00Z"}},
                }
            ],
            "qosClass": "Burstable",
        },
    }


def rss_mib() -> float:
    """This process's resident memory (Linux), in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ask_cpu(pipe: Connection) -> tuple[float, collections.Counter[str], list[float]]:
    """The emulator process's CPU seconds and the requests it served so far, and how late its event
    loop woke a sleeper since the last ask."""
    pipe.send("cpu")
    cpu, served, lags = pipe.recv()
    return float(cpu), collections.Counter(served), lags


async def lagging(lags: list[float], every: float = 0.05) -> None:
    """How late the event loop wakes a sleeper, every ``every`` seconds: a loop busy with other work
    wakes it late, and every request it serves or answer it reads waits as long."""
    loop = asyncio.get_running_loop()
    while True:
        begin = loop.time()
        await asyncio.sleep(every)
        lags.append(loop.time() - begin - every)


def quantile(values: list[float], q: int) -> float:
    """The q-th percentile in milliseconds (NaN without values)."""
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def main(argv: list[str]) -> None:
    collector.tune()  # as `heteroscale run` does
    profile, restart = "--profile" in argv, "--restart" in argv
    pods = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--pods=")), 0)
    sizes = [int(a) for a in argv if a.isdigit()] or [50, 200, 500, 1000]
    for size in sizes:
        print(asyncio.run(measure(size, profile, restart, pods)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
