"""P/D services under scaling policies: the run loop over the fluid pools.

A run steps several *lanes* in lockstep over the same offered load: the policies of one study
(each with its own fleet, placement and decisions), or fleets fixed in advance (a stress test's
candidates, an oracle's search). Each step: every lane's fleet advances (instances finish
starting) and, at its interval, its policy decides from windowed readings
(:class:`SimObservation`) and placement turns the targets into instances; the pools
(:mod:`heteroscale.simulate.pools`) serve the step's load in every lane at once; the recorder keeps
the step's figures. After the loop each sampled request's latency is read off each lane's
trajectories (:mod:`heteroscale.simulate.latency`); its weight only counts in the attainment
averages. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.placement import Inventory
from heteroscale.policy import PoolObservation
from heteroscale.simulate.cluster import Fleet
from heteroscale.simulate.inventory import simulated_inventory
from heteroscale.simulate.latency import Latencies, Requests, read_latencies
from heteroscale.simulate.perfmodel import FloatArray, kv_transfer_seconds
from heteroscale.simulate.placer import Placed, Placer
from heteroscale.simulate.policies import Explained, Policy, SimObservation
from heteroscale.simulate.pools import Offered, Queues, step_decode, step_prefill
from heteroscale.simulate.readings import RequestStream
from heteroscale.simulate.recorder import LaneFleets, Trajectories
from heteroscale.simulate.service import METRIC_WINDOW_S, Service, mean_context, spec_document
from heteroscale.simulate.workload import Workload

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class EngineConfig:
    dt: float = 5.0
    #: Policy period (spec.behavior.intervalSeconds' default).
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
    #: What each request's TTFT would be on an idle, running service (its SLO's basis).
    ttft_unloaded_s: FloatArray
    tbt_s: FloatArray
    tbt_limit_s: float
    finished: npt.NDArray[np.bool_]
    scale_actions: int
    ratio: tuple[int, int]
    #: How many decisions were taken for each reason (empty for a policy without reason codes).
    decisions: Mapping[str, int] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return self.traj.steps


class Progress(Protocol):
    """Where a long run reports how far it got: one ``start`` per simulation pass, then steps."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, steps: int) -> None: ...


class Lanes(Protocol):
    """Where each lane's instances come from, step by step."""

    @property
    def count(self) -> int: ...

    def fleets(self, s: int, now: float, traj: Trajectories, stream: RequestStream) -> LaneFleets:
        """Every lane's instances for step ``s`` (after any decision taken at ``now``); ``stream``
        is the requests as the engines see them, for the latency a policy reads."""


class Controlled:
    """Lanes driven by policies: each lane's fleet follows its policy's targets through placement."""

    def __init__(
        self,
        policies: Sequence[Policy],
        service: Service,
        config: EngineConfig,
        inventory: Inventory | None = None,
    ) -> None:
        startup = {g: d.instance.startup_seconds for role in Role for g, d in service.deployments[role].items()}
        spec = PDServingGroupSpec.model_validate(spec_document(service, config.interval_s))
        cluster = inventory or simulated_inventory(service, spec.topology)
        self._service = service
        self._dt = config.dt
        self._window = max(round(METRIC_WINDOW_S / config.dt), 1)
        self.policies = list(policies)
        self._placers = [Placer(cluster, spec, paired=p.paired) for p in self.policies]
        self._fleets = [Fleet(service.gpus_per_instance, startup) for _ in self.policies]
        self._placed: list[Placed] = []
        self.actions = [0] * len(self.policies)
        for policy, placer, fleet in zip(self.policies, self._placers, self._fleets, strict=True):
            placed = placer.place(*policy.initial())
            fleet.set_ready(placed.counts)
            self._placed.append(placed)

    @property
    def count(self) -> int:
        return len(self.policies)

    def fleets(self, s: int, now: float, traj: Trajectories, stream: RequestStream) -> LaneFleets:
        for k, (policy, placer, fleet) in enumerate(zip(self.policies, self._placers, self._fleets, strict=True)):
            fleet.advance(now)
            tick = max(round(policy.interval_s / self._dt), 1)
            # Policies start once a full metric window exists, as an operator's first rate() would.
            if s % tick == 0 and s >= self._window:
                obs = _observe(traj.lane(k), s, self._window, now, self._dt, fleet, stream)
                self._placed[k] = placer.place(*policy.decide(obs))
                self.actions[k] += fleet.apply(self._placed[k].counts, now)
        roles = self._service.gpu_types
        return LaneFleets(
            held_prefill=np.array([float(f.total(Role.PREFILL)) for f in self._fleets]),
            held_decode=np.array([float(f.total(Role.DECODE)) for f in self._fleets]),
            ready_prefill={
                g: np.array([float(f.ready(Role.PREFILL).get(g, 0)) for f in self._fleets]) for g in roles[Role.PREFILL]
            },
            ready_decode={
                g: np.array([float(f.ready(Role.DECODE).get(g, 0)) for f in self._fleets]) for g in roles[Role.DECODE]
            },
            cross_domain=np.array([p.cross_domain_fraction for p in self._placed]),
            unschedulable=np.array([float(p.unschedulable) for p in self._placed]),
        )


