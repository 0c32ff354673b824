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

#: A node's labels from the leaf tier up to the colocation tier: nodes with the same path share
#: every domain premium levels look at.
Path = tuple[str | None, ...]


def levels(topology: Topology) -> int:
    """Tiers at or below the colocation tier (all tiers under cluster scope)."""
    if not topology.colocate:
        return len(topology.tiers)
    return topology.tiers.index(topology.colocate) + 1


def path_domain(path: Path, topology: Topology) -> str | None:
    """The colocation domain of nodes on ``path``; None when they lack the label."""
    return path[-1] if topology.colocate else CLUSTER_DOMAIN


def premium_by_path(nodes: Sequence[Node], topology: Topology) -> dict[Path, int]:
    """Premium level of the nodes on every path that has a colocation domain."""
    depth = levels(topology)
    # Nodes are grouped by path first: the domains around a node depend on its path alone, so
    # the per-level work runs once per path, not once per node.
    types_on: defaultdict[Path, set[str]] = defaultdict(set)
    for node in nodes:
        types_on[node.tiers[:depth]].add(node.gpu_type)
    paths = {p: t for p, t in types_on.items() if path_domain(p, topology) is not None}
    # A domain at tier i is named by its labels from tier i up to the colocation tier (a suffix
    # of the path), so equal leaf names under different parents are different domains.
    types_in: defaultdict[Path, set[str]] = defaultdict(set)
    for path, types in paths.items():
        for i in range(depth):
            if path[i] is not None:
                types_in[path[i:]] |= types
    cluster_mixed = not topology.colocate and len(set().union(*paths.values())) > 1
    return {
        path: sum(1 for i in range(depth) if path[i] is not None and len(types_in[path[i:]]) > 1) + cluster_mixed
        for path in paths
    }
