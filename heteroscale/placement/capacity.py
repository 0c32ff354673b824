"""Free GPU capacity indexed by (colocation domain, GPU type), for planning without node scans.

Nodes of one GPU type in one domain are kept as a few *buckets* by ``(slow, premium, taints)``;
each bucket is a histogram ``free GPUs -> node count``. Instance slots for a role needing ``g``
GPUs are then ``sum(count * (free // g))`` over a handful of histogram bins, and a reservation
moves whole histogram bins instead of visiting nodes. The index is built once per planning
cycle and mutated as groups reserve capacity; :meth:`CapacityIndex.mark` and
:meth:`CapacityIndex.rollback` undo trial reservations.

An index built ``releasable`` (the operator's, kept between runs by a
:class:`~heteroscale.placement.ledger.Ledger`) also numbers each bucket's nodes and knows which bin
each one is in, so that a reservation made long ago can be given back
(:meth:`CapacityIndex.release`) to the very nodes it took,
whatever was reserved after it: a histogram alone cannot tell which of a bin's nodes carry it
once later reservations moved them on (a node half taken by one group and then filled by
another). The bins stay histograms for everything that counts slots.

Roles see the pool through a :data:`~heteroscale.placement.tolerations.View` (what their pod
template tolerates): only the buckets whose hard taints they tolerate, ranked ``(slow or an
untolerated PreferNoSchedule taint, premium)``. The buckets themselves are shared, so two roles
with different views still never book the same GPUs twice.

Reservations are best fit: the lowest rank first (non-slow, least premium), and inside a rank
the nodes with the fewest free GPUs that still fit, so partly used nodes are filled before empty
ones and large holes stay available (the kube-scheduler does the same with the
``MostAllocated`` scoring strategy).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate, islice
from operator import attrgetter
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from heteroscale.placement.inventory import Inventory
from heteroscale.placement.order import Bound, DomainOrder, Measure, Rank
from heteroscale.placement.tolerations import Taint, View, admits
from heteroscale.placement.topology import levels, path_domain, premium_by_path

PoolKey = tuple[str, str]
LOWEST_RANK: Rank = (0, 0)
#: Free slots per domain (rows), summed over the ranks up to each column (see :meth:`CapacityIndex.cumulative`).
Slots = NDArray[np.int64]


@dataclass
class _Bucket:
    slow: bool
    premium: int
    taints: tuple[Taint, ...]
    nodes: int = 0
    free: dict[int, int] = field(default_factory=dict)
    """Free GPUs -> nodes with that many free (the histogram every count reads)."""
    members: dict[int, dict[int, None]] | None = None
    """Free GPUs -> the numbers of the nodes in that bin (a dict as an ordered set), when the index
    tracks nodes (:class:`CapacityIndex` ``releasable``)."""
    at: list[int] = field(default_factory=list)
    """Node number -> its free GPUs, when tracked."""

    def add(self, free: int, count: int, *, tracked: bool) -> None:
        """``count`` more nodes with ``free`` GPUs free."""
        self.free[free] = self.free.get(free, 0) + count
        self.nodes += count
        if tracked:
            self.members = {} if self.members is None else self.members
            first = len(self.at)
            self.members.setdefault(free, {}).update(dict.fromkeys(range(first, first + count)))
            self.at.extend([free] * count)

    def take(self, free: int, gpus: int, count: int) -> tuple[int, ...]:
        """Take ``gpus`` GPUs from each of ``count`` nodes of the bin ``free``; returns the nodes
        taken when tracked (which ones does not change any count)."""
        self.free[free] -= count
        self.free[free - gpus] = self.free.get(free - gpus, 0) + count
        if self.members is None:
            return ()
        nodes = tuple(islice(reversed(self.members[free]), count))
        self._renumber(nodes, free, free - gpus)
        return nodes

    def give_back(self, move: Reservation) -> None:
        """Give back what ``move`` took: to its tracked nodes, whichever bin they are in now; else
        to the bin it took from (only right when nothing took from those nodes since: a rollback)."""
        if self.members is None:
            self.free[move.free - move.gpus] -= move.size
            self.free[move.free] += move.size
            return
        for node in move.nodes:
            src = self.at[node]
            self.free[src] -= 1
            self.free[src + move.gpus] = self.free.get(src + move.gpus, 0) + 1
            self._renumber((node,), src, src + move.gpus)

    def _renumber(self, nodes: tuple[int, ...], src: int, dst: int) -> None:
        assert self.members is not None
        members = self.members[src]
        into = self.members.setdefault(dst, {})
        for node in nodes:
            del members[node]
            into[node] = None
            self.at[node] = dst


class Reservation(NamedTuple):
    """One move of :class:`CapacityIndex`: ``gpus`` GPUs taken from each of ``size`` nodes of
    a bucket's bin ``free``; ``nodes`` are their numbers when the index tracks them, else ``()``."""

    pool: PoolKey
    bucket: _Bucket
    free: int
    gpus: int
    size: int
    nodes: tuple[int, ...]