@dataclass(frozen=True)
class Scheduled:
    """Lanes whose instances of each role's preferred GPU type are fixed in advance, per lane and
    step (``held``: starting or ready; ``ready``: serving), with a fixed cross-domain KV share."""

    service: Service
    prefill_held: FloatArray
    prefill_ready: FloatArray
    decode_held: FloatArray
    decode_ready: FloatArray
    cross_domain: float = 0.0

    @property
    def count(self) -> int:
        return int(self.prefill_held.shape[0])

    def fleets(self, s: int, now: float, traj: Trajectories, stream: RequestStream) -> LaneFleets:
        zero = np.zeros(self.count)
        p, d = self.service.preferred_gpu(Role.PREFILL), self.service.preferred_gpu(Role.DECODE)
        return LaneFleets(
            held_prefill=self.prefill_held[:, s],
            held_decode=self.decode_held[:, s],
            ready_prefill={p: self.prefill_ready[:, s]},
            ready_decode={d: self.decode_ready[:, s]},
            cross_domain=zero + self.cross_domain,
            unschedulable=zero,
        )


class Combined:
    """Several sets of lanes stepped in one pass, in order (their lane indices follow one another)."""

    def __init__(self, parts: Sequence[Lanes]) -> None:
        self.parts = list(parts)

    @property
    def count(self) -> int:
        return sum(part.count for part in self.parts)

    def offset(self, index: int) -> int:
        """Index of the first lane of part ``index``."""
        return sum(part.count for part in self.parts[:index])

    def fleets(self, s: int, now: float, traj: Trajectories, stream: RequestStream) -> LaneFleets:
        pieces = []
        for i, part in enumerate(self.parts):
            lo, hi = self.offset(i), self.offset(i) + part.count
            pieces.append(part.fleets(s, now, traj.lanes(lo, hi), stream))
        gpus_p = sorted({g for p in pieces for g in p.ready_prefill})
        gpus_d = sorted({g for p in pieces for g in p.ready_decode})

        def joined(attr: str, gpus: list[str]) -> dict[str, FloatArray]:
            return {
                g: np.concatenate([getattr(p, attr).get(g, np.zeros(p.held_prefill.size)) for p in pieces])
                for g in gpus
            }

        return LaneFleets(
            held_prefill=np.concatenate([p.held_prefill for p in pieces]),
            held_decode=np.concatenate([p.held_decode for p in pieces]),
            ready_prefill=joined("ready_prefill", gpus_p),
            ready_decode=joined("ready_decode", gpus_d),
            cross_domain=np.concatenate([p.cross_domain for p in pieces]),
            unschedulable=np.concatenate([p.unschedulable for p in pieces]),
        )


