"""Per-step trajectories of the lanes of one run, and one lane's view of them (pure)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from heteroscale.simulate.perfmodel import FloatArray
from heteroscale.simulate.pools import DecodeStep, PrefillStep


@dataclass(frozen=True)
class LaneFleets:
    """Every lane's instances at one step: held (starting or ready) per role, ready per role and
    GPU type, and what placement reported."""

    held_prefill: FloatArray
    held_decode: FloatArray
    ready_prefill: dict[str, FloatArray]
    ready_decode: dict[str, FloatArray]
    #: Share of prefill instances whose KV crosses S2 domains, and target instances placement
    #: could not place (see :mod:`heteroscale.simulate.placer`).
    cross_domain: FloatArray
    unschedulable: FloatArray


@dataclass
class Trajectories:
    """One value per lane and step (index ``[..., s]`` covers ``[s*dt, (s+1)*dt)``); a lane's view
    (:meth:`lane`) has one value per step."""

    prefill_instances: FloatArray
    decode_instances: FloatArray
    prefill_ready: FloatArray
    decode_ready: FloatArray
    prefill_busy: FloatArray
    #: Tokens generated / decode throughput at the TBT SLO of the ready instances (capped at 1).
    decode_busy: FloatArray
    prefill_util_reported: FloatArray
    decode_util_reported: FloatArray
    decode_tps: FloatArray
    decode_capacity_tps: FloatArray
    prefill_missed_tps: FloatArray
    prefill_raw_tps: FloatArray
    tbt: FloatArray
    #: FIFO positions at the step's end: requests prefilled, and admitted to decode.
    prefilled_position: FloatArray
    admitted_position: FloatArray
    cross_domain: FloatArray
    unschedulable: FloatArray
    #: Requests per second arriving at the gateway in front of the engines, whether or not any
    #: engine runs (the same in every lane): what a scale-to-zero activation query reads.
    gateway_rps: FloatArray

    @classmethod
    def zeros(cls, lanes: int, steps: int) -> Trajectories:
        return cls(*(np.zeros((lanes, steps)) for _ in fields(cls)))

    @property
    def steps(self) -> int:
        return int(self.prefill_instances.shape[-1])

    def lane(self, k: int) -> Trajectories:
        return Trajectories(*(getattr(self, f.name)[k] for f in fields(self)))

    def head(self, steps: int) -> Trajectories:
        """A view of the first ``steps`` steps: what was recorded before step ``steps``."""
        return Trajectories(*(getattr(self, f.name)[..., :steps] for f in fields(self)))

    def lanes(self, lo: int, hi: int) -> Trajectories:
        """A view of lanes ``lo`` to ``hi`` (exclusive)."""
        return Trajectories(*(getattr(self, f.name)[lo:hi] for f in fields(self)))

    def record(
        self,
        s: int,
        fleets: LaneFleets,
        prefill: PrefillStep,
        decode: DecodeStep,
        decode_capacity_tps: FloatArray,
        positions: tuple[FloatArray, FloatArray],
        gateway_rps: float,
    ) -> None:
        self.prefill_instances[:, s] = fleets.held_prefill
        self.decode_instances[:, s] = fleets.held_decode
        self.prefill_ready[:, s] = sum(fleets.ready_prefill.values(), np.zeros_like(fleets.held_prefill))
        self.decode_ready[:, s] = sum(fleets.ready_decode.values(), np.zeros_like(fleets.held_decode))
        self.prefill_busy[:, s] = prefill.busy
        # Compute-bound prefill: kernel-active time tracks the work done.
        self.prefill_util_reported[:, s] = prefill.busy
        self.prefill_missed_tps[:, s] = prefill.missed_tps
        self.prefill_raw_tps[:, s] = prefill.raw_tps
        self.decode_tps[:, s] = decode.generated_tps
        self.decode_capacity_tps[:, s] = decode_capacity_tps
        capacity = np.where(decode_capacity_tps > 0, decode_capacity_tps, 1.0)
        self.decode_busy[:, s] = np.where(
            decode_capacity_tps > 0, np.minimum(decode.generated_tps / capacity, 1.0), 0.0
        )
        self.decode_util_reported[:, s] = decode.reported_util
        self.tbt[:, s] = decode.tbt
        self.prefilled_position[:, s], self.admitted_position[:, s] = positions
        self.cross_domain[:, s] = fleets.cross_domain
        self.unschedulable[:, s] = fleets.unschedulable
        self.gateway_rps[:, s] = gateway_rps
