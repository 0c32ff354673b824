"""The pod template of one planned Deployment: where it may run and what it requests (pure).

API::

    render_pod_template(group: PlannedGroup, spec: PDServingGroupSpec, pdsg: str,
                        slow_nodes: Collection[str] = ()) -> dict

returns a new pod template (the role's ``template`` is not modified) with:

* the pod labels of :func:`heteroscale.api.labels.pod_labels`: PDServingGroup, role, deployment
  group (the P/D pair), Deployment (which the inventory counts bound instances by) and serving;
  the operator uses the same keys for the Deployment's selector;
* required node affinity on the GPU type label (every spelling of the type, see
  :func:`~heteroscale.placement.topology.gpu_label_values`) and the colocation domain, ANDed into every
  required term the template already has (so the template's own choices still hold);
* preferred node affinity away from slow nodes (the slow label, and the straggler list by
  node name), so the scheduler uses them last;
* the template's pod affinity and anti-affinity kept, plus a preferred pod affinity towards the
  group's other role inside the tier below the colocation tier (shorter KV-cache path);
* ``<gpuResource>`` requests and limits of ``gpusPerInstance`` on the first container;
* the template's tolerations plus one of the ``<gpuResource>`` taint GPU nodes usually carry:
  exactly what the plan admitted the role's nodes by.

The operator puts the result in ``spec.template`` of the Deployment named ``group.name`` with
``replicas: group.replicas``.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from typing import Any

from heteroscale.api.enums import Role
from heteroscale.api.labels import LABEL_GROUP, LABEL_PDSG, LABEL_ROLE, pod_labels
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.placement.result import PlannedGroup
from heteroscale.placement.tolerations import rendered_tolerations
from heteroscale.placement.topology import gpu_label_values

#: Scheduler weights (1-100): avoiding a slow node matters more than sitting next to the peer role.
SLOW_NODE_WEIGHT = 100
PEER_WEIGHT = 50


def _required_expressions(group: PlannedGroup, spec: PDServingGroupSpec) -> list[dict[str, Any]]:
    topology = spec.topology
    expressions: list[dict[str, Any]] = [
        {"key": topology.gpu_type_label, "operator": "In", "values": gpu_label_values(group.gpu_type)}
    ]
    if topology.colocate:
        expressions.append({"key": topology.colocate, "operator": "In", "values": [group.domain]})
    return expressions


def _node_affinity(
    existing: dict[str, Any], group: PlannedGroup, spec: PDServingGroupSpec, slow_nodes: Collection[str]
) -> dict[str, Any]:
    ours = _required_expressions(group, spec)
    required = existing.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or [{}]
    # Terms are ORed and expressions ANDed: our expressions go into every term.
    merged_terms = [{**term, "matchExpressions": [*(term.get("matchExpressions") or []), *ours]} for term in terms]
    preferred = list(existing.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    avoid: dict[str, Any] = {
        "matchExpressions": [{"key": spec.topology.slow_node_label, "operator": "NotIn", "values": ["true"]}]
    }
    if slow_nodes:
        avoid["matchFields"] = [{"key": "metadata.name", "operator": "NotIn", "values": sorted(slow_nodes)}]
    preferred.append({"weight": SLOW_NODE_WEIGHT, "preference": avoid})
    return {
        **existing,
        "requiredDuringSchedulingIgnoredDuringExecution": {**required, "nodeSelectorTerms": merged_terms},
        "preferredDuringSchedulingIgnoredDuringExecution": preferred,
    }


def _pod_affinity(existing: dict[str, Any], group: PlannedGroup, spec: PDServingGroupSpec, pdsg: str) -> dict[str, Any]:
    tiers, colocate = spec.topology.tiers, spec.topology.colocate
    below = tiers.index(colocate) - 1 if colocate else len(tiers) - 1
    if below < 0:
        return existing
    peer = Role.DECODE if group.role is Role.PREFILL else Role.PREFILL
    term = {
        "weight": PEER_WEIGHT,
        "podAffinityTerm": {
            "labelSelector": {"matchLabels": {LABEL_PDSG: pdsg, LABEL_GROUP: group.group, LABEL_ROLE: peer.value}},
            "topologyKey": tiers[below],
        },
    }
    preferred = [*(existing.get("preferredDuringSchedulingIgnoredDuringExecution") or []), term]
    return {**existing, "preferredDuringSchedulingIgnoredDuringExecution": preferred}


def render_pod_template(
    group: PlannedGroup, spec: PDServingGroupSpec, pdsg: str, slow_nodes: Collection[str] = ()
) -> dict[str, Any]:
    """The pod template for ``group``'s Deployment (see the module docstring)."""
    role = spec.roles.of(group.role)
    if role.template is None:
        raise ValueError(
            f"the {group.role.value} role adopts a Deployment (deploymentRef); there is no template to render"
        )
    template: dict[str, Any] = copy.deepcopy(role.template)
    metadata = template.setdefault("metadata", {})
    labels = pod_labels(pdsg, group.role.value, group.name, group.group)
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    pod_spec = template.setdefault("spec", {})

    affinity = pod_spec.get("affinity") or {}
    affinity["nodeAffinity"] = _node_affinity(affinity.get("nodeAffinity") or {}, group, spec, slow_nodes)
    affinity["podAffinity"] = _pod_affinity(affinity.get("podAffinity") or {}, group, spec, pdsg)
    pod_spec["affinity"] = affinity

    resource = spec.topology.gpu_resource
    # The spec guarantees at least one container; the first one is the engine.
    resources = pod_spec["containers"][0].setdefault("resources", {})
    for kind in ("requests", "limits"):
        resources[kind] = {**(resources.get(kind) or {}), resource: str(group.gpus_per_instance)}

    # The same list the plan judged node taints by, so pods land only where it planned them.
    pod_spec["tolerations"] = rendered_tolerations(template, resource)
    return template
