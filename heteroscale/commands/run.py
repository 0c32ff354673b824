"""``heteroscale run``: the operator, against the cluster kubectl would talk to."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from heteroscale.api.config import OperatorConfig
from heteroscale.cli import UserInputError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the PDServingGroup operator",
        description=(
            "Run the operator with the kubeconfig (KUBECONFIG or ~/.kube/config) or the in-cluster "
            "service account, as kubectl does."
        ),
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], metavar="NS", help="watch this namespace (repeatable)"
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)")
    parser.add_argument("--metrics-port", type=int, default=9090, help="port of /metrics (0 to disable)")
    parser.add_argument("--health-port", type=int, default=8080, help="port of the /healthz liveness endpoint")
    parser.add_argument(
        "--peering", metavar="NAME", default="", help="kopf peering object for one active replica; none: standalone"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the cluster admin's configuration: Prometheus endpoints (URL, CA, token files), which namespaces "
        "may use each, cluster-wide queries and priority grants (default: one endpoint 'default' at "
        "http://prometheus.monitoring:9090 for every namespace)",
    )
    parser.add_argument(
        "--slow-nodes",
        type=Path,
        metavar="FILE",
        help="JSON of nodes placement uses last, as `heteroscale stragglers serve --slow-nodes` writes (read at start)",
    )
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    # Heavy imports here, so `heteroscale --help` works without kopf's import cost or a cluster.
    slow_nodes = read_slow_nodes(args.slow_nodes) if args.slow_nodes else []
    config = read_config(args.config) if args.config else None
    from heteroscale.operator.main import run

    run(
        config=config,
        slow_nodes=slow_nodes,
        namespaces=args.namespace,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        peering=args.peering,
    )
    return 0


def read_slow_nodes(path: Path) -> list[str]:
    from heteroscale.stragglers.exporter import parse_slow_nodes

    try:
        return parse_slow_nodes(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserInputError(f"cannot read --slow-nodes {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UserInputError(f"--slow-nodes {path}: {exc}") from None


def read_config(path: Path) -> OperatorConfig:
    from heteroscale.api.config import load_config

    try:
        return load_config(path)
    except ValueError as exc:
        raise UserInputError(f"--config {exc}") from None
