"""The operator's own metrics, served on ``/metrics`` for Prometheus, the alerts and the dashboard.

Every series carries ``namespace`` and ``name`` (the PDServingGroup); per-role series add ``role``,
per-group series add ``group`` (the Deployment), ``role``, ``gpu_type`` and ``domain``. A gauge
whose value is unknown (no reading, no ready decode instance) is removed rather than set to NaN,
so ``absent()`` and the dashboard see a gap. Names follow Prometheus' conventions: base units as
suffixes (``_tokens_per_second``, ``_seconds``), ``_total`` on counters, ``heteroscale_build_info``
for the version. The names below are what ``deploy/monitoring`` reads (the dashboard is built
from this registry's names, see :mod:`heteroscale.metrics.dashboard`); docs/reference/metrics.md is
generated from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.metrics import MetricWrapperBase

from heteroscale import __version__
from heteroscale.api.enums import METRIC_REASONS, Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import GroupStatus
from heteroscale.metrics.reader import Signals, problem_kind
from heteroscale.policy.capacity import weighted_target
from heteroscale.policy.decision import Decision
from heteroscale.policy.observation import Observation

_GROUP = ("namespace", "name")
_ROLE = (*_GROUP, "role")
_DEPLOYMENT_GROUP = (*_GROUP, "group", "role", "gpu_type", "domain")
DIRECTIONS = ("up", "down")
# Reconciles take milliseconds to a few Prometheus timeouts (seconds each).
_RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)

Labels = tuple[str, ...]


class OperatorMetrics:
    """The ``heteroscale_*`` series. Owns a registry, so several instances (tests) never collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._server: Any = None
        # Which label values each PDServingGroup has written, so forget() and a changed group list
        # can remove exactly those series (prometheus-client has no portable partial-match removal).
        self._written: dict[tuple[str, str], set[tuple[MetricWrapperBase, Labels]]] = {}
        self._groups: dict[tuple[str, str], set[Labels]] = {}

        def gauge(name: str, doc: str, labels: Sequence[str] = _GROUP) -> Gauge:
            return Gauge(name, doc, labels, registry=self.registry)

        def counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(name, doc, labels, registry=self.registry)

        self.desired_replicas = gauge("heteroscale_desired_replicas", "Instances the operator wants, per role.", _ROLE)
        self.current_replicas = gauge("heteroscale_current_replicas", "Instances ready now, per role.", _ROLE)
        self.max_replicas = gauge("heteroscale_max_replicas", "maxReplicas of the role.", _ROLE)
        self.pods_stuck = gauge(
            "heteroscale_pods_stuck",
            "Instances asked for whose pod is still not ready behavior.podStartTimeoutSeconds after its creation.",
            _ROLE,
        )
        self.group_desired_replicas = gauge(
            "heteroscale_group_desired_replicas",
            "Replicas the operator wants, per deployment group.",
            _DEPLOYMENT_GROUP,
        )
        self.group_current_replicas = gauge(
            "heteroscale_group_current_replicas", "Replicas ready now, per deployment group.", _DEPLOYMENT_GROUP
        )
        self.build_info = Info("heteroscale_build", "The operator's version.", registry=self.registry)
        self.build_info.info({"version": __version__})
        self.decode_tps = gauge(
            "heteroscale_decode_tokens_per_second", "Decode tokens/s read from Prometheus: the scaling signal."
        )
        self.decode_tps_age = gauge(
            "heteroscale_metric_age_seconds", "Age of the newest sample behind heteroscale_decode_tokens_per_second."
        )
        self.prefill_missed_tps = gauge(
            "heteroscale_prefill_missed_tokens_per_second",
            "Prompt tokens/s the prefill pods computed (prefix-cache misses).",
        )
        self.target_tps = gauge(
            "heteroscale_decode_instance_target_tokens_per_second",
            "Decode tokens/s one decode instance should serve, weighted by the GPU types serving.",
        )
        self.capacity_tps = gauge(
            "heteroscale_decode_capacity_tokens_per_second",
            "Target tokens/s per instance times the ready decode instances.",
        )
        self.activation = gauge(
            "heteroscale_activation",
            "behavior.scaleToZero.activationQuery's value (requests/s at the gateway); absent without one.",
        )
        self.metric_available = gauge(
            "heteroscale_metric_available", "1 when the last decision trusted the metric, 0 when it held for it."
        )
        self.tbt = gauge("heteroscale_tbt_seconds", "Time between tokens at the latency guard's quantile.")
        self.tbt_slo = gauge("heteroscale_tbt_slo_seconds", "The latency guard's TBT SLO.")
        self.ratio_declared = gauge("heteroscale_pd_ratio_declared", "Declared prefill/decode instance ratio.")
        self.ratio_actual = gauge("heteroscale_pd_ratio_actual", "Ready prefill instances per ready decode instance.")
        self.decisions = counter("heteroscale_decisions", "Policy decisions, by reason code.", (*_GROUP, "reason"))
        self.scale_events = counter(
            "heteroscale_scale_events", "Replica changes applied, by role and direction.", (*_ROLE, "direction")
        )
        self.fetch_errors = counter(
            "heteroscale_metric_fetch_errors",
            "Reads that gave no trustworthy decode tokens/s, by kind.",
            (*_GROUP, "kind"),
        )
        self.conflicts = counter(
            "heteroscale_conflicts",
            "Reconciles refused because an HPA or ScaledObject targets the Deployments.",
            _GROUP,
        )
        self.reconcile_errors = counter(
            "heteroscale_reconcile_errors",
            "Reconciles that failed (API errors after retries, internal errors), by kind; retried with backoff.",
            (*_GROUP, "kind"),
        )
        self.reconcile_duration = Histogram(
            "heteroscale_reconcile_duration_seconds",
            "Duration of one reconcile of a PDServingGroup.",
            _GROUP,
            buckets=_RECONCILE_BUCKETS,
            registry=self.registry,
        )

    def _series(self, metric: MetricWrapperBase, namespace: str, name: str, *rest: str) -> Any:
        labels = (namespace, name, *rest)
        self._written.setdefault((namespace, name), set()).add((metric, labels))
        return metric.labels(*labels)

    def _set(self, gauge: Gauge, namespace: str, name: str, value: float | None, *rest: str) -> None:
        """Set the gauge, or remove its series when the value is unknown."""
        if value is None:
            written = self._written.get((namespace, name), set())
            labels = (namespace, name, *rest)
            if (gauge, labels) in written:
                written.discard((gauge, labels))
                gauge.remove(*labels)
        else:
            self._series(gauge, namespace, name, *rest).set(value)

    def observe_decision(
        self,
        namespace: str,
        name: str,
        spec: PDServingGroupSpec,
        observation: Observation,
        decision: Decision,
        signals: Signals,
    ) -> None:
        """Record one tick: the decision, the signal behind it and the sizes on both sides."""
        self._series(self.decisions, namespace, name, decision.reason.value).inc()
        for role, desired, pool, bounds in (
            (Role.PREFILL, decision.prefill, observation.prefill, spec.prefill),
            (Role.DECODE, decision.decode, observation.decode, spec.decode),
        ):
            self._series(self.desired_replicas, namespace, name, role.value).set(desired)
            self._series(self.current_replicas, namespace, name, role.value).set(pool.ready)
            self._series(self.max_replicas, namespace, name, role.value).set(bounds.max_replicas)
            self._series(self.pods_stuck, namespace, name, role.value).set(pool.stuck)

        self._set(self.decode_tps, namespace, name, signals.decode_tps)
        self._set(self.decode_tps_age, namespace, name, signals.metric_age_seconds)
        self._set(self.prefill_missed_tps, namespace, name, signals.prefill_missed_tps)
        self._set(self.activation, namespace, name, signals.activation)
        target = weighted_target(
            spec.decode.target_tps_per_instance, observation.decode.by_gpu_type, spec.roles.decode.gpu_types[0]
        )
        self._set(self.target_tps, namespace, name, target)
        self._set(self.capacity_tps, namespace, name, target * observation.decode.ready)
        self._set(self.metric_available, namespace, name, 0.0 if decision.reason in METRIC_REASONS else 1.0)

        guard = spec.behavior.latency_guard
        self._set(self.tbt_slo, namespace, name, guard.slo_seconds if guard else None)
        self._set(self.tbt, namespace, name, signals.tbt_seconds if guard else None)

        self._set(self.ratio_declared, namespace, name, spec.ratio.prefill / spec.ratio.decode)
        ready_decode = observation.decode.ready
        actual = observation.prefill.ready / ready_decode if ready_decode else None
        self._set(self.ratio_actual, namespace, name, actual)

    def observe_groups(self, namespace: str, name: str, groups: Sequence[GroupStatus]) -> None:
        """Desired and ready replicas per deployment group; groups no longer listed are dropped."""
        key = (namespace, name)
        now = {(g.name, g.role.value, g.gpu_type, g.domain): g for g in groups}
        for gone in self._groups.get(key, set()) - now.keys():
            for gauge in (self.group_desired_replicas, self.group_current_replicas):
                self._set(gauge, namespace, name, None, *gone)
        for labels, group in now.items():
            self._series(self.group_desired_replicas, namespace, name, *labels).set(group.desired)
            self._series(self.group_current_replicas, namespace, name, *labels).set(group.current)
        self._groups[key] = set(now)

    def observe_reconcile(self, namespace: str, name: str, seconds: float) -> None:
        """How long one reconcile took."""
        self._series(self.reconcile_duration, namespace, name).observe(seconds)

    def count_fetch_error(self, namespace: str, name: str, problem: str) -> None:
        """A read without a trustworthy decode tokens/s; ``problem`` is :attr:`Signals.problem`."""
        self._series(self.fetch_errors, namespace, name, problem_kind(problem)).inc()

    def count_conflict(self, namespace: str, name: str) -> None:
        """A reconcile refused because another autoscaler targets the same Deployments."""
        self._series(self.conflicts, namespace, name).inc()

    def count_reconcile_error(self, namespace: str, name: str, kind: str) -> None:
        """A reconcile that failed; ``kind`` is ``api_<status>`` or the error's type (bounded)."""
        self._series(self.reconcile_errors, namespace, name, kind).inc()

    def count_scale_event(self, namespace: str, name: str, role: str, direction: str) -> None:
        """A replica change applied to one role; ``direction`` is ``up`` or ``down``."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        self._series(self.scale_events, namespace, name, Role(role).value, direction).inc()

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a deleted PDServingGroup."""
        for metric, labels in self._written.pop((namespace, name), set()):
            metric.remove(*labels)
        self._groups.pop((namespace, name), None)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` from a daemon thread; ``port`` 0 picks a free one (see :attr:`port`)."""
        self._server, _ = start_http_server(port, addr, registry=self.registry)

    @property
    def port(self) -> int:
        """The port :meth:`serve` listens on."""
        if self._server is None:
            raise RuntimeError("serve() has not been called")
        return int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving ``/metrics``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
