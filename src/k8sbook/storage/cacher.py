"""The apiserver's watch cache: one etcd watch per resource, fanned out to every client.

Mirrors ``k8s.io/apiserver/pkg/storage/cacher`` (``cacher.go``, ``watch_cache.go``): at start
the cacher lists the resource from etcd and opens a single etcd watch from that revision; it
keeps the current objects and a window of recent events; every client watch is served from
that window, never by a new etcd watch. A client that asks to watch from a resourceVersion the
window no longer holds gets a watch whose first and only event is an ``ERROR`` carrying a
``410 Expired`` Status ("too old resource version"), exactly as ``newErrWatcher`` does. Watch
events are filtered per watcher the way the cacher does it: an object that stops matching a
watcher's selectors is sent as ``DELETED``, one that starts matching as ``ADDED``.

Two things keep the cost of an event independent of the number of watchers, as upstream:

* *Indexed triggers* (``Cacher.indexedTrigger``, fed by the registry's ``TriggerFunc``/
  ``IndexerFuncs``; for pods ``NodeNameTriggerFunc``, ``spec.nodeName``): a watch whose field
  selector requires one exact value of the trigger field (every kubelet's
  ``spec.nodeName=<node>``) is filed under that value, and an event is offered only to the
  watchers filed under the trigger values of the object and of its previous state
  (``triggerValuesThreadUnsafe``), plus the watchers without one. A pod event reaches its own
  node's kubelet, not all 5,000.
* *One serialization per event* (``cachingObject``): the event is encoded once, and every
  watcher that gets it receives the same bytes. In one Python process the model goes one
  step further: every watcher receives the cache's own decoded object, not a copy decoded
  per watcher, so each object is held once however many informers hold it (upstream's
  processes each decode their own copy; what they may do with it is the same: client-go's
  informers hand out shared objects that must not be mutated). The model checks that rule
  as client-go's ``KUBE_CACHE_MUTATION_DETECTOR`` does (``tools/cache/mutation_detector.go``):
  with the variable set to ``true`` (or ``mutation_detector.detect()``), every event's
  encoding is kept and ``mutation_detector.check()`` fails on an object changed since it was
  sent (:mod:`k8sbook.core.mutation_detector`).

What the cache holds, and how the model keeps it small (the objects are the same; only how
they are held differs from upstream's process, which holds every object and every event of the
window decoded): an object is decoded once, when a watcher, the trigger index or a reader first
needs it, and then shared; until then the cache holds the etcd ``KeyValue`` it came as, the
bytes etcd itself keeps (the events cache, which nobody watches in most runs, stays as bytes).
A decoded object's keys and strings are interned (``sys.intern``), so the field names, node
names, timestamps and conditions that every pod repeats are held once. The window keeps each
event as its revision, type and the ``KeyValue`` of the object and of its previous state,
decoding them again only for a watch that starts inside the window (the cache's current object
when it is that version).

The window of recent events is bounded as ``watch_cache.go`` bounds it (v1.35.0): a ring of
``capacity`` events, starting at :data:`LOWER_BOUND_CAPACITY` (100); when it is full and its
oldest event is younger than :data:`EVENT_FRESH_DURATION` (75 s: ``DefaultEventFreshDuration``,
the 60 s bookmark frequency plus 15 s), it doubles, up to :data:`UPPER_BOUND_CAPACITY`
(100 × 1024); when it is full and the event a quarter of the ring back is older than that, it
halves, down to the lower bound (``resizeCacheLocked``); a full ring drops its oldest event.
A watch from a resourceVersion older than the window gets the 410 (``too old resource version:
<rv> (<oldest - 1>)``), and so does one from before the last etcd compaction, which the model
also drops from the window (upstream's window does not follow compactions: said out loud).

The module is over 400 lines because the cache's store, its window, the trigger index and the
fan-out to watchers are one structure (``cacher.go`` with ``watch_cache.go``), and how it holds
objects compactly is part of it.
"""

from __future__ import annotations

import copy
import json
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.api.resources import ResourceType
from k8sbook.core import mutation_detector
from k8sbook.core.clock import Clock, Timer
from k8sbook.core.status import status_object
from k8sbook.core.trace import Encoded
from k8sbook.storage import etcd_api as etcdapi
from k8sbook.storage.etcd3 import Storage, decode

