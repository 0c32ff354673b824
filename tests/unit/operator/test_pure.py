"""Pure helpers of the operator: drain choice, conflicts, conditions, manifests, observation."""

from __future__ import annotations

from typing import Any

from heteroscale.api.enums import ConditionStatus, ConditionType, Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.operator import conditions, drain, manifests, observe
from heteroscale.operator.conflicts import conflicting_autoscalers
from heteroscale.operator.naming import LABEL_SERVING, plan_groups


def pod(name: str, *, ready: bool = True, cost: str | None = None, created: str = "2025-01-01T00:00:00Z") -> Any:
    annotations = {drain.ANNOTATION_DELETION_COST: cost} if cost is not None else {}
    return {
        "metadata": {"name": name, "labels": {"app": "d"}, "annotations": annotations, "creationTimestamp": created},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_drain_prefers_unready_then_low_cost_then_newest() -> None:
    pods = [
        pod("old"),
        pod("new", created="2025-01-02T00:00:00Z"),
        pod("cheap", cost="-5"),
        pod("broken", ready=False),
    ]
    assert drain.choose_pods_to_drain(pods, 3) == ["broken", "cheap", "new"]
    assert drain.choose_pods_to_drain(pods, 0) == []


def test_selected_ignores_other_deployments_and_terminating_pods() -> None:
    other = pod("other")
    other["metadata"]["labels"] = {"app": "x"}
    gone = pod("gone")
    gone["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert [p["metadata"]["name"] for p in drain.selected([pod("a"), other, gone], {"app": "d"})] == ["a"]


def test_serving_patches_undo_each_other() -> None:
    out, back = drain.out_of_serving_patch(), drain.back_in_serving_patch()
    assert out["metadata"]["labels"][LABEL_SERVING] == "false"
    assert back["metadata"]["labels"][LABEL_SERVING] == "true"
    assert back["metadata"]["annotations"][drain.ANNOTATION_DELETION_COST] is None


def test_conflicts_name_hpas_and_scaled_objects_on_our_deployments_only() -> None:
    hpa = {"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "chat-decode"}}}
    other = {"metadata": {"name": "o"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}}}
    keda = {"metadata": {"name": "k"}, "spec": {"scaleTargetRef": {"name": "chat-prefill"}}}
    sts = {"metadata": {"name": "s"}, "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "chat-decode"}}}
    found = conflicting_autoscalers([hpa, other, sts], [keda], ["chat-decode", "chat-prefill"])
    assert found == [
        "HorizontalPodAutoscaler/h targets Deployment chat-decode",
        "ScaledObject/k targets Deployment chat-prefill",
    ]


def test_condition_keeps_transition_time_while_status_holds() -> None:
    first = conditions.set_condition([], ConditionType.READY, ConditionStatus.TRUE, "A", "", now=0)
    same = conditions.set_condition(first, ConditionType.READY, ConditionStatus.TRUE, "B", "x", now=100)
    flipped = conditions.set_condition(same, ConditionType.READY, ConditionStatus.FALSE, "C", "", now=200)
    assert same[0].last_transition_time == first[0].last_transition_time
    assert flipped[0].last_transition_time == conditions.rfc3339(200)
    assert conditions.changed(first, same, ConditionType.READY)
    assert not conditions.changed(same, same, ConditionType.READY)


SPEC = PDServingGroupSpec.model_validate(
    {
        "decode": {"targetTPSPerInstance": {"H20": 100}},
        "roles": {
            "prefill": {"template": {"spec": {"containers": [{"name": "e"}]}}, "gpuTypes": ["L20"]},
            "decode": {"deploymentRef": {"name": "mine"}, "gpuTypes": ["H20"]},
        },
    }
)
PDSG = {"metadata": {"name": "chat", "namespace": "ns", "uid": "u1"}}


def test_owned_manifest_has_owner_selector_and_affinity_and_ref_is_not_owned() -> None:
    prefill, decode = plan_groups(SPEC, "chat", 2, 4)
    assert (prefill.name, prefill.owned, decode.name, decode.owned) == ("chat-prefill", True, "mine", False)
    body = manifests.deployment_manifest(PDSG, SPEC, prefill)
    assert body["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert LABEL_SERVING not in body["spec"]["selector"]["matchLabels"]
    assert body["spec"]["template"]["metadata"]["labels"][LABEL_SERVING] == "true"
    assert "L20" in str(body["spec"]["template"]["spec"]["affinity"])
    assert manifests.group_patch(body, prefill, SPEC.topology) == {}
    assert manifests.group_patch({"spec": {"replicas": 1}}, decode, SPEC.topology) == {"spec": {"replicas": 4}}


def test_pool_counts_not_ready_as_starting() -> None:
    groups = plan_groups(SPEC, "chat", 0, 0)
    deployments = {"mine": {"spec": {"replicas": 4}, "status": {"readyReplicas": 3}}, "chat-prefill": None}
    decode = observe.pool(Role.DECODE, groups, deployments)
    assert (decode.replicas, decode.ready, decode.starting, dict(decode.by_gpu_type)) == (4, 3, 1, {"H20": 4})
    assert observe.pool(Role.PREFILL, groups, deployments).replicas == 0
