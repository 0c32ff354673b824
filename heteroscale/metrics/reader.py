"""Reads one PDServingGroup's signals from Prometheus and gives every odd answer a defined outcome.

Built on prometheus-api-client: one session per admin-configured endpoint
(:class:`~heteroscale.api.config.PrometheusEndpoint`), with its timeout, ``retries`` retries
(connection errors, read timeouts, 429 and 5xx, short exponential backoff; a server's Retry-After
is not obeyed, since a tick cannot wait minutes), its bearer token re-read from the admin's file on
every read (projected tokens rotate) and its CA bundle. Nothing a PDServingGroup says reaches the
URL, the token or the CA: a group only picks an endpoint by name, and its queries are confined to
its namespace (:class:`~heteroscale.metrics.queries.Scope`).

Outcomes for decode tokens/s, the signal that drives scaling; each leaves ``decode_tps`` None and
says why in ``problem``, and the policy holds on None:

============================== ==============================================
answer                         ``problem``
============================== ==============================================
no series                      ``empty result``
several series                 ``N series where one was expected``
NaN, +Inf, -Inf, negative      ``value is NaN`` (etc.)
not a number / not JSON        ``bad response: ...``
HTTP status other than 2xx     ``HTTP 503`` (with Prometheus' error text)
timeout                        ``timeout after 5s``
connection failed              ``unreachable: ...``
============================== ==============================================

A value whose oldest reporting series lags more than ``staleAfter`` is kept, with its age, and
``problem`` says ``stale: ...``; the policy holds on the age. How many decode pods report is read
too, so the operator can tell a partial sum (some ready pods silent) from a low one. The
secondary signals (KV-cache-missed prefill tokens/s, TBT, TTFT) are None on any odd answer; they never
hold the group on their own.
This module never raises for a bad answer and never decides anything.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import queue
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from heteroscale.api.config import PrometheusEndpoint
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.metrics import queries
from heteroscale.metrics.queries import Scope

log = logging.getLogger(__name__)

#: Reads of one endpoint that may run at once (each holds one HTTP connection to it).
CONNECTIONS = 8

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_HTTP_ERROR = "HTTP Status Code "


@dataclass(frozen=True)
class Signals:
    """What one read found; the operator copies it into the policy's Observation."""

    decode_tps: float | None
    """Decode tokens/s over the window; None when no trustworthy value."""
    metric_age_seconds: float | None
    """Age of the reading: now minus the newest sample of its most lagging series; None when unknown."""
    prefill_missed_tps: float | None
    """KV-cache-missed prefill tokens/s of the prefill pods (secondary)."""
    tbt_seconds: float | None
    """TBT at spec.behavior.latencyGuard.quantile; None without a guard or without data."""
    problem: str | None
    """Why decode_tps is None or stale, for a person; None when fine."""
    ttft_seconds: float | None = None
    """TTFT of the prefill pods at the guard's quantile; None unless the guard sets ttftSeconds."""
    prefill_queued: float | None = None
    """Requests waiting on the prefill pods now; None unless the guard sets ttftSeconds."""
    prefill_rps: float | None = None
    """Prefills the prefill pods ended per second over the window; None as prefill_queued."""
    decode_reporting: int | None = None
    """Decode pods whose series contribute to decode_tps now; None when unknown (custom queries)."""
    activation: float | None = None
    """``behavior.scaleToZero.activationQuery``'s value; None without scaleToZero or on any odd
    answer (no series, several, NaN/Inf, negative, an error): the policy then holds a group at zero."""


