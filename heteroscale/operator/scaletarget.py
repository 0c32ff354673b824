"""A ``scaleTargetRef`` workload (any kind serving ``/scale``, e.g. a LeaderWorkerSet), read and
written as a Deployment-shaped view, so the tick, the policy's observation and the drains handle it
through the same code as a referenced Deployment.

What is read, every tick (no kopf index: the kinds are the admin's, unknown until the config is):

* ``GET <target>``: its uid (what owns its pods) and its ownerReferences (another controller on it
  is a conflict, as for a Deployment);
* ``GET <target>/scale``: ``spec.replicas`` (asked) and ``status.selector`` (which pods are its);
* its pods: those matching that selector *and* owned by the target, directly or through an
  intermediate apps/v1 StatefulSet or ReplicaSet that the target controls (LeaderWorkerSet →
  leader StatefulSet → leader pods). Their ``Ready`` condition counts as the view's ``readyReplicas``.

What is written: ``PATCH <target>/scale`` with ``{"spec": {"replicas": n}}``, nothing else. The
replicas the operator last wrote cannot sit in an annotation on the target (``/scale`` carries no
metadata, and patching the target itself would need more RBAC), so they come from the group's own
status (``status.groups[].writtenReplicas``) into the view's annotation, where
:func:`heteroscale.operator.observe.manual_edit` reads them as for a Deployment.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from typing import Any

from heteroscale.api.config import ScaleTargetKind
from heteroscale.api.labels import ANNOTATION_LAST_REPLICAS
from heteroscale.api.spec import ScaleTargetRef
from heteroscale.operator import labelselector, ownership, startup
from heteroscale.operator.kube import JsonObject, KubeClient, NotFound

#: The key that marks a dict as a view of a /scale target (no Kubernetes object has it).
_VIEW = "scaleTarget"
#: Intermediate owners a target may own its pods through, with their plural (apps/v1).
_INTERMEDIATE = {"StatefulSet": "statefulsets", "ReplicaSet": "replicasets"}
_ORDINAL = re.compile(r"-([0-9]+)$")


def is_view(obj: Mapping[str, Any] | None) -> bool:
    """Whether ``obj`` is a view of a /scale target rather than a Deployment."""
    return obj is not None and _VIEW in obj


def conflict_key(ref: ScaleTargetRef) -> str:
    """What the conflict indexes key a /scale target by (a Deployment is keyed by its name alone;
    ``Kind/name`` can never be a Deployment's name)."""
    return f"{ref.kind}/{ref.name}"


async def read(
    client: KubeClient, kind: ScaleTargetKind, namespace: str, name: str, written: int | None
) -> JsonObject | None:
    """The view of one target; None when it (or its /scale) does not exist. ``written``: the
    replicas the operator last wrote to it (from the group's status). ValueError when its selector
    cannot be read."""
    path = kind.path(namespace, name)
    try:
        target = await client.get(path)
        scale = await client.get(path + "/scale")
    except NotFound:
        return None
    raw = str((scale.get("status") or {}).get("selector") or "")
    try:
        selector = labelselector.parse(raw)
    except ValueError as exc:
        raise ValueError(f"{kind.kind} {name}: cannot tell its pods from its /scale status.selector: {exc}") from None
    meta = target.get("metadata") or {}
    view: JsonObject = {
        _VIEW: {"path": path},
        "kind": kind.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "ownerReferences": list(meta.get("ownerReferences") or []),
            "annotations": {} if written is None else {ANNOTATION_LAST_REPLICAS: str(written)},
        },
        "spec": {"replicas": int((scale.get("spec") or {}).get("replicas") or 0), "selector": selector},
        "status": {"replicas": int((scale.get("status") or {}).get("replicas") or 0)},
    }
    view["status"]["readyReplicas"] = sum(1 for pod in await pods_of(client, namespace, view) if startup.ready(pod))
    return view


async def pods_of(client: KubeClient, namespace: str, view: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The target's live pods: matching its whole selector and controlled by the target or by a
    StatefulSet or ReplicaSet the target controls (each such owner is fetched to check that)."""
    uid = (view.get("metadata") or {}).get("uid")
    selector = (view.get("spec") or {}).get("selector") or {}
    if not uid or not selector:
        return []
    pods = await client.list(f"/api/v1/namespaces/{namespace}/pods", label_selector=ownership.selector_string(selector))
    ours = {uid}
    middle = {
        (c.get("kind"), c.get("name"), c.get("uid"))
        for pod in pods
        if (c := ownership.controller_of(pod)) is not None and c.get("uid") != uid and c.get("kind") in _INTERMEDIATE
    }
    for kind, name, owner_uid in sorted(middle, key=str):
        try:
            owner = await client.get(f"/apis/apps/v1/namespaces/{namespace}/{_INTERMEDIATE[str(kind)]}/{name}")
        except NotFound:
            continue
        if (owner.get("metadata") or {}).get("uid") == owner_uid and ownership.controlled_by(owner, uid):
            ours.add(owner_uid)
    return [
        pod
        for pod in pods
        if (pod.get("metadata") or {}).get("deletionTimestamp") is None
        and (c := ownership.controller_of(pod)) is not None
        and c.get("uid") in ours
        and ownership.selector_matches(selector, (pod.get("metadata") or {}).get("labels") or {})
    ]


def leaving(pods: Sequence[Mapping[str, Any]], count: int) -> list[str] | None:
    """The ``count`` pods a scale-in removes when the pods are a StatefulSet's: the highest
    ordinals, whatever their deletion cost or readiness (a StatefulSet, and so a LeaderWorkerSet,
    removes them in that order). None when the pods are not all StatefulSet pods: then the
    ReplicaSet's order applies (:func:`heteroscale.operator.drain.choose_pods_to_drain`)."""
    ordinals: list[tuple[int, str]] = []
    for pod in pods:
        controller = ownership.controller_of(pod)
        name = str((pod.get("metadata") or {}).get("name", ""))
        found = _ORDINAL.search(name)
        if controller is None or controller.get("kind") != "StatefulSet" or found is None:
            return None
        ordinals.append((int(found.group(1)), name))
    return [name for _, name in sorted(ordinals, reverse=True)[: max(0, count)]]


async def patch(client: KubeClient, view: Mapping[str, Any], body: Mapping[str, Any]) -> JsonObject:
    """Apply a Deployment-shaped merge patch to a target: its replicas through ``/scale`` (the only
    write), its annotation (the replicas written) to the view alone, for the group's status to keep.
    The view after the write."""
    after = copy.deepcopy(dict(view))
    replicas = (body.get("spec") or {}).get("replicas")
    if replicas is not None:
        scale = await client.patch(view[_VIEW]["path"] + "/scale", {"spec": {"replicas": replicas}})
        after["spec"]["replicas"] = int((scale.get("spec") or {}).get("replicas", replicas) or 0)
    for key, value in ((body.get("metadata") or {}).get("annotations") or {}).items():
        if value is None:
            after["metadata"]["annotations"].pop(key, None)
        else:
            after["metadata"]["annotations"][key] = value
    return after
