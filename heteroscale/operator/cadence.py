"""When a PDServingGroup's loop ticks next: once a period, at a phase of the period its own (pure).

A loop that starts its next tick one period after the start of its last keeps its period but not
its place in it. Every tick that one congested moment delays (a load jump that makes every group
write at once, an operator restart, an API server slow for a while) ends at about the same time,
and from then on those groups tick together, every period, in a burst that congests again. Measured
with the operator benchmark at 1,000 groups (issue #15), created over one period so that their
ticks start spread: after the warm-up every tick of a period fell within 3-5 s of the 15 s, so
each load jump reached every group in one burst of writes, which queued for up to 9 s.

So each group ticks at its own phase of the period, from a hash of its namespace and name (the
same on every replica and after a restart, spread evenly over many groups), and a group out of
phase moves back to it on its next tick, as Kubernetes' controllers spread their resyncs with
jitter.
"""

from __future__ import annotations

import hashlib
import math


def phase(namespace: str, name: str) -> float:
    """The group's place in its period, in [0, 1)."""
    digest = hashlib.blake2b(f"{namespace}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def next_tick(started: float, now: float, interval: float, phase: float) -> float:
    """When the tick after one that started at ``started`` starts (``now``: the clock as it ended).

    The first instant of the group's phase (``phase * interval`` plus whole periods) that is at
    least half a period after ``started`` and not before ``now``. In phase, that is one period
    after the last start, however long the tick took; out of phase (its first tick, or after a
    failure's backoff), the group ticks between half a period and a period and a half after its
    last tick and is in phase from then on; after a tick that outlasted its period, at the next
    instant of its phase.
    """
    offset = phase * interval
    earliest = max(now, started + interval / 2)
    return offset + math.ceil((earliest - offset) / interval) * interval
