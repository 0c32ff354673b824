"""The one seam where role targets become instances per GPU type (and switch domain).

Every policy's targets pass through :func:`place`, so baselines and HeteroScale run on the same
placement. SEAM TO REPLACE: until ``heteroscale.placement.plan`` lands, each role's instances
go to the first GPU type in ``spec.roles.<role>.gpuTypes``, all in one domain (no cross-domain
P->D transfer). This is deliberately not a placement algorithm: it must become a call to
``placement.plan`` over a simulated inventory, not grow into a second implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

from heteroscale.api.enums import Role


@dataclass(frozen=True)
class Placed:
    counts: dict[Role, dict[str, int]]
    #: Share of prefill instances whose deployment group's decode sits in another switch domain.
    cross_domain_fraction: float = 0.0


def place(gpu_types: dict[Role, list[str]], prefill: int, decode: int) -> Placed:
    return Placed(
        counts={
            Role.PREFILL: {gpu_types[Role.PREFILL][0]: prefill},
            Role.DECODE: {gpu_types[Role.DECODE][0]: decode},
        }
    )
