"""Wire the real metrics layer into the operator and run it under kopf."""

from __future__ import annotations

from collections.abc import Sequence

import kopf

from heteroscale.api.config import OperatorConfig
from heteroscale.metrics.exported import OperatorMetrics
from heteroscale.metrics.reader import PrometheusReader
from heteroscale.operator.handlers import Operator


def run(
    *,
    namespaces: Sequence[str],
    metrics_port: int,
    health_port: int,
    peering: str,
    slow_nodes: Sequence[str] = (),
    config: OperatorConfig | None = None,
) -> None:
    metrics = OperatorMetrics()
    if metrics_port:
        metrics.serve(metrics_port)
    operator = Operator(PrometheusReader, metrics, slow_nodes=slow_nodes, config=config)
    kopf.run(
        registry=operator.registry,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz",
        # With a peering object, only the highest-priority replica acts; the others wait as hot standby.
        peering_name=peering or None,
        standalone=not peering,
    )
