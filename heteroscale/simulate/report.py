"""The comparison as a text table with its verdict, and as the ``--json`` document. Formatting only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from heteroscale.api.enums import Role
from heteroscale.simulate.coldstart import Wake, wakes
from heteroscale.simulate.service import RatioPoint
from heteroscale.simulate.study import Study
from heteroscale.simulate.verdict import verdict


def _num(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


def document(study: Study) -> dict[str, Any]:
    service = study.service
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
                "decisions": dict(study.runs[name].decisions),
            }
            for name, s in study.summaries.items()
        },
        "signals": study.signals,
        "service": {
            "ratio": {"prefill": service.ratio[0], "decode": service.ratio[1]},
            "ratio_warning": service.ratio_warning,
            "ratio_curve": ratio_curve(service.ratio_curve),
            "layouts": {
                role.value: {gpu: str(dep.instance.layout) for gpu, dep in service.deployments[role].items()}
                for role in Role
            },
            "decode_target_tps": service.decode_target_tps,
            "prefill_target_tps": service.prefill_target_tps,
            "static_peak": list(service.static_peak),
            "max_replicas": list(service.max_replicas),
            "startup_s": _num(service.instance_startup_s),
            "ttft_slo_s": _num(service.ttft_slo_s),
        },
        "verdict": verdict(study),
        "wakes": {
            name: [
                {
                    "zero_s": w.zero_s,
                    "activated_s": w.activated_s,
                    "serving_s": w.serving_s,
                    "waiting_requests": _num(w.waiting_requests),
                    "waiting_slo_attainment": _num(w.waiting_slo_attainment)
                    if w.waiting_slo_attainment is not None
                    else None,
                    "first_arrival_s": w.first_arrival_s,
                    "first_ttft_s": w.first_ttft_s,
                    "first_unloaded_ttft_s": w.first_unloaded_ttft_s,
                }
                for w in found
            ]
            for name, found in _wakes(study).items()
        },
    }


def ratio_curve(curve: Sequence[RatioPoint]) -> list[dict[str, Any]]:
    """The stress test's points as JSON (``heteroscale curate``'s report has them too)."""
    return [
        {
            "ratio": {"prefill": p.ratio[0], "decode": p.ratio[1]},
            "prefill": p.prefill,
            "decode": p.decode,
            "goodput_per_gpu": _num(p.goodput_per_gpu),
            "slo_attainment": _num(p.slo_attainment),
        }
        for p in curve
    ]


def _wakes(study: Study) -> dict[str, list[Wake]]:
    """Each run's wakes from zero (runs that never reached zero are left out)."""
    found = {name: wakes(run) for name, run in study.runs.items()}
    return {name: w for name, w in found.items() if w}


def _clock(t_s: float) -> str:
    return f"{int(t_s // 3600):02d}:{int(t_s % 3600 // 60):02d}:{int(t_s % 60):02d}"


def wake_lines(study: Study) -> list[str]:
    """The wakes from zero, with what the first waiting request paid (none: nothing to say)."""
    found = _wakes(study)
    if not found:
        return []
    lines = [f"wakes from zero (start-up {study.service.instance_startup_s:.0f} s):"]
    for name, runs in found.items():
        for w in runs:
            line = (
                f"  {name}: zero from {_clock(w.zero_s)}, instances asked for at {_clock(w.activated_s)}, "
                f"serving at {_clock(w.serving_s)}"
            )
            if w.first_arrival_s is None or w.first_extra_s is None:
                lines.append(line + "; no request waited")
                continue
            attained = w.waiting_slo_attainment or 0.0
            lines.append(
                f"{line}; first request at {_clock(w.first_arrival_s)}: TTFT {w.first_ttft_s:.1f} s "
                f"(+{w.first_extra_s:.1f} s over {w.first_unloaded_ttft_s:.1f} s unloaded); "
                f"{w.waiting_requests:,.0f} requests waited, {attained:.1%} of them within the SLO"
            )
    return lines


def decision_lines(study: Study) -> list[str]:
    """Why each HeteroScale lane decided what it did, by reason code, most frequent first: the
    operator's ``status.lastDecision.reason`` of every tick, counted."""
    lines = []
    for name, run in study.runs.items():
        if run.decisions:
            counts = sorted(run.decisions.items(), key=lambda item: (-item[1], item[0]))
            lines.append(f"decisions of {name}: " + ", ".join(f"{reason} {n:,}" for reason, n in counts))
    return lines


def table(study: Study) -> str:
    width = max(12, *(len(name) for name in study.summaries))
    head = (
        f"{'policy':<{width}} {'GPU-h':>10} {'util':>6} {'SLO':>8} {'TTFT ok':>8} {'TBT ok':>8} "
        f"{'TTFT p99':>9} {'TBT p99':>8} {'actions':>8} {'P/D err':>8} {'dTPS/inst':>9} {'x-domain':>8} {'unsched':>9}"
    )
    lines = [head, "-" * len(head)]
    for s in study.summaries.values():
        lines.append(
            f"{s.policy:<{width}} {s.gpu_hours:>10.1f} {s.avg_utilization:>6.1%} {s.slo_attainment:>8.2%} "
            f"{s.ttft_attainment:>8.2%} {s.tbt_attainment:>8.2%} {s.ttft_p99:>8.2f}s {s.tbt_p99 * 1e3:>6.1f}ms "
            f"{s.scale_actions:>8d} {s.pd_ratio_error:>8.1%} {s.decode_tps_per_instance:>9.0f} "
            f"{s.cross_domain_fraction:>8.1%} {s.unschedulable_instance_steps:>9d}"
        )
    lines.append("(x-domain: prefill instances whose KV crosses S2 domains; unsched: instance-steps placement")
    lines.append(" could not place on the simulated cluster; the oracle is not placed)")
    lines.extend(decision_lines(study))
    lines.append("")
    lines.append("verdict:")
    lines.extend(f"  {line}" for line in verdict(study))
    if wake := wake_lines(study):
        lines.extend(["", *wake])
    lines.append("")
    lines.extend(signal_lines(study))
    return "\n".join(lines)


def signal_lines(study: Study) -> list[str]:
    lines = ["signal study (static fleet): correlation with the oracle's need of the signal's role, and SNR"]
    lines.append(f"  {'signal':<24} {'r(need)':>8} {'step/noise':>10}")
    for name, values in study.signals.items():
        lines.append(f"  {name:<24} {values['correlation']:>+8.3f} {values['snr']:>10.1f}")
    return lines
