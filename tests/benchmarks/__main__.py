"""Run the benchmarks: ``python -m tests.benchmarks [--list] [--only NAME ...] [-- ARGS]``.

Every ``bench_*.py`` module of this folder is a benchmark, named without the prefix (``operator``
for ``bench_operator.py``). Each runs in an interpreter of its own, as ``python -m
tests.benchmarks.bench_NAME``, so one benchmark's imports, caches and memory never colour another's
figures; its output passes straight through. Without ``--only`` all of them run in turn, each with
its own default sizes, which takes a while (curation alone takes minutes). Arguments after ``--``
go to the one benchmark named by ``--only``. The exit status is the first failing benchmark's.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PREFIX = "bench_"


def benchmarks() -> dict[str, Path]:
    """Every benchmark by name, in name order."""
    return {path.stem.removeprefix(PREFIX): path for path in sorted(HERE.glob(f"{PREFIX}*.py"))}


def summary(path: Path) -> str:
    """The first line of a benchmark's docstring: what it measures."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def parse(argv: list[str], known: dict[str, Path]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="name each benchmark and what it measures, run none")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help=f"run this one (repeatable): {', '.join(known)}"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.only or [] if name not in known]
    if unknown:
        parser.error(f"--only {unknown[0]}: no such benchmark; choose from {', '.join(known)}")
    if extra and len(args.only or []) != 1:
        parser.error("arguments after -- go to one benchmark: name it with a single --only")
    return args, extra


def main(argv: list[str]) -> int:
    known = benchmarks()
    args, extra = parse(argv, known)
    if args.list:
        for name, path in known.items():
            print(f"{name:<12} {summary(path)}")
        return 0
    chosen = args.only or list(known)
    results: list[tuple[str, int, float]] = []
    for name in chosen:
        command = [sys.executable, "-m", f"tests.benchmarks.{PREFIX}{name}", *extra]
        print(f"=== {name}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        results.append((name, code, time.perf_counter() - start))
    print("=== summary")
    for name, code, seconds in results:
        print(f"{name:<12} {'ok' if code == 0 else f'exit {code}':<8} {seconds:8.1f} s")
    return next((code for _, code, _ in results if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
