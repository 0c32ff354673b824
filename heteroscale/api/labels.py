"""Every label and annotation key HeteroScale writes or reads on Kubernetes objects, once.

One key per concept; placement, the operator and the simulator all import them from here.

A pod of deployment group ``g0`` of PDServingGroup ``chat``, prefill role, carries::

    heteroscale.io/pdservinggroup: chat              # LABEL_PDSG: which PDServingGroup
    heteroscale.io/role: prefill                     # LABEL_ROLE
    heteroscale.io/group: g0                         # LABEL_GROUP: the P/D pair (same on both roles)
    heteroscale.io/deployment: chat-prefill-g0       # LABEL_DEPLOYMENT: its Deployment
    heteroscale.io/serving: "true"                   # LABEL_SERVING: selected by the role's Service

The Deployment's selector is the first four minus the pair (:func:`selector_labels`): never the
serving label, which a drain flips without taking the pod out of its ReplicaSet.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "heteroscale.io"

LABEL_PDSG: Final = f"{PREFIX}/pdservinggroup"
LABEL_ROLE: Final = f"{PREFIX}/role"
LABEL_GROUP: Final = f"{PREFIX}/group"
"""The deployment group's id (``g0``, ``g1`` ...): the prefill and decode Deployments of one pair share it."""
LABEL_DEPLOYMENT: Final = f"{PREFIX}/deployment"
"""The Deployment a pod belongs to; placement's inventory counts bound instances per Deployment by it."""
LABEL_SERVING: Final = f"{PREFIX}/serving"
"""The role's Service selects ``"true"``; soft scale-in sets ``"false"`` on the pods about to go."""
SERVING: Final = "true"
NOT_SERVING: Final = "false"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGER: Final = "heteroscale"

ANNOTATION_TEMPLATE_HASH: Final = f"{PREFIX}/template-hash"
"""On an owned Deployment: the hash of the pod template the operator last wrote (the API server adds
defaults, so comparing templates field by field would differ on every tick)."""
ANNOTATION_GPU_TYPE: Final = f"{PREFIX}/gpu-type"
ANNOTATION_DOMAIN: Final = f"{PREFIX}/domain"
"""On an owned Deployment: the GPU type and colocation domain placement pinned it to, so a Deployment
the status does not list (a lost status write) is still understood as the group it is."""
ANNOTATION_ADOPT: Final = f"{PREFIX}/adopt"
"""Set on an existing Deployment, by whoever may edit it, to the name of the PDServingGroup that may
take it over when it wants a Deployment of that name; without it, a name clash is refused."""
ANNOTATION_LAST_REPLICAS: Final = f"{PREFIX}/last-replicas"
"""On a Deployment the operator scales: the replicas it last wrote, set in the same patch. A
Deployment asking for other replicas was edited by someone else (``kubectl scale``): a manual edit.
Absent (a Deployment the operator has not scaled yet): nothing to compare, no edit."""
ANNOTATION_DELETION_COST: Final = "controller.kubernetes.io/pod-deletion-cost"
"""Honoured by the ReplicaSet controller: among equally ready pods, the lowest cost is deleted first."""
DRAINED_DELETION_COST: Final = str(-(2**31))
"""The lowest int32: below any cost a user may have set, so exactly the drained pods go."""

#: Node label placement uses last when it is ``"true"`` (e.g. stragglers found by the analysis).
LABEL_SLOW_NODE: Final = f"{PREFIX}/slow"
#: The switch tiers' default node labels, leaf first.
TIER_LABELS: Final = (f"{PREFIX}/s0", f"{PREFIX}/s1", f"{PREFIX}/s2")


def selector_labels(pdsg: str, role: str, deployment: str) -> dict[str, str]:
    """The selector of an owned Deployment: which PDServingGroup, role and Deployment."""
    return {LABEL_PDSG: pdsg, LABEL_ROLE: role, LABEL_DEPLOYMENT: deployment}


def pod_labels(pdsg: str, role: str, deployment: str, group: str) -> dict[str, str]:
    """Every label the operator puts on the pods of an owned Deployment, serving included; a role
    outside placement belongs to no pair (``group`` empty) and gets no pair label."""
    pair = {LABEL_GROUP: group} if group else {}
    return {**selector_labels(pdsg, role, deployment), **pair, LABEL_SERVING: SERVING}
