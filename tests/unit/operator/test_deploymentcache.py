"""What each watch event and each fresh list does to the Deployment cache (pure)."""

from __future__ import annotations

from typing import Any

from heteroscale.operator.deploymentcache import DeploymentStore


def dep(name: str, namespace: str = "ns", owner: str | None = "g1", replicas: int = 2) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"u-{name}", "resourceVersion": "7"}
    if owner is not None:
        meta["ownerReferences"] = [{"kind": "PDServingGroup", "name": "g", "uid": owner, "controller": True}]
    return {"metadata": meta, "spec": {"replicas": replicas, "template": {"spec": {}}}, "status": {"readyReplicas": 1}}


def test_an_added_deployment_is_found_by_name_and_by_its_controller_trimmed() -> None:
    store = DeploymentStore()
    store.apply("ADDED", dep("a"))
    store.apply("ADDED", dep("b"))
    (found,) = store["name", "ns", "a"]
    assert found["spec"] == {"replicas": 2, "selector": {}}  # the pod template is not kept
    assert sorted(d["metadata"]["name"] for d in store.get(("owner", "g1"), ())) == ["a", "b"]
    assert store.get(("name", "ns", "c"), ()) == ()


def test_a_change_replaces_the_object_and_the_keys_it_is_found_by() -> None:
    store = DeploymentStore()
    store.apply("ADDED", dep("a"))
    store.apply("MODIFIED", dep("a", owner="g2", replicas=5))
    assert store["name", "ns", "a"][0]["spec"]["replicas"] == 5
    assert ("owner", "g1") not in store  # released by its old controller: no longer found by it
    assert [d["metadata"]["name"] for d in store["owner", "g2"]] == ["a"]
    store.apply("MODIFIED", dep("a", owner=None))
    assert set(store) == {("name", "ns", "a")}


def test_a_deletion_forgets_it_everywhere() -> None:
    store = DeploymentStore()
    store.apply("ADDED", dep("a"))
    store.apply("ADDED", dep("b"))
    store.apply("DELETED", dep("a"))
    assert set(store) == {("name", "ns", "b"), ("owner", "g1")}
    store.apply("DELETED", dep("b"))
    assert len(store) == 0


def test_a_fresh_list_of_one_namespace_replaces_that_namespace_only() -> None:
    store = DeploymentStore()
    for name, namespace in (("a", "ns"), ("b", "ns"), ("c", "other")):
        store.put(dep(name, namespace))
    store.replace("ns", [dep("b", "ns", replicas=3), dep("d", "ns")])
    assert {k[1:] for k in store if k[0] == "name"} == {("ns", "b"), ("ns", "d"), ("other", "c")}
    assert store["name", "ns", "b"][0]["spec"]["replicas"] == 3
    store.replace(None, [])
    assert len(store) == 0
