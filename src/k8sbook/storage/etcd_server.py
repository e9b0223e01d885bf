"""The model's store on a real etcd server: the :class:`~k8sbook.storage.etcd.Etcd` interface over
etcd's v3 API (the wire codec and streams are in :mod:`k8sbook.storage.etcd_gateway`; the
throwaway etcd process to run it against, :class:`EtcdServer`, is in
:mod:`k8sbook.storage.etcd_process` and stays importable from here).

Mirrors what kube-apiserver's etcd client (``go.etcd.io/etcd/client/v3``, wrapped by
``k8s.io/apiserver/pkg/storage/etcd3``) does on the wire: ``Range``, ``Put``, ``DeleteRange``,
``Txn``, ``Compact``, ``Watch`` and the ``Lease`` calls. Everything the interface returns
(revisions, ``create_revision``/``mod_revision``/``version``, the keys a prefix range finds,
whether a compare-and-swap succeeded, the events a watch replays from a past revision, the
errors for compacted and future revisions and unknown leases) comes from etcd itself; this
module only translates.

**Which client.** etcd serves its v3 API over gRPC and, on the same port, through a JSON
gateway (``POST /v3/kv/range`` and so on; keys and values base64-encoded; etcd 3.4 serves it
under ``/v3/``, see https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/). The only Python
gRPC client on PyPI, ``etcd3``, has had no release since 2020 and no longer imports with a
current ``protobuf`` (https://github.com/kragniz/python-etcd3/issues/2709), so this module
talks to the gateway with ``http.client`` from the standard library: no dependency at all.

**Determinism.** The model runs on one thread in virtual time; etcd answers asynchronously.
So that the whole model (apiserver, watch caches, informers, controllers ...) runs unchanged,
watch events are made to arrive exactly as :class:`~k8sbook.storage.etcd.MemoryEtcd` delivers them:
synchronously, right after the write that caused them, revision by revision, watchers in the
order they were opened. To know when a watch stream has delivered everything up to a
revision, the store keeps one extra etcd watch over the whole key space (its *oracle*): after
every call that moved etcd's revision to ``R``, it reads the oracle until revision ``R``, then
reads each client watch until it has received every event the oracle says falls in its range,
then runs the callbacks. Event contents still come from each watch's own stream (with
``prev_kv``), as etcd sent them. Reader threads only move bytes into queues; callbacks run on
the caller's thread. A callback that writes to the store does not get nested deliveries (the
embedded store nests them): its events are delivered after the current round.

**Leases.** etcd counts a lease's TTL in wall-clock time, the model in virtual time (a chapter
runs an hour of virtual time in a second). The store grants the real lease with a TTL of
:data:`REAL_LEASE_TTL` (a week: long enough never to expire on its own while the model runs)
and keeps the lease's virtual expiry on the model's clock; when virtual time reaches it, the
store revokes the lease in etcd, and etcd deletes the attached keys in one revision, as it does
on a real expiry. ``lease_keepalive`` renews both. If etcd is down when a lease falls due, the
revocation is retried every virtual second until etcd is back (a restarted etcd also keeps its
leases and grants them a fresh TTL). Lease ids are etcd's, so they differ from the embedded
store's; nothing in the model prints them.

**Faults.** A request that cannot reach etcd (connection refused, reset or timed out) raises
:class:`~k8sbook.storage.etcd.UnavailableError`, so kube-apiserver answers the same 500 Status as on
the embedded store when the network cannot reach the member (the model's faults are injected in
:mod:`k8sbook.client.network`; stopping the process is the real one). Nothing is half-written: every write is one etcd request,
atomic on etcd's side. Watch streams broken by an etcd restart are reopened from the revision
after the last one received, as etcd's Go client does, so the apiserver's watch caches see
every event exactly once (``resumed_streams`` counts the reopenings).

:class:`EtcdServer` starts ``etcd`` (Debian's ``etcd-server`` package ships 3.4) on free
loopback ports with a throwaway data directory: ``with EtcdServer() as server:
Cluster(0, etcd=server.store)``; ``Cluster(0, etcd=connect("http://127.0.0.1:2379"))`` uses an
etcd you run yourself, and ``K8SBOOK_ETCD=http://127.0.0.1:2379`` makes every ``Cluster``
without an explicit ``etcd`` use it. Plain HTTP only (no TLS): keep that etcd on loopback.
"""

