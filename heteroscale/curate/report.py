"""The curation report: one JSON document, and the same as a page a person reads (formatting only).

The JSON holds every number the page shows and nothing from the clock or the machine, so the
same inputs and seed give the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from heteroscale.api.enums import Role
from heteroscale.curate.curation import Curation
from heteroscale.curate.knobs import KNOBS, Level, named
from heteroscale.curate.objective import Score
from heteroscale.simulate.catalog import CURATED
from heteroscale.simulate.report import ratio_curve
from heteroscale.simulate.service import Service
from heteroscale.simulate.workload import Workload


@dataclass(frozen=True)
class Holdout:
    """The curated spec and the defaults replayed on a workload they were not chosen on."""

    source: str
    curated: Score
    defaults: Score


def _num(x: float, digits: int = 6) -> float | None:
    return round(x, digits) if math.isfinite(x) else None


def _score(score: Score) -> dict[str, Any]:
    return {
        "gpu_hours": _num(score.gpu_hours, 3),
        "slo_attainment": _num(score.slo_attainment),
        "slo_attainment_low": _num(score.slo_attainment_low),
        "scale_actions": score.scale_actions,
    }


def comparison(curation: Curation) -> dict[str, Score]:
    """The chosen spec, the defaults, and the baselines, on the curated workload."""
    others = {name: score for name, score in curation.baselines.items() if name != "heteroscale"}
    return {"curated": curation.choice.score, "defaults": curation.defaults.score, **others}


def document(
    curation: Curation,
    service: Service,
    workload: Workload,
    *,
    source: str,
    seed: int,
    spec: dict[str, Any],
    holdout: Holdout | None = None,
    notes: tuple[str, ...] = (),
) -> dict[str, Any]:
    chosen = curation.choice
    return {
        "workload": {
            "source": source,
            "hours": _num(workload.duration_s / 3600, 3),
            "requests": _num(float(workload.weight.sum()), 1),
            "sampled_requests": workload.size,
            "seed": seed,
        },
        "service": {
            "ratio": {"prefill": service.ratio[0], "decode": service.ratio[1]},
            "ratio_warning": service.ratio_warning,
            "gpu_types": {role.value: service.gpu_types[role] for role in Role},
            "decode_target_tps_at_default_headroom": {k: _num(v, 1) for k, v in service.decode_target_tps.items()},
            "static_peak": {"prefill": service.static_peak[0], "decode": service.static_peak[1]},
            "ttft_slo_s": _num(service.ttft_slo_s, 3),
            "tbt_slo_s": service.slo.tbt_s,
        },
        "stress_test": ratio_curve(service.ratio_curve),
        "objective": {
            "minimise": "gpu_hours",
            # Met when slo_attainment_low (the one-sided lower confidence bound) reaches the target.
            "subject_to": {
                "slo_attainment_at_least": curation.attainment,
                "at_confidence": 0.95,
                "sampling_unit": "hour",
            },
            "tie_break": "fewest scale_actions",
            "when_none_meets_it": "highest slo_attainment_low",
        },
        "comparison": {name: _score(score) for name, score in comparison(curation).items()},
        "chosen": {
            "candidate": curation.chosen,
            "round": chosen.round,
            "meets_objective": chosen.score.assured(curation.attainment),
            "knobs": named(chosen.candidate),
            "defaults": named(curation.defaults.candidate),
        },
        "sensitivity": [
            {
                "knob": effect.knob,
                "field": next(k.field for k in KNOBS if k.name == effect.knob),
                "levels": [{"level": level, **_score(score)} for level, score in effect.levels],
            }
            for effect in curation.sensitivity
        ],
        "candidates": [{"round": e.round, "knobs": named(e.candidate), **_score(e.score)} for e in curation.evaluated],
        **({"holdout": _holdout(holdout)} if holdout is not None else {}),
        "notes": list(notes),
        "spec": spec,
    }


def _holdout(holdout: Holdout) -> dict[str, Any]:
    return {"source": holdout.source, "curated": _score(holdout.curated), "defaults": _score(holdout.defaults)}


def summary_lines(curation: Curation, holdout: Holdout | None = None) -> list[str]:
    """The comparison table, the chosen knobs and the three knobs that matter most, for a terminal."""
    lines = [f"{'':<10} {'GPU-h':>10} {'SLO':>8} {'95% low':>8} {'actions':>8}"]
    for name, score in comparison(curation).items():
        mark = "" if score.meets(curation.attainment) else "  (below the SLO target)"
        lines.append(
            f"{name:<10} {score.gpu_hours:>10.1f} {score.slo_attainment:>8.2%} {score.slo_attainment_low:>8.2%} "
            f"{score.scale_actions:>8d}{mark}"
        )
    defaults = curation.defaults.score.gpu_hours
    change = curation.choice.score.gpu_hours / defaults - 1 if defaults > 0 else 0.0
    lines.append(f"curated vs defaults: {change:+.1%} GPU-hours")
    lines.append(_chosen(curation))
    lines.append("knobs that move GPU-hours most alone: " + ", ".join(_top(curation, 3)))
    if holdout is not None:
        lines.append(
            f"held-out ({holdout.source}): curated {holdout.curated.gpu_hours:.1f} GPU-h at "
            f"{holdout.curated.slo_attainment:.2%} SLO; defaults {holdout.defaults.gpu_hours:.1f} GPU-h at "
            f"{holdout.defaults.slo_attainment:.2%}"
        )
    return lines


def training_lines(curation: Curation, trained_on: str) -> list[str]:
    """What a held-out evaluation chose, and where, for a terminal."""
    chosen = curation.choice.score
    return [
        f"{CURATED}: chosen from {len(curation.evaluated)} candidates on {trained_on} "
        f"({chosen.gpu_hours:,.0f} GPU-h at {chosen.slo_attainment:.2%} SLO there; defaults "
        f"{curation.defaults.score.gpu_hours:,.0f} GPU-h at {curation.defaults.score.slo_attainment:.2%})",
        _chosen(curation),
        "every row below ran on the held-out day, which no choice above saw",
    ]


def training_document(curation: Curation, trained_on: str) -> dict[str, Any]:
    """What a held-out evaluation chose, and where, for its JSON."""
    return {
        "curated_on": trained_on,
        "candidates": len(curation.evaluated),
        "knobs": named(curation.choice.candidate),
        "defaults": named(curation.defaults.candidate),
        "on_the_training_day": {name: _score(score) for name, score in comparison(curation).items()},
    }


def _chosen(curation: Curation) -> str:
    moved = _moved(curation)
    return "chosen knobs: " + (", ".join(f"{k} {a} -> {b}" for k, a, b in moved) or "the defaults")


def _moved(curation: Curation) -> list[tuple[str, Level, Level]]:
    chosen, defaults = named(curation.choice.candidate), named(curation.defaults.candidate)
    return [(k, defaults[k], chosen[k]) for k in chosen if chosen[k] != defaults[k]]


def _top(curation: Curation, count: int) -> list[str]:
    return [f"{e.knob} ({e.gpu_hours_range():.0f} GPU-h)" for e in curation.sensitivity[:count]]


def markdown(report: dict[str, Any]) -> str:
    """The report page, from :func:`document`'s JSON (so the page and the JSON cannot disagree)."""
    work, service, chosen = report["workload"], report["service"], report["chosen"]
    ratio = f"{service['ratio']['prefill']}:{service['ratio']['decode']}"
    objective = report["objective"]
    target = objective["subject_to"]["slo_attainment_at_least"]
    out = [
        "# Curation report",
        "",
        f"Workload: {work['source']}, {work['hours']:g} h, {work['requests']:,.0f} requests "
        f"({work['sampled_requests']:,} sampled), seed {work['seed']}.",
        "",
        "## Stress test",
        "",
        f"P/D ratio **{ratio}** (the most goodput per GPU at the SLO); decode target per instance at the "
        f"default headroom: {_targets(service['decode_target_tps_at_default_headroom'])}; static peak "
        f"{service['static_peak']['prefill']} prefill + {service['static_peak']['decode']} decode instances; "
        f"SLOs: TBT {service['tbt_slo_s']} s; the guard's TTFT limit {service['ttft_slo_s']} s.",
        *([f"\n**Warning:** {service['ratio_warning']}."] if service["ratio_warning"] else []),
        "",
        "| ratio | prefill | decode | goodput per GPU (tokens/s) | SLO attainment |",
        "|---|---|---|---|---|",
        *(
            f"| {p['ratio']['prefill']}:{p['ratio']['decode']} | {p['prefill']} | {p['decode']} | "
            f"{p['goodput_per_gpu']:.1f} | {p['slo_attainment']:.2%} |"
            for p in report["stress_test"]
        ),
        "",
        "## Result",
        "",
        f"Objective: fewest GPU-hours with at least {target:.0%} SLO attainment at 95% confidence (its lower "
        f"bound, the workload's hours as samples); fewest scale actions on a tie. {len(report['candidates'])} "
        "candidates simulated.",
        "",
        "| policy | GPU-hours | SLO attainment | its 95% lower bound | scale actions |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {s['gpu_hours']:,.1f} | {s['slo_attainment']:.2%} | {s['slo_attainment_low']:.2%} "
            f"| {s['scale_actions']} |"
            for name, s in report["comparison"].items()
        ),
        "",
        f"Chosen: candidate {chosen['candidate']} (round {chosen['round']})"
        + ("" if chosen["meets_objective"] else f", **below the {target:.0%} target: do not apply it**")
        + ".",
        "",
        "| knob | defaults | chosen |",
        "|---|---|---|",
        *(
            f"| {k} | {chosen['defaults'][k]} | {'**' + str(v) + '**' if v != chosen['defaults'][k] else v} |"
            for k, v in chosen["knobs"].items()
        ),
    ]
    if "holdout" in report:
        held = report["holdout"]
        out += [
            "",
            "## Held-out workload",
            "",
            f"{held['source']}: curated {held['curated']['gpu_hours']:,.1f} GPU-h at "
            f"{held['curated']['slo_attainment']:.2%} SLO ({held['curated']['scale_actions']} actions); "
            f"defaults {held['defaults']['gpu_hours']:,.1f} GPU-h at {held['defaults']['slo_attainment']:.2%} "
            f"({held['defaults']['scale_actions']} actions).",
        ]
    out += [
        "",
        "## Sensitivity",
        "",
        "Each knob moved alone from round 1's best; knobs ordered by how much they move GPU-hours.",
        "",
        "| knob (field) | level: GPU-hours, SLO attainment |",
        "|---|---|",
        *(
            f"| {e['knob']} (`{e['field']}`) | "
            + "; ".join(f"{lv['level']}: {lv['gpu_hours']:,.0f}, {lv['slo_attainment']:.2%}" for lv in e["levels"])
            + " |"
            for e in report["sensitivity"]
        ),
    ]
    if report["notes"]:
        out += ["", "## Notes", "", *(f"* {note}" for note in report["notes"])]
    return "\n".join(out) + "\n"


def _targets(targets: dict[str, float]) -> str:
    return ", ".join(f"{gpu} {value:,.0f} tokens/s" for gpu, value in targets.items())
