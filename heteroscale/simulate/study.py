"""One comparison: a workload, the service derived from it, every requested policy run on it."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from heteroscale.cores import worker_context
from heteroscale.placement import Inventory
from heteroscale.simulate import oracle
from heteroscale.simulate.catalog import POLICIES
from heteroscale.simulate.engine import (
    Combined,
    Controlled,
    EngineConfig,
    Lanes,
    Progress,
    RunResult,
    controlled_results,
    serve,
)
from heteroscale.simulate.heteroscale_adapter import HeteroScale
from heteroscale.simulate.inventory import simulated_inventory
from heteroscale.simulate.policies import HpaUtilization, IndependentPD, Policy, StaticPeak
from heteroscale.simulate.service import Service
from heteroscale.simulate.signals import signal_study
from heteroscale.simulate.specpatch import SpecPatch
from heteroscale.simulate.summary import Summary, summarize
from heteroscale.simulate.workload import Workload


@dataclass(frozen=True)
class Study:
    service: Service
    #: The simulated cluster every policy was placed on.
    inventory: Inventory
    runs: dict[str, RunResult]
    summaries: dict[str, Summary]
    #: The oracle's per-step need of each role (the signal study's ground truth).
    need: oracle.Needs
    #: The oracle's search (None when it did not run).
    oracle: oracle.OracleResult | None
    #: Each candidate signal on the static run against the oracle's need of its role
    #: (:func:`heteroscale.simulate.signals.signal_study`).
    signals: dict[str, dict[str, float]]


def _finish(
    finder: oracle.Search,
    workload: Workload,
    service: Service,
    config: EngineConfig,
    progress: Progress | None = None,
) -> oracle.OracleResult:
    """The oracle search's remaining rounds, a pass each."""
    while more := finder.next_pairs():
        label = f"oracle search ({len(more)} candidates)"
        finder.record(more, serve(workload, service, finder.lanes(more), config, progress, label), 0)
    return finder.result()


def _search(workload: Workload, service: Service, config: EngineConfig, need: oracle.Needs) -> oracle.OracleResult:
    """The whole oracle search on its own (a worker process's job)."""
    return _finish(oracle.Search(workload, service, config, need), workload, service, config)


def hpa_level(name: str) -> float:
    """The decode-utilisation level of ``hpa-util@LEVEL`` (0 < LEVEL <= 1)."""
    try:
        level = float(name.split("@", 1)[1])
    except ValueError:
        level = -1.0
    if not 0 < level <= 1:
        raise ValueError(f"{name}: the level after @ must be a number in (0, 1], e.g. hpa-util@0.9")
    return level


def build_policy(
    name: str, service: Service, config: EngineConfig, initial: tuple[int, int], clock_s: float = 0.0
) -> Policy:
    """A reactive or fixed policy by name; reactive ones start at ``initial`` instances. HeteroScale's
    clock starts at ``clock_s`` (the run's start, seconds after midnight)."""
    if name in ("heteroscale", "heteroscale-adaptive"):
        adaptive = name == "heteroscale-adaptive"
        return HeteroScale(service, config.interval_s, initial, adaptive=adaptive, clock_s=clock_s)
    if name == "hpa-util":
        return HpaUtilization(service, config.interval_s, initial)
    if name.startswith("hpa-util@"):
        return HpaUtilization(service, config.interval_s, initial, decode_level=hpa_level(name))
    if name == "independent":
        return IndependentPD(service, config.interval_s, initial)
    if name == "static":
        return StaticPeak(service, config.interval_s)
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")


def run_study(
    workload: Workload,
    service: Service,
    policies: list[str],
    config: EngineConfig,
    progress: Progress | None = None,
    patches: Sequence[SpecPatch] = (),
    workers: int = 1,
    documents: Mapping[str, dict[str, Any]] | None = None,
    inventory: Inventory | None = None,
) -> Study:
    """Run ``policies`` (names from :data:`POLICIES`) on ``workload``: the policies in lockstep on
    the simulated cluster. With one worker, the oracle's first search round shares their pass (one
    more pass per further round); with two or more, the whole search runs in a process of its own
    while this one runs the policies, so the study takes the longer of the two instead of their
    sum. The results are the same either way. Each of ``patches`` adds a HeteroScale lane with
    that patch in its spec (named ``heteroscale+<patch>``, listed after the policies); each of
    ``documents`` one with that whole spec document (a curated one), named by its key, listed last.
    The cluster is ``service``'s unless ``inventory`` is given."""
    need = oracle.needs(workload, service, config)
    # Reactive policies start sized for the first minutes of load, as after a previous day.
    initial = oracle.initial_counts(need, service, config)
    inventory = inventory or simulated_inventory(service)
    clock = workload.start_hour * 3600.0
    built = [build_policy(name, service, config, initial, clock) for name in policies if name != "oracle"]
    built += [HeteroScale(service, config.interval_s, initial, patch=patch, clock_s=clock) for patch in patches]
    documents = documents or {}
    built += [
        HeteroScale(service, config.interval_s, initial, document=document, name=lane, clock_s=clock)
        for lane, document in documents.items()
    ]
    names = [*policies, *(patch.lane for patch in patches), *documents]
    if "static" not in policies:  # the signal study reads a fixed fleet
        built.append(StaticPeak(service, config.interval_s))
    controlled = Controlled(built, service, config, inventory)
    label = ", ".join(p.name for p in built)
    found: oracle.OracleResult | None = None
    if "oracle" in policies and workers > 1:
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=worker_context()) as pool:
            search = pool.submit(_search, workload, service, config, need)
            served = serve(workload, service, controlled, config, progress, label + " (oracle search in parallel)")
            found = search.result()
    else:
        finder = oracle.Search(workload, service, config, need) if "oracle" in policies else None
        pairs = finder.next_pairs() if finder is not None else []
        parts: list[Lanes] = [controlled, *([finder.lanes(pairs)] if finder is not None else [])]
        label += f" + oracle search ({len(pairs)} candidates)" if pairs else ""
        served = serve(workload, service, Combined(parts), config, progress, label)
        if finder is not None:
            finder.record(pairs, served, controlled.count)
            found = _finish(finder, workload, service, config, progress)
    runs = {r.policy: r for r in controlled_results(controlled, served, 0, workload, service, config)}
    if found is not None:
        runs["oracle"] = found.run
    return Study(
        service=service,
        inventory=inventory,
        runs={name: runs[name] for name in names},
        need=need,
        oracle=found,
        summaries={name: summarize(runs[name]) for name in names},
        signals=signal_study(runs["static"], need.prefill, need.decode),
    )
