"""``heteroscale generate``: write every generated file (CRD, reference pages, dashboard), or check them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from heteroscale.commands.errors import UserInputError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="regenerate the CRD, docs/reference/ and the dashboard from the code",
        description="Write every generated file of the repository: the CRD, docs/reference/*.md and the "
        "Grafana dashboard with its ConfigMap. Run it from the repository root after changing the API "
        "models, a command's flags, the exported metrics, the reason codes or the dashboard, and to resolve "
        "a merge conflict in a generated file.",
    )
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file differs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heteroscale.generated import generated_files

    root: Path = args.root
    if not (root / "heteroscale" / "generated.py").is_file():
        raise UserInputError(f"{root.resolve()} is not the heteroscale repository root (give --root)")
    stale = []
    for path, content in generated_files().items():
        target = root / path
        if target.is_file() and target.read_text(encoding="utf-8") == content:
            continue
        stale.append(path)
        if not args.check:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
    verb = "differs" if args.check else "wrote"
    for path in stale:
        print(f"{verb}: {path}")
    if args.check and stale:
        print("run `heteroscale generate` and commit the result")
        return 1
    return 0
