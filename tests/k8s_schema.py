"""Validate an object against a CRD's schema the way the API server does, without a cluster.

Defaulting (structural ``default``), strict field validation (kubectl's default: unknown fields
are errors), OpenAPI v3.0 validation (jsonschema's Draft 4 has the same
boolean exclusiveMinimum; ``nullable`` becomes a null type) and the ``x-kubernetes-validations``
CEL rules (cel-python). What this cannot reproduce is the API server's CEL cost estimator; the
opt-in e2e tier against kind covers that.
"""

from __future__ import annotations

import copy
from typing import Any

import celpy
import jsonschema

Schema = dict[str, Any]


def apply_defaults(schema: Schema, value: Any) -> Any:
    if not isinstance(value, dict) or "properties" not in schema:
        if isinstance(value, list) and "items" in schema:
            return [apply_defaults(schema["items"], item) for item in value]
        return value
    out = dict(value)
    for name, sub in schema["properties"].items():
        if name not in out and "default" in sub:
            out[name] = copy.deepcopy(sub["default"])
        if name in out:
            out[name] = apply_defaults(sub, out[name])
    return out


def _openapi_to_jsonschema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_openapi_to_jsonschema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _openapi_to_jsonschema(v) for k, v in schema.items() if not k.startswith("x-kubernetes")}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        # kubectl's default (strict) field validation rejects unknown fields instead of pruning them.
        out["additionalProperties"] = False
    if schema.get("nullable"):
        out.pop("nullable")
        out["type"] = [out["type"], "null"] if "type" in out else ["null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def _cel_errors(schema: Schema, value: Any, path: str, env: celpy.Environment) -> list[str]:
    errors = []
    if value is None:
        return errors
    for rule in schema.get("x-kubernetes-validations", []):
        program = env.program(env.compile(rule["rule"]))
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if result is not True and not (isinstance(result, celpy.celtypes.BoolType) and bool(result)):
            errors.append(f"{path}{rule.get('fieldPath', '')}: {rule['message']}")
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += _cel_errors(sub, value[name], f"{path}.{name}", env)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                errors += _cel_errors(extra, item, f"{path}[{key}]", env)
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += _cel_errors(schema["items"], item, f"{path}[{index}]", env)
    return errors


def validate(schema: Schema, value: Any, path: str = "spec") -> list[str]:
    """All problems the API server would report for ``value`` (after defaulting), as text."""
    value = apply_defaults(schema, value)
    validator = jsonschema.Draft4Validator(_openapi_to_jsonschema(schema))
    errors = [
        f"{path}{''.join(f'.{p}' if isinstance(p, str) else f'[{p}]' for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(value)
    ]
    if errors:
        return errors  # CEL runs only on schema-valid objects, as in the API server
    return _cel_errors(schema, value, path, celpy.Environment())
