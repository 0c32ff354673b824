"""The Grafana dashboard in ``deploy/monitoring/dashboard.json``, built here (pure data, no I/O).

Built in code so that every query names the series :mod:`heteroscale.metrics.exported` exports and
the engines' own series the reader knows, and so that one row per PDServingGroup and role is
generated rather than copied; ``heteroscale generate`` writes it and a test keeps the file equal
to it. docs/operating.md says what to look for in each panel.

The engines' series (TTFT, time between tokens, KV-cache usage) are tied to a group through their
``pod`` label: a Deployment's pods are named ``<deployment>-<replicaset hash>-<pod hash>``, and
``heteroscale_group_desired_replicas`` names each deployment group's Deployment in ``group`` with its
``role``, so the two join on (namespace, group). This is the same pod-name rule the reader's
queries use.
"""

from __future__ import annotations

from typing import Any

UID = "heteroscale"
TITLE = "HeteroScale"
#: Grafana's variables: the selected namespaces and PDServingGroups.
GROUP = 'namespace=~"$namespace", name=~"$name"'
NAMESPACE = 'namespace=~"$namespace"'
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_TOKENS_PER_SECOND = "tok/s"
#: The quantile the latency panels show (the latency guard's default).
QUANTILE = 0.9

Panel = dict[str, Any]


def _group_roles() -> str:
    """1 per (namespace, group = Deployment) of the selected PDServingGroups, labelled with its role."""
    return f"(0 * max by (namespace, group, role) (heteroscale_group_desired_replicas{{{GROUP}}}) + 1)"


def per_role(engine_series: str) -> str:
    """The engine series of the selected groups' pods, each labelled with its pod's role."""
    by_deployment = f'label_replace({engine_series}, "group", "$1", "pod", "(.+)-[a-z0-9]+-[a-z0-9]+")'
    return f"{by_deployment} * on (namespace, group) group_left (role) {_group_roles()}"


def _rate(selector: str) -> str:
    return f"rate({selector}[$__rate_interval])"


def _increase(selector: str) -> str:
    return f"increase({selector}[$__rate_interval])"


def _quantile_per_role(buckets: str) -> str:
    return f"histogram_quantile({QUANTILE}, sum by (namespace, role, le) ({per_role(buckets)}))"


# vLLM V1 and SGLang name TTFT and inter-token latency alike; vLLM before 0.11 only had
# time_per_output_token, which 0.11+ still exports as a deprecated copy (taken only where the new
# name is absent, so no bucket is counted twice). KV-cache usage: vLLM V1's kv_cache_usage_perc,
# older vLLM's gpu_cache_usage_perc, SGLang's token_usage (all fractions of 1).
def _engines(*names: str) -> str:
    """The series of any of ``names`` (engines name the same histogram alike, with their prefix)."""
    return f'{{__name__=~"{"|".join(names)}", {NAMESPACE}}}'


TTFT_BUCKETS = _rate(_engines("vllm:time_to_first_token_seconds_bucket", "sglang:time_to_first_token_seconds_bucket"))
TBT_BUCKETS = (
    _rate(_engines("vllm:inter_token_latency_seconds_bucket", "sglang:inter_token_latency_seconds_bucket"))
    + " or "
    + _rate(f"vllm:time_per_output_token_seconds_bucket{{{NAMESPACE}}}")
)
KV_CACHE_USAGE = (
    f"vllm:kv_cache_usage_perc{{{NAMESPACE}}} or vllm:gpu_cache_usage_perc{{{NAMESPACE}}} "
    f"or sglang:token_usage{{{NAMESPACE}}}"
)


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"refId": ref, "datasource": _DATASOURCE, "expr": expr, "legendFormat": legend}


def _panel(
    title: str,
    description: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    grid: tuple[int, int, int, int],
    bars: bool = False,
    maximum: float | None = None,
) -> Panel:
    defaults: dict[str, Any] = {"unit": unit}
    if maximum is not None:
        defaults |= {"min": 0, "max": maximum}
    if bars:
        defaults["custom"] = {"drawStyle": "bars", "fillOpacity": 80, "stacking": {"mode": "normal"}}
    x, y, w, h = grid
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]}},
        "targets": [_target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
    }


