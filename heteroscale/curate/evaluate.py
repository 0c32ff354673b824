"""Simulating what curation compares, on one workload (pure: the simulator's runs, no I/O).

Every candidate spec is the operator's real policy (:class:`~heteroscale.simulate.
heteroscale_adapter.HeteroScale`) in one lane of a simulation pass, placed on the simulated
cluster sized for the service; the baselines are :func:`~heteroscale.simulate.study.run_study`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from heteroscale.curate.objective import Score
from heteroscale.placement import Inventory
from heteroscale.simulate import oracle
from heteroscale.simulate.engine import EngineConfig, Progress, run_many
from heteroscale.simulate.heteroscale_adapter import HeteroScale
from heteroscale.simulate.service import Service
from heteroscale.simulate.study import run_study
from heteroscale.simulate.summary import summarize
from heteroscale.simulate.workload import Workload

#: The policies every candidate is compared with: the simulator's own HeteroScale spec (the
#: defaults, run again on their own as a check), HPA on GPU utilisation, and the oracle.
BASELINES = ("heteroscale", "hpa-util", "oracle")


@dataclass(frozen=True)
class Setting:
    """What every simulation of one curation shares."""

    workload: Workload
    service: Service
    config: EngineConfig
    #: (prefill, decode) instances serving when a run starts: sized for its first minutes.
    initial: tuple[int, int]


def setting(workload: Workload, service: Service, config: EngineConfig) -> Setting:
    need = oracle.needs(workload, service, config)
    return Setting(workload, service, config, oracle.initial_counts(need, service, config))


def score_specs(
    at: Setting,
    documents: Sequence[dict[str, Any]],
    progress: Progress | None = None,
    inventory: Inventory | None = None,
) -> list[Score]:
    """Each spec document's score, all in one simulation pass, on ``inventory`` (default: the
    cluster sized for the setting's service)."""
    policies = [
        HeteroScale(at.service, at.config.interval_s, at.initial, document=document, name=f"candidate {i}")
        for i, document in enumerate(documents)
    ]
    runs = run_many(at.workload, at.service, policies, at.config, progress, inventory)
    return [Score.of(summarize(run)) for run in runs]


def baselines(at: Setting, progress: Progress | None = None) -> dict[str, Score]:
    """The scores of :data:`BASELINES` on the same workload and cluster."""
    study = run_study(at.workload, at.service, list(BASELINES), at.config, progress)
    return {name: Score.of(study.summaries[name]) for name in BASELINES}
