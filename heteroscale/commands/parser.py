"""The ``heteroscale`` argument parser: every command, discovered, with one error style.

Each subcommand lives in its own module under :mod:`heteroscale.commands` and exposes
``register(subparsers)``; modules are discovered, so adding a command never touches this file
(the package's other modules, shared by the commands, have no ``register``). Command modules
import their heavy dependencies (kopf, numpy, matplotlib) inside the handler, so
``heteroscale --help`` stays fast and works without a cluster. docs/reference/cli.md is generated
from this parser.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Sequence
from typing import NoReturn

from heteroscale import __version__, commands


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default, unless its help already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, "", [], argparse.SUPPRESS)
            and "default" not in text
            and "%(default)" not in text
        ):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse with defaults in --help and one line, not the whole usage, on a bad flag."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        # argparse reports a misspelt flag from the top parser ("heteroscale: error"); the command's
        # own parser names the command and its --help.
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            command = self._commands.get(getattr(parsed, "command", ""), self)
            command.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed

    @property
    def _commands(self) -> dict[str, argparse.ArgumentParser]:
        actions = self._subparsers._group_actions if self._subparsers else []
        return {name: sub for action in actions for name, sub in getattr(action, "choices", {}).items()}


def build_parser() -> Parser:
    parser = Parser(
        prog="heteroscale",
        description="Coordinated prefill/decode autoscaling for disaggregated LLM serving.",
    )
    parser.add_argument("--version", action="version", version=f"heteroscale {__version__}")
    # Subparsers are built by the parent's class, so every command gets Parser's behaviour.
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):
            module.register(subparsers)
    return parser
