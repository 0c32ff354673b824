"""An exact check that instances pack onto nodes, for checking plans against real nodes.

A plan books instances per (domain, GPU type) pool; it does not over-commit the pool when its
instances can be put on the pool's nodes, each on one node that the instance's role may use,
without exceeding any node's free GPUs. Greedy packings (best fit, largest first, ...) can miss
a packing that exists when roles may use different nodes (a role tolerating a taint the other
does not), so they report false over-commits; this check does not.

It is a dynamic program over the nodes: the state is how many instances of each kind (GPUs, may
use tainted nodes) are still to place, and each node takes any combination of them that fits its
free GPUs. Instances of one kind are interchangeable, so the states are few on test-sized pools.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

#: A node as the check sees it: (free GPUs, tainted: only instances that may use tainted nodes fit).
NodeRoom = tuple[int, bool]
#: An instance: (GPUs, may use tainted nodes).
Instance = tuple[int, bool]


def _fills(free: int, gpus: Sequence[int], usable: Sequence[bool], left: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every count per kind, up to ``left``, of usable kinds whose GPUs sum to at most ``free``."""
    if not gpus:
        yield ()
        return
    most = min(left[0], free // gpus[0]) if usable[0] else 0
    for n in range(most + 1):
        for rest in _fills(free - n * gpus[0], gpus[1:], usable[1:], left[1:]):
            yield (n, *rest)


def packs(nodes: Sequence[NodeRoom], instances: Sequence[Instance]) -> bool:
    """Whether every instance can be put on a node it may use, within the nodes' free GPUs."""
    kinds = sorted(Counter(instances).items())
    gpus = [g for (g, _), _ in kinds]
    anywhere = [a for (_, a), _ in kinds]
    done = (0,) * len(kinds)
    order = sorted(nodes, key=lambda n: (n[1], -n[0]))
    # What the nodes from i on hold, in all and untainted: a state asking more is dropped.
    room = [0] * (len(order) + 1)
    clean = [0] * (len(order) + 1)
    for i in range(len(order) - 1, -1, -1):
        room[i] = room[i + 1] + order[i][0]
        clean[i] = clean[i + 1] + (0 if order[i][1] else order[i][0])
    states = {tuple(n for _, n in kinds)}
    for i, (free, tainted) in enumerate(order):
        if done in states:
            return True
        usable = [a or not tainted for a in anywhere]
        after = set()
        for left in states:
            for fill in _fills(free, gpus, usable, left):
                rest = tuple(n - f for n, f in zip(left, fill, strict=True))
                wanted = sum(g * n for g, n in zip(gpus, rest, strict=True))
                wanted_clean = sum(g * n for g, n, a in zip(gpus, rest, anywhere, strict=True) if not a)
                if wanted <= room[i + 1] and wanted_clean <= clean[i + 1]:
                    after.add(rest)
        states = after
    return done in states
