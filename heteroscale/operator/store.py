"""What the operator keeps of one kind of object from its watch, found by keys (pure).

Each object is kept as what an index function makes of it: ``{key: entry}``, empty for an object
the operator has no use for (a pod without GPUs), which is then not kept at all. The store reads as
a mapping from each key to the entries of every object found by it, as a kopf index reads, so the
pure code that looks things up in it (:mod:`heteroscale.operator.conflicts`, placement's inventory)
does not know where it comes from.

:attr:`Store.changes` counts the changes of what is kept: an event that leaves an object's entries
as they were (a pod's status or annotations, a node's heartbeat) counts nothing, so a cache built
from the store (placement's inventory, tens of ms on thousands of nodes) is rebuilt only when it
would differ.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence, Set
from typing import Any, Generic, TypeVar

#: (namespace, name) of an object; a cluster-scoped object's namespace is "".
Name = tuple[str, str]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: What an object is kept as: ``{key: entry}``; empty: not kept.
Index = Callable[[Mapping[str, Any]], Mapping[K, V]]


class Store(Mapping[K, Sequence[V]], Generic[K, V]):
    """Objects of one kind as ``index`` keeps them: a mapping from each key to the entries of every
    object found by it."""

    def __init__(self, index: Index[K, V]) -> None:
        self.index = index
        self._objects: dict[Name, dict[K, V]] = {}
        self._keys: dict[K, dict[Name, V]] = {}
        self.changes = 0
        """Bumped by every change of what is kept (an object's entries added, changed or gone)."""

    def __getitem__(self, key: K) -> Sequence[V]:
        return list(self._keys[key].values())

    def __iter__(self) -> Iterator[K]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def put(self, obj: Mapping[str, Any]) -> None:
        """Keep ``obj`` (added or changed) as its index makes it now, found by its keys of now only."""
        name, entries = name_of(obj), dict(self.index(obj))
        if self._objects.get(name) == (entries or None):
            return
        self._forget(name)
        if entries:
            self._objects[name] = entries
            for key, entry in entries.items():
                self._keys.setdefault(key, {})[name] = entry
        self.changes += 1

    def remove(self, obj: Mapping[str, Any]) -> None:
        name = name_of(obj)
        if name in self._objects:
            self._forget(name)
            self.changes += 1

    def replace(self, namespace: str | None, objs: Iterable[Mapping[str, Any]]) -> None:
        """What a fresh list of ``namespace`` (None: every namespace) holds, and nothing else there:
        what was deleted while no watch ran is gone."""
        listed = set()
        for obj in objs:
            self.put(obj)
            listed.add(name_of(obj))
        self.retain(namespace, listed)

    def retain(self, namespace: str | None, listed: Set[Name]) -> None:
        """Forget what ``namespace`` (None: every namespace) holds besides ``listed``: the end of a
        list that was :meth:`put` page by page."""
        for name in [n for n in self._objects if (namespace is None or n[0] == namespace) and n not in listed]:
            self._forget(name)
            self.changes += 1

    def apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        """One watch event: ADDED and MODIFIED keep the object, DELETED forgets it."""
        if kind == "DELETED":
            self.remove(obj)
        elif kind in ("ADDED", "MODIFIED"):
            self.put(obj)

    def _forget(self, name: Name) -> None:
        for key in self._objects.pop(name, {}):
            found = self._keys.get(key, {})
            found.pop(name, None)
            if not found:
                self._keys.pop(key, None)


def name_of(obj: Mapping[str, Any]) -> Name:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name", "")))
