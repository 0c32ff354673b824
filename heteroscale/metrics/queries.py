"""PromQL for the signals the operator reads, built from a spec (pure: no I/O).

Every value that comes from a user's objects (namespace, Deployment names, a custom query's
placeholders) passes through :func:`string_content` and, inside a regex, :func:`re2_literal`
first, so no name can end a string, add a matcher or change the query around it.

The built-in queries scope engine series by the ``namespace`` and ``pod`` labels
(:data:`~heteroscale.metrics.names.NAMESPACE_LABEL`, :data:`~heteroscale.metrics.names.POD_LABEL`);
a pod of Deployment ``D`` is named ``D-<replicaset hash>-<pod hash>``, which :func:`pods_regex` matches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from heteroscale.api.enums import Engine
from heteroscale.api.promql import lex, placeholder_problem
from heteroscale.api.spec import MetricSource
from heteroscale.metrics.names import ENGINE_METRICS, NAMESPACE_LABEL, POD_LABEL, EngineMetrics

# Go's regexp.QuoteMeta set: the only characters RE2 gives a meaning to outside a class.
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")
# Escapes Go's strconv (and Prometheus' strutil.Unquote) reads the same way in "..." and '...'.
_SHORT_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Names a ReplicaSet's pod-template hash and a pod's random suffix are made of.
_POD_SUFFIX = "-[a-z0-9]+-[a-z0-9]+"
# Points per age subquery: the age is known to within lookback / this many seconds.
_AGE_POINTS = 60


def string_content(value: str, quote: str = '"') -> str:
    """``value`` escaped to sit between two ``quote`` characters of a PromQL string literal.

    Printable ASCII stays readable; quotes and backslashes are escaped; control characters and
    everything beyond ASCII become ``\\x``/``\\u``/``\\U`` escapes, which Prometheus decodes back to
    the same code point. Lone surrogates have no UTF-8 form and raise ValueError.
    """
    out: list[str] = []
    for char in value:
        code = ord(char)
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char == quote:
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"{value!r} holds a lone surrogate, which PromQL cannot represent")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def string_literal(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal."""
    return f'"{string_content(value)}"'


def re2_literal(value: str) -> str:
    """A RE2 pattern matching exactly ``value`` (Go's ``regexp.QuoteMeta``)."""
    return "".join("\\" + char if char in _RE2_SPECIAL else char for char in value)


def pods_regex(deployments: Sequence[str]) -> str:
    """RE2 pattern (fully anchored, as Prometheus anchors it) matching the pods of these Deployments.

    The two suffix parts contain no dash, so Deployment ``chat`` never matches the pods of
    ``chat-decode`` (``chat-decode-<hash>-<hash>`` has three parts after ``chat``).
    """
    names = sorted(set(deployments))
    if not names:
        raise ValueError("no Deployments to scope the query to")
    return "(?:" + "|".join(re2_literal(name) for name in names) + ")" + _POD_SUFFIX


def selector(namespace: str, deployments: Sequence[str]) -> str:
    """Label matchers (without braces) for the series of these Deployments' pods."""
    return f"{NAMESPACE_LABEL}={string_literal(namespace)},{POD_LABEL}=~{string_literal(pods_regex(deployments))}"


def _engine(metric: MetricSource) -> EngineMetrics | None:
    return ENGINE_METRICS.get(metric.engine)


def _rate_sum(series: str, matchers: str, window: int) -> str:
    return f"sum(rate({series}{{{matchers}}}[{window}s]))"


def decode_tps_query(metric: MetricSource, namespace: str, decode_deployments: Sequence[str]) -> str:
    """Decode tokens/s of the group's decode pods over the metric window: one series, or none."""
    engine = _engine(metric)
    if engine is None:
        return custom_query(metric, namespace, decode_deployments)
    return _rate_sum(engine.generation_tokens, selector(namespace, decode_deployments), metric.window_seconds)


