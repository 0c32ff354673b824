"""``heteroscale run``: the operator, against the cluster kubectl would talk to."""

from __future__ import annotations

import argparse
from typing import Any


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
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    # Heavy imports here, so `heteroscale --help` works without kopf's import cost or a cluster.
    from heteroscale.operator.main import run

    run(
        namespaces=args.namespace,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        peering=args.peering,
    )
    return 0
