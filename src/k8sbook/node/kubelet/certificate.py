"""The kubelet's certificates: TLS bootstrapping, serving certificates, rotation before expiry.

Mirrors ``pkg/kubelet/certificate/bootstrap`` (``LoadClientCert``), ``pkg/kubelet/certificate``
(``kubelet.go``: ``NewKubeletServerCertificateManager``; ``transport.go``: ``UpdateTransport``)
and client-go's ``util/certificate`` (``certificate_manager.go``), ``util/certificate/csr`` and
``util/connrotation`` (v1.35):

- **Bootstrap.** A kubelet started with only a bootstrap token (``--bootstrap-kubeconfig``)
  makes a P-256 key, and with the token creates a CertificateSigningRequest named
  ``node-csr-<digest>`` (``digestedName``: base64url of SHA-512/256 over the public key, the
  subject and the usages, each base64url-encoded and followed by ``|``) for CN
  ``system:node:<name>``, O ``system:nodes``, signer
  ``kubernetes.io/kube-apiserver-client-kubelet``, usages ``digital signature`` and ``client
  auth``; then waits (``WaitForCertificate``: a watch on that one CSR) until it is issued, or
  fails if it is Denied or Failed. The certificate and key go to
  ``/var/lib/kubelet/pki/kubelet-client-current.pem``, and from then on every request of the
  kubelet presents that certificate (the shared client's credentials are switched, as the
  kubelet's transport reads the manager's current certificate for each new connection).
- **Rotation** (``rotateCertificates: true``, kubeadm's default). The manager sleeps until a
  jittered deadline, ``notBefore + (70 % + rand × 20 %) × lifetime``
  (``nextRotationDeadline``), then makes a new key and a CSR with ``generateName: csr-``
  (``RequestCertificate`` with no name), authenticated with the current certificate, so the
  approver recognises it as ``selfnodeclient``. When the new certificate arrives the manager
  switches to it and schedules the next rotation. A failed attempt is retried with an
  exponential back-off (2 s doubling, at most 128 s; without upstream's jitter). A rotation
  waits at most ``certificateWaitTimeout`` (15 min) for its CSR to be issued; then it gives
  up on that CSR ("certificate request was not signed: timed out waiting for the
  condition"), and the back-off makes a new one.
- **Closing connections after rotation** (``UpdateTransport`` with a ``connrotation.Dialer``):
  every connection the kubelet's client opened is tracked by its dialer; when the client
  certificate changes (bootstrap, then each rotation) the kubelet closes them all
  (``closeAllConns``), so that long-lived watches end and the informers watch again over new
  connections that present the new certificate (the TLS handshake sends a certificate only
  once, when a connection opens).
- **Serving certificate** (``serverTLSBootstrap: true``, KubeletConfiguration; the feature
  gate ``RotateKubeletServerCertificate`` is on by default). The kubelet makes no self-signed
  certificate; a second manager requests one with signer ``kubernetes.io/kubelet-serving``,
  subject CN ``system:node:<name>`` O ``system:nodes``, the node's addresses as SANs
  (``addressesToHostnamesAndIPs``: ``Hostname``, ``InternalDNS`` and ``ExternalDNS`` as DNS
  names, ``InternalIP`` and ``ExternalIP`` as IP addresses, sorted) and the usages of
  ``DefaultKubeletServingGetUsages``: ``digital signature`` and ``server auth``, plus ``key
  encipherment`` only for an RSA key (the kubelet's keys are ECDSA P-256). Until a certificate
  is issued, port 10250's ``GetCertificate`` fails ("no serving certificate available for the
  kubelet"), so every TLS client's handshake ends with ``remote error: tls: internal error``.
  The approver never approves such a CSR; an administrator does. The certificate is kept in
  ``/var/lib/kubelet/pki/kubelet-server-current.pem`` and rotated as the client one is; past
  its ``notAfter`` the manager's ``Current`` has no certificate, so without an approved renewal
  the handshakes fail again (the kubelet clears what port 10250 presents).

Simplified: the bootstrap has no one-hour timeout. ``cryptography`` is imported where a key or
certificate is handled: a kubelet that is not bootstrapped never needs it.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from k8sbook.api.request import ClientCertificate
from k8sbook.client.network import DialError
from k8sbook.client.rest import Client
from k8sbook.core import pki
from k8sbook.core.clock import EPOCH, Clock
from k8sbook.core.keys import ec_key
from k8sbook.core.status import StatusError

SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
USAGES = ("digital signature", "client auth")
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
PKI_DIR = "/var/lib/kubelet/pki"
CURRENT = f"{PKI_DIR}/kubelet-client-current.pem"
SERVING_CURRENT = f"{PKI_DIR}/kubelet-server-current.pem"
BACKOFF_INITIAL, BACKOFF_CAP = 2.0, 128.0
#: ``certificateWaitTimeout``: how long a rotation waits for its CSR to be issued
CERTIFICATE_WAIT_TIMEOUT = 15 * 60.0

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec


def digested_name(public_key: ec.EllipticCurvePublicKey, cn: str, orgs: tuple[str, ...],
                  usages: tuple[str, ...]) -> str:
    """``digestedName``: the bootstrap CSR's name, the same for the same key and request."""
    from cryptography.hazmat.primitives import serialization

    h = hashlib.new("sha512_256")

    def write(data: bytes) -> None:
        h.update(base64.urlsafe_b64encode(data).rstrip(b"="))
        h.update(b"|")

    write(public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    write(cn.encode())
    for o in orgs:
        write(o.encode())
    for u in usages:
        write(u.encode())
    return "node-csr-" + base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()


def _seconds(t: Any) -> float:
    return (t - EPOCH).total_seconds()


def serving_usages(key: Any) -> tuple[str, ...]:
    """``DefaultKubeletServingGetUsages``: key encipherment only for an RSA key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return ("key encipherment", "digital signature", "server auth")
    return ("digital signature", "server auth")


def hostnames_and_ips(addresses: list[dict[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``addressesToHostnamesAndIPs``: the node's addresses as a serving certificate's DNS
    and IP SANs, each deduplicated and sorted."""
    dns: set[str] = set()
    ips: set[str] = set()
    for a in addresses:
        value, kind = a.get("address", ""), a.get("type", "")
        if not value:
            continue
        is_ip = value.replace(".", "").isdigit() or ":" in value
        if kind == "Hostname":
            (ips if is_ip else dns).add(value)
        elif kind in ("InternalIP", "ExternalIP") and is_ip:
            ips.add(value)
        elif kind in ("InternalDNS", "ExternalDNS"):
            dns.add(value)
    return tuple(sorted(dns)), tuple(sorted(ips))


class CertificateManager:
    """One of the kubelet's certificate managers, over the kubelet's own client: ``kind``
    ``"client"`` (the client certificate, bootstrapped) or ``"server"`` (the serving
    certificate of port 10250, whose SANs come from ``addresses()``, the node's addresses);
    ``on_install`` is called with each new certificate."""

    def __init__(self, client: Client, clock: Clock, node_name: str, rand: random.Random, *,
                 filesystem: dict[str, str], rotate: bool = True, kind: str = "client",
                 addresses: Callable[[], list[dict[str, str]]] | None = None,
                 on_install: Callable[[x509.Certificate], None] | None = None) -> None:
        self.client = client
        self.clock = clock
        self.node_name = node_name
        self.rand = rand
        self.filesystem = filesystem
        self.rotate = rotate
        self.kind = kind
        self.addresses = addresses or list
        self.on_install = on_install
        self.signer = SIGNER if kind == "client" else SERVING_SIGNER
        self.file = CURRENT if kind == "client" else SERVING_CURRENT
        self.current: x509.Certificate | None = None
        self.generation = 0
        #: the CSRs this kubelet created, in order
        self.requests: list[str] = []
        #: when the next rotation is due (virtual seconds), once a certificate is in use
        self.deadline: float | None = None
        self.last_error = ""
        #: how many times the kubelet closed its open connections after a new client
        #: certificate (``connrotation``), and how many it closed in all
        self.connection_closes = 0
        self.closed_connections = 0
        self._backoff = BACKOFF_INITIAL
        self._timer: Any = None
        self._stopped = False

    @property
    def subject(self) -> tuple[str, tuple[str, ...]]:
        return f"system:node:{self.node_name}", ("system:nodes",)

    def bootstrap(self, on_ready: Callable[[], None]) -> None:
        """``LoadClientCert`` with the bootstrap credentials the client holds now."""
        def done(cert: x509.Certificate) -> None:
            self._install(cert)
            on_ready()
        self._request(done, bootstrap=True)

    def start(self) -> None:
        """``Manager.Start``: request a certificate now if there is none (the serving
        manager of a kubelet with ``serverTLSBootstrap``)."""
        if self.current is None and not self._stopped:
            self._request(self._install, bootstrap=False)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()

    # -- one request -----------------------------------------------------------------------
    def _request(self, done: Callable[[x509.Certificate], None], *, bootstrap: bool) -> None:
        self.generation += 1
        key = ec_key(f"kubelet-{self.kind}/{self.node_name}/{self.generation}")
        cn, orgs = self.subject
        usages: tuple[str, ...] = USAGES
        dns: tuple[str, ...] = ()
        ips: tuple[str, ...] = ()
        if self.kind == "server":
            usages = serving_usages(key)
            dns, ips = hostnames_and_ips(self.addresses())
            if not dns and not ips:  # getTemplate: no addresses yet, no request
                self._failed("no serving certificate template: the node has no addresses",
                             done, bootstrap)
                return
        request = pki.certificate_request(key, cn, orgs, dns_names=dns, ips=ips)
        meta: dict[str, Any] = ({"name": digested_name(key.public_key(), cn, orgs, usages)}
                                if bootstrap else {"generateName": "csr-"})
        csr = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
               "metadata": meta,
               "spec": {"request": request.decode(), "signerName": self.signer,
                        "usages": list(usages)}}
        try:
            created = self.client.create(csr)
        except (StatusError, DialError) as err:
            self._failed(str(err), done, bootstrap)
            return
        name = created["metadata"]["name"]
        self.requests.append(name)
        self._key = key
        state: dict[str, Any] = {"finished": False}

        def on_event(event: dict[str, Any] | None) -> None:
            if event is None or state["finished"]:
                return
            obj = event.get("object") or {}
            self._check(obj, state, done, bootstrap)

        state["watch"] = self.client.watch("certificatesigningrequests", on_event,
                                           fieldSelector=f"metadata.name={name}")
        self._check(created, state, done, bootstrap)
        if not bootstrap and not state["finished"]:
            def give_up() -> None:
                if state["finished"]:
                    return
                state["finished"] = True
                state["watch"].stop()
                self._failed("certificate request was not signed: timed out waiting for the "
                             "condition", done, bootstrap)
            state["timeout"] = self.clock.call_later(
                CERTIFICATE_WAIT_TIMEOUT, give_up,
                f"kubelet/{self.node_name} {self.kind} certificate wait")

    def _check(self, csr: dict[str, Any], state: dict[str, Any],
               done: Callable[[x509.Certificate], None], bootstrap: bool) -> None:
        status = csr.get("status") or {}
        for c in status.get("conditions") or []:
            if c.get("type") in ("Denied", "Failed"):
                state["finished"] = True
                state["watch"].stop()
                self._failed(f"certificate signing request is {c['type'].lower()}, reason: "
                             f"{c.get('reason', '')}, message: {c.get('message', '')}",
                             done, bootstrap)
                return
        if status.get("certificate"):
            from cryptography import x509

            state["finished"] = True
            if "watch" in state:
                state["watch"].stop()
            if "timeout" in state:
                state["timeout"].cancel()
            done(x509.load_pem_x509_certificate(status["certificate"].encode()))

    def _failed(self, why: str, done: Callable[[x509.Certificate], None],
                bootstrap: bool) -> None:
        self.last_error = why
        if self._stopped:
            return
        delay, self._backoff = self._backoff, min(self._backoff * 2, BACKOFF_CAP)
        self._timer = self.clock.call_later(
            delay, lambda: self._request(done, bootstrap=bootstrap),
            f"kubelet/{self.node_name} certificate retry")

    # -- using a certificate -----------------------------------------------------------------
    def _install(self, cert: x509.Certificate) -> None:
        from cryptography.hazmat.primitives import serialization

        self.current = cert
        self._backoff = BACKOFF_INITIAL
        cn, orgs = pki.subject_of(cert)
        cert_pem = pki.pem(cert)
        key_pem = self._key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
        self.filesystem[self.file] = (cert_pem + key_pem).decode()
        if self.kind == "client":
            self.client.credentials = ClientCertificate(cn, orgs, pki.CAS["ca"], cert_pem)
            self._close_all_connections()
        if self.on_install is not None:
            self.on_install(cert)
        if self.rotate and not self._stopped:
            self._schedule_rotation(cert)

    def _close_all_connections(self) -> None:
        """``UpdateTransport``'s ``closeAllConns``: the dialer closes every connection it
        opened, so the watches on them end and are opened again with the new certificate."""
        closed = self.client.close_connections()
        if closed:
            self.connection_closes += 1
            self.closed_connections += closed

    def next_rotation_deadline(self, cert: x509.Certificate) -> float:
        """``nextRotationDeadline``: 70–90 % of the way through the certificate's life."""
        start, end = _seconds(cert.not_valid_before_utc), _seconds(cert.not_valid_after_utc)
        return start + (end - start) * (0.7 + 0.2 * self.rand.random())

    def _schedule_rotation(self, cert: x509.Certificate) -> None:
        self.deadline = self.next_rotation_deadline(cert)
        self._timer = self.clock.call_later(
            max(0.0, self.deadline - self.clock.now()),
            lambda: self._request(self._install, bootstrap=False),
            f"kubelet/{self.node_name} {self.kind} certificate rotation")
