"""`heteroscale curate`: find a service's scaling policy by simulation and write it as a DryRun group."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from heteroscale.commands.arguments import non_negative_int, positive_float, positive_int
from heteroscale.commands.errors import UserInputError
from heteroscale.commands.inputs import read_group
from heteroscale.commands.output import is_stdout, write_json, write_text
from heteroscale.commands.progress import Bar
from heteroscale.cores import available_cores
from heteroscale.curate import BREADTH

if TYPE_CHECKING:
    from heteroscale.api.config import PrometheusEndpoint
    from heteroscale.api.enums import Engine
    from heteroscale.api.manifest import Manifest
    from heteroscale.curate.profile import History
    from heteroscale.simulate.workload import Workload

PROMETHEUS = "prometheus"
DEFAULT_HISTORY_S = 24 * 3600
#: GPUs per instance of the simulated model (Llama-3.1-70B on one 8-GPU node per instance).
GPUS_PER_INSTANCE = 8


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "curate",
        help="find a service's scaling policy by simulation and write it as a DryRun PDServingGroup",
        description=(
            "Stress-test the service under its workload (P/D ratio, per-GPU-type decode targets), simulate "
            "candidate scaling policies on that workload, and write the one with the fewest GPU-hours at the SLO "
            "as a PDServingGroup in DryRun, with a report comparing it with the defaults, HPA and the oracle."
        ),
    )
    source = parser.add_argument_group("workload")
    source.add_argument(
        "--workload",
        required=True,
        metavar="SOURCE",
        help="azure-conv, azure-code, mooncake, a trace file (Azure .csv or Mooncake .jsonl, optionally .gz), "
        "or 'prometheus' for the service's own history",
    )
    source.add_argument("--hours", type=positive_float, default=24.0, help="trace: simulated hours (default 24)")
    source.add_argument(
        "--fleet-scale", type=positive_float, default=50.0, help="trace: multiply its load (default 50)"
    )
    source.add_argument(
        "--time-scale", type=positive_float, default=1.0, help="trace: >1 compresses it in time (default 1)"
    )
    source.add_argument(
        "--diurnal",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="trace: shape load with a day curve (default: on when --hours exceeds the trace)",
    )
    source.add_argument(
        "--start-hour", type=float, default=0.0, help="trace: the day's clock hour the workload starts at (default 0)"
    )
    history = parser.add_argument_group("prometheus history (--workload prometheus)")
    history.add_argument("--config", type=Path, help="the operator's configuration file (its Prometheus endpoints)")
    history.add_argument("--endpoint", default="default", help="the configured endpoint to read")
    history.add_argument(
        "--prometheus-url",
        help="a Prometheus you reach yourself (a port-forward) instead of --config: a one-endpoint configuration "
        "is built in memory for --namespace only, without CA or token; queries stay scoped to the namespace",
    )
    history.add_argument("--namespace", help="the service's namespace (also the output's metadata.namespace)")
    history.add_argument(
        "--deployments",
        help="comma-separated Deployments whose pods see each request whole: the decode Deployments of a P/D service",
    )
    history.add_argument("--engine", choices=("vllm", "sglang"), default="vllm", help="the engine's metric names")
    history.add_argument("--start", help="start of the history: RFC 3339 or Unix seconds (default: --end - 24h)")
    history.add_argument("--end", help="end of the history: RFC 3339 or Unix seconds (default: now)")
    history.add_argument("--resolution", type=non_negative_int, default=60, help="seconds per step of the request rate")
    service = parser.add_argument_group("service")
    service.add_argument("--prefill-gpus", help="prefill GPU types by preference (default L20,H20, or the --group's)")
    service.add_argument("--decode-gpus", help="decode GPU types by preference (default H20, or the --group's)")
    service.add_argument("--tbt-slo", type=positive_float, default=0.05, help="TBT SLO in seconds (default 0.05)")
    service.add_argument(
        "--attainment",
        type=positive_float,
        default=0.99,
        help="share of requests that must meet their TTFT and TBT SLOs (default 0.99)",
    )
    search = parser.add_argument_group("search")
    search.add_argument(
        "--candidates",
        type=non_negative_int,
        default=BREADTH,
        help=f"first-round candidates, the defaults among them; the second round adds up to 29 (default {BREADTH})",
    )
    search.add_argument(
        "--workers", type=positive_int, help="worker processes (default: the cores this process may use)"
    )
    search.add_argument("--seed", type=int, default=0, help="seed of the search and the workload (default 0)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, required=True, help="the PDServingGroup YAML to write ('-': stdout)")
    output.add_argument("--report", type=Path, help="directory for report.json, report.md and PNGs")
    output.add_argument(
        "--group",
        type=Path,
        help="a PDServingGroup to start from: the curated fields are replaced, the rest kept (its roles, topology, "
        "priority; its metric engine and endpoint unless read from --workload prometheus)",
    )
    output.add_argument("--name", help="metadata.name of the output (default: the --group's, else 'curated')")
    output.add_argument(
        "--holdout",
        metavar="SOURCE",
        help="a trace (as --workload) to replay the curated spec and the defaults on, with the same scaling flags, "
        "on a simulated cluster sized for it",
    )
    output.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heteroscale.api.enums import Role
    from heteroscale.curate import evaluate, manifest
    from heteroscale.curate.curation import curate, replay
    from heteroscale.curate.report import Holdout, document, summary_lines
    from heteroscale.simulate.engine import EngineConfig
    from heteroscale.simulate.inventory import simulated_inventory
    from heteroscale.simulate.perfmodel import ModelSpec, load_gpu_perf
    from heteroscale.simulate.service import Slo
    from heteroscale.simulate.stresstest import derive

    _check_flags(args)
    group = read_group(args.group) if args.group is not None else None
    prefill_gpus = _gpus(args.prefill_gpus, group, "prefill", ["L20", "H20"])
    decode_gpus = _gpus(args.decode_gpus, group, "decode", ["H20"])
    perf = load_gpu_perf()
    missing = sorted(set(prefill_gpus + decode_gpus) - set(perf))
    if missing:
        raise UserInputError(f"unknown GPU types {missing}; known: {', '.join(perf)}")
    if group is not None:
        try:
            manifest.check_group(group.spec, {Role.PREFILL: prefill_gpus, Role.DECODE: decode_gpus}, GPUS_PER_INSTANCE)
        except ValueError as exc:
            raise UserInputError(f"{args.group}: {exc}") from None
    say = _printer(args)
    config = EngineConfig()
    workload, source, notes = _workload(args)
    held = _trace_workload(args, args.holdout) if args.holdout is not None else None
    say(f"workload {source}: {workload.duration_s / 3600:g} h, {float(workload.weight.sum()):,.0f} requests")
    stress = functools.partial(
        derive,
        perf=perf,
        prefill_gpus=prefill_gpus,
        decode_gpus=decode_gpus,
        slo=Slo(tbt_s=args.tbt_slo, attainment=args.attainment),
        model=ModelSpec(),
        gpus_per_instance=GPUS_PER_INSTANCE,
        config=config,
    )
    try:
        say("stress test: P/D ratio and per-instance targets at the SLO ...")
        service = stress(workload)
        # The held-out replay's cluster is the environment, sized for the trace it serves (as
        # `simulate --holdout` sizes it): sized for the curated trace, a heavier held-out trace
        # would measure the cluster, not the spec.
        held_cluster = simulated_inventory(stress(held)) if held is not None else None
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    say(f"P/D ratio {service.ratio[0]}:{service.ratio[1]}, static peak {sum(service.static_peak)} instances")
    if service.ratio_warning:
        say(f"warning: {service.ratio_warning}")
    at = evaluate.setting(workload, service, config)
    meter = Bar.candidates(disabled=args.no_progress)
    started = time.perf_counter()
    try:
        curation = curate(at, candidates=args.candidates, seed=args.seed, workers=args.workers, meter=meter)
    finally:
        meter.close()
    say(f"{len(curation.evaluated)} candidates in {time.perf_counter() - started:.0f} s")

    name = args.name or (group.name if group is not None else "curated")
    namespace = args.namespace or (group.namespace if group is not None else "default")
    engine, endpoint = _engine_endpoint(args)
    spec = manifest.manifest(
        curation.choice.document, name=name, namespace=namespace, engine=engine, endpoint=endpoint, group=group
    )
    if group is None:
        notes = (
            *notes,
            "roles.*.template is the simulator's placeholder (vLLM, Llama-3.1-70B): replace it, or "
            "curate again with --group your-group.yaml",
        )

    holdout = None
    if held is not None:
        assert held_cluster is not None  # sized with the stress test above
        curated_score, default_score = replay(
            evaluate.setting(held, service, config),
            [curation.choice.document, curation.defaults.document],
            held_cluster,
        )
        holdout = Holdout(args.holdout, curated_score, default_score)

    _write_spec(args.out, spec, source, args.seed)
    for line in summary_lines(curation, holdout):
        say(line)
    if args.report is not None:
        report = document(
            curation, service, workload, source=source, seed=args.seed, spec=spec, holdout=holdout, notes=notes
        )
        _write_report(args.report, report, curation, service, say)
    if not curation.choice.score.meets(service.slo.attainment):
        say(
            f"no candidate met {service.slo.attainment:.0%} SLO attainment: {args.out} holds the closest one; "
            "do not apply it (check the GPU types and the SLO, or add capacity)"
        )
        return 1
    if not curation.choice.score.assured(service.slo.attainment):
        say(
            f"the chosen spec meets {service.slo.attainment:.0%} SLO attainment on this workload, but not with 95% "
            "confidence over its hours: a longer or busier workload would tell more before applying it"
        )
    say(f"wrote {args.out} (mode DryRun: its decisions go to status only; set mode: Enforce once they look right)")
    return 0


def _write_report(
    folder: Path, report: dict[str, Any], curation: Any, service: Any, say: Callable[[str], None]
) -> None:
    from heteroscale.curate.plots import write_plots
    from heteroscale.curate.report import markdown

    write_json(folder / "report.json", report, "--report")
    write_text(folder / "report.md", markdown(report), "--report")
    for path in write_plots(curation, service, folder):
        say(f"wrote {path}")
    say(f"wrote {folder / 'report.json'} and {folder / 'report.md'}")


def _check_flags(args: argparse.Namespace) -> None:
    if args.candidates < 1:
        raise UserInputError("--candidates must be at least 1 (the defaults)")
    if args.workers is None:
        args.workers = available_cores()
    if not 0 < args.attainment <= 1:
        raise UserInputError(f"--attainment must be in (0, 1], got {args.attainment}")
    if not 0 <= args.start_hour < 24:
        raise UserInputError(f"--start-hour must be in [0, 24), got {args.start_hour}")
    if args.workload != PROMETHEUS:
        given = [flag for flag in ("config", "prometheus_url", "deployments", "start", "end") if getattr(args, flag)]
        if given:
            flags = ", ".join("--" + flag.replace("_", "-") for flag in given)
            raise UserInputError(f"{flags} read a Prometheus history: use them with --workload prometheus")


def _gpus(flag: str | None, group: Manifest | None, role: str, default: list[str]) -> list[str]:
    if flag is not None:
        types = [g.strip() for g in flag.split(",") if g.strip()]
        if not types:
            raise UserInputError(f"--{role}-gpus names no GPU type")
        return types
    if group is not None:
        return list(group.spec.roles.prefill.gpu_types if role == "prefill" else group.spec.roles.decode.gpu_types)
    return default


def _engine_endpoint(args: argparse.Namespace) -> tuple[Engine | None, str | None]:
    """The output's metric engine and endpoint when the history was read from Prometheus (None:
    keep the group's, or the default)."""
    from heteroscale.api.enums import Engine

    if args.workload != PROMETHEUS:
        return None, None
    # A --prometheus-url is not one of the admin's endpoints: keep the group's (or the default) name.
    return Engine(args.engine), None if args.prometheus_url else args.endpoint


