"""The GPU inventory placement plans against: nodes, their GPU type, free GPUs and switch domains.

This module owns the translation from Kubernetes objects (the plain dicts that ``kubectl get -o
json`` prints and that a watch delivers) into :class:`Inventory`. It is pure: no API calls, no
clock. The operator keeps the dicts current from its own watches of Nodes and Pods and calls
:func:`inventory_from_k8s` when what they keep changed.

API::

    inventory_from_k8s(nodes: Iterable[Mapping], pods: Iterable[Mapping], topology: Topology,
                       slow_nodes: Collection[str] = ()) -> Inventory
    Inventory(nodes: tuple[Node, ...], bound: Mapping[str, int], topology: Topology)
    Node(name, gpu_type, allocatable, requested, tiers, schedulable, slow, taints=())

Rules:

* GPUs requested by a pod count against its node once the pod is bound (``spec.nodeName``) and
  until it terminates (phase Succeeded or Failed); a pod's request is the larger of the sum over
  its containers and the largest init container, as the kube-scheduler counts it.
* A node is schedulable when it is not cordoned and its Ready condition is not False/Unknown.
  Its taints are kept: each role uses the nodes whose hard taints its pod template tolerates
  (see :mod:`heteroscale.placement.tolerations`).
* A node is slow when ``topology.slowNodeLabel`` is ``"true"`` or its name is in ``slow_nodes``
  (e.g. from the straggler analysis); plans use slow nodes last.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from heteroscale.api.labels import LABEL_DEPLOYMENT
from heteroscale.api.spec import Topology
from heteroscale.placement.tolerations import HARD_EFFECTS, SOFT_EFFECT, Taint
from heteroscale.placement.topology import gpu_type_of

_EFFECTS = HARD_EFFECTS | {SOFT_EFFECT}
_TERMINATED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class Node:
    """One GPU node as placement sees it."""

    name: str
    gpu_type: str
    allocatable: int
    """GPUs the node offers (``status.allocatable[<gpuResource>]``)."""
    requested: int
    """GPUs already requested by pods bound to the node."""
    tiers: tuple[str | None, ...]
    """The node's domain at each ``topology.tiers`` label, leaf first; None where unlabelled."""
    schedulable: bool
    """Not cordoned and Ready (taints are judged per role)."""
    slow: bool
    taints: tuple[Taint, ...] = ()
    """Taints that affect scheduling (NoSchedule, NoExecute, PreferNoSchedule), sorted."""

    @property
    def free(self) -> int:
        return max(0, self.allocatable - self.requested)


@dataclass(frozen=True)
class Inventory:
    """All GPU nodes, plus the instances already bound per deployment group."""

    nodes: tuple[Node, ...]
    bound: Mapping[str, int]
    """Bound, non-terminated pods per ``<namespace>/<deployment name>`` (from :data:`LABEL_DEPLOYMENT`)."""
    topology: Topology
    """The labels ``nodes`` were read with; plans must use the same."""

    def bound_instances(self, namespace: str, deployment: str) -> int:
        return self.bound.get(bound_key(namespace, deployment), 0)


def bound_key(namespace: str, deployment: str) -> str:
    """The key of :attr:`Inventory.bound` for a deployment group's Deployment."""
    return f"{namespace}/{deployment}"


def gpu_count(value: object) -> int:
    """A GPU quantity: extended resources are whole numbers, given as ``8`` or ``"8"``."""
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"GPU quantity {value!r} is not a whole number") from None


def _pod_gpus(pod_spec: Mapping[str, Any], resource: str) -> int:
    def request(container: Mapping[str, Any]) -> int:
        resources = container.get("resources") or {}
        # Extended resources may give only limits; the API server then copies them to requests.
        amount = (resources.get("requests") or {}).get(resource, (resources.get("limits") or {}).get(resource, 0))
        return gpu_count(amount)

    main = sum(request(c) for c in pod_spec.get("containers") or ())
    init = max((request(c) for c in pod_spec.get("initContainers") or ()), default=0)
    return max(main, init)


def _schedulable(node: Mapping[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conditions = (node.get("status") or {}).get("conditions") or ()
    return all(c.get("status") == "True" for c in conditions if c.get("type") == "Ready")


def inventory_from_k8s(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    topology: Topology,
    slow_nodes: Collection[str] = (),
) -> Inventory:
    """Build the inventory from Node and Pod objects. Nodes without the GPU type label or without
    allocatable GPUs are not GPU nodes and are left out."""
    resource = topology.gpu_resource
    requested: Counter[str] = Counter()
    bound: Counter[str] = Counter()
    for pod in pods:
        spec = pod.get("spec") or {}
        node_name = spec.get("nodeName")
        if not node_name or (pod.get("status") or {}).get("phase") in _TERMINATED_PHASES:
            continue
        requested[node_name] += _pod_gpus(spec, resource)
        meta = pod.get("metadata") or {}
        group = (meta.get("labels") or {}).get(LABEL_DEPLOYMENT)
        if group:
            bound[bound_key(meta.get("namespace", ""), group)] += 1

    slow_names = frozenset(slow_nodes)
    result: list[Node] = []
    for node in nodes:
        meta = node.get("metadata") or {}
        labels = meta.get("labels") or {}
        label = labels.get(topology.gpu_type_label)
        allocatable = gpu_count(((node.get("status") or {}).get("allocatable") or {}).get(resource, 0))
        if not label or allocatable <= 0:
            continue
        gpu_type = gpu_type_of(label)
        name = meta["name"]
        taints = (node.get("spec") or {}).get("taints") or ()
        result.append(
            Node(
                name=name,
                gpu_type=gpu_type,
                allocatable=allocatable,
                requested=requested[name],
                tiers=tuple(labels.get(tier) for tier in topology.tiers),
                schedulable=_schedulable(node),
                slow=labels.get(topology.slow_node_label) == "true" or name in slow_names,
                taints=tuple(sorted({t for t in map(Taint.from_k8s, taints) if t.effect in _EFFECTS})),
            )
        )
    result.sort(key=lambda n: n.name)
    return Inventory(nodes=tuple(result), bound=dict(bound), topology=topology)
