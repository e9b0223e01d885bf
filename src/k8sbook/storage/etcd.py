"""An embedded, etcd-like multi-version key-value store.

The API's data types, errors and the :class:`Etcd` protocol are in
:mod:`k8sbook.storage.etcd_api` (and re-exported here); the store on a real etcd is elsewhere
(:mod:`k8sbook.storage.etcd_server`).

Mirrors the behaviour of etcd's v3 API as served by ``go.etcd.io/etcd/server/v3``: the MVCC
store (``mvcc``: one global revision, per-key ``create_revision``/``mod_revision``/``version``,
reads at a past revision, compaction), transactions (``Txn`` with ``Compare`` on VERSION,
CREATE, MOD, VALUE or LEASE), watches from a start revision (``mvcc/watchable_store.go``) and
leases (``lease``: keys attached to a lease are deleted when it expires or is revoked). The
error messages are etcd's. :meth:`MemoryEtcd.stop` and :meth:`MemoryEtcd.start` stop and restart
the member on the same data: while it is down nothing is answered and no lease expires, and on
start every lease gets its whole TTL again, as etcd's lessor does when the member becomes leader
(``server/lease/lessor.go``: ``Promote`` refreshes every lease to ``now + extend +
RemainingTTL()``, the remaining TTL being the granted one unless lease checkpoints were
persisted; ``extend`` is the election timeout, which the model leaves out).

Deliberate simplifications, said out loud: one member (the Raft cluster that replicates it is
:mod:`k8sbook.storage.etcd_cluster`), string values, one
revision per transaction (etcd numbers the operations inside one revision with sub-revisions;
here they keep their order within the revision), and watch callbacks run synchronously right
after the commit that caused them (etcd's watch stream delivers them asynchronously).

Only kube-apiserver is a client of this store in the model, as in a real cluster.

The module is over 400 lines because it is one member's store, as etcd's is: the MVCC history,
transactions, watches (with their index, etcd's ``watcherGroup``) and leases all act on the
same revisions and must change together.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from operator import attrgetter
from typing import Any

from k8sbook.core.clock import Clock, Timer
from k8sbook.storage.etcd_api import (
    CompactedError,
    Compare,
    DeleteRange,
    Etcd,
    EtcdError,
    Event,
    FutureRevisionError,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    Range,
    RangeResponse,
    TxnResponse,
    UnavailableError,
    WatchHandle,
    by_revision,
    in_range,
    prefix_end,
)

__all__ = [
    "CompactedError", "Compare", "DeleteRange", "Etcd", "EtcdError", "Event",
    "FutureRevisionError", "KeyValue", "LeaseNotFoundError", "MemoryEtcd", "Op", "Put", "Range",
    "RangeResponse", "TxnResponse", "UnavailableError", "WatchHandle", "by_revision", "in_range",
    "prefix_end",
]


@dataclass(slots=True)
class _Lease:
    id: int
    ttl: int
    expires_at: float
    keys: set[str] = field(default_factory=set)
    timer: Timer | None = None


class _Tombstone:
    """A key's deletion in its history: the revision that deleted it (etcd keeps such a
    tombstone revision until a compaction passes it)."""

    __slots__ = ("mod_revision",)

    def __init__(self, mod_revision: int) -> None:
        self.mod_revision = mod_revision


#: one entry of a key's history: a version, or the tombstone of a deletion
_Version = KeyValue | _Tombstone
_mod_revision = attrgetter("mod_revision")


class _WatcherGroup:
    """The open watches indexed by what they watch, as etcd's ``watcherGroup``
    (``server/storage/mvcc/watcher_group.go``) keeps them: single-key watches by key
    (``keyWatchers``) and range watches in a structure that answers "which ranges hold this
    key" without trying each (etcd's interval tree, ``ranges adt.IntervalTree``). Here that
    is the ranges' bounds, sorted, cutting the key space into segments that each know the
    watches covering them; a key is found with one binary search. Watches are opened and
    cancelled rarely and written to constantly, so the segments are rebuilt (lazily) when
    the set of watches changes. :meth:`watching` gives exactly the watches ``in_range``
    would pick from all of them, in the order they were opened (a test checks the two
    agree)."""

    __slots__ = ("_bounds", "_by_key", "_ranges", "_segments")

    def __init__(self) -> None:
        self._by_key: dict[str, list[WatchHandle]] = {}
        self._ranges: dict[int, WatchHandle] = {}
        self._bounds: list[str] | None = []  # None: rebuild before the next lookup
        self._segments: list[list[WatchHandle]] = []

    def add(self, handle: WatchHandle) -> None:
        if handle.range_end is None:
            # a new list, so a notification going through the old one is undisturbed
            self._by_key[handle.key] = [*self._by_key.get(handle.key, ()), handle]
        else:
            self._ranges[handle.id] = handle
            self._bounds = None

    def remove(self, handle: WatchHandle) -> None:
        if handle.range_end is None:
            watching = self._by_key.get(handle.key, [])
            if handle in watching:
                # a new list, so a notification going through the old one is undisturbed
                rest = [h for h in watching if h is not handle]
                if rest:
                    self._by_key[handle.key] = rest
                else:
                    del self._by_key[handle.key]
        elif self._ranges.pop(handle.id, None) is not None:
            self._bounds = None

    def _rebuild(self) -> list[str]:
        bounds: set[str] = set()
        for h in self._ranges.values():
            bounds.add(h.key)
            if h.range_end != "\0":  # "\0": every key from ``key`` on, no upper bound
                bounds.add(h.range_end or "")
        self._bounds = sorted(bounds)
        # each segment [bounds[i], bounds[i+1]) lies wholly inside or outside each range
        self._segments = [[h for h in self._ranges.values() if in_range(b, h.key, h.range_end)]
                          for b in self._bounds]
        return self._bounds

    def watching(self, key: str) -> list[WatchHandle]:
        """The watches whose key or range holds ``key``, in the order they were opened."""
        bounds = self._bounds if self._bounds is not None else self._rebuild()
        exact = self._by_key.get(key)
        i = bisect.bisect_right(bounds, key) - 1
        ranged = self._segments[i] if i >= 0 else []
        if not exact:
            return ranged
        if not ranged:
            return exact
        return sorted(exact + ranged, key=attrgetter("id"))


class MemoryEtcd:
    """The embedded store. ``revision`` starts at 1, as in a fresh etcd cluster."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.revision = 1
        self.compact_revision = 0
        # key -> its versions (KeyValue, or a tombstone), ordered by mod_revision
        self._history: dict[str, list[_Version]] = {}
        # the keys that have any history, sorted once a range read needs them in order (a new
        # key is appended: sorting a sorted list with a short unsorted tail is linear)
        self._keys: list[str] = []
        self._keys_sorted = True
        # every change in revision order, as (revision, key) in two lists: the order etcd's
        # backend keeps revisions in, from which a watch replays the past (the versions
        # themselves are in ``_history``)
        self._log_revs: list[int] = []
        self._log_keys: list[str] = []
        self._watchers: dict[int, WatchHandle] = {}
        self._group = _WatcherGroup()
        self._min_rev: dict[int, int] = {}  # watch id -> the first revision it may see
        self._next_watch = 1
        self._leases: dict[int, _Lease] = {}
        self._next_lease = 0x694D71DDACFDA201  # etcd lease ids are 64-bit; any start will do
        self.running = True
        #: the lessor is primary (expires leases) only on the Raft leader; ``on_expire`` set,
        #: an expiry is proposed (``LeaseRevoke`` through Raft) instead of applied here
        self.lessor_primary = True
        self.on_expire: Callable[[int], None] | None = None

    # -- the member's process --------------------------------------------------------------
    def stop(self) -> None:
        """The member stops (its data stays): every call fails, no lease expires."""
        self.running = False
        for lease in self._leases.values():
            if lease.timer:
                lease.timer.cancel()
                lease.timer = None

    def start(self) -> None:
        """The member starts again on its data and becomes leader: ``lessor.Promote`` gives
        every lease its TTL again, so one that fell due while it was down expires one TTL
        from now (not at once, and not never). Starting a running member does nothing."""
        if self.running:
            return
        self.running = True
        for lease in self._leases.values():
            lease.expires_at = self.clock.now() + lease.ttl
            self._arm(lease)

    def _up(self) -> None:
        if not self.running:
            raise UnavailableError()

    # -- reads -----------------------------------------------------------------------------

    def _value_at(self, key: str, revision: int) -> KeyValue | None:
        versions = self._history.get(key)
        if not versions:
            return None
        version = versions[-1]
        if version.mod_revision > revision:  # a read in the past: find the version then
            idx = bisect.bisect_right(versions, revision, key=_mod_revision) - 1
            if idx < 0:
                return None
            version = versions[idx]
        return version if type(version) is KeyValue else None

    def _current(self, key: str) -> KeyValue | None:
        versions = self._history.get(key)
        if not versions:
            return None
        version = versions[-1]
        return version if type(version) is KeyValue else None

    def range(self, key: str, range_end: str | None = None, *, revision: int = 0,
              limit: int = 0) -> RangeResponse:
        """Read one key, or every key in ``[key, range_end)``, at ``revision`` (0 = latest)."""
        self._up()
        if revision > self.revision:
            raise FutureRevisionError()
        if 0 < revision < self.compact_revision:
            raise CompactedError(self.compact_revision)
        kvs = self._kvs_at(key, range_end, revision or self.revision)
        count = len(kvs)
        more = bool(limit) and count > limit
        if limit:
            kvs = kvs[:limit]
        return RangeResponse(kvs, count, self.revision, more)

    def _kvs_at(self, key: str, range_end: str | None, at: int) -> list[KeyValue]:
        if range_end is None:
            candidates = [key] if key in self._history else []
        else:
            keys = self._sorted_keys()
            lo = bisect.bisect_left(keys, key)
            # every key in [key, range_end) lies between the two bounds ("\0": no end)
            hi = len(keys) if range_end == "\0" else max(lo, bisect.bisect_left(keys,
                                                                                range_end))
            candidates = keys[lo:hi]
        return [kv for k in candidates if (kv := self._value_at(k, at)) is not None]

    def _sorted_keys(self) -> list[str]:
        if not self._keys_sorted:
            self._keys.sort()
            self._keys_sorted = True
        return self._keys

    def get(self, key: str) -> KeyValue | None:
        kvs = self.range(key).kvs
        return kvs[0] if kvs else None

    # -- writes ----------------------------------------------------------------------------
    def _record(self, key: str, version: _Version, rev: int) -> None:
        versions = self._history.get(key)
        if versions is None:
            self._keys.append(key)
            self._keys_sorted = False
            self._history[key] = [version]
        else:
            versions.append(version)
        self._log_revs.append(rev)
        self._log_keys.append(key)

    def _apply_put(self, op: Put, rev: int, events: list[Event]) -> None:
        if op.lease and op.lease not in self._leases:
            raise LeaseNotFoundError()
        prev = self._current(op.key)
        if prev is not None and prev.lease and prev.lease in self._leases:
            self._leases[prev.lease].keys.discard(op.key)
        kv = KeyValue(op.key, op.value,
                      create_revision=prev.create_revision if prev else rev,
                      mod_revision=rev, version=(prev.version + 1) if prev else 1, lease=op.lease)
        self._record(op.key, kv, rev)
        if op.lease:
            self._leases[op.lease].keys.add(op.key)
        events.append(Event("PUT", kv, prev))

    def _apply_delete(self, op: DeleteRange, rev: int, events: list[Event]) -> int:
        doomed = self._kvs_at(op.key, op.range_end, rev)  # sees this txn's earlier ops
        for prev in doomed:
            self._record(prev.key, _Tombstone(rev), rev)
            if prev.lease in self._leases:
                self._leases[prev.lease].keys.discard(prev.key)
            events.append(Event("DELETE", KeyValue(prev.key, "", 0, rev, 0), prev))
        return len(doomed)

    def _commit(self, ops: list[Op]) -> tuple[int, list[Any]]:
        """Apply write ops atomically at one new revision (if anything changes)."""
        self._up()
        rev = self.revision + 1
        events: list[Event] = []
        responses: list[Any] = []
        if any(isinstance(op, Put) and op.lease and op.lease not in self._leases for op in ops):
            raise LeaseNotFoundError()  # etcd checks every lease first: nothing half-written
        for op in ops:
            if isinstance(op, Put):
                self._apply_put(op, rev, events)
                responses.append(rev)
            elif isinstance(op, DeleteRange):
                responses.append(self._apply_delete(op, rev, events))
            else:  # as in etcd, a read inside a txn sees the txn's earlier writes
                kvs = self._kvs_at(op.key, op.range_end, rev)
                responses.append(RangeResponse(kvs, len(kvs), rev if events else self.revision))
        if events:
            self.revision = rev
            self._notify(events)
        return self.revision, responses

    def put(self, key: str, value: str, lease: int = 0) -> int:
        """Write a key; returns the new revision."""
        rev, _ = self._commit([Put(key, value, lease)])
        return rev

    def delete_range(self, key: str, range_end: str | None = None) -> tuple[int, int]:
        """Delete one key or a range; returns ``(revision, deleted)``."""
        rev, responses = self._commit([DeleteRange(key, range_end)])
        return rev, responses[0]

    def _compare(self, c: Compare) -> bool:
        kv = self._current(c.key)
        if c.target == "VALUE":
            if kv is None:
                return False
            actual: Any = kv.value
        elif c.target == "LEASE":
            actual = kv.lease if kv else 0
        else:
            attr = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision"}
            actual = getattr(kv, attr[c.target]) if kv else 0
        return {
            "=": actual == c.value,
            "!=": actual != c.value,
            "<": actual < c.value,
            ">": actual > c.value,
        }[c.result]

    def txn(self, compare: list[Compare], success: list[Op], failure: list[Op]) -> TxnResponse:
        """If every compare holds, apply ``success``, else ``failure``: one atomic step."""
        for ops in (success, failure):
            _check_intervals(ops)
        ok = all(self._compare(c) for c in compare)
        rev, responses = self._commit(success if ok else failure)
        return TxnResponse(ok, rev, responses)

    # -- watch -----------------------------------------------------------------------------
    def watch(self, key: str, range_end: str | None, start_revision: int,
              callback: Callable[[list[Event]], None]) -> WatchHandle:
        """Watch a key or range from ``start_revision`` (0: from the next change).

        Past events (revision >= start_revision) are replayed first, grouped by revision.
        A start revision older than the compaction raises :class:`CompactedError`. A start
        revision in the future is allowed, and the watch sees nothing before it: etcd's
        ``watchable_store.go`` puts such a watcher in the synced group with ``minRev`` set to
        it, and ``newWatcherBatch`` skips every event whose ``ModRevision < minRev``.
        """
        self._up()
        if 0 < start_revision < self.compact_revision:
            raise CompactedError(self.compact_revision)
        handle = WatchHandle(self._next_watch, key, range_end, callback,
                             on_cancel=self._forget_watch)
        self._next_watch += 1
        if start_revision:
            first = bisect.bisect_left(self._log_revs, start_revision)
            past = [self._event(r, k) for r, k in zip(self._log_revs[first:],
                                                      self._log_keys[first:], strict=True)
                    if in_range(k, key, range_end)]
            for batch in by_revision(past):
                callback(batch)
        self._watchers[handle.id] = handle
        self._min_rev[handle.id] = start_revision
        self._group.add(handle)
        return handle

    def _event(self, rev: int, key: str) -> Event:
        """The event of ``key`` at ``rev`` as it was sent then, from the key's history: a PUT
        of the version, or a DELETE of the key (``mod_revision`` the deleting revision, no
        value), with the version before it as ``prev_kv`` (none once compacted away)."""
        versions = self._history[key]
        idx = bisect.bisect_left(versions, rev, key=_mod_revision)
        version = versions[idx]
        prev = versions[idx - 1] if idx > 0 else None
        prev_kv = prev if type(prev) is KeyValue else None
        if type(version) is KeyValue:
            return Event("PUT", version, prev_kv)
        assert prev_kv is not None  # a deletion always deletes a version
        return Event("DELETE", KeyValue(key, "", 0, rev, 0), prev_kv)

    def _forget_watch(self, handle_id: int) -> None:
        handle = self._watchers.pop(handle_id, None)
        self._min_rev.pop(handle_id, None)
        if handle is not None:
            self._group.remove(handle)

    def watches(self) -> list[tuple[str, str | None]]:
        """The open watches as (key, range_end), sorted: who is watching what."""
        return sorted((h.key, h.range_end) for h in self._watchers.values())

    def _notify(self, events: list[Event]) -> None:
        """Hand each watch the events of one commit in its key or range, in commit order;
        the watches in the order they were opened (``notify`` with ``watcherSetByKey``: only
        the watches holding the key are looked at)."""
        if len(events) == 1:  # the common case: one write
            event = events[0]
            for handle in self._group.watching(event.kv.key):
                if event.kv.mod_revision >= self._min_rev.get(handle.id, 0) \
                        and not handle.cancelled:
                    handle.callback([event])
            return
        mine: dict[int, list[Event]] = {}
        handles: dict[int, WatchHandle] = {}
        for event in events:
            for handle in self._group.watching(event.kv.key):
                if event.kv.mod_revision >= self._min_rev.get(handle.id, 0):
                    mine.setdefault(handle.id, []).append(event)
                    handles[handle.id] = handle
        for handle_id in sorted(mine):
            if not handles[handle_id].cancelled:
                handles[handle_id].callback(mine[handle_id])

    # -- compaction ------------------------------------------------------------------------
    def compact(self, revision: int) -> None:
        """Forget every version superseded at or before ``revision``."""
        self._up()
        if revision <= self.compact_revision:
            raise CompactedError(self.compact_revision)
        if revision > self.revision:
            raise FutureRevisionError()
        self.compact_revision = revision
        gone = False
        for key in list(self._history):
            versions = self._history[key]
            keep_from = bisect.bisect_right(versions, revision, key=_mod_revision) - 1
            kept = versions[max(keep_from, 0):]
            if kept and type(kept[0]) is _Tombstone and kept[0].mod_revision <= revision:
                kept = kept[1:]  # a tombstone at or before the compaction point: key gone
            if kept:
                self._history[key] = kept
            else:
                del self._history[key]
                gone = True
        if gone:
            self._keys = [k for k in self._keys if k in self._history]
        # etcd keeps each key's newest version at or before ``revision`` (not a tombstone), so
        # a watch from ``revision`` itself still replays the PUTs made at it (without prev_kv:
        # the version before it is gone)
        first = bisect.bisect_left(self._log_revs, revision)
        revs, keys = self._log_revs[first:], self._log_keys[first:]
        at = [i for i, r in enumerate(revs) if r == revision]
        dropped = {i for i in at if self._value_at(keys[i], revision) is None}
        self._log_revs = [r for i, r in enumerate(revs) if i not in dropped]
        self._log_keys = [k for i, k in enumerate(keys) if i not in dropped]

    # -- leases ----------------------------------------------------------------------------
    def lease_grant(self, ttl: int) -> int:
        """Grant a lease of ``ttl`` seconds; keys put with it vanish when it expires."""
        self._up()
        lease_id = self._next_lease
        self._next_lease += 1
        lease = _Lease(lease_id, ttl, self.clock.now() + ttl)
        self._leases[lease_id] = lease
        self._arm(lease)
        return lease_id

    def promote(self, extend: float = 0.0) -> None:
        """``lessor.Promote``: this member became leader; every lease gets ``extend`` + TTL."""
        self.lessor_primary = True
        for lease in self._leases.values():
            lease.expires_at = self.clock.now() + extend + lease.ttl
            self._arm(lease)

    def demote(self) -> None:
        """``lessor.Demote``: no longer leader, so no lease expires here."""
        self.lessor_primary = False
        for lease in self._leases.values():
            if lease.timer:
                lease.timer.cancel()
                lease.timer = None

    def _arm(self, lease: _Lease) -> None:
        if lease.timer:
            lease.timer.cancel()
        if not self.lessor_primary:
            return
        lease.timer = self.clock.call_at(lease.expires_at, partial(self._expire, lease.id),
                                         label=f"etcd lease {lease.id:x} expiry")

    def _expire(self, lease_id: int) -> None:
        if lease_id in self._leases:
            (self.on_expire or self.lease_revoke)(lease_id)

    def lease_revoke(self, lease_id: int) -> None:
        """Revoke a lease, deleting its keys in one revision."""
        self._up()
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            raise LeaseNotFoundError()
        if lease.timer:
            lease.timer.cancel()
        if lease.keys:
            self._commit([DeleteRange(k) for k in sorted(lease.keys)])

    def lease_keepalive(self, lease_id: int) -> int:
        """Renew a lease for another full TTL; returns the TTL."""
        self._up()
        lease = self._leases.get(lease_id)
        if lease is None:
            raise LeaseNotFoundError()
        lease.expires_at = self.clock.now() + lease.ttl
        self._arm(lease)
        return lease.ttl

    def lease_time_to_live(self, lease_id: int) -> tuple[int, list[str]]:
        """Remaining whole seconds and attached keys (etcd's ``LeaseTimeToLive``)."""
        self._up()
        lease = self._leases.get(lease_id)
        if lease is None:
            return -1, []
        return int(lease.expires_at - self.clock.now()), sorted(lease.keys)


def _check_intervals(ops: list[Op]) -> None:
    """etcd's ``checkIntervals``: one branch of a txn may not write a key twice."""
    if len(ops) < 2:  # one op cannot repeat a key (the common case: one write)
        return
    puts = [op.key for op in ops if isinstance(op, Put)]
    deletes = [op for op in ops if isinstance(op, DeleteRange)]
    if len(set(puts)) < len(puts) or any(in_range(k, d.key, d.range_end)
                                         for k in puts for d in deletes):
        raise EtcdError("etcdserver: duplicate key given in txn request")
