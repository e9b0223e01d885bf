"""kube-apiserver's identity: its ID, the Lease it keeps renewed under that ID, and the
garbage collector that deletes the Leases of kube-apiservers that are gone.

Mirrors ``k8s.io/apiserver/pkg/server/config.go`` (``NewConfig``: the ID is ``apiserver-``
followed by the lower-case, unpadded base32 of the first 16 bytes of the SHA-256 of the
hostname and ``kube-apiserver``, each prefixed with its length as two bytes), the post-start
hooks ``start-kube-apiserver-identity-lease-controller`` and
``start-kube-apiserver-identity-lease-garbage-collector`` of ``pkg/controlplane/apiserver``
(``IdentityLeaseDurationSeconds = 3600``, ``IdentityLeaseRenewIntervalPeriod = 10s``,
``IdentityLeaseGCPeriod = 3600s``; the label ``apiserver.kubernetes.io/identity:
kube-apiserver`` and ``kubernetes.io/hostname``), the lease controller of
``k8s.io/component-helpers/apimachinery/lease`` (create the Lease if missing, else renew
``renewTime``) and ``pkg/controlplane/controller/apiserverleasegc`` (delete a labelled Lease
whose ``renewTime + leaseDurationSeconds`` has passed). The holder identity is the ID, ``_``
and a UUID. See https://kubernetes.io/docs/concepts/architecture/leases/#api-server-identity.

The Lease is written through the apiserver's own handler (its loopback client).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from k8sbook.api.request import Request, Response
from k8sbook.apiserver.authentication import LOOPBACK_USER
from k8sbook.core.clock import Clock, Timer

LEASE_DURATION_SECONDS = 3600
RENEW_INTERVAL = 10.0
GC_PERIOD = 3600.0
IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
HOSTNAME_LABEL = "kubernetes.io/hostname"
NAMESPACE = "kube-system"


def apiserver_id(hostname: str, identity: str = "kube-apiserver") -> str:
    """``apiserver-<hash>`` for a kube-apiserver on ``hostname``."""
    data = b"".join(len(part).to_bytes(2, "big") + part
                    for part in (hostname.encode(), identity.encode()))
    digest = hashlib.sha256(data).digest()[:16]
    return "apiserver-" + base64.b32encode(digest).decode().rstrip("=").lower()


class IdentityLease:
    """The identity Lease controller and the Lease garbage collector of one kube-apiserver."""

    def __init__(self, handle: Callable[[Request], Response], clock: Clock, hostname: str,
                 uid: str) -> None:
        self.handle, self.clock, self.hostname = handle, clock, hostname
        self.name = apiserver_id(hostname)
        self.holder = f"{self.name}_{uid}"
        self._timers: list[Timer] = []
        self.running = False

    def start(self) -> None:
        self.running = True
        self._renew()
        self._every(GC_PERIOD, self.collect, "apiserver lease gc")

    def stop(self) -> None:
        self.running = False
        for t in self._timers:
            t.cancel()

    def _every(self, period: float, fn: Callable[[], object], label: str) -> None:
        def tick() -> None:
            if self.running:
                fn()
                self._timers.append(self.clock.call_later(period, tick, label=label))
        self._timers.append(self.clock.call_later(period, tick, label=label))

    def _call(self, verb: str, name: str = "", body: dict[str, Any] | None = None,
              **params: str) -> Response:
        return self.handle(Request(verb, "leases", "coordination.k8s.io", NAMESPACE, name,
                                   body=body, params=dict(params), user=LOOPBACK_USER))

    def _renew(self) -> None:
        now = self.clock.micro_timestamp()
        current = self._call("get", self.name)
        if current.code == 404:
            self._call("create", body={
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": NAMESPACE,
                             "labels": {IDENTITY_LABEL: "kube-apiserver",
                                        HOSTNAME_LABEL: self.hostname}},
                "spec": {"holderIdentity": self.holder,
                         "leaseDurationSeconds": LEASE_DURATION_SECONDS, "renewTime": now}})
        elif current.ok and current.body is not None:
            lease = current.body
            lease["spec"] = {**lease.get("spec", {}), "holderIdentity": self.holder,
                             "renewTime": now}
            self._call("update", self.name, lease)
        if self.running:  # renewed or not (etcd down ...), try again next interval
            self._timers.append(self.clock.call_later(RENEW_INTERVAL, self._renew,
                                                      label="apiserver identity lease"))

    def collect(self) -> list[str]:
        """Delete the expired identity Leases; their names."""
        listed = self._call("list", labelSelector=f"{IDENTITY_LABEL}=kube-apiserver")
        gone = []
        for lease in (listed.body or {}).get("items", []) if listed.ok else []:
            spec = lease.get("spec", {})
            renewed = spec.get("renewTime")
            if renewed is None or Clock.parse(renewed) + spec.get(
                    "leaseDurationSeconds", 0) < self.clock.now():
                name = lease["metadata"]["name"]
                if self._call("delete", name).ok:
                    gone.append(name)
        return gone
