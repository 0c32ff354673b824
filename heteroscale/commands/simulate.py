"""`heteroscale simulate`: replay a trace against HeteroScale and the baselines, report and plot."""

from __future__ import annotations

import argparse
from pathlib import Path

from heteroscale.commands.arguments import positive_float
from heteroscale.commands.errors import UserInputError
from heteroscale.commands.progress import Bar
from heteroscale.simulate.catalog import DEFAULT_POLICIES as DEFAULTS
from heteroscale.simulate.catalog import POLICIES

DEFAULT_POLICIES = ",".join(DEFAULTS)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="replay a request trace against HeteroScale and baseline policies",
        description=(
            "Replay a real request trace on a simulated heterogeneous P/D fleet under each policy and "
            "report GPU-hours, utilisation, SLO attainment and latency, with plots."
        ),
    )
    parser.add_argument("--trace", default="azure-conv", help="azure-conv, azure-code, mooncake or a file path")
    parser.add_argument("--policies", default=DEFAULT_POLICIES, help=f"comma-separated (default {DEFAULT_POLICIES})")
    parser.add_argument("--hours", type=positive_float, default=24.0, help="simulated hours (default 24)")
    parser.add_argument(
        "--fleet-scale",
        type=positive_float,
        default=50.0,
        help="multiply the trace's load to reach a large fleet (default 50)",
    )
    parser.add_argument(
        "--time-scale",
        type=positive_float,
        default=1.0,
        help=">1 compresses the trace in time, <1 stretches it (default 1)",
    )
    parser.add_argument(
        "--diurnal",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="shape load with a day curve (default: on when --hours exceeds the trace)",
    )
    parser.add_argument("--prefill-gpus", default="L20,H20", help="prefill GPU types by preference (default L20,H20)")
    parser.add_argument("--decode-gpus", default="H20", help="decode GPU types by preference (default H20)")
    parser.add_argument("--tbt-slo", type=positive_float, default=0.05, help="TBT SLO in seconds (default 0.05)")
    parser.add_argument("--step", type=float, default=5.0, help="time step in seconds, 1 to 5 (default 5)")
    parser.add_argument(
        "--ratio-rule",
        choices=("stress", "quantile"),
        default="stress",
        help="how the fixed P/D ratio is set: the stress test's best goodput per GPU (default, the paper's) "
        "or the 99%% quantile of the per-window need",
    )
    parser.add_argument(
        "--burst",
        metavar="HOUR,MINUTES,FACTOR[,RAMP]",
        help="a surge: from HOUR (clock time) the trace plays up to FACTOR times faster for MINUTES, "
        "reached and left over RAMP minutes (default 0, a step); e.g. 14,20,3,5 triples the load within "
        "5 minutes from 14:00",
    )
    parser.add_argument(
        "--fast-loader",
        action="store_true",
        help="new instances load weights over RDMA from running ones (BlitzScale-style) instead of from disk",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="directory for PNG plots")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heteroscale.simulate import workload as wl
    from heteroscale.simulate.engine import EngineConfig
    from heteroscale.simulate.perfmodel import ModelSpec, Startup, load_gpu_perf
    from heteroscale.simulate.report import table, write_json
    from heteroscale.simulate.service import Slo
    from heteroscale.simulate.stresstest import derive
    from heteroscale.simulate.study import hpa_level, run_study

    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = sorted(p for p in set(policies) - set(POLICIES) if not p.startswith("hpa-util@"))
    if not policies or unknown:
        raise UserInputError(
            f"unknown policies {unknown}; choose from {', '.join(POLICIES)} (or hpa-util@LEVEL, LEVEL in (0, 1])"
        )
    for name in policies:
        if name.startswith("hpa-util@"):
            try:
                hpa_level(name)
            except ValueError as exc:
                raise UserInputError(str(exc)) from None
    if not 1.0 <= args.step <= 5.0:
        raise UserInputError("--step must be between 1 and 5 seconds")
    perf = load_gpu_perf()
    prefill_gpus = [g.strip() for g in args.prefill_gpus.split(",") if g.strip()]
    decode_gpus = [g.strip() for g in args.decode_gpus.split(",") if g.strip()]
    missing = sorted(set(prefill_gpus + decode_gpus) - set(perf))
    if missing or not prefill_gpus or not decode_gpus:
        raise UserInputError(f"unknown GPU types {missing}; known: {', '.join(perf)}")
    surge = _burst(args.burst)
    burst = wl.Burst(*surge) if surge is not None else wl.NO_BURST
    try:
        base = wl.load(args.trace)
        diurnal = args.diurnal if args.diurnal is not None else args.hours * 3600 > base.duration_s / args.time_scale
        workload = wl.scale(
            base,
            hours=args.hours,
            fleet_scale=args.fleet_scale,
            time_scale=args.time_scale,
            diurnal=diurnal,
            seed=args.seed,
            burst=burst,
        )
        service = derive(
            workload,
            perf,
            prefill_gpus=prefill_gpus,
            decode_gpus=decode_gpus,
            slo=Slo(tbt_s=args.tbt_slo),
            model=ModelSpec(),
            gpus_per_instance=8,
            startup=Startup(fast_loader=args.fast_loader),
            ratio_rule=args.ratio_rule,
            config=EngineConfig(dt=args.step),
        )
    except (ValueError, FileNotFoundError) as exc:
        raise UserInputError(str(exc)) from None
    config = EngineConfig(dt=args.step)
    progress = Bar(disabled=args.no_progress)
    try:
        study = run_study(workload, service, policies, config, progress=progress)
    finally:
        progress.close()
    print(
        f"trace {args.trace}: {args.hours:g} h, fleet scale {args.fleet_scale:g}, "
        f"diurnal {'on' if diurnal else 'off'}; "
        f"P/D ratio {service.ratio[0]}:{service.ratio[1]}, static peak {sum(service.static_peak)} instances"
    )
    print(table(study))
    if args.json:
        write_json(study, args.json)
    if args.out:
        from heteroscale.simulate.plots import write_plots

        for path in write_plots(study, args.out):
            print(f"wrote {path}")
    return 0


def _burst(text: str | None) -> tuple[float, float, float, float] | None:
    """``--burst HOUR,MINUTES,FACTOR[,RAMP]`` as (start s, duration s, factor, ramp s), with the
    fix in the error."""
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (3, 4):
        raise UserInputError(f"--burst {text!r}: give HOUR,MINUTES,FACTOR[,RAMP], e.g. 14,20,3,5")
    hour, minutes, factor, ramp = (*values, 0.0)[:4]
    if not (0 <= hour < 24 and minutes > 0 and factor >= 1 and ramp >= 0):
        raise UserInputError(
            f"--burst {text!r}: HOUR must be in [0, 24), MINUTES > 0, FACTOR >= 1 and RAMP >= 0 (minutes)"
        )
    return hour * 3600.0, minutes * 60.0, factor, ramp * 60.0
