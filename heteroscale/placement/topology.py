"""Switch domains and how premium each node is (pure).

HeteroScale keeps scarce interconnect free: a node whose domain joins several GPU types is
*premium*, because only there can a group pair different GPU types on the fast fabric. Following
the paper's RDMA subgroup priorities (with the colocation tier S2 and S1 below it):

* low (0): the node's S2 holds one GPU type;
* medium (1): its S2 mixes types but its S1 is homogeneous;
* high (2): its S1 itself joins different GPU types.

In general a node's premium level is the number of levels, from the colocation domain down to
the leaf tier, whose domain around the node mixes GPU types. With cluster scope (``colocate``
empty) the cluster is the colocation domain and every tier lies below it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from heteroscale.api.spec import Topology
from heteroscale.placement.inventory import Node

#: The colocation domain of every node under cluster scope.
CLUSTER_DOMAIN = ""


def colocation_domain(node: Node, topology: Topology) -> str | None:
    """The domain a group on this node is pinned to; None when the node lacks the label."""
    if not topology.colocate:
        return CLUSTER_DOMAIN
    return node.tiers[topology.tiers.index(topology.colocate)]


def _levels(topology: Topology) -> int:
    """Tiers at or below the colocation tier (all tiers under cluster scope)."""
    if not topology.colocate:
        return len(topology.tiers)
    return topology.tiers.index(topology.colocate) + 1


def premium_levels(nodes: Sequence[Node], topology: Topology) -> dict[str, int]:
    """Premium level of every node that has a colocation domain, by node name."""
    levels = _levels(topology)
    placed = [n for n in nodes if colocation_domain(n, topology) is not None]
    # A domain at tier i is named by its labels from tier i up to the colocation tier, so equal
    # leaf names under different parents are different domains.
    types_in: defaultdict[tuple[str | None, ...], set[str]] = defaultdict(set)
    cluster_types = {n.gpu_type for n in placed}
    for node in placed:
        for i in range(levels):
            if node.tiers[i] is not None:
                types_in[(str(i), *node.tiers[i:levels])].add(node.gpu_type)
    premium: dict[str, int] = {}
    for node in placed:
        mixed = sum(
            1 for i in range(levels) if node.tiers[i] is not None and len(types_in[(str(i), *node.tiers[i:levels])]) > 1
        )
        if not topology.colocate and len(cluster_types) > 1:
            mixed += 1
        premium[node.name] = mixed
    return premium
