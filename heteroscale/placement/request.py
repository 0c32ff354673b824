"""What placement is asked (values): instances wanted per role, and one PDServingGroup's request.

The policy decides the targets; the operator, the simulator and ``heteroscale plan`` wrap them,
with the PDServingGroup's spec and its current Deployments, in a :class:`PlanRequest` for
:func:`~heteroscale.placement.plan.plan_many`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import GroupStatus


@dataclass(frozen=True)
class RoleTargets:
    """Instances wanted per role (what the policy decided)."""

    prefill: int
    decode: int

    def of(self, role: Role) -> int:
        return self.prefill if role is Role.PREFILL else self.decode


@dataclass(frozen=True)
class PlanRequest:
    """One PDServingGroup's input to :func:`~heteroscale.placement.plan.plan_many`."""

    name: str
    spec: PDServingGroupSpec
    targets: RoleTargets
    current_groups: Sequence[GroupStatus] = ()
    namespace: str = ""
