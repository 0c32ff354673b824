"""What the operator's kopf indexes keep of Nodes and Pods (pure).

Placement needs every GPU node and every bound pod that requests GPUs; listing them on every tick
would cost one cluster-wide LIST per PDServingGroup per tick. kopf indexes keep them from the
watch instead, trimmed to the fields :func:`heteroscale.placement.inventory_from_k8s` reads.

Which extended resource is a GPU is each spec's ``topology.gpuResource``, unknown when an object is
indexed, so a node or pod is kept when it offers or requests any extended resource (a
domain-qualified name outside ``kubernetes.io``): a superset of every possible GPU resource, and
small (CPU-only nodes and pods are left out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

JsonObject = dict[str, Any]

_TERMINATED_PHASES = frozenset({"Succeeded", "Failed"})


def _extended(names: Iterable[str]) -> bool:
    return any("/" in name and not name.split("/", 1)[0].endswith("kubernetes.io") for name in names)


def _resources(container: Mapping[str, Any]) -> JsonObject:
    resources = container.get("resources") or {}
    return {kind: dict(resources[kind]) for kind in ("requests", "limits") if resources.get(kind)}


def gpu_node(node: Mapping[str, Any]) -> JsonObject | None:
    """The node as placement reads it, or None for a node without extended resources."""
    status = node.get("status") or {}
    allocatable = status.get("allocatable") or {}
    if not _extended(allocatable):
        return None
    meta, spec = node.get("metadata") or {}, node.get("spec") or {}
    return {
        "metadata": {"name": meta.get("name"), "labels": dict(meta.get("labels") or {})},
        "spec": {"unschedulable": spec.get("unschedulable", False), "taints": list(spec.get("taints") or [])},
        "status": {"allocatable": dict(allocatable), "conditions": list(status.get("conditions") or [])},
    }


def gpu_pod(pod: Mapping[str, Any]) -> JsonObject | None:
    """The pod as placement reads it, or None unless it is bound to a node, still running or about
    to, and requests an extended resource (only such pods take GPUs from a node)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in _TERMINATED_PHASES:
        return None
    containers = [_resources(c) for c in spec.get("containers") or []]
    init = [_resources(c) for c in spec.get("initContainers") or []]
    if not any(_extended(names) for r in containers + init for names in r.values()):
        return None
    meta = pod.get("metadata") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": dict(meta.get("labels") or {}),
        },
        "spec": {
            "nodeName": spec["nodeName"],
            "containers": [{"resources": r} for r in containers],
            "initContainers": [{"resources": r} for r in init],
        },
        "status": {"phase": status.get("phase")},
    }
