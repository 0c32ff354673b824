"""Signal study: how well each candidate scaling signal tracks what the service needs (pure).

Run on a fixed fleet (static provisioning), as in the HeteroScale paper's study, so per-instance
signals are comparable over time. Ground truth is not the offered decode load (decode TPS would
score 1.0 by construction) but the oracle's per-step need of the signal's role, in instances at
full capacity. For each signal, over metric-window means:

* ``correlation``: Pearson's r with that need (0 for a signal that never moves);
* ``snr``: the paper's view of a signal: how far it moves between the hour of least and the hour
  of most need ("response to a load step"), in standard deviations of its detrended wobble
  within the hour of most need ("noise at steady load"). Utilisation is read in whole percent,
  as engines report it.
"""

from __future__ import annotations

import numpy as np

from heteroscale.simulate.engine import RunResult
from heteroscale.simulate.perfmodel import FloatArray
from heteroscale.simulate.service import METRIC_WINDOW_S

HOUR_S = 3600.0
#: GPU utilisation as engines and DCGM report it: whole percent. A saturated counter then reads
#: the same at any load instead of moving by parts per billion.
UTILIZATION_RESOLUTION = 0.01


def _windowed(x: FloatArray, k: int) -> FloatArray:
    n = x.size // k
    result: FloatArray = x[: n * k].reshape(n, k).mean(axis=1)
    return result


def _corr(a: FloatArray, b: FloatArray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _snr(signal: FloatArray, need: FloatArray, per_hour: int, resolution: float = 0.0) -> float:
    """Swing between the hours of least and most need, over the detrended wobble in the latter; a
    reading of finite ``resolution`` has at least its rounding noise, resolution / sqrt(12)."""
    hours = need.size // per_hour
    if hours < 2:
        return 0.0
    by_hour = need[: hours * per_hour].reshape(hours, per_hour).mean(axis=1)
    low, high = int(np.argmin(by_hour)), int(np.argmax(by_hour))
    hi = signal[high * per_hour : (high + 1) * per_hour]
    lo = signal[low * per_hour : (low + 1) * per_hour]
    hi, lo = hi[np.isfinite(hi)], lo[np.isfinite(lo)]
    if hi.size < 3 or lo.size < 1:
        return 0.0
    t = np.arange(hi.size)
    residual = hi - np.polyval(np.polyfit(t, hi, 1), t)
    noise = max(float(residual.std()), resolution / np.sqrt(12.0))
    swing = abs(float(hi.mean() - lo.mean()))
    return swing / noise if noise > 0 else 0.0


def _reported(utilization: FloatArray) -> FloatArray:
    result: FloatArray = np.round(utilization / UTILIZATION_RESOLUTION) * UTILIZATION_RESOLUTION
    return result


def signal_study(run: RunResult, need_prefill: FloatArray, need_decode: FloatArray) -> dict[str, dict[str, float]]:
    """Each candidate signal of ``run`` (a fixed fleet) against the per-step need of its role."""
    traj = run.traj
    k = max(round(METRIC_WINDOW_S / run.dt), 1)
    per_hour = max(round(HOUR_S / METRIC_WINDOW_S), 1)
    steps = traj.steps
    per_d = np.maximum(traj.decode_ready, 1)
    per_p = np.maximum(traj.prefill_ready, 1)
    ready = traj.prefill_ready + traj.decode_ready
    step = (run.arrival_s // run.dt).astype(np.int64)
    ok = run.finished
    count = np.bincount(step[ok], minlength=steps)[:steps]
    ttft = np.bincount(step[ok], weights=run.ttft_s[ok], minlength=steps)[:steps]
    tbt = np.bincount(step[ok], weights=run.tbt_s[ok], minlength=steps)[:steps]
    with np.errstate(invalid="ignore", divide="ignore"):
        ttft_mean = np.where(count > 0, ttft / count, np.nan)
        tbt_mean = np.where(count > 0, tbt / count, np.nan)
    prefill_util = _reported(traj.prefill_util_reported)
    decode_util = _reported(traj.decode_util_reported)
    util = _reported((prefill_util * traj.prefill_ready + decode_util * traj.decode_ready) / np.maximum(ready, 1))
    prefill, decode = need_prefill[:steps], need_decode[:steps]
    candidates: dict[str, tuple[FloatArray, FloatArray, float]] = {
        "decode_tps": (traj.decode_tps / per_d, decode, 0.0),
        "prefill_missed_tps": (traj.prefill_missed_tps / per_p, prefill, 0.0),
        "prefill_raw_tps": (traj.prefill_raw_tps / per_p, prefill, 0.0),
        "gpu_utilization": (util, prefill + decode, UTILIZATION_RESOLUTION),
        "prefill_gpu_utilization": (prefill_util, prefill, UTILIZATION_RESOLUTION),
        "decode_gpu_utilization": (decode_util, decode, UTILIZATION_RESOLUTION),
        "ttft": (ttft_mean, prefill, 0.0),
        "tbt": (tbt_mean, decode, 0.0),
    }
    study = {}
    for name, (series, need, resolution) in candidates.items():
        signal, truth = _windowed(series, k), _windowed(need, k)
        snr = _snr(signal, truth, per_hour, resolution)
        study[name] = {"correlation": round(_corr(signal, truth), 4), "snr": round(snr, 2)}
    return study
