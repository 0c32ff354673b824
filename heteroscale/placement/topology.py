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
from collections.abc import Iterable

from heteroscale.api.spec import Topology

#: The colocation domain of every node under cluster scope.
CLUSTER_DOMAIN = ""

#: Vendor prefixes GPU Feature Discovery's product label may carry before the product name.
GPU_VENDOR_PREFIXES = ("NVIDIA-", "Tesla-")

#: A node's labels from the leaf tier up to the colocation tier: nodes with the same path share
#: every domain premium levels look at.
Path = tuple[str | None, ...]


def gpu_type_of(label_value: str) -> str:
    """The GPU type a node's product label names: the value without a vendor prefix."""
    for prefix in GPU_VENDOR_PREFIXES:
        if label_value.startswith(prefix) and len(label_value) > len(prefix):
            return label_value[len(prefix) :]
    return label_value


def gpu_label_values(gpu_type: str) -> list[str]:
    """Every label value :func:`gpu_type_of` maps to ``gpu_type``: what node affinity must accept."""
    return [gpu_type, *(prefix + gpu_type for prefix in GPU_VENDOR_PREFIXES)]


def levels(topology: Topology) -> int:
    """Tiers at or below the colocation tier (all tiers under cluster scope)."""
    if not topology.colocate:
        return len(topology.tiers)
    return topology.tiers.index(topology.colocate) + 1


def path_domain(path: Path, topology: Topology) -> str | None:
    """The colocation domain of nodes on ``path``; None when they lack the label."""
    return path[-1] if topology.colocate else CLUSTER_DOMAIN


def premium_by_path(kinds: Iterable[tuple[Path, str]], topology: Topology) -> dict[Path, int]:
    """Premium level of the nodes on every path that has a colocation domain, from the
    ``(path, GPU type)`` of every node (repeats allowed: callers pass distinct ones)."""
    depth = levels(topology)
    # Types per domain, level by level from the leaf up: a domain at tier i is named by its labels
    # from tier i up to the colocation tier (a suffix of the path), so equal leaf names under
    # different parents are different domains, and a domain's types are the union of its
    # children's. Each level visits its distinct domains once, not every path once per level.
    below: defaultdict[Path, set[str]] = defaultdict(set)
    for path, gpu_type in kinds:
        below[path].add(gpu_type)
    paths = [p for p in below if path_domain(p, topology) is not None]
    by_level = [below]
    for _ in range(depth - 1):
        above: defaultdict[Path, set[str]] = defaultdict(set)
        for domain, types in by_level[-1].items():
            above[domain[1:]] |= types
        by_level.append(above)
    cluster_mixed = not topology.colocate and len(set().union(*(below[p] for p in paths))) > 1
    # A path's level counts the mixed domains from the top down to its leaf: once per domain.
    premium: dict[Path, int] = {(): int(cluster_mixed)}
    for level in reversed(by_level[:depth]):
        premium = {
            domain: (domain[0] is not None and len(types) > 1) + premium[domain[1:]] for domain, types in level.items()
        }
    return {path: premium[path] for path in paths}
