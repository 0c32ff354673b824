"""Benchmark: `heteroscale stragglers analyze` on 1.07M- and 10.7M-op traces, and the artifact's pipeline.

Run with ``python -m tests.benchmarks.bench_stragglers``. The traces are the bundled SE trace with its
DP ranks copied 10x and 100x (:mod:`tests.benchmarks.straggler_traces`), written into a temporary
folder. Each command runs as a subprocess, so its time and memory include the interpreter start.
Printed per trace: wall time; CPU time (user + system, workers included), which other work on the
machine does not inflate as it does wall time; peak RSS summed over the command's processes (sampled
every 20 ms; pages that forked workers share are counted in each); the largest single process's RSS
(from ``wait4``); and S, M_W and M_S, checked against SE itself (copies leave S and M_S unchanged).
Our command runs ``--repeat`` times (default 3) and the fastest run is compared; the load average
is printed too.

The published artifact (github.com/ByteDance-Seed/StragglerAnalysis) is run too when a checkout of
it is given with ``--artifact DIR`` or ``STRAGGLER_ARTIFACT``, with the Python that has its
requirements (``--artifact-python`` / ``STRAGGLER_ARTIFACT_PYTHON``; pandas < 3). Its full pipeline
is ``wia.py``, then ``compute_ms.py`` and ``compute_mw.py`` (as its ``run_all.sh``); the benchmark
prints each script's figures, our speed-up and RSS ratio, and how far S, M_W and M_S agree. By default
the artifact runs on the 1.07M-op trace only (``--artifact-copies`` to change it).

Targets (2 cores): 1.07M ops at least 15x faster than the artifact's full pipeline with no more peak
RSS; 10.7M ops in at most 15 s and 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks.straggler_traces import SOURCE, write_replicated_trace
from tests.stragglers.conftest import DATA

COPIES = (10, 100)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Run:
    seconds: float
    cpu_seconds: float  # user + system, the command and the workers it reaped
    tree_rss_mb: float  # peak of the summed RSS of the process and its descendants (sampled)
    max_rss_mb: float  # largest single process (ru_maxrss)


def _tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and every descendant, from /proc (0 where /proc is missing)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


def measure(argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` to the end; its output goes to ``log``."""
    with log.open("w") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, _tree_rss_kb(process.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    if process.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{log.read_text()[-3000:]}")
    # ru_maxrss of a reaped child covers the descendants it reaped too: the largest single process.
    largest = usage.ru_maxrss / 1024
    return Run(elapsed, usage.ru_utime + usage.ru_stime, max(peak / 1024, largest), largest)


def ours(trace: Path, meta: Path, out: Path, workers: int | None, repeat: int) -> tuple[list[Run], dict]:
    argv = [sys.executable, "-m", "heteroscale", "stragglers", "analyze", "--trace", str(trace), "--meta", str(meta)]
    argv += ["--json", str(out)] + (["--workers", str(workers)] if workers else [])
    runs = [measure(argv, ROOT, out.with_suffix(".log")) for _ in range(repeat)]
    return runs, json.loads(out.read_text())


def artifact(repo: Path, python: str, trace: Path, meta: Path, folder: Path) -> tuple[dict[str, Run], dict]:
    """The artifact's full pipeline, as its run_all.sh runs it: wia.py, compute_ms.py, compute_mw.py."""
    name = trace.stem.removeprefix("trace-")
    out = folder / f"artifact-{name}"
    out.mkdir()
    result = out / f"{name}.json"
    common = ["--dump-dir", str(out), "--root", str(out)]
    on_result = ["--trial", name, "--analysis-result", str(result), *common]
    scripts = {
        "wia.py": ["--metadata", str(meta), "--trace", str(trace), *common],
        "compute_ms.py": on_result,
        "compute_mw.py": on_result,
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    runs = {
        script: measure([python, str(repo / "analyzer" / script), *args], repo, out / f"{script}.log", env)
        for script, args in scripts.items()
    }
    figures = {
        "slowdown": json.loads(result.read_text())["blocking_slowdown"],
        "M_S": json.loads((out / f"ms-{name}.json").read_text())["Ms"],
        "M_W": json.loads((out / f"mw-{name}.json").read_text())["Mw"],
    }
    return runs, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, nargs="+", default=list(COPIES), help="DP copies of SE (default 10 100)")
    parser.add_argument("--workers", type=int, help="--workers for heteroscale (default: one per core)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of heteroscale per trace; the best is compared")
    parser.add_argument("--artifact", type=Path, default=os.environ.get("STRAGGLER_ARTIFACT"), help="artifact checkout")
    parser.add_argument(
        "--artifact-python",
        default=os.environ.get("STRAGGLER_ARTIFACT_PYTHON", "python3"),
        help="Python with the artifact's requirements",
    )
    parser.add_argument("--artifact-copies", type=int, nargs="*", default=[10], help="traces the artifact runs on")
    args = parser.parse_args()

    reference = {
        "slowdown": json.loads((DATA / f"result-{SOURCE}.json").read_text())["blocking_slowdown"],
        "M_S": json.loads((DATA / f"ms-{SOURCE}.json").read_text())["Ms"],
    }
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average {os.getloadavg()[0]:.1f} at start")
    if args.artifact is None:
        print("artifact: not given (--artifact DIR or STRAGGLER_ARTIFACT); printing our figures only")
    with tempfile.TemporaryDirectory(prefix="bench-stragglers-") as tmp:
        folder = Path(tmp)
        for copies in sorted(args.copies):
            started = time.perf_counter()
            trace, meta = write_replicated_trace(copies, folder)
            generated = time.perf_counter() - started
            runs, result = ours(trace, meta, folder / f"ours-{copies}.json", args.workers, args.repeat)
            run = min(runs, key=lambda r: r.seconds)
            print(
                f"{SOURCE} x{copies}: {result['ops']:,} ops (DP {result['sizes']['dp']} x PP {result['sizes']['pp']}, "
                f"{len(result['steps'])} steps), {trace.stat().st_size / 2**20:.1f} MiB Parquet, "
                f"generated in {generated:.1f} s"
            )
            print(
                f"  heteroscale stragglers analyze: {run.seconds:.2f} s (best of "
                f"{', '.join(f'{r.seconds:.2f}' for r in runs)}), CPU {run.cpu_seconds:.2f} s, peak RSS {max(r.tree_rss_mb for r in runs):.0f} MB "
                f"(all processes), {max(r.max_rss_mb for r in runs):.0f} MB (largest process); "
                f"load average {os.getloadavg()[0]:.1f}"
            )
            print(
                f"  S = {result['slowdown']:.6f} ({SOURCE} published {reference['slowdown']:.6f}), "
                f"M_S = {result['M_S']:.6f} ({reference['M_S']:.6f}), M_W = {result['M_W']:.6f}, "
                f"M_W_what_if = {result['M_W_what_if']:.6f}"
            )
            if args.artifact is None or copies not in args.artifact_copies:
                continue
            theirs, figures = artifact(args.artifact, args.artifact_python, trace, meta, folder)
            total = sum(r.seconds for r in theirs.values())
            peak = max(r.tree_rss_mb for r in theirs.values())
            print(
                "  artifact: "
                + "; ".join(
                    f"{s} {r.seconds:.2f} s (CPU {r.cpu_seconds:.2f} s), {r.tree_rss_mb:.0f} MB"
                    for s, r in theirs.items()
                )
            )
            print(
                f"  ratio: {total / run.seconds:.1f}x faster than the full pipeline ({total:.1f} s), "
                f"{theirs['wia.py'].seconds / run.seconds:.1f}x than wia.py; CPU time "
                f"{sum(r.cpu_seconds for r in theirs.values()) / run.cpu_seconds:.1f}x less; peak RSS "
                f"{max(r.tree_rss_mb for r in runs) / peak:.2f}x the artifact's {peak:.0f} MB"
            )
            print(
                "  agreement with the artifact: "
                + ", ".join(f"{k} {result[k] - figures[k]:+.2e}" for k in ("slowdown", "M_W", "M_S"))
            )


if __name__ == "__main__":
    main()