def connect(source: PrometheusEndpoint, *, retries: int = 2) -> PrometheusConnect:
    """A client of ``source`` with its timeout, CA bundle and ``retries`` retries (connection
    errors, read timeouts, 429 and 5xx, short exponential backoff); every reader of an endpoint
    (the operator's, ``heteroscale curate``'s history) connects through here."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=0.2,
        status_forcelist=_RETRY_STATUSES,
        allowed_methods=frozenset({"GET"}),
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    session.verify = source.ca_file or True
    return PrometheusConnect(url=source.url.rstrip("/"), retry=retry, session=session, timeout=source.timeout_seconds)


def auth_headers(source: PrometheusEndpoint) -> dict[str, str] | None:
    """The bearer-token header for ``source`` (read again on every call: projected tokens rotate);
    None without a token. OSError naming the admin's file when it cannot be read."""
    path = source.bearer_token_file
    if not path:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        # The admin's file: say which one, so the admin can fix the mount.
        raise OSError(f"cannot read the endpoint's bearerTokenFile {path}: {error.strerror or error}") from error
    return {"Authorization": f"Bearer {token}"}


class QueryFailed(Exception):
    """One query gave no usable value; the message is the ``problem`` a person reads."""

    def __init__(self, problem: str, *, transport: bool = False) -> None:
        super().__init__(problem)
        self.problem = problem
        self.transport = transport
        """True when the server was not reached or did not answer in time: later queries would fail alike."""


class PrometheusReader:
    """Runs the groups' queries against one Prometheus source. Blocking; call it from threads.

    Up to ``connections`` reads run at once, each through a client (HTTP session) of its own: a
    client's auth header is set per read, so two reads never share one. One at a time, a thousand
    groups' reads would queue: a read is several queries (16 ms measured against a local Prometheus
    holding a thousand groups' series), and a thousand groups every 15 s need 67 reads a second.
    """

    def __init__(self, source: PrometheusEndpoint, *, retries: int = 2, connections: int = CONNECTIONS) -> None:
        self._source = source
        self._idle: queue.SimpleQueue[PrometheusConnect] = queue.SimpleQueue()
        self._clients = [connect(source, retries=retries) for _ in range(connections)]
        for client in self._clients:
            self._idle.put(client)

    def close(self) -> None:
        """Release the HTTP connections."""
        for client in self._clients:
            client.close()

    def read(
        self,
        spec: PDServingGroupSpec,
        scope: Scope,
        decode_deployments: Sequence[str],
        prefill_deployments: Sequence[str],
        now: float,
    ) -> Signals:
        """Decode tokens/s and its age, plus the secondary signals, evaluated at ``now``."""
        client = self._idle.get()
        try:
            activation = None
            try:
                client.headers = self._auth_headers()
                reading = _Reading(client, self._source)
                # Read first and apart from the decode signals: a group at zero has no decode
                # Deployment to read, and the activation reading is then all it has.
                activation = reading.activation(spec, scope, now)
                signals = reading.signals(spec, scope, decode_deployments, prefill_deployments, now)
            except QueryFailed as failed:
                signals = Signals(None, None, None, None, failed.problem)
            return replace(signals, activation=activation)
        finally:
            self._idle.put(client)

    def _auth_headers(self) -> dict[str, str] | None:
        try:
            return auth_headers(self._source)
        except OSError as error:
            raise QueryFailed(str(error)) from error


