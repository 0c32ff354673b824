"""kopf bindings: configuration, login, and one reconcile loop per PDServingGroup.

kopf timers have one fixed interval per handler, while each PDServingGroup sets its own
``behavior.intervalSeconds``; so the per-object loop is a kopf daemon that sleeps the spec's
interval between ticks (and stops at once when the object goes or the operator exits). Handlers
return None: kopf would store return values in the status, which the CRD schema prunes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import kopf

from heteroscale.api.crd import GROUP, PLURAL, VERSION
from heteroscale.operator.kube import ApiError, KubeClient
from heteroscale.operator.reconcile import DEFAULT_INTERVAL, Context, tick
from heteroscale.operator.signals import MetricsSink, ReaderFactory

PREFIX = "heteroscale.io"
FINALIZER = f"{PREFIX}/finalizer"

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
    ) -> None:
        self.readers = readers
        self.metrics = metrics
        self.connect = connect
        self.clock = clock
        self.error_retry_seconds = error_retry_seconds
        self.client_timeout_seconds = client_timeout_seconds
        self.context: Context | None = None
        self.registry = kopf.OperatorRegistry()
        self._register()

    def _register(self) -> None:
        kopf.on.startup(registry=self.registry)(self._configure)
        kopf.on.login(registry=self.registry)(self._login)
        kopf.on.cleanup(registry=self.registry)(self._cleanup)
        kopf.daemon(GROUP, VERSION, PLURAL, registry=self.registry, cancellation_timeout=10.0)(self._run_group)

    @staticmethod
    def _configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=PREFIX, key="last-handled-configuration"
        )
        # A watch that the server or a proxy silently drops is noticed within minutes, not hours.
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.watching.connect_timeout = 30
        settings.networking.request_timeout = 60
        # Our own Events (one per scale action) are posted explicitly; kopf's log lines are not.
        settings.posting.level = logging.WARNING

    def _login(self, **kwargs: Any) -> kopf.ConnectionInfo | None:
        info = self.connect(**kwargs)
        if info is not None:
            client = KubeClient(info, timeout_seconds=self.client_timeout_seconds)
            self.context = Context(client, self.readers, self.metrics, self.clock)
        return info

    async def _cleanup(self, **_: Any) -> None:
        if self.context is not None:
            await self.context.client.close()

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

        while not stopped:
            interval: float = DEFAULT_INTERVAL
            assert self.context is not None, "kopf logs in before any handler runs"
            try:
                interval = await tick(self.context, namespace, name, emit)
            except ApiError as exc:
                # The client already retried; the next tick starts from the observed state again.
                logger.warning(f"reconcile failed, retrying: {exc}")
                interval = self.error_retry_seconds
            await stopped.wait(interval)
        self.metrics.forget(namespace, name)
