"""`heteroscale simulate`: replay a trace against HeteroScale and the baselines, report and plot."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from heteroscale.commands.arguments import positive_float, positive_int
from heteroscale.commands.errors import UserInputError
from heteroscale.commands.output import is_stdout, make_folder, write_json
from heteroscale.commands.progress import Bar
from heteroscale.cores import available_cores
from heteroscale.curate import BREADTH
from heteroscale.simulate.catalog import DEFAULT_POLICIES as DEFAULTS
from heteroscale.simulate.catalog import POLICIES

if TYPE_CHECKING:
    from heteroscale.simulate.service import Service
    from heteroscale.simulate.specpatch import SpecPatch

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
        "--quiet",
        metavar="HOUR,HOURS[,RAMP]",
        help="no user online from HOUR (clock time) for HOURS, logging off and back on over RAMP hours "
        "(default 1) either side; e.g. 1,4 for a night off from 01:00 to 05:00 (a day with an idle stretch)",
    )
    parser.add_argument(
        "--spec-patch",
        metavar="NAME|FILE[,...]",
        help="also run HeteroScale with this spec YAML merged into its simulated spec (e.g. schedules, "
        "behavior.scaleToZero), as the lane heteroscale+NAME; bundled: scale-to-zero, night-off",
    )
    parser.add_argument(
        "--fast-loader",
        action="store_true",
        help="new instances load weights over RDMA from running ones (BlitzScale-style) instead of from disk",
    )
    parser.add_argument(
        "--holdout",
        action="store_true",
        help="a held-out evaluation: curate HeteroScale's spec (as heteroscale curate does) on a day built from "
        "the trace's first half, then run every policy and the curated spec (lane heteroscale-curated) on a day "
        "built from its second half; ratio, targets and static peak come from the first half, the cluster is sized "
        "for the second. "
        "--burst and --quiet shape the second day only. Adds the curation's minutes",
    )
    parser.add_argument(
        "--candidates",
        type=positive_int,
        help=f"with --holdout: curation's first-round candidates, the defaults among them (default {BREADTH})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="directory for PNG plots (created when missing)")
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="write the results as JSON to this file; - for stdout alone"
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        help="processes: with 2 or more the oracle's search runs beside the policies (default: the cores this "
        "process may use)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heteroscale.curate.report import training_document, training_lines
    from heteroscale.simulate import workload as wl
    from heteroscale.simulate.engine import EngineConfig
    from heteroscale.simulate.inventory import simulated_inventory
    from heteroscale.simulate.perfmodel import ModelSpec, Startup, load_gpu_perf
    from heteroscale.simulate.report import document, table
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
    if args.candidates is not None and not args.holdout:
        raise UserInputError("--candidates sets the held-out evaluation's curation: add --holdout, or drop it")
    if not 1.0 <= args.step <= 5.0:
        raise UserInputError("--step must be between 1 and 5 seconds")
    if args.out:
        make_folder(args.out, "--out")  # before the simulation, not after it
    perf = load_gpu_perf()
    prefill_gpus = [g.strip() for g in args.prefill_gpus.split(",") if g.strip()]
    decode_gpus = [g.strip() for g in args.decode_gpus.split(",") if g.strip()]
    missing = sorted(set(prefill_gpus + decode_gpus) - set(perf))
    if missing or not prefill_gpus or not decode_gpus:
        raise UserInputError(f"unknown GPU types {missing}; known: {', '.join(perf)}")
    surge = _burst(args.burst)
    burst = wl.Burst(*surge) if surge is not None else wl.NO_BURST
    night = _quiet(args.quiet)
    quiet = wl.Quiet(*night) if night is not None else None
    try:
        base = wl.load(args.trace)
        train_base, test_base = wl.halves(base) if args.holdout else (base, base)
        diurnal = (
            args.diurnal if args.diurnal is not None else args.hours * 3600 > test_base.duration_s / args.time_scale
        )
        day = functools.partial(
            wl.scale,
            hours=args.hours,
            fleet_scale=args.fleet_scale,
            time_scale=args.time_scale,
            diurnal=diurnal,
            seed=args.seed,
        )
        workload = day(test_base, burst=burst, quiet=quiet)
        # A spec is chosen on an ordinary day: nobody curates on a surge they have not seen yet.
        train = day(train_base) if args.holdout else workload
        stress = functools.partial(
            derive,
            perf=perf,
            prefill_gpus=prefill_gpus,
            decode_gpus=decode_gpus,
            slo=Slo(tbt_s=args.tbt_slo),
            model=ModelSpec(),
            gpus_per_instance=8,
            startup=Startup(fast_loader=args.fast_loader),
            ratio_rule=args.ratio_rule,
            config=EngineConfig(dt=args.step),
        )
        service = stress(train)
        # The cluster is the environment, sized for the day it serves, as in every study.
        inventory = simulated_inventory(stress(workload)) if args.holdout else None
    except (ValueError, FileNotFoundError) as exc:
        raise UserInputError(str(exc)) from None
    config = EngineConfig(dt=args.step)
    patches = _patches(args.spec_patch, service, config.interval_s)
    workers = args.workers or available_cores()
    progress = Bar(disabled=args.no_progress)
    try:
        if args.holdout:
            from heteroscale.curate.holdout import held_out

            assert inventory is not None  # sized above for the held-out day
            meter = Bar.candidates(disabled=args.no_progress)
            try:
                evaluation = held_out(
                    train,
                    workload,
                    service,
                    inventory,
                    config,
                    policies,
                    candidates=args.candidates or BREADTH,
                    seed=args.seed,
                    workers=workers,
                    meter=meter,
                    progress=progress,
                    patches=patches,
                )
            finally:
                meter.close()
            study, curation = evaluation.study, evaluation.curation
        else:
            study = run_study(workload, service, policies, config, progress=progress, patches=patches, workers=workers)
            curation = None
    finally:
        progress.close()
    # With the JSON on stdout, the table goes to stderr: stdout holds the JSON alone.
    say = functools.partial(print, file=sys.stderr if is_stdout(args.json) else sys.stdout)
    say(
        f"trace {workload.name}: {args.hours:g} h, fleet scale {args.fleet_scale:g}, "
        f"diurnal {'on' if diurnal else 'off'}; "
        f"P/D ratio {service.ratio[0]}:{service.ratio[1]}, static peak {sum(service.static_peak)} instances"
        + (f" (from the stress test on {train.name})" if args.holdout else "")
    )
    if curation is not None:
        for line in training_lines(curation, train.name):
            say(line)
    say(table(study))
    if args.json:
        extra = {"holdout": training_document(curation, train.name)} if curation is not None else {}
        write_json(args.json, document(study) | extra)
    if args.out:
        from heteroscale.simulate.plots import write_plots

        for path in write_plots(study, args.out):
            say(f"wrote {path}")
    return 0


def _numbers(flag: str, text: str, shape: str, counts: tuple[int, ...]) -> list[float]:
    """Comma-separated numbers of a flag (as many as one of ``counts``), with the fix in the error."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in counts:
        raise UserInputError(f"{flag} {text!r}: give {shape}")
    return values


