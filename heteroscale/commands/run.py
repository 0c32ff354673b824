"""``heteroscale run``: the operator, against the cluster kubectl would talk to."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from heteroscale.api.config import OperatorConfig
from heteroscale.commands.arguments import port
from heteroscale.commands.errors import UserInputError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the PDServingGroup operator",
        description=(
            "Run the operator with the in-cluster service account, else the kubeconfig (KUBECONFIG or "
            "~/.kube/config), as kubectl does. Without either it exits at once with status 2."
        ),
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=[], metavar="NS", help="watch this namespace (repeatable)"
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (the default)")
    parser.add_argument("--metrics-port", type=port, default=9090, help="port of /metrics; 0 turns it off")
    parser.add_argument("--health-port", type=port, default=8080, help="port of the /healthz liveness endpoint")
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
    parser.add_argument(
        "--log-format",
        choices=("plain", "json"),
        default="plain",
        help="plain: timestamped text lines; json: one JSON object per line, for log collectors",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log at DEBUG instead of INFO")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    slow_nodes = read_slow_nodes(args.slow_nodes) if args.slow_nodes else []
    config = read_config(args.config) if args.config else None
    # Heavy imports here, so `heteroscale --help` works without kopf's import cost or a cluster.
    from heteroscale.operator.main import NoCredentials, run

    try:
        run(
            config=config,
            slow_nodes=slow_nodes,
            namespaces=args.namespace,
            metrics_port=args.metrics_port,
            health_port=args.health_port,
            peering=args.peering,
            log_format=args.log_format,
            verbose=args.verbose,
        )
    except NoCredentials as exc:
        raise UserInputError(str(exc)) from None
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
