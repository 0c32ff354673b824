"""Ownership is judged by ownerReferences and whole selectors, never by names or labels alone."""

from __future__ import annotations

from typing import Any

import pytest

from heteroscale.api.labels import ANNOTATION_ADOPT
from heteroscale.operator import ownership
from heteroscale.operator.ownership import Claim


def controller(kind: str, name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": "x/v1", "kind": kind, "name": name, "uid": uid, "controller": True}


def deployment(name: str = "d", uid: str = "dep-uid", *, owner: dict[str, Any] | None = None, **meta: Any) -> Any:
    return {
        "metadata": {"name": name, "uid": uid, "ownerReferences": [owner] if owner else [], **meta},
        "spec": {"selector": {"matchLabels": {"app": "chat"}, "matchExpressions": []}},
    }


GROUP = controller("PDServingGroup", "chat", "group-uid")


@pytest.mark.parametrize(
    ("obj", "owned", "claim"),
    [
        (deployment(owner=GROUP), True, Claim.OURS),
        (deployment(owner=GROUP), False, Claim.OURS),
        (deployment(), False, Claim.OURS),  # a referenced Deployment nobody else controls
        (deployment(), True, Claim.REFUSED),  # the name we want, but not ours
        (deployment(annotations={ANNOTATION_ADOPT: "chat"}), True, Claim.ADOPT),
        (deployment(annotations={ANNOTATION_ADOPT: "other"}), True, Claim.REFUSED),
        (deployment(owner=controller("PDServingGroup", "other", "x")), True, Claim.REFUSED),
        (deployment(owner=controller("PDServingGroup", "other", "x")), False, Claim.REFUSED),
        (deployment(owner=controller("Rollout", "r", "y")), False, Claim.REFUSED),
        # An annotation never overrides another controller.
        (
            deployment(owner=controller("Rollout", "r", "y"), annotations={ANNOTATION_ADOPT: "chat"}),
            True,
            Claim.REFUSED,
        ),
    ],
)
def test_judge(obj: Any, owned: bool, claim: Claim) -> None:
    verdict = ownership.judge(obj, owned=owned, group_uid="group-uid", group_name="chat")
    assert verdict.claim is claim
    if claim is Claim.REFUSED:
        assert "d" in verdict.why, "the message names the Deployment"


def test_a_non_controller_owner_reference_is_not_ownership() -> None:
    obj = deployment(owner={**GROUP, "controller": False})
    assert ownership.judge(obj, owned=True, group_uid="group-uid", group_name="chat").claim is Claim.REFUSED


def test_adopt_patch_adds_our_controller_reference_and_keeps_the_others() -> None:
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "c-uid"}
    obj = deployment(owner=None, ownerReferences=[other], resourceVersion="7")
    patch = ownership.adopt_patch(obj, GROUP)
    assert patch["metadata"]["ownerReferences"] == [other, GROUP]
    assert patch["metadata"]["resourceVersion"] == "7", "the write fails if the Deployment changed since"


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({"matchLabels": {"app": "chat"}}, {"app": "chat", "x": "y"}, True),
        ({"matchLabels": {"app": "chat"}}, {"app": "web"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["chat", "x"]}]}, {"app": "chat"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["chat"]}]}, {"app": "web"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {"app": "chat"}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {"app": "web"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"app": "chat"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"app": "chat"}, True),
        (
            {"matchLabels": {"app": "chat"}, "matchExpressions": [{"key": "t", "operator": "Exists"}]},
            {"app": "chat"},
            False,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, {"app": "chat"}, False),
        # An empty selector matches nothing here: "every pod of the namespace" is never a Deployment's.
        ({}, {"app": "chat"}, False),
        ({"matchLabels": {}, "matchExpressions": []}, {"app": "chat"}, False),
    ],
)
def test_selector_matches(selector: Any, labels: dict[str, str], matches: bool) -> None:
    assert ownership.selector_matches(selector, labels) is matches


def test_selector_string_carries_expressions() -> None:
    selector = {
        "matchLabels": {"app": "chat"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "x", "operator": "NotIn", "values": ["c"]},
            {"key": "y", "operator": "Exists"},
            {"key": "z", "operator": "DoesNotExist"},
        ],
    }
    assert ownership.selector_string(selector) == "app=chat,tier in (a,b),x notin (c),y,!z"


def replica_set(uid: str, owner_uid: str) -> Any:
    return {"metadata": {"uid": uid, "ownerReferences": [controller("Deployment", "d", owner_uid)]}}


def pod(name: str, rs_uid: str | None, labels: dict[str, str] | None = None, **meta: Any) -> Any:
    owners = [controller("ReplicaSet", "rs", rs_uid)] if rs_uid else []
    return {"metadata": {"name": name, "labels": labels or {"app": "chat"}, "ownerReferences": owners, **meta}}


def test_pods_of_follow_owner_references_and_the_whole_selector() -> None:
    dep = deployment()
    dep["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "NotIn", "values": ["canary"]}]
    sets = [replica_set("rs-1", "dep-uid"), replica_set("rs-2", "dep-uid"), replica_set("rs-other", "other-dep")]
    pods = [
        pod("mine-1", "rs-1"),
        pod("mine-2", "rs-2"),
        pod("same-labels-other-deployment", "rs-other"),
        pod("bare-pod-with-our-labels", None),
        pod("canary", "rs-1", {"app": "chat", "tier": "canary"}),
        pod("terminating", "rs-1", deletionTimestamp="2026-01-01T00:00:00Z"),
    ]
    assert [p["metadata"]["name"] for p in ownership.pods_of(dep, sets, pods)] == ["mine-1", "mine-2"]


def test_pods_of_a_deployment_without_uid_or_selector_are_none() -> None:
    sets = [replica_set("rs-1", "dep-uid")]
    no_selector = deployment()
    no_selector["spec"]["selector"] = {}
    assert ownership.pods_of(no_selector, sets, [pod("p", "rs-1")]) == []
    no_uid = deployment(uid="")
    assert ownership.pods_of(no_uid, sets, [pod("p", "rs-1")]) == []
