"""kopf's diff base and progress storage for PDServingGroups, built without deep copies.

On every watch event kopf builds the object's "essence" (the spec, labels and annotations) to see
whether anything but the status changed, and its progress storage copies that essence again to
strip its own annotations. Both deep-copy: the builder the whole object (then drops the status
and the metadata), the progress storage the essence with the spec. A group's status and a real
API server's metadata (managedFields) are most of the object, its spec (two pod templates) most
of the rest, and every status write of every group is a watch event: with a thousand groups those
copies were a quarter of the operator's CPU (measured with ``tests/benchmarks/bench_operator.py
--profile``). The essence is the same; what kopf would throw away is no longer copied, and the
spec is shared with the event's body instead of copied twice: kopf hands out a new body on each
event and never edits one, and nothing edits an essence below its metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

#: Metadata kopf reads while building: what the essence keeps, and the owners its storage keys name.
_KEPT_METADATA = ("labels", "annotations", "ownerReferences")


class _Shared(dict[str, Any]):
    """A stanza of the event's body that the essence shares: a deep copy returns it as it is."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self


class LeanDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    def build(self, *, body: Any, extra_fields: Iterable[Any] | None = None) -> Any:
        extra = list(extra_fields or [])
        if extra:  # a handler watching status or metadata fields: kopf's own way, uncut
            return super().build(body=body, extra_fields=extra)
        metadata: Mapping[str, Any] = body.get("metadata") or {}
        lean: dict[str, Any] = {
            key: _Shared(value) if isinstance(value, Mapping) else value
            for key, value in body.items()
            if key not in {"status", "metadata"}
        }
        lean["metadata"] = {key: metadata[key] for key in _KEPT_METADATA if key in metadata}
        return super().build(body=kopf.Body(cast(kopf.RawBody, lean)), extra_fields=extra)