def _row(title: str, y: int, repeat: str | None = None) -> Panel:
    row: Panel = {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
    }
    if repeat:
        row["repeat"] = repeat
    return row


def operator_panels(y: int) -> list[Panel]:
    """Is the operator up, which version, and are its reconciles healthy."""
    return [
        _row("Operator", y),
        _panel(
            "Operator up and version",
            "1 while Prometheus scrapes the operator (job heteroscale-operator), with the version it runs; "
            "0 or no line: the HeteroscaleOperatorDown alert's situation.",
            [
                ('up{job="heteroscale-operator"}', "up {{instance}}"),
                ("count by (version) (heteroscale_build_info)", "version {{version}}"),
            ],
            grid=(0, y + 1, 8, 7),
        ),
        _panel(
            "Reconcile health",
            "p99 reconcile time (well under behavior.intervalSeconds), the decode signal's age (under "
            "metric.staleAfter), metric fetch errors by kind, and reconciles refused for a conflicting autoscaler.",
            [
                (
                    "histogram_quantile(0.99, sum by (namespace, name, le) "
                    f"({_rate(f'heteroscale_reconcile_duration_seconds_bucket{{{GROUP}}}')}))",
                    "{{namespace}}/{{name}} reconcile p99",
                ),
                (f"heteroscale_metric_age_seconds{{{GROUP}}}", "{{namespace}}/{{name}} signal age"),
                (
                    f"sum by (namespace, name, kind) ({_rate(f'heteroscale_metric_fetch_errors_total{{{GROUP}}}')})",
                    "{{namespace}}/{{name}} fetch errors: {{kind}}",
                ),
                (
                    f"sum by (namespace, name) ({_rate(f'heteroscale_conflicts_total{{{GROUP}}}')})",
                    "{{namespace}}/{{name}} conflicts",
                ),
            ],
            unit="s",
            grid=(8, y + 1, 16, 7),
        ),
    ]