from __future__ import annotations

import bisect
import http.client
import json
import os
import urllib.parse
from collections.abc import Callable
from typing import Any

from k8sbook.core.clock import Clock
from k8sbook.storage.etcd import (
    CompactedError,
    Compare,
    DeleteRange,
    Event,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    RangeResponse,
    TxnResponse,
    UnavailableError,
    WatchHandle,
    by_revision,
    in_range,
)
from k8sbook.storage.etcd_gateway import (
    REQUEST_TIMEOUT,
    RESULT,
    TARGET_FIELD,
    GatewayLease,
    GatewayWatch,
    RealWatchHandle,
    Stream,
    b64,
    event_from,
    kv_from,
    raise_for,
    range_body,
    unb64,
)

#: The environment variable naming an etcd endpoint for every ``Cluster`` (empty: embedded).
ENV_ENDPOINT = "K8SBOOK_ETCD"
#: The TTL the real lease is granted with; the model's own TTL runs on the virtual clock.
REAL_LEASE_TTL = 7 * 24 * 3600


class RealEtcd:
    """The :class:`~k8sbook.storage.etcd.Etcd` interface on a real etcd, through its JSON gateway.

    ``revision`` is etcd's revision as of the last answer (the model is etcd's only writer);
    ``compact_revision`` is learnt from etcd when connecting and kept up to date by
    :meth:`compact`.
    """

    def __init__(self, endpoint: str, clock: Clock) -> None:
        url = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        if url.scheme != "http":
            raise ValueError(f"only plain http endpoints are supported, not {endpoint!r}")
        self.endpoint = f"http://{url.hostname}:{url.port or 2379}"
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 2379
        self.clock = clock
        self.revision = 0
        self.compact_revision = 0
        self._conn: http.client.HTTPConnection | None = None
        self._watches: dict[int, GatewayWatch] = {}
        self._next_watch = 1
        self._leases: dict[int, GatewayLease] = {}
        self._delivering = False
        self._needs_sync = False
        # the oracle: every event etcd has, as (revision, key, type), in revision order
        self._log: list[tuple[int, str, str]] = []
        self._log_revs: list[int] = []
        self._log_rev = 0  # the oracle is complete up to here
        self._oracle: Stream | None = None
        #: watch streams reopened after etcd went away (the oracle's included)
        self.resumed_streams = 0
        self._open_oracle()

    # -- plumbing --------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body)
        for attempt in (0, 1):
            fresh = self._conn is None
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port,
                                                        timeout=REQUEST_TIMEOUT)
            try:
                self._conn.request("POST", path, data, {"Content-Type": "application/json"})
                answer = json.loads(self._conn.getresponse().read() or b"{}")
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as err:
                # a kept-alive connection etcd closed (it restarted): the request never got
                # there, so sending it once more on a new connection is safe
                self._conn.close()
                self._conn = None
                if fresh or attempt:
                    raise UnavailableError() from err
            except (OSError, http.client.HTTPException, ValueError) as err:
                self._conn.close()
                self._conn = None
                raise UnavailableError() from err
        if "error" in answer or ("code" in answer and "header" not in answer):
            raise_for(answer, self.compact_revision)
        return answer

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One unary call; afterwards, deliver every watch event up to etcd's revision."""
        if self._needs_sync:
            self._sync(self.revision)
        answer = self._post(path, body)
        rev = int(answer.get("header", {}).get("revision", 0))
        self.revision = max(self.revision, rev)
        if rev and (rev > self._log_rev or self._needs_sync):
            self._sync(rev)
        return answer

    # -- the oracle ------------------------------------------------------------------------
    def _open_oracle(self) -> None:
        """Watch the whole key space, from the oldest revision etcd still has (first time)
        or from the revision after the last one seen (after etcd came back)."""
        first = self._log_rev == 0
        if first:
            self._learn_compact_revision()
        start = max(self._log_rev + 1, self.compact_revision, 1)
        stream = Stream(self.host, self.port, {"key": b64("\0"), "range_end": b64("\0"),
                                                "start_revision": start})
        created = stream.next()
        if created is None or not created.get("result", {}).get("created"):
            stream.close()
            raise UnavailableError()
        self._oracle = stream
        self.resumed_streams += 0 if first else 1
        head = int(created["result"]["header"]["revision"])
        self.revision = max(self.revision, head)
        if first:
            self._read_oracle_until(head, first_connect=True)

    def _learn_compact_revision(self) -> None:
        """etcd does not report its compaction point, but a watch from before it is cancelled
        with ``compact_revision`` set; ask only if a read at revision 1 says it is compacted."""
        try:
            self._post("/v3/kv/range", {"key": b64("\0"), "revision": 1, "count_only": True})
            return
        except CompactedError:
            pass
        probe = Stream(self.host, self.port, {"key": b64("\0"), "start_revision": 1})
        try:
            while (msg := probe.next()) is not None:
                rev = msg.get("result", {}).get("compact_revision")
                if rev:
                    self.compact_revision = int(rev)
                    return
        finally:
            probe.close()

    def _read_oracle_until(self, revision: int, first_connect: bool = False) -> None:
        if first_connect and revision <= max(self.compact_revision, 1):
            # nothing after the compaction point: the oracle owes us only the PUTs etcd kept
            # at that revision; ask etcd how many there are
            want = 0
            if self.compact_revision:
                kept = self._post("/v3/kv/range", {
                    "key": b64("\0"), "range_end": b64("\0"), "revision": revision,
                    "min_mod_revision": revision, "max_mod_revision": revision,
                    "count_only": True})
                want = int(kept.get("count", 0))
            while sum(1 for r, _, _ in self._log if r == revision) < want:
                self._take_oracle()
            self._log_rev = revision
            return
        while self._log_rev < revision:
            self._take_oracle()

    def _take_oracle(self) -> None:
        assert self._oracle is not None
        msg = self._oracle.next()
        if msg is None:  # etcd went away: reopen from where we are
            self._oracle.close()
            self._oracle = None
            self._open_oracle()
            return
        res = msg.get("result", {})
        for d in res.get("events", []):
            rev = int(d["kv"]["mod_revision"])
            self._log.append((rev, unb64(d["kv"]["key"]), d.get("type", "PUT")))
            self._log_revs.append(rev)
            self._log_rev = max(self._log_rev, rev)

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
        stream = Stream(self.host, self.port, {**range_body(h.key, h.range_end),
                                                "start_revision": start, "prev_kv": True})
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

    def _sync(self, revision: int) -> None:
        """Deliver, in revision order, every event up to ``revision`` to every watch."""
        try:
            self._read_oracle_until(revision)
            for w in list(self._watches.values()):
                if not w.handle.cancelled:
                    self._fill(w, revision)
        except UnavailableError:
            self._needs_sync = True  # etcd went away meanwhile: finish on the next call
            return
        self._needs_sync = False
        if self._delivering:
            return  # a callback wrote: the round in progress delivers the new events too
        self._delivering = True
        try:
            while True:
                ready = [(w.pending[0].kv.mod_revision, hid)
                         for hid, w in self._watches.items()
                         if w.pending and not w.handle.cancelled]
                if not ready:
                    break
                rev, hid = min(ready)
                w = self._watches[hid]
                batch = [e for e in w.pending if e.kv.mod_revision == rev]
                w.pending = w.pending[len(batch):]
                w.handle.callback(batch)
        finally:
            self._delivering = False

    # -- the Etcd interface: reads ---------------------------------------------------------
    def _range_response(self, d: dict[str, Any], revision: int) -> RangeResponse:
        return RangeResponse([kv_from(kv) for kv in d.get("kvs", [])], int(d.get("count", 0)),
                             revision, bool(d.get("more", False)))

    def range(self, key: str, range_end: str | None = None, *, revision: int = 0,
              limit: int = 0) -> RangeResponse:
        """etcd ``Range``: one key, or ``[key, range_end)``, at ``revision`` (0 = latest)."""
        body: dict[str, Any] = range_body(key, range_end)
        if revision:
            body["revision"] = revision
        if limit:
            body["limit"] = limit
        answer = self._call("/v3/kv/range", body)
        return self._range_response(answer, int(answer["header"]["revision"]))

    def get(self, key: str) -> KeyValue | None:
        kvs = self.range(key).kvs
        return kvs[0] if kvs else None

    # -- writes ----------------------------------------------------------------------------
    def put(self, key: str, value: str, lease: int = 0) -> int:
        """etcd ``Put``; returns the new revision."""
        body: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = lease
        return int(self._call("/v3/kv/put", body)["header"]["revision"])

    def delete_range(self, key: str, range_end: str | None = None) -> tuple[int, int]:
        """etcd ``DeleteRange``; returns ``(revision, deleted)``."""
        answer = self._call("/v3/kv/deleterange", range_body(key, range_end))
        return int(answer["header"]["revision"]), int(answer.get("deleted", 0))

    @staticmethod
    def _op(op: Op) -> dict[str, Any]:
        if isinstance(op, Put):
            body: dict[str, Any] = {"key": b64(op.key), "value": b64(op.value)}
            if op.lease:
                body["lease"] = op.lease
            return {"request_put": body}
        if isinstance(op, DeleteRange):
            return {"request_delete_range": range_body(op.key, op.range_end)}
        return {"request_range": range_body(op.key, op.range_end)}

    @staticmethod
    def _compare(c: Compare) -> dict[str, Any]:
        value = b64(c.value) if c.target == "VALUE" else int(c.value)
        return {"key": b64(c.key), "target": c.target, "result": RESULT[c.result],
                TARGET_FIELD[c.target]: value}

    def txn(self, compare: list[Compare], success: list[Op], failure: list[Op]) -> TxnResponse:
        """etcd ``Txn``: if every compare holds apply ``success``, else ``failure``."""
        answer = self._call("/v3/kv/txn", {"compare": [self._compare(c) for c in compare],
                                           "success": [self._op(o) for o in success],
                                           "failure": [self._op(o) for o in failure]})
        rev = int(answer["header"]["revision"])
        responses: list[Any] = []
        for r in answer.get("responses", []):
            if "response_put" in r:
                responses.append(int(r["response_put"]["header"]["revision"]))
            elif "response_delete_range" in r:
                responses.append(int(r["response_delete_range"].get("deleted", 0)))
            else:
                d = r.get("response_range", {})
                responses.append(self._range_response(d, int(d["header"]["revision"])))
        return TxnResponse(bool(answer.get("succeeded", False)), rev, responses)

    # -- watch -----------------------------------------------------------------------------
    def watch(self, key: str, range_end: str | None, start_revision: int,
              callback: Callable[[list[Event]], None]) -> WatchHandle:
        """etcd ``Watch`` from ``start_revision`` (0: from the next change). Past events are
        replayed (by etcd) before this returns, grouped by revision."""
        if self._needs_sync:
            self._sync(self.revision)
        if 0 < start_revision <= self.revision:
            # ask etcd whether that revision is still there (it answers "compacted" for a
            # watch too, but asynchronously, after the watch was created)
            body = {**range_body(key, range_end), "revision": start_revision,
                    "count_only": True}
            self._post("/v3/kv/range", body)
        handle = RealWatchHandle(self._next_watch, key, range_end, callback, _store=self)
        self._next_watch += 1
        create = {**range_body(key, range_end), "prev_kv": True}
        if start_revision:
            create["start_revision"] = start_revision
        stream = Stream(self.host, self.port, create)
        created = stream.next()
        if created is None:
            stream.close()
            raise UnavailableError()
        head = int(created["result"]["header"]["revision"])
        self.revision = max(self.revision, head)
        base = (start_revision - 1) if start_revision else head
        w = GatewayWatch(handle, stream, synced=base, received=base)
        self._watches[handle.id] = w
        if start_revision:
            self._read_oracle_until(head)
            self._fill(w, head)
            for batch in by_revision(w.pending):
                callback(batch)
            w.pending = []
        w.synced = max(w.synced, head)
        return handle

    def _cancel(self, handle_id: int) -> None:
        w = self._watches.pop(handle_id, None)
        if w is not None and w.stream is not None:
            w.stream.close()

    # -- compaction ------------------------------------------------------------------------
    def compact(self, revision: int) -> None:
        """etcd ``Compact`` (``physical``: return once the old revisions are really gone)."""
        self._call("/v3/kv/compaction", {"revision": revision, "physical": True})
        self.compact_revision = revision
        # the oracle forgets what etcd forgot: everything before, and tombstones at, revision
        keep = [(r, k, t) for r, k, t in self._log
                if r > revision or (r == revision and t != "DELETE")]
        self._log = keep
        self._log_revs = [r for r, _, _ in keep]

    # -- leases ----------------------------------------------------------------------------
    def lease_grant(self, ttl: int) -> int:
        """etcd ``LeaseGrant``; the model's ``ttl`` runs on the virtual clock."""
        answer = self._call("/v3/lease/grant", {"TTL": REAL_LEASE_TTL})
        lease = GatewayLease(int(answer["ID"]), ttl, self.clock.now() + ttl)
        self._leases[lease.id] = lease
        self._arm(lease)
        return lease.id

    def _arm(self, lease: GatewayLease) -> None:
        if lease.timer:
            lease.timer.cancel()
        lease.timer = self.clock.call_at(lease.expires_at, lambda: self._expire(lease.id),
                                         label=f"etcd lease {lease.id:x} expiry")

    def _expire(self, lease_id: int) -> None:
        if lease_id not in self._leases:
            return
        try:
            self.lease_revoke(lease_id)
        except UnavailableError:
            lease = self._leases[lease_id]
            lease.expires_at = self.clock.now() + 1
            self._arm(lease)
        except LeaseNotFoundError:
            pass

    def lease_revoke(self, lease_id: int) -> None:
        """etcd ``LeaseRevoke``: etcd deletes the lease's keys in one revision."""
        self._call("/v3/lease/revoke", {"ID": lease_id})
        lease = self._leases.pop(lease_id, None)
        if lease is not None and lease.timer:
            lease.timer.cancel()

    def lease_keepalive(self, lease_id: int) -> int:
        """etcd ``LeaseKeepAlive`` (one round); renews the virtual TTL too."""
        answer = self._post("/v3/lease/keepalive", {"ID": lease_id})
        if int(answer.get("result", {}).get("TTL", 0)) <= 0:
            raise LeaseNotFoundError()  # etcd answers TTL 0; clientv3 makes it this error
        lease = self._leases.get(lease_id)
        if lease is None:  # granted by someone else: its TTL is etcd's
            return int(answer["result"]["TTL"])
        lease.expires_at = self.clock.now() + lease.ttl
        self._arm(lease)
        return lease.ttl

    def lease_time_to_live(self, lease_id: int) -> tuple[int, list[str]]:
        """Remaining whole (virtual) seconds and the attached keys, as etcd lists them."""
        answer = self._post("/v3/lease/timetolive", {"ID": lease_id, "keys": True})
        if int(answer.get("TTL", -1)) < 0:
            return -1, []
        keys = sorted(unb64(k) for k in answer.get("keys", []))
        lease = self._leases.get(lease_id)
        remaining = int(lease.expires_at - self.clock.now()) if lease else int(answer["TTL"])
        return remaining, keys

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close every stream and connection (etcd keeps its data)."""
        for w in list(self._watches.values()):
            w.handle.cancel()
        if self._oracle is not None:
            self._oracle.close()
            self._oracle = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        for lease in self._leases.values():
            if lease.timer:
                lease.timer.cancel()


def connect(endpoint: str) -> Callable[[Clock], RealEtcd]:
    """A store factory for ``Cluster(seed, etcd=connect("http://127.0.0.1:2379"))``."""
    return lambda clock: RealEtcd(endpoint, clock)


def store_from_env(clock: Clock) -> RealEtcd | None:
    """The store ``$K8SBOOK_ETCD`` names, or None (then the model embeds its own)."""
    endpoint = os.environ.get(ENV_ENDPOINT, "").strip()
    return RealEtcd(endpoint, clock) if endpoint else None


def __getattr__(name: str) -> Any:
    """``EtcdServer`` and ``etcd_binary`` live in :mod:`k8sbook.storage.etcd_process` (which
    imports this module); they stay importable from here."""
    if name in ("EtcdServer", "etcd_binary"):
        from k8sbook.storage import etcd_process
        return getattr(etcd_process, name)
    raise AttributeError(name)
