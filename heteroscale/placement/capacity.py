"""Free GPU capacity indexed by (colocation domain, GPU type), for planning without node scans.

Nodes of one GPU type in one domain are kept as a few *buckets* by class rank ``(slow,
premium)``; each bucket is a histogram ``free GPUs -> node count``. Instance slots for a role
needing ``g`` GPUs are then ``sum(count * (free // g))`` over a handful of histogram bins, and a
reservation moves whole histogram bins instead of visiting nodes. The index is built once per
planning cycle and mutated as groups reserve capacity; :meth:`CapacityIndex.mark` and
:meth:`CapacityIndex.rollback` undo trial reservations.

Reservations are best fit: the lowest rank bucket first (non-slow, least premium), and inside a
bucket the nodes with the fewest free GPUs that still fit, so partly used nodes are filled before
empty ones and large holes stay available (the kube-scheduler does the same with the
``MostAllocated`` scoring strategy).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from heteroscale.placement.inventory import Inventory
from heteroscale.placement.order import Bound, DomainOrder, Rank
from heteroscale.placement.topology import colocation_domain, premium_levels

PoolKey = tuple[str, str]
LOWEST_RANK: Rank = (0, 0)


@dataclass
class _Bucket:
    rank: Rank
    free: dict[int, int] = field(default_factory=dict)


class CapacityIndex:
    """Free capacity per (domain, GPU type) with undoable reservations."""

    def __init__(self, inventory: Inventory) -> None:
        topology = inventory.topology
        premium = premium_levels(inventory.nodes, topology)
        buckets: defaultdict[PoolKey, dict[Rank, _Bucket]] = defaultdict(dict)
        self._nodes: defaultdict[PoolKey, int] = defaultdict(int)
        for node in inventory.nodes:
            domain = colocation_domain(node, topology)
            if domain is None or not node.schedulable:
                continue
            key = (domain, node.gpu_type)
            self._nodes[key] += 1
            rank = (int(node.slow), premium[node.name])
            bucket = buckets[key].setdefault(rank, _Bucket(rank))
            bucket.free[node.free] = bucket.free.get(node.free, 0) + 1
        self._pools = {key: sorted(b.values(), key=lambda b: b.rank) for key, b in buckets.items()}
        by_type: defaultdict[str, list[str]] = defaultdict(list)
        for domain, gpu_type in sorted(self._pools):
            by_type[gpu_type].append(domain)
        self._domains = dict(by_type)
        self._undo: list[tuple[PoolKey, dict[int, int], int, int]] = []
        self._slots: dict[PoolKey, dict[int, tuple[int, ...]]] = {}
        self._orders: dict[tuple[str, int, str | None], DomainOrder] = {}
        self._watching: defaultdict[str, list[DomainOrder]] = defaultdict(list)

    def domains(self, gpu_type: str) -> list[str]:
        """Domains with schedulable nodes of this GPU type, sorted by name."""
        return self._domains.get(gpu_type, [])

    def nodes_available(self, domain: str, gpu_type: str) -> int:
        """Schedulable nodes of this type in this domain (free or not)."""
        return self._nodes.get((domain, gpu_type), 0)

    def ranks(self, domain: str, gpu_type: str) -> tuple[Rank, ...]:
        return tuple(b.rank for b in self._pools.get((domain, gpu_type), ()))

    def slots(self, domain: str, gpu_type: str, gpus: int) -> tuple[int, ...]:
        """Instances of ``gpus`` GPUs that still fit, per bucket in rank order."""
        key = (domain, gpu_type)
        cached = self._slots.setdefault(key, {})
        found = cached.get(gpus)
        if found is None:
            found = tuple(
                sum(count * (free // gpus) for free, count in b.free.items()) for b in self._pools.get(key, ())
            )
            cached[gpus] = found
        return found

    def rank_for(self, domain: str, gpu_type: str, gpus: int, instances: int) -> Rank | None:
        """The highest rank a reservation of ``instances`` would touch; None if they do not fit."""
        if instances <= 0:
            return LOWEST_RANK
        total = 0
        for rank, slots in zip(self.ranks(domain, gpu_type), self.slots(domain, gpu_type, gpus), strict=True):
            total += slots
            if total >= instances:
                return rank
        return None

    def candidates(self, gpu_type: str, gpus: int, ceiling: int, beside: str | None) -> Iterator[Bound]:
        """Domains with a free slot for ``gpus`` GPUs of ``gpu_type`` (and schedulable nodes of
        type ``beside`` too, unless None) by increasing lower bound of their new-group key for
        ``ceiling`` instances (see :class:`~heteroscale.placement.order.DomainOrder`)."""
        order = self._orders.get((gpu_type, gpus, beside))
        if order is None:
            domains = [d for d in self.domains(gpu_type) if beside is None or self.nodes_available(d, beside)]

            def measure(domain: str) -> tuple[Rank, int]:
                slots = self.slots(domain, gpu_type, gpus)
                first = next((r for r, s in zip(self.ranks(domain, gpu_type), slots, strict=True) if s), LOWEST_RANK)
                return first, sum(slots)

            order = self._orders[(gpu_type, gpus, beside)] = DomainOrder(domains, measure)
            self._watching[gpu_type].append(order)
        return order.candidates(ceiling)

    def take(self, domain: str, gpu_type: str, gpus: int, instances: int) -> int:
        """Reserve up to ``instances`` of ``gpus`` GPUs, best fit; returns how many were reserved."""
        key = (domain, gpu_type)
        left = instances
        for bucket in self._pools.get(key, ()):
            for free in sorted(k for k, c in bucket.free.items() if c and k >= gpus):
                if left <= 0:
                    break
                per_node = free // gpus
                full_nodes = min(bucket.free[free], left // per_node)
                if full_nodes:
                    self._move(key, bucket.free, free, free - per_node * gpus, full_nodes)
                    left -= full_nodes * per_node
                if 0 < left < per_node and bucket.free.get(free, 0):
                    self._move(key, bucket.free, free, free - left * gpus, 1)
                    left = 0
        return instances - max(left, 0)

    def _move(self, key: PoolKey, free: dict[int, int], src: int, dst: int, nodes: int) -> None:
        for bin_, delta in ((src, -nodes), (dst, nodes)):
            old = free.get(bin_, 0)
            self._undo.append((key, free, bin_, old))
            free[bin_] = old + delta
        self._changed(key)

    def _changed(self, key: PoolKey) -> None:
        self._slots.pop(key, None)
        for order in self._watching.get(key[1], ()):
            order.invalidate(key[0])

    def mark(self) -> int:
        """A point to :meth:`rollback` to."""
        return len(self._undo)

    def rollback(self, mark: int) -> None:
        """Undo every reservation made since ``mark``."""
        while len(self._undo) > mark:
            key, free, bin_, old = self._undo.pop()
            free[bin_] = old
            self._changed(key)
