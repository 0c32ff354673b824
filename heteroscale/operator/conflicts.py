"""Other autoscalers that target our Deployments or /scale targets (pure).

Two controllers writing one replica count fight; the operator refuses to act instead. The
HorizontalPodAutoscalers, ScaledObjects and other PDServingGroups' ``deploymentRef`` come from the
operator's watches, keyed by the Deployment they target, so a tick looks its Deployments up instead of listing.
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


def target_key(kind: str, name: str) -> str:
    """What the indexes key a scaled workload by: a Deployment by its name, any other kind by
    ``Kind/name`` (never a Deployment's name, which has no slash)."""
    return name if kind == "Deployment" else f"{kind}/{name}"


def autoscaler_target(kind: str, obj: Mapping[str, Any]) -> tuple[tuple[str, str], str] | None:
    """``((namespace, target key), "kind/name targets Kind T")`` for an autoscaling/v2 HPA or a
    KEDA ScaledObject (a ScaledObject's target kind defaults to Deployment); None when it names no
    target. The target's kind is in the key (:func:`target_key`), so an HPA on a LeaderWorkerSet
    conflicts with a group that scales that LeaderWorkerSet, and not with a Deployment of its name."""
    target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    target_kind = target.get("kind", "Deployment" if kind == SCALED_OBJECT else None)
    if not target_kind or not target.get("name"):
        return None
    meta = obj.get("metadata") or {}
    key = (str(meta.get("namespace", "")), target_key(str(target_kind), str(target["name"])))
    return key, f"{kind}/{meta.get('name')} targets {target_kind} {target['name']}"


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
        if not isinstance(role, Mapping):
            continue
        deployment, target = role.get("deploymentRef"), role.get("scaleTargetRef")
        if isinstance(deployment, Mapping) and isinstance(deployment.get("name"), str):
            out[(str(meta.get("namespace", "")), deployment["name"])] = me
        if isinstance(target, Mapping) and isinstance(target.get("name"), str):
            key = target_key(str(target.get("kind", "")), target["name"])
            out[(str(meta.get("namespace", "")), key)] = me
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
                kind, _, target = deployment.rpartition("/")
                found.add(f"{KIND}/{name} already scales {kind or 'Deployment'} {target}")
    return sorted(found)
