"""The resource reference in the README, generated from the models so it cannot drift."""

from __future__ import annotations

import json
from typing import Any

from heteroscale.api.crd import model_schema
from heteroscale.api.spec import PDServingGroupSpec


def _rows(schema: dict[str, Any], path: str) -> list[str]:
    rows = []
    for name, prop in schema.get("properties", {}).items():
        field = f"{path}.{name}" if path else name
        kind = prop.get("type", "")
        if kind == "array" and "type" in prop.get("items", {}):
            kind = f"[]{prop['items']['type']}"
        elif kind == "object" and isinstance(prop.get("additionalProperties"), dict):
            kind = f"map[string]{prop['additionalProperties'].get('type', 'object')}"
        default = prop.get("default")
        shown = "" if default is None or default == {} else f"`{json.dumps(default)}`"
        if "enum" in prop:
            kind += " (" + " \\| ".join(prop["enum"]) + ")"
        rows.append(f"| `{field}` | {kind} | {shown} | {prop.get('description', '')} |")
        if "properties" in prop:
            rows += _rows(prop, field)
        elif "properties" in prop.get("items", {}):
            rows += _rows(prop["items"], f"{field}[]")
    return rows


def spec_reference() -> str:
    """A Markdown table of every spec field with its type, default and description."""
    header = ["| field | type | default | description |", "|---|---|---|---|"]
    return "\n".join(header + _rows(model_schema(PDServingGroupSpec), "spec")) + "\n"
