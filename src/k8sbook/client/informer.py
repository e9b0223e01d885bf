"""The client side of list+watch: Reflector, DeltaFIFO, Indexer and SharedIndexInformer.

Mirrors ``k8s.io/client-go/tools/cache``:

* ``Reflector`` (``reflector.go``) lists a resource, then watches it from the list's
  resourceVersion, remembering the last resourceVersion it saw (bookmarks included). When the
  watch ends normally (its ``timeoutSeconds`` ran out) it watches again from there. When the
  server answers ``410 Expired``/``Gone`` it relists; when the connection fails it backs off
  (800 ms doubling to 30 s, with jitter) and tries again. The first list asks for
  ``resourceVersion=0`` (served from the apiserver's cache); a relist after 410 asks for
  ``resourceVersion=""`` (a consistent read from etcd), as ``relistResourceVersion`` does.
  Watches use ``allowWatchBookmarks=true`` and a timeout drawn between 5 and 10 minutes.
* ``DeltaFIFO`` (``delta_fifo.go``) queues the changes per object key; ``Replace`` after a
  relist emits a ``Deleted`` delta with a ``DeletedFinalStateUnknown`` tombstone for every
  object that vanished while the client was not watching, known or still queued, so no
  deletion is ever missed. It and the ``Indexer`` (``thread_safe_store.go``, ``index.go``: the
  local cache, keyed ``namespace/name``) live in :mod:`k8sbook.client.delta_fifo`.
* ``SharedIndexInformer`` (``shared_informer.go``) pops the deltas, updates the indexer and
  calls the registered handlers (``OnAdd``, ``OnUpdate``, ``OnDelete``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.client.delta_fifo import (
    DeletedFinalStateUnknown,
    Delta,
    DeltaFIFO,
    Indexer,
    Obj,
    final_state,
    meta_namespace_key,
)
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.core.clock import Timer
from k8sbook.core.status import StatusError
from k8sbook.core.trace import MESSAGES

#: ``minWatchTimeout`` in reflector.go; each watch asks for a timeout in [5 min, 10 min).
MIN_WATCH_TIMEOUT = 300.0
BACKOFF_INITIAL, BACKOFF_CAP = 0.8, 30.0

__all__ = [
    "DeletedFinalStateUnknown",
    "Delta",
    "DeltaFIFO",
    "Indexer",
    "Reflector",
    "SharedIndexInformer",
    "final_state",
    "meta_namespace_key",
]


class Reflector:
    """List, then watch; relist on 410; back off on connection errors."""

    def __init__(self, client: Client, resource: str, store: DeltaFIFO, *, namespace: str = "",
                 label_selector: str = "", field_selector: str = "",
                 on_change: Callable[[], None] | None = None) -> None:
        self.client = client
        self.resource = resource
        self.store = store
        self.namespace = namespace
        self.selectors = {k: v for k, v in (("labelSelector", label_selector),
                                            ("fieldSelector", field_selector)) if v}
        self.on_change = on_change or (lambda: None)
        self.last_sync_resource_version = ""
        self.last_sync_unavailable = False
        self.lists = 0
        self.watches = 0
        self.relists_after_410 = 0
        self.stopped = False
        self._watcher: Any = None
        self._generation = 0  # bumped whenever the current watch is abandoned
        self._backoff = BACKOFF_INITIAL
        self._timer: Timer | None = None
        self.history: list[tuple[float, str]] = []  # (time, what happened), for figures

    @property
    def clock(self):
        return self.client.clock

    def _note(self, what: str) -> None:
        self.history.append((round(self.clock.now(), 6), what))

    def relist_resource_version(self) -> str:
        """``relistResourceVersion``: "" after a 410, "0" at first, else the last seen."""
        if self.last_sync_unavailable:
            return ""
        return self.last_sync_resource_version or "0"

    def run(self) -> None:
        self.stopped = False
        self.list_and_watch()

    def stop(self) -> None:
        self.stopped = True
        self._generation += 1
        if self._timer:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.stop()

    def _retry_later(self, what: Callable[[], None], reason: str) -> None:
        delay = self._backoff * (1 + self.client.jitter())
        self._backoff = min(self._backoff * 2, BACKOFF_CAP)
        self._note(f"backoff {delay:.2f}s ({reason})")
        self._timer = self.clock.call_later(delay, what, label=f"reflector {self.resource} retry")

    def list_and_watch(self) -> None:
        if self.stopped:
            return
        rv = self.relist_resource_version()
        try:
            result = self.client.list(self.resource, self.namespace, resourceVersion=rv,
                                      **self.selectors)
        except DialError:
            self._retry_later(self.list_and_watch, "list: connection refused")
            return
        except StatusError as err:
            if err.code == 410 or (err.code == 504 and "Too large" in err.status["message"]):
                self.last_sync_unavailable = True  # setIsLastSyncResourceVersionUnavailable
            self._retry_later(self.list_and_watch, f"list: {err.code} {err.reason}")
            return
        self.lists += 1
        self.last_sync_unavailable = False
        self.last_sync_resource_version = result["metadata"]["resourceVersion"]
        shown = rv or '""'
        self._note(f"list rv={shown} -> {len(result['items'])} items at "
                   f"rv {self.last_sync_resource_version}")
        self.store.replace(result["items"])
        self.on_change()
        self.watch()

    def watch(self) -> None:
        if self.stopped:
            return
        timeout = int(MIN_WATCH_TIMEOUT * (1 + self.client.jitter()))
        self._generation += 1
        generation = self._generation
        try:
            self._watcher = self.client.watch(
                self.resource, lambda event: self._on_event(event, generation), self.namespace,
                resourceVersion=self.last_sync_resource_version, allowWatchBookmarks=True,
                timeoutSeconds=timeout, **self.selectors)
        except DialError:
            self._retry_later(self.watch, "watch: connection refused")
            return
        except StatusError as err:
            if err.code == 410:
                self.relists_after_410 += 1
                self._note("watch: 410 -> relist")
                self._retry_later(self.list_and_watch, "after watch expired")
            else:
                self._retry_later(self.watch, f"watch: {err.code} {err.reason}")
            return
        self.watches += 1
        self._backoff = BACKOFF_INITIAL
        self._note(f"watch from rv {self.last_sync_resource_version}")

    def _on_event(self, event: dict[str, Any] | None, generation: int) -> None:
        if self.stopped or generation != self._generation:
            return  # an event of a watch this reflector has already given up
        if event is None:  # stream ended: timeout, server closed, or the network broke
            ended, self._watcher = self._watcher, None
            if ended is None or not ended.broken:
                self._note("watch closed -> watch again")
                self.clock.call_soon(self.watch)
            else:
                self._retry_later(self.watch, "watch broken: connection lost")
            return
        kind, obj = event["type"], event["object"]
        if kind == "ERROR":
            watcher, self._watcher = self._watcher, None
            self._generation += 1
            if watcher is not None:
                watcher.stop()
            if obj.get("code") == 410:
                # isExpiredError: do NOT mark the last resourceVersion unavailable; a list
                # "not older than" it is still answerable from the watch cache. Relist (after
                # the usual backoff), from the last resourceVersion seen.
                self.relists_after_410 += 1
                self._note(f"watch: 410 {obj.get('reason')} -> relist")
                self._retry_later(self.list_and_watch, "after watch expired")
            else:
                self._retry_later(self.list_and_watch, f"watch error {obj.get('code')}")
            return
        self.last_sync_resource_version = obj["metadata"]["resourceVersion"]
        if kind == "ADDED":
            self.store.add(obj)
        elif kind == "MODIFIED":
            self.store.update(obj)
        elif kind == "DELETED":
            self.store.delete(obj)
        if kind != "BOOKMARK":
            self.on_change()


Handler = Callable[..., None]
#: where each notification's handler is in a registered (on_add, on_update, on_delete)
_HANDLER_INDEX = {"add": 0, "update": 1, "delete": 2}


class SharedIndexInformer:
    """A Reflector feeding a DeltaFIFO, drained into an Indexer and the event handlers."""

    def __init__(self, client: Client, resource: str, *, namespace: str = "",
                 label_selector: str = "", field_selector: str = "",
                 indexers: dict[str, Callable[[Obj], list[str]]] | None = None,
                 pop_delay: float = 0.0) -> None:
        """``pop_delay`` makes a slow consumer: the queue is drained that many seconds after a
        change is queued instead of at once (the Reflector goes on filling it meanwhile)."""
        self.client = client
        self.pop_delay = pop_delay
        self.resource = resource
        self.indexer = Indexer(indexers)
        self.fifo = DeltaFIFO(self.indexer)
        self.reflector = Reflector(client, resource, self.fifo, namespace=namespace,
                                   label_selector=label_selector,
                                   field_selector=field_selector, on_change=self._schedule)
        self.handlers: list[tuple[Handler | None, Handler | None, Handler | None]] = []
        self._scheduled = False
        self.synced = False
        #: every notification delivered, as (time, "add"|"update"|"delete", key), kept while
        #: the trace keeps messages: at the ``"counts"`` level (a run at scale) nothing is
        #: kept, as the trace keeps no messages then either
        self.notifications: list[tuple[float, str, str]] = []
        self._trace = client.network.trace

    def add_event_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                          on_delete: Handler | None = None) -> None:
        """``OnAdd(obj)``, ``OnUpdate(old, new)``, ``OnDelete(obj or tombstone)``. A handler
        added after start first gets an ``OnAdd`` for each object already cached."""
        self.handlers.append((on_add, on_update, on_delete))
        if on_add:
            for obj in self.indexer.list():
                on_add(obj)

    def run(self) -> None:
        self.reflector.run()

    def stop(self) -> None:
        self.reflector.stop()

    def has_synced(self) -> bool:
        return self.synced

    def lister(self, namespace: str | None = None) -> list[Obj]:
        if namespace is None:
            return self.indexer.list()
        return self.indexer.by_index("namespace", namespace)

    def get(self, key: str) -> Obj | None:
        return self.indexer.get_by_key(key)

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            label = f"informer {self.resource} pop"
            if self.pop_delay:
                self.client.clock.call_later(self.pop_delay, self._drain, label=label)
            else:
                self.client.clock.call_soon(self._drain, label=label)

    def _notify(self, what: str, key: str, *args: Any) -> None:
        if self._trace.level == MESSAGES:
            self.notifications.append((round(self.client.clock.now(), 6), what, key))
        index = _HANDLER_INDEX[what]
        for handlers in self.handlers:
            fn = handlers[index]
            if fn:
                fn(*args)

    def _drain(self) -> None:
        self._scheduled = False
        while (popped := self.fifo.pop()) is not None:
            key, deltas = popped
            for kind, obj in deltas:
                old = self.indexer.get_by_key(key)
                if kind == "Deleted":
                    self.indexer.delete_key(key)
                    self._notify("delete", key, obj)
                elif old is None:
                    self.indexer.add(obj)
                    self._notify("add", key, obj)
                else:
                    # as in processDeltas: a Replaced delta after a relist is an update even
                    # when nothing changed; handlers compare resourceVersions if they care
                    self.indexer.update(obj)
                    self._notify("update", key, old, obj)
        self.synced = True
