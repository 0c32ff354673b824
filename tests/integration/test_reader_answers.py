"""Every odd answer from Prometheus maps to a defined outcome, and the policy holds on it.

A real Prometheus cannot be made to answer with several series for a sum, NaN, a 503 or a hang
on demand, so these table tests use a tiny local HTTP (and HTTPS) server that answers as told; the
normal path runs against the real server in test_reader_prometheus.py.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from heteroscale.api.enums import Reason
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import PolicyState
from heteroscale.metrics.queries import Scope
from heteroscale.metrics.reader import PrometheusReader, Signals, problem_kind
from heteroscale.policy.decide import decide
from tests.integration.prom import free_port
from tests.metric_specs import endpoint, group_spec, observation

NOW = 1_700_000_000.0


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    delay: float = 0.0


def vector(*values: str, at: float = NOW) -> dict[str, Any]:
    result = [{"metric": {"pod": f"p{i}"}, "value": [at, value]} for i, value in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@dataclass
class FakePrometheus:
    """Answers each query with what ``answer(query)`` says, and records the requests."""

    answer: Callable[[str], Answer] = lambda query: Answer(body=vector("1"))
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    """(query, time parameter, headers) of each request."""
    url: str = ""


@pytest.fixture
def fake() -> Iterator[FakePrometheus]:
    yield from serve(FakePrometheus())


def serve(state: FakePrometheus, tls: ssl.SSLContext | None = None) -> Iterator[FakePrometheus]:
    """Run the fake on a free local port, over TLS when a server context is given."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            params = parse_qs(urlparse(self.path).query)
            query = params["query"][0]
            state.requests.append((query, params["time"][0], dict(self.headers)))
            answer = state.answer(query)
            time.sleep(answer.delay)
            body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass  # the client gave up (timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a handler still sleeping for the timeout test must not hold up teardown
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def by_kind(decode: Answer, sample_time: Answer | None = None) -> Callable[[str], Answer]:
    """Answer the decode tokens/s query, its sample-time query and the secondary queries."""

    def answer(query: str) -> Answer:
        if query.startswith("min(timestamp("):
            return sample_time or Answer(body=vector(str(NOW - 1)))
        if query.startswith("count(count by (pod)"):
            return Answer(body=vector("2"))
        if query.startswith("sum(rate(vllm:generation_tokens_total"):
            return decode
        return Answer(body=vector("0.02"))

    return answer


def read(url: str, retries: int = 0, spec: PDServingGroupSpec | None = None, **files: str) -> Signals:
    spec = spec or group_spec(stale_after="30s")
    reader = PrometheusReader(endpoint(url, 0.3, **files), retries=retries)
    return reader.read(spec, Scope("ns"), ["d"], ["p"], NOW)


def policy_reason(signals: Signals) -> Reason:
    decision = decide(
        group_spec(stale_after="30s"), observation(signals.decode_tps, signals.metric_age_seconds), PolicyState(), NOW
    )
    assert decision.held
    assert (decision.prefill, decision.decode) == (2, 2)
    return decision.reason


ERROR_BODY = {"status": "error", "errorType": "bad_data", "error": "parse error: unexpected }"}


