"""The dashboard and the alert rule only use metrics the exporter serves; the alert fires at S >= 1.1."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from heteroscale.stragglers.exporter import build_registry
from tests.stragglers.conftest import real_analysis

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "stragglers"


def test_deploy_files_use_exported_metrics() -> None:
    served = {metric.name for metric in build_registry([real_analysis("ST")]).collect()}
    text = (DEPLOY / "grafana-dashboard.json").read_text() + (DEPLOY / "prometheusrule.yaml").read_text()
    used = set(re.findall(r"heteroscale_straggler_[a-z_]+", text))
    assert used
    assert used <= served


def test_alert_rule_threshold() -> None:
    rule = yaml.safe_load((DEPLOY / "prometheusrule.yaml").read_text())
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert "heteroscale_straggler_job_slowdown >= 1.1" in exprs
