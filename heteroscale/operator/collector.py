"""How often the operator's process runs the cyclic garbage collector (process-wide).

Reference counting frees the operator's garbage as it goes: JSON bodies, patches and parsed
specs hold no reference cycles. The collector is only for cycles, yet with CPython's default
thresholds (700, 10, 10) it ran a full collection every few seconds at a thousand groups, and a
full collection walks every object the process holds (kopf's copy of each group, the stores of
Nodes, Pods and Deployments, the plan book: about 180 KiB per group). Measured with the operator
benchmark at 1,000 groups (issue #15): 35 full collections in a run of about two minutes, 0.24 s
each, and 13 s of the run's CPU in the collector all told; with the thresholds below, none full,
1.9 s all told, and 1.2 s less operator CPU per 15 s period. A first generation of 20,000
allocations and 20 collections per older one still run the collector within minutes.
"""

from __future__ import annotations

import gc

#: (first generation's allocations, collections of each generation per collection of the next).
THRESHOLDS = (20_000, 20, 20)


def tune() -> None:
    """Set the collector's thresholds for a long-running operator."""
    gc.set_threshold(*THRESHOLDS)
