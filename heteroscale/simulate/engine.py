"""Time-stepped fluid queueing model of one P/D service under one scaling policy.

Why fluid: a 24 h day of a 1,000-instance fleet is hundreds of millions of requests, far beyond
a per-request event loop. Each pool is therefore a fluid FIFO server whose capacity is the sum
of its ready instances, stepped every ``dt`` seconds, driven by the work the *whole* fleet's
users offer per step (:meth:`Workload.offered`: the superposition of every user population).
A FIFO position is an arrival time (in steps): the pool has served everything that arrived
before it. After the loop, each *sampled* request's latency is read off the recorded position
trajectories in one vectorised pass (its weight only counts in the attainment averages):

* prefill: work (seconds on the preferred prefill GPU) drains at the pool's capacity; a request
  is prefilled when the pool's position passes its arrival, no earlier than its own unloaded
  prefill time, plus a Sakasegawa M/G/k waiting time when the pool is below saturation (the
  fluid alone has no queueing below 100% busy);
* P->D KV transfer at the GPU type's RDMA bandwidth, slower for the share of prefill instances
  whose decode partners sit in another S2 domain (from the placement in force at arrival);
* decode: sequences are admitted in FIFO order while the pool has batch slots and KV cache; every
  ready instance holds the same batch (round-robin routing) and steps at the perf model's step
  time, which is each sequence's TBT; sequences finish in proportion to the tokens generated.

Approximations (documented in the README's simulator section): arrivals within a step may be
served in that step and are spread evenly over it; decode completions use the mean remaining
length; heterogeneous instances of one role share work in proportion to their speed. Pure: no
clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.placement import Inventory
from heteroscale.simulate.cluster import Fleet
from heteroscale.simulate.inventory import simulated_inventory
from heteroscale.simulate.perfmodel import FloatArray, GpuPerf, InstanceModel
from heteroscale.simulate.placer import Placer
from heteroscale.simulate.policies import Policy, PoolState, SimObservation
from heteroscale.simulate.service import METRIC_WINDOW_S, Service, mean_context, spec_document
from heteroscale.simulate.workload import Workload


@dataclass(frozen=True)
class EngineConfig:
    dt: float = 5.0
    #: Policy period (DESIGN.md spec.behavior.intervalSeconds).
    interval_s: float = 15.0
    #: Time after the last arrival for queues to drain; what is left then is dropped.
    drain_s: float = 300.0


@dataclass(frozen=True)
class RunResult:
    policy: str
    dt: float
    #: Requests each sampled request stands for.
    weight: FloatArray
    gpus_per_instance: int
    # Per step (index s covers [s*dt, (s+1)*dt)).
    prefill_instances: FloatArray
    decode_instances: FloatArray
    prefill_ready: FloatArray
    decode_ready: FloatArray
    prefill_busy: FloatArray
    decode_busy: FloatArray
    prefill_util_reported: FloatArray
    decode_util_reported: FloatArray
    decode_tps: FloatArray
    decode_capacity_tps: FloatArray
    prefill_missed_tps: FloatArray
    prefill_raw_tps: FloatArray
    offered_decode_tps: FloatArray
    tbt_step: FloatArray
    # Per sampled request.
    arrival_s: FloatArray
    ttft_s: FloatArray
    ttft_limit_s: FloatArray
    tbt_s: FloatArray
    tbt_limit_s: float
    finished: npt.NDArray[np.bool_]
    scale_actions: int
    ratio: tuple[int, int]
    #: Per step: share of prefill instances whose KV crosses S2 domains, and target instances
    #: placement could not place (see :mod:`heteroscale.simulate.placer`).
    cross_domain: FloatArray
    unschedulable: FloatArray

    @property
    def steps(self) -> int:
        return int(self.prefill_instances.size)


def _position(cum0: FloatArray, value: float) -> float:
    """Fractional position (step index) at which the cumulative quantity ``cum0`` reaches ``value``."""
    j = int(np.searchsorted(cum0, value, side="left"))
    if j <= 0:
        return 0.0
    if j >= cum0.size:
        return float(cum0.size - 1)
    lo, hi = cum0[j - 1], cum0[j]
    return j - 1 + (value - lo) / (hi - lo) if hi > lo else float(j)


def _value(cum0: FloatArray, x: float) -> float:
    i = min(int(x), cum0.size - 2)
    return float(cum0[i] + (x - i) * (cum0[i + 1] - cum0[i]))


def _time_at(traj: FloatArray, target: FloatArray, dt: float) -> FloatArray:
    """Time at which the non-decreasing per-step-end position ``traj`` first reaches ``target``
    (linear within a step); inf where it never does."""
    s = np.searchsorted(traj, target - 1e-9, side="left")
    reached = s < traj.size
    s_c = np.minimum(s, traj.size - 1)
    prev = np.where(s_c > 0, traj[np.maximum(s_c - 1, 0)], 0.0)
    span = np.maximum(traj[s_c] - prev, 1e-12)
    frac_left = np.clip((traj[s_c] - target) / span, 0.0, 1.0)
    t = (s_c + 1) * dt - frac_left * dt
    return np.where(reached, t, np.inf)


def _sakasegawa_wait(rho: FloatArray, k: FloatArray, mean_service: float, scv: float) -> FloatArray:
    """Mean M/G/k queueing delay (Sakasegawa 1977) below saturation; 0 at or above it (the
    fluid queue carries the wait there)."""
    r = np.clip(rho, 0.0, 0.999)
    kk = np.maximum(k, 1.0)
    wait = mean_service * (1 + scv) / 2 * r ** (np.sqrt(2 * (kk + 1)) - 1) / (kk * (1 - r))
    result: FloatArray = np.where(rho < 1.0, wait, 0.0)
    return result


def run(
    workload: Workload,
    service: Service,
    perf: dict[str, GpuPerf],
    policy: Policy,
    config: EngineConfig,
    progress: Callable[[int], None] | None = None,
    inventory: Inventory | None = None,
) -> RunResult:
    """Replay ``workload`` under ``policy``, placed on ``inventory`` (default: the simulated
    cluster sized for ``service``)."""
    dt = config.dt
    n_steps = math.ceil((workload.duration_s + config.drain_s) / dt)
    ref_p = InstanceModel(perf[service.preferred_gpu(Role.PREFILL)], service.model)
    trace = workload.trace
    trace_new = trace.input_tokens - trace.cached_tokens
    trace_work = ref_p.prefill_seconds(trace_new, trace.cached_tokens)
    # Relative prefill speed of every prefill type on this workload's requests.
    speed = {
        g: float(
            trace_work.sum()
            / InstanceModel(perf[g], service.model).prefill_seconds(trace_new, trace.cached_tokens).sum()
        )
        for g in service.gpu_types[Role.PREFILL]
    }
    decode_models = {g: InstanceModel(perf[g], service.model) for g in service.gpu_types[Role.DECODE]}
    ctx_mean = mean_context(workload)
    slo_tps = {
        g: (
            b / float(m.decode_step_seconds(b, ctx_mean)) if (b := m.batch_at_tbt(service.slo.tbt_s, ctx_mean)) else 0.0
        )
        for g, m in decode_models.items()
    }

    # Offered per step by the whole fleet's users, and its cumulative sums at step boundaries.
    offered = workload.offered(
        np.vstack([np.ones(trace.size), trace_work, trace.input_tokens, trace_new, trace.output_tokens]), dt, n_steps
    )
    cum_n, cum_work, cum_in, cum_new, cum_out = np.concatenate([np.zeros((5, 1)), np.cumsum(offered, axis=1)], axis=1)

    rec = {
        k: np.zeros(n_steps)
        for k in (
            "p_inst",
            "d_inst",
            "p_ready",
            "d_ready",
            "p_busy",
            "d_busy",
            "p_util",
            "d_util",
            "d_tps",
            "d_cap",
            "p_missed",
            "p_raw",
            "tbt",
            "xp",
            "xd",
            "xdom",
            "unsched",
        )
    }

    fleet = Fleet(service.gpus_per_instance, {g: InstanceModel(perf[g], service.model).startup_seconds for g in perf})
    spec = PDServingGroupSpec.model_validate(spec_document(service, config.interval_s))
    placer = Placer(inventory or simulated_inventory(service, spec.topology), spec, paired=policy.paired)
    placed = placer.place(*policy.initial())
    fleet.set_ready(placed.counts)
    tick = max(round(policy.interval_s / dt), 1)
    window = max(round(METRIC_WINDOW_S / dt), 1)
    kv_model = InstanceModel(perf[service.preferred_gpu(Role.DECODE)], service.model)

    processed = 0.0  # prefill work done (reference-GPU seconds)
    x_p = x_d = 0.0  # FIFO positions: requests prefilled / admitted to decode
    active = remaining = kv_tokens = 0.0  # decoding sequences, their remaining tokens and KV
    actions = 0
    for s in range(n_steps):
        now = s * dt
        fleet.advance(now)
        # Policies start once a full metric window exists, as an operator's first rate() would.
        if s % tick == 0 and s >= window:
            lo = max(s - window, 0)
            obs = SimObservation(
                now=now,
                metric_age_s=dt,
                decode_tps=float(rec["d_tps"][lo:s].mean()),
                prefill_missed_tps=float(rec["p_missed"][lo:s].mean()),
                prefill_utilization=float(rec["p_util"][lo:s].mean()),
                decode_utilization=float(rec["d_util"][lo:s].mean()),
                tbt_s=float(rec["tbt"][lo:s].mean()) if active > 0 else None,
                prefill=_pool(fleet, Role.PREFILL),
                decode=_pool(fleet, Role.DECODE),
            )
            placed = placer.place(*policy.decide(obs))
            actions += fleet.apply(placed.counts, now)

        ready_p = fleet.ready(Role.PREFILL)
        ready_d = fleet.ready(Role.DECODE)
        n_p = sum(ready_p.values())
        n_d = sum(ready_d.values())

        # Prefill: a fluid FIFO over the arrived work.
        cap = sum(n * speed[g] for g, n in ready_p.items()) * dt
        backlog = cum_work[s + 1] - processed
        done = min(backlog, cap)
        processed += done
        x_prev = x_p
        x_p = float(s + 1) if done >= backlog else max(_position(cum_work, processed), x_p)
        busy_p = done / cap if cap > 0 else 0.0
        rec["p_missed"][s] = (_value(cum_new, x_p) - _value(cum_new, x_prev)) / dt
        rec["p_raw"][s] = (_value(cum_in, x_p) - _value(cum_in, x_prev)) / dt

        # Decode: admit in FIFO order while batch slots and KV cache allow. A slot is held only
        # for its sequence's decode time, so sequences shorter than the step turn a slot over
        # several times within it (Little's law on the slot: occupancy = duration / dt).
        ctx = kv_tokens / active if active > 0 else ctx_mean
        full = {g: decode_models[g].max_batch(ctx) for g, n in ready_d.items() if n > 0}
        slots = sum(ready_d[g] * b for g, b in full.items())
        waiting = _value(cum_n, x_p) - _value(cum_n, x_d)
        if waiting > 0 and n_d > 0:
            step_full = sum(ready_d[g] * float(decode_models[g].decode_step_seconds(b, ctx)) for g, b in full.items())
            duration = (_value(cum_out, x_p) - _value(cum_out, x_d)) / waiting * step_full / n_d
            admit = min(waiting, max(slots - active, 0.0) / min(duration / dt, 1.0))
            x_new = x_p if admit >= waiting else max(_position(cum_n, _value(cum_n, x_d) + admit), x_d)
            remaining += _value(cum_out, x_new) - _value(cum_out, x_d)
            kv_tokens += _value(cum_in, x_new) - _value(cum_in, x_d)
            active += admit
            x_d = x_new
        generated = 0.0
        tbt = 0.0
        if n_d > 0:
            ctx = kv_tokens / active if active > 0 else ctx_mean
            batch = {g: max(min(active / n_d, b), 1.0) for g, b in full.items()}
            rate = {g: ready_d[g] * b / float(decode_models[g].decode_step_seconds(b, ctx)) for g, b in batch.items()}
            generated = min(remaining, sum(rate.values()) * dt)
            # The batch a sequence sees is the time average over the step: lower than the batch
            # at the step's start when the pool drains within the step (Little's law again).
            mean_batch = 0.0
            for g, b in batch.items():
                share = generated * rate[g] / sum(rate.values()) / dt / ready_d[g]
                seen = min(b, max(decode_models[g].batch_for_throughput(share, ctx), 1.0))
                tbt += ready_d[g] * float(decode_models[g].decode_step_seconds(seen, ctx))
                mean_batch += ready_d[g] * seen
            tbt /= n_d
            if remaining > 0:
                finished = generated * active / remaining
                kv_tokens = (kv_tokens + generated) * (1 - finished / active)
                active -= finished
                remaining -= generated
            rec["d_util"][s] = 1.0 - math.exp(-mean_batch / n_d)
        d_cap = sum(n * slo_tps[g] for g, n in ready_d.items())
        rec["d_busy"][s] = min(generated / dt / d_cap, 1.0) if d_cap > 0 else 0.0

        rec["p_inst"][s] = fleet.total(Role.PREFILL)
        rec["d_inst"][s] = fleet.total(Role.DECODE)
        rec["p_ready"][s] = n_p
        rec["d_ready"][s] = n_d
        rec["p_busy"][s] = busy_p
        rec["p_util"][s] = busy_p  # compute-bound prefill: kernel-active time tracks the work done
        rec["d_tps"][s] = generated / dt
        rec["d_cap"][s] = d_cap
        rec["tbt"][s] = tbt
        rec["xp"][s] = x_p
        rec["xd"][s] = x_d
        rec["xdom"][s] = placed.cross_domain_fraction
        rec["unsched"][s] = placed.unschedulable
        if progress is not None:
            progress(1)

    # Latencies of the sampled requests from the FIFO trajectories.
    pos = workload.arrival_s / dt
    arrival = workload.arrival_s
    step_of = np.minimum((arrival // dt).astype(np.int64), n_steps - 1)
    t_prefilled = _time_at(rec["xp"], pos, dt)
    own = ref_p.prefill_seconds(workload.input_tokens - workload.cached_tokens, workload.cached_tokens)
    scv = float(trace_work.var() / trace_work.mean() ** 2) if trace.size > 1 else 1.0
    wait = _sakasegawa_wait(rec["p_busy"][step_of], rec["p_ready"][step_of], float(trace_work.mean()), scv)
    # The placement in force when the request arrived decides whether its KV crosses domains.
    kv = kv_model.kv_transfer_seconds(workload.input_tokens, rec["xdom"][step_of])
    t_prefilled = np.maximum(t_prefilled, arrival + own) + wait + kv
    t_admitted = np.maximum(_time_at(rec["xd"], pos, dt), t_prefilled)
    tbt_series = np.where(rec["tbt"] > 0, rec["tbt"], np.inf)
    s_adm = np.minimum((np.where(np.isfinite(t_admitted), t_admitted, 0) // dt).astype(np.int64), n_steps - 1)
    # A step with no ready decode instance has no TBT; a request admitted there misses its SLO.
    finite = np.where(np.isfinite(tbt_series), tbt_series, 1e6)
    first_step = finite[s_adm]
    span = np.clip(np.ceil(workload.output_tokens * first_step / dt), 1, n_steps).astype(np.int64)
    s_end = np.minimum(s_adm + span, n_steps)
    csum = np.concatenate([np.zeros(1), np.cumsum(finite)])
    tbt_req = (csum[s_end] - csum[s_adm]) / (s_end - s_adm)
    ttft = t_admitted - arrival + first_step
    end = t_admitted + workload.output_tokens * tbt_req
    horizon = n_steps * dt
    finished = np.isfinite(t_admitted) & (end <= horizon)
    unloaded = own + kv + float(kv_model.decode_step_seconds(1.0, ctx_mean))
    ttft_limit = np.maximum(service.slo.ttft_floor_s, service.slo.ttft_scale * unloaded)

    return RunResult(
        policy=policy.name,
        dt=dt,
        weight=workload.weight,
        gpus_per_instance=service.gpus_per_instance,
        prefill_instances=rec["p_inst"],
        decode_instances=rec["d_inst"],
        prefill_ready=rec["p_ready"],
        decode_ready=rec["d_ready"],
        prefill_busy=rec["p_busy"],
        decode_busy=rec["d_busy"],
        prefill_util_reported=rec["p_util"],
        decode_util_reported=rec["d_util"],
        decode_tps=rec["d_tps"],
        decode_capacity_tps=rec["d_cap"],
        prefill_missed_tps=rec["p_missed"],
        prefill_raw_tps=rec["p_raw"],
        offered_decode_tps=offered[4] / dt,
        tbt_step=rec["tbt"],
        arrival_s=arrival,
        ttft_s=np.where(finished, ttft, np.inf),
        ttft_limit_s=ttft_limit,
        tbt_s=np.where(finished, tbt_req, np.inf),
        tbt_limit_s=service.slo.tbt_s,
        finished=finished,
        scale_actions=actions,
        ratio=service.ratio,
        cross_domain=rec["xdom"],
        unschedulable=rec["unsched"],
    )


def _pool(fleet: Fleet, role: Role) -> PoolState:
    ready = sum(fleet.ready(role).values())
    return PoolState(
        replicas=fleet.total(role),
        ready=ready,
        starting=fleet.starting(role),
        by_gpu_type=fleet.by_gpu_type(role),
    )
