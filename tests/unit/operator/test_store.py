"""What each watch event and each fresh list does to a store: Deployments found by name and owner,
and the change count that placement's inventory is rebuilt by (pure)."""

from __future__ import annotations

from typing import Any

from heteroscale.operator import indexes
from heteroscale.operator.store import Store


def deployments() -> Store[tuple[str, ...], dict[str, Any]]:
    return Store(indexes.deployment_index)


def dep(name: str, namespace: str = "ns", owner: str | None = "g1", replicas: int = 2) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"u-{name}", "resourceVersion": "7"}
    if owner is not None:
        meta["ownerReferences"] = [{"kind": "PDServingGroup", "name": "g", "uid": owner, "controller": True}]
    return {"metadata": meta, "spec": {"replicas": replicas, "template": {"spec": {}}}, "status": {"readyReplicas": 1}}


def test_an_added_deployment_is_found_by_name_and_by_its_controller_trimmed() -> None:
    store = deployments()
    store.apply("ADDED", dep("a"))
    store.apply("ADDED", dep("b"))
    (found,) = store["name", "ns", "a"]
    assert found["spec"] == {"replicas": 2, "selector": {}}  # the pod template is not kept
    assert sorted(d["metadata"]["name"] for d in store.get(("owner", "g1"), ())) == ["a", "b"]
    assert store.get(("name", "ns", "c"), ()) == ()


def test_a_change_replaces_the_object_and_the_keys_it_is_found_by() -> None:
    store = deployments()
    store.apply("ADDED", dep("a"))
    store.apply("MODIFIED", dep("a", owner="g2", replicas=5))
    assert store["name", "ns", "a"][0]["spec"]["replicas"] == 5
    assert ("owner", "g1") not in store  # released by its old controller: no longer found by it
    assert [d["metadata"]["name"] for d in store["owner", "g2"]] == ["a"]
    store.apply("MODIFIED", dep("a", owner=None))
    assert set(store) == {("name", "ns", "a")}


def test_a_deletion_forgets_it_everywhere() -> None:
    store = deployments()
    store.apply("ADDED", dep("a"))
    store.apply("ADDED", dep("b"))
    store.apply("DELETED", dep("a"))
    assert set(store) == {("name", "ns", "b"), ("owner", "g1")}
    store.apply("DELETED", dep("b"))
    assert len(store) == 0


def test_a_fresh_list_of_one_namespace_replaces_that_namespace_only() -> None:
    store = deployments()
    for name, namespace in (("a", "ns"), ("b", "ns"), ("c", "other")):
        store.put(dep(name, namespace))
    store.replace("ns", [dep("b", "ns", replicas=3), dep("d", "ns")])
    assert {k[1:] for k in store if k[0] == "name"} == {("ns", "b"), ("ns", "d"), ("other", "c")}
    assert store["name", "ns", "b"][0]["spec"]["replicas"] == 3
    store.replace(None, [])
    assert len(store) == 0


def pod(name: str, namespace: str = "ns", gpus: int = 1, phase: str = "Running", **labels: str) -> dict[str, Any]:
    resources = {"requests": {"nvidia.com/gpu": str(gpus)}} if gpus else {}
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": "n", "containers": [{"resources": resources}]},
        "status": {"phase": phase},
    }


def test_only_a_change_of_what_is_kept_counts() -> None:
    store = Store(indexes.pod_index)
    store.put(pod("a"))
    assert (list(store), store.changes) == ([("ns", "a")], 1)
    store.put(pod("a"))  # the same again (a resync, a status update placement does not read)
    store.put(pod("cpu", gpus=0))  # not kept at all
    store.remove(pod("cpu"))
    assert (len(store), store.changes) == (1, 1)
    store.put(pod("a", role="decode"))  # its labels are kept: a change
    assert store.changes == 2
    store.put(pod("a", role="decode", phase="Succeeded"))  # ended: no longer kept
    assert (len(store), store.changes) == (0, 3)


def test_a_fresh_list_counts_only_what_it_changes() -> None:
    store = Store(indexes.pod_index)
    for name in ("a", "b"):
        store.put(pod(name))
    before = store.changes
    store.replace("ns", [pod("a"), pod("b")])
    assert store.changes == before, "the same objects listed again"
    store.replace("ns", [pod("a")])
    assert (list(store), store.changes) == ([("ns", "a")], before + 1)
