"""Request arrivals from real traces, and their scaling to a fleet, a time scale and a day.

A fleet ``X`` times the traced one serves ``X`` times more independent users, so its load is the
superposition of ``ceil(X)`` independently time-rotated copies of the trace (the last one
weighted by the fractional part): relatively smoother than one stream counted ``X`` times, with
the relative fluctuation of the summed load falling like ``1/sqrt(X)``. The pools are driven by
that full superposition, binned (:meth:`Workload.offered`: a cumulative sum of the base trace
per copy, so a 1,000-instance fleet costs one pass over the trace per copy). Latencies are read
for a representative sample only (the first copy), each sampled request weighted by the number
of users it stands for.

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


@dataclass(frozen=True)
class Trace:
    """One trace's requests, sorted by arrival, over ``duration_s``."""

    name: str
    arrival_s: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    #: Prompt tokens whose KV is already cached (a prefix hit); 0 where the trace has no hashes.
    cached_tokens: FloatArray
    duration_s: float

    @property
    def size(self) -> int:
        return int(self.arrival_s.size)


@dataclass(frozen=True)
class Burst:
    """A surge: the trace plays faster (a slice of it compressed in time), so more requests arrive.
    From ``start_s`` (wall clock) the speed rises linearly from 1 to ``factor`` over ``ramp_s``,
    holds ``factor`` for ``duration_s``, and falls back to 1 over ``ramp_s``; the trace then
    carries on from where the compressed slice ended. ``ramp_s`` 0 is a step."""

    start_s: float
    duration_s: float
    factor: float
    ramp_s: float = 0.0

    def _knots(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Wall-clock knots of the speed curve, the speed at each, and the trace time reached."""
        top = self.start_s + self.ramp_s
        wall = np.array([0.0, self.start_s, top, top + self.duration_s, top + self.duration_s + self.ramp_s])
        speed = np.array([1.0, 1.0, self.factor, self.factor, 1.0])
        trace = np.concatenate([[0.0], np.cumsum(np.diff(wall) * (speed[:-1] + speed[1:]) / 2)])
        return wall, speed, trace

    def trace_time(self, t_s: FloatArray) -> FloatArray:
        """Trace time reached at wall-clock time ``t_s``."""
        wall, speed, trace = self._knots()
        inside = np.clip(t_s, wall[0], wall[-1])
        # Within a ramp the speed is linear, so the trace time is quadratic: integrate exactly.
        k = np.clip(np.searchsorted(wall, inside, side="right") - 1, 0, wall.size - 2)
        span = np.maximum(wall[k + 1] - wall[k], 1e-12)
        u = inside - wall[k]
        slope = (speed[k + 1] - speed[k]) / span
        result: FloatArray = trace[k] + speed[k] * u + slope * u**2 / 2 + np.maximum(t_s - wall[-1], 0.0)
        return result

    def wall_time(self, trace_s: FloatArray) -> FloatArray:
        """Wall-clock time at which trace time ``trace_s`` is reached (the inverse)."""
        wall, _, trace = self._knots()
        grid = np.linspace(wall[0], wall[-1], 200_001) if wall[-1] > 0 else wall[:1]
        mapped = self.trace_time(grid)
        inside = np.interp(np.clip(trace_s, trace[0], trace[-1]), mapped, grid)
        result: FloatArray = inside + np.maximum(trace_s - trace[-1], 0.0)
        return result


#: No burst: trace time is wall-clock time.
NO_BURST = Burst(0.0, 0.0, 1.0)


@dataclass(frozen=True)
class DayCurve:
    """A measured day instead of the assumed cosine: the share of the peak user population online
    in each ``bin_s`` from the workload's start (e.g. a service's request rate read from
    Prometheus over its peak), held constant within a bin and at the last bin's after the end."""

    bin_s: float
    share: FloatArray

    def at(self, t_s: FloatArray) -> FloatArray:
        index = np.clip((np.asarray(t_s) // self.bin_s).astype(np.int64), 0, self.share.size - 1)
        result: FloatArray = self.share[index]
        return result


@dataclass(frozen=True)
class Quiet:
    """A stretch of the day when no user is online: a service used by one site's people (an
    internal code assistant, say), closed at night. From ``start_hour`` (clock time) for
    ``hours`` the users online fall to zero; they log off over the ``ramp_hours`` before it and
    back on over the ``ramp_hours`` after it (linearly), so the first requests after it trickle in.
    The users online outside it follow the day's curve as usual. An assumption, stated: no public
    LLM trace has such a night; the bundled traces give the requests, this gives who is online."""

    start_hour: float
    hours: float
    ramp_hours: float = 1.0

    def online(self, clock_hour: FloatArray) -> FloatArray:
        """Share of the users online at ``clock_hour`` (hours after midnight, any day)."""
        h = np.mod(clock_hour, 24.0)
        inside = np.mod(h - self.start_hour, 24.0) < self.hours
        before = np.mod(self.start_hour - h, 24.0)
        after = np.mod(h - self.start_hour - self.hours, 24.0)
        ramp = np.minimum(np.minimum(before, after) / self.ramp_hours, 1.0) if self.ramp_hours > 0 else 1.0
        result: FloatArray = np.where(inside, 0.0, ramp)
        return result


@dataclass(frozen=True)
class Workload:
    """``duration_s`` of load: the superposition that drives the pools, and a weighted sample.

    ``trace`` is the base (time-scaled) trace, one tile long. Copy ``c`` of the superposition
    shows tile ``j`` rotated by ``offsets_s[c, j]``, and counts with the share
    ``clip(population(t) - c, 0, 1)``, so ``population(t)`` copies are online at ``t`` (a diurnal
    day has fewer users at night, not quieter ones). The sample is copy 0 in full: request ``i``
    arrives at ``arrival_s[i]`` and stands for ``weight[i] = population(arrival_s[i])`` requests.
    """

    name: str
    trace: Trace
    duration_s: float
    fleet_scale: float
    offsets_s: FloatArray
    diurnal: bool
    start_hour: float
    arrival_s: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    cached_tokens: FloatArray
    weight: FloatArray
    burst: Burst = NO_BURST
    #: A measured day; when set it replaces ``diurnal``'s cosine.
    curve: DayCurve | None = None
    quiet: Quiet | None = None

    @property
    def size(self) -> int:
        return int(self.arrival_s.size)

    @property
    def copies(self) -> int:
        return int(self.offsets_s.shape[0])

    def population(self, t_s: FloatArray) -> FloatArray:
        """Copies of the trace's user population online at ``t_s``."""
        return _population(self.fleet_scale, self.diurnal, self.start_hour, t_s, self.curve, self.quiet)

    def offered(self, values: FloatArray, bin_s: float, bins: int | None = None) -> FloatArray:
        """Sum over the whole superposition of ``values`` (one row of per-trace-request values,
        or several rows) by arrival bin ``[k * bin_s, (k + 1) * bin_s)``.

        Each bin of each copy is the rotated trace's content over the trace-time interval the bin
        covers (exact, through the trace's cumulative sums; a burst makes that interval longer than
        the bin); a bin straddling a tile boundary uses its start's tile. Bins past ``duration_s``
        are empty.
        """
        rows = np.atleast_2d(values)
        n_bins = math.ceil(self.duration_s / bin_s) if bins is None else bins
        tile = self.trace.duration_s
        cum = np.concatenate([np.zeros((rows.shape[0], 1)), np.cumsum(rows, axis=1)], axis=1)
        wall = np.arange(n_bins, dtype=np.float64) * bin_s
        wall_end: FloatArray = np.minimum(wall + bin_s, self.duration_s)
        start = self.burst.trace_time(wall)
        length = np.maximum(self.burst.trace_time(wall_end) - start, 0.0)
        j = np.minimum((start // tile).astype(np.int64), self.offsets_s.shape[1] - 1)
        population = self.population(wall + np.maximum(wall_end - wall, 0.0) / 2)
        total = np.zeros((rows.shape[0], n_bins))
        for c in range(self.copies):
            share = np.clip(population - c, 0.0, 1.0)
            u = start - j * tile + self.offsets_s[c, j]
            total += share * (self._cumulative(cum, u + length) - self._cumulative(cum, u))
        result: FloatArray = total if np.ndim(values) > 1 else total[0]
        return result

    def _cumulative(self, cum: FloatArray, u: FloatArray) -> FloatArray:
        """The trace's cumulative sums at unrolled phase ``u`` >= 0 (the trace repeats every tile)."""
        tile = self.trace.duration_s
        laps = np.floor(u / tile)
        idx = np.searchsorted(self.trace.arrival_s, u - laps * tile, side="left")
        result: FloatArray = laps * cum[:, -1:] + cum[:, idx]
        return result


def load(trace: str) -> Trace:
    """A bundled trace by name or a file (formats: :mod:`heteroscale.traces`), with prefix hits.

    Raises ``ValueError``/``FileNotFoundError`` with the reason for an unusable trace.
    """
    raw = traces.load(trace)
    n = raw.arrival.size
    cached = np.zeros(n) if raw.hash_ids is None else _prefix_hits(raw.hash_ids, raw.input_tokens)
    last = float(raw.arrival[-1])
    # One mean inter-arrival gap past the last request, so tiling keeps the trace's rate.
    duration = last + last / max(n - 1, 1) if last > 0 else 1.0
    return Trace(
        name=raw.name,
        arrival_s=raw.arrival.astype(np.float64),
        input_tokens=raw.input_tokens.astype(np.float64),
        output_tokens=np.maximum(raw.output_tokens, 1).astype(np.float64),
        cached_tokens=cached,
        duration_s=duration,
    )


def halves(trace: Trace) -> tuple[Trace, Trace]:
    """The trace's first and second half in time, each starting at 0: one to choose a policy on,
    one to judge it on (a held-out day). Prefix hits stay as the whole trace had them: the cache
    of a service that ran through the first half already holds its prefixes in the second."""
    middle = trace.duration_s / 2.0
    first = trace.arrival_s < middle
    if first.all() or not first.any():
        raise ValueError(f"trace {trace.name} cannot be split in two halves: all its requests arrive in one of them")
    parts = []
    for part, shift, duration, which in (
        (first, 0.0, middle, "first"),
        (~first, middle, trace.duration_s - middle, "second"),
    ):
        parts.append(
            Trace(
                name=f"{trace.name} ({which} half)",
                arrival_s=trace.arrival_s[part] - shift,
                input_tokens=trace.input_tokens[part],
                output_tokens=trace.output_tokens[part],
                cached_tokens=trace.cached_tokens[part],
                duration_s=duration,
            )
        )
    return parts[0], parts[1]


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
    base: Trace,
    *,
    hours: float,
    fleet_scale: float = 1.0,
    time_scale: float = 1.0,
    diurnal: bool = False,
    start_hour: float = 0.0,
    seed: int = 0,
    burst: Burst = NO_BURST,
    curve: DayCurve | None = None,
    quiet: Quiet | None = None,
) -> Workload:
    """``hours`` of load built from ``base``.

    ``time_scale`` > 1 compresses the trace in time (the same requests arrive ``time_scale`` times
    faster), < 1 stretches it. The (compressed) trace is tiled until ``hours`` are covered; every
    tile of every copy except copy 0's first is rotated by a seeded random offset, so tiles and
    copies are not copies of one another. ``diurnal`` varies the users online by
    :func:`diurnal_factor` (clock starting at ``start_hour``). ``fleet_scale`` multiplies the load
    as a superposition of independent user populations (see the module docstring). ``burst``
    compresses a slice of the day's trace in time (see :class:`Burst`). ``curve`` (a measured day)
    replaces the cosine: ``curve.share`` of ``fleet_scale`` copies are online at each time.
    ``quiet`` takes every user offline for a stretch of each day (see :class:`Quiet`).
    """
    if hours <= 0 or fleet_scale <= 0 or time_scale <= 0:
        raise ValueError("hours, fleet_scale and time_scale must be positive")
    if burst.factor < 1 or burst.duration_s < 0 or burst.ramp_s < 0 or not 0 <= burst.start_s <= hours * 3600:
        raise ValueError("a burst needs a factor of at least 1, no negative length, and must start within the hours")
    if quiet is not None and not (0 <= quiet.start_hour < 24 and quiet.hours > 0 and quiet.ramp_hours >= 0):
        raise ValueError("a quiet stretch needs a start hour in [0, 24), a positive length and no negative ramp")
    if quiet is not None and quiet.hours + 2 * quiet.ramp_hours > 24:
        raise ValueError("a quiet stretch and its two ramps must fit in a day")
    rng = np.random.default_rng(seed)
    tile = base.duration_s / time_scale
    trace = Trace(
        name=base.name,
        arrival_s=base.arrival_s / time_scale,
        input_tokens=base.input_tokens,
        output_tokens=base.output_tokens,
        cached_tokens=base.cached_tokens,
        duration_s=tile,
    )
    horizon = hours * 3600.0
    trace_horizon = float(burst.trace_time(np.array(horizon)))
    copies = max(math.ceil(fleet_scale), 1)
    offsets = rng.uniform(0.0, tile, (copies, math.ceil(horizon / tile)))
    # A burst plays more of the trace: its extra tiles come from their own stream, so the day is
    # the same as without the burst up to the burst.
    extra = math.ceil(trace_horizon / tile) - offsets.shape[1]
    if extra > 0:
        more = np.random.default_rng([seed, 1]).uniform(0.0, tile, (copies, extra))
        offsets = np.concatenate([offsets, more], axis=1)
    tiles = offsets.shape[1]
    offsets[0, 0] = 0.0
    t_all = np.concatenate([(trace.arrival_s + offsets[0, j]) % tile + j * tile for j in range(tiles)])
    i_all = np.tile(np.arange(trace.size), tiles)
    keep = t_all < trace_horizon
    order = np.argsort(t_all[keep], kind="stable")
    t_all, i_all = burst.wall_time(t_all[keep][order]), i_all[keep][order]
    return Workload(
        name=base.name,
        trace=trace,
        duration_s=horizon,
        fleet_scale=fleet_scale,
        offsets_s=offsets,
        diurnal=diurnal,
        start_hour=start_hour,
        arrival_s=t_all,
        input_tokens=base.input_tokens[i_all],
        output_tokens=base.output_tokens[i_all],
        cached_tokens=base.cached_tokens[i_all],
        weight=_population(fleet_scale, diurnal, start_hour, t_all, curve, quiet),
        burst=burst,
        curve=curve,
        quiet=quiet,
    )


def _population(
    fleet_scale: float,
    diurnal: bool,
    start_hour: float,
    t_s: FloatArray,
    curve: DayCurve | None = None,
    quiet: Quiet | None = None,
) -> FloatArray:
    clock = np.asarray(t_s, dtype=np.float64) + start_hour * 3600.0
    if curve is not None:
        result: FloatArray = fleet_scale * curve.at(t_s)
    elif diurnal:
        result = fleet_scale * diurnal_factor(clock)
    else:
        result = np.full(np.shape(clock), fleet_scale, dtype=np.float64)
    if quiet is not None:
        result = result * quiet.online(clock / 3600.0)
    return result
