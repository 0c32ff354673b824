"""The simulated cluster every policy is placed on: GPU nodes in HeteroScale's switch fabric.

Layout: the fabric of :mod:`heteroscale.simulate.fabric` (S2 big-pods of S1 mini-pods, one S0
leaf switch per node pair), labelled with the spec's ``topology.tiers``.

Sizing rule (from the service the stress test derived, so every policy sees the same cluster):

* decode gets ``ceil(HEADROOM x its static peak)`` instances' worth of nodes of its preferred
  (first) GPU type; prefill gets ``ceil(HEADROOM x max(its static peak, the decode peak x p/d))``
  of its preferred type (a fixed-ratio policy asks for the ratio's prefill at the decode peak,
  which can exceed prefill's own peak);
* every big-pod is provisioned in P/D units at the service's ratio: it holds at most ``h``
  decode-type nodes, the largest ``h`` whose prefill share at the ratio fits beside them in the
  big-pod (at least one), and prefill-type nodes fill the rest. A deployment group lives in one
  big-pod, so this makes decode the binding role there and leaves the follower room for its
  rounded-up share;
* the cluster is the fewest whole big-pods that hold both roles' nodes with at most ``h``
  decode-type nodes each; decode-type nodes are spread evenly over them, and inside a big-pod
  they come first, so mini-pods are homogeneous except the one where the types meet.

When both roles prefer the same GPU type the cluster is homogeneous. When one decode instance's
prefill share does not fit a big-pod (a ratio above ~31:1 with whole-node instances), the service
has cluster scope (:func:`heteroscale.simulate.service.derive`): no group is pinned to a big-pod,
so there is no per-big-pod unit to provision and the cluster is the fewest big-pods that hold all
nodes, decode-type nodes spread evenly over them.

Built directly as :class:`heteroscale.placement.Node` objects, with no pod on them: there are no
Kubernetes objects for ``inventory_from_k8s`` to translate. The placer binds each plan's instances
to these nodes itself (:func:`heteroscale.simulate.placer.bound_inventory`). Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from heteroscale.api.enums import Role
from heteroscale.api.spec import Topology
from heteroscale.placement import Inventory, Node
from heteroscale.simulate.fabric import GPUS_PER_NODE, NODES_PER_S1, NODES_PER_S2, TIERS, nodes_for
from heteroscale.simulate.service import Service

#: Spare capacity over the peak: a cluster provisioned for the service's peak plus a quarter,
#: so reactive policies can overshoot the peak a little before placement caps them.
HEADROOM = 1.25


@dataclass(frozen=True)
class Sizing:
    """Nodes per role's GPU type, and the most decode-type nodes one big-pod holds."""

    prefill_nodes: int
    decode_nodes: int
    decode_per_big_pod: int
    big_pods: int


def sizing(service: Service, headroom: float = HEADROOM) -> Sizing:
    """The numbers of the sizing rule (see the module docstring)."""
    per_node = GPUS_PER_NODE // service.gpus_per_instance
    p, d = service.ratio
    peak_p, peak_d = service.static_peak

    def nodes(instances: int) -> int:
        return nodes_for(instances, service.gpus_per_instance)

    decode_nodes = nodes(math.ceil(headroom * peak_d))
    prefill_nodes = nodes(math.ceil(headroom * max(peak_p, math.ceil(peak_d * p / d))))
    if service.preferred_gpu(Role.PREFILL) == service.preferred_gpu(Role.DECODE) or not service.colocate:
        total = prefill_nodes + decode_nodes
        return Sizing(prefill_nodes, decode_nodes, NODES_PER_S2, math.ceil(total / NODES_PER_S2))
    fits = [h for h in range(1, NODES_PER_S2) if h + nodes(math.ceil(h * per_node * p / d)) <= NODES_PER_S2]
    per_big_pod = max(fits, default=1)
    big_pods = max(math.ceil(decode_nodes / per_big_pod), math.ceil((prefill_nodes + decode_nodes) / NODES_PER_S2))
    return Sizing(prefill_nodes, decode_nodes, per_big_pod, big_pods)


def simulated_inventory(service: Service, topology: Topology | None = None, headroom: float = HEADROOM) -> Inventory:
    """The cluster for ``service`` (see the module docstring), labelled with ``topology.tiers``
    (leaf first: S0, S1, S2); the default topology is the one ``spec_document`` gives."""
    topology = topology or Topology(tiers=list(TIERS), colocate=service.colocate)
    if len(topology.tiers) != 3:
        raise ValueError(f"the simulated fabric has three tiers (S0, S1, S2), the spec names {len(topology.tiers)}")
    size = sizing(service, headroom)
    prefill_type, decode_type = service.preferred_gpu(Role.PREFILL), service.preferred_gpu(Role.DECODE)
    nodes: list[Node] = []
    for b in range(size.big_pods):
        if prefill_type == decode_type:
            types = [decode_type] * NODES_PER_S2
        else:
            n_d = size.decode_nodes // size.big_pods + (b < size.decode_nodes % size.big_pods)
            types = [decode_type] * n_d + [prefill_type] * (NODES_PER_S2 - n_d)
        for i, gpu_type in enumerate(types):
            s1 = f"s2-{b}-s1-{i // NODES_PER_S1}"
            nodes.append(
                Node(
                    name=f"{s1}-n{i % NODES_PER_S1}",
                    gpu_type=gpu_type,
                    allocatable=GPUS_PER_NODE,
                    requested=0,
                    tiers=(f"{s1}-l{i % NODES_PER_S1 // 2}", s1, f"s2-{b}"),
                    schedulable=True,
                    slow=False,
                )
            )
    return Inventory(nodes=tuple(nodes), bound={}, topology=topology)