def _workload(args: argparse.Namespace) -> tuple[Workload, str, tuple[str, ...]]:
    if args.workload != PROMETHEUS:
        return _trace_workload(args, args.workload), args.workload, ()
    from heteroscale.curate.profile import to_workload

    history = _history(args)
    notes: tuple[str, ...] = (
        "workload from Prometheus: Poisson arrivals at the measured rate per step; prompt and generation "
        "lengths drawn independently from their histograms; no prefix-cache hits (every prompt token computed)",
    )
    if history.missing_steps:
        notes = (*notes, f"{history.missing_steps} of {history.rate.size} steps had no sample: counted as no requests")
    if history.prompt.beyond() > 0 or history.generation.beyond() > 0:
        notes = (*notes, "some lengths were above the histograms' largest bucket: put at that bound")
    try:
        workload = to_workload(history, args.seed)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    source = f"prometheus {history.name}, {_iso(history.start_s)} + {history.duration_s / 3600:g} h"
    return workload, source, notes


def _trace_workload(args: argparse.Namespace, trace: str) -> Workload:
    from heteroscale.simulate import workload as wl

    try:
        base = wl.load(trace)
        diurnal = args.diurnal if args.diurnal is not None else args.hours * 3600 > base.duration_s / args.time_scale
        return wl.scale(
            base,
            hours=args.hours,
            fleet_scale=args.fleet_scale,
            time_scale=args.time_scale,
            diurnal=diurnal,
            start_hour=args.start_hour,
            seed=args.seed,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise UserInputError(str(exc)) from None


def _history(args: argparse.Namespace) -> History:
    from heteroscale.api.enums import Engine
    from heteroscale.curate.history import read_history
    from heteroscale.metrics.queries import Scope

    if not args.namespace:
        raise UserInputError("--workload prometheus needs --namespace (the service's namespace)")
    deployments = [d.strip() for d in (args.deployments or "").split(",") if d.strip()]
    if not deployments:
        raise UserInputError("--workload prometheus needs --deployments (the decode Deployments of the service)")
    if args.resolution < 1:
        raise UserInputError("--resolution must be at least 1 second")
    endpoint = _endpoint(args)
    end = _time(args.end, "--end") if args.end else time.time()
    start = _time(args.start, "--start") if args.start else end - DEFAULT_HISTORY_S
    scope = Scope(args.namespace, endpoint.namespace_label)
    try:
        return read_history(endpoint, scope, Engine(args.engine), deployments, start, end, args.resolution)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None


def _endpoint(args: argparse.Namespace) -> PrometheusEndpoint:
    """The endpoint the operator would use for --namespace: resolved through its configuration."""
    from pydantic import ValidationError

    from heteroscale.api.config import OperatorConfig, PrometheusEndpoint, load_config

    if (args.config is None) == (args.prometheus_url is None):
        raise UserInputError(
            "--workload prometheus needs exactly one of --config FILE (the operator's configuration, with "
            "--endpoint NAME) and --prometheus-url URL (a Prometheus you reach yourself)"
        )
    try:
        if args.prometheus_url is not None:
            try:
                local = PrometheusEndpoint(url=args.prometheus_url, namespaces=(args.namespace,))
            except ValidationError:
                raise ValueError(f"--prometheus-url {args.prometheus_url!r} is not an http(s) URL") from None
            config = OperatorConfig(prometheus_endpoints={args.endpoint: local})
        else:
            config = load_config(args.config)
        return config.endpoint_for(args.endpoint, args.namespace)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None


def _time(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserInputError(f"{flag} {text!r}: give RFC 3339 (2025-01-31T00:00:00Z) or Unix seconds") from None
    if moment.tzinfo is None:
        raise UserInputError(f"{flag} {text!r}: give a time zone, e.g. 2025-01-31T00:00:00Z")
    return moment.timestamp()


def _iso(unix_s: float) -> str:
    from datetime import UTC

    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_spec(target: Path, spec: dict[str, Any], source: str, seed: int) -> None:
    header = (
        f"# Curated by `heteroscale curate` from {source} (seed {seed}). mode: DryRun: its decisions go to\n"
        "# status and Events only (kubectl describe pdsg); set mode: Enforce once they look right.\n"
    )
    write_text(target, header + yaml.safe_dump(spec, sort_keys=False), "--out")


def _printer(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress lines go to stderr when the spec goes to stdout."""
    stream = sys.stderr if is_stdout(args.out) else sys.stdout

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return say
