"""The metrics layer against a real Prometheus scraping fake vLLM and SGLang engines.

The decoys in LOADS would change every total if scoping by namespace and Deployment pod names
leaked: a Deployment whose name extends a decode Deployment's, the same pod name in another
namespace, the prefill pods' few generated tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heteroscale.api import promql
from heteroscale.api.enums import Reason
from heteroscale.api.status import PolicyState
from heteroscale.metrics import queries
from heteroscale.metrics.histogram import VLLM_ITL_BUCKETS, VLLM_TTFT_BUCKETS, histogram_quantile
from heteroscale.metrics.queries import Scope
from heteroscale.metrics.reader import PrometheusReader, Signals
from heteroscale.policy.decide import decide
from tests.integration.prom import (
    SCRAPE_INTERVAL_SECONDS,
    Exporter,
    Launcher,
    PodLoad,
    PrometheusServer,
    histogram_rates,
    wait_until,
)
from tests.metric_specs import endpoint, group_spec, observation

pytestmark = pytest.mark.prometheus

WINDOW = 10
QUANTILE = 0.9
DECODE = ["chat-decode", "chat-decode-l20"]
PREFILL = ["chat-prefill"]
HOSTILE_NAMESPACE = 'we"ird\\ns}{\n,pod=~".*"'
HOSTILE_DEPLOYMENT = "a.b|c"

LOADS = [
    # vLLM: decode 1000 + 1400 + 600 = 3000 tok/s; prefill 3000 - 1200 - 300 = 1500 missed tok/s.
    PodLoad("serving-vllm", "chat-decode-7d9f8b6c5-abcde", "vllm", decode_tps=1000, tbt_per_second=40),
    PodLoad("serving-vllm", "chat-decode-7d9f8b6c5-fghij", "vllm", decode_tps=1400, tbt_per_second=60),
    PodLoad("serving-vllm", "chat-decode-l20-6b8c9d7f4-klmno", "vllm", decode_tps=600, tbt_per_second=20),
    PodLoad("serving-vllm", "chat-decode-l20-canary-5f6b7c8d9-pqrst", "vllm", decode_tps=90000),
    PodLoad(
        "serving-vllm",
        "chat-prefill-5f6b7c8d9-uvwxy",
        "vllm",
        decode_tps=50,
        prompt_tps=3000,
        cached_tps=1200,
        external_cached_tps=300,
        ttft_per_second=30,
        ttft_range=(0.2, 0.6),
        queued=12,
    ),
    PodLoad("serving-vllm", "chat-prefill-l20-5f6b7c8d9-zzzzz", "vllm", prompt_tps=70000, queued=500),
    PodLoad("other", "chat-decode-7d9f8b6c5-abcde", "vllm", decode_tps=77777, prompt_tps=77777),
    # SGLang: decode 2500 tok/s, TBT uniform on 20-40 ms; prefill 2000 - 800 = 1200 missed tok/s.
    PodLoad(
        "serving-sglang",
        "chat-decode-59d8c7b6f-abcde",
        "sglang",
        decode_tps=2500,
        tbt_per_second=50,
        tbt_range=(0.02, 0.04),
    ),
    PodLoad("serving-sglang", "chat-prefill-59d8c7b6f-fghij", "sglang", prompt_tps=2000, cached_tps=800),
    # An older SGLang that only exposes time_per_output_token_seconds.
    PodLoad(
        "old-sglang",
        "chat-decode-59d8c7b6f-abcde",
        "sglang",
        decode_tps=100,
        tbt_per_second=10,
        tbt_range=(0.04, 0.06),
        tbt_histogram="time_per_output_token_seconds",
    ),
    # Names no Kubernetes object may have, to prove they cannot change the query.
    PodLoad(HOSTILE_NAMESPACE, f"{HOSTILE_DEPLOYMENT}-5c7d9-abcde", "vllm", decode_tps=10),
    PodLoad(HOSTILE_NAMESPACE, "aXb|c-5c7d9-abcde", "vllm", decode_tps=1000),
    PodLoad(HOSTILE_NAMESPACE, "a.b-5c7d9-abcde", "vllm", decode_tps=1000),
]


@dataclass
class Stack:
    engines: Exporter
    stale: Exporter
    prometheus: PrometheusServer
    launch: Launcher


@pytest.fixture(scope="module")
def stack(launch: Launcher) -> Stack:
    engines = launch.exporter(LOADS)
    stale = launch.exporter([PodLoad("stale-ns", "chat-decode-5c7d9-abcde", "vllm", decode_tps=500)])
    prometheus = launch.prometheus({"engines": [engines.target], "stale": [stale.target]})
    return Stack(engines, stale, prometheus, launch)


def read(
    stack_or_url: Stack | str,
    namespace: str,
    engine: str = "vllm",
    *,
    timeout_seconds: float = 2.0,
    decode: list[str] = DECODE,
    **spec_args: str,
) -> Signals:
    url = stack_or_url if isinstance(stack_or_url, str) else stack_or_url.prometheus.url
    spec = group_spec(engine, window=f"{WINDOW}s", quantile=QUANTILE, **spec_args)
    reader = PrometheusReader(endpoint(url, timeout_seconds), retries=0)
    return reader.read(spec, Scope(namespace), decode, PREFILL, time.time())


def assert_close(measured: float | None, expected: float) -> None:
    assert measured is not None
    assert abs(measured - expected) <= 0.05 * expected, f"read {measured}, exporter rate {expected}"


@pytest.mark.parametrize(
    ("namespace", "engine", "decode_tps", "prefill_tps", "tbt"),
    [
        ("serving-vllm", "vllm", 3000, 1500, LOADS[0].quantile(QUANTILE)),
        ("serving-sglang", "sglang", 2500, 1200, LOADS[7].quantile(QUANTILE)),
        ("old-sglang", "sglang", 100, None, LOADS[9].quantile(QUANTILE)),
    ],
)
def test_signals_match_the_exporter_rates(
    stack: Stack, namespace: str, engine: str, decode_tps: float, prefill_tps: float | None, tbt: float
) -> None:
    stack.engines.wait_window(WINDOW)
    signals = read(stack, namespace, engine)
    assert signals.problem is None
    assert_close(signals.decode_tps, decode_tps)
    if prefill_tps is None:
        assert signals.prefill_missed_tps is None
    else:
        assert_close(signals.prefill_missed_tps, prefill_tps)
    assert_close(signals.tbt_seconds, tbt)
    assert signals.metric_age_seconds is not None
    # Every reporting series' newest sample is at most about one scrape old.
    assert 0 <= signals.metric_age_seconds <= 2 * SCRAPE_INTERVAL_SECONDS
    # The decode pods of DECODE in that namespace, and not the decoys.
    assert signals.decode_reporting == {"serving-vllm": 3, "serving-sglang": 1, "old-sglang": 1}[namespace]


def test_ttft_and_the_queue_of_the_prefill_pods_are_read_when_the_guard_watches_ttft(stack: Stack) -> None:
    stack.engines.wait_window(WINDOW)
    spec = group_spec(window=f"{WINDOW}s", quantile=QUANTILE)
    guard = spec.behavior.latency_guard
    assert guard is not None
    spec = spec.model_copy(
        update={
            "behavior": spec.behavior.model_copy(
                update={"latency_guard": guard.model_copy(update={"ttft_seconds": 1.0})}
            )
        }
    )
    signals = PrometheusReader(endpoint(stack.prometheus.url), retries=0).read(
        spec, Scope("serving-vllm"), DECODE, PREFILL, time.time()
    )
    # Uniform on 0.2-0.6 s: the 0.9 quantile is 0.56 s; histogram buckets make it approximate, and
    # an estimate on a bucket bound may come back a rounding error above it (0.6500000000000001).
    assert signals.ttft_seconds is not None
    assert signals.ttft_seconds == pytest.approx(0.55, abs=0.1 + 1e-9), signals.ttft_seconds
    # The prefill queue: the waiting gauge of the group's prefill pods only (not the decoy's 500),
    # and their prefills ended per second, the TTFT histogram's count (30 a second).
    assert signals.prefill_queued == 12
    assert signals.prefill_rps == pytest.approx(30, rel=0.05)
    # Without ttftSeconds none of it is read.
    unguarded = read(stack, "serving-vllm")
    assert (unguarded.ttft_seconds, unguarded.prefill_queued, unguarded.prefill_rps) == (None, None, None)


def _expected_quantile(quantile: float, loads: list[PodLoad], bounds: tuple[float, ...], attr: str) -> float | None:
    """The pure histogram_quantile on the bucket rates the loads expose (summed by le, as the query does)."""
    rates: dict[tuple[str, str], float] = {}
    for load in loads:
        per_second, spread = getattr(load, f"{attr}_per_second"), getattr(load, f"{attr}_range")
        for key, rate in histogram_rates("h", bounds, per_second, spread).items():
            rates[key] = rates.get(key, 0.0) + rate
    cumulative = [rates[("h_bucket", f'le="{le}"')] for le in bounds] + [rates[("h_bucket", 'le="+Inf"')]]
    return histogram_quantile(quantile, bounds, cumulative)


@pytest.mark.parametrize("quantile", [0.3, 0.5, 0.9, 0.99])
def test_the_simulators_histogram_quantile_is_prometheus(stack: Stack, quantile: float) -> None:
    """The simulator's latency guard reads its windows with heteroscale.metrics.histogram: on the
    same bucket rates it answers what Prometheus answers the operator, bucket interpolation and all."""
    stack.engines.wait_window(WINDOW)
    spec = group_spec(window=f"{WINDOW}s", quantile=quantile)
    guard = spec.behavior.latency_guard
    assert guard is not None
    guard = guard.model_copy(update={"ttft_seconds": 1.0})
    spec = spec.model_copy(update={"behavior": spec.behavior.model_copy(update={"latency_guard": guard})})
    signals = PrometheusReader(endpoint(stack.prometheus.url), retries=0).read(
        spec, Scope("serving-vllm"), DECODE, PREFILL, time.time()
    )
    vllm = [load for load in LOADS if load.namespace == "serving-vllm"]
    decode = [load for load in vllm if load.pod.rsplit("-", 2)[0] in DECODE]
    prefill = [load for load in vllm if load.pod.rsplit("-", 2)[0] in PREFILL]
    tbt = _expected_quantile(quantile, decode, VLLM_ITL_BUCKETS, "tbt")
    ttft = _expected_quantile(quantile, prefill, VLLM_TTFT_BUCKETS, "ttft")
    assert tbt is not None
    assert ttft is not None
    assert signals.tbt_seconds == pytest.approx(tbt, rel=1e-6)
    assert signals.ttft_seconds == pytest.approx(ttft, rel=1e-6)


def test_custom_query_fills_placeholders_and_ages_by_its_own_selectors(stack: Stack) -> None:
    stack.engines.wait_window(WINDOW)
    query = 'sum(rate(vllm:generation_tokens_total{namespace="{namespace}", pod=~"{pods}"}[{window}]))'
    signals = read(stack, "serving-vllm", "custom", query=query)
    assert signals.problem is None
    assert_close(signals.decode_tps, 3000)
    assert signals.metric_age_seconds is not None
    assert 0 <= signals.metric_age_seconds <= 2 * SCRAPE_INTERVAL_SECONDS
    assert signals.decode_reporting is None
    assert signals.prefill_missed_tps is None
    assert signals.tbt_seconds is None


def test_a_custom_query_cannot_read_another_namespace(stack: Stack) -> None:
    """The decoy pod in namespace "other" serves 77777 tok/s; a query that reaches it never runs."""
    stack.engines.wait_window(WINDOW)
    reaching = 'sum(rate(vllm:generation_tokens_total{namespace="other"}[{window}]))'
    signals = read(stack, "serving-vllm", "custom", query=reaching)
    assert signals.decode_tps is None
    assert str(signals.problem).startswith("cannot build the query: selector vllm:generation_tokens_total is not"), (
        signals.problem
    )


def test_hostile_names_are_matched_literally(stack: Stack) -> None:
    stack.engines.wait_window(WINDOW)
    spec = group_spec(window=f"{WINDOW}s")
    reader = PrometheusReader(endpoint(stack.prometheus.url), retries=0)
    signals = reader.read(spec, Scope(HOSTILE_NAMESPACE), [HOSTILE_DEPLOYMENT], [], time.time())
    assert signals.problem is None
    assert_close(signals.decode_tps, 10)
    assert signals.decode_reporting == 1


@settings(max_examples=60, deadline=None)
@given(
    namespace=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
    deployment=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30),
)
def test_prometheus_reads_escaped_values_back(stack: Stack, namespace: str, deployment: str) -> None:
    # absent() returns its selector's equality matchers as labels: the value Prometheus parsed.
    selector = queries.selector(Scope(namespace), [deployment])
    [series] = stack.prometheus.query(f"absent(no_such_metric{{{selector}}})")
    assert series["metric"] == {"namespace": namespace}
    # The parser the namespace check relies on reads the same value Prometheus did.
    [parsed] = promql.selectors_of(f"no_such_metric{{{selector}}}")
    assert ("namespace", "=", namespace) in parsed.matchers
    # label_replace with the pods regex on a label holding a pod name: RE2 decides the match.
    pattern = promql.string_literal(queries.pods_regex([deployment]))

    def matches(pod: str) -> bool:
        labelled = f"absent(no_such_metric{{p={promql.string_literal(pod)}}})"
        [series] = stack.prometheus.query(f'label_replace({labelled}, "m", "yes", "p", {pattern})')
        return series["metric"].get("m") == "yes"

    assert matches(f"{deployment}-5c7d9-abcde")
    literal_only = "".join("X" if char in "\\.+*?()|[]{}^$" else char for char in deployment)
    if literal_only != deployment:
        assert not matches(f"{literal_only}-5c7d9-abcde")


def hold_decision(signals: Signals, stale_after: str) -> Reason:
    spec = group_spec(stale_after=stale_after)
    decision = decide(spec, observation(signals.decode_tps, signals.metric_age_seconds), PolicyState(), time.time())
    assert decision.held
    assert (decision.prefill, decision.decode) == (2, 2)
    return decision.reason


def test_stopped_exporter_goes_stale_then_missing_and_the_policy_holds(stack: Stack) -> None:
    stale_after = 3
    stack.stale.wait_window(WINDOW)
    fresh = read(stack, "stale-ns", stale_after=f"{stale_after}s")
    assert fresh.problem is None
    assert_close(fresh.decode_tps, 500)

    stack.stale.stop()
    stale = wait_until(lambda: (s := read(stack, "stale-ns", stale_after=f"{stale_after}s")).problem and s, 15)
    # The failed scrape marks the series stale at once: the rate still has samples inside its
    # window, but no series reports any more, so the reading has no age and cannot be trusted.
    assert stale.problem == f"stale: no series reports now (staleAfter {stale_after}s)", stale.problem
    assert stale.decode_tps is not None
    assert stale.metric_age_seconds is None
    assert stale.decode_reporting == 0
    assert hold_decision(stale, f"{stale_after}s") is Reason.METRIC_STALE

    gone = wait_until(
        lambda: (s := read(stack, "stale-ns", stale_after=f"{stale_after}s")).decode_tps is None and s, 20
    )
    assert gone.problem == "empty result; no series reports now", gone.problem
    assert hold_decision(gone, f"{stale_after}s") is Reason.METRIC_MISSING


def test_a_silent_pod_makes_the_reading_partial(stack: Stack) -> None:
    """Two decode pods, scraped as separate targets; one stops answering. The sum is then only the
    other's share, which read alone would scale in: the reporting count says it is partial."""
    namespace = "partial-ns"
    a = stack.launch.exporter([PodLoad(namespace, "chat-decode-7d9f8b6c5-aaaaa", "vllm", decode_tps=300)])
    b = stack.launch.exporter([PodLoad(namespace, "chat-decode-7d9f8b6c5-bbbbb", "vllm", decode_tps=300)])
    own = stack.launch.prometheus({"a": [a.target], "b": [b.target]})
    both = wait_until(lambda: (s := read(own.url, namespace)).decode_reporting == 2 and s, 20)
    assert both.problem is None
    b.stop()
    partial = wait_until(lambda: (s := read(own.url, namespace)).decode_reporting == 1 and s, 15)
    # The pod that still reports is fresh, so the reading is not stale: only the count tells.
    assert partial.problem is None
    assert partial.metric_age_seconds is not None
    assert partial.metric_age_seconds <= 2 * SCRAPE_INTERVAL_SECONDS
    # Two ready decode instances, one reporting: the policy holds instead of scaling in.
    seen = replace(observation(partial.decode_tps, partial.metric_age_seconds), decode_reporting=1)
    decision = decide(group_spec(), seen, PolicyState(), time.time())
    assert decision.reason is Reason.METRIC_PARTIAL
    assert (decision.prefill, decision.decode) == (2, 2)
    own.stop()


def test_prometheus_down_is_unreachable_then_recovers(stack: Stack) -> None:
    own = stack.launch.prometheus({"engines": [stack.engines.target]})
    wait_until(lambda: read(own.url, "serving-vllm").decode_tps, 15)

    own.stop()
    down = read(own.url, "serving-vllm", timeout_seconds=1.0)
    assert down.decode_tps is None
    assert str(down.problem).startswith("unreachable:"), down.problem
    assert hold_decision(down, "30s") is Reason.METRIC_MISSING

    own.start()
    back = wait_until(lambda: (s := read(own.url, "serving-vllm")).problem is None and s, 15)
    assert back.decode_tps is not None
