"""Per-policy figures of one run: GPU-hours, utilisation, SLO attainment, latency, stability. Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from heteroscale.simulate.engine import RunResult
from heteroscale.simulate.latency import Latencies


@dataclass(frozen=True)
class Summary:
    policy: str
    gpu_hours: float
    #: Work done / capacity held, GPU-weighted; starting instances count as idle. Prefill: work
    #: over compute capacity; decode: tokens over the throughput at the TBT SLO.
    avg_utilization: float
    #: Share of all requests (dropped ones count as misses) meeting both TTFT and TBT SLOs: the
    #: sampled requests weighted by the requests each stands for.
    slo_attainment: float
    ttft_attainment: float
    tbt_attainment: float
    ttft_p99: float
    tbt_p99: float
    scale_actions: int
    #: Time-mean relative error of the ready P/D ratio against the configured one.
    pd_ratio_error: float
    decode_tps_per_instance: float
    dropped: float
    requests: float
    peak_instances: int
    #: Share of prefill instances whose KV crosses S2 domains, weighted by prefill instances over time.
    cross_domain_fraction: float
    #: Sum over steps of the target instances placement could not place (capacity-bounded).
    unschedulable_instance_steps: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gpu_hours(run: RunResult) -> float:
    return float(
        (run.traj.prefill_instances + run.traj.decode_instances).sum() * run.gpus_per_instance * run.dt / 3600.0
    )


def _p99(values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> float:
    if not values.size:
        return float("inf")
    return float(np.quantile(values, 0.99, weights=weights, method="inverted_cdf"))


def slo_met(
    latencies: Latencies, ttft_limit_s: npt.NDArray[np.float64], tbt_limit_s: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Per request: (finished within its TTFT limit, finished within the TBT limit). The TBT SLO
    applies to each request's mean time between tokens (its TPOT)."""
    ttft_ok = latencies.finished & (latencies.ttft_s <= ttft_limit_s)
    tbt_ok = latencies.finished & (latencies.tbt_s <= tbt_limit_s)
    return ttft_ok, tbt_ok


def slo_attainment(
    latencies: Latencies, ttft_limit_s: npt.NDArray[np.float64], tbt_limit_s: float, weight: npt.NDArray[np.float64]
) -> float:
    """Share of all requests (dropped ones count as misses) meeting both SLOs, weighted."""
    ttft_ok, tbt_ok = slo_met(latencies, ttft_limit_s, tbt_limit_s)
    return float(weight[ttft_ok & tbt_ok].sum() / max(float(weight.sum()), 1e-12))


def summarize(run: RunResult) -> Summary:
    held = run.traj.prefill_instances + run.traj.decode_instances
    used = run.traj.prefill_busy * run.traj.prefill_ready + run.traj.decode_busy * run.traj.decode_ready
    ttft_ok, tbt_ok = slo_met(Latencies(run.ttft_s, run.tbt_s, run.finished), run.ttft_limit_s, run.tbt_limit_s)
    w = run.weight
    n = max(float(w.sum()), 1e-12)
    done_ttft = run.ttft_s[run.finished]
    done_tbt = run.tbt_s[run.finished]
    done_w = w[run.finished]
    has_d = run.traj.decode_ready > 0
    target = run.ratio[0] / run.ratio[1]
    ratio = run.traj.prefill_ready[has_d] / run.traj.decode_ready[has_d]
    return Summary(
        policy=run.policy,
        gpu_hours=gpu_hours(run),
        avg_utilization=float(used.sum() / held.sum()) if held.sum() > 0 else 0.0,
        slo_attainment=float(w[ttft_ok & tbt_ok].sum() / n),
        ttft_attainment=float(w[ttft_ok].sum() / n),
        tbt_attainment=float(w[tbt_ok].sum() / n),
        ttft_p99=_p99(done_ttft, done_w),
        tbt_p99=_p99(done_tbt, done_w),
        scale_actions=run.scale_actions,
        pd_ratio_error=float(np.mean(np.abs(ratio - target)) / target) if ratio.size else 0.0,
        decode_tps_per_instance=float(np.mean(run.traj.decode_tps[has_d] / run.traj.decode_ready[has_d]))
        if has_d.any()
        else 0.0,
        dropped=float(w[~run.finished].sum()),
        requests=float(w.sum()),
        peak_instances=int(held.max()) if held.size else 0,
        cross_domain_fraction=float(
            (run.traj.cross_domain * run.traj.prefill_instances).sum() / run.traj.prefill_instances.sum()
        )
        if run.traj.prefill_instances.sum() > 0
        else 0.0,
        unschedulable_instance_steps=int(run.traj.unschedulable.sum()),
    )
