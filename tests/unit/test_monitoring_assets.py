"""deploy/monitoring stays consistent: the ConfigMap embeds dashboard.json exactly, and every
heteroscale_* name the dashboard and the alerts read is one the operator exports.

Regenerate the ConfigMap after editing dashboard.json with
``HETEROSCALE_REGENERATE=1 python -m pytest tests/unit/test_monitoring_assets.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from tests.metric_specs import populated_metrics

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
DASHBOARD = MONITORING / "dashboard.json"
CONFIGMAP = MONITORING / "dashboard-configmap.yaml"
RULE = MONITORING / "prometheusrule.yaml"


class _Literal(str):
    """A string YAML writes as a literal block, so the embedded JSON stays readable."""


def _literal(dumper: yaml.SafeDumper, data: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")


yaml.SafeDumper.add_representer(_Literal, _literal)


def render_configmap(dashboard: str) -> str:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "heteroscale-dashboard",
            "namespace": "heteroscale-system",
            # Grafana's dashboard sidecar loads ConfigMaps with this label.
            "labels": {"grafana_dashboard": "1", "app.kubernetes.io/name": "heteroscale"},
        },
        "data": {"heteroscale.json": _Literal(dashboard)},
    }
    header = (
        "# Generated from dashboard.json by tests/unit/test_monitoring_assets.py; do not edit by hand.\n"
        "# Regenerate: HETEROSCALE_REGENERATE=1 python -m pytest tests/unit/test_monitoring_assets.py\n"
    )
    return header + yaml.safe_dump(configmap, sort_keys=False, width=1 << 16)


def test_configmap_embeds_the_dashboard_exactly() -> None:
    dashboard = DASHBOARD.read_text()
    if os.environ.get("HETEROSCALE_REGENERATE") == "1":
        CONFIGMAP.write_text(render_configmap(dashboard))
    assert CONFIGMAP.read_text() == render_configmap(dashboard), "regenerate: see this module's docstring"
    assert yaml.safe_load(CONFIGMAP.read_text())["data"]["heteroscale.json"] == dashboard


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [var["query"]["query"] for var in dashboard["templating"]["list"] if var["type"] == "query"]
    return exprs


def rule_expressions() -> list[str]:
    rule: dict[str, Any] = yaml.safe_load(RULE.read_text())
    return [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]


def test_dashboard_and_alerts_read_only_exported_names() -> None:
    exported = {sample.name for family in populated_metrics().registry.collect() for sample in family.samples}
    used = {
        name for expr in dashboard_expressions() + rule_expressions() for name in re.findall(r"heteroscale_\w+", expr)
    }
    assert used
    assert used <= exported, used - exported
