"""A held-out evaluation: choose HeteroScale's spec on one day, judge every policy on another (pure
apart from the worker processes curation and the oracle's search start).

Curating on the day a table reports grades the policy on the data it was chosen from. Here the
spec is curated on a training day (:func:`~heteroscale.curate.curation.curate`), and every policy
then runs on a held-out day with what it was configured from fixed on the training day: the
stress test's ratio and per-instance targets, the static peak and HPA's ``maxReplicas`` come from
``service``. The cluster is the environment, not the policy's configuration, so it is
sized for the day it serves, as in every other study (``inventory``, from the held-out day's own
stress test); a surge on the held-out day then meets a cluster that can hold it, and what is
measured is the policies. Only the oracle sees the held-out day's load, as it sees every day's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heteroscale.curate.curation import Curation, Meter, curate
from heteroscale.curate.evaluate import setting
from heteroscale.placement import Inventory
from heteroscale.simulate.catalog import CURATED
from heteroscale.simulate.engine import EngineConfig, Progress
from heteroscale.simulate.service import Service
from heteroscale.simulate.specpatch import SpecPatch
from heteroscale.simulate.study import Study, run_study
from heteroscale.simulate.workload import Workload


@dataclass(frozen=True)
class HeldOut:
    #: The search on the training day (its choice is the :data:`CURATED` lane).
    curation: Curation
    #: Every policy, the curated lane among them, on the held-out day.
    study: Study


def held_out(
    train: Workload,
    test: Workload,
    service: Service,
    inventory: Inventory,
    config: EngineConfig,
    policies: list[str],
    *,
    candidates: int,
    seed: int,
    workers: int,
    meter: Meter | None = None,
    progress: Progress | None = None,
    patches: Sequence[SpecPatch] = (),
) -> HeldOut:
    """Curate on ``train`` with ``service`` (derived from ``train``), then run ``policies``, the
    ``patches`` and the curated spec on ``test``, on the cluster ``inventory`` (sized for ``test``)."""
    curation = curate(setting(train, service, config), candidates=candidates, seed=seed, workers=workers, meter=meter)
    study = run_study(
        test,
        service,
        policies,
        config,
        progress,
        patches=patches,
        workers=workers,
        documents={CURATED: curation.choice.document},
        inventory=inventory,
    )
    return HeldOut(curation, study)
