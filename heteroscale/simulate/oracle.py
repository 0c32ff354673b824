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
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from heteroscale.api.enums import Role
from heteroscale.simulate.engine import EngineConfig, RunResult, Scheduled, Served, serve, steps_for
from heteroscale.simulate.perfmodel import FloatArray, kv_transfer_seconds
from heteroscale.simulate.service import Service, mean_context
from heteroscale.simulate.summary import slo_attainment
from heteroscale.simulate.workload import Workload

#: First grid of (prefill, decode) factors; raised by half while no pair meets the target.
PREFILL_FACTORS = (0.85, 0.95, 1.05, 1.2, 1.4)
DECODE_FACTORS = (0.9, 1.0, 1.1, 1.25)
GRID_RAISES = 3


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


def search(workload: Workload, service: Service, config: EngineConfig, need: Needs) -> OracleResult:
    """The cheapest (prefill, decode) factor pair that meets the SLO attainment target."""
    dt = config.dt
    tick = max(round(config.interval_s / dt), 1)
    lead = _leads(service, config)
    tried: dict[tuple[float, float], tuple[Tried, int, Served]] = {}

    def evaluate(pairs: list[tuple[float, float]]) -> None:
        pairs = [p for p in pairs if p not in tried]
        if not pairs:
            return
        held_p = np.array([schedule(need.prefill, fp, tick, lead[Role.PREFILL]) for fp, _ in pairs])
        held_d = np.array([schedule(need.decode, fd, tick, lead[Role.DECODE]) for _, fd in pairs])
        ready_p = np.array([ready(h, lead[Role.PREFILL]) for h in held_p])
        ready_d = np.array([ready(h, lead[Role.DECODE]) for h in held_d])
        served = serve(workload, service, Scheduled(service, held_p, ready_p, held_d, ready_d, 1.0), config)
        for k, pair in enumerate(pairs):
            hours = float((held_p[k] + held_d[k]).sum() * service.gpus_per_instance * dt / 3600)
            attained = slo_attainment(served.latencies[k], served.ttft_limit_s[k], service.slo.tbt_s, workload.weight)
            tried[pair] = (Tried(pair, hours, attained), k, served)

    def cheapest() -> tuple[float, float] | None:
        ok = [t for t, _, _ in tried.values() if t.slo_attainment >= service.slo.attainment]
        return min(ok, key=lambda t: t.gpu_hours).factors if ok else None

    grid_p: tuple[float, ...] = PREFILL_FACTORS
    grid_d: tuple[float, ...] = DECODE_FACTORS
    evaluate([(fp, fd) for fp in grid_p for fd in grid_d])
    for _ in range(GRID_RAISES):
        if cheapest() is not None:
            break
        grid_p, grid_d = tuple(1.5 * f for f in grid_p), tuple(1.5 * f for f in grid_d)
        evaluate([(fp, fd) for fp in grid_p for fd in grid_d])
    best = cheapest()
    if best is None:
        raise ValueError("the oracle found no provisioning that meets the SLO attainment target")
    # Refine halfway towards the next smaller factor of each role's grid.
    finer_p = [best[0], *(_halfway(best[0], grid_p))]
    finer_d = [best[1], *(_halfway(best[1], grid_d))]
    evaluate([(fp, fd) for fp in finer_p for fd in finer_d])
    best = cheapest()
    assert best is not None
    chosen, k, served = tried[best]
    lane = served.traj.lane(k)
    latencies = served.latencies[k]
    held = lane.prefill_instances + lane.decode_instances
    return OracleResult(
        run=RunResult(
            policy="oracle",
            dt=dt,
            weight=workload.weight,
            gpus_per_instance=service.gpus_per_instance,
            traj=lane,
            offered_decode_tps=served.offered_decode_tps,
            arrival_s=workload.arrival_s,
            ttft_s=latencies.ttft_s,
            ttft_limit_s=served.ttft_limit_s[k],
            tbt_s=latencies.tbt_s,
            tbt_limit_s=service.slo.tbt_s,
            finished=latencies.finished,
            scale_actions=int(np.count_nonzero(np.diff(held))),
            ratio=service.ratio,
        ),
        factors=chosen.factors,
        tried=tuple(sorted((t for t, _, _ in tried.values()), key=lambda t: t.factors)),
    )


def _halfway(value: float, grid: tuple[float, ...]) -> list[float]:
    below = [g for g in grid if g < value]
    return [(max(below) + value) / 2] if below else [value * 0.95]
