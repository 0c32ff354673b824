"""Domains in the order a new group should try them, kept current as reservations change (pure).

Choosing the domain for a new group minimises the key ``(touched rank, takes less than asked,
spare lead slots or minus the instances taken, domain)``. Computing that key for one domain
costs a few trial reservations, so visiting every domain per new group made planning quadratic.
This order gives a lower bound of every domain's key from three figures that are cheap to keep:
a lower bound of the touched rank, an upper bound ``cap`` of the lead instances a group there can
take (the follower's room included) and the free lead slots. Per rank, domains are kept sorted by
``(slots, domain)`` and by ``(cap, domain)``, so :meth:`candidates` yields them by increasing
bound and the caller stops at the first bound not below the best exact key found.

The capacity index calls :meth:`DomainOrder.invalidate` for every pool a reservation (or its
rollback) changes; the order re-measures those domains lazily, on the next :meth:`candidates`.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

#: (uses slow nodes, premium level): lower is cheaper to give away.
Rank = tuple[int, int]
#: The lower bound of a domain's key: (rank, takes less than asked, spare or -cap, domain).
Bound = tuple[Rank, bool, int, str]


class Measure(NamedTuple):
    """What bounds a domain's key: ``rank`` is at most the rank a group there touches, ``cap``
    at least the lead instances it can take, ``slots`` the free lead slots (``cap <= slots``)."""

    rank: Rank
    cap: int
    slots: int


class DomainOrder:
    """Domains of one kind of new group by the lower bound of their key."""

    def __init__(self, domains: Iterable[str], measure: Callable[[str], Measure]) -> None:
        self._measure = measure
        self._entry: dict[str, Measure] = {}
        self._by_slots: dict[Rank, list[tuple[int, str]]] = {}
        self._by_cap: dict[Rank, list[tuple[int, str]]] = {}
        self._caps: dict[str, int] = {}
        self._ranks: list[Rank] = []
        self._members = frozenset(domains)
        self._dirty = set(self._members)

    def invalidate(self, domain: str) -> None:
        """Re-measure ``domain`` before the next :meth:`candidates` (if it is one of ours)."""
        if domain in self._members:
            self._dirty.add(domain)

    def _refresh(self) -> None:
        for domain in self._dirty:
            new = self._measure(domain)
            old = self._entry.get(domain)
            if new == old:
                continue
            if old is not None and old.cap > 0:
                by_slots, by_cap = self._by_slots[old.rank], self._by_cap[old.rank]
                del by_slots[bisect_left(by_slots, (old.slots, domain))]
                del by_cap[bisect_left(by_cap, (old.cap, domain))]
            self._entry[domain] = new
            self._caps[domain] = new.cap
            # Domains that cannot take a lead instance cannot take a group: they are left out.
            if new.cap > 0:
                if new.rank not in self._by_slots:
                    self._by_slots[new.rank], self._by_cap[new.rank] = [], []
                    insort(self._ranks, new.rank)
                insort(self._by_slots[new.rank], (new.slots, domain))
                insort(self._by_cap[new.rank], (new.cap, domain))
        self._dirty.clear()

    def candidates(self, ceiling: int) -> Iterator[Bound]:
        """Domains that may take a lead instance by increasing lower bound of their key for
        ``ceiling`` instances: per rank, first those that may take all (least spare slots
        first), then the others (largest cap first), ties by domain name."""
        self._refresh()
        for rank in self._ranks:
            by_slots, by_cap = self._by_slots[rank], self._by_cap[rank]
            # A domain that may take all has slots >= cap >= ceiling; one with slots >= ceiling
            # but a smaller cap is yielded with the others.
            for i in range(bisect_left(by_slots, (ceiling, "")), len(by_slots)):
                slots, domain = by_slots[i]
                if self._caps[domain] >= ceiling:
                    yield rank, False, slots - ceiling, domain
            end = bisect_left(by_cap, (ceiling, ""))
            while end > 0:
                # Walk caps downwards, but each run of equal caps forwards (by name).
                cap = by_cap[end - 1][0]
                start = bisect_left(by_cap, (cap, ""), 0, end)
                for i in range(start, end):
                    yield rank, True, -cap, by_cap[i][1]
                end = start
