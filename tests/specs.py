"""Spec builders shared by the tests: a valid base spec and deep-merged variations of it."""

from __future__ import annotations

import copy
from typing import Any

from heteroscale.api.spec import PDServingGroupSpec

CONTAINER = {"name": "engine", "image": "vllm/vllm-openai:v0.11.0"}


def base_spec() -> dict[str, Any]:
    """A valid spec in wire form (camelCase), the shape users write in YAML."""
    return {
        "ratio": {"prefill": 1, "decode": 3},
        "decode": {"targetTPSPerInstance": {"H20": 2200}, "minReplicas": 1, "maxReplicas": 64},
        "prefill": {"minReplicas": 1, "maxReplicas": 32},
        "roles": {
            "prefill": {"template": {"spec": {"containers": [CONTAINER]}}, "gpuTypes": ["L20"]},
            "decode": {"template": {"spec": {"containers": [CONTAINER]}}, "gpuTypes": ["H20"]},
        },
    }


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``; ``DELETE`` removes a key and an empty
    mapping replaces the value (so a test can say "empty template")."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and value and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


DELETE = object()


def spec_with(**override: Any) -> PDServingGroupSpec:
    return PDServingGroupSpec.model_validate(merge(base_spec(), override))
