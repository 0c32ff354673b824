"""Other autoscalers that target our Deployments (pure).

Two controllers writing one replica count fight; the operator refuses to act instead. The
HorizontalPodAutoscalers and ScaledObjects come from kopf indexes keyed by the Deployment they
target, so a tick looks its Deployments up instead of listing autoscalers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

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
