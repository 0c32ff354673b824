"""The objective every candidate is judged by, stated once (pure).

Fewest GPU-hours among the candidates that meet the SLO attainment target (99% of requests within
both their TTFT and TBT limits, by default); fewer scale actions break a tie. A candidate below the
target ranks after every one that meets it, by attainment (highest first). The search's first
candidate is the defaults and the choice is the minimum of one total order over all candidates,
so the chosen spec is never worse than the defaults on the workload it was curated on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heteroscale.simulate.summary import Summary


@dataclass(frozen=True)
class Score:
    gpu_hours: float
    slo_attainment: float
    scale_actions: int

    @classmethod
    def of(cls, summary: Summary) -> Score:
        return cls(summary.gpu_hours, summary.slo_attainment, summary.scale_actions)

    def meets(self, attainment: float) -> bool:
        return self.slo_attainment >= attainment


def rank(score: Score, attainment: float) -> tuple[int, float, float, int]:
    """Sort key: smaller is better (see the module docstring)."""
    if score.meets(attainment):
        return (0, score.gpu_hours, 0.0, score.scale_actions)
    return (1, -score.slo_attainment, score.gpu_hours, score.scale_actions)


def best(scores: Sequence[Score], attainment: float) -> int:
    """Index of the best score; the earliest on a tie, so the defaults (index 0) win ties."""
    if not scores:
        raise ValueError("no candidates to choose from")
    return min(range(len(scores)), key=lambda i: (rank(scores[i], attainment), i))
