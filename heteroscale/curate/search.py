"""Which candidates to simulate (pure, seeded).

Two rounds, every candidate one lane of a simulation pass:

1. **breadth**: the defaults and a seeded sample of distinct candidates, each knob's level drawn
   uniformly (a random search: with ten knobs a grid is out of reach, and random points cover
   each knob's levels evenly);
2. **depth**: every other level of every knob, one knob at a time, around round 1's best. It
   refines the choice along each knob and is the report's sensitivity: how much each knob alone
   moves the objective from there.
"""

from __future__ import annotations

import numpy as np

from heteroscale.curate.knobs import DEFAULTS, KNOBS, Candidate


def breadth(count: int, seed: int) -> list[Candidate]:
    """The defaults first, then up to ``count - 1`` distinct random candidates (fewer only when
    the space has fewer)."""
    rng = np.random.default_rng(seed)
    space = int(np.prod([len(knob.levels) for knob in KNOBS]))
    wanted = min(count, space)
    found: list[Candidate] = [DEFAULTS]
    seen = {DEFAULTS}
    while len(found) < wanted:
        candidate = tuple(knob.levels[int(rng.integers(len(knob.levels)))] for knob in KNOBS)
        if candidate not in seen:
            seen.add(candidate)
            found.append(candidate)
    return found


def depth(base: Candidate) -> list[tuple[int, Candidate]]:
    """(knob index, candidate) for every level of every knob other than ``base``'s, the rest as
    in ``base``."""
    moved = []
    for k, knob in enumerate(KNOBS):
        for level in knob.levels:
            if level != base[k]:
                moved.append((k, (*base[:k], level, *base[k + 1 :])))
    return moved
