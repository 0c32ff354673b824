"""Domains in the order a new group should try them, kept current as reservations change (pure).

Choosing the domain for a new group minimises the key ``(touched rank, takes less than asked,
spare slots or minus the instances taken, domain)``. Computing that key for one domain costs a
few trial reservations, so visiting every domain per new group made planning quadratic. This
order gives, for one (GPU type, instance size), a lower bound of every domain's key from two
figures that are cheap to keep: the rank of the first bucket with a free slot and the number of
free slots. Domains are kept sorted by ``(slots, domain)`` per first rank, so :meth:`candidates`
yields them by increasing bound and the caller stops at the first bound not below the best exact
key found: usually after one or two domains.

The capacity index calls :meth:`DomainOrder.invalidate` for every pool a reservation (or its
rollback) changes; the order re-measures those domains lazily, on the next :meth:`candidates`.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator

#: (uses slow nodes, premium level): lower is cheaper to give away.
Rank = tuple[int, int]
#: The lower bound of a domain's key: (rank, takes less than asked, spare or -slots, domain).
Bound = tuple[Rank, bool, int, str]


class DomainOrder:
    """Domains of one (GPU type, instance size) by the lower bound of their new-group key."""

    def __init__(self, domains: Iterable[str], measure: Callable[[str], tuple[Rank, int]]) -> None:
        """``measure(domain)`` gives the rank of the first bucket with a free slot and the total
        free slots of the domain's pool."""
        self._measure = measure
        self._entry: dict[str, tuple[Rank, int]] = {}
        self._by_rank: dict[Rank, list[tuple[int, str]]] = {}
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
            if old is not None and old[1] > 0:
                entries = self._by_rank[old[0]]
                del entries[bisect_left(entries, (old[1], domain))]
            self._entry[domain] = new
            # Domains without a free slot cannot take a group: they are left out.
            if new[1] > 0:
                if new[0] not in self._by_rank:
                    self._by_rank[new[0]] = []
                    insort(self._ranks, new[0])
                insort(self._by_rank[new[0]], (new[1], domain))
        self._dirty.clear()

    def candidates(self, ceiling: int) -> Iterator[Bound]:
        """Domains with a free slot by increasing lower bound of their key for ``ceiling``
        instances: per rank, first those with room for all (least spare first), then the others
        (most slots first), ties by domain name."""
        self._refresh()
        for rank in self._ranks:
            entries = self._by_rank[rank]
            split = bisect_left(entries, (ceiling, ""))
            for i in range(split, len(entries)):
                slots, domain = entries[i]
                yield rank, False, slots - ceiling, domain
            end = split
            while end > 0:
                # Walk slot counts downwards, but each run of equal counts forwards (by name).
                slots = entries[end - 1][0]
                start = bisect_left(entries, (slots, ""), 0, end)
                for i in range(start, end):
                    yield rank, True, -slots, entries[i][1]
                end = start
