"""kopf bindings: configuration, login, the indexes, and one reconcile loop per PDServingGroup.

kopf timers have one fixed interval per handler, while each PDServingGroup sets its own
``behavior.intervalSeconds``; so the per-object loop is a kopf daemon that sleeps the spec's
interval between ticks (and stops at once when the object goes or the operator exits). Handlers
return None: kopf would store return values in the status, which the CRD schema prunes. Index
handlers are the exception: what they return is the index entry (None: not indexed).

Indexes keep GPU Nodes and Pods (placement's inventory) and the HPAs and ScaledObjects that target
Deployments (conflicts) in memory from the watch. kopf starts a resource's daemons only once the
indexes are filled, so the first tick already sees the whole cluster. A resource the API server does
not serve (KEDA not installed) is simply not watched, and its index stays empty. Deployments are
kept by a watch of the operator's own (:mod:`heteroscale.operator.deploymentcache`, for its volume of
events), which the first group's loop starts and every loop waits for before its first tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import kopf

from heteroscale.api.config import OperatorConfig
from heteroscale.api.crd import GROUP, PLURAL, VERSION
from heteroscale.operator import indexes
from heteroscale.operator.cadence import next_tick, phase
from heteroscale.operator.conflicts import HPA, SCALED_OBJECT, autoscaler_target, group_references
from heteroscale.operator.deploymentcache import DeploymentStore, DeploymentWatch
from heteroscale.operator.diffbase import NoDiffBaseStorage
from heteroscale.operator.kube import ApiError, KubeClient
from heteroscale.operator.reconcile import DEFAULT_INTERVAL, Cluster, Context, report_failure, seed_request, tick
from heteroscale.operator.signals import MetricsSink, ReaderFactory

PREFIX = "heteroscale.io"
FINALIZER = f"{PREFIX}/finalizer"

#: How long a tick under way may go on once its group's loop is told to stop (then it is cancelled).
#: With kopf's 10 s cancellation timeout after it, an operator pod stops within the default 30 s
#: termination grace period.
STOP_GRACE_SECONDS = 10.0

#: The component every Event of the operator names as its source.
EVENT_SOURCE = "heteroscale-operator"

#: ``connect(**login_kwargs)`` returns the API server and credentials (kopf's login protocol).
Connect = Callable[..., kopf.ConnectionInfo | None]


class Operator:
    """The operator's handlers on their own registry, so tests can run several side by side."""

    def __init__(
        self,
        readers: ReaderFactory,
        metrics: MetricsSink,
        *,
        connect: Connect = kopf.login_via_client,
        clock: Callable[[], float] = time.time,
        error_retry_seconds: float = 1.0,
        client_timeout_seconds: float = 10.0,
        stop_grace_seconds: float = STOP_GRACE_SECONDS,
        slow_nodes: Collection[str] = (),
        config: OperatorConfig | None = None,
        namespaces: Sequence[str] = (),
    ) -> None:
        self.config = config or OperatorConfig()
        self.readers = readers
        self.metrics = metrics
        self.connect = connect
        self.clock = clock
        self.error_retry_seconds = error_retry_seconds
        self.stop_grace_seconds = stop_grace_seconds
        self.client_timeout_seconds = client_timeout_seconds
        self.context: Context | None = None
        self.deployments = DeploymentStore()
        self.cluster = Cluster(slow_nodes=frozenset(slow_nodes), deployments=self.deployments)
        self.namespaces = list(namespaces)
        """The namespaces served (none: every namespace), as kopf is told: the Deployment watch's too."""
        self._watching: asyncio.Task[None] | None = None
        self._watch: DeploymentWatch | None = None
        self.registry = kopf.OperatorRegistry()
        self._register()

    def _register(self) -> None:
        kopf.on.startup(registry=self.registry)(self._configure)
        kopf.on.login(registry=self.registry)(self._login)
        kopf.on.cleanup(registry=self.registry)(self._cleanup)
        kopf.index("v1", "nodes", id="gpu_nodes", registry=self.registry)(self._index_node)
        kopf.index("v1", "pods", id="gpu_pods", registry=self.registry)(self._index_pod)
        kopf.index("autoscaling", "v2", "horizontalpodautoscalers", id="hpas", registry=self.registry)(self._index_hpa)
        kopf.index("keda.sh", "v1alpha1", "scaledobjects", id="scaled_objects", registry=self.registry)(
            self._index_scaled_object
        )
        # Every group, of every shard: a Deployment referenced by groups of two shards is still a
        # conflict. One handler for both jobs of a group's watch event (kopf repeats its per-call
        # work for each handler, and every status write of every group is an event).
        kopf.index(GROUP, VERSION, PLURAL, id="references", registry=self.registry)(self._index_group)
        # A group's loop stops when the group is deleted, leaves this shard or the operator stops.
        # The loop checks for that between ticks; a tick under way gets the grace period to finish
        # its writes (a drain's pod labels and the status that records the drain belong together)
        # before kopf cancels it. Without a backoff kopf cancels at once.
        kopf.daemon(
            GROUP,
            VERSION,
            PLURAL,
            registry=self.registry,
            cancellation_backoff=self.stop_grace_seconds,
            cancellation_timeout=10.0,
            when=self._in_shard,
        )(self._run_group)

    def _configure(self, settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = finalizer(self.config)
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
        settings.persistence.diffbase_storage = NoDiffBaseStorage()
        # A watch that the server or a proxy silently drops is noticed within minutes, not hours.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 30
        settings.networking.request_timeout = 60
        # Our own Events (one per scale action) are posted explicitly; kopf's log lines are not.
        settings.posting.level = logging.WARNING
        # `kubectl describe` and `kubectl events` show who wrote an Event: the operator, by pod.
        settings.posting.reporting_component = EVENT_SOURCE
        settings.posting.reporting_instance = os.environ.get("POD_NAME") or socket.gethostname()

    def _login(self, **kwargs: Any) -> kopf.ConnectionInfo | None:
        info = self.connect(**kwargs)
        if info is not None:
            client = KubeClient(info, timeout_seconds=self.client_timeout_seconds)
            self.context = Context(client, self.readers, self.metrics, self.clock, self.cluster, self.config)
        return info

    # Index handlers are coroutines: they run on every change of every object, and kopf would hand
    # a plain function to a worker thread each time.

    def _in_shard(self, labels: kopf.Labels, **_: Any) -> bool:
        """Whether this replica reconciles a group with these labels. kopf stops a group's daemon
        when it stops matching (relabelled into another shard), and starts it when it matches."""
        shard = self.config.shard
        return shard is None or shard.serves(labels)

    async def _index_node(self, body: kopf.Body, name: str, labels: kopf.Labels, **_: Any) -> dict[str, Any] | None:
        """A GPU node of this replica's shard (every GPU node without shards)."""
        shard = self.config.shard
        node = indexes.gpu_node(body) if shard is None or shard.places_on(labels) else None
        node = self.cluster.indexed(self.cluster.nodes, name, node)
        return None if node is None else {name: node}

    async def _index_pod(self, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> dict[Any, Any] | None:
        pod = self.cluster.indexed(self.cluster.pods, (namespace, name), indexes.gpu_pod(body))
        return None if pod is None else {(namespace, name): pod}

    async def _index_group(
        self, body: kopf.Body, namespace: str | None, name: str, labels: kopf.Labels, **_: Any
    ) -> dict[tuple[str, str], tuple[str, str, str]] | None:
        """Which Deployments each group references, so a tick finds another group on its own.

        And a group of this replica's shard that the plan book does not know yet is seeded into
        it: kopf fills the indexes before it starts any daemon, so after a restart the plan book
        knows what every group holds before the first tick plans. A coroutine: it runs on every
        status write of every group, and kopf would hand a plain function to a worker thread."""
        if namespace is not None and (namespace, name) not in self.cluster.plans and self._in_shard(labels):
            request = seed_request(body, self.config)
            if request is not None:
                self.cluster.plans.seed(request)
        return group_references(body) or None

    @staticmethod
    async def _index_hpa(body: kopf.Body, **_: Any) -> dict[tuple[str, str], str] | None:
        found = autoscaler_target(HPA, body)
        return None if found is None else dict([found])

    @staticmethod
    async def _index_scaled_object(body: kopf.Body, **_: Any) -> dict[tuple[str, str], str] | None:
        found = autoscaler_target(SCALED_OBJECT, body)
        return None if found is None else dict([found])

    async def _cleanup(self, **_: Any) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        if self.context is not None:
            await self.context.client.close()

    def _connection(self) -> kopf.ConnectionInfo:
        assert self.context is not None, "kopf logs in before any handler runs"
        return self.context.client.connection

    async def _deployments_synced(self, stopped: kopf.DaemonStopped) -> bool:
        """Start the Deployment watch (once, from the first group's loop: it needs the login) and
        wait until it has listed every namespace served; False when the loop is told to stop first."""
        if self._watch is None:
            self._watch = DeploymentWatch(self._connection, self.deployments, self.namespaces)
            self._watching = asyncio.create_task(self._watch.run(), name="heteroscale deployment watch")

        async def halt() -> None:
            await stopped.wait()

        synced, halted = asyncio.create_task(self._watch.synced.wait()), asyncio.create_task(halt())
        try:
            await asyncio.wait({synced, halted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
            halted.cancel()
        return self._watch.synced.is_set()

    async def _run_group(
        self,
        *,
        namespace: str | None,
        name: str,
        body: kopf.Body,
        stopped: kopf.DaemonStopped,
        logger: kopf.Logger,
        **indexed: Any,
    ) -> None:
        assert namespace is not None, "PDServingGroups are namespaced"
        # kopf passes the same live index objects (kwargs named by the index ids) to every handler;
        # the ticks read them through the cluster view.
        self.cluster.nodes, self.cluster.pods = indexed["gpu_nodes"], indexed["gpu_pods"]
        self.cluster.autoscalers = (indexed["hpas"], indexed["scaled_objects"])
        self.cluster.references = indexed["references"]

        def emit(type_: str, reason: str, message: str) -> None:
            kopf.event(body, type=type_, reason=reason, message=message[:1024])

        failures = 0
        cadence = phase(namespace, name)
        try:
            if not await self._deployments_synced(stopped):
                return
            while not stopped:
                interval: float = DEFAULT_INTERVAL
                assert self.context is not None, "kopf logs in before any handler runs"
                loop = asyncio.get_running_loop()
                started = loop.time()
                try:
                    # The period runs from the start of one tick to the start of the next, at the
                    # group's own phase of it: a slow tick neither stretches the period nor, with
                    # all the others slowed down at the same moment, leaves the groups ticking
                    # together from then on.
                    period = await tick(self.context, namespace, name, emit, body)
                    interval = next_tick(started, loop.time(), period, cadence) - loop.time()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    interval = _backoff(self.error_retry_seconds, failures)
                    kind = f"api_{exc.status}" if isinstance(exc, ApiError) and exc.status else type(exc).__name__
                    self.metrics.count_reconcile_error(namespace, name, kind)
                    if isinstance(exc, ApiError):
                        logger.warning(f"reconcile failed ({failures} in a row), retrying in {interval:.0f}s: {exc}")
                    else:
                        logger.exception(f"reconcile failed ({failures} in a row), retrying in {interval:.0f}s")
                    await report_failure(self.context, namespace, name, emit, exc)
                await stopped.wait(max(0.0, interval))
        finally:
            # Deleted (or the operator stops): its capacity is no longer reserved for it. In a
            # finally: kopf cancels a daemon that does not exit at once, which is one mid-tick.
            self.metrics.forget(namespace, name)
            self.cluster.plans.drop(namespace, name)
            if self.context is not None:
                self.context.statuses.forget((namespace, name))
                self.context.templates.forget((namespace, name))


def finalizer(config: OperatorConfig) -> str:
    """The finalizer this replica puts on its groups. Each shard has its own: kopf removes its
    finalizer from every object no handler of its own matches, so with one name for all, each shard
    would remove what the others add, on every group, for ever."""
    return FINALIZER if config.shard is None else f"{FINALIZER}-{config.shard.name}"


#: Longest wait between two attempts of a failing tick.
MAX_BACKOFF_SECONDS = 300.0


def _backoff(first: float, failures: int) -> float:
    """Seconds before the next attempt after ``failures`` failed ticks in a row: doubling from
    ``first``, capped, so a persistent error (403, 422, an API server down) is not retried every
    second for ever, and a passing one is retried at once."""
    return float(min(MAX_BACKOFF_SECONDS, first * 2 ** (failures - 1)))
