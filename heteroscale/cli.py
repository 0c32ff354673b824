"""`heteroscale ...` entry point: parse (:mod:`heteroscale.commands.parser`), run, report.

Every mistake a user can make ends in one line on stderr and exit status 2: a bad flag (argparse,
through :class:`~heteroscale.commands.parser.Parser`), a bad file or value (:class:`UserInputError`),
or a command whose optional dependencies are not installed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from heteroscale.commands.errors import UserInputError
from heteroscale.commands.parser import build_parser

#: Packages only the offline tools need (pyproject's extras), and the extra of each such command.
OPTIONAL_PACKAGES = frozenset({"matplotlib", "tqdm", "pyarrow"})
EXTRA_OF_COMMAND = {"simulate": "sim", "stragglers": "stragglers"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except UserInputError as exc:
        print(f"heteroscale {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in OPTIONAL_PACKAGES:
            raise
        extra = EXTRA_OF_COMMAND.get(args.command, "sim")
        print(
            f"heteroscale {args.command}: error: needs {exc.name}, which the [{extra}] extra installs: "
            f"pip install 'heteroscale[{extra}]'",
            file=sys.stderr,
        )
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
