"""Whose a Deployment or Pod is, judged by ownerReferences, never by name or labels (pure).

The operator scales in, drains or deletes only what a PDServingGroup owns (its controller
ownerReference), or, for ``deploymentRef``, what the group references by name in its own namespace
and no other controller manages. A Deployment that merely has the name the operator wants is not
taken: its owner may opt in with the :data:`~heteroscale.api.labels.ANNOTATION_ADOPT` annotation.
Pods are the Deployment's only through a ReplicaSet the Deployment controls (Pod → ReplicaSet →
Deployment, by uid), and they must match the Deployment's whole selector.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from heteroscale.api.labels import ANNOTATION_ADOPT

JsonObject = dict[str, Any]


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any (Kubernetes allows at most one)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if isinstance(r, Mapping) and r.get("controller") is True), None)


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    controller = controller_of(obj)
    return controller is not None and controller.get("uid") == uid


class Claim(Enum):
    """What the operator may do with a Deployment a group wants."""

    OURS = "ours"
    """Owned by the group (or referenced and managed by no other controller): act on it."""
    ADOPT = "adopt"
    """Not owned yet, but its owner asked this group to take it over: add the ownerReference first."""
    REFUSED = "refused"
    """Someone else's: touch nothing, say why."""


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    why: str = ""


def judge(deployment: Mapping[str, Any], *, owned: bool, group_uid: str, group_name: str) -> Verdict:
    """May the group act on ``deployment``? ``owned``: the group wants it as one it creates and owns
    (template mode) rather than as a ``deploymentRef``."""
    meta = deployment.get("metadata") or {}
    name = meta.get("name", "")
    kind = deployment.get("kind") or "Deployment"  # A /scale target's view carries its own kind.
    controller = controller_of(deployment)
    if controller is not None and controller.get("uid") == group_uid:
        return Verdict(Claim.OURS)
    if controller is not None:
        who = f"{controller.get('kind', '?')}/{controller.get('name', '?')}"
        return Verdict(
            Claim.REFUSED,
            f"{kind} {name} is controlled by {who}; two controllers on one {kind} fight. "
            "Remove that controller or point this PDServingGroup elsewhere",
        )
    if not owned:
        return Verdict(Claim.OURS)
    if (meta.get("annotations") or {}).get(ANNOTATION_ADOPT) == group_name:
        return Verdict(Claim.ADOPT)
    return Verdict(
        Claim.REFUSED,
        f"Deployment {name} exists but this PDServingGroup does not own it, so the operator will not "
        f"take it over. Delete or rename it, reference it with deploymentRef, or let this group adopt it: "
        f"kubectl annotate deployment {name} {ANNOTATION_ADOPT}={group_name}",
    )


def adopt_patch(deployment: Mapping[str, Any], owner: JsonObject) -> JsonObject:
    """Add ``owner`` as the controller ownerReference, keeping the others; ``resourceVersion``
    makes the write fail if someone changed the Deployment since it was judged."""
    meta = deployment.get("metadata") or {}
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != owner["uid"]]
    return {
        "metadata": {
            "ownerReferences": [*refs, owner],
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {ANNOTATION_ADOPT: None},
        }
    }


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (``matchLabels`` and ``matchExpressions``) against a label set, as the API
    server evaluates it. An empty selector matches nothing here: a Deployment always has one, and
    draining "everything" is never what a group means."""
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in {"In", "NotIn", "Exists", "DoesNotExist"}:
            return False  # An operator we do not know: match nothing rather than guess.
    return True


def selector_string(selector: Mapping[str, Any]) -> str:
    """The selector as a ``labelSelector`` query parameter (server-side narrowing only; every pod
    is checked again with :func:`selector_matches` and by ownership)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator in {"In", "NotIn"}:
            parts.append(f"{key} {operator.lower()} ({','.join(values)})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def pods_of(
    deployment: Mapping[str, Any], replica_sets: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The live pods of ``deployment``: controlled by a ReplicaSet that the Deployment controls, and
    matching its whole selector. Anything else with similar labels (another app, another
    Deployment's pods with overlapping labels) is left alone."""
    uid = (deployment.get("metadata") or {}).get("uid")
    if not uid:
        return []
    selector = (deployment.get("spec") or {}).get("selector") or {}
    ours = {(rs.get("metadata") or {}).get("uid") for rs in replica_sets if controlled_by(rs, uid)}
    ours.discard(None)
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        controller = controller_of(pod)
        if (
            meta.get("deletionTimestamp") is None
            and controller is not None
            and controller.get("kind") == "ReplicaSet"
            and controller.get("uid") in ours
            and selector_matches(selector, meta.get("labels") or {})
        ):
            out.append(pod)
    return out
