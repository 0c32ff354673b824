"""Reading the files a command is given: JSON or YAML documents and PDServingGroup manifests.

JSON is parsed with :mod:`json` (``kubectl get nodes -o json`` of a large cluster is tens of MB, and
PyYAML's pure-Python parser takes seconds for what ``json`` does in a fraction of one); anything else
as YAML, with libyaml when PyYAML has it. Every problem is a :class:`UserInputError` of one line per
fault: the file, and where in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from heteroscale.commands.errors import UserInputError

if TYPE_CHECKING:
    from heteroscale.api.manifest import Manifest

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_document(path: Path, what: str) -> Any:
    """The parsed JSON or YAML document in ``path``; ``what`` names it in errors ("nodes")."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserInputError(f"{what} {path} is not a text file (JSON or YAML)") from None
    json_error = None
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            # YAML's flow style starts with a brace too; if YAML cannot read it either, the JSON
            # error is the one that helps.
            json_error = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        if json_error is not None:
            raise UserInputError(f"{what} {path} is not valid JSON: {json_error}") from None
        raise UserInputError(f"{what} {path} is not valid YAML: {_yaml_problem(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1} column {mark.column + 1}: {exc.problem}"
    return str(exc).replace("\n", " ")


def read_group(path: Path) -> Manifest:
    """A PDServingGroup manifest (or a bare spec), each problem named by its field path."""
    from heteroscale.api.manifest import SpecError, parse_manifest

    try:
        return parse_manifest(read_document(path, "PDServingGroup"))
    except SpecError as exc:
        if len(exc.problems) == 1:
            raise UserInputError(f"{path}: {exc.problems[0]}") from None
        lines = "\n  ".join(exc.problems)
        raise UserInputError(f"{path}: {len(exc.problems)} problems:\n  {lines}") from None
