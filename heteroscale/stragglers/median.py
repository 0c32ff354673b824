"""Exact medians of values spread over chunks, in bounded memory (radix selection on the float's bits).

The ideal duration of a communication op type is the median of its transfer times over the whole
trace, and a trace analysed in chunks of steps never holds them all. Here each pass reads every
chunk once (in any order, in any process): the first counts each group's values and histograms the
top 16 bits of an order-preserving integer key of each value; every later pass narrows the order
statistics the median needs by 16 more bits, or, once at most ``keep`` candidates share the bits
found so far, collects them and selects exactly. Two passes suffice unless more than ``keep`` values
of a group share their top 16 bits. The result equals ``np.median`` of all the values, bit for bit.
Pure: the values come from a function the caller passes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import numpy.typing as npt

from heteroscale.stragglers.chunked import MapChunks, serial_map

FloatArray = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]
Keys = npt.NDArray[np.uint64]
# The values of each group (e.g. op type) in one chunk; must pickle to run in worker processes.
ChunkValues = Callable[[int], Mapping[int, FloatArray]]

KEEP = 1 << 22  # candidates collected for the final selection: 32 MiB of float64
_BITS = 16
_BINS = 1 << _BITS
_SIGN = np.uint64(1 << 63)


def _keys(values: FloatArray) -> Keys:
    """Unsigned keys that sort like the (non-NaN) floats: flip negatives, set the sign of positives."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    keys: Keys = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    return keys


def _value(key: int) -> float:
    bits = key ^ (1 << 63) if key >> 63 else ~key & ((1 << 64) - 1)
    return float(np.array(bits, dtype=np.uint64).view(np.float64))


@dataclass(frozen=True)
class _Want:
    """What a pass looks at among one group's values whose key starts with ``prefix`` (``depth``
    bits): their values (``collect``), or a histogram of their next 16 bits."""

    prefix: int
    depth: int
    collect: bool


# Per want: a sparse histogram (digits, counts), or the collected values.
_Found = tuple[Counts, Counts] | FloatArray


def _scan(values_of: ChunkValues, wants: Mapping[int, Sequence[_Want]] | None, index: int) -> dict[int, list[_Found]]:
    """One chunk's part of a pass; ``wants`` None is the first pass (top bits of every group)."""
    found: dict[int, list[_Found]] = {}
    for group, values in values_of(index).items():
        mine = [_Want(0, 0, collect=False)] if wants is None else wants.get(group, [])
        if not mine or not len(values):
            continue
        keys = _keys(values)
        found[group] = []
        for want in mine:
            hit = (keys >> np.uint64(64 - want.depth)) == np.uint64(want.prefix) if want.depth else slice(None)
            if want.collect:
                found[group].append(np.asarray(values[hit], dtype=np.float64))
            else:
                digits = (keys[hit] >> np.uint64(64 - want.depth - _BITS)) & np.uint64(_BINS - 1)
                counts = np.bincount(digits.astype(np.intp), minlength=_BINS)
                present = np.flatnonzero(counts)
                found[group].append((present, counts[present]))
    return found


@dataclass
class _Target:
    """One order statistic of one group: the ``rank``-th smallest of the ``count`` values whose key
    starts with the ``depth`` bits of ``prefix``."""

    rank: int
    count: int
    prefix: int = 0
    depth: int = 0
    value: float | None = None
    collecting: bool = False
    candidates: list[FloatArray] = field(default_factory=list)
    histogram: Counts = field(default_factory=lambda: np.zeros(_BINS, dtype=np.int64))

    def want(self, keep: int) -> _Want:
        self.collecting = self.count <= keep
        return _Want(self.prefix, self.depth, self.collecting)

    def add(self, found: _Found) -> None:
        if isinstance(found, tuple):
            np.add.at(self.histogram, found[0], found[1])
        else:
            self.candidates.append(found)

    def finish(self) -> None:
        if self.collecting:
            values = np.concatenate(self.candidates)
            self.value = float(np.partition(values, self.rank)[self.rank])
        else:
            self.narrow()

    def narrow(self) -> None:
        """Fix the next 16 bits: the histogram bin that holds the rank-th candidate."""
        below = np.cumsum(self.histogram)
        digit = int(np.searchsorted(below, self.rank, side="right"))
        self.rank -= int(below[digit - 1]) if digit else 0
        self.count = int(self.histogram[digit])
        self.prefix = (self.prefix << _BITS) | digit
        self.depth += _BITS
        self.histogram = np.zeros(_BINS, dtype=np.int64)
        if self.depth == 64:  # every candidate has this very key: they are one value
            self.value = _value(self.prefix)


def exact_medians(
    values_of: ChunkValues, n_chunks: int, map_chunks: MapChunks = serial_map, keep: int = KEEP
) -> dict[int, float]:
    """The median of each group's values over all ``n_chunks`` chunks; groups without values are
    left out. ``map_chunks`` runs each pass's chunks (in turn, or in worker processes)."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    chunks = range(n_chunks)
    every: dict[int, _Target] = {}  # all of a group's values, to count them and histogram their top bits
    for found in map_chunks(partial(_scan, values_of, None), chunks):
        for group, (part,) in found.items():
            every.setdefault(group, _Target(rank=0, count=0)).add(part)
    targets: dict[int, list[_Target]] = {}
    for group, first in every.items():
        n = int(first.histogram.sum())
        middle = sorted({(n - 1) // 2, n // 2})
        targets[group] = [_Target(rank, n, histogram=first.histogram.copy()) for rank in middle]
        for target in targets[group]:
            target.narrow()
    while pending := {g: unsolved for g, ts in targets.items() if (unsolved := [t for t in ts if t.value is None])}:
        wants = {g: [t.want(keep) for t in ts] for g, ts in pending.items()}
        for found in map_chunks(partial(_scan, values_of, wants), chunks):
            for group, parts in found.items():
                for target, part in zip(pending[group], parts, strict=True):
                    target.add(part)
        for ts in pending.values():
            for target in ts:
                target.finish()
    # As np.median: the middle value, or the mean of the two middle values.
    return {g: float(np.mean([t.value for t in ts if t.value is not None])) for g, ts in targets.items()}
