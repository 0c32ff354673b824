"""PromQL for the signals the operator reads, built from a spec (pure: no I/O).

Every value that comes from a user's objects (namespace, Deployment names, a custom query's
placeholders) is escaped by :mod:`heteroscale.api.promql` first, so no name can end a string, add
a matcher or change the query around it.

Every query reads one namespace's series only (:class:`Scope`). The built-in queries scope engine
series by the namespace label (the endpoint's, ``namespace`` by default) and the ``pod`` label
(:data:`~heteroscale.metrics.names.POD_LABEL`); a pod of Deployment ``D`` is named
``D-<replicaset hash>-<pod hash>`` (a StatefulSet-backed ``/scale`` target's ``T-<ordinal>``),
which :func:`pods_regex` matches. A custom query must name its
namespace in every selector (:func:`heteroscale.api.promql.namespace_problem`) unless the cluster
admin lets its namespace read cluster-wide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from heteroscale.api import promql
from heteroscale.api.enums import Engine
from heteroscale.api.promql import fill_placeholders, re2_literal, string_literal
from heteroscale.api.spec import MetricSource, ScaleToZero
from heteroscale.metrics.names import ENGINE_METRICS, NAMESPACE_LABEL, POD_LABEL, EngineMetrics

# A Deployment's pod is D-<pod-template hash>-<random suffix>; a pod of a StatefulSet-backed
# /scale target is T-<ordinal> (a LeaderWorkerSet's leader; its workers, T-<ordinal>-<index>, have
# the first form). Neither part has a dash, so no pattern reaches the pods of a longer name.
_POD_SUFFIX = "(?:-[a-z0-9]+-[a-z0-9]+|-[0-9]+)"
# Marks each custom selector's timestamps apart, so ``or`` keeps all of them.
_SELECTOR_LABEL = "heteroscale_selector"


@dataclass(frozen=True)
class Scope:
    """Whose series a group's queries may read."""

    namespace: str
    namespace_label: str = NAMESPACE_LABEL
    """The label that carries a series' namespace on this Prometheus (the admin's endpoint says)."""
    cluster_wide: bool = False
    """The admin lets this namespace's custom queries read any namespace."""


def pods_regex(deployments: Sequence[str]) -> str:
    """RE2 pattern (fully anchored, as Prometheus anchors it) matching the pods of these Deployments.

    The two suffix parts contain no dash, so Deployment ``chat`` never matches the pods of
    ``chat-decode`` (``chat-decode-<hash>-<hash>`` has three parts after ``chat``).
    """
    names = sorted(set(deployments))
    if not names:
        raise ValueError("no Deployments to scope the query to")
    return "(?:" + "|".join(re2_literal(name) for name in names) + ")" + _POD_SUFFIX


def selector(scope: Scope, deployments: Sequence[str]) -> str:
    """Label matchers (without braces) for the series of these Deployments' pods."""
    namespace = f"{scope.namespace_label}={string_literal(scope.namespace)}"
    return f"{namespace},{POD_LABEL}=~{string_literal(pods_regex(deployments))}"


def _engine(metric: MetricSource) -> EngineMetrics | None:
    return ENGINE_METRICS.get(metric.engine)


def _rate_sum(series: str, matchers: str, window: int) -> str:
    return f"sum(rate({series}{{{matchers}}}[{window}s]))"


def decode_tps_query(metric: MetricSource, scope: Scope, decode_deployments: Sequence[str]) -> str:
    """Decode tokens/s of the group's decode pods over the metric window: one series, or none."""
    engine = _engine(metric)
    if engine is None:
        return custom_query(metric, scope, decode_deployments)
    return _rate_sum(engine.generation_tokens, selector(scope, decode_deployments), metric.window_seconds)


def decode_sample_time_query(metric: MetricSource, scope: Scope, decode_deployments: Sequence[str]) -> str | None:
    """Unix time of the oldest latest sample among the series the decode reading stands on.

    ``timestamp()`` of an instant selector is each series' newest sample time; a series whose pod
    went away (or whose scrape failed) has a staleness marker and drops out at once, so only series
    that still report count. The minimum is the reading's age: if any reporting series lags, the
    reading is as old as that series. For a custom query, the same over every selector it reads
    (each selector's timestamps labelled apart, so ``or`` keeps them all); None when it reads no
    series (``vector(3)``), which then cannot go stale.
    """
    engine = _engine(metric)
    if engine is not None:
        return f"min(timestamp({engine.generation_tokens}{{{selector(scope, decode_deployments)}}}))"
    found = promql.selectors_of(custom_query(metric, scope, decode_deployments))
    if not found:
        return None
    parts = [
        f'label_replace(timestamp({promql.render_selector(s)}), "{_SELECTOR_LABEL}", "{i}", "", "")'
        for i, s in enumerate(found)
    ]
    return f"min({' or '.join(parts)})"


