"""Where a component listens, and how a dial fails: :class:`Address`, :class:`DialError` with
Go's error texts, and :class:`Translation` (what a node's netfilter rules did to a packet).

Mirrors Go's ``net`` (``net.Dial``'s ``dial tcp 10.0.0.1:10250: connect: connection refused``,
``i/o timeout``, ``dial unix /run/containerd/containerd.sock: connect: no such file or
directory``; ``os/exec``'s ``fork/exec``) and ``crypto/tls`` / ``crypto/x509`` (a failed
handshake). The fabric that dials is :mod:`k8sbook.client.network`, which re-exports every
name here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Transport = Literal["tcp", "udp", "unix", "exec"]


@dataclass(frozen=True, order=True)
class Address:
    """Where a component listens. ``host`` is an IP or a host name for ``tcp``/``udp``; for
    ``unix`` and ``exec`` it is the node the socket or binary is on, and ``path`` its path."""

    host: str
    port: int = 0
    transport: Transport = "tcp"
    path: str = ""

    @classmethod
    def tcp(cls, host: str, port: int) -> Address:
        return cls(host, port, "tcp")

    @classmethod
    def udp(cls, host: str, port: int) -> Address:
        return cls(host, port, "udp")

    @classmethod
    def unix(cls, node: str, path: str) -> Address:
        """A Unix socket on ``node`` (CRI, CSI): only processes on that node can dial it."""
        return cls(node, 0, "unix", path)

    @classmethod
    def exec(cls, node: str, path: str) -> Address:
        """A plugin binary on ``node`` that a runtime executes (CNI, the OCI runtime)."""
        return cls(node, 0, "exec", path)

    def __str__(self) -> str:
        if self.transport in ("unix", "exec"):
            return self.path
        return f"{self.host}:{self.port}"

    def with_host(self, host: str) -> Address:
        return Address(host, self.port, self.transport, self.path)


#: ``tunnel``: a proxy's own words (Konnectivity's ``No agent available``, ``EOF``)
DialErrorKind = Literal["refused", "timeout", "no such host", "no such file", "rejected", "tls",
                        "tunnel"]


class DialError(Exception):
    """The connection could not be made or got no answer, in Go's words."""

    def __init__(self, kind: DialErrorKind, address: Address, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.address = address

    @property
    def result(self) -> str:
        """What the trace shows for the failed message."""
        if self.kind == "tls":
            return str(self).removeprefix("tls: ")
        if self.kind == "tunnel":
            return str(self)
        return {"refused": "connection refused", "timeout": "i/o timeout",
                "no such host": "no such host", "no such file": "no such file or directory",
                "rejected": "connection refused (REJECT)"}[self.kind]


def _dial_prefix(address: Address) -> str:
    if address.transport == "exec":
        return f"fork/exec {address.path}"
    if address.transport == "unix":
        return f"dial unix {address.path}"
    return f"dial {address.transport} {address}"


def refused(address: Address) -> DialError:
    if address.transport == "unix":
        return DialError("no such file", address,
                         f"{_dial_prefix(address)}: connect: no such file or directory")
    if address.transport == "exec":
        return DialError("no such file", address,
                         f"{_dial_prefix(address)}: no such file or directory")
    return DialError("refused", address, f"{_dial_prefix(address)}: connect: connection refused")


def timed_out(address: Address) -> DialError:
    return DialError("timeout", address, f"{_dial_prefix(address)}: i/o timeout")


#: ``verify``: the issuer a dialer trusts, or a predicate over the listener's issuer
Verify = str | Callable[[str | None], bool]


def no_certificate(address: Address) -> DialError:
    """The server has no certificate to present (a kubelet with ``serverTLSBootstrap`` whose
    serving CSR is not issued yet: its ``GetCertificate`` fails), so it aborts the handshake
    with an alert, which Go's client reports as a remote error."""
    return DialError("tls", address, "remote error: tls: internal error")


def untrusted(address: Address, certificate: str | None) -> DialError:
    """The TLS handshake failed: Go's ``crypto/tls`` words. A listener without a certificate
    speaks plain TCP, so the client's handshake reads something that is not TLS."""
    if certificate is None:
        return DialError("tls", address, "tls: first record does not look like a TLS handshake")
    return DialError("tls", address, "tls: failed to verify certificate: x509: certificate "
                                     "signed by unknown authority")


def client_refused(address: Address, presented: str | None) -> DialError:
    """The server refused the client's certificate, as the client reads it: Go's server sends
    the alert ``unknown_ca`` for a certificate no CA it trusts signed (``processCertsFromClient``
    in ``crypto/tls/handshake_server.go``), and ``certificate_required`` when none was sent."""
    alert = "certificate required" if presented is None else "unknown certificate authority"
    return DialError("tls", address, f"remote error: tls: {alert}")


@dataclass(frozen=True)
class Translation:
    """What the netfilter rules of a node did to a packet: its new destination and a note
    for the trace (``DNAT to 10.244.1.5:8080``)."""

    address: Address
    note: str = ""


#: ``translate(source_ip, address) -> Translation``; raises :class:`DialError` for REJECT.
Translator = Callable[[str, Address], Translation]