class _Reading:
    """One read's queries, through one client of the reader's."""

    def __init__(self, client: PrometheusConnect, source: PrometheusEndpoint) -> None:
        self._client = client
        self._source = source

    def signals(
        self,
        spec: PDServingGroupSpec,
        scope: Scope,
        decode_deployments: Sequence[str],
        prefill_deployments: Sequence[str],
        now: float,
    ) -> Signals:
        metric = spec.metric
        guard = spec.behavior.latency_guard
        if not decode_deployments:
            raise QueryFailed("no decode Deployments to read")
        try:
            tps_query = queries.decode_tps_query(metric, scope, decode_deployments)
            time_query = queries.decode_sample_time_query(metric, scope, decode_deployments)
            reporting_query = queries.reporting_pods_query(metric, scope, decode_deployments)
            prefill_query = None
            if prefill_deployments:
                prefill_query = queries.prefill_missed_tps_query(metric, scope, prefill_deployments)
            tbt_query = ttft_query = None
            queue_queries: tuple[str | None, str | None] = (None, None)
            if guard is not None:
                tbt_query = queries.tbt_quantile_query(metric, scope, decode_deployments, guard.quantile)
                if guard.ttft_seconds is not None and prefill_deployments:
                    ttft_query = queries.ttft_quantile_query(metric, scope, prefill_deployments, guard.quantile)
                    queue_queries = queries.prefill_queue_queries(metric, scope, prefill_deployments) or (None, None)
        except ValueError as error:
            raise QueryFailed(f"cannot build the query: {error}") from error

        decode_tps: float | None = None
        problem: str | None = None
        try:
            value = self._value(tps_query, now)
            if value < 0:
                raise QueryFailed(f"value is negative ({value})")
            decode_tps = value
        except QueryFailed as failed:
            if failed.transport:
                raise
            problem = failed.problem

        age: float | None
        if time_query is None:
            # The query reads no series (a constant): nothing behind it can go stale.
            age = 0.0 if decode_tps is not None else None
        else:
            try:
                # Prometheus and the operator may disagree on the clock by a little; never negative.
                age = max(0.0, now - self._value(time_query, now))
                seen = f"the most lagging series' newest sample is {age:.0f}s old"
            except QueryFailed as failed:
                if failed.transport:
                    raise
                age = None
                empty = failed.problem == EMPTY
                seen = "no series reports now" if empty else f"sample time: {failed.problem}"
            if problem is not None:
                problem = f"{problem}; {seen}"
            elif age is None or age > metric.stale_after_seconds:
                problem = f"stale: {seen} (staleAfter {metric.stale_after})"

        reporting: int | None = None
        if reporting_query is not None:
            try:
                reporting = round(self._value(reporting_query, now))
            except QueryFailed as failed:
                if failed.transport:
                    raise
                # count() of nothing is an empty answer: no pod reports.
                reporting = 0 if failed.problem == EMPTY else None
        return Signals(
            decode_tps=decode_tps,
            metric_age_seconds=age,
            prefill_missed_tps=self._secondary("KV-cache-missed prefill tokens/s", prefill_query, now),
            tbt_seconds=self._secondary("TBT", tbt_query, now),
            problem=problem,
            ttft_seconds=self._secondary("TTFT", ttft_query, now),
            prefill_queued=self._secondary("prefill requests waiting", queue_queries[0], now),
            prefill_rps=self._secondary("prefills ended per second", queue_queries[1], now),
            decode_reporting=reporting,
        )

    def activation(self, spec: PDServingGroupSpec, scope: Scope, now: float) -> float | None:
        """The activation reading (only with scaleToZero); None on any odd answer. A query that
        could read outside the group's namespace is never sent (the operator refuses such a group
        as NotAllowed before it reads anything: :func:`heteroscale.operator.access.resolve`)."""
        zero = spec.behavior.scale_to_zero
        if zero is None:
            return None
        try:
            query = queries.activation_query(zero, spec.metric, scope)
        except ValueError as error:
            log.warning("activationQuery not sent: %s", error)
            return None
        try:
            value = self._value(query, now)
        except QueryFailed as failed:
            if failed.transport:
                raise
            log.debug("no activation reading: %s", failed.problem)
            return None
        return value if value >= 0 else None

    def _secondary(self, what: str, query: str | None, now: float) -> float | None:
        if query is None:
            return None
        try:
            return max(0.0, self._value(query, now))
        except QueryFailed as failed:
            log.debug("no %s: %s", what, failed.problem)
            return None

    def _value(self, query: str, now: float) -> float:
        """The single finite number ``query`` gives at ``now``, or QueryFailed saying why not."""
        timeout = self._source.timeout_seconds
        try:
            result = self._client.custom_query(query, params={"time": f"{now:.3f}"})
        except PrometheusApiClientException as error:
            raise _http_failure(str(error)) from error
        except requests.exceptions.JSONDecodeError as error:
            raise QueryFailed("bad response: not JSON") from error
        except requests.RequestException as error:
            raise QueryFailed(_transport_problem(error, timeout), transport=True) from error
        except OSError as error:
            # requests raises a bare OSError when caFile does not exist.
            raise QueryFailed(f"unreachable: {error}", transport=True) from error
        except (KeyError, TypeError) as error:
            raise QueryFailed("bad response: no data.result") from error
        return _single_value(result)


