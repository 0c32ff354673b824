"""The stress test that sets a service up, as the HeteroScale paper's operators do before going
online: how each GPU type is deployed, and the P/D ratio held fixed online.

The paper derives the ratio from a stress test (its figure "maximum tokens per second with
different P/D ratios") and holds it fixed. :func:`sweep` plays that test in the simulator's own
model: at the stress load (the service's trace at its busiest, the diurnal peak's user
population, no diurnal curve), for each candidate ratio p:d it serves the load on fleets of that
ratio of growing size and keeps the smallest that meets the SLO attainment target; the ratio
whose fleet has the fewest GPUs, i.e. the most goodput per GPU at the SLO, wins. Every candidate
fleet is one lane of a single simulation pass.

Pure (the simulation is the simulator's, with no clock and no I/O).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from heteroscale.api.enums import Role
from heteroscale.simulate import workload as wl
from heteroscale.simulate.deployment import Deployment, deploy
from heteroscale.simulate.engine import EngineConfig, Scheduled, serve, steps_for
from heteroscale.simulate.perfmodel import GpuPerf, ModelSpec, Startup
from heteroscale.simulate.service import (
    MAX_RATIO_DENOMINATOR,
    RatioPoint,
    Service,
    Slo,
    assemble,
    capacity_targets,
    mean_context,
    quantile_ratio,
    window_needs,
)
from heteroscale.simulate.summary import slo_attainment
from heteroscale.simulate.workload import Workload

#: Ratios tried: the throughput-balanced ratio r0 times 2^(k/4), k from -4 to 8 (r0/2 to 4 r0),
#: each rounded to the nearest p:d with d <= 8. Bursts of long prompts push the best ratio above
#: r0, never far below it.
RATIO_STEPS = tuple(k / 4 for k in range(-4, 9))
#: Fleet sizes tried per ratio, as multiples of the ratio's balanced minimum (the fewest
#: instances that serve the stress load's mean at full SLO throughput).
FLEET_STEPS = tuple(1.0 + 0.05 * k for k in range(-1, 14))
#: Seed of the stress load's trace rotations, apart from the day's.
STRESS_SEED = 12


def stress_load(workload: Workload) -> Workload:
    """The service's trace at its busiest: one tile at the peak user population, no diurnal curve."""
    trace = workload.trace
    return wl.scale(trace, hours=trace.duration_s / 3600, fleet_scale=workload.fleet_scale, seed=STRESS_SEED)


def candidate_ratios(balanced: float) -> list[tuple[int, int]]:
    """The ratios p:d (d <= 8) nearest to ``balanced`` x 2^step for each of RATIO_STEPS, distinct."""
    found: list[tuple[int, int]] = []
    for step in RATIO_STEPS:
        target = Fraction(balanced * 2**step).limit_denominator(MAX_RATIO_DENOMINATOR)
        pd = (max(target.numerator, 1), target.denominator)
        if pd not in found:
            found.append(pd)
    return found


@dataclass(frozen=True)
class StressTest:
    curve: tuple[RatioPoint, ...]
    #: The stress load's decode tokens/s and KV-missed prompt tokens/s.
    decode_tps: float
    missed_tps: float

    @property
    def best(self) -> RatioPoint:
        """The ratio with the most goodput per GPU; on a tie the one with fewer prefill instances."""
        if not any(point.goodput_per_gpu > 0 for point in self.curve):
            raise ValueError("no P/D ratio met the SLO at the stress load on the fleets tried")
        return max(self.curve, key=lambda point: (point.goodput_per_gpu, -point.ratio[0] / point.ratio[1]))