#: How often the cacher sends bookmarks to watchers that allow them (``bookmarkFrequency``).
BOOKMARK_INTERVAL = 60.0
#: ``metav1.InitialEventsAnnotationKey``: the bookmark that ends a streaming list's state
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
#: ``watch_cache.go``: ``defaultLowerBoundCapacity``, the window's first and smallest size
LOWER_BOUND_CAPACITY = 100
#: ``watch_cache.go``: ``defaultUpperBoundCapacity``, its largest
UPPER_BOUND_CAPACITY = 100 * 1024
#: ``cacher.go``: ``DefaultEventFreshDuration = defaultBookmarkFrequency + 15*time.Second``
EVENT_FRESH_DURATION = BOOKMARK_INTERVAL + 15.0

WatchEvent = dict[str, Any]
Filter = Callable[[dict[str, Any]], bool]
#: what the cache holds for an object: decoded, or the etcd value it will be decoded from
Held = dict[str, Any] | etcdapi.KeyValue
#: one event of the window: revision, type, the object and its previous state (as held)
WindowEvent = tuple[int, str, Held, Held | None]


@dataclass(slots=True)
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
    #: the value of the cache's trigger field this watch requires, if it requires one
    trigger_value: str | None = None

    def stop(self) -> None:
        """End the stream (either side may); the client sees ``None`` once."""
        if self.stopped:
            return
        self.stopped = True
        for t in self.timers:
            t.cancel()
        self.cache.forget(self)
        self.cache.clock.call_soon(lambda: self.on_event(None), label="watch closed")


