"""The policies ``heteroscale simulate`` compares, by name: the one list the CLI, the study and the
benchmark share. A light module (no numpy), so the CLI can show it in ``--help`` cheaply."""

from __future__ import annotations

#: Every policy the simulator can run, in the order the table lists them (``hpa-util@LEVEL`` too:
#: HPA with decode utilisation saturating at LEVEL).
POLICIES = ("heteroscale", "heteroscale-adaptive", "hpa-util", "independent", "static", "oracle")
#: What ``heteroscale simulate`` runs by default.
DEFAULT_POLICIES = ("heteroscale", "hpa-util", "independent", "static", "oracle")
#: The lane of a spec curated on another day (``heteroscale simulate --holdout``).
CURATED = "heteroscale-curated"
