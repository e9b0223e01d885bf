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
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
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


@dataclass
class _Lease:
    id: int
    ttl: int
    expires_at: float
    keys: set[str] = field(default_factory=set)
    timer: Timer | None = None


class MemoryEtcd:
    """The embedded store. ``revision`` starts at 1, as in a fresh etcd cluster."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.revision = 1
        self.compact_revision = 0
        # key -> list of versions (KeyValue, or None as a tombstone), ordered by mod_revision
        self._history: dict[str, list[tuple[int, KeyValue | None]]] = {}
        self._keys: list[str] = []  # sorted keys that have any history
        self._log: list[tuple[int, Event]] = []  # every event, in revision order
        self._watchers: dict[int, WatchHandle] = {}
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
        versions = self._history.get(key, [])
        idx = bisect.bisect_right([r for r, _ in versions], revision) - 1
        return versions[idx][1] if idx >= 0 else None

    def _current(self, key: str) -> KeyValue | None:
        versions = self._history.get(key)
        return versions[-1][1] if versions else None

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
            lo = bisect.bisect_left(self._keys, key)
            candidates = [k for k in self._keys[lo:] if in_range(k, key, range_end)]
        return [kv for k in candidates if (kv := self._value_at(k, at)) is not None]

    def get(self, key: str) -> KeyValue | None:
        kvs = self.range(key).kvs
        return kvs[0] if kvs else None

    # -- writes ----------------------------------------------------------------------------
    def _record(self, key: str, kv: KeyValue | None, rev: int) -> None:
        if key not in self._history:
            bisect.insort(self._keys, key)
            self._history[key] = []
        self._history[key].append((rev, kv))

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
            self._record(prev.key, None, rev)
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
            self._log.extend((rev, e) for e in events)
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
            past = [e for r, e in self._log if r >= start_revision
                    and in_range(e.kv.key, key, range_end)]
            for batch in by_revision(past):
                callback(batch)
        self._watchers[handle.id] = handle
        self._min_rev[handle.id] = start_revision
        return handle

    def _forget_watch(self, handle_id: int) -> None:
        self._watchers.pop(handle_id, None)
        self._min_rev.pop(handle_id, None)

    def watches(self) -> list[tuple[str, str | None]]:
        """The open watches as (key, range_end), sorted: who is watching what."""
        return sorted((h.key, h.range_end) for h in self._watchers.values())

    def _notify(self, events: list[Event]) -> None:
        for handle in list(self._watchers.values()):
            since = self._min_rev.get(handle.id, 0)
            mine = [e for e in events if in_range(e.kv.key, handle.key, handle.range_end)
                    and e.kv.mod_revision >= since]
            if mine and not handle.cancelled:
                handle.callback(mine)

    # -- compaction ------------------------------------------------------------------------
    def compact(self, revision: int) -> None:
        """Forget every version superseded at or before ``revision``."""
        self._up()
        if revision <= self.compact_revision:
            raise CompactedError(self.compact_revision)
        if revision > self.revision:
            raise FutureRevisionError()
        self.compact_revision = revision
        for key in list(self._history):
            versions = self._history[key]
            keep_from = bisect.bisect_right([r for r, _ in versions], revision) - 1
            kept = versions[max(keep_from, 0):]
            if kept and kept[0][1] is None and kept[0][0] <= revision:
                kept = kept[1:]  # a tombstone at or before the compaction point: key gone
            if kept:
                self._history[key] = kept
            else:
                del self._history[key]
                self._keys.remove(key)
        # etcd keeps each key's newest version at or before ``revision`` (not a tombstone), so
        # a watch from ``revision`` itself still replays the PUTs made at it (without prev_kv)
        self._log = [(r, e if r > revision else replace(e, prev_kv=None))
                     for r, e in self._log
                     if r > revision or (r == revision and e.type == "PUT")]

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
        lease.timer = self.clock.call_at(lease.expires_at, lambda: self._expire(lease.id),
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
    puts = [op.key for op in ops if isinstance(op, Put)]
    deletes = [op for op in ops if isinstance(op, DeleteRange)]
    if len(set(puts)) < len(puts) or any(in_range(k, d.key, d.range_end)
                                         for k in puts for d in deletes):
        raise EtcdError("etcdserver: duplicate key given in txn request")
