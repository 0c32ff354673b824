"""Benchmark: a simulated 24 h of a ~1,000-instance fleet, all five policies; prints the wall time.

Run with ``python -m tests.benchmarks.bench_simulate``. Target: at most 30 s on 2 cores.
"""

from __future__ import annotations

import time

from heteroscale.cores import available_cores
from heteroscale.simulate import workload as wl
from heteroscale.simulate.catalog import POLICIES
from heteroscale.simulate.engine import EngineConfig
from heteroscale.simulate.perfmodel import ModelSpec, load_gpu_perf
from heteroscale.simulate.service import Slo
from heteroscale.simulate.stresstest import derive
from heteroscale.simulate.study import run_study

#: Load multiplier that puts the azure-conv day's static peak near 1,000 instances.
FLEET_SCALE = 455.0


def main() -> None:
    start = time.perf_counter()
    perf = load_gpu_perf()
    workload = wl.scale(wl.load("azure-conv"), hours=24, fleet_scale=FLEET_SCALE, diurnal=True)
    service = derive(
        workload,
        perf,
        prefill_gpus=["L20", "H20"],
        decode_gpus=["H20"],
        slo=Slo(),
        model=ModelSpec(),
        gpus_per_instance=8,
    )
    study = run_study(workload, service, list(POLICIES), EngineConfig(), workers=available_cores())
    wall = time.perf_counter() - start
    print(f"static peak fleet: {sum(service.static_peak)} instances; {workload.size} representative requests")
    for name, s in study.summaries.items():
        print(
            f"  {name:<12} peak {s.peak_instances:>5} instances, {s.gpu_hours:>9.0f} GPU-h, SLO {s.slo_attainment:.2%}"
        )
    print(f"wall time: {wall:.1f} s (target <= 30 s on 2 cores)")


if __name__ == "__main__":
    main()
