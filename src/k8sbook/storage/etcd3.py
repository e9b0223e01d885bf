"""kube-apiserver's storage layer: API objects in, etcd keys and revisions out.

Mirrors ``k8s.io/apiserver/pkg/storage/etcd3`` (``store.go``): objects are serialised and put
under their key; ``metadata.resourceVersion`` is never stored but filled in on every read from
the key's ``mod_revision``; creates are a transaction that succeeds only if the key does not
exist (``create_revision == 0``); updates are a compare-and-swap on ``mod_revision``
(``GuaranteedUpdate``); a list reads a key prefix at one revision. Also mirrors the apiserver's
compactor (``compact.go``), which every five minutes compacts etcd to the revision it saw five
minutes earlier, coordinating through the ``compact_rev_key`` key.

Every call is dialled through the network to the etcd member's client address
(``--etcd-servers=https://127.0.0.1:2379`` with kubeadm), which records it on the path
``kube-apiserver->etcd``; the member answers with its own handler (:func:`serve`). Like
clientv3, the storage layer learns etcd's current revision from the header of every response
and every watch event, and never looks at the store itself. The events of an open etcd watch
flow back on its gRPC stream without a trace message each (the ``Watch`` call that opens it is
traced).

etcd errors become API ``Status`` errors as ``storage/etcd3/errors.go`` and
``storage/errors.go`` interpret them: a compacted revision is 410 Expired; any other etcd
failure is not an API error, so ``ErrorToAPIStatus`` turns it into a 500 with no reason and
etcd's own message (``etcdserver: request timed out``). A member the network cannot reach
(down, partitioned) gives the same answer: clientv3 retries until the request's deadline and
reports the timeout.

With several ``--etcd-servers`` (a cluster: :mod:`k8sbook.storage.etcd_cluster`) the client
keeps to one endpoint and moves to the next when a call cannot be made there, or when a read
(safe to repeat) times out there; a write that timed out is not retried (clientv3's retry
interceptor repeats only what is safe). Simplified: clientv3 3.4+ spreads calls round-robin
over the endpoints it is connected to; keeping to one makes the trace readable. Watches run on
a stream to one member and are reopened on the next, from the revision after the last one
received, when that stream breaks.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Sequence
from typing import Any

from k8sbook.client.network import Address, Connection, DialError, Network
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError, resource_expired, unknown_error
from k8sbook.storage import etcd as etcdapi
from k8sbook.storage.etcd_api import (
    CompactedError,
    Compare,
    DeleteRange,
    Etcd,
    EtcdError,
    Put,
    UnavailableError,
)

PATH = "kube-apiserver->etcd"
PROTOCOL = "gRPC (etcd v3, mTLS)"
COMPACT_REV_KEY = "compact_rev_key"
#: ``--etcd-compaction-interval`` default.
COMPACTION_INTERVAL = 300.0
#: where kubeadm's stacked etcd member serves clients (``--listen-client-urls``)
ETCD_ADDRESS = Address.tcp("127.0.0.1", 2379)
#: the CA of etcd's serving certificate and of the client certificates it accepts
#: (kubeadm's ``etcd/ca.crt``: ``--trusted-ca-file`` with ``--client-cert-auth=true``); the
#: apiserver presents ``apiserver-etcd-client``, signed by it (``--etcd-certfile``)
ETCD_CA = "etcd-ca"


def serve(network: Network, store: Etcd, address: Address = ETCD_ADDRESS,
          owner: str = "etcd") -> None:
    """The etcd member's client endpoint: it answers each call with ``store``. Stopping the
    member is :func:`stop`; starting it again is another ``serve``, which also starts a stopped
    embedded store (its leases get their TTL again: see :meth:`MemoryEtcd.start`). Only
    ``network.close(address)`` is a member still running that nobody can reach: its leases
    keep expiring.

    The port speaks mutual TLS as kubeadm configures it (``--client-cert-auth=true``,
    ``--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt``): a client whose certificate the
    etcd CA did not sign fails the handshake (``remote error: tls: unknown certificate
    authority``) before any call reaches the store."""
    if isinstance(store, etcdapi.MemoryEtcd):
        store.start()

    def handle(call: tuple[str, tuple[Any, ...], dict[str, Any]]) -> Any:
        method, args, kwargs = call
        return getattr(store, method)(*args, **kwargs)

    network.listen(address, owner, handle, protocol=PROTOCOL, certificate=ETCD_CA,
                   client_ca=ETCD_CA)


def stop(network: Network, store: Etcd, address: Address = ETCD_ADDRESS) -> None:
    """The etcd member stops: its client port closes and (embedded) the store stops, so no
    lease expires until :func:`serve` starts it again. A real etcd is stopped as a process."""
    network.close(address)
    if isinstance(store, etcdapi.MemoryEtcd):
        store.stop()


#: the encoder ``json.dumps(..., sort_keys=True, separators=(",", ":"))`` makes on every call
_STORED_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def encode(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    stored = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
    return _STORED_JSON.encode(stored)


def decode(kv: etcdapi.KeyValue) -> dict[str, Any]:
    obj = json.loads(kv.value)
    obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
    return obj


class Storage:
    """The apiserver's etcd client: calls dialled through the network to the member."""

    def __init__(self, network: Network, clock: Clock,
                 address: Address | Sequence[Address] = ETCD_ADDRESS,
                 client: str = "kube-apiserver", certificate: str | None = ETCD_CA) -> None:
        self.network = network
        #: ``--etcd-servers``; with several, the client balancer keeps to one endpoint until a
        #: call to it cannot be made (or a read times out there), then moves to the next
        self.endpoints = [address] if isinstance(address, Address) else list(address)
        self.address = self.endpoints[0]
        self.client = client
        #: the issuer of the client certificate it presents (``--etcd-certfile``, kubeadm's
        #: ``apiserver-etcd-client`` from the etcd CA)
        self.certificate = certificate
        self.clock = clock
        #: etcd's revision as the last response header (or watch event) told it
        self.revision = 0
        #: the revision this client last compacted to
        self.compacted = 0
        self._compact_version = 0
        self._compact_candidate = 0
        self.closed = False
        self._watches: list[etcdapi.WatchHandle] = []

    def _call(self, verb: str, key: str, method: str, args: tuple[Any, ...],
              result: Callable[[Any], str], **kwargs: Any) -> Any:
        def failed(err: Exception) -> str:
            if isinstance(err, CompactedError):
                return "compacted"
            return err.cause if isinstance(err, UnavailableError) else str(err)

        for attempt in range(len(self.endpoints)):
            try:
                out = self.network.dial(self.client, self.address, (method, args, kwargs),
                                        protocol=PROTOCOL, verb=verb, resource=key,
                                        result=result, error=failed,
                                        client_certificate=self.certificate)
                break
            except CompactedError as err:  # storage/errors.go and interpretWatchError
                what = "watch" if method == "watch" else "list"
                raise resource_expired(f"The resourceVersion for the provided {what} is too "
                                       "old.") from err
            except (DialError, EtcdError) as err:
                # clientv3 retries on another endpoint when the call never reached a member,
                # and a read (safe to repeat) that timed out
                retry = isinstance(err, DialError) or (
                    isinstance(err, UnavailableError) and method == "range")
                if not retry or attempt == len(self.endpoints) - 1:
                    text = str(UnavailableError()) if isinstance(err, DialError) else str(err)
                    raise unknown_error(text) from err
                self._next_endpoint()
        rev = getattr(out, "revision", 0)
        if isinstance(rev, int) and rev > self.revision:
            self.revision = rev
        return out

    def _next_endpoint(self) -> None:
        i = self.endpoints.index(self.address)
        self.address = self.endpoints[(i + 1) % len(self.endpoints)]

    # -- reads -----------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        resp = self._call("Range", key, "range", (key,),
                          lambda r: f"{r.count} kv @rev {r.revision}")
        return decode(resp.kvs[0]) if resp.kvs else None

    def list(self, prefix: str, revision: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Every object under ``prefix`` at ``revision`` (0: latest) and the list's revision."""
        resp = self._call("Range", prefix, "range", (prefix, etcdapi.prefix_end(prefix)),
                          lambda r: f"{r.count} kvs @rev {revision or r.revision}",
                          revision=revision)
        return [decode(kv) for kv in resp.kvs], revision or resp.revision

    # -- writes ----------------------------------------------------------------------------
    def create(self, key: str, obj: dict[str, Any], lease_ttl: int = 0) -> dict[str, Any] | None:
        """Write ``obj`` if ``key`` is free; None if it exists already."""
        lease = 0
        if lease_ttl:
            lease = self._call("LeaseGrant", key, "lease_grant", (lease_ttl,),
                               lambda lid: f"ttl {lease_ttl}s")
        value = encode(obj)
        resp = self._call("Txn", key, "txn",
                          ([Compare(key, "MOD", "=", 0)], [Put(key, value, lease)], []),
                          lambda r: f"rev {r.revision}" if r.succeeded else "compare failed")
        if not resp.succeeded:
            return None
        out = json.loads(value)
        out["metadata"]["resourceVersion"] = str(resp.revision)
        return out

    def update(self, key: str, obj: dict[str, Any], expected_mod_revision: int,
               lease_ttl: int = 0) -> dict[str, Any] | None:
        """Compare-and-swap: write only if the key is still at ``expected_mod_revision``
        (with a new lease of ``lease_ttl`` seconds, if given: an update with a TTL)."""
        value = encode(obj)
        lease = 0
        if lease_ttl:
            lease = self._call("LeaseGrant", key, "lease_grant", (lease_ttl,),
                               lambda lid: f"ttl {lease_ttl}s")
        resp = self._call("Txn", key, "txn",
                          ([Compare(key, "MOD", "=", expected_mod_revision)],
                           [Put(key, value, lease)], []),
                          lambda r: f"rev {r.revision}" if r.succeeded else "compare failed")
        if not resp.succeeded:
            return None
        out = json.loads(value)
        out["metadata"]["resourceVersion"] = str(resp.revision)
        return out

    def delete(self, key: str, expected_mod_revision: int) -> int | None:
        """Delete if unchanged; returns the deletion's revision, None if it changed."""
        resp = self._call("Txn", key, "txn",
                          ([Compare(key, "MOD", "=", expected_mod_revision)], [DeleteRange(key)],
                           []),
                          lambda r: f"rev {r.revision}" if r.succeeded else "compare failed")
        return resp.revision if resp.succeeded else None

    # -- watch -----------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int,
              callback: Callable[[builtins.list[etcdapi.Event]], None]) -> etcdapi.WatchHandle:
        def on_events(events: builtins.list[etcdapi.Event]) -> None:
            for ev in events:
                self.revision = max(self.revision, ev.kv.mod_revision)
            callback(events)

        if len(self.endpoints) == 1:
            handle: etcdapi.WatchHandle = self._call(
                "Watch", prefix, "watch",
                (prefix, etcdapi.prefix_end(prefix), start_revision, on_events),
                lambda h: f"from rev {start_revision}")
        else:
            handle = self._resumable_watch(prefix, start_revision, on_events)
        self._watches.append(handle)
        return handle

    def _resumable_watch(self, prefix: str, start_revision: int,
                         callback: Callable[[builtins.list[etcdapi.Event]], None]) -> \
            etcdapi.WatchHandle:
        """A watch on one member's stream that, when the stream breaks (the member stopped,
        or ended it for want of a leader), reopens on the next endpoint from the revision after
        the last one received, as clientv3's watcher does."""
        last = [start_revision - 1]
        current: list[tuple[Connection, etcdapi.WatchHandle] | None] = [None]

        def on_events(events: builtins.list[etcdapi.Event]) -> None:
            last[0] = max(last[0], *(ev.kv.mod_revision for ev in events))
            callback(events)

        def cancel(_id: int) -> None:
            if current[0] is not None:
                conn, inner = current[0]
                current[0] = None
                inner.cancel()
                conn.close()

        handle = etcdapi.WatchHandle(0, prefix, etcdapi.prefix_end(prefix), callback,
                                     on_cancel=cancel)

        def describe(reply: Any) -> str:
            return str(reply) if isinstance(reply, EtcdError) else f"from rev {last[0] + 1}"

        def reopen(after: Address | None) -> None:
            if handle.cancelled:
                return
            start = 0 if after is None else self.endpoints.index(after) + 1
            for k in range(len(self.endpoints)):
                address = self.endpoints[(start + k) % len(self.endpoints)]
                try:
                    conn, inner = self.network.open(
                        self.client, address,
                        ("watch", (prefix, etcdapi.prefix_end(prefix), last[0] + 1, on_events),
                         {}),
                        protocol=PROTOCOL, verb="Watch", resource=prefix, result=describe,
                        client_certificate=self.certificate)
                except DialError:
                    continue
                if isinstance(inner, EtcdError):  # refused: etcdserver: no leader
                    conn.close()
                    continue
                conn.on_break = lambda at=address: broken(at)
                current[0] = (conn, inner)
                return
            self.clock.call_later(1.0, lambda: reopen(after), label="etcd watch reopen")

        def broken(at: Address) -> None:
            current[0] = None
            if not handle.cancelled:
                self.clock.call_soon(lambda: reopen(at), label="etcd watch reopen")

        reopen(None)
        return handle

    def close(self) -> None:
        """The apiserver process ended: its watches end and its compactor stops."""
        self.closed = True
        for handle in self._watches:
            handle.cancel()
        self._watches.clear()

    # -- compaction ------------------------------------------------------------------------
    def start_compactor(self, interval: float = COMPACTION_INTERVAL,
                        on_compact: Callable[[int], None] | None = None) -> None:
        """Every ``interval``, compact to the revision seen one interval earlier."""
        def tick() -> None:
            if self.closed:
                return
            try:
                self.compact_once(on_compact)
            except StatusError:
                pass  # the real compactor logs and tries again next interval
            self.clock.call_later(interval, tick, label="apiserver compactor")

        self.clock.call_later(interval, tick, label="apiserver compactor")

    def compact_once(self, on_compact: Callable[[int], None] | None = None) -> int:
        """One round of ``compact.go``: claim the round with a txn, then compact."""
        target = self._compact_candidate
        current = self.revision
        resp = self._call(
            "Txn", COMPACT_REV_KEY, "txn",
            ([Compare(COMPACT_REV_KEY, "VERSION", "=", self._compact_version)],
             [Put(COMPACT_REV_KEY, str(current))], [etcdapi.Range(COMPACT_REV_KEY)]),
            lambda r: "claimed" if r.succeeded else "lost")
        if resp.succeeded:
            self._compact_version += 1
        self._compact_candidate = resp.revision
        if target and resp.succeeded and target > self.compacted:
            self.compact(target, on_compact)
        return target

    def compact(self, revision: int, on_compact: Callable[[int], None] | None = None) -> None:
        self._call("Compact", "", "compact", (revision,), lambda _: f"to rev {revision}")
        self.compacted = max(self.compacted, revision)
        if on_compact:
            on_compact(revision)
