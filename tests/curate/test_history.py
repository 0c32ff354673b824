"""A service's request history read from a real Prometheus (backfilled with hours of generated
engine metrics), scoped as the operator scopes its reads, and curated from end to end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from heteroscale.api.config import PrometheusEndpoint
from heteroscale.api.crd import build_crd
from heteroscale.api.enums import Engine
from heteroscale.cli import main
from heteroscale.curate.history import read_history
from heteroscale.metrics.queries import Scope
from heteroscale.simulate import workload as wl
from tests.curate.backfill import VLLM_LENGTH_BUCKETS, Pod, bucket_shares, openmetrics, start_prometheus
from tests.integration.prom import PrometheusServer
from tests.k8s_schema import validate

pytestmark = pytest.mark.prometheus

STEP = 60
SEGMENTS = 4
SERVICE = (
    Pod("serving", "chat-decode-6d9f7c-abcde", (1.0, 2.0, 3.0, 2.0)),
    Pod("serving", "chat-decode-6d9f7c-fghij", (0.5, 0.5, 1.0, 1.0)),
)
#: Series that must not be read: the same pod name in another namespace, and another Deployment's
#: pods (prefill) in the service's namespace. Their rates are far larger, so a leak shows.
OTHERS = (
    Pod("other", "chat-decode-6d9f7c-abcde", (40.0,) * SEGMENTS),
    Pod("serving", "chat-prefill-5b7c8d-abcde", (20.0,) * SEGMENTS),
    Pod("serving", "chat-decode-canary-7f8e9d-abcde", (20.0,) * SEGMENTS),
)
#: An SGLang service: its own metric names.
SGLANG = (Pod("sgl", "chat-decode-6d9f7c-abcde", (1.5, 2.5, 3.5, 4.5)),)


@dataclass(frozen=True)
class Backfilled:
    server: PrometheusServer
    start: int
    end: int
    prompt_shares: list[float]
    generation_shares: list[float]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    trace = wl.load("azure-conv")
    prompt = bucket_shares(trace.input_tokens, VLLM_LENGTH_BUCKETS)
    generation = bucket_shares(trace.output_tokens, VLLM_LENGTH_BUCKETS)
    # Two hours ending an hour ago, on whole minutes.
    end = (int(time.time()) // STEP) * STEP - 3600
    start = end - 2 * 3600
    text = openmetrics([*SERVICE, *OTHERS], start, end, prompt, generation)
    text += openmetrics(SGLANG, start, end, prompt, generation, engine="sglang")
    server = start_prometheus(tmp_path_factory.mktemp("history"), text)
    yield Backfilled(server, start, end, prompt, generation)
    server.stop()


def _expected_rate(steps: int) -> np.ndarray:
    per_segment = steps // SEGMENTS
    return np.repeat(np.sum([pod.rates for pod in SERVICE], axis=0), per_segment)


def test_the_history_is_the_services_own_requests_and_lengths(history: Backfilled) -> None:
    read = read_history(
        PrometheusEndpoint(url=history.server.url),
        Scope("serving"),
        Engine.VLLM,
        ["chat-decode"],
        history.start,
        history.end,
        STEP,
    )
    expected = _expected_rate(read.rate.size)
    assert read.rate.size == 120
    assert read.missing_steps == 0
    # Counters are exact integrals of the rate, so rate() over each step is exact; any series of
    # another namespace or Deployment would add at least 20 requests/s.
    np.testing.assert_allclose(read.rate, expected, rtol=1e-6)
    np.testing.assert_allclose(read.prompt.shares(), history.prompt_shares, atol=1e-9)
    np.testing.assert_allclose(read.generation.shares(), history.generation_shares, atol=1e-9)
    assert read.prompt.bounds == tuple(float(b) for b in VLLM_LENGTH_BUCKETS)


def test_an_sglang_history_is_read_through_sglangs_names(history: Backfilled) -> None:
    read = read_history(
        PrometheusEndpoint(url=history.server.url),
        Scope("sgl"),
        Engine.SGLANG,
        ["chat-decode"],
        history.start,
        history.end,
        STEP,
    )
    np.testing.assert_allclose(read.rate, np.repeat(SGLANG[0].rates, read.rate.size // SEGMENTS), rtol=1e-6)
    np.testing.assert_allclose(read.generation.shares(), history.generation_shares, atol=1e-9)


def _config(tmp_path: Path, url: str, namespaces: list[str]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"prometheusEndpoints": {"metrics": {"url": url, "namespaces": namespaces}}}))
    return path


def _curate(history: Backfilled, tmp_path: Path, *source: str, start: int | None = None) -> int:
    return main(
        [
            "curate",
            "--workload",
            "prometheus",
            *source,
            "--deployments",
            "chat-decode",
            "--start",
            str(start if start is not None else history.start),
            "--end",
            str((start + 7200) if start is not None else history.end),
            "--candidates",
            "2",
            "--workers",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "spec.yaml"),
            "--report",
            str(tmp_path / "report"),
        ]
    )


def test_curate_from_the_operators_endpoint_writes_a_dry_run_group_for_it(history: Backfilled, tmp_path: Path) -> None:
    config = _config(tmp_path, history.server.url, ["serving"])
    code = _curate(history, tmp_path, "--config", str(config), "--endpoint", "metrics", "--namespace", "serving")
    assert code == 0
    group = yaml.safe_load((tmp_path / "spec.yaml").read_text())
    assert group["metadata"]["namespace"] == "serving"
    assert group["spec"]["mode"] == "DryRun"
    assert group["spec"]["metric"]["prometheus"] == {"endpoint": "metrics"}
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert validate(schema, group["spec"]) == []
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    # The replayed day holds the history's requests: Poisson draws around the measured rate.
    generated = float(_expected_rate(120).sum() * STEP)
    assert report["workload"]["requests"] == pytest.approx(generated, rel=0.03)
    assert report["workload"]["hours"] == 2


def test_a_namespace_the_endpoint_does_not_serve_is_refused(
    history: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, history.server.url, ["serving"])
    code = _curate(history, tmp_path, "--config", str(config), "--endpoint", "metrics", "--namespace", "other")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "not allowed for namespace 'other'" in err[0]
    assert not (tmp_path / "spec.yaml").exists()


def test_a_range_without_requests_is_one_clear_error(
    history: Backfilled, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _curate(
        history,
        tmp_path,
        "--prometheus-url",
        history.server.url,
        "--namespace",
        "serving",
        start=history.start - 4 * 3600,
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "no vllm:request_success_total series with requests" in err[0]
    assert "--deployments" in err[0]
