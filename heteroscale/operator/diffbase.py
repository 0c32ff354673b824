"""kopf's diff base for PDServingGroups: none, as nothing in this operator reads one.

On every watch event kopf builds the object's "essence" (its spec, labels and annotations), reads
the last handled essence from an annotation and diffs the two. Their only readers are change
handlers (``on.create``, ``on.update``, ``on.resume``, field handlers), which are told what changed
and after which kopf stores the new essence, and idle timers, whose idling an essential change
resets (kopf 1.45: ``_core/reactor/processing.py``). This operator registers neither: a group's
daemon reads its spec afresh on every tick. Yet every status write of every group is a watch
event: building and diffing essences took 1.7% of py-spy's samples of the operator at a thousand
groups (``tests/benchmarks/bench_operator.py``). So the essence is empty and the stored one
absent. ``tests/unit/operator/test_diffbase.py`` checks that the registry stays that way; a change
handler added later must bring kopf's own storage back, and :meth:`store` says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

_EMPTY = cast(kopf.BodyEssence, {})


class NoDiffBaseStorage(kopf.DiffBaseStorage):
    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return _EMPTY

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        raise NotImplementedError("a change handler needs kopf's diff base: use kopf.AnnotationsDiffBaseStorage")
