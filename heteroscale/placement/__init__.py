"""Topology-aware placement (pure): inventory, deployment-group plans, rendered pod templates.

No kopf, kubernetes or HTTP imports, no I/O, no clock. The operator builds an
:class:`Inventory` from its Node/Pod indexes, calls :func:`plan_many` (or :func:`plan`, or keeps a
:class:`Ledger` between runs) with the policy's targets, and patches one Deployment per :class:`PlannedGroup` with
:func:`render_pod_template`. See docs/placement.md for the whole contract.
"""

from heteroscale.placement.inventory import Inventory, Node, bound_key, inventory_from_k8s
from heteroscale.placement.ledger import Ledger
from heteroscale.placement.plan import plan, plan_many
from heteroscale.placement.render import render_pod_template
from heteroscale.placement.request import PlanRequest, RoleTargets
from heteroscale.placement.result import Plan, PlannedGroup, Shortfall, deployment_name

__all__ = [
    "Inventory",
    "Ledger",
    "Node",
    "Plan",
    "PlanRequest",
    "PlannedGroup",
    "RoleTargets",
    "Shortfall",
    "bound_key",
    "deployment_name",
    "inventory_from_k8s",
    "plan",
    "plan_many",
    "render_pod_template",
]
