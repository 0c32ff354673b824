"""docs/reference/metrics.md: the operator's ``/metrics``, from the registry it serves."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from heteroscale.metrics.exported import OperatorMetrics
from heteroscale.reference import notice

#: What each kind of metric is exposed as (prometheus-client adds these suffixes).
_EXPOSED = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
}


def _rows(metrics: OperatorMetrics) -> list[str]:
    rows = []
    for metric in vars(metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        kind = metric._type or "untyped"
        names = [metric._name + suffix for suffix in _EXPOSED.get(kind, ("",))]
        # An info metric's labels are its values (version), not declared label names.
        labels = list(metric._labelnames) or sorted({k for m in metric.collect() for s in m.samples for k in s.labels})
        shown = ", ".join(f"`{n}`" for n in names)
        rows.append(f"| {shown} | {kind} | {', '.join(labels)} | {' '.join(metric._documentation.split())} |")
    return rows


def page() -> str:
    return (
        "\n\n".join(
            [
                "# Metrics reference",
                notice("heteroscale/metrics/exported.py"),
                "The operator serves these on `/metrics` (`heteroscale run --metrics-port`, 9090 by default). Every "
                "series of a PDServingGroup carries `namespace` and `name`; `role` is `prefill` or `decode`; "
                "`group` is a deployment group's Deployment. A gauge whose value is unknown (no reading, no "
                "ready decode instance) is removed, not set to NaN, so dashboards show a gap and `absent()` sees it. "
                "deploy/monitoring's alerts and dashboard read these names; docs/operating.md explains them.",
                "\n".join(["| metric | type | labels | meaning |", "|---|---|---|---|", *_rows(OperatorMetrics())]),
            ]
        )
        + "\n"
    )
