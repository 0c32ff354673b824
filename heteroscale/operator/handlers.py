"""kopf bindings: configuration, login, the operator's watches, and one reconcile loop per
PDServingGroup.

kopf timers have one fixed interval per handler, while each PDServingGroup sets its own
``behavior.intervalSeconds``; so the per-object loop is a kopf daemon that sleeps the spec's
interval between ticks (and stops at once when the object goes or the operator exits). Handlers
return None: kopf would store return values in the status, which the CRD schema prunes.

The operator's own watches (:mod:`heteroscale.operator.watch`; kopf indexes nothing, see there why)
keep GPU Nodes and Pods (placement's inventory), every Deployment, the HPAs and ScaledObjects that
target workloads and the Deployments every group references (conflicts) in memory. The first
group's loop starts them, and every loop waits until all have listed before its first tick, so the
first tick already sees the whole cluster. A kind the API server does not serve (KEDA not
installed) stays empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import kopf

from heteroscale.api.config import OperatorConfig
from heteroscale.api.crd import GROUP, PLURAL, VERSION
from heteroscale.operator import indexes
from heteroscale.operator.cadence import next_tick, phase
from heteroscale.operator.conflicts import HPA, SCALED_OBJECT, group_references
from heteroscale.operator.diffbase import NoDiffBaseStorage
from heteroscale.operator.kube import ApiError, KubeClient
from heteroscale.operator.reconcile import DEFAULT_INTERVAL, Cluster, Context, report_failure, seed_request, tick
from heteroscale.operator.signals import MetricsSink, ReaderFactory
from heteroscale.operator.store import Store, name_of
from heteroscale.operator.watch import Resource, Watches

PREFIX = "heteroscale.io"
FINALIZER = f"{PREFIX}/finalizer"

#: How long a tick under way may go on once its group's loop is told to stop (then it is cancelled).
#: With kopf's 10 s cancellation timeout after it, an operator pod stops within the default 30 s
#: termination grace period.
STOP_GRACE_SECONDS = 10.0

#: The component every Event of the operator names as its source.
EVENT_SOURCE = "heteroscale-operator"

DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployments")
PODS = Resource("", "v1", "pods", "Pods")
NODES = Resource("", "v1", "nodes", "Nodes", namespaced=False)
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscalers")
SCALED_OBJECTS = Resource("keda.sh", "v1alpha1", "scaledobjects", "ScaledObjects")
GROUPS = Resource(GROUP, VERSION, PLURAL, "PDServingGroups")

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
        self.stores: list[tuple[Resource, Store[Any, Any]]] = [
            (NODES, Store(indexes.node_index(self.config.shard))),
            (PODS, Store(indexes.pod_index)),
            (DEPLOYMENTS, Store(indexes.deployment_index)),
            (HPAS, Store(indexes.autoscaler_index(HPA))),
            (SCALED_OBJECTS, Store(indexes.autoscaler_index(SCALED_OBJECT))),
            # Every group, of every shard: a Deployment referenced by groups of two shards is still
            # a conflict.
            (GROUPS, Store(self._index_group)),
        ]
        (nodes, pods, deployments, hpas, scaled_objects, groups) = (store for _, store in self.stores)
        self.cluster = Cluster(
            nodes=nodes,
            pods=pods,
            autoscalers=(hpas, scaled_objects),
            references=groups,
            deployments=deployments,
            slow_nodes=frozenset(slow_nodes),
        )
        self.namespaces = list(namespaces)
        """The namespaces served (none: every namespace), as kopf is told: the watches' too."""
        self._watching: asyncio.Task[None] | None = None
        self._watches: Watches | None = None
        self.registry = kopf.OperatorRegistry()
        self._register()

    def _register(self) -> None:
        kopf.on.startup(registry=self.registry)(self._configure)
        kopf.on.login(registry=self.registry)(self._login)
        kopf.on.cleanup(registry=self.registry)(self._cleanup)
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

    def _in_shard(self, labels: kopf.Labels, **_: Any) -> bool:
        """Whether this replica reconciles a group with these labels. kopf stops a group's daemon
        when it stops matching (relabelled into another shard), and starts it when it matches."""
        shard = self.config.shard
        return shard is None or shard.serves(labels)

    def _index_group(self, body: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, str, str]]:
        """Which Deployments each group references, so a tick finds another group on its own.

        And a group of this replica's shard that the plan book does not know yet is seeded into
        it: every loop waits for the watches to list before its first tick, so after a restart the
        plan book knows what every group holds before the first tick plans."""
        labels = (body.get("metadata") or {}).get("labels") or {}
        if name_of(body) not in self.cluster.plans and self._in_shard(labels):
            request = seed_request(body, self.config)
            if request is not None:
                self.cluster.plans.seed(request)
        return group_references(body)

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

    async def _synced(self, stopped: kopf.DaemonStopped) -> bool:
        """Start the watches (once, from the first group's loop: they need the login) and wait
        until every one has listed every namespace served; False when the loop is told to stop
        first."""
        if self._watches is None:
            self._watches = Watches(self._connection, self.stores, self.namespaces)
            self._watching = asyncio.create_task(self._watches.run(), name="heteroscale watches")

        async def halt() -> None:
            await stopped.wait()

        synced, halted = asyncio.create_task(self._watches.wait_synced()), asyncio.create_task(halt())
        try:
            await asyncio.wait({synced, halted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            synced.cancel()
            halted.cancel()
        return self._watches.synced

    async def _run_group(
        self,
        *,
        namespace: str | None,
        name: str,
        body: kopf.Body,
        stopped: kopf.DaemonStopped,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        assert namespace is not None, "PDServingGroups are namespaced"

        def emit(type_: str, reason: str, message: str) -> None:
            kopf.event(body, type=type_, reason=reason, message=message[:1024])

        failures = 0
        cadence = phase(namespace, name)
        try:
            if not await self._synced(stopped):
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
