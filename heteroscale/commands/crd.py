"""`heteroscale crd`: write the CustomResourceDefinition generated from the API models."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "crd",
        help="write the PDServingGroup CRD generated from the API models",
        description="Generate crds/pdservinggroups.heteroscale.io.yaml from heteroscale/api.",
    )
    parser.add_argument("--out", type=Path, default=Path("crds"), help="directory to write into (default: crds)")
    parser.add_argument("--stdout", action="store_true", help="print the YAML instead of writing a file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from heteroscale.api.crd import CRD_FILENAME, render_crd
    from heteroscale.commands.output import STDOUT, write_text

    if args.stdout:
        write_text(STDOUT, render_crd(), "--stdout")
        return 0
    target = args.out / CRD_FILENAME
    write_text(target, render_crd(), "--out")
    print(f"wrote {target}")
    return 0