def sweep(service: Service, workload: Workload, config: EngineConfig) -> StressTest:
    """Goodput per GPU at the SLO for each candidate ratio (see the module docstring)."""
    load = stress_load(workload)
    trace = load.trace
    steps = steps_for(load, config)
    prefill, decode = service.instance(Role.PREFILL), service.instance(Role.DECODE)
    new = trace.input_tokens - trace.cached_tokens
    work, tokens, missed = load.offered(
        np.vstack([prefill.prefill_seconds(new, trace.cached_tokens), trace.output_tokens, new]), load.duration_s
    )
    # Instances the stress load's mean needs at full throughput (prefill busy all the time, decode
    # at its largest batch within the TBT SLO).
    need_p = float(work[0]) / load.duration_s
    decode_tps = decode.decode_slo_tps(service.slo.tbt_s, mean_context(load))
    need_d = float(tokens[0]) / load.duration_s / decode_tps
    ratios = candidate_ratios(need_p / need_d)
    fleets = [(p, d, _fleet(p, d, need_p, need_d, f)) for p, d in ratios for f in FLEET_STEPS]
    held_p = np.array([[float(pp)] for _, _, (pp, _) in fleets]) * np.ones(steps)
    held_d = np.array([[float(dd)] for _, _, (_, dd) in fleets]) * np.ones(steps)
    served = serve(load, service, Scheduled(service, held_p, held_p, held_d, held_d), config)
    attained = [
        slo_attainment(lat, limit, service.slo.tbt_s, load.weight)
        for lat, limit in zip(served.latencies, served.ttft_limit_s, strict=True)
    ]
    goodput = float(tokens[0]) / load.duration_s
    curve = []
    for p, d in ratios:
        tried = [(k, fleet) for k, (pp, dd, fleet) in enumerate(fleets) if (pp, dd) == (p, d)]
        ok = [(sum(fleet), k, fleet) for k, fleet in tried if attained[k] >= service.slo.attainment]
        if ok:
            gpus, k, (n_p, n_d) = min(ok)
            curve.append(RatioPoint((p, d), n_p, n_d, goodput / (gpus * service.gpus_per_instance), attained[k]))
        else:
            k, (n_p, n_d) = tried[-1]
            curve.append(RatioPoint((p, d), n_p, n_d, 0.0, attained[k]))
    return StressTest(tuple(curve), goodput, float(missed[0]) / load.duration_s)


def _fleet(p: int, d: int, need_p: float, need_d: float, factor: float) -> tuple[int, int]:
    """Instances at ratio p:d, ``factor`` times the fewest that serve the mean load."""
    decode = max(math.ceil(factor * max(need_d, need_p * d / p) - 1e-9), 1)
    return math.ceil(decode * p / d - 1e-9), decode


def derive(
    workload: Workload,
    perf: dict[str, GpuPerf],
    *,
    prefill_gpus: list[str],
    decode_gpus: list[str],
    slo: Slo,
    model: ModelSpec,
    gpus_per_instance: int,
    startup: Startup | None = None,
    ratio_rule: str = "stress",
    config: EngineConfig | None = None,
) -> Service:
    """The service for ``workload``: each role's deployment per GPU type, then the ratio by the
    stress test (``ratio_rule="stress"``, the paper's) or by the former quantile rule."""
    startup = startup or Startup()
    config = config or EngineConfig()
    gpu_types = {Role.PREFILL: list(prefill_gpus), Role.DECODE: list(decode_gpus)}
    for role, gpus in gpu_types.items():
        missing = [g for g in gpus if g not in perf]
        if missing or not gpus:
            raise ValueError(f"unknown {role.value} GPU types {missing}; known: {', '.join(perf)}")
    context = mean_context(workload)
    deployments: dict[Role, dict[str, Deployment]] = {
        role: {g: deploy(role, perf[g], model, startup, workload.trace, slo.tbt_s, context) for g in gpus}
        for role, gpus in gpu_types.items()
    }

    def at(
        ratio: tuple[int, int], targets: tuple[dict[str, float], dict[str, float]], curve: tuple[RatioPoint, ...] = ()
    ) -> Service:
        return assemble(
            workload,
            model=model,
            slo=slo,
            gpu_types=gpu_types,
            gpus_per_instance=gpus_per_instance,
            deployments=deployments,
            ratio=ratio,
            targets=targets,
            startup=startup,
            ratio_curve=curve,
        )

    capacity = capacity_targets(workload, deployments, slo)
    if ratio_rule == "quantile":
        first_prefill = deployments[Role.PREFILL][prefill_gpus[0]]
        needs = window_needs(workload, first_prefill, capacity[1][prefill_gpus[0]], capacity[0][decode_gpus[0]])
        return at(quantile_ratio(needs, slo.attainment), capacity)
    if ratio_rule != "stress":
        raise ValueError(f"unknown ratio rule {ratio_rule!r}; choose stress or quantile")
    test = sweep(at((1, 1), capacity), workload, config)
    return at(test.best.ratio, capacity, test.curve)
