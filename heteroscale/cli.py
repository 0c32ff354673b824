"""`heteroscale ...` entry point.

Each subcommand lives in its own module under :mod:`heteroscale.commands` and exposes
``register(subparsers)``; modules are discovered, so adding a command never touches this file.
Command modules import their heavy dependencies (kopf, matplotlib) inside the handler, so
``heteroscale --help`` stays fast and works without a cluster.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from heteroscale import __version__, commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heteroscale",
        description="Coordinated prefill/decode autoscaling for disaggregated LLM serving.",
    )
    parser.add_argument("--version", action="version", version=f"heteroscale {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except UserInputError as exc:
        print(f"heteroscale {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return result


class UserInputError(Exception):
    """A problem with what the user gave us (a file, a flag): printed without a traceback."""


if __name__ == "__main__":
    raise SystemExit(main())
