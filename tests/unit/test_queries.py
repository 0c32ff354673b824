"""PromQL builders: exact queries per engine, pod scoping, and escaping that no value can escape."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from heteroscale.api import promql
from heteroscale.metrics import queries
from heteroscale.metrics.queries import Scope
from tests.metric_specs import group_spec

VALUES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


def unquote(literal: str) -> str:
    """A PromQL string literal's value, decoded as Prometheus' strutil.Unquote (Go's rules) does.

    Written from the Go spec, independently of the code under test; rejects what Prometheus rejects.
    """
    quote, body = literal[0], literal[1:-1]
    assert quote in "\"'"
    assert literal[-1] == quote
    assert len(literal) >= 2
    out, pos = [], 0
    while pos < len(body):
        char = body[pos]
        assert char != quote, f"unescaped quote at {pos} in {literal!r}"
        assert char != "\n", f"raw newline in {literal!r}"
        if char != "\\":
            out.append(char)
            pos += 1
            continue
        code = body[pos + 1]
        if code in _HEX_DIGITS:
            digits = body[pos + 2 : pos + 2 + _HEX_DIGITS[code]]
            assert len(digits) == _HEX_DIGITS[code]
            value = int(digits, 16)
            assert not 0xD800 <= value <= 0xDFFF
            out.append(chr(value))
            pos += 2 + _HEX_DIGITS[code]
        else:
            assert code in _SIMPLE, f"unknown escape \\{code}"
            assert code not in "\"'" or code == quote, f"\\{code} is not valid inside {quote}...{quote}"
            out.append(_SIMPLE[code])
            pos += 2
    return "".join(out)


_MATCHER = re.compile(r'([a-zA-Z_]\w*)(=~|!~|!=|=)("(?:[^"\\\n]|\\.)*")')


def parse_matchers(text: str) -> list[tuple[str, str, str]]:
    """Split ``name="..." , ...`` into (name, op, decoded value); fails if anything is left over."""
    found, pos = [], 0
    while pos < len(text):
        match = _MATCHER.match(text, pos)
        assert match, f"not a matcher at {pos}: {text[pos:]!r}"
        found.append((match[1], match[2], unquote(match[3])))
        pos = match.end()
        if pos < len(text):
            assert text[pos] == ",", text[pos:]
            pos += 1
    return found


def test_vllm_queries() -> None:
    metric = group_spec("vllm", window="60s", stale_after="120s").metric
    scope = 'namespace="serving",pod=~"(?:chat-decode|chat-decode-l20)(?:-[a-z0-9]+-[a-z0-9]+|-[0-9]+)"'
    serving = Scope("serving")
    assert (
        queries.decode_tps_query(metric, serving, ["chat-decode-l20", "chat-decode"])
        == f"sum(rate(vllm:generation_tokens_total{{{scope}}}[60s]))"
    )
    assert (
        queries.decode_sample_time_query(metric, serving, ["chat-decode", "chat-decode-l20"])
        == f"min(timestamp(vllm:generation_tokens_total{{{scope}}}))"
    )
    series = f"vllm:generation_tokens_total{{{scope}}}"
    assert queries.reporting_pods_query(metric, serving, ["chat-decode", "chat-decode-l20"]) == (
        f"count(count by (pod) (rate({series}[60s]) and {series}))"
    )
    prefill = 'namespace="serving",pod=~"(?:p)(?:-[a-z0-9]+-[a-z0-9]+|-[0-9]+)"'
    assert queries.prefill_missed_tps_query(metric, serving, ["p"]) == (
        f"clamp_min(sum(rate(vllm:prompt_tokens_total{{{prefill}}}[60s]))"
        f" - (sum(rate(vllm:prefix_cache_hits_total{{{prefill}}}[60s])) or vector(0))"
        f" - (sum(rate(vllm:external_prefix_cache_hits_total{{{prefill}}}[60s])) or vector(0)), 0)"
    )
    decode = 'namespace="serving",pod=~"(?:d)(?:-[a-z0-9]+-[a-z0-9]+|-[0-9]+)"'
    assert queries.tbt_quantile_query(metric, serving, ["d"], 0.9) == (
        f"histogram_quantile(0.9, sum by (le) (rate(vllm:inter_token_latency_seconds_bucket{{{decode}}}[60s])))"
        f" or histogram_quantile(0.9, sum by (le) (rate(vllm:time_per_output_token_seconds_bucket{{{decode}}}[60s])))"
    )
    assert queries.prefill_queue_queries(metric, serving, ["p"]) == (
        f"sum(vllm:num_requests_waiting{{{prefill}}})",
        f"sum(rate(vllm:time_to_first_token_seconds_count{{{prefill}}}[60s]))",
    )


def test_sglang_queries() -> None:
    metric = group_spec("sglang", window="30s").metric
    scope = 'k8s_namespace="n",pod=~"(?:d)(?:-[a-z0-9]+-[a-z0-9]+|-[0-9]+)"'
    n = Scope("n", namespace_label="k8s_namespace")  # an endpoint whose relabelling names it differently
    assert queries.decode_tps_query(metric, n, ["d"]) == f"sum(rate(sglang:generation_tokens_total{{{scope}}}[30s]))"
    assert queries.prefill_missed_tps_query(metric, n, ["d"]) == (
        f"clamp_min(sum(rate(sglang:prompt_tokens_total{{{scope}}}[30s]))"
        f" - (sum(rate(sglang:cached_tokens_total{{{scope}}}[30s])) or vector(0)), 0)"
    )
    assert "sglang:inter_token_latency_seconds_bucket" in str(queries.tbt_quantile_query(metric, n, ["d"], 0.5))
    assert queries.prefill_queue_queries(metric, n, ["d"]) == (
        f"sum(sglang:num_queue_reqs{{{scope}}})",
        f"sum(rate(sglang:time_to_first_token_seconds_count{{{scope}}}[30s]))",
    )


def test_custom_engine_reads_decode_and_its_age_from_its_own_selectors() -> None:
    query = 'sum(rate(tokens{namespace="{namespace}"}[{window}])) / on() group_left max(up{namespace="{namespace}"})'
    metric = group_spec("custom", query=query).metric
    a = Scope("a")
    assert queries.decode_tps_query(metric, a, ["d"]) == (
        'sum(rate(tokens{namespace="a"}[10s])) / on() group_left max(up{namespace="a"})'
    )
    assert queries.decode_sample_time_query(metric, a, ["d"]) == (
        'min(label_replace(timestamp({__name__="tokens",namespace="a"}), "heteroscale_selector", "0", "", "")'
        ' or label_replace(timestamp({__name__="up",namespace="a"}), "heteroscale_selector", "1", "", ""))'
    )
    assert queries.reporting_pods_query(metric, a, ["d"]) is None, "custom series need not be per pod"
    assert queries.prefill_missed_tps_query(metric, a, ["d"]) is None
    assert queries.tbt_quantile_query(metric, a, ["d"], 0.9) is None
    assert queries.prefill_queue_queries(metric, a, ["d"]) is None


def test_a_custom_query_that_reads_no_series_has_no_age() -> None:
    metric = group_spec("custom", query="vector(1200)").metric
    assert queries.decode_sample_time_query(metric, Scope("a"), ["d"]) is None


@pytest.mark.parametrize(
    "query",
    [
        "sum(rate(tokens[1m]))",  # no namespace at all
        'sum(rate(tokens{namespace="other-tenant"}[1m]))',
        'sum(rate(tokens{namespace=~"{namespace}|other"}[1m]))',  # a regex can reach further
        'sum(rate(tokens{namespace!="nobody"}[1m]))',
        'sum(rate(tokens{namespace="{namespace}"}[1m])) + sum(rate(other{job="x"}[1m]))',  # one selector of two
        'sum(rate({__name__=~".+"}[1m]))',
        'max_over_time(sum(rate(tokens{pod=~"{pods}"}[1m]))[5m:1m])',  # inside a subquery
    ],
)
def test_custom_queries_stay_in_their_namespace(query: str) -> None:
    metric = group_spec("custom", query=query).metric
    with pytest.raises(ValueError, match="not confined to namespace 'tenant-a'"):
        queries.decode_tps_query(metric, Scope("tenant-a"), ["d"])
    # Unless the cluster admin let this namespace read cluster-wide.
    assert queries.decode_tps_query(metric, Scope("tenant-a", cluster_wide=True), ["d"])


@pytest.mark.parametrize(
    "query",
    [
        'sum(rate(tokens{namespace="{namespace}"}[1m]))',
        # ANDed matchers: a second namespace matcher can only narrow the selection further.
        'sum(rate(tokens{namespace="{namespace}", namespace=~"x.*"}[1m]))',
        'sum(rate(tokens{namespace="{namespace}",pod=~"{pods}"}[{window}])) * 2 + vector(1)',
    ],
)
def test_custom_queries_confined_to_their_namespace_pass(query: str) -> None:
    metric = group_spec("custom", query=query).metric
    assert queries.decode_tps_query(metric, Scope("tenant-a"), ["d"])


@given(namespace=st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True))
def test_any_namespace_name_passes_its_own_check(namespace: str) -> None:
    metric = group_spec("custom", query='sum(rate(t{namespace="{namespace}", pod=~"{pods}"}[{window}]))').metric
    query = queries.decode_tps_query(metric, Scope(namespace), ["chat-decode"])
    [selector] = promql.selectors_of(query)
    assert ("namespace", "=", namespace) in selector.matchers


@pytest.mark.parametrize(
    ("deployments", "pod", "matches"),
    [
        (["chat"], "chat-7d9f8b6c5-abcde", True),
        (["chat"], "chat-decode-7d9f8b6c5-abcde", False),  # another Deployment whose name extends it
        (["chat-decode"], "chat-7d9f8b6c5-abcde", False),
        (["chat", "chat-decode"], "chat-decode-7d9f8b6c5-abcde", True),
        (["chat"], "chat-7d9f8b6c5", False),  # not a Deployment's pod
        (["chat"], "xchat-7d9f8b6c5-abcde", False),
        (["a.b"], "aXb-7d9f8b6c5-abcde", False),  # "." is literal
        (["lws"], "lws-0", True),  # a LeaderWorkerSet's leader (a StatefulSet's pod)
        (["lws"], "lws-0-1", True),  # and its worker
        (["lws-decode"], "lws-0", False),  # the leader of a target whose name it extends
        (["chat"], "chat-x", False),
    ],
)
def test_pods_regex_scopes_to_the_deployments_pods(deployments: list[str], pod: str, matches: bool) -> None:
    # Python's re agrees with RE2 on escaped punctuation; Prometheus anchors like fullmatch.
    assert bool(re.fullmatch(queries.pods_regex(deployments), pod)) is matches


@pytest.mark.parametrize("bad", [[], ()])
def test_no_deployments_is_an_error(bad: list[str]) -> None:
    with pytest.raises(ValueError, match="no Deployments"):
        queries.pods_regex(bad)


def test_lone_surrogate_cannot_be_represented() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        promql.string_literal("a\ud800")


@given(value=VALUES, quote=st.sampled_from("\"'"))
def test_string_content_round_trips(value: str, quote: str) -> None:
    assert unquote(quote + promql.string_content(value, quote) + quote) == value


@given(value=VALUES)
def test_the_parser_reads_our_literals_back(value: str) -> None:
    """What the namespace check sees (promql-parser's decoding) is what we wrote."""
    [selector] = promql.selectors_of(f"x{{a={promql.string_literal(value)}}}")
    assert selector.matchers == (("a", "=", value),)


@given(namespace=VALUES, deployments=st.lists(VALUES, min_size=1, max_size=3))
def test_selector_keeps_values_inside_their_matchers(namespace: str, deployments: list[str]) -> None:
    matchers = parse_matchers(queries.selector(Scope(namespace), deployments))
    assert [(name, op) for name, op, _ in matchers] == [("namespace", "="), ("pod", "=~")]
    assert matchers[0][2] == namespace
    pattern = matchers[1][2]
    for deployment in deployments:
        assert re.fullmatch(pattern, f"{deployment}-7d9f8b6c5-abcde", flags=re.DOTALL)


@given(namespace=VALUES, deployment=VALUES)
def test_placeholders_are_escaped_for_their_quotes(namespace: str, deployment: str) -> None:
    metric = group_spec(
        "custom", query="sum(rate(t{namespace=\"{namespace}\", pod=~'{pods}'}[{window}])) # {namespace}"
    ).metric
    # Cluster-wide: this checks the escaping alone, for any text (namespaces are DNS labels).
    query = queries.decode_tps_query(metric, Scope(namespace, cluster_wide=True), [deployment])
    match = re.fullmatch(
        r'sum\(rate\(t\{namespace=("(?:[^"\\]|\\.)*"), pod=~(\'(?:[^\'\\]|\\.)*\')\}\[10s\]\)\) # \{namespace\}',
        query,
        re.DOTALL,
    )
    assert match, query
    assert unquote(match[1]) == namespace
    assert unquote(match[2]) == queries.pods_regex([deployment])


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("sum(rate(t{namespace={namespace}}[1m]))", "inside"),
        ("sum(rate(t{namespace=`{namespace}`}[1m]))", "inside"),
        ('sum(rate(t{w="{window}"}[1m]))', "outside"),
    ],
)
def test_placeholders_where_they_cannot_be_made_safe(query: str, error: str) -> None:
    # Rejected with the spec (the API's lexer), and by the query builder too if a spec bypassed it.
    with pytest.raises(ValueError, match=error):
        group_spec("custom", query=query)
    metric = group_spec("custom", query="sum(x)").metric.model_copy(update={"query": query})
    with pytest.raises(ValueError, match=error):
        queries.decode_tps_query(metric, Scope("ns"), ["d"])


def test_quantile_out_of_range() -> None:
    with pytest.raises(ValueError, match="quantile"):
        queries.tbt_quantile_query(group_spec().metric, Scope("n"), ["d"], 1.0)
