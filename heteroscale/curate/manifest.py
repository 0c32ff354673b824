"""The curated PDServingGroup: the chosen spec as a manifest to apply in DryRun first (pure).

What curation decides is written over a starting point: the fields it simulated (``ratio``,
``decode``, ``prefill``, ``behavior``, ``metric.window``) come from the chosen candidate; every
other field (roles with their pod templates or Deployments, topology, priority, the metric's
engine and endpoint) comes from the user's own group when one is given, else from the
simulator's placeholder (a vLLM template of the simulated model, to be replaced). ``mode`` is
always DryRun, so the group shadows the running autoscaler until someone sets Enforce.
"""

from __future__ import annotations

import copy
from typing import Any

from heteroscale.api.crd import KIND
from heteroscale.api.enums import Engine, Mode, Role
from heteroscale.api.manifest import API_VERSION, Manifest, parse_manifest
from heteroscale.api.spec import PDServingGroupSpec

#: The spec fields curation sets; the rest of a given group is kept.
CURATED_FIELDS = ("ratio", "decode", "prefill", "behavior")


def check_group(group: PDServingGroupSpec, gpu_types: dict[Role, list[str]], gpus_per_instance: int) -> None:
    """ValueError when the group's roles are not what was simulated (GPU types, instance size)."""
    for role in (Role.PREFILL, Role.DECODE):
        spec = group.roles.of(role)
        if spec.gpu_types != gpu_types[role]:
            raise ValueError(
                f"the group's roles.{role.value}.gpuTypes {spec.gpu_types} differ from the simulated "
                f"{gpu_types[role]}; pass --{role.value}-gpus {','.join(spec.gpu_types)}"
            )
        if spec.gpus_per_instance != gpus_per_instance:
            raise ValueError(
                f"the group's roles.{role.value}.gpusPerInstance is {spec.gpus_per_instance}, but the simulator "
                f"models instances of {gpus_per_instance} GPUs"
            )


def manifest(
    chosen: dict[str, Any],
    *,
    name: str,
    namespace: str,
    engine: Engine | None = None,
    endpoint: str | None = None,
    group: Manifest | None = None,
) -> dict[str, Any]:
    """The PDServingGroup object (see the module docstring), validated by the API's models."""
    if group is not None:
        spec = group.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        spec.update({key: copy.deepcopy(chosen[key]) for key in CURATED_FIELDS})
        spec["metric"]["window"] = chosen["metric"]["window"]
    else:
        spec = copy.deepcopy(chosen)
    if engine is not None:
        spec["metric"]["engine"] = engine.value
    if endpoint is not None:
        spec["metric"]["prometheus"] = {"endpoint": endpoint}
    spec["mode"] = Mode.DRY_RUN.value
    document = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }
    parse_manifest(document)  # the models that guard the CRD: a curated spec they refuse is a bug here
    return document