@dataclass(frozen=True)
class Served:
    """What one pass produced for every lane."""

    traj: Trajectories
    latencies: list[Latencies]
    offered_decode_tps: FloatArray
    ttft_limit_s: list[FloatArray]
    #: Each sampled request's own prefill time, the first decode step, and its arrival step.
    own_prefill_s: FloatArray
    first_token_s: float
    step_of: IntArray

    def ttft_unloaded(self, k: int, service: Service, workload: Workload) -> FloatArray:
        """Lane ``k``'s sampled requests' TTFT on an idle, running service: own prefill, KV
        transfer and the first decode step (what their TTFT limit is set from)."""
        kv = kv_seconds(service, workload, self.traj.cross_domain[k], self.step_of)
        result: FloatArray = self.own_prefill_s + kv + self.first_token_s
        return result


def steps_for(workload: Workload, config: EngineConfig) -> int:
    return math.ceil((workload.duration_s + config.drain_s) / config.dt)


def serve(
    workload: Workload,
    service: Service,
    lanes: Lanes,
    config: EngineConfig,
    progress: Progress | None = None,
    label: str = "simulating",
) -> Served:
    """Step every lane over ``workload`` and read each lane's request latencies."""
    dt = config.dt
    n_steps = steps_for(workload, config)
    if progress is not None:
        progress.start(label, n_steps)
    ref_p = service.instance(Role.PREFILL)
    trace = workload.trace
    trace_new = trace.input_tokens - trace.cached_tokens
    trace_work = ref_p.prefill_seconds(trace_new, trace.cached_tokens)
    # Relative prefill speed of every prefill type on this workload's requests.
    speed = {
        g: float(
            trace_work.sum() / service.instance(Role.PREFILL, g).prefill_seconds(trace_new, trace.cached_tokens).sum()
        )
        for g in service.gpu_types[Role.PREFILL]
    }
    decode_models = {g: service.instance(Role.DECODE, g) for g in service.gpu_types[Role.DECODE]}
    ctx_mean = mean_context(workload)
    slo_tps = {g: m.decode_slo_tps(service.slo.tbt_s, ctx_mean) for g, m in decode_models.items()}

    per_step = workload.offered(
        np.vstack([np.ones(trace.size), trace_work, trace.input_tokens, trace_new, trace.output_tokens]), dt, n_steps
    )
    offered = Offered.from_steps(per_step)
    traj = Trajectories.zeros(lanes.count, n_steps)
    queues = Queues.empty(lanes.count)
    own = ref_p.prefill_latency(workload.input_tokens - workload.cached_tokens, workload.cached_tokens)
    scv = float(trace_work.var() / trace_work.mean() ** 2) if trace.size > 1 else 1.0
    stream = RequestStream(workload.arrival_s, own, workload.weight, float(trace_work.mean()), scv, dt, offered)
    for s in range(n_steps):
        fleets = lanes.fleets(s, s * dt, traj, stream)
        capacity = sum((n * speed[g] for g, n in fleets.ready_prefill.items()), np.zeros(lanes.count))
        prefill = step_prefill(queues, offered, s, capacity, dt)
        decode = step_decode(queues, offered, fleets.ready_decode, decode_models, ctx_mean, dt)
        decode_capacity = sum((n * slo_tps[g] for g, n in fleets.ready_decode.items()), np.zeros(lanes.count))
        arrived = float(offered.cum[Offered.REQUESTS, s + 1] - offered.cum[Offered.REQUESTS, s]) / dt
        traj.record(s, fleets, prefill, decode, decode_capacity, (queues.x_p, queues.x_d), arrived)
        if progress is not None:
            progress.advance(1)

    step_of = np.minimum((workload.arrival_s // dt).astype(np.int64), n_steps - 1)
    first_token = float(service.instance(Role.DECODE).decode_step_seconds(1.0, ctx_mean))
    latencies, limits = [], []
    for k in range(lanes.count):
        lane = traj.lane(k)
        kv = kv_seconds(service, workload, lane.cross_domain, step_of)
        requests = Requests(workload.arrival_s, workload.output_tokens, own, kv)
        latencies.append(read_latencies(requests, lane, dt, stream.work_mean, stream.work_scv))
        unloaded = own + kv + first_token
        limits.append(np.maximum(service.slo.ttft_floor_s, service.slo.ttft_scale * unloaded))
    return Served(traj, latencies, per_step[4] / dt, limits, own, first_token, step_of)


def kv_seconds(service: Service, workload: Workload, cross_domain: FloatArray, step_of: IntArray) -> FloatArray:
    """Each sampled request's P->D KV transfer: the placement in force when it arrived (a lane's
    per-step cross-domain share) decides whether its KV crosses domains."""
    return kv_transfer_seconds(service.model, service.kv_rdma_gbps, workload.input_tokens, cross_domain[step_of])


def controlled_results(
    lanes: Controlled, served: Served, first_lane: int, workload: Workload, service: Service, config: EngineConfig
) -> list[RunResult]:
    """The runs of a pass's policy lanes (starting at ``first_lane``)."""
    results = []
    for i, policy in enumerate(lanes.policies):
        k = first_lane + i
        results.append(
            RunResult(
                policy=policy.name,
                dt=config.dt,
                weight=workload.weight,
                gpus_per_instance=service.gpus_per_instance,
                traj=served.traj.lane(k),
                offered_decode_tps=served.offered_decode_tps,
                arrival_s=workload.arrival_s,
                ttft_s=served.latencies[k].ttft_s,
                ttft_limit_s=served.ttft_limit_s[k],
                ttft_unloaded_s=served.ttft_unloaded(k, service, workload),
                tbt_s=served.latencies[k].tbt_s,
                tbt_limit_s=service.slo.tbt_s,
                finished=served.latencies[k].finished,
                scale_actions=lanes.actions[i],
                ratio=service.ratio,
                decisions=dict(policy.reasons) if isinstance(policy, Explained) else {},
            )
        )
    return results


def run_many(
    workload: Workload,
    service: Service,
    policies: Sequence[Policy],
    config: EngineConfig,
    progress: Progress | None = None,
    inventory: Inventory | None = None,
) -> list[RunResult]:
    """Replay ``workload`` under every policy in lockstep, each placed on ``inventory`` (default:
    the simulated cluster sized for ``service``)."""
    lanes = Controlled(policies, service, config, inventory)
    served = serve(workload, service, lanes, config, progress, ", ".join(p.name for p in policies))
    return controlled_results(lanes, served, 0, workload, service, config)


def run(
    workload: Workload,
    service: Service,
    policy: Policy,
    config: EngineConfig,
    progress: Progress | None = None,
    inventory: Inventory | None = None,
) -> RunResult:
    """Replay ``workload`` under one policy (see :func:`run_many`)."""
    return run_many(workload, service, [policy], config, progress, inventory)[0]


def _observe(
    traj: Trajectories, s: int, window: int, now: float, dt: float, fleet: Fleet, stream: RequestStream
) -> SimObservation:
    """What an autoscaler reads at step ``s``: the last metric window's means, its latency
    histograms and the pools."""
    lo = max(s - window, 0)
    return SimObservation(
        now=now,
        metric_age_s=dt,
        decode_tps=float(traj.decode_tps[lo:s].mean()),
        decode_series=bool(traj.decode_ready[lo:s].any()),
        gateway_rps=float(traj.gateway_rps[lo:s].mean()),
        prefill_missed_tps=float(traj.prefill_missed_tps[lo:s].mean()),
        prefill_utilization=float(traj.prefill_util_reported[lo:s].mean()),
        decode_utilization=float(traj.decode_util_reported[lo:s].mean()),
        latency=stream.window(traj, lo, s),
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
