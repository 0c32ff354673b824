"""Request arrivals from real traces, and their scaling to a fleet, a time scale and a day.

Each trace request becomes one *representative* request that stands for ``weight`` identical
requests. Scaling to a fleet of hundreds of instances multiplies the weight instead of
duplicating rows, so a 1,000-instance day costs no more to simulate than the trace itself.

Loaders are the only I/O; :func:`scale` is pure and seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heteroscale import traces

FloatArray = npt.NDArray[np.float64]

#: Mooncake's hash_ids name 512-token prefix blocks (FAST'25 release README).
MOONCAKE_BLOCK_TOKENS = 512
#: Diurnal shape for days built from hour-long traces. The only public multi-day LLM trace
#: (Azure 2024 week) could not be obtained, so this is a stated assumption: a cosine with its
#: peak at 14:00 and its trough at 02:00, the trough at 25% of the peak rate.
DIURNAL_PEAK_HOUR = 14.0
DIURNAL_TROUGH_FRACTION = 0.25
#: A fleet X times larger serves X times more independent users: its load is the superposition
#: of X independent streams, relatively smoother than one stream with every request counted X
#: times. Up to this many independently rotated copies are superposed (the rest of the factor is
#: carried as weight), which bounds the cost while removing most of that false burstiness.
MAX_SUPERPOSED_COPIES = 8


@dataclass(frozen=True)
class Workload:
    """Requests sorted by arrival; every representative request stands for ``weight`` requests."""

    name: str
    arrival_s: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    #: Prompt tokens whose KV is already cached (a prefix hit); 0 where the trace has no hashes.
    cached_tokens: FloatArray
    duration_s: float
    weight: float = 1.0

    @property
    def size(self) -> int:
        return int(self.arrival_s.size)


def load(trace: str) -> Workload:
    """A bundled trace by name or a file (formats: :mod:`heteroscale.traces`), with prefix hits.

    Raises ``ValueError``/``FileNotFoundError`` with the reason for an unusable trace.
    """
    raw = traces.load(trace)
    n = raw.arrival.size
    cached = np.zeros(n) if raw.hash_ids is None else _prefix_hits(raw.hash_ids, raw.input_tokens)
    last = float(raw.arrival[-1])
    # One mean inter-arrival gap past the last request, so tiling keeps the trace's rate.
    duration = last + last / max(n - 1, 1) if last > 0 else 1.0
    return Workload(
        name=raw.name,
        arrival_s=raw.arrival.astype(np.float64),
        input_tokens=raw.input_tokens.astype(np.float64),
        output_tokens=np.maximum(raw.output_tokens, 1).astype(np.float64),
        cached_tokens=cached,
        duration_s=duration,
    )


def _prefix_hits(hash_ids: list[list[int]], input_tokens: npt.NDArray[np.int64]) -> FloatArray:
    """Prompt tokens served from the prefix cache, in arrival order.

    A prefix cache reuses only the leading run of blocks already computed; remembering every block
    seen is the infinite-cache upper bound the trace's README quotes. At least one token is always
    computed: the last position's logits are needed.
    """
    seen: set[int] = set()
    cached = np.zeros(len(hash_ids))
    for i, hashes in enumerate(hash_ids):
        hit = 0
        for h in hashes:
            if h not in seen:
                break
            hit += 1
        seen.update(hashes)
        cached[i] = min(hit * MOONCAKE_BLOCK_TOKENS, max(float(input_tokens[i]) - 1.0, 0.0))
    return cached


def diurnal_factor(t_s: FloatArray) -> FloatArray:
    """Relative arrival rate at ``t_s`` seconds after midnight, in [trough, 1]."""
    phase = 2.0 * np.pi * (t_s / 3600.0 - DIURNAL_PEAK_HOUR) / 24.0
    result: FloatArray = DIURNAL_TROUGH_FRACTION + (1 - DIURNAL_TROUGH_FRACTION) * (1 + np.cos(phase)) / 2
    return result


def scale(
    base: Workload,
    *,
    hours: float,
    fleet_scale: float = 1.0,
    time_scale: float = 1.0,
    diurnal: bool = False,
    start_hour: float = 0.0,
    seed: int = 0,
) -> Workload:
    """``hours`` of load built from ``base``.

    ``time_scale`` > 1 compresses the trace in time (the same requests arrive ``time_scale`` times
    faster), < 1 stretches it. The (compressed) trace is tiled until ``hours`` are covered; every
    tile after the first is rotated by a seeded random offset, so tiles are not copies of one another.
    ``diurnal`` thins arrivals by :func:`diurnal_factor` (clock starting at ``start_hour``).
    ``fleet_scale`` multiplies the load (see MAX_SUPERPOSED_COPIES for how).
    """
    if hours <= 0 or fleet_scale <= 0 or time_scale <= 0:
        raise ValueError("hours, fleet_scale and time_scale must be positive")
    rng = np.random.default_rng(seed)
    tile = base.duration_s / time_scale
    horizon = hours * 3600.0
    tiles = math.ceil(horizon / tile)
    copies = min(max(math.ceil(fleet_scale), 1), MAX_SUPERPOSED_COPIES)
    parts_t, parts_i = [], []
    index = np.arange(base.size)
    for j in range(tiles):
        for c in range(copies):
            t = base.arrival_s / time_scale
            if j > 0 or c > 0:
                t = (t + rng.uniform(0.0, tile)) % tile
            parts_t.append(t + j * tile)
            parts_i.append(index)
    t_all = np.concatenate(parts_t)
    i_all = np.concatenate(parts_i)
    keep = t_all < horizon
    if diurnal:
        keep &= rng.random(t_all.size) < diurnal_factor(t_all + start_hour * 3600.0)
    t_all, i_all = t_all[keep], i_all[keep]
    order = np.argsort(t_all, kind="stable")
    i_all = i_all[order]
    return Workload(
        name=base.name,
        arrival_s=t_all[order],
        input_tokens=base.input_tokens[i_all],
        output_tokens=base.output_tokens[i_all],
        cached_tokens=base.cached_tokens[i_all],
        duration_s=horizon,
        weight=base.weight * fleet_scale / copies,
    )
