"""How many CPU cores this process may use (the default number of worker processes of the offline
tools: ``curate``, ``simulate``'s oracle search, the straggler analysis), and how the workers of
the tools that show a progress bar start."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.context import BaseContext


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one, e.g. under
    ``taskset`` or a container's cpuset), else every core of the machine."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_context() -> BaseContext:
    """Where worker processes start from: the fork server where there is one, else a fresh spawn.
    Not fork: the parent may hold threads (the progress bar's monitor), and a child forked from a
    threaded process can deadlock; the fork server is a clean process that forks the workers."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
