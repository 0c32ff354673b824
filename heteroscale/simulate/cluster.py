"""The simulated fleet: instances per role and GPU type, starting or ready.

New instances become ready after their GPU type's start-up delay; scale-in removes instances
still starting first, then ready ones (the order the Kubernetes ReplicaSet controller deletes
pods: not-ready before ready). Every instance, starting or ready, holds its GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from heteroscale.api.enums import Role


@dataclass
class _Group:
    gpus_per_instance: int
    startup_s: float
    ready: int = 0
    #: Times at which instances still starting become ready, oldest first.
    starting: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ready + len(self.starting)


class Fleet:
    """Instances per (role, GPU type). Time is passed in; nothing here reads a clock."""

    def __init__(self, gpus_per_instance: int, startup_s: Mapping[str, float]) -> None:
        self._gpus = gpus_per_instance
        self._startup = dict(startup_s)
        self._groups: dict[tuple[Role, str], _Group] = {}

    def _group(self, role: Role, gpu: str) -> _Group:
        key = (role, gpu)
        if key not in self._groups:
            self._groups[key] = _Group(self._gpus, self._startup[gpu])
        return self._groups[key]

    def set_ready(self, counts: Mapping[Role, Mapping[str, int]]) -> None:
        """Start the run with these instances already serving (warm start)."""
        for role, per_gpu in counts.items():
            for gpu, n in per_gpu.items():
                self._group(role, gpu).ready = n

    def advance(self, now: float) -> None:
        for g in self._groups.values():
            while g.starting and g.starting[0] <= now:
                g.starting.pop(0)
                g.ready += 1

    def apply(self, counts: Mapping[Role, Mapping[str, int]], now: float) -> bool:
        """Move every (role, GPU type) to its target count; True if anything changed."""
        changed = False
        wanted = {(role, gpu): n for role, per_gpu in counts.items() for gpu, n in per_gpu.items()}
        for key in set(wanted) | set(self._groups):
            g = self._group(*key)
            target = max(wanted.get(key, 0), 0)
            if target > g.total:
                g.starting.extend([now + g.startup_s] * (target - g.total))
                changed = True
            elif target < g.total:
                excess = g.total - target
                drop_starting = min(excess, len(g.starting))
                # The newest starting instances go first: they are furthest from ready.
                del g.starting[len(g.starting) - drop_starting :]
                g.ready -= excess - drop_starting
                changed = True
        return changed

    def ready(self, role: Role) -> dict[str, int]:
        return {gpu: g.ready for (r, gpu), g in self._groups.items() if r is role}

    def starting(self, role: Role) -> int:
        return sum(len(g.starting) for (r, _), g in self._groups.items() if r is role)

    def total(self, role: Role) -> int:
        return sum(g.total for (r, _), g in self._groups.items() if r is role)

    def by_gpu_type(self, role: Role) -> dict[str, int]:
        return {gpu: g.total for (r, gpu), g in self._groups.items() if r is role}

    @property
    def gpus(self) -> int:
        return sum(g.total for g in self._groups.values()) * self._gpus
