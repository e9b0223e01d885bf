"""The model's store on a real etcd server: :class:`RealEtcd`, the
:class:`~k8sbook.storage.etcd_api.Etcd` interface over etcd's v3 API.

Mirrors what kube-apiserver's etcd client (``go.etcd.io/etcd/client/v3``, wrapped by
``k8s.io/apiserver/pkg/storage/etcd3``) does on the wire: ``Range``, ``Put``, ``DeleteRange``,
``Txn``, ``Compact``, ``Watch`` and the ``Lease`` calls. The unary calls and the leases are
here; the wire codec and streams are in :mod:`k8sbook.storage.etcd_gateway`, the watches and
their deterministic delivery in :mod:`k8sbook.storage.etcd_watchstreams`. Why the JSON gateway,
how delivery stays deterministic, how leases run on virtual time and what a fault looks like:
see :mod:`k8sbook.storage.etcd_server`, where every name of this module stays importable.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.parse
from collections.abc import Callable
from typing import Any

from k8sbook.core.clock import Clock
from k8sbook.storage.etcd_api import (
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
)
from k8sbook.storage.etcd_gateway import (
    REQUEST_TIMEOUT,
    RESULT,
    TARGET_FIELD,
    GatewayLease,
    b64,
    kv_from,
    raise_for,
    range_body,
    unb64,
)
from k8sbook.storage.etcd_watchstreams import WatchStreams

#: The environment variable naming an etcd endpoint for every ``Cluster`` (empty: embedded).
ENV_ENDPOINT = "K8SBOOK_ETCD"
#: The TTL the real lease is granted with; the model's own TTL runs on the virtual clock.
REAL_LEASE_TTL = 7 * 24 * 3600


class RealEtcd:
    """The :class:`~k8sbook.storage.etcd_api.Etcd` interface on a real etcd, through its JSON gateway.

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
        self._leases: dict[int, GatewayLease] = {}
        #: the Raft term of the last answer; a new term is a new leader (a restart, here)
        self.raft_term = 0
        #: the oracle and the watch streams (:mod:`k8sbook.storage.etcd_watchstreams`)
        self.streams = WatchStreams(self)
        self.streams.open_oracle()

    # -- plumbing --------------------------------------------------------------------------
    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request to etcd's gateway, no watch delivery (:meth:`call` delivers)."""
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
        term = int(answer.get("header", {}).get("raft_term", 0))
        if term > self.raft_term:
            if self.raft_term:
                self._promote()
            self.raft_term = term
        return answer

    def _promote(self) -> None:
        """A new leader (the member restarted): etcd's ``lessor.Promote`` gives every lease its
        TTL again; the real leases (a week long) got theirs, the virtual expiries get theirs."""
        for lease in self._leases.values():
            lease.expires_at = self.clock.now() + lease.ttl
            self._arm(lease)

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One unary call; afterwards, deliver every watch event up to etcd's revision."""
        streams = self.streams
        if streams.needs_sync:
            streams.sync(self.revision)
        answer = self.post(path, body)
        rev = int(answer.get("header", {}).get("revision", 0))
        self.revision = max(self.revision, rev)
        if rev and (rev > streams.log_rev or streams.needs_sync):
            streams.sync(rev)
        return answer

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
        if self.streams.needs_sync:
            self.streams.sync(self.revision)
        if 0 < start_revision <= self.revision:
            # ask etcd whether that revision is still there (it answers "compacted" for a
            # watch too, but asynchronously, after the watch was created)
            body = {**range_body(key, range_end), "revision": start_revision,
                    "count_only": True}
            self.post("/v3/kv/range", body)
        return self.streams.watch(key, range_end, start_revision, callback)

    @property
    def resumed_streams(self) -> int:
        """Watch streams reopened after etcd went away (the oracle's included)."""
        return self.streams.resumed_streams

    # -- compaction ------------------------------------------------------------------------
    def compact(self, revision: int) -> None:
        """etcd ``Compact`` (``physical``: return once the old revisions are really gone)."""
        self._call("/v3/kv/compaction", {"revision": revision, "physical": True})
        self.compact_revision = revision
        self.streams.compacted(revision)

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
            # first learn whether etcd restarted meanwhile (a new Raft term): then the lease
            # got its TTL again (:meth:`_promote` re-armed it) and is not due yet
            self.post("/v3/lease/timetolive", {"ID": lease_id})
            if self._leases[lease_id].expires_at > self.clock.now():
                return
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
        answer = self.post("/v3/lease/keepalive", {"ID": lease_id})
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
        answer = self.post("/v3/lease/timetolive", {"ID": lease_id, "keys": True})
        if int(answer.get("TTL", -1)) < 0:
            return -1, []
        keys = sorted(unb64(k) for k in answer.get("keys", []))
        lease = self._leases.get(lease_id)
        remaining = int(lease.expires_at - self.clock.now()) if lease else int(answer["TTL"])
        return remaining, keys

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close every stream and connection (etcd keeps its data)."""
        self.streams.close()
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

