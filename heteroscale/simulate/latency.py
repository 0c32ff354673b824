"""Each sampled request's TTFT and TBT, read off a run's FIFO trajectories in one vectorised pass.

* prefill: a request is prefilled when the pool's position passes its arrival, no earlier than
  its own unloaded prefill time, plus a Sakasegawa M/G/k waiting time when the pool is below
  saturation (the fluid alone has no queueing below 100% busy);
* P->D KV transfer at the RDMA bandwidth, slower for the share of prefill instances whose decode
  partners sit in another S2 domain (from the placement in force at arrival);
* decode: admitted when the decode position passes the arrival (never before the KV arrived);
  its TBT is the mean step time over the steps its output spans. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heteroscale.simulate.perfmodel import FloatArray
from heteroscale.simulate.recorder import Trajectories


@dataclass(frozen=True)
class Requests:
    """The sampled requests' arrivals and what the perf model says about each, unloaded."""

    arrival_s: FloatArray
    output_tokens: FloatArray
    #: Own prefill time and KV transfer time (at the cross-domain share of its arrival step).
    prefill_s: FloatArray
    kv_transfer_s: FloatArray


@dataclass(frozen=True)
class Latencies:
    ttft_s: FloatArray
    tbt_s: FloatArray
    finished: npt.NDArray[np.bool_]


def time_at(traj: FloatArray, target: FloatArray, dt: float) -> FloatArray:
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


def sakasegawa_wait(rho: FloatArray, k: FloatArray, mean_service: float, scv: float) -> FloatArray:
    """Mean M/G/k queueing delay (Sakasegawa 1977) below saturation; 0 at or above it (the
    fluid queue carries the wait there)."""
    r = np.clip(rho, 0.0, 0.999)
    kk = np.maximum(k, 1.0)
    wait = mean_service * (1 + scv) / 2 * r ** (np.sqrt(2 * (kk + 1)) - 1) / (kk * (1 - r))
    result: FloatArray = np.where(rho < 1.0, wait, 0.0)
    return result


def prefilled_at(
    arrival_s: FloatArray, prefill_s: FloatArray, traj: Trajectories, dt: float, work_mean: float, work_scv: float
) -> FloatArray:
    """When each request's prefill ends (inf where ``traj`` never gets there): the pool's position
    passes its arrival, no earlier than its own prefill time, plus the M/G/k wait of its arrival step.
    The prefill engine's TTFT is this minus the arrival."""
    step_of = np.minimum((arrival_s // dt).astype(np.int64), traj.steps - 1)
    wait = sakasegawa_wait(traj.prefill_busy[step_of], traj.prefill_ready[step_of], work_mean, work_scv)
    result: FloatArray = np.maximum(time_at(traj.prefilled_position, arrival_s / dt, dt), arrival_s + prefill_s) + wait
    return result


def read_latencies(requests: Requests, traj: Trajectories, dt: float, work_mean: float, work_scv: float) -> Latencies:
    """TTFT (to the first decode step), the mean TBT, and whether the request finished in the run."""
    n_steps = traj.steps
    arrival = requests.arrival_s
    t_prefilled = prefilled_at(arrival, requests.prefill_s, traj, dt, work_mean, work_scv) + requests.kv_transfer_s
    t_admitted = np.maximum(time_at(traj.admitted_position, arrival / dt, dt), t_prefilled)
    tbt_series = np.where(traj.tbt > 0, traj.tbt, np.inf)
    s_adm = np.minimum((np.where(np.isfinite(t_admitted), t_admitted, 0) // dt).astype(np.int64), n_steps - 1)
    # A step with no ready decode instance has no TBT; a request admitted there misses its SLO.
    finite = np.where(np.isfinite(tbt_series), tbt_series, 1e6)
    first_step = finite[s_adm]
    span = np.clip(np.ceil(requests.output_tokens * first_step / dt), 1, n_steps).astype(np.int64)
    s_end = np.minimum(s_adm + span, n_steps)
    csum = np.concatenate([np.zeros(1), np.cumsum(finite)])
    tbt_req = (csum[s_end] - csum[s_adm]) / (s_end - s_adm)
    ttft = t_admitted - arrival + first_step
    end = t_admitted + requests.output_tokens * tbt_req
    finished = np.isfinite(t_admitted) & (end <= n_steps * dt)
    return Latencies(
        ttft_s=np.where(finished, ttft, np.inf), tbt_s=np.where(finished, tbt_req, np.inf), finished=finished
    )
