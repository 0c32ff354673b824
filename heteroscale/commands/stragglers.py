"""`heteroscale stragglers analyze|serve`: what-if straggler analysis of a training trace."""

from __future__ import annotations

import argparse
import functools
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heteroscale.commands.arguments import positive_int

if TYPE_CHECKING:
    from heteroscale.stragglers.analysis import Analysis


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stragglers",
        help="what-if straggler analysis of an LLM training trace",
        description=("Replay a per-operation training trace with and without stragglers and say why it is slow."),
    )
    commands = parser.add_subparsers(dest="stragglers_command", metavar="ACTION", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--trace",
            type=Path,
            required=True,
            help="Parquet trace, or a folder of per-rank PyTorch profiler JSON traces",
        )
        sub.add_argument("--meta", type=Path, required=True, help="job metadata YAML (dp_size, pp_size, ...)")
        sub.add_argument(
            "--workers",
            type=positive_int,
            help="processes that analyse a Parquet trace's chunks of steps in parallel (default: one per core)",
        )

    analyze = commands.add_parser("analyze", help="print a report; optionally write JSON and a heatmap")
    common(analyze)
    analyze.add_argument(
        "--json", type=Path, metavar="FILE", help="write the full result as JSON here; - for stdout alone"
    )
    analyze.add_argument("--heatmap", type=Path, help="write the DP x PP worker-slowdown heatmap (PNG) here")
    analyze.set_defaults(func=_analyze)

    serve = commands.add_parser("serve", help="expose job, step and worker slowdown as Prometheus metrics")
    common(serve)
    serve.add_argument("--port", type=int, default=9464, help="HTTP port for /metrics (default 9464)")
    serve.add_argument("--address", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    serve.add_argument("--slow-nodes", type=Path, help="write the nodes placement should use last (JSON)")
    serve.set_defaults(func=_serve)


def _load(args: argparse.Namespace) -> Analysis:
    from heteroscale.commands.errors import UserInputError
    from heteroscale.stragglers.analysis import analyze
    from heteroscale.stragglers.streaming import analyze_parquet
    from heteroscale.stragglers.trace import TraceError
    from heteroscale.stragglers.trace_io import load_meta, load_trace

    for label, path in (("trace", args.trace), ("metadata", args.meta)):
        if not path.exists():
            raise UserInputError(f"{label} {path} does not exist")
    try:
        meta = load_meta(args.meta)
        if args.trace.is_dir():
            return analyze(load_trace(args.trace, meta), meta)
        return analyze_parquet(args.trace, meta, workers=args.workers)
    except TraceError as exc:
        raise UserInputError(str(exc)) from exc


def _analyze(args: argparse.Namespace) -> int:
    from heteroscale.commands.output import is_stdout, make_folder, write_json
    from heteroscale.stragglers.report import render_text, to_json

    analysis = _load(args)
    # With the JSON on stdout, the report goes to stderr: stdout holds the JSON alone.
    say = functools.partial(print, file=sys.stderr if is_stdout(args.json) else sys.stdout)
    say(render_text(analysis), end="")
    if args.json:
        write_json(args.json, to_json(analysis))
        if not is_stdout(args.json):
            say(f"JSON written to {args.json}")
    if args.heatmap:
        from heteroscale.stragglers.heatmap import write_heatmap

        make_folder(args.heatmap.parent, "--heatmap")
        write_heatmap(analysis, args.heatmap)
        say(f"heatmap written to {args.heatmap}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from heteroscale.stragglers.exporter import build_registry, serve, write_slow_nodes

    analysis = _load(args)
    if args.slow_nodes:
        nodes = write_slow_nodes([analysis], args.slow_nodes)
        print(f"slow nodes ({len(nodes)}) written to {args.slow_nodes}", flush=True)
    server, _ = serve(build_registry([analysis]), args.port, args.address)
    print(
        f"serving straggler metrics of {analysis.meta.name} (S = {analysis.replay.slowdown:.3f}) on "
        f"http://{args.address}:{server.server_port}/metrics",
        flush=True,
    )
    threading.Event().wait()
    return 0
