"""Engine metric names the built-in queries read, and the labels that scope them to a group.

Names, types and meanings are taken from the project's serving-metrics reference
(``data/serving_metrics/metrics_reference.csv``), which was compiled from the engines' source:
vLLM V1 ``vllm/v1/metrics/loggers.py`` (vllm-project/vllm, ~v0.12) and SGLang
``python/sglang/srt/metrics/collector.py`` (sgl-project/sglang @ 93d04878). Counters are named as
exposed: prometheus-client appends ``_total``; histograms are read through their ``_bucket`` series.
"""

from __future__ import annotations

from dataclasses import dataclass

from heteroscale.api.enums import Engine

#: Labels the usual Kubernetes pod service discovery relabelling puts on every scraped series
#: (``__meta_kubernetes_namespace`` -> ``namespace``, ``__meta_kubernetes_pod_name`` -> ``pod``,
#: as kube-prometheus' PodMonitors and ServiceMonitors do). The built-in queries scope by them.
NAMESPACE_LABEL = "namespace"
POD_LABEL = "pod"


@dataclass(frozen=True)
class EngineMetrics:
    """The series one engine exposes: the signals the operator reads, and the request history
    ``heteroscale curate`` turns into a workload."""

    generation_tokens: str
    """Counter of generated (decode) tokens; rate() is decode tokens/s."""
    prompt_tokens: str
    """Counter of prompt (prefill) tokens, cached or not."""
    cached_prompt_tokens: tuple[str, ...]
    """Counters of prompt tokens served from a cache instead of computed; subtracted from prompt_tokens."""
    tbt_histograms: tuple[str, ...]
    """Time-between-tokens histograms, preferred first; a later name is read only where the earlier is absent."""
    ttft_histogram: str
    """Time-to-first-token histogram; read on the prefill pods, where a surge queues first."""
    queued_requests: str
    """Gauge of requests waiting to be scheduled; on the prefill pods, the queue the latency
    guard's TTFT tiers read (:func:`heteroscale.policy.latency.queue_wait`)."""
    requests: str
    """Counter of finished requests; rate() is requests/s (``heteroscale curate``'s arrivals)."""
    prompt_length_histogram: str
    """Histogram of each finished request's prompt tokens (``heteroscale curate``'s prompt lengths)."""
    generation_length_histogram: str
    """Histogram of each finished request's generated tokens (``heteroscale curate``'s output lengths)."""


VLLM = EngineMetrics(
    # vllm/v1/metrics/loggers.py: "Generation (decode) tokens processed", counter.
    generation_tokens="vllm:generation_tokens_total",
    # vllm/v1/metrics/loggers.py: "Prefill (prompt) tokens processed", counter.
    prompt_tokens="vllm:prompt_tokens_total",
    cached_prompt_tokens=(
        # vllm/v1/metrics/loggers.py: "Prefix-cache hits, in cached tokens" (local GPU cache).
        "vllm:prefix_cache_hits_total",
        # vllm/v1/metrics/loggers.py: "KV-connector (cross-instance) prefix-cache hits, tokens": loaded
        # through the KV connector, not computed, so they are not prefill work either.
        "vllm:external_prefix_cache_hits_total",
    ),
    tbt_histograms=(
        # vllm/v1/metrics/loggers.py: "Inter-token latency (ITL) in seconds"; replaces the next one.
        "vllm:inter_token_latency_seconds",
        # vllm/v1/metrics/loggers.py: "Time per output token"; deprecated in 0.11, removed ~0.13, so
        # it is the only TBT histogram of older V1 engines.
        "vllm:time_per_output_token_seconds",
    ),
    # vllm/v1/metrics/loggers.py: "Histogram of time to first token in seconds".
    ttft_histogram="vllm:time_to_first_token_seconds",
    # vllm/v1/metrics/loggers.py: "Number of requests waiting to be processed", gauge.
    queued_requests="vllm:num_requests_waiting",
    # vllm/v1/metrics/loggers.py: "Count of successfully processed requests", counter labelled by
    # finished_reason (stop, length, abort), so summing over it counts every finished request.
    requests="vllm:request_success_total",
    # vllm/v1/metrics/loggers.py: "Number of prefill tokens processed", per request, 1-2-5 buckets up
    # to max_model_len.
    prompt_length_histogram="vllm:request_prompt_tokens",
    # vllm/v1/metrics/loggers.py: "Number of generation tokens processed", per request, same buckets.
    generation_length_histogram="vllm:request_generation_tokens",
)

SGLANG = EngineMetrics(
    # python/sglang/srt/metrics/collector.py: "Generation tokens processed", counter (tokenizer labels).
    generation_tokens="sglang:generation_tokens_total",
    # python/sglang/srt/metrics/collector.py: "Prefill tokens processed", counter.
    prompt_tokens="sglang:prompt_tokens_total",
    # python/sglang/srt/metrics/collector.py: "Prompt tokens served from cache", counter.
    cached_prompt_tokens=("sglang:cached_tokens_total",),
    tbt_histograms=(
        # python/sglang/srt/metrics/collector.py: "Inter-token latency (s)".
        "sglang:inter_token_latency_seconds",
        # Older SGLang called the same histogram time_per_output_token_seconds (reference notes).
        "sglang:time_per_output_token_seconds",
    ),
    # python/sglang/srt/metrics/collector.py: "Histogram of time to first token in seconds".
    ttft_histogram="sglang:time_to_first_token_seconds",
    # python/sglang/srt/metrics/collector.py: "Number of requests in the waiting queue", gauge.
    queued_requests="sglang:num_queue_reqs",
    # python/sglang/srt/metrics/collector.py: "Number of requests processed", counter.
    requests="sglang:num_requests_total",
    # python/sglang/srt/metrics/collector.py: "Histogram of prompt token length"; exposed only with
    # --collect-tokens-histogram (default buckets 100 ... 1,100,000 tokens).
    prompt_length_histogram="sglang:prompt_tokens_histogram",
    # python/sglang/srt/metrics/collector.py: "Histogram of generation token length"; same flag,
    # and the prompt's buckets by default.
    generation_length_histogram="sglang:generation_tokens_histogram",
)

ENGINE_METRICS: dict[Engine, EngineMetrics] = {Engine.VLLM: VLLM, Engine.SGLANG: SGLANG}
