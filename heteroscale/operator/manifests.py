"""Deployment manifests and patches for deployment groups (pure).

Owned Deployments get a pod template (placement's rendering in template mode: GPU type and domain
affinity, GPU requests, tolerations) plus the pod labels of :mod:`heteroscale.api.labels`, and a
controller ownerReference to the PDServingGroup: that reference is what makes a Deployment the
group's (the operator writes to no other), and Kubernetes' garbage collector removes them with it.
The template's hash sits in an annotation: the API server fills in defaults, so comparing
templates field by field would see a difference on every tick. Referenced Deployments belong to
the user: the operator only ever patches their replica count (and the annotation recording it).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heteroscale.api.crd import GROUP, KIND, VERSION
from heteroscale.api.labels import (
    ANNOTATION_DOMAIN,
    ANNOTATION_GPU_TYPE,
    ANNOTATION_LAST_REPLICAS,
    ANNOTATION_TEMPLATE_HASH,
    LABEL_MANAGED_BY,
    MANAGER,
    pod_labels,
    selector_labels,
)
from heteroscale.api.spec import PDServingGroupSpec, Topology
from heteroscale.operator.naming import GroupPlan, uses_placement
from heteroscale.placement import render_pod_template
from heteroscale.placement.topology import gpu_label_values
from heteroscale.policy.ratio import pair_for

JsonObject = dict[str, Any]


def node_affinity(group: GroupPlan, topology: Topology) -> JsonObject:
    """Required node affinity outside template mode: the role's GPU type at cluster scope."""
    expressions = [{"key": topology.gpu_type_label, "operator": "In", "values": gpu_label_values(group.gpu_type)}]
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


def pod_template(pdsg: str, spec: PDServingGroupSpec, group: GroupPlan) -> JsonObject | None:
    """The pod template the operator wants on the group's Deployment; None when it leaves the
    template alone (a referenced Deployment, or a group leaving the plan: only its replicas change)."""
    if group.planned is not None:
        template = render_pod_template(group.planned, spec, pdsg)
    elif group.owned and not uses_placement(spec):
        template = copy.deepcopy(spec.roles.of(group.role).template or {})
        pod_spec = template.setdefault("spec", {})
        pod_spec["affinity"] = {**pod_spec.get("affinity", {}), "nodeAffinity": node_affinity(group, spec.topology)}
    else:
        return None
    meta = template.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **pod_labels(pdsg, group.role.value, group.name, group.group)}
    return template


def template_hash(template: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PodTemplate:
    """A pod template and its hash (the annotation's value), hashed once: a sorted dump of the
    template costs more than the comparison it serves."""

    body: JsonObject
    digest: str

    @classmethod
    def of(cls, body: JsonObject) -> PodTemplate:
        return cls(body, template_hash(body))


def deployment_manifest(pdsg: Mapping[str, Any], group: GroupPlan, template: PodTemplate) -> JsonObject:
    """The Deployment the operator creates for an owned group."""
    name = pdsg["metadata"]["name"]
    selector = selector_labels(name, group.role.value, group.name)
    annotations = {ANNOTATION_TEMPLATE_HASH: template.digest, ANNOTATION_LAST_REPLICAS: str(group.replicas)}
    if group.planned is not None:
        annotations |= {ANNOTATION_GPU_TYPE: group.gpu_type, ANNOTATION_DOMAIN: group.domain}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": group.name,
            "namespace": pdsg["metadata"]["namespace"],
            "labels": {**selector, LABEL_MANAGED_BY: MANAGER},
            "annotations": annotations,
            "ownerReferences": [owner_reference(pdsg)],
        },
        "spec": {"replicas": group.replicas, "selector": {"matchLabels": selector}, "template": template.body},
    }


def group_patch(deployment: Mapping[str, Any], group: GroupPlan, template: PodTemplate | None) -> JsonObject:
    """The one merge patch that brings a Deployment to the group's replicas and, when given, pod
    template; empty when nothing differs, so an idle tick writes nothing. The replicas written are
    recorded in the same patch (:data:`ANNOTATION_LAST_REPLICAS`), which is how a later tick tells
    a person's edit from the operator's own write; a recorded count that differs (an edit the
    operator has now seen) is brought up to date too, so the edit is reported once."""
    patch: JsonObject = {}
    if deployment.get("spec", {}).get("replicas") != group.replicas:
        patch["spec"] = {"replicas": group.replicas}
    current = deployment.get("metadata", {}).get("annotations") or {}
    annotations: JsonObject = {}
    if current.get(ANNOTATION_LAST_REPLICAS) != str(group.replicas):
        annotations[ANNOTATION_LAST_REPLICAS] = str(group.replicas)
    if template is not None and current.get(ANNOTATION_TEMPLATE_HASH) != template.digest:
        patch.setdefault("spec", {})["template"] = template.body
        annotations[ANNOTATION_TEMPLATE_HASH] = template.digest
    if annotations:
        patch["metadata"] = {"annotations": annotations}
    return patch


def replicas_patch(replicas: int) -> JsonObject:
    """A merge patch setting the replicas and recording them as the operator's write."""
    return {"spec": {"replicas": replicas}, "metadata": {"annotations": {ANNOTATION_LAST_REPLICAS: str(replicas)}}}


def initial_replicas(spec: PDServingGroupSpec) -> tuple[int, int]:
    """Prefill and decode counts a new group starts with: the minimum pair that keeps the ratio."""
    pair = pair_for(spec, 0)
    return pair.prefill, pair.decode
