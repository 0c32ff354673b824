"""A real Prometheus and a fake serving engine for tests; reusable by any test package.

``Exporter`` serves vLLM- and SGLang-format counters and histograms whose rates the test sets
(:class:`PodLoad`); every counter grows linearly, so ``rate()`` over any window equals the set rate.
``PrometheusServer`` runs the ``prometheus`` binary on a free local port, scraping the given
targets every second with ``honor_labels`` (the exporter sets ``namespace`` and ``pod`` itself,
as Kubernetes service discovery would).

Use from a test (the fixtures in ``tests/integration/conftest.py`` do this, with teardown)::

    exporter = Exporter([PodLoad("serving", "chat-decode-5c7d9-abcde", "vllm", decode_tps=1200)])
    exporter.start()
    prometheus = PrometheusServer(tmp_path, {"engines": [exporter.target]})
    prometheus.start()
    prometheus.wait_for("sum(rate(vllm:generation_tokens_total[10s]))")
    ...
    prometheus.stop(); exporter.stop()

Where ``prometheus`` is not on PATH, :func:`require_prometheus` skips the test with an install hint,
or fails it under CI (``CI=true``), where its absence is a broken setup.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from heteroscale.metrics.histogram import VLLM_ITL_BUCKETS, VLLM_TTFT_BUCKETS

INSTALL_HINT = (
    "the prometheus binary is not on PATH; install it (Debian/Ubuntu: apt-get install prometheus, "
    "which also brings promtool) to run the real-Prometheus tests"
)
SCRAPE_INTERVAL_SECONDS = 1

# Upper bounds of the latency histograms the fake engines expose: vLLM V1's, as the simulator's
# guard reads them (heteroscale.metrics.histogram); SGLang's run from 2 ms to 8 s (collector.py),
# a subset here.
SGLANG_TBT_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.2, 0.4, 0.8, 1.0, 2.0, 4.0, 8.0)
# SGLang's time-to-first-token buckets: 0.1 s to 400 s (collector.py).
SGLANG_TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0, 40.0, 60.0, 100.0, 400.0)
#: The KV-cache usage gauge (a fraction of 1) of each engine.
KV_CACHE_GAUGE = {"vllm": "vllm:kv_cache_usage_perc", "sglang": "sglang:token_usage"}
#: The waiting-requests gauge of each engine (the serving-metrics reference).
QUEUE_GAUGE = {"vllm": "vllm:num_requests_waiting", "sglang": "sglang:num_queue_reqs"}


def require_prometheus(binary: str = "prometheus") -> str:
    """Path of ``binary``; skip the test without it, or fail under CI."""
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PodLoad:
    """What one fake engine pod does per second."""

    namespace: str
    pod: str
    engine: str
    """``vllm`` or ``sglang``: which metric names and histogram buckets it exposes."""
    decode_tps: float = 0.0
    prompt_tps: float = 0.0
    cached_tps: float = 0.0
    """Prompt tokens/s served from the local prefix cache."""
    external_cached_tps: float = 0.0
    """Prompt tokens/s loaded through a KV connector (vLLM only)."""
    tbt_per_second: float = 0.0
    """TBT observations per second, spread uniformly over ``tbt_range``."""
    tbt_range: tuple[float, float] = (0.025, 0.075)
    tbt_histogram: str | None = None
    """Histogram name without the engine prefix; None for the engine's current name."""
    ttft_per_second: float = 0.0
    """Time-to-first-token observations per second, spread uniformly over ``ttft_range``."""
    ttft_range: tuple[float, float] = (0.2, 0.6)
    kv_cache_usage: float | None = None
    """The KV-cache usage gauge's value; None: not exposed."""
    queued: float | None = None
    """The waiting-requests gauge's value; None: not exposed."""

    def quantile(self, q: float) -> float:
        """The true TBT quantile of this pod's uniform observations."""
        low, high = self.tbt_range
        return low + q * (high - low)


