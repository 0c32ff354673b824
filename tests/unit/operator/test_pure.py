"""Pure helpers of the operator: drain choice, conflicts, conditions, manifests, observation."""

from __future__ import annotations

from typing import Any

from heteroscale.api.enums import ConditionStatus, ConditionType, Role
from heteroscale.api.labels import ANNOTATION_DELETION_COST, ANNOTATION_LAST_REPLICAS, LABEL_SERVING
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.operator import conditions, drain, indexes, manifests, observe
from heteroscale.operator.conflicts import (
    HPA,
    SCALED_OBJECT,
    autoscaler_target,
    conflicting_autoscalers,
    conflicting_groups,
    group_references,
)
from heteroscale.operator.naming import from_plan, role_groups, uses_placement
from heteroscale.placement import RoleTargets, inventory_from_k8s, plan


def pod(name: str, *, ready: bool = True, cost: str | None = None, created: str = "2025-01-01T00:00:00Z") -> Any:
    annotations = {ANNOTATION_DELETION_COST: cost} if cost is not None else {}
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


def test_serving_patches_undo_each_other() -> None:
    out, back = drain.out_of_serving_patch(), drain.back_in_serving_patch()
    assert out["metadata"]["labels"][LABEL_SERVING] == "false"
    assert back["metadata"]["labels"][LABEL_SERVING] == "true"
    assert back["metadata"]["annotations"][ANNOTATION_DELETION_COST] is None


def test_conflicts_name_hpas_and_scaled_objects_on_our_deployments_only() -> None:
    def obj(name: str, ref: dict[str, str], namespace: str = "ns") -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": namespace}, "spec": {"scaleTargetRef": ref}}

    hpas = [
        obj("h", {"kind": "Deployment", "name": "chat-decode"}),
        obj("o", {"kind": "Deployment", "name": "web"}),
        obj("elsewhere", {"kind": "Deployment", "name": "chat-decode"}, namespace="other"),
    ]
    other_kind = autoscaler_target(HPA, obj("s", {"kind": "StatefulSet", "name": "chat-decode"}))
    assert other_kind is not None
    assert other_kind[0] == ("ns", "StatefulSet/chat-decode"), "keyed by kind and name"
    hpas.append(obj("s", {"kind": "StatefulSet", "name": "chat-decode"}))
    keda = autoscaler_target(SCALED_OBJECT, obj("k", {"name": "chat-prefill"}))
    assert keda is not None, "a ScaledObject's target kind defaults to Deployment"
    by_hpa: dict[tuple[str, str], list[str]] = {}
    for hpa in hpas:
        found_hpa = autoscaler_target(HPA, hpa)
        assert found_hpa is not None
        by_hpa.setdefault(found_hpa[0], []).append(found_hpa[1])
    found = conflicting_autoscalers([by_hpa, {keda[0]: [keda[1]]}], "ns", ["chat-decode", "chat-prefill"])
    assert found == [
        "HorizontalPodAutoscaler/h targets Deployment chat-decode",
        "ScaledObject/k targets Deployment chat-prefill",
    ]
    on_target = conflicting_autoscalers([by_hpa], "ns", ["StatefulSet/chat-decode"])
    assert on_target == ["HorizontalPodAutoscaler/s targets StatefulSet chat-decode"]


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
    assert not uses_placement(SPEC), "a deploymentRef cannot be split by placement"
    prefill, decode = role_groups(SPEC, "chat", 2, 4)
    assert (prefill.name, prefill.owned, decode.name, decode.owned) == ("chat-prefill", True, "mine", False)
    body = manifests.pod_template("chat", SPEC, prefill)
    assert body is not None
    template = manifests.PodTemplate.of(body)
    assert manifests.pod_template("chat", SPEC, decode) is None, "a referenced Deployment keeps its template"
    body = manifests.deployment_manifest(PDSG, prefill, template)
    assert body["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert LABEL_SERVING not in body["spec"]["selector"]["matchLabels"]
    assert body["spec"]["template"]["metadata"]["labels"][LABEL_SERVING] == "true"
    assert "L20" in str(body["spec"]["template"]["spec"]["affinity"])
    assert manifests.group_patch(body, prefill, template) == {}
    # The replicas written are recorded in the same patch, so a later edit by a person shows.
    assert manifests.group_patch({"spec": {"replicas": 1}}, decode, None) == {
        "spec": {"replicas": 4},
        "metadata": {"annotations": {ANNOTATION_LAST_REPLICAS: "4"}},
    }


PLACED = PDServingGroupSpec.model_validate(
    {
        "decode": {"targetTPSPerInstance": {"H20": 100}},
        "roles": {
            "prefill": {"template": {"spec": {"containers": [{"name": "e"}]}}, "gpuTypes": ["L20"]},
            "decode": {"template": {"spec": {"containers": [{"name": "e"}]}}, "gpuTypes": ["H20"]},
        },
    }
)


def _node(name: str, gpu: str, s2: str) -> dict[str, Any]:
    labels = {
        "nvidia.com/gpu.product": gpu,
        "heteroscale.io/s2": s2,
        "heteroscale.io/s1": s2,
        "heteroscale.io/s0": name,
    }
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"nvidia.com/gpu": "8"}}}