def group_panels(y: int) -> list[Panel]:
    """One row per PDServingGroup (Grafana repeats it for each selected name), by role."""
    return [
        _row("PDServingGroup $name", y, repeat="name"),
        _panel(
            "Decode tokens/s against target",
            "The scaling signal against the decode instances' target (target per instance x ready decode "
            "instances). Riding on the target: sized as asked. Above it for long: short of decode (stuck at "
            "max?). The prefill pods' cache-missed prompt tokens/s should move with it; if it drifts away, the "
            "fixed P/D ratio no longer fits the traffic.",
            [
                (f"heteroscale_decode_tokens_per_second{{{GROUP}}}", "{{namespace}} decode tokens/s"),
                (f"heteroscale_decode_capacity_tokens_per_second{{{GROUP}}}", "{{namespace}} target x ready decode"),
                (f"heteroscale_prefill_missed_tokens_per_second{{{GROUP}}}", "{{namespace}} prefill tokens/s (missed)"),
            ],
            unit=_TOKENS_PER_SECOND,
            grid=(0, y + 1, 12, 8),
        ),
        _panel(
            "Replicas per role: desired against ready",
            "Instances the operator wants against those ready, per role, with maxReplicas; ready per GPU "
            "type. Desired above ready for minutes: pods are not starting (quota, Unschedulable, image pull).",
            [
                (f"heteroscale_desired_replicas{{{GROUP}}}", "{{namespace}} {{role}} desired"),
                (f"heteroscale_current_replicas{{{GROUP}}}", "{{namespace}} {{role}} ready"),
                (f"heteroscale_max_replicas{{{GROUP}}}", "{{namespace}} {{role}} max"),
                (
                    f"sum by (namespace, name, role, gpu_type) (heteroscale_group_current_replicas{{{GROUP}}})",
                    "{{namespace}} {{role}} ready on {{gpu_type}}",
                ),
            ],
            grid=(12, y + 1, 12, 8),
        ),
        _panel(
            "P/D ratio: declared against actual",
            "Ready prefill per ready decode instance against the declared ratio. A lasting gap comes from a "
            "bound (ClampedToMax), a scale-in waiting its turn or prefill pods not ready (HeteroscaleRatioViolated).",
            [
                (f"heteroscale_pd_ratio_actual{{{GROUP}}}", "{{namespace}} actual"),
                (f"heteroscale_pd_ratio_declared{{{GROUP}}}", "{{namespace}} declared"),
            ],
            grid=(0, y + 9, 8, 8),
        ),
        _panel(
            "Decisions by reason",
            "Why the loop did what it did, and the scale actions per role. Mostly WithinTolerance and "
            "Stabilizing is healthy; MetricMissing/MetricStale: holding blind; alternating ups and downs: flapping.",
            [
                (
                    f"sum by (namespace, name, reason) ({_increase(f'heteroscale_decisions_total{{{GROUP}}}')})",
                    "{{namespace}} {{reason}}",
                ),
                (
                    "sum by (namespace, name, role, direction) "
                    f"({_increase(f'heteroscale_scale_events_total{{{GROUP}}}')})",
                    "{{namespace}} {{role}} scaled {{direction}}",
                ),
            ],
            bars=True,
            grid=(8, y + 9, 16, 8),
        ),
        _panel(
            f"Time to first token (p{QUANTILE * 100:.0f}) per role",
            "From the engines' own histograms (vLLM, SGLang), over the group's pods per role.",
            [(_quantile_per_role(TTFT_BUCKETS), "{{namespace}} {{role}}")],
            unit="s",
            grid=(0, y + 17, 8, 8),
        ),
        _panel(
            f"Time between tokens (p{QUANTILE * 100:.0f}) per role, against the SLO",
            "The engines' inter-token latency per role, the latency guard's reading at its quantile and its "
            "SLO. Above the SLO the guard adds its tier's step; staying above: the per-instance target is too "
            "high for this SLO.",
            [
                (_quantile_per_role(TBT_BUCKETS), "{{namespace}} {{role}} (engines)"),
                (f"heteroscale_tbt_seconds{{{GROUP}}}", "{{namespace}} latency guard reading"),
                (f"heteroscale_tbt_slo_seconds{{{GROUP}}}", "{{namespace}} SLO"),
            ],
            unit="s",
            grid=(8, y + 17, 8, 8),
        ),
        _panel(
            "KV-cache usage per role",
            "Mean and fullest pod per role, from the engines. Decode near 1 for long: sequences wait for "
            "cache (TBT and TTFT grow) even when tokens/s looks fine.",
            [
                (f"avg by (namespace, role) ({per_role(KV_CACHE_USAGE)})", "{{namespace}} {{role}} mean"),
                (f"max by (namespace, role) ({per_role(KV_CACHE_USAGE)})", "{{namespace}} {{role}} fullest pod"),
            ],
            unit="percentunit",
            maximum=1,
            grid=(16, y + 17, 8, 8),
        ),
    ]


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": _DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-var"},
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "refresh": 2,
        "sort": 1,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model; panels get ids in order."""
    panels = operator_panels(0) + group_panels(8)
    for number, panel in enumerate(panels, 1):
        panel["id"] = number
    return {
        "title": TITLE,
        "uid": UID,
        "editable": True,
        "schemaVersion": 39,
        "tags": ["heteroscale", "autoscaling", "llm"],
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "description": "Coordinated prefill/decode autoscaling: per PDServingGroup and role, the decode "
        "tokens/s signal against its target, replicas, P/D ratio, decisions, and the engines' TTFT, time "
        "between tokens and KV-cache usage; the operator's health above.",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                _variable("namespace", "Namespace", "label_values(heteroscale_desired_replicas, namespace)"),
                _variable(
                    "name",
                    "PDServingGroup",
                    'label_values(heteroscale_desired_replicas{namespace=~"$namespace"}, name)',
                ),
            ]
        },
        "panels": panels,
    }