def _label_value(value: str) -> str:
    """Escape a label value for the text exposition format (not PromQL: a different grammar)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def histogram_rates(
    name: str, buckets: Sequence[float], per_second: float, spread: tuple[float, float]
) -> dict[tuple[str, str], float]:
    """Counter rates of a histogram whose observations fall uniformly over ``spread``."""
    low, high = spread
    rates = {}
    for le in (*buckets, math.inf):
        share = min(1.0, max(0.0, (le - low) / (high - low)))
        rates[(name + "_bucket", f'le="{"+Inf" if math.isinf(le) else le}"')] = per_second * share
    rates[(name + "_count", "")] = per_second
    rates[(name + "_sum", "")] = per_second * (low + high) / 2
    return rates


@dataclass
class _Counter:
    """A counter growing at ``rate`` per second since ``since``, on top of ``base``."""

    rate: float
    since: float
    base: float = 0.0

    def value(self, now: float) -> float:
        return self.base + self.rate * (now - self.since)

    def set_rate(self, rate: float, now: float) -> None:
        self.base, self.rate, self.since = self.value(now), rate, now


@dataclass
class _Pod:
    load: PodLoad
    counters: dict[tuple[str, str], _Counter] = field(default_factory=dict)

    def series(self) -> dict[tuple[str, str], float]:
        """(metric name, extra labels) -> per-second rate, for this pod's current load."""
        load = self.load
        prefix = f"{load.engine}:"
        rates: dict[tuple[str, str], float] = {
            (prefix + "generation_tokens_total", ""): load.decode_tps,
            (prefix + "prompt_tokens_total", ""): load.prompt_tps,
        }
        if load.engine == "vllm":
            rates[(prefix + "prefix_cache_hits_total", "")] = load.cached_tps
            rates[(prefix + "external_prefix_cache_hits_total", "")] = load.external_cached_tps
            buckets, histogram = VLLM_ITL_BUCKETS, "inter_token_latency_seconds"
        else:
            rates[(prefix + "cached_tokens_total", "")] = load.cached_tps
            buckets, histogram = SGLANG_TBT_BUCKETS, "inter_token_latency_seconds"
        rates |= histogram_rates(
            prefix + (load.tbt_histogram or histogram), buckets, load.tbt_per_second, load.tbt_range
        )
        if load.ttft_per_second:
            ttft_buckets = VLLM_TTFT_BUCKETS if load.engine == "vllm" else SGLANG_TTFT_BUCKETS
            ttft = prefix + "time_to_first_token_seconds"
            rates |= histogram_rates(ttft, ttft_buckets, load.ttft_per_second, load.ttft_range)
        return rates

    def render(self, now: float) -> list[str]:
        labels = f'namespace="{_label_value(self.load.namespace)}",pod="{_label_value(self.load.pod)}"'
        lines = []
        for (name, extra), rate in self.series().items():
            counter = self.counters.get((name, extra))
            if counter is None:
                counter = self.counters[(name, extra)] = _Counter(rate, now)
            elif counter.rate != rate:
                counter.set_rate(rate, now)
            lines.append(f"{name}{{{labels}{',' + extra if extra else ''}}} {counter.value(now)!r}")
        if self.load.kv_cache_usage is not None:
            lines.append(f"{KV_CACHE_GAUGE[self.load.engine]}{{{labels}}} {self.load.kv_cache_usage!r}")
        if self.load.queued is not None:
            lines.append(f"{QUEUE_GAUGE[self.load.engine]}{{{labels}}} {self.load.queued!r}")
        return lines


