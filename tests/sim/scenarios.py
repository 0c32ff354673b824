"""The docs' two simulated scenarios, shared by the day-long tests: the same hardware, load and
stress test wherever a 24 h day of one is built."""

from __future__ import annotations

from heteroscale.simulate import workload as wl
from heteroscale.simulate.perfmodel import ModelSpec, load_gpu_perf
from heteroscale.simulate.service import Service, Slo
from heteroscale.simulate.stresstest import derive

PERF = load_gpu_perf()
#: (prefill GPU types, decode GPU types, fleet scale). The default is prefill-dominated (L20
#: prefill is slow); the second is decode-dominated by its hardware (H800 prefill), at a load that
#: makes its fleets hundreds of instances too.
SCENARIOS = {"l20-prefill": (("L20", "H20"), ("H20",), 50.0), "h800-prefill": (("H800", "H20"), ("H20",), 250.0)}


def day(scenario: str, base: wl.Trace) -> wl.Workload:
    """A 24 h diurnal day of ``base`` at the scenario's load."""
    return wl.scale(base, hours=24, fleet_scale=SCENARIOS[scenario][2], diurnal=True)


def service(scenario: str, workload: wl.Workload) -> Service:
    """The scenario's stress test on ``workload``."""
    prefill, decode, _ = SCENARIOS[scenario]
    return derive(
        workload,
        PERF,
        prefill_gpus=list(prefill),
        decode_gpus=list(decode),
        slo=Slo(),
        model=ModelSpec(),
        gpus_per_instance=8,
    )
