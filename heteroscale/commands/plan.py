"""``heteroscale plan``: what placement would do on a cluster, from kubectl's JSON, offline.

    heteroscale plan --nodes NODES.json --group PDSG.yaml --prefill P --decode D
                     [--pods PODS.json] [--slow-nodes NAMES] [--json FILE]

NODES.json / PODS.json are what ``kubectl get nodes -o json`` and ``kubectl get pods -A -o json``
print; PDSG.yaml is a PDServingGroup manifest (or just its spec). Nothing is sent to a cluster.
Exit status: 0 when every instance asked for is placed, 1 when some are not (the table says why),
2 on a mistake in the input.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heteroscale.commands.arguments import non_negative_int
from heteroscale.commands.errors import UserInputError
from heteroscale.commands.inputs import read_document, read_group
from heteroscale.commands.output import is_stdout, write_json

if TYPE_CHECKING:
    from heteroscale.api.spec import PDServingGroupSpec
    from heteroscale.placement import Plan

#: Exit status when the plan leaves instances unplaced.
UNSCHEDULABLE = 1
#: The list kinds ``kubectl get <kind>s -o json`` (``List``) and the API server (``<Kind>List``) print.
_LIST_KINDS = {"Node": {"List", "NodeList"}, "Pod": {"List", "PodList"}}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="show the deployment groups placement would create on a cluster (offline)",
        description="Plan prefill/decode deployment groups for one PDServingGroup on the nodes of "
        "`kubectl get nodes -o json`, without a cluster. Exits 1 when some instances cannot be placed.",
    )
    parser.add_argument("--nodes", type=Path, required=True, help="output of `kubectl get nodes -o json`")
    parser.add_argument("--group", type=Path, required=True, help="PDServingGroup manifest (YAML or JSON)")
    parser.add_argument("--prefill", type=non_negative_int, required=True, help="prefill instances wanted")
    parser.add_argument("--decode", type=non_negative_int, required=True, help="decode instances wanted")
    parser.add_argument("--pods", type=Path, help="output of `kubectl get pods -A -o json` (GPUs in use)")
    parser.add_argument("--slow-nodes", default="", metavar="NAMES", help="comma-separated node names to use last")
    parser.add_argument(
        "--json",
        type=Path,
        dest="json_out",
        metavar="FILE",
        help="also write the plan as JSON here; - for stdout alone",
    )
    parser.set_defaults(func=run)


def k8s_items(document: Any, kind: str, path: Path) -> list[dict[str, Any]]:
    """The objects of a ``kubectl get <kind>s -o json`` list, refusing anything else."""
    command = f"`kubectl get {kind.lower()}s -o json`"
    if not isinstance(document, dict) or document.get("kind") not in _LIST_KINDS[kind]:
        found = document.get("kind") if isinstance(document, dict) else type(document).__name__
        raise UserInputError(f"{path} is not a {kind} list ({found or 'no kind'}): give the output of {command}")
    items = document.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise UserInputError(f"{path}: items must be a list of {kind} objects, as {command} prints")
    others = sorted({i["kind"] for i in items if i.get("kind", kind) != kind})
    if others:
        raise UserInputError(f"{path} holds {', '.join(others)} objects, not {kind}s: give the output of {command}")
    return items


def unmatched_types(spec: PDServingGroupSpec, nodes: Iterable[dict[str, Any]]) -> list[str]:
    """One line per GPU type of the spec that no node carries, with the label values nodes do carry."""
    from heteroscale.placement.topology import gpu_type_of

    label = spec.topology.gpu_type_label
    values = (((n.get("metadata") or {}).get("labels") or {}).get(label) for n in nodes)
    seen = Counter(v for v in values if isinstance(v, str))
    types = {gpu_type_of(value) for value in seen}
    wanted = dict.fromkeys(t for role in (spec.roles.prefill, spec.roles.decode) for t in role.gpu_types)
    missing = [t for t in wanted if t not in types]
    if not missing:
        return []
    found = ", ".join(f"{value} ({count})" for value, count in sorted(seen.items())) or "none"
    return [
        f"no node has GPU type {t}: {label} values seen (nodes): {found}; gpuTypes are these values "
        "without an NVIDIA-/Tesla- prefix"
        for t in missing
    ]


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


def format_table(result: Plan, scope: str) -> str:
    row = "{:<40} {:<8} {:<16} {:<28} {:>8} {:>6}"
    lines = [row.format("DEPLOYMENT", "ROLE", "GPU", f"DOMAIN ({scope})", "REPLICAS", "NODES")]
    for g in result.groups:
        lines.append(row.format(g.name, g.role.value, g.gpu_type, g.domain or "-", g.replicas, g.nodes_available))
    lines += [f"{s.reason.value}: {s.message}" for s in result.unschedulable]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    # Imported here: building the parser for any command must not pay for numpy and the models.
    from heteroscale.placement import RoleTargets, inventory_from_k8s, plan

    manifest = read_group(args.group)
    spec = manifest.spec
    nodes = k8s_items(read_document(args.nodes, "nodes"), "Node", args.nodes)
    pods = k8s_items(read_document(args.pods, "pods"), "Pod", args.pods) if args.pods else []
    slow = [n for n in args.slow_nodes.split(",") if n]
    try:
        inventory = inventory_from_k8s(nodes, pods, spec.topology, slow)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise UserInputError(f"cannot read the cluster from {args.nodes}: {exc}") from None
    result = plan(inventory, [], RoleTargets(prefill=args.prefill, decode=args.decode), spec, manifest.name)

    if args.json_out:
        write_json(args.json_out, as_json(result))
    if not is_stdout(args.json_out):
        print(format_table(result, spec.topology.colocate or "cluster"))
    if result.unschedulable:
        for line in unmatched_types(spec, nodes):
            print(f"hint: {line}", file=sys.stderr)
        return UNSCHEDULABLE
    return 0
