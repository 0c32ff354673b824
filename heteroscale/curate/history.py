"""Reading a service's request history from Prometheus, as the operator reads its signals.

The endpoint is one the cluster admin configured (:meth:`~heteroscale.api.config.OperatorConfig.
endpoint_for` decides whether the namespace may use it), reached through the operator's own
client (:func:`~heteroscale.metrics.reader.connect`: its timeout, retries, CA and bearer token),
and every query is confined to the namespace and the pods of the named Deployments by the
operator's selector (:func:`~heteroscale.metrics.queries.selector`), which escapes every name.

Read from the Deployments whose pods see each request once with its whole prompt and its whole
generation: in a P/D service, the decode pods (vLLM's and SGLang's P/D proxies send prefill pods
the prompt with one output token).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import requests
from prometheus_api_client.exceptions import PrometheusApiClientException

from heteroscale.api.config import PrometheusEndpoint
from heteroscale.api.enums import Engine
from heteroscale.curate.profile import History, LengthHistogram
from heteroscale.metrics.names import ENGINE_METRICS, EngineMetrics
from heteroscale.metrics.queries import Scope, selector
from heteroscale.metrics.reader import auth_headers, connect

#: Prometheus answers at most this many points per series of a range query.
MAX_POINTS = 11_000


def engine_metrics(engine: Engine) -> EngineMetrics:
    metrics = ENGINE_METRICS.get(engine)
    if metrics is None:
        raise ValueError(f"engine {engine.value} has no built-in metrics; read a vllm or sglang service")
    return metrics


def rate_query(metrics: EngineMetrics, scope: Scope, deployments: Sequence[str], step_s: int) -> str:
    """Requests/s of the Deployments' pods over each step."""
    return f"sum(rate({metrics.requests}{{{selector(scope, deployments)}}}[{step_s}s]))"


def length_query(histogram: str, scope: Scope, deployments: Sequence[str], span_s: int) -> str:
    """Each bucket's observations over the whole range, summed over the pods."""
    return f"sum by (le) (increase({histogram}_bucket{{{selector(scope, deployments)}}}[{span_s}s]))"


def read_history(
    endpoint: PrometheusEndpoint,
    scope: Scope,
    engine: Engine,
    deployments: Sequence[str],
    start_s: float,
    end_s: float,
    step_s: int,
) -> History:
    """The request rate per step and the length histograms over [start, end]; ValueError saying
    what is wrong (unreachable, refused, no data) in one line."""
    steps = math.floor((end_s - start_s) / step_s)
    if steps < 1:
        raise ValueError(f"the range must hold at least one step of {step_s}s; --end must come after --start")
    if steps > MAX_POINTS:
        raise ValueError(
            f"{steps} steps of {step_s}s is more than Prometheus answers in one query ({MAX_POINTS}); "
            "raise --resolution or shorten the range"
        )
    metrics = engine_metrics(engine)
    end = start_s + steps * step_s
    span = int(end - start_s)
    name = f"{scope.namespace}/{','.join(deployments)}"
    client = connect(endpoint)
    try:
        client.headers = auth_headers(endpoint)
        rate, missing = _rate(client, rate_query(metrics, scope, deployments, step_s), start_s, step_s, steps)
        if not rate.any():
            raise ValueError(
                f"no {metrics.requests} series with requests for the pods of {', '.join(deployments)} in namespace "
                f"{scope.namespace} between {_clock(start_s)} and {_clock(end)}; "
                "check --deployments, --namespace and --engine"
            )
        prompt, generation = (
            _histogram(client, length_query(h, scope, deployments, span), end, f"{h} of {name}")
            for h in (metrics.prompt_length_histogram, metrics.generation_length_histogram)
        )
    except PrometheusApiClientException as error:
        raise ValueError(f"Prometheus at {endpoint.url} refused the query: {error}") from None
    except (requests.RequestException, OSError) as error:
        raise ValueError(f"cannot read Prometheus at {endpoint.url}: {error}") from None
    finally:
        client.close()
    return History(name, start_s, float(step_s), rate, prompt, generation, missing)


def _rate(client: Any, query: str, start_s: float, step_s: int, steps: int) -> tuple[np.ndarray, int]:
    """The value at the end of each step (a rate over that step); steps without a sample are 0."""
    answer = client.custom_query_range(
        query,
        start_time=datetime.fromtimestamp(start_s + step_s, UTC),
        end_time=datetime.fromtimestamp(start_s + steps * step_s, UTC),
        step=f"{step_s}s",
    )
    rate = np.zeros(steps)
    seen = np.zeros(steps, dtype=bool)
    for series in answer:
        for when, value in series.get("values", []):
            k = round((float(when) - start_s) / step_s) - 1
            number = float(value)
            if 0 <= k < steps and math.isfinite(number):
                rate[k] += max(number, 0.0)
                seen[k] = True
    return rate, int(steps - seen.sum())


def _histogram(client: Any, query: str, at_s: float, what: str) -> LengthHistogram:
    answer = client.custom_query(query, params={"time": f"{at_s:.3f}"})
    buckets: dict[float, float] = {}
    for series in answer:
        le = series.get("metric", {}).get("le")
        value = float(series["value"][1])
        if le is not None and math.isfinite(value):
            buckets[float(le)] = buckets.get(float(le), 0.0) + value
    if not buckets:
        raise ValueError(
            f"no {what} in the range (SGLang exports its token histograms only with --collect-tokens-histogram)"
        )
    return LengthHistogram.from_buckets(buckets, what)


def _clock(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