def reporting_pods_query(metric: MetricSource, scope: Scope, decode_deployments: Sequence[str]) -> str | None:
    """How many decode pods contribute to the reading now: a rate over the window, and not gone.

    The operator compares it with the ready decode pods: fewer means the sum is partial (some pods
    stopped reporting) and must not scale anything in. None for a custom query, whose series need
    not be per pod.
    """
    engine = _engine(metric)
    if engine is None:
        return None
    matchers = selector(scope, decode_deployments)
    series = f"{engine.generation_tokens}{{{matchers}}}"
    return f"count(count by ({POD_LABEL}) (rate({series}[{metric.window_seconds}s]) and {series}))"


def prefill_missed_tps_query(metric: MetricSource, scope: Scope, prefill_deployments: Sequence[str]) -> str | None:
    """Prompt tokens/s the prefill pods had to compute: prompt tokens minus prefix-cache hits.

    A cache counter an engine does not expose counts as zero (``or vector(0)``); a rate difference
    that dips below zero between scrapes is clamped. None for a custom query.
    """
    engine = _engine(metric)
    if engine is None:
        return None
    matchers = selector(scope, prefill_deployments)
    window = metric.window_seconds
    missed = _rate_sum(engine.prompt_tokens, matchers, window)
    for cached in engine.cached_prompt_tokens:
        missed += f" - ({_rate_sum(cached, matchers, window)} or vector(0))"
    return f"clamp_min({missed}, 0)"


def tbt_quantile_query(
    metric: MetricSource, scope: Scope, decode_deployments: Sequence[str], quantile: float
) -> str | None:
    """Time between tokens at ``quantile`` over the decode pods, from the engine's histogram.

    With both histograms present (a deprecated one still shown), ``or`` keeps the preferred one's
    answer; they are never mixed bucket by bucket. None for a custom query.
    """
    engine = _engine(metric)
    if engine is None:
        return None
    return _quantile(engine.tbt_histograms, selector(scope, decode_deployments), metric.window_seconds, quantile)


def ttft_quantile_query(
    metric: MetricSource, scope: Scope, prefill_deployments: Sequence[str], quantile: float
) -> str | None:
    """Time to first token at ``quantile`` over the prefill pods. None for a custom query."""
    engine = _engine(metric)
    if engine is None:
        return None
    matchers = selector(scope, prefill_deployments)
    return _quantile((engine.ttft_histogram,), matchers, metric.window_seconds, quantile)


def prefill_queue_queries(
    metric: MetricSource, scope: Scope, prefill_deployments: Sequence[str]
) -> tuple[str, str] | None:
    """The requests waiting on the prefill pods now, and the prefills they ended per second over
    the window (the TTFT histogram's count): their ratio is the queue's wait by Little's law
    (:func:`heteroscale.policy.latency.queue_wait`). None for a custom query."""
    engine = _engine(metric)
    if engine is None:
        return None
    matchers = selector(scope, prefill_deployments)
    queued = f"sum({engine.queued_requests}{{{matchers}}})"
    return queued, _rate_sum(f"{engine.ttft_histogram}_count", matchers, metric.window_seconds)


def _quantile(histograms: Sequence[str], matchers: str, window: int, quantile: float) -> str:
    if not 0 < quantile < 1 or not math.isfinite(quantile):
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    parts = [
        f"histogram_quantile({quantile!r}, sum by (le) (rate({name}_bucket{{{matchers}}}[{window}s])))"
        for name in histograms
    ]
    return " or ".join(parts)


def custom_query(metric: MetricSource, scope: Scope, decode_deployments: Sequence[str]) -> str:
    """The spec's custom query with its placeholders filled in, confined to the group's namespace.

    ``{namespace}`` and ``{pods}`` (the :func:`pods_regex` of the decode Deployments) belong inside a
    string literal, e.g. ``pod=~"{pods}"``, and are escaped for its quote character; ``{window}``
    (e.g. ``60s``) belongs outside strings. A placeholder anywhere else raises ValueError, since
    filling it in could not be made safe; so does a selector that could read another namespace's
    series (unless the scope is cluster-wide). Text in comments is left alone.
    """
    if metric.engine is not Engine.CUSTOM:
        raise ValueError(f"engine {metric.engine} has built-in queries, not a custom one")
    values = {
        "namespace": scope.namespace,
        "pods": pods_regex(decode_deployments),
        "window": f"{metric.window_seconds}s",
    }
    return _confined(fill_placeholders(metric.query, values), scope)


def activation_query(zero: ScaleToZero, metric: MetricSource, scope: Scope) -> str:
    """``behavior.scaleToZero.activationQuery`` with ``{namespace}`` and ``{window}`` filled in,
    confined to the group's namespace as a custom decode query is (the spec already refused
    ``{pods}``: a group at zero has no pods). ValueError when it could read another namespace."""
    values = {"namespace": scope.namespace, "window": f"{metric.window_seconds}s"}
    return _confined(fill_placeholders(zero.activation_query, values), scope)


def _confined(query: str, scope: Scope) -> str:
    """``query`` unchanged, or ValueError when a selector could read outside the scope's namespace."""
    if not scope.cluster_wide:
        problem = promql.namespace_problem(query, scope.namespace, scope.namespace_label)
        if problem:
            raise ValueError(problem)
    return query
