"""How many CPU cores this process may use: the default number of worker processes of the offline
tools (``curate``, ``simulate``'s oracle search, the straggler analysis)."""

from __future__ import annotations

import os


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, e.g. under
    ``taskset`` or a container's cpuset), else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
