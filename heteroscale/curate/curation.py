"""One curation: candidates in two rounds, the baselines beside them, the choice and its
sensitivity (pure apart from the worker processes :mod:`~heteroscale.curate.parallel` starts).

The service (the stress test's ratio and per-GPU-type targets, static peaks, cluster) comes in
through the :class:`~heteroscale.curate.evaluate.Setting`; every candidate is that service's spec
with the knobs of :mod:`~heteroscale.curate.knobs` set.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from heteroscale.curate import knobs, parallel, search
from heteroscale.curate.evaluate import BASELINES, Setting, score_specs
from heteroscale.curate.knobs import KNOBS, Candidate, Level
from heteroscale.curate.objective import Score, best
from heteroscale.placement import Inventory
from heteroscale.simulate.service import spec_document


class Meter(Protocol):
    """Where curation reports how far it got: one ``start`` per round, then candidates done."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, candidates: float) -> None: ...


@dataclass(frozen=True)
class Evaluated:
    candidate: Candidate
    #: 1: the breadth round (index 0 is the defaults); 2: one knob moved from round 1's best.
    round: int
    document: dict[str, Any]
    score: Score


@dataclass(frozen=True)
class Sensitivity:
    """One knob moved alone from round 1's best: each level's score, in the knob's level order."""

    knob: str
    levels: tuple[tuple[Level, Score], ...]

    def gpu_hours_range(self) -> float:
        hours = [score.gpu_hours for _, score in self.levels]
        return max(hours) - min(hours)

    def attainment_range(self) -> float:
        attained = [score.slo_attainment for _, score in self.levels]
        return max(attained) - min(attained)


@dataclass(frozen=True)
class Curation:
    #: The SLO attainment the objective requires (the service's).
    attainment: float
    evaluated: tuple[Evaluated, ...]
    #: Index into ``evaluated`` of the chosen candidate; the defaults are index 0.
    chosen: int
    #: Index of round 1's best: where round 2 moved each knob from.
    base: int
    baselines: dict[str, Score]
    #: Knobs by how much they move GPU-hours alone (then SLO attainment), most first.
    sensitivity: tuple[Sensitivity, ...]

    @property
    def defaults(self) -> Evaluated:
        return self.evaluated[0]

    @property
    def choice(self) -> Evaluated:
        return self.evaluated[self.chosen]


def documents_for(at: Setting, candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    base = spec_document(at.service, at.config.interval_s)
    return [knobs.apply(base, candidate, at.service) for candidate in candidates]


def curate(at: Setting, *, candidates: int, seed: int, workers: int, meter: Meter | None = None) -> Curation:
    """Round 1: the defaults and ``candidates - 1`` seeded random candidates, with the baselines in
    the same batch of passes; round 2: each knob moved alone from round 1's best. The choice is the
    best of both rounds by :func:`~heteroscale.curate.objective.best`. Candidates whose specs come
    out the same (a floor that rounds to one instance on a small service) are simulated once."""
    attainment = at.service.slo.attainment
    scored: dict[str, Score] = {}
    first = search.breadth(candidates, seed)
    label = f"round 1: {{n}} candidates on {workers} worker(s), beside the baselines ({', '.join(BASELINES)})"
    baseline_scores = _round(at, first, scored, workers, meter, label, with_baselines=True)
    evaluated = [Evaluated(c, 1, d, scored[_key(d)]) for c, d in zip(first, documents_for(at, first), strict=True)]
    base = best([e.score for e in evaluated], attainment)

    seen = {e.candidate: e for e in evaluated}
    fresh = [candidate for _, candidate in search.depth(evaluated[base].candidate) if candidate not in seen]
    label = f"round 2: {{n}} candidates, one knob at a time from round 1's best, on {workers} worker(s)"
    _round(at, fresh, scored, workers, meter, label, with_baselines=False)
    for candidate, document in zip(fresh, documents_for(at, fresh), strict=True):
        evaluated.append(Evaluated(candidate, 2, document, scored[_key(document)]))
        seen[candidate] = evaluated[-1]

    chosen = best([e.score for e in evaluated], attainment)
    centre = evaluated[base].candidate
    effects = []
    for k, knob in enumerate(KNOBS):
        levels = tuple((level, seen[(*centre[:k], level, *centre[k + 1 :])].score) for level in knob.levels)
        effects.append(Sensitivity(knob.name, levels))
    effects.sort(key=lambda e: (-e.gpu_hours_range(), -e.attainment_range(), e.knob))
    return Curation(attainment, tuple(evaluated), chosen, base, baseline_scores, tuple(effects))


def replay(at: Setting, documents: Sequence[dict[str, Any]], inventory: Inventory) -> list[Score]:
    """Scores of fixed spec documents on another workload (a held-out day), in one pass, on the
    cluster ``inventory`` (the environment: sized for that workload, as in every study)."""
    return score_specs(at, documents, inventory=inventory)


def _key(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True)


def _round(
    at: Setting,
    candidates: Sequence[Candidate],
    scored: dict[str, Score],
    workers: int,
    meter: Meter | None,
    label: str,
    *,
    with_baselines: bool,
) -> dict[str, Score]:
    """Simulate the candidates whose specs are not in ``scored`` yet and add their scores; the
    baselines' scores when asked for (else empty). ``label`` names the round, ``{n}`` the count."""
    documents = {_key(d): d for d in documents_for(at, candidates) if _key(d) not in scored}
    jobs = ([parallel.Job(None)] if with_baselines else []) + parallel.chunks(list(documents.values()), workers)
    if meter is not None:
        meter.start(label.format(n=len(documents)), len(documents))

    def advance(job: int, share: float) -> None:
        if meter is not None:
            meter.advance(jobs[job].lanes * share)

    found: dict[str, Score] = {}
    scores: list[Score] = []
    for result in parallel.run_jobs(at, jobs, workers, advance):
        if isinstance(result, dict):
            found = result
        else:
            scores.extend(result)
    scored.update(zip(documents, scores, strict=True))
    return found
