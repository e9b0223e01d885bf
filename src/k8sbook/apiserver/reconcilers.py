"""The lease endpoint reconciler: how the ``kubernetes`` Service's endpoints come to list
exactly the kube-apiservers that are alive (``--endpoint-reconciler-type=lease``, the default).

Mirrors ``pkg/controlplane/reconcilers/lease.go`` (``storageLeases``,
``leaseEndpointReconciler``) and ``endpointsadapter.go``, run every
``DefaultEndpointReconcilerInterval`` (10 s) by the apiserver's kubernetes-service controller
(``pkg/controlplane/controller/kubernetesservice``). Every kube-apiserver, each round:

1. refreshes its own key ``/registry/masterleases/<its IP>`` in etcd: an ``Endpoints`` object
   with its address, bumped ``metadata.generation`` and a new lease of
   ``DefaultEndpointReconcilerTTL`` (15 s), written to storage directly, not through the API;
2. lists ``/registry/masterleases/`` (an apiserver that stopped has let its key expire) and,
   if the list is not empty, makes the ``kubernetes`` endpoints list exactly those IPs on
   port 6443 (``https``).

The ``EndpointsAdapter`` (:func:`sync`) writes two objects, in this order: the ``Endpoints``
``default/kubernetes``, one subset with the IPs (sorted) and the port ``https`` 6443/TCP, labelled
``endpointslice.kubernetes.io/skip-mirror: "true"`` so that the EndpointSliceMirroring controller
leaves it alone; then the EndpointSlice ``kubernetes`` made from the same IPs and port (label
``kubernetes.io/service-name: kubernetes``, ``addressType: IPv4``, every endpoint ready). Each
is created when missing and updated only when its addresses, ports or labels differ, so a
steady round writes nothing. A single-apiserver model cluster leaves the reconciler off (as
``--endpoint-reconciler-type=none``) so that earlier chapters' traces stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.api.request import Request, Response
from k8sbook.apiserver.authentication import LOOPBACK_USER
from k8sbook.core.clock import Clock, Timer
from k8sbook.core.status import StatusError
from k8sbook.storage.etcd3 import Storage

INTERVAL = 10.0
TTL = 15
BASE_KEY = "/registry/masterleases/"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class LeaseEndpointReconciler:
    """One kube-apiserver's reconciler, advertising ``ip``:``port``."""

    def __init__(self, storage: Storage, handle: Callable[[Request], Response], clock: Clock,
                 ip: str, port: int = 6443) -> None:
        self.storage, self.handle, self.clock = storage, handle, clock
        self.ip, self.port = ip, port
        self.running = False
        self._timer: Timer | None = None
        #: (time, IPs written) each time this reconciler changed the endpoints
        self.changes: list[tuple[float, list[str]]] = []

    def start(self) -> None:
        self.running = True
        self._tick()

    def stop(self) -> None:
        self.running = False
        if self._timer:
            self._timer.cancel()

    def _tick(self) -> None:
        if not self.running:
            return
        try:
            self.reconcile()
        except StatusError:
            pass  # etcd unavailable: try again next interval
        self._timer = self.clock.call_later(INTERVAL, self._tick,
                                            label="kubernetes service endpoints")

    def update_lease(self) -> None:
        key = BASE_KEY + self.ip
        current = self.storage.get(key)
        generation = (current or {}).get("metadata", {}).get("generation", 0) + 1
        obj = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": self.ip, "generation": generation},
               "subsets": [{"addresses": [{"ip": self.ip}]}]}
        if current is None:
            self.storage.create(key, obj, lease_ttl=TTL)
        else:
            self.storage.update(key, obj, int(current["metadata"]["resourceVersion"]),
                                lease_ttl=TTL)

    def list_leases(self) -> list[str]:
        items, _ = self.storage.list(BASE_KEY)
        return sorted(ip["ip"] for obj in items for sub in obj.get("subsets", [])[:1]
                      for ip in sub.get("addresses", [])[:1])

    def reconcile(self) -> list[str]:
        """One round; the IPs the endpoints list afterwards."""
        self.update_lease()
        ips = self.list_leases()
        if not ips:  # "no API server IP addresses were listed in storage, refusing to erase"
            return ips
        if sync(self.handle, ips, self.port):
            self.changes.append((self.clock.now(), ips))
        return ips


SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"


def _port(port: int) -> dict[str, Any]:
    return {"name": "https", "port": port, "protocol": "TCP"}


def endpoints_object(ips: list[str], port: int = 6443) -> dict[str, Any]:
    """The ``kubernetes`` Endpoints listing ``ips`` (``updateEndpoints``)."""
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {SKIP_MIRROR_LABEL: "true"}},
            "subsets": [{"addresses": [{"ip": ip} for ip in sorted(ips)],
                         "ports": [_port(port)]}]}


def endpoint_slice(ips: list[str], port: int = 6443) -> dict[str, Any]:
    """The ``kubernetes`` EndpointSlice listing ``ips`` (``updateEndpointSlice``)."""
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {SERVICE_NAME_LABEL: "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}
                          for ip in sorted(ips)],
            "ports": [_port(port)]}


def sync(handle: Callable[[Request], Response], ips: list[str], port: int = 6443) -> bool:
    """``EndpointsAdapter.Sync``: make the Endpoints, then the EndpointSlice, list ``ips``
    (each created if missing, updated only if it differs); whether anything was written.
    ``handle`` is the apiserver's own handler, called as its loopback client."""
    wrote = False
    for resource, group, want, fields in (
            ("endpoints", "", endpoints_object(ips, port), ("subsets",)),
            ("endpointslices", "discovery.k8s.io", endpoint_slice(ips, port),
             ("endpoints", "ports", "addressType"))):
        def call(verb: str, name: str = "", body: dict[str, Any] | None = None,
                 resource: str = resource, group: str = group) -> Response:
            return handle(Request(verb, resource, group, "default", name, body=body,
                                  user=LOOPBACK_USER))
        got = call("get", "kubernetes")
        if got.code == 404:
            wrote = call("create", body=want).ok or wrote
        elif got.ok and got.body is not None:
            have = got.body
            labels = (have.get("metadata") or {}).get("labels")
            if labels != want["metadata"]["labels"] or \
                    any(have.get(f) != want[f] for f in fields):
                new = {**have, **{f: want[f] for f in fields},
                       "metadata": {**have["metadata"], "labels": want["metadata"]["labels"]}}
                wrote = call("update", "kubernetes", body=new).ok or wrote
        else:
            break  # not found is the only answer to act on (etcd down: next round)
    return wrote
