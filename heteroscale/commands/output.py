"""Where a command writes a file it was asked for: ``-`` is stdout, missing folders are created.

A path that cannot be written (a folder, no permission) is a :class:`UserInputError` naming the
flag, as every other user mistake is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from heteroscale.commands.errors import UserInputError

STDOUT = Path("-")


def is_stdout(target: Path | None) -> bool:
    """True when the output goes to stdout, so the command prints nothing else there."""
    return target == STDOUT


def make_folder(folder: Path, flag: str) -> None:
    """Create ``folder`` (and its parents) for what ``flag`` asks to write."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot write {flag} into {folder}: {exc.strerror}") from None


def write_text(target: Path, text: str, flag: str) -> None:
    """Write ``text`` to ``target`` (stdout for ``-``), creating its folder when missing."""
    if is_stdout(target):
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    make_folder(target.parent, flag)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"cannot write {flag} {target}: {exc.strerror}") from None


def write_json(target: Path, document: Any, flag: str = "--json") -> None:
    """Write ``document`` as indented JSON, one trailing newline."""
    write_text(target, json.dumps(document, indent=2) + "\n", flag)
