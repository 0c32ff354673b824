"""Per-policy figures of one run: GPU-hours, utilisation, SLO attainment, latency, stability. Pure."""

from __future__ import annotations

import math
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
    #: ``slo_attainment``'s one-sided 95% lower confidence bound, with the day's hours as the
    #: sampling units (:func:`attainment_lower_bound`).
    slo_attainment_low: float
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


#: The sampling unit of :func:`attainment_lower_bound`: an hour of arrivals.
BLOCK_S = 3600.0
#: The one-sided 95% quantile of the standard normal distribution.
Z_95 = 1.6448536269514722


def attainment_lower_bound(
    ok: npt.NDArray[np.bool_], weight: npt.NDArray[np.float64], arrival_s: npt.NDArray[np.float64]
) -> float:
    """The weighted share of ``ok`` requests, less 1.645 standard errors: its one-sided 95% lower
    confidence bound, treating each hour of arrivals as one sample of the day's conditions.

    Requests of one hour share their load, so their misses are not independent: a ramp that
    catches a policy short misses many at once. The standard error is therefore the linearised
    one of a ratio estimator with hours as clusters (Cochran, *Sampling Techniques*, ch. 6), with
    the usual small-sample factor ``H / (H - 1)`` (CR1 in Cameron and Miller, "A Practitioner's
    Guide to Cluster-Robust Inference", 2015): with attainment ``A``,
    hour ``h``'s weight ``W_h`` and met weight ``M_h``, ``Var(A) = H / (H - 1) * sum((M_h - A W_h)^2)
    / (sum W_h)^2``. A policy whose misses are spread evenly over the hours gets a bound close to
    ``A``; one whose misses all fall in a few hours gets a lower one. With one hour or less there
    is nothing to spread over, and the bound is ``A``."""
    total = float(weight.sum())
    if total <= 0.0:
        return 0.0
    attained = float(weight[ok].sum()) / total
    hours = np.floor(arrival_s / BLOCK_S).astype(np.int64)
    _, block = np.unique(hours, return_inverse=True)
    count = int(block.max()) + 1 if block.size else 0
    if count < 2:
        return attained
    weights = np.bincount(block, weights=weight, minlength=count)
    met = np.bincount(block, weights=np.where(ok, weight, 0.0), minlength=count)
    variance = count / (count - 1) * float(((met - attained * weights) ** 2).sum()) / total**2
    return max(0.0, attained - Z_95 * math.sqrt(variance))


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
        slo_attainment_low=attainment_lower_bound(ttft_ok & tbt_ok, w, run.arrival_s),
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
