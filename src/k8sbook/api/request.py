"""One API request and its response, as both ends of an HTTP connection see them.

Mirrors what ``k8s.io/apiserver/pkg/endpoints/request`` decodes from a request (verb,
resource, namespace, name, subresource, query) and what a client presents to authenticate:
a TLS client certificate (``crypto/x509`` after the handshake) or a bearer token
(``Authorization: Bearer ...``), and the ``user.Info`` an authenticator derives
(``k8s.io/apiserver/pkg/authentication/user``). Shared by clients (:mod:`k8sbook.client`)
and the server (:mod:`k8sbook.apiserver`), which is why it sits below both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

#: kubeadm names the cluster CA's subject CN "kubernetes"
CLUSTER_CA = "kubernetes"


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"username": self.name, "groups": list(self.groups)}
        if self.uid:
            out["uid"] = self.uid
        return out


@dataclass(frozen=True)
class ClientCertificate:
    """A TLS client certificate as the apiserver sees it after the handshake."""

    common_name: str
    organizations: tuple[str, ...] = ()
    issuer: str = CLUSTER_CA
    #: the certificate itself (PEM), when the model made a real one (TLS bootstrapping);
    #: the authenticator then checks its signature and validity instead of trusting the
    #: fields above
    pem: bytes = b""


@dataclass(frozen=True)
class BearerToken:
    token: str


Credentials = ClientCertificate | BearerToken | None


@dataclass(frozen=True)
class Impersonation:
    """What a client asks to act as: the ``Impersonate-User``, ``Impersonate-Group``
    (repeated), ``Impersonate-Uid`` and ``Impersonate-Extra-<key>`` headers
    (``k8s.io/api/authentication/v1``; kubectl's ``--as``, ``--as-group``, ``--as-uid``)."""

    user: str = ""
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, str], ...] = ()


class WatchStream(Protocol):
    """The server's side of an open watch, as the client holds it."""

    stopped: bool

    def stop(self) -> None: ...


@dataclass
class Request:
    """One API request, as the HTTP layer would decode it from method, path and query."""

    verb: str  # get, list, watch, create, update, patch, delete
    resource: str  # plural, e.g. "pods"
    group: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    body: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    credentials: Credentials = None
    content_type: str = "application/json"
    #: set instead of credentials for in-process callers that are already authenticated
    user: UserInfo | None = None
    #: the identity the caller asks to act as (impersonation headers), if any
    impersonate: Impersonation | None = None
    #: set by the apiserver when it serves an impersonated request: who really sent it
    #: (what the audit log records as ``user``, with ``impersonatedUser`` the other)
    original_user: UserInfo | None = None


@dataclass
class Response:
    code: int
    #: a JSON object (an API object, a Status) or, for a proxied request, whatever the
    #: backend answered (a pod's plain text)
    body: Any = None
    watch: WatchStream | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    def result(self) -> str:
        """The response as a trace shows it: the code, and the reason of a failure."""
        out = str(self.code)
        if not self.ok and isinstance(self.body, dict) and self.body.get("reason"):
            out += f" {self.body['reason']}"
        return out
