"""The API models, the generated CRD and the samples agree, and bad specs name their fields."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from heteroscale.api.crd import build_crd
from heteroscale.api.manifest import SpecError, parse_manifest, parse_spec
from heteroscale.api.promql import promql_syntax_error
from heteroscale.api.spec import duration_seconds
from tests.k8s_schema import validate
from tests.specs import DELETE, base_spec, merge

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "deploy" / "samples").glob("*.yaml"))


def spec_schema() -> dict[str, Any]:
    schema: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _walk(value, f"{path}[{index}]")
    return found


def test_crd_schema_is_structural_and_described() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for forbidden in ("anyOf", "oneOf", "allOf", "$ref", "$defs", "patternProperties", "propertyNames", "title"):
            assert forbidden not in node, f"{path} has {forbidden}"
        for name, prop in node.get("properties", {}).items() if path.endswith("properties") is False else []:
            assert prop.get("description"), f"{path}.properties.{name} has no description"
            assert "type" in prop, f"{path}.properties.{name} has no type"


def test_crd_has_status_subresource_short_name_and_columns() -> None:
    crd = build_crd()
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] == ["pdsg"]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["D-Desired"] == ".status.desired.decode"
    assert columns["Reason"] == ".status.lastDecision.reason"
    assert {"Mode", "P-Desired", "P-Current", "D-Current", "Decode-TPS", "Age"} <= set(columns)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_are_valid_for_models_and_crd(path: Path) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    parse_manifest(document)
    assert validate(spec_schema(), document["spec"]) == []


def test_there_are_at_least_three_samples_covering_the_modes() -> None:
    specs = [parse_manifest(yaml.safe_load(p.read_text(encoding="utf-8"))).spec for p in SAMPLES]
    assert len(specs) >= 3
    assert any(s.mode == "DryRun" and s.metric.engine == "custom" for s in specs)
    assert any(set(s.roles.prefill.gpu_types) != set(s.roles.decode.gpu_types) for s in specs)
    assert any(
        s.roles.prefill.gpu_types == s.roles.decode.gpu_types and len(s.roles.decode.gpu_types) == 1 for s in specs
    )


# (override, field path in the message, words of the message, also rejected by the API server's schema)
BAD_SPECS: list[tuple[str, dict[str, Any], str, str, bool]] = [
    ("negative ratio", {"ratio": {"prefill": -1}}, "spec.ratio.prefill", "greater than or equal to 1", True),
    ("zero decode ratio", {"ratio": {"decode": 0}}, "spec.ratio.decode", "greater than or equal to 1", True),
    (
        "min > max",
        {"decode": {"minReplicas": 9, "maxReplicas": 3}},
        "spec.decode",
        "minReplicas must be <= maxReplicas",
        True,
    ),
    (
        "prefill min > max",
        {"prefill": {"minReplicas": 5, "maxReplicas": 2}},
        "spec.prefill",
        "minReplicas must be <= maxReplicas",
        True,
    ),
    (
        "target for unknown GPU type",
        {"decode": {"targetTPSPerInstance": {"H20": 2200, "B200": 9000}}},
        "spec",
        "not in roles.decode.gpuTypes",
        True,
    ),
    (
        "GPU type without target",
        {"roles": {"decode": {"gpuTypes": ["H20", "H100"]}}},
        "spec",
        "needs a decode.targetTPSPerInstance entry",
        True,
    ),
    (
        "zero target",
        {"decode": {"targetTPSPerInstance": {"H20": 0}}},
        "spec.decode.targetTPSPerInstance.H20",
        "greater than 0",
        True,
    ),
    ("empty template", {"roles": {"decode": {"template": {}}}}, "spec.roles.decode.template", "template.spec", False),
    (
        "template metadata not an object",
        {"roles": {"decode": {"template": {"metadata": "x", "spec": {"containers": [{"name": "e"}]}}}}},
        "spec.roles.decode.template",
        "template.metadata",
        False,
    ),
    (
        "template labels not strings",
        {"roles": {"decode": {"template": {"metadata": {"labels": ["a"]}, "spec": {"containers": [{"name": "e"}]}}}}},
        "spec.roles.decode.template",
        "template.metadata.labels",
        False,
    ),
    (
        "container without name",
        {"roles": {"decode": {"template": {"spec": {"containers": [{"image": "x"}]}}}}},
        "spec.roles.decode.template",
        "template.spec.containers[0].name",
        False,
    ),
    (
        "affinity not an object",
        {"roles": {"decode": {"template": {"spec": {"containers": [{"name": "e"}], "affinity": "near"}}}}},
        "spec.roles.decode.template",
        "template.spec.affinity",
        False,
    ),
    (
        "one Deployment for both roles",
        {
            "roles": {
                "prefill": {"template": DELETE, "deploymentRef": {"name": "same"}},
                "decode": {"template": DELETE, "deploymentRef": {"name": "same"}},
            }
        },
        "spec.roles",
        "each role needs its own",
        True,
    ),
    (
        "Prometheus URL in the spec",
        {"metric": {"prometheus": {"url": "http://evil.example/", "bearerTokenFile": "/var/run/secrets/token"}}},
        "spec.metric.prometheus",
        "configured by the cluster admin",
        False,
    ),
    ("zero window", {"metric": {"window": "0s"}}, "spec.metric.window", "positive duration", True),
    ("zero staleAfter", {"metric": {"staleAfter": "0s"}}, "spec.metric.staleAfter", "positive duration", True),
    (
        "unknown unit in a range",
        {"metric": {"engine": "custom", "query": 'sum(rate(x{namespace="{namespace}"}[5q]))'}},
        "spec.metric.query",
        "5q",
        False,
    ),
    (
        "template and ref",
        {"roles": {"prefill": {"deploymentRef": {"name": "p"}}}},
        "spec.roles.prefill",
        "exactly one of template, deploymentRef or scaleTargetRef",
        True,
    ),
    (
        "neither template nor ref",
        {"roles": {"prefill": {"template": DELETE}}},
        "spec.roles.prefill",
        "exactly one of template, deploymentRef or scaleTargetRef",
        True,
    ),
    (
        "deploymentRef and scaleTargetRef",
        {
            "roles": {
                "prefill": {
                    "template": DELETE,
                    "deploymentRef": {"name": "p"},
                    "scaleTargetRef": {
                        "apiVersion": "leaderworkerset.x-k8s.io/v1",
                        "kind": "LeaderWorkerSet",
                        "name": "p",
                    },
                }
            }
        },
        "spec.roles.prefill",
        "exactly one of template, deploymentRef or scaleTargetRef",
        True,
    ),
    (
        "two roles, one target name",
        {
            "roles": {
                role: {
                    "template": DELETE,
                    "scaleTargetRef": {
                        "apiVersion": "leaderworkerset.x-k8s.io/v1",
                        "kind": "LeaderWorkerSet",
                        "name": "x",
                    },
                }
                for role in ("prefill", "decode")
            }
        },
        "spec.roles",
        "targets of the same name",
        True,
    ),
    (
        "lower-case kind",
        {
            "roles": {
                "prefill": {
                    "template": DELETE,
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "statefulset", "name": "p"},
                }
            }
        },
        "spec.roles.prefill.scaleTargetRef.kind",
        "should match pattern",
        True,
    ),
    (
        "malformed PromQL",
        {"metric": {"engine": "custom", "query": "sum(rate(x[1m])"}},
        "spec.metric.query",
        "not valid PromQL",
        False,
    ),
    ("custom without query", {"metric": {"engine": "custom"}}, "spec.metric", "query is required", True),
    ("query without custom", {"metric": {"query": "sum(x)"}}, "spec.metric", "only used with engine: custom", True),
    ("unknown engine", {"metric": {"engine": "tgi"}}, "spec.metric.engine", "'vllm', 'sglang' or 'custom'", True),
    ("bad duration", {"metric": {"window": "1 minute"}}, "spec.metric.window", "positive duration", True),
    ("unknown mode", {"mode": "Auto"}, "spec.mode", "'Enforce' or 'DryRun'", True),
    ("typo in field", {"behaviour": {}}, "spec.behaviour", "unknown field", True),
    ("tolerance >= 1", {"behavior": {"tolerance": 1.5}}, "spec.behavior.tolerance", "less than 1", True),
    (
        "colocate not a tier",
        {"topology": {"colocate": "example.com/rack"}},
        "spec.topology",
        "colocate must be one of tiers",
        True,
    ),
    (
        "repeated latency tier",
        {
            "behavior": {
                "latencyGuard": {
                    "sloSeconds": 0.05,
                    "tiers": [{"over": 1.2, "stepPercent": 10}, {"over": 1.2, "stepPercent": 20}],
                }
            }
        },
        "spec.behavior.latencyGuard.tiers",
        "distinct",
        True,
    ),
    (
        "GPU type with quote",
        {"roles": {"decode": {"gpuTypes": ['H20"}']}}, "decode": {"targetTPSPerInstance": {'H20"}': 1}}},
        "spec.roles.decode.gpuTypes[0]",
        "should match pattern",
        True,
    ),
    (
        "negative drain",
        {"behavior": {"scaleDown": {"drainSeconds": -5}}},
        "spec.behavior.scaleDown.drainSeconds",
        "greater than or equal to 0",
        True,
    ),
]


@pytest.mark.parametrize(
    ("override", "field", "words", "crd_rejects"), [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS]
)
def test_bad_specs_name_the_field_and_the_fix(
    override: dict[str, Any], field: str, words: str, crd_rejects: bool
) -> None:
    bad = merge(base_spec(), override)
    with pytest.raises(SpecError) as caught:
        parse_spec(bad)
    assert any(line.startswith(f"{field}:") and words in line for line in caught.value.problems), caught.value.problems
    if crd_rejects:
        assert validate(spec_schema(), bad), "the API server would accept what the models reject"


def test_valid_base_spec_passes_both_validators() -> None:
    parse_spec(base_spec())
    assert validate(spec_schema(), base_spec()) == []


def test_a_scale_target_role_passes_both_validators() -> None:
    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet", "name": "serve-decode"}
    spec = merge(base_spec(), {"roles": {"decode": {"template": DELETE, "scaleTargetRef": lws}}})
    assert parse_spec(spec).roles.decode.scale_target is not None
    assert validate(spec_schema(), spec) == []
    as_deployment = merge(
        base_spec(),
        {
            "roles": {
                "decode": {"template": DELETE, "scaleTargetRef": {**lws, "apiVersion": "apps/v1", "kind": "Deployment"}}
            }
        },
    )
    assert parse_spec(as_deployment).roles.decode.scale_target is None, "an apps/v1 Deployment is a deploymentRef"


def test_crd_defaults_match_model_defaults() -> None:
    """A minimal spec defaulted by the API server reads back as the models default it."""
    from tests.k8s_schema import apply_defaults

    defaulted = apply_defaults(spec_schema(), base_spec())
    assert parse_spec(defaulted) == parse_spec(base_spec())
    assert defaulted["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("2m", 120), ("1h", 3600), ("10s", 10)])
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["60", "1.5m", "-1s", "1d", "", "0s", "00s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        duration_seconds(text)


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ('sum(rate(vllm:generation_tokens_total{namespace="{namespace}"}[{window}]))', None),
        ('sum(rate(x{a="(("}[1m]))', None),
        ("sum(x) # a comment with ( inside", None),
        ("sum(rate(x[1m])", "unclosed left parenthesis"),
        ("sum(x))", "unexpected right parenthesis"),
        ('x{a="b}', "unterminated quoted string"),
        ("sum(x{a='b})", "unterminated quoted string"),
        ("rate(x[5q])", "5q"),
        ('x{a="1" or b="2"}', "'or' between matchers"),
        ("sum by (le) (rate(x[1m])) +", "invalid promql query"),
        ("sum(x[{range}])", "unknown placeholder {range}"),
        ("   ", "blank"),
        ('rate(x{a="b\\"c"}[1m])', None),
    ],
)
def test_promql_is_checked_by_a_real_parser(query: str, problem: str | None) -> None:
    found = promql_syntax_error(query)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_manifest_errors_name_kind_and_metadata() -> None:
    with pytest.raises(SpecError) as caught:
        parse_manifest({"apiVersion": "v1", "kind": "Deployment", "spec": base_spec()})
    text = "\n".join(caught.value.problems)
    assert "apiVersion: must be heteroscale.io/v1alpha1" in text
    assert "kind: must be PDServingGroup" in text
    assert "metadata.name: required" in text
