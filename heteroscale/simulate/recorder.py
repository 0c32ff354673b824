"""Per-step trajectories of one run, and the windowed readings a policy sees (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heteroscale.simulate.perfmodel import FloatArray
from heteroscale.simulate.pools import DecodeStep, PrefillStep


@dataclass(frozen=True)
class PoolCounts:
    """Instances of both roles at one step: held (starting or ready) and ready."""

    prefill: int
    decode: int
    prefill_ready: int
    decode_ready: int


@dataclass
class Trajectories:
    """One value per step (index ``s`` covers ``[s*dt, (s+1)*dt)``)."""

    steps: int
    prefill_instances: FloatArray = field(init=False)
    decode_instances: FloatArray = field(init=False)
    prefill_ready: FloatArray = field(init=False)
    decode_ready: FloatArray = field(init=False)
    prefill_busy: FloatArray = field(init=False)
    #: Tokens generated / decode throughput at the TBT SLO of the ready instances (capped at 1).
    decode_busy: FloatArray = field(init=False)
    prefill_util_reported: FloatArray = field(init=False)
    decode_util_reported: FloatArray = field(init=False)
    decode_tps: FloatArray = field(init=False)
    decode_capacity_tps: FloatArray = field(init=False)
    prefill_missed_tps: FloatArray = field(init=False)
    prefill_raw_tps: FloatArray = field(init=False)
    tbt: FloatArray = field(init=False)
    #: FIFO positions at the step's end: requests prefilled, and admitted to decode.
    prefilled_position: FloatArray = field(init=False)
    admitted_position: FloatArray = field(init=False)
    #: Share of prefill instances whose KV crosses S2 domains, and target instances placement
    #: could not place (see :mod:`heteroscale.simulate.placer`).
    cross_domain: FloatArray = field(init=False)
    unschedulable: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if name != "steps":
                setattr(self, name, np.zeros(self.steps))

    def record(
        self,
        s: int,
        fleet: PoolCounts,
        prefill: PrefillStep,
        decode: DecodeStep,
        decode_capacity_tps: float,
        positions: tuple[float, float],
        cross_domain: float,
        unschedulable: int,
    ) -> None:
        self.prefill_instances[s] = fleet.prefill
        self.decode_instances[s] = fleet.decode
        self.prefill_ready[s] = fleet.prefill_ready
        self.decode_ready[s] = fleet.decode_ready
        self.prefill_busy[s] = prefill.busy
        # Compute-bound prefill: kernel-active time tracks the work done.
        self.prefill_util_reported[s] = prefill.busy
        self.prefill_missed_tps[s] = prefill.missed_tps
        self.prefill_raw_tps[s] = prefill.raw_tps
        self.decode_tps[s] = decode.generated_tps
        self.decode_capacity_tps[s] = decode_capacity_tps
        self.decode_busy[s] = min(decode.generated_tps / decode_capacity_tps, 1.0) if decode_capacity_tps > 0 else 0.0
        if decode.reported_util is not None:
            self.decode_util_reported[s] = decode.reported_util
        self.tbt[s] = decode.tbt
        self.prefilled_position[s], self.admitted_position[s] = positions
        self.cross_domain[s] = cross_domain
        self.unschedulable[s] = unschedulable
