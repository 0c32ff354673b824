"""docs/reference/cli.md: every command and flag, from the argparse parser ``heteroscale`` runs.

Rendered from the parser's actions rather than from ``--help``, whose layout depends on the
terminal's width and on the Python version's argparse.
"""

from __future__ import annotations

import argparse

from heteroscale.commands.parser import HelpFormatter, build_parser
from heteroscale.reference import notice


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found |= action.choices
    return found


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else action.dest.upper()
    return f"`{metavar}`"


def _default(action: argparse.Action) -> str:
    if action.default in (None, False, "", [], argparse.SUPPRESS) or action.required:
        return "required" if action.required else ""
    return f"`{action.default}`"


def _help(action: argparse.Action) -> str:
    text = (action.help or "") % {"default": action.default}
    return " ".join(text.replace("|", "\\|").split())


def _options(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
        rows.append(f"| {flags} | {_value(action)} | {_default(action)} | {_help(action)} |")
    return rows


def _section(name: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} `heteroscale {name}`", " ".join((parser.description or "").split())]
    options = _options(parser)
    if options:
        lines.append("\n".join(["| flag | value | default | description |", "|---|---|---|---|", *options]))
    for sub, subparser in _commands(parser).items():
        lines += _section(f"{name} {sub}", subparser, level + 1)
    return lines


def _first_sentence(text: str) -> str:
    return " ".join(text.split()).split(". ")[0].rstrip(".") + "."


def page() -> str:
    parser = build_parser()
    assert parser.formatter_class is HelpFormatter  # the terminal shows the same defaults
    summary = [
        "| command | what it does |",
        "|---|---|",
        *(
            f"| [`{name}`](#heteroscale-{name}) | {_first_sentence(sub.description or '')} |"
            for name, sub in _commands(parser).items()
        ),
    ]
    sections = [line for name, sub in _commands(parser).items() for line in _section(name, sub, 2)]
    return (
        "\n\n".join(
            [
                "# Command line reference",
                notice("the argparse parser"),
                "`heteroscale COMMAND [flags]`; `heteroscale COMMAND --help` prints the same. A mistake in a flag "
                "or a file is one line on stderr and exit status 2; `plan` exits 1 when instances are "
                "unschedulable.",
                "\n".join(summary),
                *sections,
            ]
        )
        + "\n"
    )
