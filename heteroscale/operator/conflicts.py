"""Other autoscalers that target our Deployments (pure).

Two controllers writing one replica count fight; the operator refuses to act instead. The
HorizontalPodAutoscalers, ScaledObjects and other PDServingGroups' ``deploymentRef`` come from kopf
indexes keyed by the Deployment they target, so a tick looks its Deployments up instead of listing.
Between two PDServingGroups on one Deployment the one created first keeps it and the later one is
refused, so a running group is never stopped by a newcomer. (Owned Deployments cannot be shared:
another group finds the owner's controller reference on them, see :mod:`ownership`.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from heteroscale.api.crd import KIND

HPA = "HorizontalPodAutoscaler"
SCALED_OBJECT = "ScaledObject"


def autoscaler_target(kind: str, obj: Mapping[str, Any]) -> tuple[tuple[str, str], str] | None:
    """``((namespace, Deployment), "kind/name targets Deployment D")`` for an autoscaling/v2 HPA or a
    KEDA ScaledObject that scales a Deployment (a ScaledObject's target kind defaults to
    Deployment); None when it targets something else."""
    target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    default_kind = "Deployment" if kind == SCALED_OBJECT else None
    if target.get("kind", default_kind) != "Deployment" or not target.get("name"):
        return None
    meta = obj.get("metadata") or {}
    key = (str(meta.get("namespace", "")), str(target["name"]))
    return key, f"{kind}/{meta.get('name')} targets Deployment {target['name']}"


def conflicting_autoscalers(
    by_target: Iterable[Mapping[tuple[str, str], Iterable[str]]], namespace: str, deployments: Iterable[str]
) -> list[str]:
    """Every autoscaler (from the indexes ``by_target``) that targets one of the Deployments."""
    return sorted({m for index in by_target for d in deployments for m in index.get((namespace, d), ())})


def group_references(obj: Mapping[str, Any]) -> dict[tuple[str, str], tuple[str, str, str]]:
    """``{(namespace, Deployment): (creationTimestamp, uid, name)}`` for each Deployment a
    PDServingGroup references; empty for one being deleted (it lets go of them)."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return {}
    roles = (obj.get("spec") or {}).get("roles") or {}
    me = (str(meta.get("creationTimestamp", "")), str(meta.get("uid", "")), str(meta.get("name", "")))
    out = {}
    for role in roles.values():
        ref = (role or {}).get("deploymentRef") if isinstance(role, Mapping) else None
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
            out[(str(meta.get("namespace", "")), ref["name"])] = me
    return out


def conflicting_groups(
    references: Mapping[tuple[str, str], Iterable[tuple[str, str, str]]],
    namespace: str,
    deployments: Sequence[str],
    me: Mapping[str, Any],
) -> list[str]:
    """The earlier-created PDServingGroups that reference one of these Deployments too."""
    mine = (str(me.get("creationTimestamp", "")), str(me.get("uid", "")))
    found = set()
    for deployment in deployments:
        for created, uid, name in references.get((namespace, deployment), ()):
            if uid != mine[1] and (created, uid) < mine:
                found.add(f"{KIND}/{name} already scales Deployment {deployment}")
    return sorted(found)
