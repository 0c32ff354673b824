"""Soft scale-in: which pods leave, and the pod patches that take them out of serving (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from heteroscale.api.labels import ANNOTATION_DELETION_COST, DRAINED_DELETION_COST, LABEL_SERVING, NOT_SERVING, SERVING

JsonObject = dict[str, Any]


def _is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _cost(pod: Mapping[str, Any]) -> int:
    raw = (pod.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_DELETION_COST, "0")
    try:
        return int(raw)
    except ValueError:
        return 0


def _created(pod: Mapping[str, Any]) -> float:
    stamp = pod.get("metadata", {}).get("creationTimestamp")
    return datetime.fromisoformat(stamp).timestamp() if stamp else 0.0


def choose_pods_to_drain(pods: Iterable[Mapping[str, Any]], count: int) -> list[str]:
    """Names of ``count`` pods to remove, in the order the ReplicaSet controller would pick them:
    pods that serve nobody (not ready) first, then the lowest deletion cost, then the newest (it has
    the coldest caches). Ties break by name so the choice is deterministic."""
    if count <= 0:
        return []
    ranked = sorted(pods, key=lambda p: (_is_ready(p), _cost(p), -_created(p), p["metadata"]["name"]))
    return [p["metadata"]["name"] for p in ranked[:count]]


def out_of_serving_patch() -> JsonObject:
    """Take a pod out of the Service and make it the ReplicaSet's first choice for deletion."""
    return {
        "metadata": {
            "labels": {LABEL_SERVING: NOT_SERVING},
            "annotations": {ANNOTATION_DELETION_COST: DRAINED_DELETION_COST},
        }
    }


def back_in_serving_patch() -> JsonObject:
    """Undo :func:`out_of_serving_patch` (the pod never stopped running: no cold start)."""
    return {"metadata": {"labels": {LABEL_SERVING: SERVING}, "annotations": {ANNOTATION_DELETION_COST: None}}}
