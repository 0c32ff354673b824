"""The cluster view rebuilds placement's inventory only when what placement reads changed."""

from __future__ import annotations

from typing import Any

from heteroscale.api.spec import Topology
from heteroscale.operator import indexes
from heteroscale.operator.reconcile import Cluster
from tests.integration.operator.conftest import node


def gpu_pod(name: str, node_name: str, phase: str = "Running", **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "annotations": annotations},
        "spec": {"nodeName": node_name, "containers": [{"resources": {"requests": {"nvidia.com/gpu": "1"}}}]},
        "status": {"phase": phase},
    }


def test_only_a_change_of_what_placement_reads_rebuilds_the_inventory() -> None:
    cluster = Cluster()
    nodes: dict[str, list[Any]] = {}
    pods: dict[Any, list[Any]] = {}
    cluster.nodes, cluster.pods = nodes, pods

    def index_pod(body: dict[str, Any]) -> None:
        """As the pod index handler and then kopf do: note the trimmed pod, then keep or drop it."""
        key = ("ns", body["metadata"]["name"])
        kept = cluster.indexed(pods, key, indexes.gpu_pod(body))
        if kept is None:
            pods.pop(key, None)
        else:
            pods[key] = [kept]

    body = node("h20-0", "H20", "s2-a")
    nodes["h20-0"] = [cluster.indexed(nodes, "h20-0", indexes.gpu_node(body))]
    first = cluster.inventory(Topology())
    assert cluster.inventory(Topology()) is first, "nothing changed: the same inventory"
    # The same node again (a resync, a heartbeat): no rebuild.
    cluster.indexed(nodes, "h20-0", indexes.gpu_node(node("h20-0", "H20", "s2-a")))
    assert cluster.inventory(Topology()) is first
    # A GPU pod binds: rebuilt, and it takes a GPU.
    index_pod(gpu_pod("p", "h20-0"))
    bound = cluster.inventory(Topology())
    assert bound is not first
    # The pod's annotations change (a drain marks it): placement reads none of that.
    index_pod(gpu_pod("p", "h20-0", **{"controller.kubernetes.io/pod-deletion-cost": "-1"}))
    assert cluster.inventory(Topology()) is bound
    # It ends: no longer kept, so rebuilt.
    index_pod(gpu_pod("p", "h20-0", phase="Succeeded"))
    assert cluster.inventory(Topology()) is not bound
