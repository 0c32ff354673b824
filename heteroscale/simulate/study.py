"""One comparison: a workload, the service derived from it, every requested policy run on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from heteroscale.placement import Inventory
from heteroscale.simulate import oracle
from heteroscale.simulate.catalog import POLICIES
from heteroscale.simulate.engine import EngineConfig, RunResult, run, run_many
from heteroscale.simulate.inventory import simulated_inventory
from heteroscale.simulate.policies import HpaUtilization, IndependentPD, Policy, StaticPeak
from heteroscale.simulate.service import Service
from heteroscale.simulate.signals import signal_correlations
from heteroscale.simulate.summary import Summary, summarize
from heteroscale.simulate.workload import Workload


@dataclass(frozen=True)
class Study:
    service: Service
    #: The simulated cluster every policy was placed on.
    inventory: Inventory
    runs: dict[str, RunResult]
    summaries: dict[str, Summary]
    #: Correlation of each candidate signal with the offered load, on the static run.
    signals: dict[str, float]


def build_policy(name: str, service: Service, config: EngineConfig, initial: tuple[int, int]) -> Policy:
    """A reactive or fixed policy by name; reactive ones start at ``initial`` instances."""
    if name == "heteroscale":
        from heteroscale.simulate.heteroscale_adapter import HeteroScale

        return HeteroScale(service, config.interval_s, initial)
    if name == "hpa-util":
        return HpaUtilization(service, config.interval_s, initial)
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
    progress: Callable[[int], None] | None = None,
) -> Study:
    """Run ``policies`` (names from :data:`POLICIES`) on ``workload``; the oracle by its search,
    the others in lockstep over the simulated cluster."""
    need = oracle.needs(workload, service, config)
    # Reactive policies start sized for the first minutes of load, as after a previous day.
    initial = oracle.initial_counts(need, service, config)
    inventory = simulated_inventory(service)
    built = [build_policy(name, service, config, initial) for name in policies if name != "oracle"]
    runs = {r.policy: r for r in run_many(workload, service, built, config, progress, inventory)}
    if "oracle" in policies:
        runs["oracle"] = oracle.search(workload, service, config, need).run
    runs = {name: runs[name] for name in policies}
    static = runs.get("static") or run(
        workload, service, StaticPeak(service, config.interval_s), config, inventory=inventory
    )
    return Study(
        service=service,
        inventory=inventory,
        runs=runs,
        summaries={name: summarize(r) for name, r in runs.items()},
        signals=signal_correlations(static),
    )