def test_placed_template_pins_gpu_type_and_domain_and_a_template_change_is_one_patch() -> None:
    # s2-a has no L20, so the group's prefill could not sit next to its decode there.
    nodes = [_node("h-a", "H20", "s2-a"), _node("h-b", "H20", "s2-b"), _node("l-b", "L20", "s2-b")]
    inventory = inventory_from_k8s(nodes, [], PLACED.topology)
    groups = from_plan(plan(inventory, [], RoleTargets(1, 1), PLACED, "chat", "ns"))
    assert {(g.name, g.domain, g.replicas) for g in groups} == {
        ("chat-prefill-g0", "s2-b", 1),
        ("chat-decode-g0", "s2-b", 1),
    }
    decode = next(g for g in groups if g.name == "chat-decode-g0")
    rendered = manifests.pod_template("chat", PLACED, decode)
    assert rendered is not None
    template = manifests.PodTemplate.of(rendered)
    required = rendered["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert {"key": "heteroscale.io/s2", "operator": "In", "values": ["s2-b"]} in required["nodeSelectorTerms"][0][
        "matchExpressions"
    ]
    assert rendered["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == "8"
    body = manifests.deployment_manifest(PDSG, decode, template)
    assert manifests.group_patch(body, decode, template) == {}
    changed = {**rendered, "spec": {**rendered["spec"], "priorityClassName": "high"}}
    patch = manifests.group_patch(body, decode, manifests.PodTemplate.of(changed))
    assert patch["spec"] == {"template": changed}, "one patch carries the new template, replicas unchanged"


def test_indexes_keep_gpu_nodes_and_bound_gpu_pods_only() -> None:
    gpu_node = {"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "8", "nvidia.com/gpu": "8"}}}
    cpu_node = {"metadata": {"name": "c"}, "status": {"allocatable": {"cpu": "8", "memory": "1Gi", "pods": "110"}}}
    assert indexes.gpu_node(gpu_node) is not None
    assert indexes.gpu_node(cpu_node) is None

    def pod(resources: dict[str, Any], node: str | None = "n", phase: str = "Running") -> dict[str, Any]:
        spec: dict[str, Any] = {"containers": [{"name": "e", "image": "i", "resources": resources}]}
        if node:
            spec["nodeName"] = node
        return {
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "b"}},
            "spec": spec,
            "status": {"phase": phase},
        }

    gpus = {"limits": {"nvidia.com/gpu": "2"}}
    kept = indexes.gpu_pod(pod(gpus))
    assert kept is not None
    assert indexes.gpu_pod(pod(gpus, node=None)) is None, "not bound: takes nothing from a node yet"
    assert indexes.gpu_pod(pod(gpus, phase="Succeeded")) is None
    assert indexes.gpu_pod(pod({"requests": {"cpu": "1", "memory": "1Gi"}})) is None
    # The trimmed objects are what placement reads: the same inventory as from the full objects.
    full = [pod(gpus)]
    node_full = {**gpu_node, "metadata": {"name": "n", "labels": {"nvidia.com/gpu.product": "H20"}}}
    trimmed_node = indexes.gpu_node(node_full)
    assert trimmed_node is not None
    assert inventory_from_k8s([trimmed_node], [kept], PLACED.topology) == inventory_from_k8s(
        [node_full], full, PLACED.topology
    )


def test_pool_counts_not_ready_as_starting() -> None:
    groups = role_groups(SPEC, "chat", 0, 0)
    deployments = {"mine": {"spec": {"replicas": 4}, "status": {"readyReplicas": 3}}, "chat-prefill": None}
    decode = observe.pool(Role.DECODE, groups, deployments)
    assert (decode.replicas, decode.ready, decode.starting, dict(decode.by_gpu_type)) == (4, 3, 1, {"H20": 4})
    assert observe.pool(Role.PREFILL, groups, deployments).replicas == 0


def test_slow_nodes_from_the_straggler_analysis_are_marked_in_the_inventory() -> None:
    from heteroscale.operator.reconcile import Cluster
    from tests.unit.placement.cluster import node

    nodes = [node("a", "H20", "s2-0", "s1-0", "s0-0"), node("b", "H20", "s2-0", "s1-0", "s0-0")]
    cluster = Cluster(slow_nodes=frozenset({"b"}))
    for body in nodes:
        cluster.nodes.put(body)
    inventory = cluster.inventory(PLACED.topology)
    assert {n.name: n.slow for n in inventory.nodes} == {"a": False, "b": True}


def test_run_reads_the_slow_nodes_file_the_straggler_command_writes(tmp_path: Any) -> None:
    import json

    import pytest

    from heteroscale.commands.errors import UserInputError
    from heteroscale.commands.run import read_slow_nodes

    good = tmp_path / "slow.json"
    good.write_text(json.dumps({"slow_nodes": ["gpu-17", "gpu-42"], "ranks_without_node": []}))
    assert read_slow_nodes(good) == ["gpu-17", "gpu-42"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"slow_nodes": "gpu-17"}')
    with pytest.raises(UserInputError, match="expected"):
        read_slow_nodes(bad)
    with pytest.raises(UserInputError, match="cannot read"):
        read_slow_nodes(tmp_path / "absent.json")


def test_an_earlier_group_on_the_same_scale_target_is_a_conflict_and_one_on_a_namesake_is_not() -> None:
    def group(name: str, created: str, role: dict[str, Any]) -> dict[str, Any]:
        meta = {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": created}
        return {"metadata": meta, "spec": {"roles": {"decode": role}}}

    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": "serve"}
    first = group("first", "2026-01-01T00:00:00Z", {"scaleTargetRef": lws})
    namesake = group("namesake", "2026-01-01T00:00:00Z", {"deploymentRef": {"name": "serve"}})
    index: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for obj in (first, namesake):
        for key, me in group_references(obj).items():
            index.setdefault(key, []).append(me)
    later = group("later", "2026-02-01T00:00:00Z", {"scaleTargetRef": lws})["metadata"]
    assert conflicting_groups(index, "ns", ["LeaderWorkerSet/serve"], later) == [
        "PDServingGroup/first already scales LeaderWorkerSet serve"
    ]
    assert conflicting_groups(index, "ns", ["serve"], later) == [
        "PDServingGroup/namesake already scales Deployment serve"
    ]
