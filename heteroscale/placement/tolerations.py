"""Taints and tolerations as the kube-scheduler applies them (pure).

Semantics follow ``Toleration.ToleratesTaint`` in k8s.io/api/core/v1: a toleration with an
effect matches only taints of that effect (empty matches every effect); with a key, only taints
of that key (empty key matches every key); operator ``Exists`` matches any value, ``Equal`` (the
default) only the same value. ``tolerationSeconds`` does not affect scheduling.

A role may use a node when every ``NoSchedule``/``NoExecute`` taint on it is tolerated by the
role's pod template plus the GPU toleration that rendering adds (:func:`role_tolerations`, so
plans and rendered Deployments agree by construction). An untolerated ``PreferNoSchedule``
taint only makes the node a last resort, like a slow node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
SOFT_EFFECT = "PreferNoSchedule"


class Taint(NamedTuple):
    """A node taint that affects scheduling. A named tuple (immutable and ordered field by field,
    like the frozen dataclasses here), because the capacity index counts nodes by their taints:
    tuples hash and compare in C, where a dataclass calls Python for each of 10,000 nodes."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"

    @classmethod
    def from_k8s(cls, taint: Mapping[str, Any]) -> Taint:
        return cls(str(taint.get("key") or ""), str(taint.get("value") or ""), str(taint.get("effect") or ""))


@dataclass(frozen=True, order=True)
class Toleration:
    """One entry of a pod's ``spec.tolerations``."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    @classmethod
    def from_k8s(cls, toleration: Mapping[str, Any]) -> Toleration:
        return cls(
            str(toleration.get("key") or ""),
            str(toleration.get("operator") or "Equal"),
            str(toleration.get("value") or ""),
            str(toleration.get("effect") or ""),
        )

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        # Unknown operators are rejected by API validation; treat them as tolerating nothing.
        return self.operator == "Equal" and self.value == taint.value


#: What a role tolerates: its template's tolerations plus the GPU one, in a canonical order.
View = tuple[Toleration, ...]


def tolerated(view: Iterable[Toleration], taint: Taint) -> bool:
    return any(t.tolerates(taint) for t in view)


def gpu_toleration(gpu_resource: str) -> dict[str, str]:
    """The toleration of the ``<gpuResource>`` taint that every rendered Deployment carries."""
    return {"key": gpu_resource, "operator": "Exists", "effect": "NoSchedule"}


def rendered_tolerations(template: Mapping[str, Any] | None, gpu_resource: str) -> list[dict[str, Any]]:
    """The tolerations a rendered pod template carries: the template's own, plus the GPU one."""
    tolerations = list(((template or {}).get("spec") or {}).get("tolerations") or [])
    if gpu_toleration(gpu_resource) not in tolerations:
        tolerations.append(gpu_toleration(gpu_resource))
    return tolerations


def role_view(template: Mapping[str, Any] | None, gpu_resource: str) -> View:
    """What a role rendered from ``template`` tolerates (a role adopting a Deployment has no
    template: then only the GPU taint)."""
    return tuple(sorted(set(map(Toleration.from_k8s, rendered_tolerations(template, gpu_resource)))))


def admits(view: View, taints: Iterable[Taint]) -> tuple[bool, bool]:
    """(may use the node, only as a last resort) for a node with ``taints``."""
    usable, soft = True, False
    for taint in taints:
        if taint.effect in HARD_EFFECTS:
            usable = usable and tolerated(view, taint)
        elif taint.effect == SOFT_EFFECT:
            soft = soft or not tolerated(view, taint)
    return usable, soft
