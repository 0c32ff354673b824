"""The simulated switch fabric's dimensions and labels, and whether a deployment group fits one
colocation domain of it.

S2 big-pods of :data:`S1_PER_S2` S1 mini-pods of :data:`NODES_PER_S1` nodes, one S0 leaf switch
per node pair, :data:`GPUS_PER_NODE` GPUs per node (the fabric the paper describes and the
placement tests use). The service definition (:mod:`heteroscale.simulate.service`) needs the
domain's size to decide the colocation scope, and the inventory
(:mod:`heteroscale.simulate.inventory`) needs it to build the cluster, so it lives here. Pure.
"""

from __future__ import annotations

import math

from heteroscale.api.spec import Ratio

GPUS_PER_NODE = 8
NODES_PER_S1 = 8
S1_PER_S2 = 4
NODES_PER_S2 = NODES_PER_S1 * S1_PER_S2
#: Topology tier labels, leaf first (the spec's ``topology.tiers``).
TIERS = ("heteroscale.io/s0", "heteroscale.io/s1", "heteroscale.io/s2")
#: The colocation tier a deployment group is pinned to when its smallest group fits one domain.
S2 = TIERS[-1]


def nodes_for(instances: int, gpus_per_instance: int) -> int:
    """Whole nodes that hold ``instances`` instances of ``gpus_per_instance`` GPUs."""
    per_node = GPUS_PER_NODE // gpus_per_instance
    if per_node < 1:
        raise ValueError(f"instances of {gpus_per_instance} GPUs span nodes; the simulator places whole nodes")
    return math.ceil(instances / per_node)


def prefill_beside_one_decode(gpus_per_instance: int) -> int:
    """The most prefill instances one S2 big-pod holds beside one decode instance: the largest
    prefill share a deployment group pinned to an S2 can have."""
    per_node = GPUS_PER_NODE // gpus_per_instance
    return (NODES_PER_S2 - nodes_for(1, gpus_per_instance)) * per_node


def smallest_group_fits_s2(ratio: tuple[int, int], gpus_per_instance: int) -> bool:
    """Whether the smallest deployment group at ``ratio`` (one decode instance and the prefill
    instances that go with it) fits the nodes of one S2 big-pod."""
    prefill = Ratio(prefill=ratio[0], decode=ratio[1]).prefill_for(1)
    return prefill <= prefill_beside_one_decode(gpus_per_instance)
