"""The alert rules and the dashboard against promtool and a real Prometheus."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.prom import Launcher
from tests.metric_specs import populated_metrics
from tests.unit.test_monitoring_assets import dashboard_expressions, rule_expressions

pytestmark = pytest.mark.prometheus

ALERTS_TEST = Path(__file__).with_name("alerts_test.yaml")
# Grafana's variables, as the dashboard would fill them in with "All" selected.
GRAFANA_VARIABLES = {"$namespace": ".*", "$name": ".*", "$__rate_interval": "10s"}
_LABEL_VALUES = re.compile(r"label_values\((.*),\s*\w+\)")


def test_promtool_checks_the_rules(promtool_binary: str, rules_file: Path) -> None:
    result = subprocess.run([promtool_binary, "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_each_alert_fires_and_resolves(promtool_binary: str, rules_file: Path, tmp_path: Path) -> None:
    shutil.copy(rules_file, tmp_path / "heteroscale-rules.yaml")
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    result = subprocess.run(
        [promtool_binary, "test", "rules", ALERTS_TEST.name], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_and_alert_expressions_evaluate(launch: Launcher, rules_file: Path) -> None:
    metrics = populated_metrics()
    metrics.serve(0, "127.0.0.1")
    try:
        # The rules are loaded too: Prometheus refuses to start on a rule it cannot parse.
        prometheus = launch.prometheus({"heteroscale-operator": [f"127.0.0.1:{metrics.port}"]}, [rules_file])
        prometheus.wait_for("count_over_time(heteroscale_decisions_total[10s]) >= 3")
        for expr in dashboard_expressions():
            inner = _LABEL_VALUES.fullmatch(expr)
            query = inner[1] if inner else expr
            for variable, value in GRAFANA_VARIABLES.items():
                query = query.replace(variable, value)
            # Every panel has data: its names and labels match what the operator exports.
            assert prometheus.query(query), f"no data for dashboard query {query!r}"
        for expr in rule_expressions():
            prometheus.query(expr)  # raises with Prometheus' error if it does not evaluate
    finally:
        metrics.stop()
