"""Read a PDServingGroup from a parsed YAML/JSON document (pure: the caller does the file I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from heteroscale.api.crd import GROUP, KIND, VERSION
from heteroscale.api.errors import describe
from heteroscale.api.spec import PDServingGroupSpec

API_VERSION = f"{GROUP}/{VERSION}"


class SpecError(ValueError):
    """A spec that cannot be used; ``problems`` holds one line per field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid PDServingGroup:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Manifest:
    name: str
    namespace: str
    spec: PDServingGroupSpec


def parse_spec(spec: Any, root: str = "spec") -> PDServingGroupSpec:
    """Validate a spec mapping, raising :class:`SpecError` whose lines name each field."""
    if not isinstance(spec, Mapping):
        raise SpecError([f"{root}: must be a mapping, got {type(spec).__name__}"])
    try:
        return PDServingGroupSpec.model_validate(dict(spec))
    except ValidationError as exc:
        raise SpecError(describe(exc, root)) from None


def parse_manifest(document: Any) -> Manifest:
    """A full ``PDServingGroup`` object, or a bare spec (then named ``example`` in ``default``)."""
    if not isinstance(document, Mapping):
        raise SpecError([f"document: must be a mapping, got {type(document).__name__}"])
    if "kind" not in document and "spec" not in document:
        return Manifest("example", "default", parse_spec(document, "spec"))
    problems = []
    if document.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: must be {API_VERSION}, got {document.get('apiVersion')!r}")
    if document.get("kind") != KIND:
        problems.append(f"kind: must be {KIND}, got {document.get('kind')!r}")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        problems.append("metadata.name: required")
    if problems:
        raise SpecError(problems)
    spec = parse_spec(document.get("spec"), "spec")
    return Manifest(str(metadata["name"]), str(metadata.get("namespace") or "default"), spec)
