"""Deployment manifests and patches for deployment groups (pure).

Owned Deployments are built from the role's pod template plus the group's labels, node affinity and
an ownerReference to the PDServingGroup, so Kubernetes' garbage collector removes them with it.
Referenced Deployments belong to the user: the operator only ever patches their replica count.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from heteroscale.api.crd import GROUP, KIND, VERSION
from heteroscale.api.spec import PDServingGroupSpec, Topology
from heteroscale.operator.naming import (
    LABEL_MANAGED_BY,
    LABEL_SERVING,
    MANAGER,
    SERVING,
    GroupPlan,
    role_spec,
    selector_labels,
)
from heteroscale.policy.ratio import pair_for

JsonObject = dict[str, Any]


def node_affinity(group: GroupPlan, topology: Topology) -> JsonObject:
    """Required node affinity: the group's GPU type and, when it has one, its colocation domain."""
    expressions = [{"key": topology.gpu_type_label, "operator": "In", "values": [group.gpu_type]}]
    if group.domain and topology.colocate:
        expressions.append({"key": topology.colocate, "operator": "In", "values": [group.domain]})
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": expressions}]}
    }


def owner_reference(pdsg: Mapping[str, Any]) -> JsonObject:
    meta = pdsg["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def deployment_manifest(pdsg: Mapping[str, Any], spec: PDServingGroupSpec, group: GroupPlan) -> JsonObject:
    """The Deployment the operator creates for an owned group."""
    source = role_spec(spec, group.role).template
    assert source is not None, "owned groups come from template-mode roles"
    template = copy.deepcopy(source)
    name = pdsg["metadata"]["name"]
    selector = selector_labels(name, group)
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**meta.get("labels", {}), **selector, LABEL_SERVING: SERVING}
    pod_spec = template.setdefault("spec", {})
    pod_spec["affinity"] = {**pod_spec.get("affinity", {}), "nodeAffinity": node_affinity(group, spec.topology)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": group.name,
            "namespace": pdsg["metadata"]["namespace"],
            "labels": {**selector, LABEL_MANAGED_BY: MANAGER},
            "ownerReferences": [owner_reference(pdsg)],
        },
        "spec": {
            "replicas": group.replicas,
            "selector": {"matchLabels": selector},
            "template": template,
        },
    }


def group_patch(deployment: Mapping[str, Any], group: GroupPlan, topology: Topology) -> JsonObject:
    """The merge patch that brings a Deployment to the group's replicas (and, for owned groups, its
    affinity); empty when nothing differs, so an idle tick writes nothing."""
    spec = deployment.get("spec", {})
    patch: JsonObject = {}
    if spec.get("replicas") != group.replicas:
        patch["replicas"] = group.replicas
    if group.owned:
        wanted = node_affinity(group, topology)
        current = spec.get("template", {}).get("spec", {}).get("affinity", {}).get("nodeAffinity")
        if current != wanted:
            patch["template"] = {"spec": {"affinity": {"nodeAffinity": wanted}}}
    return {"spec": patch} if patch else {}


def initial_replicas(spec: PDServingGroupSpec) -> tuple[int, int]:
    """Prefill and decode counts a new group starts with: the minimum pair that keeps the ratio."""
    pair = pair_for(spec, 0)
    return pair.prefill, pair.decode
