"""Benchmark: where HeteroScale's GPU-hours over the oracle's go, on every default day.

Each day runs HeteroScale's defaults beside lanes that each change one thing the gap could come
from, and the oracle:

* the fixed ratio: the adaptive ratio instead (prefill on its own KV-missed throughput);
* the scale-in damping: the fastest scale-in curation searches (cooldown 120 s, stabilization
  window 60 s, 50% per period);
* the per-instance target: 0.85 and 0.9 of the SLO throughput instead of 0.8, with the dead band
  narrowed where the scale-up trigger (target x (1 + tolerance)) should stay where the defaults'
  is (0.85 x 1.05 = 0.89 against 0.8 x 1.1 = 0.88);
* which role needs that headroom: with the adaptive ratio, whose prefill has a target of its own,
  decode at 0.9 with prefill at 0.8, and the other way round.

Every lane but the last two is a spec curation could choose (levels of
``heteroscale.curate.knobs``, whose headroom sets both roles' targets alike); none is a default.
Prints each lane's GPU-hours, times the oracle's, SLO attainment (and its TTFT and TBT parts),
scale actions and the decode scale-up trigger. A day takes about 25 s on 2 cores.

Run with ``python -m tests.benchmarks.bench_gap [--days NAME,...]``.
"""

from __future__ import annotations

import argparse
import time

from heteroscale.cores import available_cores
from heteroscale.curate.knobs import DEFAULTS, KNOBS, Candidate, Level, apply, named
from heteroscale.simulate import workload as wl
from heteroscale.simulate.engine import EngineConfig
from heteroscale.simulate.perfmodel import ModelSpec, load_gpu_perf
from heteroscale.simulate.service import TARGET_BUSY, Slo, adaptive_ratio, spec_document
from heteroscale.simulate.stresstest import derive
from heteroscale.simulate.study import run_study

#: Every default day, by the name the docs' tables use: trace, prefill GPU types, fleet scale.
DAYS: dict[str, tuple[str, list[str], float]] = {
    "l20-prefill/azure-conv": ("azure-conv", ["L20", "H20"], 50.0),
    "l20-prefill/mooncake": ("mooncake", ["L20", "H20"], 50.0),
    "l20-prefill/azure-code": ("azure-code", ["L20", "H20"], 50.0),
    "h800-prefill/azure-conv": ("azure-conv", ["H800", "H20"], 250.0),
    "h800-prefill/mooncake": ("mooncake", ["H800", "H20"], 250.0),
    "h800-prefill/azure-code": ("azure-code", ["H800", "H20"], 250.0),
}

#: Each lane: the knobs it moves from the defaults, and (where given) the adaptive ratio's prefill
#: target as a share of prefill's throughput, apart from the headroom knob's.
LANES: dict[str, tuple[dict[str, Level], float | None]] = {
    "defaults (target 0.8 +-10%)": ({}, None),
    "adaptive ratio": ({"ratio": "adaptive"}, None),
    "fastest scale-in": ({"scale_down_cooldown": 120, "stabilization_window": 60, "scale_down_step": 50}, None),
    "target 0.85 +-5%": ({"headroom": 0.85, "tolerance": 0.05}, None),
    "target 0.9 +-5%": ({"headroom": 0.9, "tolerance": 0.05}, None),
    "target 0.9 +-10%": ({"headroom": 0.9}, None),
    "adaptive: decode 0.9, prefill 0.8": ({"ratio": "adaptive", "headroom": 0.9}, TARGET_BUSY),
    "adaptive: decode 0.8, prefill 0.9": ({"ratio": "adaptive"}, 0.9),
}


def candidate(moved: dict[str, Level]) -> Candidate:
    """The defaults with ``moved`` knobs set."""
    unknown = set(moved) - {knob.name for knob in KNOBS}
    if unknown:
        raise ValueError(f"unknown knobs {sorted(unknown)}")
    return tuple(moved.get(knob.name, level) for knob, level in zip(KNOBS, DEFAULTS, strict=True))


def day(name: str, trace: str, prefill_gpus: list[str], fleet_scale: float) -> None:
    started = time.perf_counter()
    config = EngineConfig()
    workload = wl.scale(wl.load(trace), hours=24, fleet_scale=fleet_scale, diurnal=True)
    service = derive(
        workload,
        load_gpu_perf(),
        prefill_gpus=prefill_gpus,
        decode_gpus=["H20"],
        slo=Slo(),
        model=ModelSpec(),
        gpus_per_instance=8,
        config=config,
    )
    base = spec_document(service, config.interval_s)
    chosen = {lane: candidate(moved) for lane, (moved, _) in LANES.items()}
    documents = {lane: apply(base, levels, service) for lane, levels in chosen.items()}
    for lane, (_, prefill_busy) in LANES.items():
        if prefill_busy is not None:
            documents[lane]["ratio"]["adaptive"] = adaptive_ratio(service, prefill_busy)
    study = run_study(workload, service, ["oracle"], config, workers=available_cores(), documents=documents)
    oracle = study.summaries["oracle"]
    print(
        f"{name}: ratio {service.ratio[0]}:{service.ratio[1]}; oracle {oracle.gpu_hours:,.0f} GPU-h at "
        f"{oracle.slo_attainment:.2%} ({time.perf_counter() - started:.0f} s)"
    )
    print(f"  {'lane':<34} {'GPU-h':>9} {'xoracle':>8} {'SLO':>8} {'TTFT':>8} {'TBT':>8} {'actions':>8} {'trigger':>8}")
    for lane, levels in chosen.items():
        s = study.summaries[lane]
        knobs = named(levels)
        trigger = float(knobs["headroom"]) * (1 + float(knobs["tolerance"]))
        print(
            f"  {lane:<34} {s.gpu_hours:>9,.0f} {s.gpu_hours / oracle.gpu_hours:>7.2f}x {s.slo_attainment:>8.2%} "
            f"{s.ttft_attainment:>8.2%} {s.tbt_attainment:>8.2%} {s.scale_actions:>8} {trigger:>8.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", help=f"comma-separated, from: {', '.join(DAYS)} (default: all)")
    args = parser.parse_args()
    names = [n.strip() for n in args.days.split(",")] if args.days else list(DAYS)
    unknown = [n for n in names if n not in DAYS]
    if unknown:
        parser.error(f"unknown days {unknown}; choose from {', '.join(DAYS)}")
    for name in names:
        day(name, *DAYS[name])


if __name__ == "__main__":
    main()
