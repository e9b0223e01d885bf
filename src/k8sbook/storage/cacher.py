"""The apiserver's watch cache: one etcd watch per resource, fanned out to every client.

Mirrors ``k8s.io/apiserver/pkg/storage/cacher`` (``cacher.go``, ``watch_cache.go``): at start
the cacher lists the resource from etcd and opens a single etcd watch from that revision; it
keeps the current objects and a window of recent events; every client watch is served from
that window, never by a new etcd watch. A client that asks to watch from a resourceVersion the
window no longer holds gets a watch whose first and only event is an ``ERROR`` carrying a
``410 Expired`` Status ("too old resource version"), exactly as ``newErrWatcher`` does. Watch
events are filtered per watcher the way the cacher does it: an object that stops matching a
watcher's selectors is sent as ``DELETED``, one that starts matching as ``ADDED``.

Difference from the real cache, said out loud: the real window is bounded by size and age
(at least 75 s of events); here it reaches back to the last etcd compaction, so the model
answers 410 exactly when a resourceVersion has been compacted.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.api.resources import ResourceType
from k8sbook.core.clock import Clock, Timer
from k8sbook.core.status import status_object
from k8sbook.storage import etcd_api as etcdapi
from k8sbook.storage.etcd3 import Storage, decode

#: How often the cacher sends bookmarks to watchers that allow them (``bookmarkFrequency``).
BOOKMARK_INTERVAL = 60.0
#: ``metav1.InitialEventsAnnotationKey``: the bookmark that ends a streaming list's state
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

WatchEvent = dict[str, Any]
Filter = Callable[[dict[str, Any]], bool]


@dataclass
class Watcher:
    """One client watch served by the cache."""

    id: int
    namespace: str
    matches: Filter
    on_event: Callable[[WatchEvent | None], None]
    bookmarks: bool
    cache: WatchCache = field(repr=False)
    stopped: bool = False
    timers: list[Timer] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        """End the stream (either side may); the client sees ``None`` once."""
        if self.stopped:
            return
        self.stopped = True
        for t in self.timers:
            t.cancel()
        self.cache.watchers.pop(self.id, None)
        self.cache.clock.call_soon(lambda: self.on_event(None), label="watch closed")


class WatchCache:
    """The cache for one resource type."""

    def __init__(self, rt: ResourceType, storage: Storage, clock: Clock) -> None:
        self.rt = rt
        self.storage = storage
        self.clock = clock
        self.objects: dict[str, dict[str, Any]] = {}
        #: (revision, type, object, previous object) for every change after ``start_revision``
        self.events: list[tuple[int, str, dict[str, Any], dict[str, Any] | None]] = []
        self.start_revision = 0
        self._revision = 0
        self.compacted = 0
        self.watchers: dict[int, Watcher] = {}
        self._next_id = 1
        self._etcd_watch: etcdapi.WatchHandle | None = None

    # -- feeding from etcd -----------------------------------------------------------------
    def start(self) -> None:
        items, rev = self.storage.list(self.rt.prefix())
        self.objects = {self.rt.key(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o
                        for o in items}
        self.start_revision = self._revision = rev
        self._etcd_watch = self.storage.watch(self.rt.prefix(), rev + 1, self._on_etcd)

    def _on_etcd(self, batch: list[etcdapi.Event]) -> None:
        for ev in batch:
            prev = self.objects.get(ev.kv.key)
            if ev.type == "PUT":
                obj = decode(ev.kv)
                kind = "MODIFIED" if prev is not None else "ADDED"
                self.objects[ev.kv.key] = obj
            else:
                if prev is None:
                    continue
                obj = copy.deepcopy(prev)
                obj["metadata"]["resourceVersion"] = str(ev.kv.mod_revision)
                kind = "DELETED"
                del self.objects[ev.kv.key]
            rev = ev.kv.mod_revision
            self.events.append((rev, kind, obj, prev))
            self._revision = rev
            for w in list(self.watchers.values()):
                self._dispatch(w, kind, obj, prev)

    @property
    def revision(self) -> int:
        """How far the cache is known to be up to date. The real cacher learns this from its
        own events and from etcd's progress notifications; in the model etcd delivers
        synchronously, so the cache is always current with etcd's revision."""
        return max(self._revision, self.storage.revision)

    def on_compacted(self, revision: int) -> None:
        self.compacted = max(self.compacted, revision)
        self.events = [e for e in self.events if e[0] > revision]

    @property
    def oldest(self) -> int:
        """The oldest resourceVersion a watch may start from."""
        return max(self.start_revision, self.compacted)

    # -- serving ---------------------------------------------------------------------------
    def list(self, namespace: str, matches: Filter) -> tuple[list[dict[str, Any]], int]:
        items = [copy.deepcopy(o) for k, o in sorted(self.objects.items())
                 if (not namespace or o["metadata"].get("namespace") == namespace)
                 and matches(o)]
        return items, self.revision

    def _deliver(self, w: Watcher, event: WatchEvent) -> None:
        payload = json.loads(json.dumps(event))  # each watcher gets its own copy

        def send() -> None:
            if not w.stopped:
                w.on_event(payload)
        self.clock.call_soon(send, label=f"watch event to watcher {w.id}")

    def _visible(self, w: Watcher, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        ns = obj["metadata"].get("namespace", "")
        return (not w.namespace or ns == w.namespace) and w.matches(obj)

    def _dispatch(self, w: Watcher, kind: str, obj: dict[str, Any],
                  prev: dict[str, Any] | None) -> None:
        now, before = self._visible(w, obj if kind != "DELETED" else prev), self._visible(w, prev)
        if kind == "DELETED":
            if before:
                self._deliver(w, {"type": "DELETED", "object": obj})
            return
        if now and before:
            self._deliver(w, {"type": "MODIFIED", "object": obj})
        elif now:
            self._deliver(w, {"type": "ADDED", "object": obj})
        elif before:
            self._deliver(w, {"type": "DELETED", "object": obj})

    def watch(self, namespace: str, matches: Filter, resource_version: str,
              on_event: Callable[[WatchEvent | None], None], *, bookmarks: bool = False,
              timeout: float | None = None, send_initial_events: bool = False) -> Watcher:
        """Start a client watch. ``resource_version`` "" or "0": current state as ADDED
        events, then changes; a number: every change after it (410 if too old).
        ``send_initial_events`` (a streaming list, KEP-3157's ``sendInitialEvents=true`` with
        ``resourceVersionMatch=NotOlderThan``): the current state as ADDED events, then a
        BOOKMARK annotated ``k8s.io/initial-events-end: "true"`` at the cache's revision,
        then changes (the model's cache is always as new as any resourceVersion asked for)."""
        w = Watcher(self._next_id, namespace, matches, on_event, bookmarks, self)
        self._next_id += 1
        if resource_version in ("", "0") or send_initial_events:
            for _, obj in sorted(self.objects.items()):
                if self._visible(w, obj):
                    self._deliver(w, {"type": "ADDED", "object": obj})
            if send_initial_events:
                end = {"kind": self.rt.kind, "apiVersion": self.rt.api_version,
                       "metadata": {"resourceVersion": str(self.revision),
                                    "annotations": {INITIAL_EVENTS_END: "true"}}}
                self._deliver(w, {"type": "BOOKMARK", "object": end})
        else:
            rv = int(resource_version)
            if rv < self.oldest:
                status = status_object(410, "Expired",
                                       f"too old resource version: {rv} ({self.oldest})")
                self._deliver(w, {"type": "ERROR", "object": status})
                self.clock.call_soon(w.stop, label="error watcher closes")
                return w
            for rev, kind, obj, prev in self.events:
                if rev > rv:
                    self._dispatch(w, kind, obj, prev)
        self.watchers[w.id] = w
        if bookmarks:
            self._schedule_bookmark(w)
        if timeout:
            w.timers.append(self.clock.call_later(timeout, w.stop, label="watch timeout"))
        return w

    def _schedule_bookmark(self, w: Watcher) -> None:
        def bookmark() -> None:
            if w.stopped:
                return
            obj = {"kind": self.rt.kind, "apiVersion": self.rt.api_version,
                   "metadata": {"resourceVersion": str(self.revision)}}
            self._deliver(w, {"type": "BOOKMARK", "object": obj})
            self._schedule_bookmark(w)
        w.timers = [t for t in w.timers if not t.cancelled]
        w.timers.append(self.clock.call_later(BOOKMARK_INTERVAL, bookmark, label="bookmark"))

    def stop_all(self) -> None:
        for w in list(self.watchers.values()):
            w.stop()
