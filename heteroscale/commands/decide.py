"""`heteroscale decide`: replay a decode-throughput series through the policy and show each decision."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING

from heteroscale.commands.arguments import positive_float
from heteroscale.commands.errors import UserInputError
from heteroscale.commands.inputs import read_group
from heteroscale.commands.output import is_stdout, write_json

if TYPE_CHECKING:
    from heteroscale.policy.replay import ReplayRow, SeriesPoint

DEFAULT_TRACE = "azure-conv"
DEFAULT_SCALE = 40.0
DEFAULT_BIN_SECONDS = 60.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "decide",
        help="replay a decode tokens/s series through the policy",
        description=(
            "Replay a time series through the scaling policy and print one row per tick. Without "
            "--series, the series is the offered decode load of a bundled trace, per minute."
        ),
    )
    parser.add_argument("--spec", type=Path, required=True, help="PDServingGroup YAML (full object or bare spec)")
    parser.add_argument(
        "--series",
        type=Path,
        help="CSV with columns: time in seconds, decode tokens/s (empty = missing reading), optional TBT seconds",
    )
    parser.add_argument(
        "--trace",
        default=DEFAULT_TRACE,
        help="bundled trace (azure-conv, azure-code, mooncake) or a trace file, when no --series is given",
    )
    parser.add_argument(
        "--scale",
        type=positive_float,
        default=DEFAULT_SCALE,
        help="multiply the trace's load, to stand for a larger fleet",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also write the rows as a JSON list here; - for stdout alone"
    )
    parser.set_defaults(func=run)


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserInputError(f"{where}: {text!r} is not a number") from None


def read_series(path: Path) -> list[SeriesPoint]:
    """Rows of (t, decode tokens/s, optional TBT); a header row is recognised and skipped."""
    from heteroscale.policy.replay import SeriesPoint

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserInputError(f"cannot read series {path}: {exc.strerror}") from None
    points = []
    last_t = -math.inf
    for number, row in enumerate(csv.reader(lines), 1):
        if not row or not "".join(row).strip():
            continue
        where = f"{path}:{number}"
        if number == 1 and not _looks_numeric(row[0]):
            continue
        if len(row) not in (2, 3):
            raise UserInputError(f"{where}: expected 2 or 3 columns (t, decode_tps[, tbt]), got {len(row)}")
        t = _number(row[0], where)
        if t <= last_t:
            raise UserInputError(f"{where}: time {t} does not increase (previous {last_t})")
        last_t = t
        tps = _number(row[1], where) if row[1].strip() else None
        tbt = _number(row[2], where) if len(row) == 3 and row[2].strip() else None
        points.append(SeriesPoint(t, tps, tbt))
    if not points:
        raise UserInputError(f"{path}: no data rows")
    return points


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def trace_series(name: str, scale: float) -> list[SeriesPoint]:
    from heteroscale.policy.replay import SeriesPoint
    from heteroscale.traces import decode_tps_series, load

    try:
        trace = load(name)
    except (FileNotFoundError, ValueError) as exc:
        raise UserInputError(str(exc)) from None
    values = decode_tps_series(trace, DEFAULT_BIN_SECONDS, scale)
    # Each bin's load is known at its end, which is when the policy would read it.
    return [SeriesPoint((i + 1) * DEFAULT_BIN_SECONDS, float(v)) for i, v in enumerate(values)]


def format_table(rows: list[ReplayRow]) -> str:
    lines = [f"{'t[s]':>7}  {'decode_tps':>10}  {'prefill':>7}  {'decode':>6}  {'reason':<16}  message"]
    for row in rows:
        tps = "-" if row.decode_tps is None else f"{row.decode_tps:,.0f}"
        lines.append(f"{row.t:>7.0f}  {tps:>10}  {row.prefill:>7}  {row.decode:>6}  {row.reason!s:<16}  {row.message}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from heteroscale.policy.replay import replay

    spec = read_group(args.spec).spec
    series = read_series(args.series) if args.series else trace_series(args.trace, args.scale)
    rows = replay(spec, series)
    if args.json:
        write_json(args.json, [row.as_dict() for row in rows])
    if not is_stdout(args.json):
        print(format_table(rows))
        if args.json:
            print(f"wrote {len(rows)} rows to {args.json}")
    return 0
