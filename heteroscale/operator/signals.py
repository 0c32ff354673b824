"""What the operator needs from the metrics layer, as Protocols.

The reader and the exported metrics are constructor arguments of :class:`reconcile.Context`, so the
real ``heteroscale.metrics`` implementations and test doubles plug in the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from heteroscale.api.config import PrometheusEndpoint
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import GroupStatus
from heteroscale.metrics.queries import Scope
from heteroscale.metrics.reader import Signals
from heteroscale.policy.decision import Decision
from heteroscale.policy.observation import Observation


class SignalReader(Protocol):
    """Reads the signals for one group; blocking, never raises for bad answers."""

    def read(
        self,
        spec: PDServingGroupSpec,
        scope: Scope,
        decode_deployments: Sequence[str],
        prefill_deployments: Sequence[str],
        now: float,
    ) -> Signals: ...


class ReaderFactory(Protocol):
    """A reader per admin-configured Prometheus endpoint (``PrometheusReader(endpoint)``)."""

    def __call__(self, source: PrometheusEndpoint) -> SignalReader: ...


class MetricsSink(Protocol):
    """The operator's own metrics (``heteroscale.metrics.exported.OperatorMetrics``)."""

    def observe_decision(
        self,
        namespace: str,
        name: str,
        spec: PDServingGroupSpec,
        observation: Observation,
        decision: Decision,
        signals: Signals,
    ) -> None: ...
    def observe_groups(self, namespace: str, name: str, groups: Sequence[GroupStatus]) -> None: ...
    def observe_reconcile(self, namespace: str, name: str, seconds: float) -> None: ...
    def count_fetch_error(self, namespace: str, name: str, problem: str) -> None: ...
    def count_conflict(self, namespace: str, name: str) -> None: ...
    def count_reconcile_error(self, namespace: str, name: str, kind: str) -> None: ...
    def count_scale_event(self, namespace: str, name: str, role: str, direction: str) -> None: ...
    def forget(self, namespace: str, name: str) -> None: ...