@pytest.mark.parametrize(
    ("decode", "sample_time", "problem", "reason"),
    [
        (
            Answer(body=vector()),
            Answer(body=vector()),
            "empty result; no series reports now",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(body=vector("1", "2", "3")),
            None,
            "3 series where one was expected; the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(body=vector("NaN")),
            None,
            "value is NaN; the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(body=vector("+Inf")),
            None,
            "value is +inf; the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(body=vector("-Inf")),
            None,
            "value is -inf; the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(body=vector("-5")),
            None,
            "value is negative (-5.0); the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(body=vector("many")),
            None,
            "bad response: sample [1700000000.0, 'many'] is not a number; the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(body=b"<html>proxy</html>"),
            None,
            "bad response: not JSON; the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(status=400, body=ERROR_BODY),
            None,
            "HTTP 400: parse error: unexpected }; the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (Answer(status=503, body=b"overloaded"), None, "HTTP 503", Reason.METRIC_MISSING),
        (
            Answer(status=302, body=b""),
            None,
            "HTTP 302; the most lagging series' newest sample is 1s old",
            Reason.METRIC_MISSING,
        ),
        (
            Answer(body=vector("1")),
            Answer(body=vector(str(NOW - 31))),
            "stale: the most lagging series' newest sample is 31s old (staleAfter 30s)",
            Reason.METRIC_STALE,
        ),
        (
            Answer(body=vector("1")),
            Answer(body=vector()),
            "stale: no series reports now (staleAfter 30s)",
            Reason.METRIC_STALE,
        ),
        (Answer(body=vector("1"), delay=1.0), None, "timeout after 0.3s", Reason.METRIC_MISSING),
    ],
)
def test_odd_answers_have_a_defined_outcome_and_the_policy_holds(
    fake: FakePrometheus, decode: Answer, sample_time: Answer | None, problem: str, reason: Reason
) -> None:
    fake.answer = by_kind(decode, sample_time)
    signals = read(fake.url)
    assert signals.problem == problem
    assert policy_reason(signals) is reason


def test_unreachable_server() -> None:
    signals = read(f"http://127.0.0.1:{free_port()}")
    assert signals == Signals(None, None, None, None, signals.problem)
    assert str(signals.problem).startswith("unreachable: "), signals.problem
    assert "refused" in str(signals.problem)
    assert policy_reason(signals) is Reason.METRIC_MISSING


def test_good_answer_carries_value_age_and_secondary_signals(fake: FakePrometheus) -> None:
    fake.answer = by_kind(Answer(body=vector("1234.5")), Answer(body=vector(str(NOW - 4.5))))
    assert read(fake.url) == Signals(1234.5, 4.5, 0.02, 0.02, None, decode_reporting=2)


def test_scalar_answer_is_one_value(fake: FakePrometheus) -> None:
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [NOW, "42"]}}
    fake.answer = lambda query: Answer(body=scalar)
    signals = read(fake.url, spec=group_spec("custom", query="scalar(vector(42))"))
    assert (signals.decode_tps, signals.metric_age_seconds, signals.problem) == (42.0, 0.0, None)


def test_secondary_failures_leave_decode_alone(fake: FakePrometheus) -> None:
    def answer(query: str) -> Answer:
        if "prompt_tokens" in query or "histogram_quantile" in query:
            return Answer(body=vector("NaN"))
        return by_kind(Answer(body=vector("10")))(query)

    fake.answer = answer
    assert read(fake.url) == Signals(10.0, 1.0, None, None, None, decode_reporting=2)


def test_retries_server_errors_then_reports_the_status(fake: FakePrometheus) -> None:
    fake.answer = lambda query: Answer(status=503, body=b"")
    assert read(fake.url, retries=2).problem == "HTTP 503"
    # Three tries of the decode query; a server error skips the rest of the tick.
    assert len(fake.requests) == 3


def test_a_retry_can_recover(fake: FakePrometheus) -> None:
    calls: list[str] = []

    def flaky(query: str) -> Answer:
        calls.append(query)
        return Answer(status=502, body=b"") if len(calls) == 1 else by_kind(Answer(body=vector("7")))(query)

    fake.answer = flaky
    assert read(fake.url, retries=1) == Signals(7.0, 1.0, 0.02, 0.02, None, decode_reporting=2)


def test_timeout_skips_the_rest_of_the_tick(fake: FakePrometheus) -> None:
    fake.answer = lambda query: Answer(body=vector("1"), delay=1.0)
    assert read(fake.url).problem == "timeout after 0.3s"
    assert len(fake.requests) == 1


def test_queries_are_evaluated_at_now(fake: FakePrometheus) -> None:
    fake.answer = by_kind(Answer(body=vector("1")), Answer(body=vector(str(NOW + 3))))
    signals = read(fake.url)
    assert {time for _, time, _ in fake.requests} == {f"{NOW:.3f}"}
    assert len(fake.requests) == 5  # decode, its sample time, reporting pods, prefill, TBT
    assert signals.metric_age_seconds == 0.0  # a sample "from the future" (clock skew) is age 0


