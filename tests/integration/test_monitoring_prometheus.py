"""The alert rules and the dashboard against promtool and a real Prometheus."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from heteroscale.metrics import dashboard
from tests.integration.prom import Launcher, PodLoad
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
    assert "SUCCESS: 7 rules found" in result.stdout


def test_each_alert_fires_and_resolves(promtool_binary: str, rules_file: Path, tmp_path: Path) -> None:
    shutil.copy(rules_file, tmp_path / "heteroscale-rules.yaml")
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    result = subprocess.run(
        [promtool_binary, "test", "rules", ALERTS_TEST.name], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr


#: One PDServingGroup per engine, each in its own namespace, so each engine's names must give data.
ENGINES = {"serving": "vllm", "sgl": "sglang"}


def engine_pods(namespace: str, engine: str) -> list[PodLoad]:
    """The pods of the deployment groups populated_metrics() reports, serving real-looking latencies."""
    pods = []
    for role, pod_hash in (("decode", "x7k2p"), ("prefill", "q9w4z")):
        pods.append(
            PodLoad(
                namespace,
                f"chat-{role}-h20-s2a-5d8f7c9b4-{pod_hash}",  # <Deployment>-<replicaset hash>-<pod hash>
                engine,
                decode_tps=900.0,
                tbt_per_second=20.0,
                ttft_per_second=2.0,
                kv_cache_usage=0.4 if role == "decode" else 0.1,
            )
        )
    return pods


def test_dashboard_and_alert_expressions_evaluate(launch: Launcher, rules_file: Path) -> None:
    operators = [populated_metrics(namespace, "chat") for namespace in ENGINES]
    for metrics in operators:
        metrics.serve(0, "127.0.0.1")
    try:
        engines = launch.exporter([pod for ns, engine in ENGINES.items() for pod in engine_pods(ns, engine)])
        # The rules are loaded too: Prometheus refuses to start on a rule it cannot parse.
        prometheus = launch.prometheus(
            {
                "heteroscale-operator": [f"127.0.0.1:{metrics.port}" for metrics in operators],
                "engines": [engines.target],
            },
            [rules_file],
        )
        prometheus.wait_for("count_over_time(heteroscale_decisions_total[10s]) >= 3")
        prometheus.wait_for("count_over_time(vllm:time_to_first_token_seconds_count[10s]) >= 3")
        for namespace in ENGINES:
            variables = {**GRAFANA_VARIABLES, "$namespace": namespace, "$name": "chat"}
            for expr in dashboard_expressions():
                inner = _LABEL_VALUES.fullmatch(expr)
                query = inner[1] if inner else expr
                for variable, value in variables.items():
                    query = query.replace(variable, value)
                # Every panel has data, for each engine: names and labels match what is exported.
                assert prometheus.query(query), f"no data for dashboard query {query!r}"
        for expr in rule_expressions():
            prometheus.query(expr)  # raises with Prometheus' error if it does not evaluate
    finally:
        for metrics in operators:
            metrics.stop()


def test_engine_panels_show_each_role_with_its_own_values(launch: Launcher) -> None:
    metrics = populated_metrics("serving", "chat")
    metrics.serve(0, "127.0.0.1")
    try:
        engines = launch.exporter(engine_pods("serving", "vllm"))
        prometheus = launch.prometheus(
            {"heteroscale-operator": [f"127.0.0.1:{metrics.port}"], "engines": [engines.target]}
        )
        prometheus.wait_for("count_over_time(vllm:time_to_first_token_seconds_count[10s]) >= 3")
        query = f"avg by (role) ({dashboard.per_role(dashboard.KV_CACHE_USAGE)})"
        query = query.replace("$namespace", "serving").replace("$name", "chat")
        by_role = {r["metric"]["role"]: float(r["value"][1]) for r in prometheus.query(query)}
        assert by_role == {"decode": 0.4, "prefill": 0.1}
    finally:
        metrics.stop()
