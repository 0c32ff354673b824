"""One P/D service under one scaling policy: the run loop over the fluid pools.

Each step: the fleet advances (instances finish starting), the policy decides at its interval
from windowed readings (:class:`SimObservation`) and placement turns its targets into instances,
the pools (:mod:`heteroscale.simulate.pools`) serve the step's load, and the recorder keeps the
step's figures. After the loop each sampled request's latency is read off the recorded
trajectories (:mod:`heteroscale.simulate.latency`); its weight only counts in the attainment
averages. Pure: no clock, no I/O.
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
from heteroscale.policy import PoolObservation
from heteroscale.simulate.cluster import Fleet
from heteroscale.simulate.inventory import simulated_inventory
from heteroscale.simulate.latency import Requests, read_latencies
from heteroscale.simulate.perfmodel import FloatArray, GpuPerf, InstanceModel
from heteroscale.simulate.placer import Placer
from heteroscale.simulate.policies import Policy, SimObservation
from heteroscale.simulate.pools import Offered, Queues, step_decode, step_prefill
from heteroscale.simulate.recorder import PoolCounts, Trajectories
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
    #: The per-step figures.
    traj: Trajectories
    offered_decode_tps: FloatArray
    # Per sampled request.
    arrival_s: FloatArray
    ttft_s: FloatArray
    ttft_limit_s: FloatArray
    tbt_s: FloatArray
    tbt_limit_s: float
    finished: npt.NDArray[np.bool_]
    scale_actions: int
    ratio: tuple[int, int]

    @property
    def steps(self) -> int:
        return self.traj.steps


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

    per_step = workload.offered(
        np.vstack([np.ones(trace.size), trace_work, trace.input_tokens, trace_new, trace.output_tokens]), dt, n_steps
    )
    offered = Offered.from_steps(per_step)
    traj = Trajectories(n_steps)
    queues = Queues()

    fleet = Fleet(service.gpus_per_instance, {g: InstanceModel(perf[g], service.model).startup_seconds for g in perf})
    spec = PDServingGroupSpec.model_validate(spec_document(service, config.interval_s))
    placer = Placer(inventory or simulated_inventory(service, spec.topology), spec, paired=policy.paired)
    placed = placer.place(*policy.initial())
    fleet.set_ready(placed.counts)
    tick = max(round(policy.interval_s / dt), 1)
    window = max(round(METRIC_WINDOW_S / dt), 1)
    kv_model = InstanceModel(perf[service.preferred_gpu(Role.DECODE)], service.model)

    actions = 0
    for s in range(n_steps):
        now = s * dt
        fleet.advance(now)
        # Policies start once a full metric window exists, as an operator's first rate() would.
        if s % tick == 0 and s >= window:
            obs = _observe(traj, s, window, now, dt, fleet, decoding=queues.active > 0)
            placed = placer.place(*policy.decide(obs))
            actions += fleet.apply(placed.counts, now)

        ready_p = fleet.ready(Role.PREFILL)
        ready_d = fleet.ready(Role.DECODE)
        prefill = step_prefill(queues, offered, s, sum(n * speed[g] for g, n in ready_p.items()), dt)
        decode = step_decode(queues, offered, ready_d, decode_models, ctx_mean, dt)
        counts = PoolCounts(
            fleet.total(Role.PREFILL), fleet.total(Role.DECODE), sum(ready_p.values()), sum(ready_d.values())
        )
        capacity = sum(n * slo_tps[g] for g, n in ready_d.items())
        positions = (queues.x_p, queues.x_d)
        traj.record(s, counts, prefill, decode, capacity, positions, placed.cross_domain_fraction, placed.unschedulable)
        if progress is not None:
            progress(1)

    # The placement in force when the request arrived decides whether its KV crosses domains.
    step_of = np.minimum((workload.arrival_s // dt).astype(np.int64), n_steps - 1)
    own = ref_p.prefill_seconds(workload.input_tokens - workload.cached_tokens, workload.cached_tokens)
    kv = kv_model.kv_transfer_seconds(workload.input_tokens, traj.cross_domain[step_of])
    scv = float(trace_work.var() / trace_work.mean() ** 2) if trace.size > 1 else 1.0
    requests = Requests(workload.arrival_s, workload.output_tokens, own, kv)
    lat = read_latencies(requests, traj, dt, float(trace_work.mean()), scv)
    unloaded = own + kv + float(kv_model.decode_step_seconds(1.0, ctx_mean))
    return RunResult(
        policy=policy.name,
        dt=dt,
        weight=workload.weight,
        gpus_per_instance=service.gpus_per_instance,
        traj=traj,
        offered_decode_tps=per_step[4] / dt,
        arrival_s=workload.arrival_s,
        ttft_s=lat.ttft_s,
        ttft_limit_s=np.maximum(service.slo.ttft_floor_s, service.slo.ttft_scale * unloaded),
        tbt_s=lat.tbt_s,
        tbt_limit_s=service.slo.tbt_s,
        finished=lat.finished,
        scale_actions=actions,
        ratio=service.ratio,
    )


def _observe(
    traj: Trajectories, s: int, window: int, now: float, dt: float, fleet: Fleet, *, decoding: bool
) -> SimObservation:
    """What an autoscaler reads at step ``s``: the last metric window's means and the pools."""
    lo = max(s - window, 0)
    return SimObservation(
        now=now,
        metric_age_s=dt,
        decode_tps=float(traj.decode_tps[lo:s].mean()),
        prefill_missed_tps=float(traj.prefill_missed_tps[lo:s].mean()),
        prefill_utilization=float(traj.prefill_util_reported[lo:s].mean()),
        decode_utilization=float(traj.decode_util_reported[lo:s].mean()),
        tbt_s=float(traj.tbt[lo:s].mean()) if decoding else None,
        prefill=_pool(fleet, Role.PREFILL),
        decode=_pool(fleet, Role.DECODE),
    )


def _pool(fleet: Fleet, role: Role) -> PoolObservation:
    return PoolObservation(
        replicas=fleet.total(role),
        ready=sum(fleet.ready(role).values()),
        starting=fleet.starting(role),
        by_gpu_type=fleet.by_gpu_type(role),
    )