class WatchCache:
    """The cache for one resource type."""

    def __init__(self, rt: ResourceType, storage: Storage, clock: Clock, *,
                 trigger: tuple[str, Callable[[dict[str, Any]], str]] | None = None) -> None:
        self.rt = rt
        #: (field, function): the registry's indexed trigger, e.g. pods' ``spec.nodeName``
        self.trigger = trigger
        #: watchers by trigger value, and those without one (``watcherIndex``)
        self._by_value: dict[str, dict[int, Watcher]] = {}
        self._unindexed: dict[int, Watcher] = {}
        #: object keys by trigger value: the cache's store is an indexer on the same field
        #: (``IndexerFuncs``), so a read for one node's pods does not scan every pod
        self._keys_by_value: dict[str, set[str]] = {}
        self.storage = storage
        self.clock = clock
        #: the current objects by key, each decoded or still the etcd value (:meth:`get`)
        self._objects: dict[str, Held] = {}
        self._sorted_keys: list[str] | None = []  # None: sort again before the next read
        self._listed: list[dict[str, Any]] | None = []  # the objects in key order, or None
        #: (revision, type, object, previous object) for the changes in the window, oldest
        #: first, the objects as held (:meth:`window` decodes them), and when each was
        #: recorded (virtual seconds)
        self.events: deque[WindowEvent] = deque()
        self._times: deque[float] = deque()
        #: the window's size now (``watchCache.capacity``), and whether it has dropped an
        #: event since the cache started (``removedEventSinceRelist``)
        self.capacity = LOWER_BOUND_CAPACITY
        self._dropped = False
        self.start_revision = 0
        self._revision = 0
        self.compacted = 0
        self.watchers: dict[int, Watcher] = {}
        self._next_id = 1
        self._etcd_watch: etcdapi.WatchHandle | None = None

    # -- feeding from etcd -----------------------------------------------------------------
    def start(self) -> None:
        items, rev = self.storage.list(self.rt.prefix())
        self._objects = {self.rt.key(o["metadata"].get("namespace", ""),
                                     o["metadata"]["name"]): _interned(o) for o in items}
        self._sorted_keys = self._listed = None
        for key, obj in self._objects.items():
            self._index(key, None, obj)  # type: ignore[arg-type]
        self.start_revision = self._revision = rev
        self._etcd_watch = self.storage.watch(self.rt.prefix(), rev + 1, self._on_etcd)

    # -- the current objects ---------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        """The current object at ``key`` (the cache's own, shared: never to be mutated)."""
        held = self._objects.get(key)
        return None if held is None else self._decoded(key, held)

    def __len__(self) -> int:
        return len(self._objects)

    def keys(self) -> list[str]:
        """The keys of the current objects, sorted."""
        if self._sorted_keys is None:
            self._sorted_keys = sorted(self._objects)
        return self._sorted_keys

    def sorted_objects(self) -> list[dict[str, Any]]:
        """Every current object in key order (the cache's own: for in-process readers). The
        list is kept until the next change, so readers that ask on every request (RBAC's
        roles, admission's PriorityClasses) do not sort the cache each time."""
        if self._listed is None:
            listed = [self._decoded(k, self._objects[k]) for k in self.keys()]
            self._listed = listed
        return list(self._listed)

    def _decoded(self, key: str, held: Held) -> dict[str, Any]:
        """``held`` as an object: decoded now (and kept) if it is still the etcd value."""
        if type(held) is dict:
            return held
        assert isinstance(held, etcdapi.KeyValue)
        obj = _decode(held)
        self._objects[key] = obj
        self._listed = None
        return obj

    def _on_etcd(self, batch: list[etcdapi.Event]) -> None:
        for ev in batch:
            key = ev.kv.key
            held = self._objects.get(key)
            self._listed = None
            # decode now only if someone will look at the object: a watcher, or the index
            eager = self.trigger is not None or bool(self.watchers)
            prev = None
            if ev.type == "PUT":
                kind = "MODIFIED" if held is not None else "ADDED"
                if held is None:
                    self._sorted_keys = None
                if eager:
                    obj = _decode(ev.kv)
                    prev = _as_object(held)
                    self._objects[key] = obj
                    self._index(key, prev, obj)
                else:
                    self._objects[key] = ev.kv
                source: Held = ev.kv
            else:
                if held is None:
                    continue
                kind = "DELETED"
                del self._objects[key]
                self._sorted_keys = None
                if eager:
                    prev = _object(held)
                    obj = copy.deepcopy(prev)
                    obj["metadata"]["resourceVersion"] = str(ev.kv.mod_revision)
                    self._index(key, prev, None)
            rev = ev.kv.mod_revision
            # the previous state as etcd sent it, when that is the version the cache held
            before = held
            if ev.prev_kv is not None and held is not None and (
                    held is ev.prev_kv or type(held) is dict and held["metadata"].get(
                        "resourceVersion") == str(ev.prev_kv.mod_revision)):
                before = ev.prev_kv
            self._record(rev, kind, before if kind == "DELETED" else source,  # type: ignore[arg-type]
                         before)
            self._revision = rev
            if not eager:
                continue
            encoded: dict[str, Encoded] = {}  # one serialization per event type, for all
            stored = ev.kv if kind != "DELETED" else None
            for w in self._interested(obj, prev):
                self._dispatch(w, kind, obj, prev, encoded, stored)

    def window(self) -> list[tuple[int, str, dict[str, Any], dict[str, Any] | None]]:
        """The window's events, oldest first, as (revision, type, object, previous object)."""
        return [self._replayed(e) for e in self.events]

    def _replayed(self, event: WindowEvent) -> tuple[int, str, dict[str, Any],
                                                      dict[str, Any] | None]:
        """A window event with its objects decoded again: the cache's own current object
        where it is that version, a fresh decode otherwise (equal to what was sent then)."""
        rev, kind, held, before = event
        prev = _as_object(before)
        if kind == "DELETED":  # the object as it was, at the deleting revision
            assert prev is not None
            obj = copy.deepcopy(prev)
            obj["metadata"]["resourceVersion"] = str(rev)
            return rev, kind, obj, prev
        if type(held) is dict:
            return rev, kind, held, prev
        assert isinstance(held, etcdapi.KeyValue)
        current = self._objects.get(held.key)
        if current is held:
            return rev, kind, self._decoded(held.key, held), prev
        if type(current) is dict and current["metadata"].get("resourceVersion") == str(rev):
            return rev, kind, current, prev
        return rev, kind, _decode(held), prev

    def _record(self, rev: int, kind: str, obj: Held, prev: Held | None) -> None:
        """``updateCache``: resize the ring if due, drop its oldest event if full, append."""
        now = self.clock.now()
        if len(self.events) >= self.capacity:
            if now - self._times[0] < EVENT_FRESH_DURATION:
                self.capacity = min(self.capacity * 2, UPPER_BOUND_CAPACITY)
            elif now - self._times[len(self._times) - self.capacity // 4] \
                    > EVENT_FRESH_DURATION:
                self.capacity = max(self.capacity // 2, LOWER_BOUND_CAPACITY)
            while len(self.events) >= self.capacity:
                self.events.popleft()
                self._times.popleft()
                self._dropped = True
        self.events.append((rev, kind, obj, prev))
        self._times.append(now)

    def _index(self, key: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if self.trigger is None:
            return
        fn = self.trigger[1]
        before = fn(old) if old is not None else None
        after = fn(new) if new is not None else None
        if before == after:
            return
        if before is not None:
            keys = self._keys_by_value.get(before)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_value[before]
        if after is not None:
            self._keys_by_value.setdefault(after, set()).add(key)

    def by_trigger(self, value: str) -> list[dict[str, Any]]:
        """The cached objects whose trigger field is ``value``, in key order (the cache
        itself, not copies: for in-process readers)."""
        if self.trigger is None:
            return self.sorted_objects()
        return [self._decoded(k, self._objects[k])
                for k in sorted(self._keys_by_value.get(value, ()))]

    def _interested(self, obj: dict[str, Any], prev: dict[str, Any] | None) -> list[Watcher]:
        """The watchers an event is offered to, in the order they started watching."""
        if self.trigger is None or not self._by_value:
            return list(self.watchers.values())
        fn = self.trigger[1]
        values = {fn(obj)} | ({fn(prev)} if prev is not None else set())
        out = list(self._unindexed.values())
        for v in values:
            out.extend(self._by_value.get(v, {}).values())
        if len(values) > 1 or self._unindexed:
            out.sort(key=lambda w: w.id)
        return out

    def forget(self, w: Watcher) -> None:
        """Drop a stopped watcher from the cache and its index."""
        self.watchers.pop(w.id, None)
        self._unindexed.pop(w.id, None)
        if w.trigger_value is not None:
            filed = self._by_value.get(w.trigger_value, {})
            filed.pop(w.id, None)
            if not filed:
                self._by_value.pop(w.trigger_value, None)

    @property
    def revision(self) -> int:
        """How far the cache is known to be up to date. The real cacher learns this from its
        own events and from etcd's progress notifications; in the model etcd delivers
        synchronously, so the cache is always current with etcd's revision."""
        return max(self._revision, self.storage.revision)

    def on_compacted(self, revision: int) -> None:
        self.compacted = max(self.compacted, revision)
        while self.events and self.events[0][0] <= revision:
            self.events.popleft()
            self._times.popleft()

    @property
    def oldest(self) -> int:
        """The oldest resourceVersion a watch may start from: the cache's start, the last
        compaction, or, once the ring has dropped events, the revision before its oldest."""
        window = self.events[0][0] - 1 if self._dropped and self.events else 0
        if self._dropped and not self.events:
            window = self._revision
        return max(self.start_revision, self.compacted, window)

    # -- serving ---------------------------------------------------------------------------
    def list(self, namespace: str, matches: Filter) -> tuple[list[dict[str, Any]], int]:
        """Copies of the current objects in ``namespace`` (all: "") that ``matches`` keeps,
        in key order (an object still held as its etcd value is decoded: a copy already)."""
        items = []
        for key in self.keys():
            held = self._objects[key]
            obj = held if type(held) is dict else decode(held)  # type: ignore[arg-type]
            if (not namespace or obj["metadata"].get("namespace") == namespace) \
                    and matches(obj):
                items.append(copy.deepcopy(obj) if obj is held else obj)
        return items, self.revision

    def _deliver(self, w: Watcher, event: WatchEvent, payload: Encoded | None = None) -> None:
        # the event as sent: its one encoding gives its size on the wire; watchers share it
        if payload is None:
            payload = _sized(event)

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
                  prev: dict[str, Any] | None, encoded: dict[str, Encoded] | None = None,
                  stored: etcdapi.KeyValue | None = None) -> None:
        # ``stored``: the etcd value ``obj`` was decoded from (its size gives the event's)
        now, before = self._visible(w, obj if kind != "DELETED" else prev), self._visible(w, prev)
        if kind == "DELETED":
            sent = "DELETED" if before else ""
        elif now and before:
            sent = "MODIFIED"
        elif now:
            sent = "ADDED"
        else:
            sent = "DELETED" if before else ""
        if not sent:
            return
        event = {"type": sent, "object": obj}
        if encoded is None:
            self._deliver(w, event)
            return
        if sent not in encoded:
            encoded[sent] = _sized(event) if stored is None else _sized_stored(event, stored)
        self._deliver(w, event, encoded[sent])

    def watch(self, namespace: str, matches: Filter, resource_version: str,
              on_event: Callable[[WatchEvent | None], None], *, bookmarks: bool = False,
              timeout: float | None = None, trigger_value: str | None = None,
              send_initial_events: bool = False) -> Watcher:
        """Start a client watch. ``resource_version`` "" or "0": current state as ADDED
        events, then changes; a number: every change after it (410 if too old).
        ``trigger_value``: the value the watch's selector requires for the cache's trigger
        field (the caller works it out from the field selector), if any.
        ``send_initial_events`` (a streaming list, KEP-3157's ``sendInitialEvents=true`` with
        ``resourceVersionMatch=NotOlderThan``): the current state as ADDED events, then a
        BOOKMARK annotated ``k8s.io/initial-events-end: "true"`` at the cache's revision,
        then changes (the model's cache is always as new as any resourceVersion asked for)."""
        if self.trigger is None:
            trigger_value = None
        w = Watcher(self._next_id, namespace, matches, on_event, bookmarks, self,
                    trigger_value=trigger_value)
        self._next_id += 1
        if resource_version in ("", "0") or send_initial_events:
            for obj in self.sorted_objects():
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
            for event in self.events:
                if event[0] > rv:
                    _, kind, obj, prev = self._replayed(event)
                    self._dispatch(w, kind, obj, prev)
        self.watchers[w.id] = w
        if w.trigger_value is None:
            self._unindexed[w.id] = w
        else:
            self._by_value.setdefault(w.trigger_value, {})[w.id] = w
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


def _sized(event: WatchEvent) -> Encoded:
    """The event as every watcher receives it, with the size of its one encoding (compact,
    as Go's ``encoding/json`` writes it; ASCII, so its length is its size in bytes)."""
    text = _WIRE_JSON.encode(event)
    payload = Encoded(event, len(text))
    mutation_detector.sent(payload, text)
    return payload


#: the fixed text of a watch event around its type and object: ``{"type":"`` + type +
#: ``","object":`` + object + ``}``
_EVENT_FRAME = len('{"type":"') + len('","object":') + len("}")
#: the text ``"resourceVersion":""`` that the stored value lacks (without its value)
_RV_FIELD = len('"resourceVersion":""')


def _sized_stored(event: WatchEvent, kv: etcdapi.KeyValue) -> Encoded:
    """:func:`_sized` for an event whose object was decoded from ``kv`` (and not changed
    since): the same size, without encoding the object again. The stored value is the same
    compact, ASCII JSON (:func:`~k8sbook.storage.etcd3.encode`) minus
    ``metadata.resourceVersion``; a JSON text's length does not depend on its key order
    (the stored one is sorted, the wire's is not), so the event's length is the value's plus
    the resourceVersion field (with its comma when metadata holds anything else) plus the
    event's frame. Exactly ``len(_WIRE_JSON.encode(event))``: tests/storage/test_cacher.py
    checks the two agree. With the mutation detector on, the text itself is kept: encoded."""
    if mutation_detector.detecting():
        return _sized(event)
    obj = event["object"]
    meta = obj["metadata"]
    size = (_EVENT_FRAME + len(event["type"]) + len(kv.value) + _RV_FIELD
            + len(meta["resourceVersion"]) + (1 if len(meta) > 1 else 0))
    return Encoded(event, size)


_intern = sys.intern
#: the encoder ``json.dumps(..., separators=(",", ":"))`` makes on every call, made once
_WIRE_JSON = json.JSONEncoder(separators=(",", ":"))


def _decode(kv: etcdapi.KeyValue) -> dict[str, Any]:
    """The object in an etcd value, with its keys and strings interned: what the cache
    keeps (equal to :func:`~k8sbook.storage.etcd3.decode`'s, key order included)."""
    return _interned(decode(kv))


def _object(held: Held) -> dict[str, Any]:
    """A held object decoded (a fresh decode when it is still the etcd value: not kept)."""
    return held if isinstance(held, dict) else _decode(held)


def _as_object(held: Held | None) -> dict[str, Any] | None:
    return None if held is None else _object(held)


def _interned(value: dict[str, Any]) -> dict[str, Any]:
    """A copy of a decoded JSON object whose keys and strings are interned: the names every
    object repeats (``metadata``, ``status``, ``True``, a node's name, a timestamp) are then
    held once in the process, not once per object. The same keys in the same order and equal
    values: only which string objects hold them differs."""
    out = {}
    for k, v in value.items():
        t = type(v)
        if t is str:
            v = _intern(v)
        elif t is dict:
            v = _interned(v) if v else {}  # (a managedFields' fieldsV1 is mostly ``{}``)
        elif t is list:
            v = _interned_list(v)
        out[_intern(k)] = v
    return out


def _interned_list(value: list[Any]) -> list[Any]:
    out = []
    for v in value:
        t = type(v)
        if t is str:
            v = _intern(v)
        elif t is dict:
            v = _interned(v) if v else {}
        elif t is list:
            v = _interned_list(v)
        out.append(v)
    return out