class Exporter:
    """An HTTP server speaking the Prometheus text format for a set of fake engine pods."""

    def __init__(self, loads: Sequence[PodLoad] = ()) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._pods = {(load.namespace, load.pod): _Pod(load) for load in loads}
        self._server: ThreadingHTTPServer | None = None
        self.first_scrape: float | None = None
        """Unix time of the first scrape: a rate window is full ``window`` seconds after it."""

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_load(self, load: PodLoad) -> None:
        """Add a pod or change its rates from the next scrape on (counters keep counting, no reset)."""
        with self._lock:
            pod = self._pods.get((load.namespace, load.pod))
            if pod is None:
                self._pods[(load.namespace, load.pod)] = _Pod(load)
            else:
                pod.load = load

    def remove(self, namespace: str, pod: str) -> None:
        """Stop exposing a pod's series (a deleted pod): Prometheus marks them stale at the next scrape."""
        with self._lock:
            self._pods.pop((namespace, pod), None)

    def update(self, namespace: str, pod: str, **changes: Any) -> None:
        with self._lock:
            current = self._pods[(namespace, pod)].load
        self.set_load(replace(current, **changes))

    def exposition(self) -> str:
        now = time.time()
        with self._lock:
            if self.first_scrape is None:
                self.first_scrape = now
            lines = [line for pod in self._pods.values() for line in pod.render(now)]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_window(self, window_seconds: float) -> None:
        """Sleep until a ``window_seconds`` rate window holds only scraped samples (plus a scrape)."""
        wait_until(lambda: self.first_scrape is not None, timeout=10)
        assert self.first_scrape is not None
        time.sleep(max(0.0, self.first_scrape + window_seconds + 2 * SCRAPE_INTERVAL_SECONDS - time.time()))

    def stop(self) -> None:
        """Stop answering: the next scrape fails and Prometheus marks the series stale."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class PrometheusServer:
    """The real ``prometheus`` binary on a free port, with its data kept across stop/start."""

    def __init__(
        self,
        workdir: Path,
        jobs: Mapping[str, Sequence[str]],
        rule_files: Sequence[Path] = (),
        binary: str | None = None,
    ) -> None:
        self.binary = binary or require_prometheus()
        self.port = free_port()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
                "scrape_timeout": f"{SCRAPE_INTERVAL_SECONDS}s",
                "evaluation_interval": f"{SCRAPE_INTERVAL_SECONDS}s",
            },
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {"job_name": job, "honor_labels": True, "static_configs": [{"targets": list(targets)}]}
                for job, targets in jobs.items()
            ],
        }
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        log = (self.workdir / "prometheus.log").open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.workdir / 'prometheus.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout}s")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Result of an instant query; raises with Prometheus' error text if it fails."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        response = requests.get(f"{self.url}/api/v1/query", params=params, timeout=5)
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"{expr!r}: {body.get('errorType')}: {body.get('error')}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 30.0, check: Callable[[list[dict[str, Any]]], bool] = bool) -> None:
        """Wait until ``expr`` gives a result that passes ``check`` (non-empty by default)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check(self.query(expr)):
                return
            time.sleep(0.25)
        raise AssertionError(f"{expr!r} gave no acceptable result within {timeout}s")


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something truthy; return that, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            assert result, f"condition not met within {timeout}s"
            return result
        time.sleep(interval)


class Launcher:
    """Starts exporters and Prometheus servers and stops them all on :meth:`close` (fixture teardown)."""

    def __init__(self, workdir: Path, prometheus_binary: str) -> None:
        self.workdir = workdir
        self.binary = prometheus_binary
        self._exporters: list[Exporter] = []
        self._servers: list[PrometheusServer] = []

    def exporter(self, loads: Sequence[PodLoad] = ()) -> Exporter:
        exporter = Exporter(loads)
        exporter.start()
        self._exporters.append(exporter)
        return exporter

    def prometheus(self, jobs: Mapping[str, Sequence[str]], rule_files: Sequence[Path] = ()) -> PrometheusServer:
        server = PrometheusServer(
            self.workdir / f"prometheus-{len(self._servers)}", jobs, rule_files, binary=self.binary
        )
        self._servers.append(server)
        server.start()
        return server

    def close(self) -> None:
        for server in self._servers:
            server.stop()
        for exporter in self._exporters:
            exporter.stop()
