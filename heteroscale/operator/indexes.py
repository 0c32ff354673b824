"""What the operator's watches keep of Nodes, Pods, Deployments and other autoscalers, and the
keys each is found by (pure): the index functions of its stores (:mod:`heteroscale.operator.store`).

Placement needs every GPU node and every bound pod that requests GPUs, and every tick needs its
group's Deployments and the autoscalers that target them; listing or fetching them on every tick
would cost requests per PDServingGroup per tick. The operator's watches
(:mod:`heteroscale.operator.watch`) keep them instead, trimmed to the fields that are read:
:func:`heteroscale.placement.inventory_from_k8s` for nodes and pods, and for Deployments what
ownership, the policy's observation and the patches read (:func:`deployment`).

Which extended resource is a GPU is each spec's ``topology.gpuResource``, unknown when an object is
indexed, so a node or pod is kept when it offers or requests any extended resource (a
domain-qualified name outside ``kubernetes.io``): a superset of every possible GPU resource, and
small (CPU-only nodes and pods are left out).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from heteroscale.api.config import Shard
from heteroscale.operator.conflicts import autoscaler_target
from heteroscale.operator.store import name_of

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


def deployment(obj: Mapping[str, Any]) -> JsonObject:
    """A Deployment as a tick reads it: identity, labels and the annotations and ownerReferences
    that say whose it is, its replicas and selector, and its readiness. The pod template is left
    out (its hash is an annotation)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    return {
        "metadata": {
            key: meta.get(key)
            for key in ("name", "namespace", "uid", "resourceVersion", "labels", "annotations", "ownerReferences")
            if meta.get(key) is not None
        },
        "spec": {"replicas": spec.get("replicas"), "selector": spec.get("selector") or {}},
        "status": {key: status[key] for key in ("replicas", "readyReplicas") if key in status},
    }


def deployment_keys(obj: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The keys a Deployment is found by: its name, and its controller's uid (the group that owns it)."""
    meta = obj.get("metadata") or {}
    namespace, name = name_of(obj)
    keys: list[tuple[str, ...]] = [("name", namespace, name)]
    owners = [r for r in meta.get("ownerReferences") or [] if isinstance(r, Mapping) and r.get("controller") is True]
    if owners and owners[0].get("uid"):
        keys.append(("owner", str(owners[0]["uid"])))
    return keys


def node_index(shard: Shard | None) -> Callable[[Mapping[str, Any]], dict[str, JsonObject]]:
    """A GPU node of ``shard`` (of any shard without one) by its name."""

    def index(obj: Mapping[str, Any]) -> dict[str, JsonObject]:
        meta = obj.get("metadata") or {}
        if shard is not None and not shard.places_on(meta.get("labels") or {}):
            return {}
        node = gpu_node(obj)
        return {} if node is None else {str(meta.get("name", "")): node}

    return index


def pod_index(obj: Mapping[str, Any]) -> dict[tuple[str, str], JsonObject]:
    """A pod that takes GPUs by (namespace, name)."""
    pod = gpu_pod(obj)
    return {} if pod is None else {name_of(obj): pod}


def deployment_index(obj: Mapping[str, Any]) -> dict[tuple[str, ...], JsonObject]:
    """A Deployment, trimmed, by each of :func:`deployment_keys`."""
    trimmed = deployment(obj)
    return dict.fromkeys(deployment_keys(obj), trimmed)


def autoscaler_index(kind: str) -> Callable[[Mapping[str, Any]], dict[tuple[str, str], str]]:
    """An HPA or ScaledObject (``kind``) by the workload it targets
    (:func:`~heteroscale.operator.conflicts.autoscaler_target`)."""

    def index(obj: Mapping[str, Any]) -> dict[tuple[str, str], str]:
        found = autoscaler_target(kind, obj)
        return {} if found is None else dict([found])

    return index
