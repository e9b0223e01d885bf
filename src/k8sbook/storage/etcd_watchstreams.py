"""The watch side of :class:`~k8sbook.storage.etcd_client.RealEtcd`: etcd's watch streams,
delivered in the model's order.

Mirrors what ``go.etcd.io/etcd/client/v3``'s ``watcher`` does for kube-apiserver (one
``Watch`` stream per watch, reopened from the revision after the last one received when etcd
goes away), plus what the model needs to stay deterministic: the *oracle*, one extra watch over
the whole key space, tells the store which events each watch is owed up to a revision, so the
callbacks run synchronously, revision by revision, watchers in the order they were opened (see
"Determinism" in :mod:`k8sbook.storage.etcd_server`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any, Protocol

from k8sbook.storage.etcd_api import (
    CompactedError,
    Event,
    UnavailableError,
    WatchHandle,
    by_revision,
    in_range,
)
from k8sbook.storage.etcd_gateway import GatewayWatch, Stream, b64, event_from, range_body, unb64


class UnaryStore(Protocol):
    """What the watch streams need of the store: where etcd is, its revisions, a unary call."""

    host: str
    port: int
    revision: int
    compact_revision: int

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]: ...


class WatchStreams:
    """The oracle and every client watch of one store, and the delivery of their events."""

    def __init__(self, store: UnaryStore) -> None:
        self.store = store
        self.watches: dict[int, GatewayWatch] = {}
        self._next_watch = 1
        self._delivering = False
        #: a delivery could not finish (etcd went away): the store's next call finishes it
        self.needs_sync = False
        # the oracle: every event etcd has, as (revision, key, type), in revision order
        self._log: list[tuple[int, str, str]] = []
        self._log_revs: list[int] = []
        #: the oracle is complete up to this revision
        self.log_rev = 0
        self._oracle: Stream | None = None
        #: watch streams reopened after etcd went away (the oracle's included)
        self.resumed_streams = 0

    # -- the oracle ------------------------------------------------------------------------
    def open_oracle(self) -> None:
        """Watch the whole key space, from the oldest revision etcd still has (first time)
        or from the revision after the last one seen (after etcd came back)."""
        store = self.store
        first = self.log_rev == 0
        if first:
            self._learn_compact_revision()
        start = max(self.log_rev + 1, store.compact_revision, 1)
        stream = Stream(store.host, store.port, {"key": b64("\0"), "range_end": b64("\0"),
                                                 "start_revision": start})
        created = stream.next()
        if created is None or not created.get("result", {}).get("created"):
            stream.close()
            raise UnavailableError()
        self._oracle = stream
        self.resumed_streams += 0 if first else 1
        head = int(created["result"]["header"]["revision"])
        store.revision = max(store.revision, head)
        if first:
            self._read_oracle_until(head, first_connect=True)

    def _learn_compact_revision(self) -> None:
        """etcd does not report its compaction point, but a watch from before it is cancelled
        with ``compact_revision`` set; ask only if a read at revision 1 says it is compacted."""
        store = self.store
        try:
            store.post("/v3/kv/range", {"key": b64("\0"), "revision": 1, "count_only": True})
            return
        except CompactedError:
            pass
        probe = Stream(store.host, store.port, {"key": b64("\0"), "start_revision": 1})
        try:
            while (msg := probe.next()) is not None:
                rev = msg.get("result", {}).get("compact_revision")
                if rev:
                    store.compact_revision = int(rev)
                    return
        finally:
            probe.close()

    def _read_oracle_until(self, revision: int, first_connect: bool = False) -> None:
        compact_revision = self.store.compact_revision
        if first_connect and revision <= max(compact_revision, 1):
            # nothing after the compaction point: the oracle owes us only the PUTs etcd kept
            # at that revision; ask etcd how many there are
            want = 0
            if compact_revision:
                kept = self.store.post("/v3/kv/range", {
                    "key": b64("\0"), "range_end": b64("\0"), "revision": revision,
                    "min_mod_revision": revision, "max_mod_revision": revision,
                    "count_only": True})
                want = int(kept.get("count", 0))
            while sum(1 for r, _, _ in self._log if r == revision) < want:
                self._take_oracle()
            self.log_rev = revision
            return
        while self.log_rev < revision:
            self._take_oracle()

    def _take_oracle(self) -> None:
        assert self._oracle is not None
        msg = self._oracle.next()
        if msg is None:  # etcd went away: reopen from where we are
            self._oracle.close()
            self._oracle = None
            self.open_oracle()
            return
        res = msg.get("result", {})
        for d in res.get("events", []):
            rev = int(d["kv"]["mod_revision"])
            self._log.append((rev, unb64(d["kv"]["key"]), d.get("type", "PUT")))
            self._log_revs.append(rev)
            self.log_rev = max(self.log_rev, rev)

    def compacted(self, revision: int) -> None:
        """The oracle forgets what etcd forgot: everything before, and tombstones at, revision."""
        keep = [(r, k, t) for r, k, t in self._log
                if r > revision or (r == revision and t != "DELETE")]
        self._log = keep
        self._log_revs = [r for r, _, _ in keep]

    # -- delivering watch events -----------------------------------------------------------
    def _expected_last(self, w: GatewayWatch, upto: int) -> int:
        """The newest revision in ``(w.synced, upto]`` with an event in ``w``'s range."""
        h = w.handle
        lo = bisect.bisect_right(self._log_revs, w.synced)
        hi = bisect.bisect_right(self._log_revs, upto)
        for rev, key, _ in reversed(self._log[lo:hi]):
            if in_range(key, h.key, h.range_end):
                return rev
        return 0

    def _reopen(self, w: GatewayWatch) -> None:
        if w.stream is not None:
            w.stream.close()
        w.stream = None
        h = w.handle
        start = max(w.received, w.synced) + 1
        stream = Stream(self.store.host, self.store.port,
                        {**range_body(h.key, h.range_end), "start_revision": start,
                         "prev_kv": True})
        created = stream.next()
        if created is None:
            stream.close()
            raise UnavailableError()
        w.stream = stream
        self.resumed_streams += 1

    def _fill(self, w: GatewayWatch, upto: int) -> None:
        """Read ``w``'s stream until it has every event of its range up to ``upto``."""
        want = self._expected_last(w, upto)
        while w.received < want:
            if w.stream is None:
                self._reopen(w)
            assert w.stream is not None
            msg = w.stream.next()
            if msg is None:
                self._reopen(w)
                continue
            res = msg.get("result", {})
            if res.get("compact_revision"):
                raise CompactedError(int(res["compact_revision"]))
            for d in res.get("events", []):
                ev = event_from(d)
                w.pending.append(ev)
                w.received = max(w.received, ev.kv.mod_revision)
        w.synced = max(w.synced, upto)

    def sync(self, revision: int) -> None:
        """Deliver, in revision order, every event up to ``revision`` to every watch."""
        try:
            self._read_oracle_until(revision)
            for w in list(self.watches.values()):
                if not w.handle.cancelled:
                    self._fill(w, revision)
        except UnavailableError:
            self.needs_sync = True  # etcd went away meanwhile: finish on the next call
            return
        self.needs_sync = False
        if self._delivering:
            return  # a callback wrote: the round in progress delivers the new events too
        self._delivering = True
        try:
            while True:
                ready = [(w.pending[0].kv.mod_revision, hid)
                         for hid, w in self.watches.items()
                         if w.pending and not w.handle.cancelled]
                if not ready:
                    break
                rev, hid = min(ready)
                w = self.watches[hid]
                batch = [e for e in w.pending if e.kv.mod_revision == rev]
                w.pending = w.pending[len(batch):]
                w.handle.callback(batch)
        finally:
            self._delivering = False

    # -- watch -----------------------------------------------------------------------------
    def watch(self, key: str, range_end: str | None, start_revision: int,
              callback: Callable[[list[Event]], None]) -> WatchHandle:
        """etcd ``Watch`` from ``start_revision`` (0: from the next change); past events are
        replayed (by etcd) before this returns, grouped by revision."""
        store = self.store
        handle = WatchHandle(self._next_watch, key, range_end, callback, on_cancel=self.cancel)
        self._next_watch += 1
        create = {**range_body(key, range_end), "prev_kv": True}
        if start_revision:
            create["start_revision"] = start_revision
        stream = Stream(store.host, store.port, create)
        created = stream.next()
        if created is None:
            stream.close()
            raise UnavailableError()
        head = int(created["result"]["header"]["revision"])
        store.revision = max(store.revision, head)
        base = (start_revision - 1) if start_revision else head
        w = GatewayWatch(handle, stream, synced=base, received=base)
        self.watches[handle.id] = w
        if start_revision:
            self._read_oracle_until(head)
            self._fill(w, head)
            for batch in by_revision(w.pending):
                callback(batch)
            w.pending = []
        w.synced = max(w.synced, head)
        return handle

    def cancel(self, handle_id: int) -> None:
        """Forget one watch and hang up its stream (its handle's ``cancel()`` calls this)."""
        w = self.watches.pop(handle_id, None)
        if w is not None and w.stream is not None:
            w.stream.close()

    def close(self) -> None:
        """Close every stream, the oracle's included."""
        for w in list(self.watches.values()):
            w.handle.cancel()
        if self._oracle is not None:
            self._oracle.close()
            self._oracle = None
