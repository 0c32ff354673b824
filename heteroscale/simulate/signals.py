"""Signal study: how well each candidate scaling signal tracks the offered load in one run.

Run on a fixed fleet (static provisioning), as in the HeteroScale paper's study: per-instance
signals are then comparable over time. Pearson correlation over metric-window means; a signal
that never moves (decode GPU utilisation pinned near 100%) has no correlation and scores 0. Pure.
"""

from __future__ import annotations

import numpy as np

from heteroscale.simulate.engine import RunResult
from heteroscale.simulate.perfmodel import FloatArray
from heteroscale.simulate.service import METRIC_WINDOW_S


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


def signal_correlations(run: RunResult) -> dict[str, float]:
    k = max(round(METRIC_WINDOW_S / run.dt), 1)
    load = _windowed(run.offered_decode_tps, k)
    ready = run.traj.prefill_ready + run.traj.decode_ready
    per_d = np.maximum(run.traj.decode_ready, 1)
    per_p = np.maximum(run.traj.prefill_ready, 1)
    step = (run.arrival_s // run.dt).astype(np.int64)
    ok = run.finished
    count = np.bincount(step[ok], minlength=run.steps)[: run.steps]
    ttft = np.bincount(step[ok], weights=run.ttft_s[ok], minlength=run.steps)[: run.steps]
    tbt = np.bincount(step[ok], weights=run.tbt_s[ok], minlength=run.steps)[: run.steps]
    with np.errstate(invalid="ignore", divide="ignore"):
        ttft_mean = np.where(count > 0, ttft / count, np.nan)
        tbt_mean = np.where(count > 0, tbt / count, np.nan)
    util = (
        run.traj.prefill_util_reported * run.traj.prefill_ready + run.traj.decode_util_reported * run.traj.decode_ready
    ) / np.maximum(ready, 1)
    candidates = {
        "decode_tps": run.traj.decode_tps / per_d,
        "prefill_missed_tps": run.traj.prefill_missed_tps / per_p,
        "prefill_raw_tps": run.traj.prefill_raw_tps / per_p,
        "gpu_utilization": util,
        "prefill_gpu_utilization": run.traj.prefill_util_reported,
        "decode_gpu_utilization": run.traj.decode_util_reported,
        "ttft": ttft_mean,
        "tbt": tbt_mean,
    }
    return {name: _corr(_windowed(series, k), load) for name, series in candidates.items()}