class _Class(NamedTuple):
    """The buckets of one pool a view ranks equal."""

    rank: Rank
    buckets: tuple[_Bucket, ...]


#: A view as :meth:`CapacityIndex.intern` numbers it: views key every cache, and hashing an int
#: is much cheaper than hashing a tuple of tolerations.
ViewId = int


class Need(NamedTuple):
    """Instances of ``gpus`` GPUs of ``gpu_type``, for a role that tolerates ``view``."""

    gpu_type: str
    view: ViewId
    gpus: int


class _Table:
    """Cumulative free slots of one :class:`Need` in every domain it may use: a row per domain
    (by name), a column per rank of the index (zero slots where the domain has none)."""

    def __init__(self, domains: list[str], columns: int) -> None:
        self.rows = {d: i for i, d in enumerate(domains)}
        self.cum: Slots = np.zeros((len(domains), columns), dtype=np.int64)
        self.dirty = set(domains)


class CapacityIndex:
    """Free capacity per (domain, GPU type) with undoable reservations."""

    def __init__(self, inventory: Inventory, *, releasable: bool = False) -> None:
        """``releasable``: number the nodes so that :meth:`release` can give back reservations
        made at any time (a run of every group costs 15-20% more, measured by the placement
        benchmark; a run on a fresh index needs only :meth:`rollback`)."""
        self.releasable = releasable
        topology = inventory.topology
        depth = levels(topology)
        # Count identical nodes first, reading their fields at C speed; everything after runs
        # once per distinct kind of node, not once per node.
        fields = attrgetter("tiers", "gpu_type", "slow", "taints", "allocatable", "requested", "schedulable")
        kinds = Counter(map(fields, inventory.nodes))
        premium = premium_by_path({(k[0][:depth], k[1]) for k in kinds}, topology)
        pools: defaultdict[PoolKey, dict[tuple[bool, int, tuple[Taint, ...]], _Bucket]] = defaultdict(dict)
        for (tiers, gpu_type, slow, taints, allocatable, requested, schedulable), count in kinds.items():
            path = tiers[:depth]
            domain = path_domain(path, topology)
            if domain is None or not schedulable:
                continue
            free = max(0, allocatable - requested)
            level = premium[path]
            bucket = pools[(domain, gpu_type)].get((slow, level, taints))
            if bucket is None:
                bucket = pools[(domain, gpu_type)][(slow, level, taints)] = _Bucket(slow, level, taints)
            bucket.add(free, count, tracked=releasable)
        self._pools = {key: list(buckets.values()) for key, buckets in pools.items()}
        # Every rank a view can give a bucket (an untolerated soft taint ranks it like a slow one),
        # in rank order, and the lowest rank first even when no bucket has it: rank_for() answers
        # it for nothing to reserve.
        levels_seen = {b.premium for buckets in self._pools.values() for b in buckets}
        ranks = sorted({LOWEST_RANK} | {(slow, level) for level in levels_seen for slow in (0, 1)})
        self._columns = {rank: i for i, rank in enumerate(ranks)}
        self._tables: dict[Need, _Table] = {}
        self._tables_of: defaultdict[str, list[_Table]] = defaultdict(list)
        self._rows: dict[tuple[Need, Need | None, Need], NDArray[np.intp]] = {}
        self._paired: dict[tuple[Need, Need | None], list[str]] = {}
        self._view_ids: dict[View, ViewId] = {}
        self._views: dict[tuple[PoolKey, ViewId], tuple[_Class, ...]] = {}
        self._ranks: dict[tuple[PoolKey, ViewId], tuple[Rank, ...]] = {}
        self._domains: dict[tuple[str, ViewId], list[str]] = {}
        self._undo: list[Reservation] = []
        self._slots: dict[PoolKey, dict[tuple[ViewId, int], tuple[int, ...]]] = {}
        self._orders: dict[tuple[Need, Need | None, tuple[int, int]], DomainOrder] = {}
        self._watching: defaultdict[str, list[DomainOrder]] = defaultdict(list)

    def intern(self, view: View) -> ViewId:
        """The number the other methods know ``view`` by."""
        return self._view_ids.setdefault(view, len(self._view_ids))

    def _view(self, key: PoolKey, view: ViewId) -> tuple[_Class, ...]:
        """The pool's buckets ``view`` may use, by rank (fixed for the cycle: only their
        histograms change)."""
        found = self._views.get((key, view))
        if found is None:
            tolerations = next(v for v, i in self._view_ids.items() if i == view)
            ranked: defaultdict[Rank, list[_Bucket]] = defaultdict(list)
            for bucket in self._pools.get(key, ()):
                usable, soft = admits(tolerations, bucket.taints)
                if usable:
                    ranked[(int(bucket.slow or soft), bucket.premium)].append(bucket)
            # Buckets of equal rank in taint order, so plans do not depend on node order.
            found = tuple(_Class(r, tuple(sorted(b, key=lambda b: b.taints))) for r, b in sorted(ranked.items()))
            self._views[(key, view)] = found
            self._ranks[(key, view)] = tuple(c.rank for c in found)
        return found

    def domains(self, gpu_type: str, view: ViewId) -> list[str]:
        """Domains with nodes of this GPU type the view may use, sorted by name."""
        found = self._domains.get((gpu_type, view))
        if found is None:
            found = self._domains[(gpu_type, view)] = sorted(
                d for d, t in self._pools if t == gpu_type and self._view((d, t), view)
            )
        return found

    def nodes_available(self, domain: str, gpu_type: str, view: ViewId) -> int:
        """Schedulable nodes of this type in this domain the view may use (free or not)."""
        return sum(b.nodes for c in self._view((domain, gpu_type), view) for b in c.buckets)

    def ranks(self, domain: str, gpu_type: str, view: ViewId) -> tuple[Rank, ...]:
        key = (domain, gpu_type)
        found = self._ranks.get((key, view))
        if found is None:
            self._view(key, view)
            found = self._ranks[(key, view)]
        return found

    def slots(self, domain: str, gpu_type: str, view: ViewId, gpus: int) -> tuple[int, ...]:
        """Instances of ``gpus`` GPUs that still fit, per rank in rank order."""
        key = (domain, gpu_type)
        cached = self._slots.get(key)
        if cached is None:
            cached = self._slots[key] = {}
        found = cached.get((view, gpus))
        if found is None:
            found = tuple(
                sum(count * (free // gpus) for b in c.buckets for free, count in b.free.items())
                for c in self._view(key, view)
            )
            cached[(view, gpus)] = found
        return found

    def rank_for(self, domain: str, gpu_type: str, view: ViewId, gpus: int, instances: int) -> Rank | None:
        """The highest rank a reservation of ``instances`` would touch; None if they do not fit."""
        if instances <= 0:
            return LOWEST_RANK
        total = 0
        for rank, slots in zip(
            self.ranks(domain, gpu_type, view), self.slots(domain, gpu_type, view, gpus), strict=True
        ):
            total += slots
            if total >= instances:
                return rank
        return None

    def paired(self, lead: Need, follow: Need | None) -> list[str]:
        """Domains that may hold a new group: nodes the lead may use, and (``follow`` None when
        the other role has no target) nodes the follower may use; sorted by name."""
        found = self._paired.get((lead, follow))
        if found is None:
            found = self._paired[(lead, follow)] = [
                d
                for d in self.domains(lead.gpu_type, lead.view)
                if follow is None or self.nodes_available(d, follow.gpu_type, follow.view)
            ]
        return found

    def cumulative(self, lead: Need, follow: Need | None, need: Need) -> Slots:
        """Free slots of ``need`` in each of ``paired(lead, follow)`` (which must have nodes for
        it), summed over the ranks up to each column: column ``i`` holds the slots of ranks up to
        the ``i``-th rank of the index, and column 0 is :data:`LOWEST_RANK`. A reservation
        touches the rank of the first column that holds it. Tables are kept current lazily, a
        row per pool a reservation changed, so new-group keys are computed for all domains at once."""
        table = self._tables.get(need)
        if table is None:
            table = self._tables[need] = _Table(self.domains(need.gpu_type, need.view), len(self._columns))
            self._tables_of[need.gpu_type].append(table)
        for domain in table.dirty:
            row = [0] * len(self._columns)
            for rank, free in zip(
                self.ranks(domain, need.gpu_type, need.view),
                self.slots(domain, need.gpu_type, need.view, need.gpus),
                strict=True,
            ):
                row[self._columns[rank]] = free
            table.cum[table.rows[domain]] = list(accumulate(row))
        table.dirty.clear()
        rows = self._rows.get((lead, follow, need))
        if rows is None:
            rows = self._rows[(lead, follow, need)] = np.array(
                [table.rows[d] for d in self.paired(lead, follow)], dtype=np.intp
            )
        return table.cum[rows]

    def _first(self, domain: str, need: Need) -> tuple[Rank, int]:
        """The first rank with a free slot (or the lowest) and the free slots in all."""
        slots = self.slots(domain, need.gpu_type, need.view, need.gpus)
        for rank, free in zip(self.ranks(domain, need.gpu_type, need.view), slots, strict=True):
            if free:
                return rank, sum(slots)
        return LOWEST_RANK, 0

    def candidates(self, lead: Need, follow: Need | None, ratio: tuple[int, int], ceiling: int) -> Iterator[Bound]:
        """Domains that may take a new group, by increasing lower bound of its key for
        ``ceiling`` lead instances (see :class:`~heteroscale.placement.order.DomainOrder`).

        ``follow`` is the other role (None when it has no target). ``ratio`` is ``(a, b)`` with
        at most ``a / b`` lead instances per follower instance in the targets, so a group of
        ``L`` lead instances needs at least ``L * b // a`` followers. Domains need usable nodes
        for both roles. The bound of the lead instances a group can take counts the follower:
        with their own pool, less than ``(follower slots + 1) * a / b``; sharing the lead's
        pool, no more than its free GPUs hold with the follower share."""
        order_key = (lead, follow, ratio)
        order = self._orders.get(order_key)
        if order is None:
            domains = self.paired(lead, follow)
            a, b = ratio

            def measure(domain: str) -> Measure:
                first, slots = self._first(domain, lead)
                if follow is None:
                    return Measure(first, slots, slots)
                if follow.gpu_type == lead.gpu_type:
                    if follow.view != lead.view:
                        return Measure(first, slots, slots)
                    gpus = sum(self.slots(domain, lead.gpu_type, lead.view, 1))
                    # The most L with L * lead GPUs + (L * b // a) * follower GPUs <= gpus.
                    lo, hi = 0, slots
                    while lo < hi:
                        mid = (lo + hi + 1) // 2
                        if mid * lead.gpus + mid * b // a * follow.gpus <= gpus:
                            lo = mid
                        else:
                            hi = mid - 1
                    return Measure(first, lo, slots)
                follow_first, follow_slots = self._first(domain, follow)
                # With a follower for every lead instance, the follower's first rank is touched too.
                rank = max(first, follow_first) if b >= a else first
                return Measure(rank, min(slots, -(-(follow_slots + 1) * a // b) - 1), slots)

            order = self._orders[order_key] = DomainOrder(domains, measure)
            self._watching[lead.gpu_type].append(order)
            if follow is not None and follow.gpu_type != lead.gpu_type:
                self._watching[follow.gpu_type].append(order)
        return order.candidates(ceiling)

    def take(self, domain: str, gpu_type: str, view: ViewId, gpus: int, instances: int) -> int:
        """Reserve up to ``instances`` of ``gpus`` GPUs, best fit; returns how many were reserved."""
        key = (domain, gpu_type)
        left = instances
        for cls in self._view(key, view):
            bins = sorted(
                (free, i) for i, b in enumerate(cls.buckets) for free, c in b.free.items() if c and free >= gpus
            )
            for free, i in bins:
                if left <= 0:
                    break
                bucket = cls.buckets[i]
                per_node = free // gpus
                full_nodes = min(bucket.free[free], left // per_node)
                if full_nodes:
                    self._move(key, bucket, free, per_node * gpus, full_nodes)
                    left -= full_nodes * per_node
                if 0 < left < per_node and bucket.free.get(free, 0):
                    self._move(key, bucket, free, left * gpus, 1)
                    left = 0
        return instances - max(left, 0)

    def _move(self, key: PoolKey, bucket: _Bucket, free: int, gpus: int, nodes: int) -> None:
        """Take ``gpus`` GPUs from each of ``nodes`` nodes of the bin ``free``."""
        self._undo.append(Reservation(key, bucket, free, gpus, nodes, bucket.take(free, gpus, nodes)))
        self._changed(key)

    def _changed(self, key: PoolKey) -> None:
        self._slots.pop(key, None)
        for order in self._watching.get(key[1], ()):
            order.invalidate(key[0])
        for table in self._tables_of.get(key[1], ()):
            if key[0] in table.rows:
                table.dirty.add(key[0])

    def mark(self) -> int:
        """A point to :meth:`rollback` to."""
        return len(self._undo)

    def rollback(self, mark: int) -> None:
        """Undo every reservation made since ``mark``."""
        while len(self._undo) > mark:
            self._give_back(self._undo.pop())

    def since(self, mark: int) -> list[Reservation]:
        """The reservations made since ``mark`` (what :meth:`release` gives back)."""
        return self._undo[mark:]

    def forget(self) -> None:
        """Make every reservation so far final: no :meth:`rollback` reaches past this point (the
        undo log would otherwise grow with every run of an index kept between runs)."""
        self._undo.clear()

    def release(self, reservations: list[Reservation]) -> None:
        """Give back reservations made at any time, to the nodes they took (most recent first),
        whatever was reserved after them: used when a group is planned again or dropped. Only a
        ``releasable`` index knows those nodes."""
        if not self.releasable:
            raise ValueError("only an index built with releasable=True can release reservations")
        for move in reversed(reservations):
            self._give_back(move)

    def _give_back(self, move: Reservation) -> None:
        move.bucket.give_back(move)
        self._changed(move.pool)
