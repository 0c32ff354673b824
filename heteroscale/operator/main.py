"""Wire the real metrics layer into the operator and run it under kopf: logging, credentials, scope."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import kopf

from heteroscale.api.config import OperatorConfig
from heteroscale.metrics.exported import OperatorMetrics
from heteroscale.metrics.reader import PrometheusReader
from heteroscale.operator import collector
from heteroscale.operator.handlers import Operator

#: ``--log-format`` choices: kopf's timestamped text lines, or one JSON object per line.
LOG_FORMATS = {"plain": kopf.LogFormat.FULL, "json": kopf.LogFormat.JSON}


class NoCredentials(Exception):
    """Neither an in-cluster service account nor a kubeconfig: kopf would retry its login for ever."""


def check_credentials() -> None:
    """Find cluster credentials as kopf's login will (in-cluster first, then the kubeconfig), so a
    machine without any gets one line and an exit instead of a login retried every minute."""
    import kubernetes.config

    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException as in_cluster:
        try:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        # A malformed file raises whatever its parser does (YAML, KeyError, TypeError ...); each
        # means the same to the user, and its text is in the message.
        except Exception as kubeconfig:
            raise NoCredentials(
                f"no cluster credentials: not in a pod with a service account ({in_cluster}) and no usable "
                f"kubeconfig ({' '.join(str(kubeconfig).split())}); set KUBECONFIG or write ~/.kube/config"
            ) from None


def configure_logging(log_format: str, verbose: bool) -> None:
    """INFO (DEBUG with ``verbose``) with timestamps, for kopf's loggers and ours alike."""
    kopf.configure(verbose=verbose, log_format=LOG_FORMATS[log_format])


def _namespaced_scanning(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Serving named namespaces needs no cluster-wide list of namespaces or CRDs; without this kopf
    # asks for both, warns when the namespaced install's RBAC refuses, and falls back to the same.
    # (The operator's own watches list a kind not served, such as KEDA's ScaledObjects, again every
    # few minutes, so installing it later needs no restart.)
    settings.scanning.disabled = True


def serve_namespaces(operator: Operator, namespaces: Sequence[str]) -> None:
    """Configure ``operator`` for the namespaces it serves (none: the whole cluster)."""
    if namespaces:
        kopf.on.startup(registry=operator.registry)(_namespaced_scanning)


def run(
    *,
    namespaces: Sequence[str],
    metrics_port: int,
    health_port: int,
    peering: str,
    slow_nodes: Sequence[str] = (),
    config: OperatorConfig | None = None,
    log_format: str = "plain",
    verbose: bool = False,
) -> None:
    configure_logging(log_format, verbose)
    check_credentials()
    collector.tune()
    metrics = OperatorMetrics()
    if metrics_port:
        metrics.serve(metrics_port)
    operator = Operator(PrometheusReader, metrics, slow_nodes=slow_nodes, config=config, namespaces=namespaces)
    serve_namespaces(operator, namespaces)
    log = logging.getLogger(__name__)
    log.info("serving PDServingGroups in %s", ", ".join(namespaces) if namespaces else "all namespaces")
    if operator.config.shard is not None:
        shard = operator.config.shard
        log.info(
            "shard %s: groups labelled %s%s, nodes labelled %s",
            shard.name,
            shard.group_labels,
            " or without those labels" if shard.unlabelled_groups else "",
            shard.node_labels,
        )
    kopf.run(
        registry=operator.registry,
        clusterwide=not namespaces,
        namespaces=list(namespaces),
        liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz",
        # With a peering object, only the highest-priority replica acts; the others wait as hot standby.
        peering_name=peering or None,
        standalone=not peering,
    )
