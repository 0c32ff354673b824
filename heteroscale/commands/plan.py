"""``heteroscale plan``: what placement would do on a cluster, from kubectl's JSON, offline.

    heteroscale plan --nodes NODES.json --group PDSG.yaml --prefill P --decode D
                     [--pods PODS.json] [--slow-nodes NAMES] [--json FILE]

NODES.json / PODS.json are what ``kubectl get nodes -o json`` and ``kubectl get pods -A -o json``
print; PDSG.yaml is a PDServingGroup manifest (or just its spec). Nothing is sent to a cluster.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.cli import UserInputError
from heteroscale.placement import Plan, RoleTargets, inventory_from_k8s, plan


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show the deployment groups placement would create on a cluster (offline)",
        description="Plan prefill/decode deployment groups for one PDServingGroup on the nodes of "
        "`kubectl get nodes -o json`, without a cluster.",
    )
    parser.add_argument("--nodes", type=Path, required=True, help="output of `kubectl get nodes -o json`")
    parser.add_argument("--group", type=Path, required=True, help="PDServingGroup manifest (YAML)")
    parser.add_argument("--prefill", type=int, required=True, help="prefill instances wanted")
    parser.add_argument("--decode", type=int, required=True, help="decode instances wanted")
    parser.add_argument("--pods", type=Path, help="output of `kubectl get pods -A -o json` (GPUs in use)")
    parser.add_argument("--slow-nodes", default="", help="comma-separated node names to use last")
    parser.add_argument("--json", type=Path, dest="json_out", help="also write the plan as JSON to this file")
    parser.set_defaults(func=run)


def _read(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path} is not valid JSON/YAML: {exc}") from None


def _items(document: Any, kind: str, path: Path) -> list[dict[str, Any]]:
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise UserInputError(f"{path} is not a {kind} list as `kubectl get {kind.lower()}s -o json` prints it")
    return items


def _spec(document: Any, path: Path) -> tuple[str, PDServingGroupSpec]:
    if not isinstance(document, dict):
        raise UserInputError(f"{path} is not a PDServingGroup manifest")
    body = document.get("spec", document) if document.get("kind") == "PDServingGroup" else document
    name = (document.get("metadata") or {}).get("name") or path.stem
    try:
        return name, PDServingGroupSpec.model_validate(body)
    except ValidationError as exc:
        raise UserInputError(f"{path}: invalid PDServingGroup spec:\n{exc}") from None


def as_json(result: Plan) -> dict[str, Any]:
    return {
        "groups": [
            {"name": g.name, "role": g.role.value, "gpu_type": g.gpu_type, "domain": g.domain, "replicas": g.replicas}
            for g in result.groups
        ],
        "unschedulable": [
            {
                "role": s.role.value,
                "gpu_type": s.gpu_type,
                "instances": s.instances,
                "reason": s.reason.value,
                "message": s.message,
            }
            for s in result.unschedulable
        ],
    }


def run(args: argparse.Namespace) -> int:
    if args.prefill < 0 or args.decode < 0:
        raise UserInputError("--prefill and --decode must be >= 0")
    name, spec = _spec(_read(args.group, "PDServingGroup"), args.group)
    nodes = _items(_read(args.nodes, "nodes"), "Node", args.nodes)
    pods = _items(_read(args.pods, "pods"), "Pod", args.pods) if args.pods else []
    slow = [n for n in args.slow_nodes.split(",") if n]
    try:
        inventory = inventory_from_k8s(nodes, pods, spec.topology, slow)
    except (KeyError, ValueError) as exc:
        raise UserInputError(f"cannot read the cluster: {exc}") from None
    result = plan(inventory, [], RoleTargets(prefill=args.prefill, decode=args.decode), spec, name)

    scope = spec.topology.colocate or "cluster"
    row = "{:<40} {:<8} {:<8} {:<28} {:>8} {:>6}"
    print(row.format("DEPLOYMENT", "ROLE", "GPU", f"DOMAIN ({scope})", "REPLICAS", "NODES"))
    for g in result.groups:
        print(row.format(g.name, g.role.value, g.gpu_type, g.domain or "-", g.replicas, g.nodes_available))
    for s in result.unschedulable:
        print(f"{s.reason.value}: {s.message}")
    if args.json_out:
        args.json_out.write_text(json.dumps(as_json(result), indent=2) + "\n")
    return 0
