"""docs/reference/crd.md: the PDServingGroup resource, from the CRD the API models generate."""

from __future__ import annotations

import json
from typing import Any

from heteroscale.api.crd import GROUP, KIND, PLURAL, SHORT_NAMES, VERSION, build_crd
from heteroscale.reference import notice

Schema = dict[str, Any]


def _kind(prop: Schema) -> str:
    kind = str(prop.get("type", "object" if prop.get("x-kubernetes-preserve-unknown-fields") else ""))
    if kind == "array" and "type" in prop.get("items", {}):
        kind = f"[]{prop['items']['type']}"
    elif kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        kind = f"map[string]{prop['additionalProperties'].get('type', 'object')}"
    if "enum" in prop:
        kind += " (" + " \\| ".join(str(v) for v in prop["enum"]) + ")"
    return kind


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def field_rows(schema: Schema, path: str) -> list[str]:
    """One table row per field below ``schema``, depth first, with type, default and description."""
    rows = []
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        field = f"{path}.{name}"
        default = prop.get("default")
        shown = "" if default is None or default == {} else f"`{json.dumps(default)}`"
        need = "yes" if name in required else ""
        rows.append(f"| `{field}` | {_kind(prop)} | {need} | {shown} | {_cell(prop.get('description', ''))} |")
        if "properties" in prop:
            rows += field_rows(prop, field)
        elif "properties" in prop.get("items", {}):
            rows += field_rows(prop["items"], f"{field}[]")
    return rows


def validation_rows(schema: Schema, path: str) -> list[str]:
    """The CEL rules (``x-kubernetes-validations``) the API server checks, where they sit."""
    rows = [
        f"| `{path}` | `{_cell(rule['rule'])}` | {_cell(rule.get('message', ''))} |"
        for rule in schema.get("x-kubernetes-validations", ())
    ]
    for name, prop in schema.get("properties", {}).items():
        rows += validation_rows(prop, f"{path}.{name}")
        if "items" in prop:
            rows += validation_rows(prop["items"], f"{path}.{name}[]")
    return rows


def _table(header: str, rows: list[str]) -> str:
    columns = header.count("|") - 1
    return "\n".join([header, "|" + "---|" * columns, *rows])


def page() -> str:
    version = build_crd()["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    spec, status = root["properties"]["spec"], root["properties"]["status"]
    columns = [f"| {c['name']} | `{c['jsonPath']}` |" for c in version["additionalPrinterColumns"]]
    return (
        "\n\n".join(
            [
                "# PDServingGroup reference",
                notice("heteroscale/api"),
                f"`{GROUP}/{VERSION}`, kind `{KIND}` (plural `{PLURAL}`, short name `{', '.join(SHORT_NAMES)}`), "
                f"namespaced. {_cell(root.get('description', ''))} `kubectl explain pdservinggroup.spec` shows the "
                "same descriptions.",
                "## Columns of `kubectl get pdsg`",
                _table("| column | from |", columns),
                "## spec",
                _table("| field | type | required | default | description |", field_rows(spec, "spec")),
                "## Rules across fields",
                "The API server refuses a PDServingGroup that breaks one of these (CEL `x-kubernetes-validations`); "
                "`heteroscale plan` and `heteroscale decide` check the same rules offline.",
                _table("| where | rule | message |", validation_rows(spec, "spec")),
                "## status",
                "Written by the operator only.",
                _table("| field | type | required | default | description |", field_rows(status, "status")),
            ]
        )
        + "\n"
    )
