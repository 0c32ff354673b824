"""Running one function over the chunks of a trace: how a pass is run, in turn or in processes.

A pass calls a function on each chunk index and gets the results back in order; whether the calls
run in this process or in worker processes is the caller's choice (:func:`serial_map`, or a pool's
``map`` in :mod:`heteroscale.stragglers.streaming`). Functions given to a pool must pickle:
module-level functions, or ``functools.partial`` of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class MapChunks(Protocol):
    """Runs ``fn`` on each chunk index; returns the results in the order of ``indices``."""

    def __call__(self, fn: Callable[[int], T], indices: Sequence[int]) -> list[T]: ...


def serial_map(fn: Callable[[int], T], indices: Sequence[int]) -> list[T]:
    return [fn(i) for i in indices]
