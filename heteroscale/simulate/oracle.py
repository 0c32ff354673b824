"""Oracle: the least provisioning per role that meets the SLO attainment target over the run.

With perfect foresight of every request it knows, per step, what each role must serve, in
instances at full capacity (the capacity definitions every policy's targets use):

* prefill: the arriving prefill work (each request's own work, reference-GPU seconds per
  second), averaged over the decision interval;
* decode: the sequences decoding in the step, each from the end of its unloaded prefill and KV
  transfer for its own ``output tokens x TBT`` at the largest batch within the TBT SLO (time-
  averaged over the step, not rounded to whole steps), divided by that batch.

Provisioning ``ceil(factor x need)`` per role, decided every ``intervalSeconds`` and started one
start-up delay early (each decision covers every step until the next one plus the start-up
delay, the least any controller acting at that interval can hold), it searches the factor of
each role: a grid of (prefill, decode) factors, then a finer grid around the cheapest pair that
met the target, every candidate one lane of a simulation pass. The oracle is the cheapest pair
meeting the SLO attainment target; no policy should use fewer GPU-hours at that attainment.

It is not placed: it bounds what any placement could do, so its pools are taken to sit apart
(every KV transfer crosses S2 domains, as most of the per-pool baselines' do). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from heteroscale.api.enums import Role
from heteroscale.simulate.engine import EngineConfig, RunResult, Scheduled, Served, serve, steps_for
from heteroscale.simulate.perfmodel import FloatArray, kv_transfer_seconds
from heteroscale.simulate.service import Service, mean_context
from heteroscale.simulate.summary import slo_attainment
from heteroscale.simulate.workload import Workload

#: First grid of (prefill, decode) factors. Below a factor of 1 a role's capacity falls short of
#: its mean need and its queue grows without bound, so attainment falls off a cliff just under 1;
#: the grid is dense there and sparse above. Raised by 30% while no pair meets the target.
PREFILL_FACTORS = (0.97, 1.0, 1.02, 1.035, 1.05, 1.075, 1.1, 1.2, 1.4)
DECODE_FACTORS = (0.96, 0.98, 1.0, 1.03)
GRID_RAISES = 4
GRID_RAISE = 1.3
#: A chosen factor more than this above the next smaller one tried is refined by one more pass.
REFINE_GAP = 0.05


@dataclass(frozen=True)
class Needs:
    """Instances each step needs at full capacity, per role."""

    prefill: FloatArray
    decode: FloatArray


@dataclass(frozen=True)
class Tried:
    factors: tuple[float, float]
    gpu_hours: float
    slo_attainment: float


@dataclass(frozen=True)
class OracleResult:
    run: RunResult
    factors: tuple[float, float]
    tried: tuple[Tried, ...]


def occupancy(start_s: FloatArray, duration_s: FloatArray, dt: float, spans: int) -> FloatArray:
    """Expected share of step ``m`` (0 <= m < spans, after the arrival's step) that a request
    decodes, for an arrival uniform within its step that decodes from ``start_s`` after arrival
    for ``duration_s``; shape (spans, requests)."""

    def area(y: FloatArray) -> FloatArray:
        # Integral over [0, y] of the measure of arrival offsets u in [0, dt) with u <= x <= u + duration.
        y = np.clip(y, 0.0, duration_s + dt)
        ramp = np.where(y <= dt, y**2 / 2, dt**2 / 2 + dt * (y - dt))
        result: FloatArray = ramp - np.maximum(y - duration_s, 0.0) ** 2 / 2
        return result

    edges = np.arange(spans + 1)[:, None] * dt - start_s[None, :]
    result: FloatArray = np.diff(area(edges), axis=0) / dt**2
    return result


def needs(workload: Workload, service: Service, config: EngineConfig) -> Needs:
    """Per-step need of both roles (see the module docstring)."""
    dt = config.dt
    steps = steps_for(workload, config)
    trace = workload.trace
    prefill, decode = service.instance(Role.PREFILL), service.instance(Role.DECODE)
    new = trace.input_tokens - trace.cached_tokens
    work = workload.offered(prefill.prefill_seconds(new, trace.cached_tokens), dt, steps) / dt
    tick = max(round(config.interval_s / dt), 1)
    need_p = np.convolve(work, np.ones(tick) / tick, mode="same")

    ctx = mean_context(workload)
    batch = decode.batch_at_tbt(service.slo.tbt_s, ctx)
    tbt = float(decode.decode_step_seconds(batch, ctx))
    start = prefill.prefill_latency(new, trace.cached_tokens) + kv_transfer_seconds(
        service.model, service.kv_rdma_gbps, trace.input_tokens, 1.0
    )
    duration = trace.output_tokens * tbt
    spans = math.ceil(float((start + duration).max()) / dt) + 2
    per_offset = workload.offered(occupancy(start, duration, dt, spans), dt, steps)
    active = np.zeros(steps)
    for m in range(spans):
        active[m:] += per_offset[m, : steps - m]
    return Needs(need_p, active / batch)


def schedule(need: FloatArray, factor: float, tick: int, lead: int) -> FloatArray:
    """Instances held per step: decided at every tick to cover ``ceil(factor x need)`` until the
    next decision plus the start-up delay (``lead`` steps), at least one."""
    wanted = np.maximum(np.ceil(factor * need - 1e-9), 1.0)
    horizon = tick + lead
    padded = np.concatenate([wanted, np.full(horizon - 1, wanted[-1])])
    ahead = sliding_window_view(padded, horizon).max(axis=1)
    decided = ahead[(np.arange(need.size) // tick) * tick]
    result: FloatArray = decided
    return result


def ready(held: FloatArray, lead: int) -> FloatArray:
    """Instances serving per step when the held count follows ``held`` and a new instance serves
    ``lead`` steps after it starts (removals take the newest first, as the fleet's do)."""
    padded = np.concatenate([np.full(lead, held[0]), held])
    result: FloatArray = sliding_window_view(padded, lead + 1).min(axis=1)
    return result


def _leads(service: Service, config: EngineConfig) -> dict[Role, int]:
    """Each role's start-up delay in steps."""
    return {role: math.ceil(service.instance(role).startup_seconds / config.dt) for role in (Role.PREFILL, Role.DECODE)}


def initial_counts(need: Needs, service: Service, config: EngineConfig) -> tuple[int, int]:
    """(prefill, decode) instances the first minutes need: where a reactive policy starts, as
    after a previous day."""
    tick = max(round(config.interval_s / config.dt), 1)
    lead = _leads(service, config)
    return (
        int(schedule(need.prefill, 1.0, tick, lead[Role.PREFILL])[0]),
        int(schedule(need.decode, 1.0, tick, lead[Role.DECODE])[0]),
    )


class Search:
    """The search for the cheapest (prefill, decode) factor pair that meets the SLO attainment
    target. Each round's candidates are lanes (:meth:`lanes`) of a simulation pass, possibly
    shared with other lanes; :meth:`record` takes their outcome; :meth:`next_pairs` says what to
    try next (the first grid, a raised grid while nothing meets the target, then one refinement
    around the cheapest pair), and nothing once the search is done."""

    def __init__(self, workload: Workload, service: Service, config: EngineConfig, need: Needs) -> None:
        self._workload = workload
        self._service = service
        self._config = config
        self._need = need
        self._tick = max(round(config.interval_s / config.dt), 1)
        self._lead = _leads(service, config)
        self._tried: dict[tuple[float, float], tuple[Tried, int, Served]] = {}
        self._grid: tuple[tuple[float, ...], tuple[float, ...]] = (PREFILL_FACTORS, DECODE_FACTORS)
        self._raises = 0
        self._refined = False

    def lanes(self, pairs: list[tuple[float, float]]) -> Scheduled:
        """The candidates' fleets; their KV is taken to cross S2s (pools placed apart)."""
        held_p = np.array([schedule(self._need.prefill, fp, self._tick, self._lead[Role.PREFILL]) for fp, _ in pairs])
        held_d = np.array([schedule(self._need.decode, fd, self._tick, self._lead[Role.DECODE]) for _, fd in pairs])
        ready_p = np.array([ready(h, self._lead[Role.PREFILL]) for h in held_p])
        ready_d = np.array([ready(h, self._lead[Role.DECODE]) for h in held_d])
        return Scheduled(self._service, held_p, ready_p, held_d, ready_d, cross_domain=1.0)

    def record(self, pairs: list[tuple[float, float]], served: Served, first_lane: int) -> None:
        service = self._service
        for k, pair in enumerate(pairs, start=first_lane):
            lane = served.traj.lane(k)
            hours = float((lane.prefill_instances + lane.decode_instances).sum() * service.gpus_per_instance)
            hours *= self._config.dt / 3600
            attained = slo_attainment(
                served.latencies[k], served.ttft_limit_s[k], service.slo.tbt_s, self._workload.weight
            )
            self._tried[pair] = (Tried(pair, hours, attained), k, served)

    def _cheapest(self) -> tuple[float, float] | None:
        target = self._service.slo.attainment
        ok = [t for t, _, _ in self._tried.values() if t.slo_attainment >= target]
        return min(ok, key=lambda t: t.gpu_hours).factors if ok else None

    def next_pairs(self) -> list[tuple[float, float]]:
        """Candidates for the next pass; empty when the search is done."""
        if not self._tried:
            return _product(*self._grid)
        best = self._cheapest()
        if best is None:
            if self._raises >= GRID_RAISES:
                raise ValueError("the oracle found no provisioning that meets the SLO attainment target")
            self._raises += 1
            self._grid = (
                tuple(GRID_RAISE * f for f in self._grid[0]),
                tuple(GRID_RAISE * f for f in self._grid[1]),
            )
            return _product(*self._grid)
        if self._refined:
            return []
        self._refined = True
        # Refine a coarse choice: halfway towards the next smaller factor tried for that role.
        finer_p = [best[0], *_halfway(best[0], {p for p, _ in self._tried})]
        finer_d = [best[1], *_halfway(best[1], {d for _, d in self._tried})]
        return [pair for pair in _product(finer_p, finer_d) if pair not in self._tried]

    def result(self) -> OracleResult:
        best = self._cheapest()
        if best is None:
            raise ValueError("the oracle search has not met the SLO attainment target yet")
        chosen, k, served = self._tried[best]
        lane = served.traj.lane(k)
        latencies = served.latencies[k]
        held = lane.prefill_instances + lane.decode_instances
        service = self._service
        return OracleResult(
            run=RunResult(
                policy="oracle",
                dt=self._config.dt,
                weight=self._workload.weight,
                gpus_per_instance=service.gpus_per_instance,
                traj=lane,
                offered_decode_tps=served.offered_decode_tps,
                arrival_s=self._workload.arrival_s,
                ttft_s=latencies.ttft_s,
                ttft_limit_s=served.ttft_limit_s[k],
                ttft_unloaded_s=served.ttft_unloaded(k, service, self._workload),
                tbt_s=latencies.tbt_s,
                tbt_limit_s=service.slo.tbt_s,
                finished=latencies.finished,
                scale_actions=int(np.count_nonzero(np.diff(held))),
                ratio=service.ratio,
            ),
            factors=chosen.factors,
            tried=tuple(sorted((t for t, _, _ in self._tried.values()), key=lambda t: t.factors)),
        )


def search(workload: Workload, service: Service, config: EngineConfig, need: Needs) -> OracleResult:
    """The oracle on its own (each round one simulation pass)."""
    finder = Search(workload, service, config, need)
    while pairs := finder.next_pairs():
        finder.record(pairs, serve(workload, service, finder.lanes(pairs), config), 0)
    return finder.result()


def _product(prefill: Sequence[float], decode: Sequence[float]) -> list[tuple[float, float]]:
    return [(fp, fd) for fp in prefill for fd in decode]


def _halfway(value: float, tried: set[float]) -> list[float]:
    """The factor halfway to the next smaller one tried, when that gap is coarse."""
    below = max((f for f in tried if f < value), default=value / (1 + 2 * REFINE_GAP))
    return [(below + value) / 2] if value - below > REFINE_GAP else []
