"""A deployment group as the planning cycle works on it (mutable, private to the cycle).

The cycle turns the request's current Deployments into groups, sizes, reserves and creates them
against the capacity index, and finally reports them as
:class:`~heteroscale.placement.result.PlannedGroup` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from heteroscale.api.enums import Role


def per_role() -> dict[Role, int]:
    """Zero instances of each role."""
    return {Role.PREFILL: 0, Role.DECODE: 0}


@dataclass
class Group:
    gid: str
    """The group part of the Deployment names, ``g<n>``."""
    domain: str
    types: dict[Role, str]
    count: dict[Role, int] = field(default_factory=per_role)
    """Instances the group holds (planned so far)."""
    bound: dict[Role, int] = field(default_factory=per_role)
    """Instances whose pods are bound to nodes (or were held for it earlier this cycle)."""
    reserved: dict[Role, int] = field(default_factory=per_role)
    """Instances beyond ``bound`` reserved in the capacity index."""

    def copy(self) -> Group:
        """A copy that has reserved nothing yet."""
        return Group(self.gid, self.domain, dict(self.types), dict(self.count), dict(self.bound))