def _burst(text: str | None) -> tuple[float, float, float, float] | None:
    """``--burst HOUR,MINUTES,FACTOR[,RAMP]`` as (start s, duration s, factor, ramp s), with the
    fix in the error."""
    if text is None:
        return None
    values = _numbers("--burst", text, "HOUR,MINUTES,FACTOR[,RAMP], e.g. 14,20,3,5", (3, 4))
    hour, minutes, factor, ramp = (*values, 0.0)[:4]
    if not (0 <= hour < 24 and minutes > 0 and factor >= 1 and ramp >= 0):
        raise UserInputError(
            f"--burst {text!r}: HOUR must be in [0, 24), MINUTES > 0, FACTOR >= 1 and RAMP >= 0 (minutes)"
        )
    return hour * 3600.0, minutes * 60.0, factor, ramp * 60.0


def _quiet(text: str | None) -> tuple[float, float, float] | None:
    """``--quiet HOUR,HOURS[,RAMP]`` as (start hour, hours, ramp hours), with the fix in the error."""
    if text is None:
        return None
    values = _numbers("--quiet", text, "HOUR,HOURS[,RAMP], e.g. 1,4 for 01:00 to 05:00", (2, 3))
    hour, hours, ramp = (*values, 1.0)[:3]
    if not (0 <= hour < 24 and hours > 0 and ramp >= 0 and hours + 2 * ramp <= 24):
        raise UserInputError(
            f"--quiet {text!r}: HOUR must be in [0, 24), HOURS > 0, RAMP >= 0, and HOURS + 2 x RAMP at most 24"
        )
    return hour, hours, ramp


def _patches(text: str | None, service: Service, interval_s: float) -> list[SpecPatch]:
    """``--spec-patch`` as patches, each checked by the real spec model on the simulated spec."""
    from pydantic import ValidationError

    from heteroscale.api.errors import describe
    from heteroscale.api.spec import PDServingGroupSpec
    from heteroscale.simulate import specpatch
    from heteroscale.simulate.service import spec_document

    if not text:
        return []
    patches = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        try:
            patch = specpatch.load(item)
        except (ValueError, FileNotFoundError) as exc:
            raise UserInputError(str(exc)) from None
        try:
            PDServingGroupSpec.model_validate(patch.applied(spec_document(service, interval_s)))
        except ValidationError as exc:
            problems = "; ".join(describe(exc))
            raise UserInputError(f"--spec-patch {item!r} makes an invalid spec: {problems}") from None
        patches.append(patch)
    if len({p.lane for p in patches}) != len(patches):
        raise UserInputError(f"--spec-patch {text!r}: two patches have the same name")
    return patches
