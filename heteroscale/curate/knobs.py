"""The policy's knobs curation searches, their levels, and how a choice of levels becomes a spec (pure).

A :data:`Candidate` is one level per knob, in :data:`KNOBS` order. :func:`apply` writes it into
the spec document the simulator derives for the service (:func:`heteroscale.simulate.service.
spec_document`: the stress test's ratio and targets, the CRD's default behaviour). Every knob's
``default`` is what that document already holds, so :data:`DEFAULTS` applied to it changes
nothing: the defaults are the simulator's ``heteroscale`` policy, and one of the candidates.

The levels span each knob's usual range around its default (the Kubernetes HPA's and the CRD's
defaults, the CRD's default latency-guard tiers); they are the search space, fixed before any result was
seen, not tuned to one.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from heteroscale.simulate.service import ADAPTIVE_BAND, MAX_REPLICAS_FACTOR, TARGET_BUSY, Service, adaptive_ratio

Level = float | int | str


@dataclass(frozen=True)
class Knob:
    name: str
    #: The spec field(s) it sets, as a person reads them.
    field: str
    levels: tuple[Level, ...]
    default: Level
    #: What a level means, for the report.
    meaning: str


#: Latency-guard presets: the simulator's (the CRD's default tiers), one that steps earlier and
#: harder, and one that waits for a larger breach. All keep the document's SLOs and proportional
#: steps. None of them turns the guard off: it is the paper's safety net for what the throughput signal
#: misses, and a history without such a breach cannot value it (there the guard never fires and costs
#: nothing, so "off" could only win by the order of a tie, or by saving what the guard spent on a
#: breach, which is its job). The search chooses how early and how hard it steps.
GUARD_TIERS: dict[str, list[dict[str, float | int]]] = {
    "default": [{"over": 1.2, "stepPercent": 10}, {"over": 1.5, "stepPercent": 20}],
    "early": [{"over": 1.1, "stepPercent": 10}, {"over": 1.3, "stepPercent": 20}, {"over": 1.6, "stepPercent": 50}],
    "late": [{"over": 1.5, "stepPercent": 10}, {"over": 2.0, "stepPercent": 25}],
}

KNOBS: tuple[Knob, ...] = (
    Knob(
        "headroom",
        "decode.targetTPSPerInstance",
        (0.7, 0.75, 0.8, 0.85, 0.9, 0.95),
        TARGET_BUSY,
        "decode target per instance (and an adaptive ratio's prefill target) as a share of its throughput at the SLO",
    ),
    Knob("tolerance", "behavior.tolerance", (0.05, 0.1, 0.15, 0.2), 0.1, "dead band around the target"),
    Knob("scale_up_cooldown", "behavior.scaleUp.cooldownSeconds", (0, 30, 60, 120), 60, "seconds between scale-ups"),
    Knob("scale_up_step", "behavior.scaleUp.maxStepPercent", (50, 100, 200), 100, "most percent added per period"),
    Knob(
        "scale_down_cooldown",
        "behavior.scaleDown.cooldownSeconds",
        (120, 300, 600, 900),
        600,
        "seconds after any scale action before a scale-in",
    ),
    Knob(
        "stabilization_window",
        "behavior.scaleDown.stabilizationWindowSeconds",
        (60, 180, 300, 600),
        300,
        "scale in only to the highest recommendation of this many seconds",
    ),
    Knob("scale_down_step", "behavior.scaleDown.maxStepPercent", (10, 20, 50), 20, "most percent removed per period"),
    Knob(
        "latency_guard",
        "behavior.latencyGuard.tiers",
        tuple(GUARD_TIERS),
        "default",
        "tiers of extra scale-out on a TBT/TTFT breach: " + "; ".join(f"{k}: {v}" for k, v in GUARD_TIERS.items()),
    ),
    Knob(
        "min_decode",
        "decode.minReplicas",
        (0.0, 0.25, 0.5),
        0.0,
        "decode floor as a share of the decode static peak (0: one instance)",
    ),
    Knob(
        "ratio",
        "ratio.adaptive",
        ("fixed", "adaptive"),
        "fixed",
        "fixed: the stress test's P/D ratio always (the paper's); adaptive: prefill follows its KV-missed "
        f"throughput at the headroom's share of capacity, within {ADAPTIVE_BAND[0]:g}-{ADAPTIVE_BAND[1]:g}x "
        "that ratio",
    ),
    Knob(
        "max_replicas",
        "prefill.maxReplicas, decode.maxReplicas",
        (1.25, 1.5, MAX_REPLICAS_FACTOR),
        MAX_REPLICAS_FACTOR,
        "each role's ceiling as a multiple of its static peak",
    ),
)

#: One level per knob, in KNOBS order.
Candidate = tuple[Level, ...]
DEFAULTS: Candidate = tuple(knob.default for knob in KNOBS)


def named(candidate: Candidate) -> dict[str, Level]:
    """The candidate as {knob name: level}."""
    return {knob.name: level for knob, level in zip(KNOBS, candidate, strict=True)}


def apply(document: dict[str, Any], candidate: Candidate, service: Service) -> dict[str, Any]:
    """A copy of the spec ``document`` with the candidate's levels written in."""
    levels = named(candidate)
    spec = copy.deepcopy(document)
    headroom = float(levels["headroom"])
    # The service's targets are TARGET_BUSY of the SLO throughput (and of what the ratio's prefill
    # feeds); another headroom scales both alike.
    spec["decode"]["targetTPSPerInstance"] = {
        gpu: round(target * headroom / TARGET_BUSY, 1) for gpu, target in service.decode_target_tps.items()
    }
    behavior = spec["behavior"]
    behavior["tolerance"] = levels["tolerance"]
    behavior["scaleUp"]["cooldownSeconds"] = levels["scale_up_cooldown"]
    behavior["scaleUp"]["maxStepPercent"] = levels["scale_up_step"]
    behavior["scaleDown"]["cooldownSeconds"] = levels["scale_down_cooldown"]
    behavior["scaleDown"]["stabilizationWindowSeconds"] = levels["stabilization_window"]
    behavior["scaleDown"]["maxStepPercent"] = levels["scale_down_step"]
    behavior["latencyGuard"]["tiers"] = copy.deepcopy(GUARD_TIERS[str(levels["latency_guard"])])
    prefill_peak, decode_peak = service.static_peak
    spec["decode"]["minReplicas"] = max(math.ceil(float(levels["min_decode"]) * decode_peak), 1)
    factor = float(levels["max_replicas"])
    spec["prefill"]["maxReplicas"] = math.ceil(prefill_peak * factor)
    spec["decode"]["maxReplicas"] = math.ceil(decode_peak * factor)
    if levels["ratio"] == "adaptive":
        spec["ratio"]["adaptive"] = adaptive_ratio(service, headroom)
    return spec
