"""The operator's own metrics: values, removal of unknown values and of deleted groups, /metrics."""

from __future__ import annotations

import pytest
import requests
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from heteroscale import __version__
from heteroscale.api.enums import Role
from heteroscale.api.status import GroupStatus, PolicyState
from heteroscale.metrics.exported import OperatorMetrics
from heteroscale.metrics.reader import Signals
from heteroscale.policy.decide import decide
from tests.metric_specs import group_spec, observation, populated_metrics


def samples(metrics: OperatorMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset({"namespace": "serving", "name": "chat", **labels}.items())))


def test_one_tick_of_everything() -> None:
    metrics = populated_metrics()
    assert value(metrics, "heteroscale_decode_tokens_per_second") == 1800.0
    assert value(metrics, "heteroscale_metric_age_seconds") == 2.0
    assert value(metrics, "heteroscale_prefill_missed_tokens_per_second") == 900.0
    assert value(metrics, "heteroscale_decode_instance_target_tokens_per_second") == 1000.0
    assert value(metrics, "heteroscale_decode_capacity_tokens_per_second") == 2000.0  # 2 ready x 1000
    assert value(metrics, "heteroscale_tbt_seconds") == 0.04
    assert value(metrics, "heteroscale_tbt_slo_seconds") == 0.05
    assert value(metrics, "heteroscale_pd_ratio_declared") == 1.0
    assert value(metrics, "heteroscale_pd_ratio_actual") == 1.0
    assert value(metrics, "heteroscale_metric_available") == 1.0
    assert value(metrics, "heteroscale_current_replicas", role="decode") == 2.0
    assert value(metrics, "heteroscale_max_replicas", role="prefill") == 16.0
    assert value(metrics, "heteroscale_decisions_total", reason="WithinTolerance") == 1.0
    assert value(metrics, "heteroscale_scale_events_total", role="decode", direction="up") == 1.0
    assert value(metrics, "heteroscale_metric_fetch_errors_total", kind="http") == 1.0
    assert value(metrics, "heteroscale_conflicts_total") == 1.0
    assert value(metrics, "heteroscale_reconcile_duration_seconds_count") == 1.0
    group = {"group": "chat-decode-h20-s2a", "role": "decode", "gpu_type": "H20", "domain": "s2a"}
    assert value(metrics, "heteroscale_group_desired_replicas", **group) == 2.0


def test_build_info_names_the_version() -> None:
    build = [labels for name, labels in samples(OperatorMetrics()) if name == "heteroscale_build_info"]
    assert build == [frozenset({("version", __version__)})]


def test_unknown_values_remove_their_series_and_metric_holds_show() -> None:
    metrics = populated_metrics()
    spec = group_spec(quantile=None)
    obs = observation(None, None)
    decision = decide(spec, obs, PolicyState(), 2000.0)
    metrics.observe_decision("serving", "chat", spec, obs, decision, Signals(None, None, None, None, "empty result"))
    for gone in (
        "heteroscale_decode_tokens_per_second",
        "heteroscale_metric_age_seconds",
        "heteroscale_tbt_seconds",
        "heteroscale_tbt_slo_seconds",
        "heteroscale_prefill_missed_tokens_per_second",
    ):
        assert value(metrics, gone) is None, gone
    assert value(metrics, "heteroscale_metric_available") == 0.0
    assert value(metrics, "heteroscale_decisions_total", reason="MetricMissing") == 1.0


def test_groups_no_longer_listed_are_dropped() -> None:
    metrics = populated_metrics()
    only = GroupStatus(name="chat-decode-l20-s2b", role=Role.DECODE, gpu_type="L20", domain="s2b", desired=1, current=0)
    metrics.observe_groups("serving", "chat", [only])
    groups = {
        dict(labels)["group"] for name, labels in samples(metrics) if name == "heteroscale_group_current_replicas"
    }
    assert groups == {"chat-decode-l20-s2b"}


def test_forget_drops_every_series_of_the_group_only() -> None:
    metrics = populated_metrics()
    spec = group_spec()
    obs = observation(10.0, 1.0)
    decision = decide(spec, obs, PolicyState(), 1000.0)
    metrics.observe_decision("other", "chat", spec, obs, decision, Signals(10.0, 1.0, None, None, None))
    metrics.forget("serving", "chat")
    per_group = [labels for name, labels in samples(metrics) if name.startswith("heteroscale_") and "_info" not in name]
    left = {dict(labels).get("namespace") for labels in per_group}
    assert left == {"other"}


def test_scale_event_direction_is_checked() -> None:
    with pytest.raises(ValueError, match="direction"):
        OperatorMetrics().count_scale_event("n", "x", "decode", "sideways")


def test_serves_metrics_over_http() -> None:
    metrics = populated_metrics()
    metrics.serve(0, "127.0.0.1")
    try:
        body = requests.get(f"http://127.0.0.1:{metrics.port}/metrics", timeout=5).text
    finally:
        metrics.stop()
    assert 'heteroscale_decode_tokens_per_second{name="chat",namespace="serving"} 1800.0' in body
