"""Benchmark: curating a 24 h day, as `heteroscale curate --workload azure-conv` does by default.

The default day (azure-conv, fleet scale 50, diurnal), the stress test, 48 first-round candidates
and the second round, with the HeteroScale/HPA/oracle baselines, on ``--workers`` processes
(default 2). Prints the wall time, the candidates per minute and the result. Target: at least 50
candidates in at most 5 minutes on 2 cores.

Run with ``python -m tests.benchmarks.bench_curate [--workers N] [--candidates N]``.
"""

from __future__ import annotations

import argparse
import time

from heteroscale.curate import BREADTH, evaluate
from heteroscale.curate.curation import curate
from heteroscale.curate.report import summary_lines
from heteroscale.simulate import workload as wl
from heteroscale.simulate.engine import EngineConfig
from heteroscale.simulate.perfmodel import ModelSpec, load_gpu_perf
from heteroscale.simulate.service import Slo
from heteroscale.simulate.stresstest import derive

TARGET_S = 300.0
TARGET_CANDIDATES = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--candidates", type=int, default=BREADTH)
    args = parser.parse_args()
    start = time.perf_counter()
    workload = wl.scale(wl.load("azure-conv"), hours=24, fleet_scale=50, diurnal=True)
    service = derive(
        workload,
        load_gpu_perf(),
        prefill_gpus=["L20", "H20"],
        decode_gpus=["H20"],
        slo=Slo(),
        model=ModelSpec(),
        gpus_per_instance=8,
    )
    stress = time.perf_counter() - start
    curation = curate(
        evaluate.setting(workload, service, EngineConfig()),
        candidates=args.candidates,
        seed=0,
        workers=args.workers,
    )
    wall = time.perf_counter() - start
    count = len(curation.evaluated)
    print(f"24 h azure-conv day: {workload.size:,} sampled requests, static peak {sum(service.static_peak)} instances")
    print(f"stress test {stress:.1f} s; {count} candidates and the baselines on {args.workers} worker(s)")
    print("\n".join(summary_lines(curation)))
    print(
        f"wall time: {wall:.1f} s for {count} candidates = {count / wall * 60:.1f} candidates/minute "
        f"(target >= {TARGET_CANDIDATES} candidates in <= {TARGET_S:.0f} s on 2 cores: "
        f"{wall / TARGET_S:.2f}x the time budget)"
    )


if __name__ == "__main__":
    main()