def decode_sample_time_query(metric: MetricSource, namespace: str, decode_deployments: Sequence[str]) -> str | None:
    """Unix time of the newest decode-token sample, looking back ``window + staleAfter``.

    ``timestamp()`` of an instant selector is the sample's own time, but a failed scrape writes a
    staleness marker that empties the selector at once; the subquery keeps the last time a sample
    was seen. Steps are aligned, so the time is up to one step early (lookback / 60 seconds).
    None for a custom query, whose inputs the operator cannot name.
    """
    engine = _engine(metric)
    if engine is None:
        return None
    lookback = metric.window_seconds + metric.stale_after_seconds
    step = max(1, lookback // _AGE_POINTS)
    matchers = selector(namespace, decode_deployments)
    return f"max(max_over_time(timestamp({engine.generation_tokens}{{{matchers}}})[{lookback}s:{step}s]))"


def prefill_missed_tps_query(metric: MetricSource, namespace: str, prefill_deployments: Sequence[str]) -> str | None:
    """Prompt tokens/s the prefill pods had to compute: prompt tokens minus prefix-cache hits.

    A cache counter an engine does not expose counts as zero (``or vector(0)``); a rate difference
    that dips below zero between scrapes is clamped. None for a custom query.
    """
    engine = _engine(metric)
    if engine is None:
        return None
    matchers = selector(namespace, prefill_deployments)
    window = metric.window_seconds
    missed = _rate_sum(engine.prompt_tokens, matchers, window)
    for cached in engine.cached_prompt_tokens:
        missed += f" - ({_rate_sum(cached, matchers, window)} or vector(0))"
    return f"clamp_min({missed}, 0)"


def tbt_quantile_query(
    metric: MetricSource, namespace: str, decode_deployments: Sequence[str], quantile: float
) -> str | None:
    """Time between tokens at ``quantile`` over the decode pods, from the engine's histogram.

    With both histograms present (a deprecated one still shown), ``or`` keeps the preferred one's
    answer; they are never mixed bucket by bucket. None for a custom query.
    """
    engine = _engine(metric)
    if engine is None:
        return None
    if not 0 < quantile < 1 or not math.isfinite(quantile):
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    matchers = selector(namespace, decode_deployments)
    window = metric.window_seconds
    parts = [
        f"histogram_quantile({quantile!r}, sum by (le) (rate({name}_bucket{{{matchers}}}[{window}s])))"
        for name in engine.tbt_histograms
    ]
    return " or ".join(parts)


def custom_query(metric: MetricSource, namespace: str, decode_deployments: Sequence[str]) -> str:
    """The spec's custom query with its placeholders filled in.

    ``{namespace}`` and ``{pods}`` (the :func:`pods_regex` of the decode Deployments) belong inside a
    string literal, e.g. ``pod=~"{pods}"``, and are escaped for its quote character; ``{window}``
    (e.g. ``60s``) belongs outside strings. A placeholder anywhere else raises ValueError, since
    filling it in could not be made safe. Text in comments is left alone.
    """
    if metric.engine is not Engine.CUSTOM:
        raise ValueError(f"engine {metric.engine} has built-in queries, not a custom one")
    values = {"namespace": namespace, "pods": pods_regex(decode_deployments), "window": f"{metric.window_seconds}s"}
    return fill_placeholders(metric.query, values)


def fill_placeholders(query: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders (see :func:`custom_query` for where each may stand), reading the
    query with the same lexer that validated it (:func:`heteroscale.api.promql.lex`)."""
    out: list[str] = []
    for token in lex(query)[0]:
        if token.placeholder is None:
            out.append(token.text)
            continue
        problem = placeholder_problem(token.placeholder, token.quote)
        if problem:
            raise ValueError(problem)
        value = values[token.placeholder]
        # A label value is escaped for the string it stands in; the window is a bare duration.
        out.append(value if token.quote is None else string_content(value, token.quote))
    return "".join(out)
