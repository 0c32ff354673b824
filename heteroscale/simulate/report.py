"""The comparison as a text table and as the ``--json`` document. Formatting only."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from heteroscale.simulate.study import Study


def _num(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def document(study: Study) -> dict[str, Any]:
    return {
        "policies": {
            name: {
                "gpu_hours": _num(s.gpu_hours),
                "avg_utilization": _num(s.avg_utilization),
                "slo_attainment": _num(s.slo_attainment),
                "ttft_attainment": _num(s.ttft_attainment),
                "tbt_attainment": _num(s.tbt_attainment),
                "ttft_p99": _num(s.ttft_p99),
                "tbt_p99": _num(s.tbt_p99),
                "scale_actions": s.scale_actions,
                "pd_ratio_error": _num(s.pd_ratio_error),
                "decode_tps_per_instance": _num(s.decode_tps_per_instance),
                "dropped": s.dropped,
                "requests": s.requests,
                "peak_instances": s.peak_instances,
                "cross_domain_fraction": _num(s.cross_domain_fraction),
                "unschedulable_instance_steps": s.unschedulable_instance_steps,
            }
            for name, s in study.summaries.items()
        },
        "signals": {name: round(r, 4) for name, r in study.signals.items()},
        "service": {
            "ratio": {"prefill": study.service.ratio[0], "decode": study.service.ratio[1]},
            "decode_target_tps": study.service.decode_target_tps,
            "prefill_target_tps": study.service.prefill_target_tps,
            "static_peak": list(study.service.static_peak),
        },
    }


def write_json(study: Study, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document(study), indent=2) + "\n", encoding="utf-8")


def table(study: Study) -> str:
    head = (
        f"{'policy':<12} {'GPU-h':>10} {'util':>6} {'SLO':>8} {'TTFT ok':>8} {'TBT ok':>8} "
        f"{'TTFT p99':>9} {'TBT p99':>8} {'actions':>8} {'P/D err':>8} {'dTPS/inst':>9} {'x-domain':>8} {'unsched':>9}"
    )
    lines = [head, "-" * len(head)]
    for s in study.summaries.values():
        lines.append(
            f"{s.policy:<12} {s.gpu_hours:>10.1f} {s.avg_utilization:>6.1%} {s.slo_attainment:>8.2%} "
            f"{s.ttft_attainment:>8.2%} {s.tbt_attainment:>8.2%} {s.ttft_p99:>8.2f}s {s.tbt_p99 * 1e3:>6.1f}ms "
            f"{s.scale_actions:>8d} {s.pd_ratio_error:>8.1%} {s.decode_tps_per_instance:>9.0f} "
            f"{s.cross_domain_fraction:>8.1%} {s.unschedulable_instance_steps:>9d}"
        )
    lines.append("(x-domain: prefill instances whose KV crosses S2 domains; unsched: instance-steps placement")
    lines.append(" could not place on the simulated cluster)")
    lines.append("")
    lines.append("signal correlation with offered load (static fleet):")
    lines.extend(f"  {name:<24} {r:+.3f}" for name, r in study.signals.items())
    return "\n".join(lines)
