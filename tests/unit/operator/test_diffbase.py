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
    # A copy, not a view: changing the object later does not change the essence.
    raw["spec"]["ratio"]["prefill"] = 99
    assert ours["spec"]["ratio"]["prefill"] == 1
