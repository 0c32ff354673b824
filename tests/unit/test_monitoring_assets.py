"""deploy/monitoring stays consistent: the ConfigMap embeds the dashboard exactly, every
heteroscale_* name the dashboard and the alerts read is one the operator exports, and every alert
links a runbook section that exists in docs/operating.md.

The dashboard and its ConfigMap are generated (``heteroscale generate``); tests/unit/test_generated.py
keeps the files equal to the code.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.metric_specs import populated_metrics

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
DASHBOARD = MONITORING / "dashboard.json"
CONFIGMAP = MONITORING / "dashboard-configmap.yaml"
RULE = MONITORING / "prometheusrule.yaml"
OPERATING = REPO / "docs" / "operating.md"


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    exprs += [var["query"]["query"] for var in dashboard["templating"]["list"] if var["type"] == "query"]
    return exprs


def alert_rules() -> list[dict[str, Any]]:
    rule: dict[str, Any] = yaml.safe_load(RULE.read_text())
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def rule_expressions() -> list[str]:
    return [r["expr"] for r in alert_rules()]


def test_configmap_embeds_the_dashboard_exactly() -> None:
    assert yaml.safe_load(CONFIGMAP.read_text())["data"]["heteroscale.json"] == DASHBOARD.read_text()


def test_dashboard_and_alerts_read_only_exported_names() -> None:
    exported = {sample.name for family in populated_metrics().registry.collect() for sample in family.samples}
    used = {
        name for expr in dashboard_expressions() + rule_expressions() for name in re.findall(r"heteroscale_\w+", expr)
    }
    assert used
    assert used <= exported, used - exported


def test_dashboard_has_a_row_per_group_with_each_panel_the_issue_asks_for() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    rows = [p for p in panels if p["type"] == "row"]
    assert [r.get("repeat") for r in rows] == [None, "name"]  # the operator, then one row per PDServingGroup
    in_group = panels[panels.index(rows[1]) + 1 :]
    text = " ".join(t["expr"] for p in in_group for t in p["targets"])
    for needed in (
        "heteroscale_decode_tokens_per_second",  # decode TPS
        "heteroscale_decode_capacity_tokens_per_second",  # against target
        "heteroscale_desired_replicas",
        "heteroscale_current_replicas",
        "heteroscale_pd_ratio_declared",
        "heteroscale_pd_ratio_actual",
        "heteroscale_decisions_total",
        "vllm:time_to_first_token_seconds_bucket",  # TTFT, TBT and KV cache from the engines
        "sglang:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket",
        "sglang:inter_token_latency_seconds_bucket",
        "vllm:kv_cache_usage_perc",
        "sglang:token_usage",
    ):
        assert needed in text, needed


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_links_its_runbook_in_the_docs() -> None:
    urls = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]
    runbooks = urls["Documentation"] + "/operating.md#"
    anchors = _anchors(OPERATING.read_text())
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(runbooks), url
        assert url.removeprefix(runbooks) == rule["alert"].lower()
        assert rule["alert"].lower() in anchors, f"docs/operating.md has no section {rule['alert']}"