def test_bearer_token_is_read_from_its_file_on_every_read(fake: FakePrometheus, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    spec = group_spec()
    reader = PrometheusReader(endpoint(fake.url, bearerTokenFile=str(token)), retries=0)
    reader.read(spec, Scope("ns"), ["d"], [], NOW)
    token.write_text("second")
    reader.read(spec, Scope("ns"), ["d"], [], NOW)
    assert {headers["Authorization"] for _, _, headers in fake.requests} == {"Bearer first", "Bearer second"}


def overlapping(fake: FakePrometheus, seconds: float) -> Callable[[], int]:
    """Make every answer take ``seconds``; returns how many were under way at once, at most."""
    lock, under_way, peak = threading.Lock(), [0], [0]

    def answer(query: str) -> Answer:
        with lock:
            under_way[0] += 1
            peak[0] = max(peak[0], under_way[0])
        time.sleep(seconds)
        with lock:
            under_way[0] -= 1
        return by_kind(Answer(body=vector("1")))(query)

    fake.answer = answer
    return lambda: peak[0]


@pytest.mark.parametrize(("connections", "expected"), [(8, 4), (2, 2)])
def test_reads_through_one_reader_run_at_once_up_to_its_connections(
    fake: FakePrometheus, connections: int, expected: int
) -> None:
    """The operator reads every group of an endpoint through one reader, from a pool of threads:
    one read at a time, a thousand groups' reads would queue behind each other's queries."""
    peak = overlapping(fake, 0.1)
    reader = PrometheusReader(endpoint(fake.url, 2.0), retries=0, connections=connections)
    spec = group_spec(stale_after="30s")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: reader.read(spec, Scope("ns"), [f"d{i}"], [], NOW), range(4)))
    assert all(r.decode_tps == 1.0 for r in results), results
    assert peak() == expected


def test_missing_token_file_holds(fake: FakePrometheus, tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    signals = read(fake.url, bearerTokenFile=str(absent))
    assert signals.problem == f"cannot read the endpoint's bearerTokenFile {absent}: No such file or directory"
    assert not fake.requests


def test_missing_ca_file_holds(tmp_path: Path) -> None:
    signals = read("https://127.0.0.1:1", caFile=str(tmp_path / "absent.pem"))
    assert str(signals.problem).startswith("unreachable: "), signals.problem


def test_no_decode_deployments_holds(fake: FakePrometheus) -> None:
    signals = PrometheusReader(endpoint(fake.url)).read(group_spec(), Scope("ns"), [], ["p"], NOW)
    assert signals == Signals(None, None, None, None, "no decode Deployments to read")
    assert not fake.requests


@pytest.mark.parametrize(
    ("problem", "kind"),
    [
        ("empty result; no series reports now", "empty"),
        ("3 series where one was expected", "several_series"),
        ("value is NaN", "invalid_value"),
        ("stale: the most lagging series' newest sample is 31s old (staleAfter 30s)", "stale"),
        ("HTTP 503", "http"),
        ("timeout after 5s", "timeout"),
        ("unreachable: [Errno 111] Connection refused", "unreachable"),
        ("bad response: not JSON", "bad_response"),
        ("cannot read the endpoint's bearerTokenFile /t: No such file or directory", "auth"),
        ("no decode Deployments to read", "other"),
    ],
)
def test_problem_kinds(problem: str, kind: str) -> None:
    assert problem_kind(problem) == kind


@pytest.fixture
def tls_fake(tmp_path: Path) -> Iterator[tuple[FakePrometheus, Path]]:
    """The fake behind TLS with a throwaway self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    for state in serve(FakePrometheus(), context):
        yield state, cert


def test_https_with_the_ca_file_reads_and_without_it_holds(tls_fake: tuple[FakePrometheus, Path]) -> None:
    fake, ca = tls_fake
    fake.answer = by_kind(Answer(body=vector("1234.5")), Answer(body=vector(str(NOW - 4.5))))
    assert read(fake.url, caFile=str(ca)) == Signals(1234.5, 4.5, 0.02, 0.02, None, decode_reporting=2)
    # The system CAs do not know a self-signed server: no value, and the policy holds.
    untrusted = read(fake.url)
    assert untrusted.decode_tps is None
    assert "certificate" in str(untrusted.problem).lower(), untrusted.problem
    assert policy_reason(untrusted) is Reason.METRIC_MISSING