#: ``problem`` for a query that matched no series.
EMPTY = "empty result"


def _single_value(result: Any) -> float:
    if not isinstance(result, list):
        raise QueryFailed(f"bad response: result is {type(result).__name__}, not a list")
    if len(result) == 2 and not isinstance(result[0], dict):
        sample = result  # a scalar answer: [time, "value"]
    elif not result:
        raise QueryFailed(EMPTY)
    elif len(result) > 1:
        raise QueryFailed(f"{len(result)} series where one was expected")
    elif not isinstance(result[0], dict) or "value" not in result[0]:
        raise QueryFailed("bad response: not an instant vector")
    else:
        sample = result[0]["value"]
    try:
        value = float(sample[1])
    except (TypeError, ValueError, IndexError) as error:
        raise QueryFailed(f"bad response: sample {sample!r} is not a number") from error
    if math.isnan(value):
        raise QueryFailed("value is NaN")
    if math.isinf(value):
        raise QueryFailed(f"value is {value:+}")
    return value


def _http_failure(message: str) -> QueryFailed:
    """Turn prometheus-api-client's ``HTTP Status Code 503 (b'...')`` into ``HTTP 503: <error>``."""
    if not message.startswith(_HTTP_ERROR):
        return QueryFailed(f"bad response: {message}")
    code, _, body = message.removeprefix(_HTTP_ERROR).partition(" ")
    problem = f"HTTP {code}"
    try:
        detail = json.loads(ast.literal_eval(body.strip()[1:-1]))["error"]
    except (ValueError, SyntaxError, TypeError, KeyError):
        detail = None  # not Prometheus' JSON error body (a proxy's page, say): the status says enough
    if isinstance(detail, str) and detail:
        problem += f": {detail}"
    # A server error survived the retries; the next query of this tick would meet the same.
    return QueryFailed(problem, transport=code.startswith("5"))


def _transport_problem(error: requests.RequestException, timeout: float) -> str:
    cause = error.args[0] if error.args else None
    reason = cause.reason if isinstance(cause, MaxRetryError) else cause
    # urllib3 derives NewConnectionError (refused, no route, name not found) from ConnectTimeoutError.
    timed_out = isinstance(reason, ReadTimeoutError | ConnectTimeoutError | TimeoutError) or isinstance(
        error, requests.Timeout
    )
    if timed_out and not isinstance(reason, NewConnectionError):
        return f"timeout after {timeout:g}s"
    # urllib3 prefixes the cause with the connection's repr; the part after it is what happened.
    return f"unreachable: {str(reason).rsplit('): ', 1)[-1]}"


# ``problem`` prefixes and the bounded ``kind`` label they are counted under (the text itself is
# unbounded: it quotes server errors).
_PROBLEM_KINDS = (
    (EMPTY, "empty"),
    ("value is", "invalid_value"),
    ("stale", "stale"),
    ("HTTP ", "http"),
    ("timeout", "timeout"),
    ("unreachable", "unreachable"),
    ("bad response", "bad_response"),
    ("cannot read the endpoint's bearerTokenFile", "auth"),
)


def problem_kind(problem: str) -> str:
    """A short, bounded name for a :attr:`Signals.problem`, for a metric label."""
    if problem.split(" ", 1)[0].isdigit() and "series where one was expected" in problem:
        return "several_series"
    return next((kind for prefix, kind in _PROBLEM_KINDS if problem.startswith(prefix)), "other")
