"""Turn pydantic validation errors into messages that name the field path and the fix."""

from __future__ import annotations

from pydantic import ValidationError


def field_path(loc: tuple[int | str, ...], root: str) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def describe(exc: ValidationError, root: str = "spec") -> list[str]:
    """One line per problem: ``spec.decode.minReplicas: must be >= 0 (got -1)``."""
    lines = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field; check the spelling against `kubectl explain pdservinggroup.spec`"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] not in {"value_error", "assertion_error"} and "input" in error:
            message = f"{message} (got {error['input']!r})"
        lines.append(f"{field_path(tuple(error['loc']), root)}: {message}")
    return lines
