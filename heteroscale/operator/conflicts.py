"""Other autoscalers that target our Deployments (pure).

Two controllers writing one replica count fight; the operator refuses to act instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def conflicting_autoscalers(
    hpas: Iterable[Mapping[str, Any]], scaled_objects: Iterable[Mapping[str, Any]], deployments: Iterable[str]
) -> list[str]:
    """``kind/name`` of every autoscaling/v2 HPA or KEDA ScaledObject whose scale target is one of
    the Deployments (a ScaledObject's target kind defaults to Deployment)."""
    names = set(deployments)
    found = []
    for kind, objects, default_kind in (
        ("HorizontalPodAutoscaler", hpas, None),
        ("ScaledObject", scaled_objects, "Deployment"),
    ):
        for obj in objects:
            target = obj.get("spec", {}).get("scaleTargetRef", {})
            if target.get("kind", default_kind) == "Deployment" and target.get("name") in names:
                found.append(f"{kind}/{obj['metadata']['name']} targets Deployment {target['name']}")
    return sorted(found)
