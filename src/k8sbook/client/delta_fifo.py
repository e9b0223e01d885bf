"""The client's local stores: ``Indexer`` and ``DeltaFIFO``, with the keys and tombstones.

Mirrors ``k8s.io/client-go/tools/cache``: ``DeltaFIFO`` (``delta_fifo.go``) queues the changes
per object key; ``Replace`` after a relist emits a ``Deleted`` delta with a
``DeletedFinalStateUnknown`` tombstone for every object that vanished while the client was not
watching, whether the consumer already knew it (the indexer) or it is still queued, so no
deletion is ever missed. ``Indexer`` (``thread_safe_store.go``, ``index.go``): the local cache,
keyed ``namespace/name``, with a ``namespace`` index and any others you add. Everything here is
importable from :mod:`k8sbook.client.informer` too.
"""

from __future__ import annotations

import builtins
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


def meta_namespace_key(obj: Obj) -> str:
    """``cache.MetaNamespaceKeyFunc``: ``namespace/name``, or ``name`` if cluster-scoped."""
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


@dataclass(frozen=True)
class DeletedFinalStateUnknown:
    """A tombstone: the object was deleted while the watch was down; this is its last state."""

    key: str
    obj: Obj


def final_state(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    """What an ``OnDelete`` handler was given, unwrapped: the object, or a tombstone's last
    known state (the ``obj.(cache.DeletedFinalStateUnknown)`` type switch every client-go
    delete handler writes)."""
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


class Indexer:
    """A keyed store with secondary indexes, kept up to date on every change as
    ``threadSafeMap.updateIndices`` does: ``by_index`` reads one index entry instead of
    scanning the store."""

    def __init__(self, indexers: dict[str, Callable[[Obj], list[str]]] | None = None) -> None:
        self.items: dict[str, Obj] = {}
        self.indexers: dict[str, Callable[[Obj], builtins.list[str]]] = {
            "namespace": lambda o: [o["metadata"].get("namespace", "")]}
        self.indexers.update(indexers or {})
        #: index name -> indexed value -> keys (``cache.Indices``)
        self.indices: dict[str, dict[str, set[str]]] = {name: {} for name in self.indexers}
        # (index name, value) -> its keys sorted, kept until a key joins or leaves the entry
        # (an update that leaves the value alone, most of them, keeps it): by_index sorts an
        # entry once per change of its members, not once per call
        self._sorted: dict[tuple[str, str], builtins.list[str]] = {}

    def _index(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, fn in self.indexers.items():
            index = self.indices[name]
            before = fn(old) if old is not None else []
            after = fn(new) if new is not None else []
            if before == after:
                continue
            for value in before:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    self._sorted.pop((name, value), None)
                    if not keys:
                        del index[value]
            for value in after:
                index.setdefault(value, set()).add(key)
                self._sorted.pop((name, value), None)

    def add(self, obj: Obj) -> None:
        key = meta_namespace_key(obj)
        self._index(key, self.items.get(key), obj)
        self.items[key] = obj

    update = add

    def delete(self, obj: Obj) -> None:
        self.delete_key(meta_namespace_key(obj))

    def delete_key(self, key: str) -> None:
        old = self.items.pop(key, None)
        if old is not None:
            self._index(key, old, None)

    def get_by_key(self, key: str) -> Obj | None:
        return self.items.get(key)

    def list(self) -> builtins.list[Obj]:
        return [self.items[k] for k in sorted(self.items)]

    def list_keys(self) -> builtins.list[str]:
        return sorted(self.items)

    def by_index(self, index: str, value: str) -> builtins.list[Obj]:
        """The objects whose index function gives ``value``, in key order (``ByIndex``)."""
        keys = self._sorted.get((index, value))
        if keys is None:
            members = self.indices[index].get(value)
            if members is None:
                return []
            keys = self._sorted[(index, value)] = sorted(members)
        items = self.items
        return [items[k] for k in keys]

    def add_indexer(self, name: str, fn: Callable[[Obj], builtins.list[str]]) -> None:
        """``AddIndexers``: a new index, built over what the store already holds."""
        self.indexers[name] = fn
        self.indices[name] = {}
        self._sorted = {k: v for k, v in self._sorted.items() if k[0] != name}
        for key, obj in self.items.items():
            for value in fn(obj):
                self.indices[name].setdefault(value, set()).add(key)


Delta = tuple[str, Any]  # ("Added"|"Updated"|"Deleted"|"Replaced"|"Sync", object or tombstone)


class DeltaFIFO:
    """Changes queued per key, in order; each key appears in the queue once."""

    def __init__(self, known: Indexer) -> None:
        self.items: dict[str, list[Delta]] = {}
        self.queue: deque[str] = deque()
        self.known = known  # the informer's indexer: what the consumer already knows

    def _push(self, key: str, delta: Delta) -> None:
        if key not in self.items:
            self.items[key] = []
            self.queue.append(key)
        deltas = self.items[key]
        if deltas and delta[0] == "Deleted" and deltas[-1][0] == "Deleted":
            # dedupDeltas/isDeletionDup: two deletions in a row are one; keep the one that is
            # not a tombstone (the newer, unless it is a DeletedFinalStateUnknown)
            if not isinstance(delta[1], DeletedFinalStateUnknown):
                deltas[-1] = delta
            return
        deltas.append(delta)

    def add(self, obj: Obj) -> None:
        self._push(meta_namespace_key(obj), ("Added", obj))

    def update(self, obj: Obj) -> None:
        self._push(meta_namespace_key(obj), ("Updated", obj))

    def delete(self, obj: Obj) -> None:
        self._push(meta_namespace_key(obj), ("Deleted", obj))

    def newest(self, key: str) -> Obj | None:
        """The newest state queued for ``key`` (a tombstone unwrapped), or None if not queued
        (``Deltas.Newest``)."""
        deltas = self.items.get(key)
        return final_state(deltas[-1][1]) if deltas else None

    def replace(self, items: list[Obj]) -> None:
        """After a (re)list, as ``DeltaFIFO.Replace`` in client-go's ``delta_fifo.go``: every
        listed object as ``Replaced``; then every key missing from the list gets a ``Deleted``
        delta with a :class:`DeletedFinalStateUnknown` tombstone. Two kinds of key can be
        missing: one still *queued* (the consumer is slow, and has not popped the changes the
        watch delivered; "Do deletion detection against objects in the queue"), whose tombstone
        carries the newest queued state, and one only *known* (in the indexer, nothing
        queued), whose tombstone carries the indexer's state. Checking the queue too is what
        keeps a deletion missed during the relist from being lost for a slow consumer, and the
        tombstone from being older than an update still in the queue (client-go got the queued
        half in kubernetes/kubernetes#115620, v1.27, for issue #115658). Newer client-go can
        feed informers from a ``RealFIFO`` instead (feature gate ``InOrderInformers``); the
        model keeps the DeltaFIFO."""
        listed = set()
        for obj in items:
            key = meta_namespace_key(obj)
            listed.add(key)
            self._push(key, ("Replaced", obj))
        for key in list(self.queue):
            if key not in listed:
                last = self.newest(key)
                self._push(key, ("Deleted", DeletedFinalStateUnknown(key, last or {})))
        for key in self.known.list_keys():
            if key not in listed and not self.items.get(key):
                last = self.known.get_by_key(key)
                if last is not None:
                    self._push(key, ("Deleted", DeletedFinalStateUnknown(key, last)))

    def pop(self) -> tuple[str, list[Delta]] | None:
        if not self.queue:
            return None
        key = self.queue.popleft()
        return key, self.items.pop(key)

    def __len__(self) -> int:
        return len(self.queue)
