"""Fixtures for tests against the real ``prometheus`` binary (see :mod:`tests.integration.prom`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.prom import Launcher, require_prometheus

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_RULE = REPO / "deploy" / "monitoring" / "prometheusrule.yaml"


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """Path of ``prometheus``: skips with an install hint where it is missing, fails under CI=true."""
    return require_prometheus("prometheus")


@pytest.fixture(scope="session")
def promtool_binary() -> str:
    return require_prometheus("promtool")


@pytest.fixture(scope="session")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The PrometheusRule's groups as a plain rules file, for prometheus and promtool."""
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    path = tmp_path_factory.mktemp("rules") / "heteroscale-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory, prometheus_binary: str) -> Iterator[Launcher]:
    """Start exporters and Prometheus servers for a test module; all are stopped after it."""
    launcher = Launcher(tmp_path_factory.mktemp("prometheus"), prometheus_binary)
    yield launcher
    launcher.close()
