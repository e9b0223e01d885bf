"""``csrcleaner``: old CertificateSigningRequests deleted, so that they do not pile up.

Mirrors ``pkg/controller/certificates/cleaner/cleaner.go`` (v1.35), which kube-controller-manager
starts as ``certificatesigningrequest-cleaner-controller`` (alias ``csrcleaner``) with the
ServiceAccount ``kube-system/certificate-controller``, whose role may ``delete`` CSRs. Every
``pollingInterval`` (1 h; the first pass at start-up, as ``wait.Until`` runs at once) it lists
the CSRs from its informer and deletes each one for which any of these holds, on the
apiserver's timestamps and virtual time:

- **issued, past the deadline**: an ``Approved`` condition whose ``lastUpdateTime`` is more than
  ``approvedExpiration`` (1 h) ago, and a certificate in the status;
- **denied, past the deadline**: a ``Denied`` condition updated more than ``deniedExpiration``
  (1 h) ago;
- **failed, past the deadline**: a ``Failed`` condition updated more than ``deniedExpiration``
  (1 h) ago;
- **pending, past the deadline**: no condition at all and a ``creationTimestamp`` more than
  ``pendingExpiration`` (24 h) ago;
- **issued and expired**: ``Approved``, with a certificate whose ``notAfter`` has passed.

A time that is not set never counts (``isOlderThan`` requires a non-zero time). A CSR already
gone (404) is no error.
"""

from __future__ import annotations

from typing import Any

from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.controlplane.controllers import Obj
from k8sbook.core.clock import EPOCH, Clock
from k8sbook.core.status import StatusError

POLLING_INTERVAL = 3600.0
APPROVED_EXPIRATION = 3600.0
DENIED_EXPIRATION = 3600.0
PENDING_EXPIRATION = 24 * 3600.0


def _older_than(timestamp: str, seconds: float, now: float) -> bool:
    """``isOlderThan``: a non-zero time more than ``seconds`` before ``now``."""
    return bool(timestamp) and now - Clock.parse(timestamp) > seconds


def _conditions(csr: Obj) -> list[dict[str, Any]]:
    return list((csr.get("status") or {}).get("conditions") or [])


def _issued(csr: Obj) -> bool:
    return bool((csr.get("status") or {}).get("certificate"))


def _expired(csr: Obj, now: float) -> bool:
    """``isExpired``: the certificate's ``notAfter`` has passed; unreadable is not expired."""
    from cryptography import x509  # here: only an issued CSR needs it

    try:
        cert = x509.load_pem_x509_certificate(csr["status"]["certificate"].encode())
    except (KeyError, ValueError):
        return False
    return now > (cert.not_valid_after_utc - EPOCH).total_seconds()


def why_clean(csr: Obj, now: float) -> str:
    """Which of the cleaner's rules makes ``csr`` due for deletion at ``now``, or ``""``:
    the words of the cleaner's log lines ("Cleaning CSR as it is ..."), with their
    duration key."""
    conditions = _conditions(csr)
    for c in conditions:
        if c.get("type") == "Approved" and _issued(csr) and \
                _older_than(c.get("lastUpdateTime", ""), APPROVED_EXPIRATION, now):
            return ("more than approvedExpiration duration old and approved (approvedExpiration=1h0m0s)")
    for c in conditions:
        if c.get("type") == "Denied" and \
                _older_than(c.get("lastUpdateTime", ""), DENIED_EXPIRATION, now):
            return ("more than deniedExpiration duration old and denied (deniedExpiration=1h0m0s)")
    for c in conditions:
        if c.get("type") == "Failed" and \
                _older_than(c.get("lastUpdateTime", ""), DENIED_EXPIRATION, now):
            return ("more than deniedExpiration duration old and failed (deniedExpiration=1h0m0s)")
    if not conditions and _older_than(csr.get("metadata", {}).get("creationTimestamp", ""),
                                      PENDING_EXPIRATION, now):
        return ("more than pendingExpiration duration old and unhandled (pendingExpiration=24h0m0s)")
    for c in conditions:
        if c.get("type") == "Approved" and _issued(csr) and _expired(csr, now):
            return "the associated certificate is expired"
    return ""


class CSRCleanerController:
    def __init__(self, client: Client, csr_informer: SharedIndexInformer) -> None:
        self.client = client
        self.informer = csr_informer
        #: (virtual time, CSR name, why) for each CSR this controller deleted
        self.cleaned: list[tuple[float, str, str]] = []
        self._timer: Any = None
        self._stopped = False

    def run(self) -> None:
        self._stopped = False
        self._timer = self.client.clock.call_soon(self.worker)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    def worker(self) -> None:
        """One pass over every CSR the informer holds, then the next in an hour."""
        if self._stopped:
            return
        now = self.client.clock.now()
        for csr in sorted(self.informer.indexer.list(), key=lambda c: c["metadata"]["name"]):
            why = why_clean(csr, now)
            if not why:
                continue
            name = csr["metadata"]["name"]
            try:
                self.client.delete("certificatesigningrequests", name)
            except StatusError as err:
                if err.code != 404:
                    continue
            except DialError:
                continue
            self.cleaned.append((now, name, why))
        self._timer = self.client.clock.call_later(POLLING_INTERVAL, self.worker,
                                                   "csrcleaner poll")
