"""Benchmark: the held-out evaluation of every bundled day, as ``heteroscale simulate --holdout`` runs it.

For each day: HeteroScale's spec is curated on a 24 h day built from the trace's first half, then
every default policy and the curated spec run on a 24 h day built from its second half, configured
(ratio, targets, static peak) from the first, on a cluster sized for the second. Prints, per day, the curated lane against
the defaults, HPA on utilisation, static peak and the oracle, and the issue's acceptance (>= 99%
SLO, fewer GPU-hours than HPA and static, <= 1.15x the oracle; goal 1.10x). Each day takes 1-2
minutes on 2 cores.

The suite checks the mechanics on a small day (``tests/curate/test_holdout.py``); the 24 h days
are an experiment of minutes each, so their acceptance is measured here, on demand.

Run with ``python -m tests.benchmarks.bench_holdout [--days NAME,...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

from heteroscale.cli import main as cli
from heteroscale.simulate.catalog import CURATED

B = ["--prefill-gpus", "H800,H20", "--decode-gpus", "H20", "--fleet-scale", "250"]
#: Every day, by the name the docs' table uses: the simulate flags it needs.
DAYS: dict[str, list[str]] = {
    "l20-prefill/azure-conv": ["--trace", "azure-conv"],
    "l20-prefill/mooncake": ["--trace", "mooncake"],
    "l20-prefill/azure-code": ["--trace", "azure-code"],
    "h800-prefill/azure-conv": ["--trace", "azure-conv", *B],
    "h800-prefill/mooncake": ["--trace", "mooncake", *B],
    "h800-prefill/azure-code": ["--trace", "azure-code", *B],
    "l20-prefill/azure-conv+burst": ["--trace", "azure-conv", "--burst", "14,20,3,5"],
    "l20-prefill/azure-conv+burst+fast": ["--trace", "azure-conv", "--burst", "14,20,3,5", "--fast-loader"],
    "l20-prefill/azure-code+burst+fast": ["--trace", "azure-code", "--burst", "14,20,3,5", "--fast-loader"],
    "l20-prefill/mooncake+burst+fast": ["--trace", "mooncake", "--burst", "14,20,3,5", "--fast-loader"],
}


def _run(flags: list[str], folder: Path) -> tuple[dict[str, object], float]:
    out = folder / "day.json"
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the table below says what each day's report would
        code = cli(["simulate", "--holdout", "--no-progress", "--json", str(out), *flags])
    if code != 0:
        raise SystemExit(f"heteroscale simulate --holdout {' '.join(flags)} exited {code}")
    return json.loads(out.read_text(encoding="utf-8")), time.perf_counter() - started


def _line(name: str, result: dict[str, object], wall: float) -> str:
    policies = result["policies"]
    assert isinstance(policies, dict)
    curated, defaults = policies[CURATED], policies["heteroscale"]

    def versus(other: str) -> str:
        return f"{curated['gpu_hours'] / policies[other]['gpu_hours'] - 1:+.0%}" if other in policies else "-"

    ratio = curated["gpu_hours"] / policies["oracle"]["gpu_hours"]
    met = (
        curated["slo_attainment"] >= 0.99
        and curated["gpu_hours"] < policies["hpa-util"]["gpu_hours"]
        and curated["gpu_hours"] < policies["static"]["gpu_hours"]
        and ratio <= 1.15
    )
    training = result["holdout"]
    assert isinstance(training, dict)
    there = training["on_the_training_day"]["curated"]
    moved = [f"{k} {v}" for k, v in training["knobs"].items() if v != training["defaults"][k]]
    return (
        f"{name:<36} {curated['gpu_hours']:>9,.0f} {curated['slo_attainment']:>8.2%} {ratio:>6.2f}x "
        f"{versus('heteroscale'):>9} {versus('hpa-util'):>6} {versus('static'):>7} "
        f"{'met' if met else 'NOT met':>8} {wall:>6.0f} s   defaults: {defaults['gpu_hours']:,.0f} GPU-h at "
        f"{defaults['slo_attainment']:.2%}\n"
        f"{'':<4}chosen on the first half at {there['gpu_hours']:,.0f} GPU-h, {there['slo_attainment']:.2%} SLO "
        f"(95% lower bound {there['slo_attainment_low']:.2%}); knobs moved: {', '.join(moved) or 'none'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", default=",".join(DAYS), help="comma-separated day names (default: all)")
    args = parser.parse_args()
    names = [n.strip() for n in args.days.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DAYS))
    if unknown:
        raise SystemExit(f"unknown days {unknown}; choose from {', '.join(DAYS)}")
    header = f"{'day (curated lane)':<36} {'GPU-h':>9} {'SLO':>8} {'oracle':>7} {'defaults':>9} {'HPA':>6} "
    print(header + f"{'static':>7} {'accept':>8} {'wall':>8}")
    for name in names:
        with tempfile.TemporaryDirectory() as folder:
            result, wall = _run(DAYS[name], Path(folder))
        print(_line(name, result, wall), flush=True)


if __name__ == "__main__":
    main()
