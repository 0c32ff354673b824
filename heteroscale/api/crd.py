"""Generate the PDServingGroup CustomResourceDefinition from the pydantic models.

Pydantic emits JSON Schema 2020-12; the API server wants an OpenAPI v3.0 *structural* schema. The
conversion inlines ``$ref``, turns ``anyOf [X, null]`` into ``nullable``, rewrites numeric
exclusive bounds to the v3.0 boolean form, moves map-key patterns (``patternProperties``, not allowed
in a structural schema) into CEL rules, gives optional objects a ``{}`` default so their fields'
defaults apply, and keeps ``x-kubernetes-preserve-unknown-fields`` only where the model asks for it
(pod templates).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml

from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import PDServingGroupStatus

GROUP = "heteroscale.io"
VERSION = "v1alpha1"
KIND = "PDServingGroup"
PLURAL = "pdservinggroups"
SINGULAR = "pdservinggroup"
SHORT_NAMES = ["pdsg"]
CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_FILENAME = f"{CRD_NAME}.yaml"

Schema = dict[str, Any]

_DROPPED_KEYS = {"title", "$defs", "patternProperties", "propertyNames", "additionalProperties"}


def _resolve(schema: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline a ``$ref`` (or a single-item ``allOf``) keeping the referring site's own keys."""
    if "$ref" in schema:
        target = copy.deepcopy(defs[schema["$ref"].rsplit("/", 1)[-1]])
        target.update({k: v for k, v in schema.items() if k != "$ref"})
        return _resolve(target, defs)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        target = _resolve(schema["allOf"][0], defs)
        target.update({k: v for k, v in schema.items() if k != "allOf"})
        return target
    return schema


def structural(schema: Schema, defs: dict[str, Schema]) -> Schema:
    """Convert one pydantic JSON-schema node to a Kubernetes structural-schema node."""
    schema = _resolve(copy.deepcopy(schema), defs)
    if "anyOf" in schema:
        options = [opt for opt in schema["anyOf"] if opt.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express a union of {len(options)} types structurally: {options}")
        siblings = {k: v for k, v in schema.items() if k not in {"anyOf", "default", "title"}}
        inner = structural({**options[0], **siblings}, defs)
        inner["nullable"] = True
        return inner
    out: Schema = {}
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    for key, value in schema.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "properties":
            out["properties"] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = structural(value, defs)
        elif key == "default" and value is None:
            continue
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("type") == "object" and not preserve:
        # A map with constrained keys: the structural form is additionalProperties plus a CEL key rule.
        for pattern, value_schema in schema.get("patternProperties", {}).items():
            out["additionalProperties"] = structural(value_schema, defs)
            out.setdefault("x-kubernetes-validations", []).append(
                {
                    "rule": f"self.all(k, k.matches('{pattern}'))",
                    "message": "keys must be GPU type names: letters, digits, '-', '_' or '.'",
                }
            )
        if isinstance(schema.get("additionalProperties"), dict):
            out["additionalProperties"] = structural(schema["additionalProperties"], defs)
    if preserve:
        out["type"] = "object"
    # Optional sub-objects default to {} so the API server fills in their fields' defaults too.
    for name, prop in out.get("properties", {}).items():
        if (
            prop.get("type") == "object"
            and "properties" in prop
            and not prop.get("nullable")
            and name not in out.get("required", [])
            and "default" not in prop
        ):
            prop["default"] = {}
    return out


def model_schema(model: type[PDServingGroupSpec] | type[PDServingGroupStatus]) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return structural(raw, raw.get("$defs", {}))


PRINTER_COLUMNS = [
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
    {"name": "P-Desired", "type": "integer", "jsonPath": ".status.desired.prefill"},
    {"name": "P-Current", "type": "integer", "jsonPath": ".status.current.prefill"},
    {"name": "D-Desired", "type": "integer", "jsonPath": ".status.desired.decode"},
    {"name": "D-Current", "type": "integer", "jsonPath": ".status.current.decode"},
    {"name": "Decode-TPS", "type": "number", "jsonPath": ".status.decodeTPS"},
    {"name": "Reason", "type": "string", "jsonPath": ".status.lastDecision.reason"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def build_crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition object."""
    spec_schema = model_schema(PDServingGroupSpec)
    status_schema = model_schema(PDServingGroupStatus)
    status_schema.pop("default", None)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["heteroscale"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (
                                "PDServingGroup scales the prefill and decode pools of one "
                                "disaggregated LLM service together, at a fixed ratio, and places "
                                "them on shared network domains."
                            ),
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object", "description": "Standard object metadata."},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd() -> str:
    """The CRD as YAML text, stable across runs (the drift test compares it byte for byte)."""
    header = "# Generated by `heteroscale crd` from heteroscale/api; do not edit by hand.\n"
    # Round-trip through JSON so enum members and tuples serialise as plain values.
    return header + yaml.safe_dump(json.loads(json.dumps(build_crd())), sort_keys=False, width=120)
