"""The cluster view rebuilds placement's inventory only when what placement reads changed."""

from __future__ import annotations

from typing import Any

from heteroscale.api.spec import Topology
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
    cluster.nodes.put(node("h20-0", "H20", "s2-a"))
    first = cluster.inventory(Topology())
    assert cluster.inventory(Topology()) is first, "nothing changed: the same inventory"
    # The same node again (a resync, a heartbeat): no rebuild.
    cluster.nodes.put(node("h20-0", "H20", "s2-a"))
    assert cluster.inventory(Topology()) is first
    # A GPU pod binds: rebuilt, and it takes a GPU.
    cluster.pods.put(gpu_pod("p", "h20-0"))
    bound = cluster.inventory(Topology())
    assert bound is not first
    # The pod's annotations change (a drain marks it): placement reads none of that.
    cluster.pods.put(gpu_pod("p", "h20-0", **{"controller.kubernetes.io/pod-deletion-cost": "-1"}))
    assert cluster.inventory(Topology()) is bound
    # It ends: no longer kept, so rebuilt.
    cluster.pods.put(gpu_pod("p", "h20-0", phase="Succeeded"))
    ended = cluster.inventory(Topology())
    assert ended is not bound
    # A node goes: rebuilt.
    cluster.nodes.remove(node("h20-0", "H20", "s2-a"))
    assert cluster.inventory(Topology()) is not ended
