"""The lean diff base builds exactly kopf's essence, without copying what kopf throws away."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from heteroscale.operator.diffbase import LeanDiffBaseStorage
from tests.integration.operator.conftest import pdsg


def stored_group() -> dict[str, Any]:
    """A PDServingGroup as a real API server returns it: managed fields, kopf's and kubectl's
    annotations, an owner, and a status that is most of the object."""
    body = pdsg("chat")
    body["metadata"] |= {
        "labels": {"team": "search"},
        "annotations": {
            "note": "kept",
            "heteroscale.io/last-handled-configuration": "{}",
            "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        },
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u"}],
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        "finalizers": ["heteroscale.io/finalizer"],
    }
    body["status"] = {"conditions": [{"type": "Ready", "status": "True"}] * 3, "groups": [{"name": "g"}] * 8}
    return body


def test_the_essence_is_kopfs_own() -> None:
    raw = stored_group()
    before = copy.deepcopy(raw)
    kwargs = {"prefix": "heteroscale.io", "key": "last-handled-configuration"}
    ours = LeanDiffBaseStorage(**kwargs).build(body=kopf.Body(raw))
    theirs = kopf.AnnotationsDiffBaseStorage(**kwargs).build(body=kopf.Body(raw))
    assert ours == theirs
    assert ours["spec"] == raw["spec"]
    assert ours["metadata"]["labels"] == {"team": "search"}
    assert raw == before, "building never changes the object"
    # The spec is the event's own, shared rather than copied (kopf hands out a new body on each
    # event and never edits one): deep copies of the essence, as kopf's progress storage makes, keep
    # sharing it, and strip what kopf strips from its own essence.
    assert copy.deepcopy(ours)["spec"]["ratio"] is raw["spec"]["ratio"]
    progress = kopf.AnnotationsProgressStorage(prefix="heteroscale.io")
    assert progress.clear(essence=ours) == progress.clear(essence=theirs)
