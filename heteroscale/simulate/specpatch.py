"""Spec patches: PDServingGroup spec YAML merged into the spec the simulator gives HeteroScale.

``heteroscale simulate --spec-patch NAME|FILE`` runs one more HeteroScale lane, named
``heteroscale+<name>``, whose spec is the simulated one (:func:`heteroscale.simulate.service.spec_document`)
with the patch deep-merged in: what a user would add to their PDServingGroup (schedules,
scaleToZero, other behaviour) is tried on the same day, in the same pass, next to the plain lane.
The merged spec is validated by the real API model, so a patch fails with the same messages as
``kubectl apply``. Bundled patches live in ``data/patches/``; :func:`load` is the only I/O.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

BUNDLED_DIR = "data/patches"


@dataclass(frozen=True)
class SpecPatch:
    """A named fragment of spec (wire form, camelCase) to merge into the simulated spec."""

    name: str
    document: dict[str, Any]

    @property
    def lane(self) -> str:
        return f"heteroscale+{self.name}"

    def applied(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``spec`` with the patch merged in: mappings merge key by key, anything else replaces."""
        return _merged(spec, self.document)


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def bundled() -> list[str]:
    """Names of the bundled patches."""
    folder = resources.files("heteroscale.simulate").joinpath(BUNDLED_DIR)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load(name_or_path: str) -> SpecPatch:
    """A bundled patch by name, or a YAML file. ValueError/FileNotFoundError say what is wrong."""
    if name_or_path in bundled():
        text = resources.files("heteroscale.simulate").joinpath(f"{BUNDLED_DIR}/{name_or_path}.yaml").read_text()
        name = name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"--spec-patch {name_or_path!r}: no such file, and not a bundled patch ({', '.join(bundled())})"
            )
        text, name = path.read_text(encoding="utf-8"), path.stem
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"--spec-patch {name_or_path!r} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"--spec-patch {name_or_path!r} must be a mapping of spec fields, e.g. 'schedules: [...]'")
    return SpecPatch(name, document)
