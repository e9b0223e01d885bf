"""The model's store on a real etcd server: the :class:`~k8sbook.storage.etcd_api.Etcd` interface over
etcd's v3 API, and a throwaway etcd to run it against. This module is the entry point and holds
the design notes; the code is in :mod:`k8sbook.storage.etcd_client` (:class:`RealEtcd`,
:func:`connect`, :func:`store_from_env`), :mod:`k8sbook.storage.etcd_watchstreams` (the watches
and their delivery), :mod:`k8sbook.storage.etcd_gateway` (the wire codec and streams) and
:mod:`k8sbook.storage.etcd_process` (:class:`EtcdServer`, :func:`etcd_binary`), all
importable from here.

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
on a real expiry. ``lease_keepalive`` renews both. A restarted etcd keeps its leases and gives every
one its TTL again (``lessor.Promote`` when the member becomes leader): the store notices the new
Raft term in the next answer's header and does the same to the virtual expiries. If etcd is
down when a lease falls due, the expiry is retried every virtual second; the first retry that
reaches etcd sees the new term, so the lease expires one TTL after the restart, as on etcd. Lease ids are etcd's, so they differ from the embedded
store's; nothing in the model prints them.

**Faults.** A request that cannot reach etcd (connection refused, reset or timed out) raises
:class:`~k8sbook.storage.etcd_api.UnavailableError`, so kube-apiserver answers the same 500 Status as on
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

from k8sbook.storage.etcd_client import (
    ENV_ENDPOINT,
    REAL_LEASE_TTL,
    RealEtcd,
    connect,
    store_from_env,
)
from k8sbook.storage.etcd_process import EtcdServer, etcd_binary

__all__ = ["ENV_ENDPOINT", "REAL_LEASE_TTL", "EtcdServer", "RealEtcd", "connect", "etcd_binary",
           "store_from_env"]
