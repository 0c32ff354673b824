"""Pods starting or stuck: a not-ready pod's age against ``behavior.podStartTimeoutSeconds`` (pure).

A pod's age runs from its ``metadata.creationTimestamp``, not from its ``PodScheduled`` condition or a
container start: an Unschedulable pod is never scheduled and a CrashLoopBackOff pod restarts its
containers for ever, and both must turn stuck after the timeout. The creation time is also what a
Deployment's own ``progressDeadlineSeconds`` is measured against, which the timeout's default
matches. A pod that was ready and stopped being so later (a crash after serving) is not starting
either: once past the timeout it counts as stuck straight away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any


def ready(pod: Mapping[str, Any]) -> bool:
    """The pod's ``Ready`` condition is True (what a Deployment's ``readyReplicas`` counts)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions if isinstance(c, Mapping))


def created(pod: Mapping[str, Any]) -> float | None:
    """Unix time of the pod's creation; None when the API server gave none or an unreadable one."""
    stamp = (pod.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def stuck(pods: Iterable[Mapping[str, Any]], now: float, timeout_seconds: float) -> int:
    """How many of ``pods`` are not ready ``timeout_seconds`` after their creation. A pod with no
    creation time is counted as starting: the timeout cannot be judged, and starting only delays a
    scale-in, while stuck would let one remove serving capacity around it."""
    return sum(
        1 for pod in pods if not ready(pod) and (born := created(pod)) is not None and now - born >= timeout_seconds
    )
