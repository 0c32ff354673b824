"""PDServingGroup specs and observations for the metrics tests."""

from __future__ import annotations

from typing import Any

from heteroscale.api.config import PrometheusEndpoint
from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import GroupStatus, PolicyState
from heteroscale.metrics.exported import OperatorMetrics
from heteroscale.metrics.reader import Signals
from heteroscale.policy.decide import decide
from heteroscale.policy.observation import Observation, PoolObservation


def group_spec(
    engine: str = "vllm",
    *,
    window: str = "10s",
    stale_after: str = "30s",
    query: str = "",
    quantile: float | None = 0.9,
) -> PDServingGroupSpec:
    """A valid spec reading ``engine`` metrics; ``quantile`` None drops the latency guard."""
    behavior: dict[str, Any] = {}
    if quantile is not None:
        behavior["latencyGuard"] = {"sloSeconds": 0.05, "quantile": quantile}
    return PDServingGroupSpec.model_validate(
        {
            "metric": {
                "engine": engine,
                "query": query,
                "window": window,
                "staleAfter": stale_after,
            },
            "decode": {"targetTPSPerInstance": {"H20": 1000}, "minReplicas": 1, "maxReplicas": 16},
            "prefill": {"minReplicas": 1, "maxReplicas": 16},
            "behavior": behavior,
            "roles": {
                "prefill": {"deploymentRef": {"name": "chat-prefill"}, "gpuTypes": ["H20"]},
                "decode": {"deploymentRef": {"name": "chat-decode"}, "gpuTypes": ["H20"]},
            },
        }
    )


def endpoint(url: str, timeout_seconds: float = 2.0, **files: str) -> PrometheusEndpoint:
    """An admin-configured endpoint at ``url`` (``caFile``, ``bearerTokenFile`` as keywords)."""
    return PrometheusEndpoint.model_validate({"url": url, "timeoutSeconds": timeout_seconds, **files})


def observation(
    decode_tps: float | None, age: float | None, tbt: float | None = None, *, replicas: int = 2
) -> Observation:
    """Both pools steady at ``replicas`` ready H20 instances."""
    pool = PoolObservation(replicas=replicas, ready=replicas, by_gpu_type={"H20": replicas})
    return Observation(decode_tps=decode_tps, metric_age_seconds=age, prefill=pool, decode=pool, tbt_seconds=tbt)


def populated_metrics(namespace: str = "serving", name: str = "chat") -> OperatorMetrics:
    """Operator metrics after one tick of every kind of event, so each exported series exists."""
    metrics = OperatorMetrics()
    spec = group_spec()
    signals = Signals(
        decode_tps=1800.0, metric_age_seconds=2.0, prefill_missed_tps=900.0, tbt_seconds=0.04, problem=None
    )
    obs = observation(1800.0, 2.0, 0.04)
    decision = decide(spec, obs, PolicyState(), 1000.0)
    metrics.observe_decision(namespace, name, spec, obs, decision, signals)
    metrics.observe_groups(
        namespace,
        name,
        [
            GroupStatus(
                name="chat-decode-h20-s2a", role=Role.DECODE, gpu_type="H20", domain="s2a", desired=2, current=2
            ),
            GroupStatus(
                name="chat-prefill-h20-s2a", role=Role.PREFILL, gpu_type="H20", domain="s2a", desired=2, current=2
            ),
        ],
    )
    metrics.observe_reconcile(namespace, name, 0.12)
    metrics.count_fetch_error(namespace, name, "HTTP 503")
    metrics.count_conflict(namespace, name)
    metrics.count_scale_event(namespace, name, "decode", "up")
    return metrics
