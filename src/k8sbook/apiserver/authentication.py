"""Who is calling: credentials in, ``UserInfo`` out, or 401 Unauthorized.

Mirrors ``k8s.io/apiserver/pkg/authentication``: ``user.Info`` (name, uid, groups, extra), the
x509 client-certificate authenticator (``request/x509``: the certificate's Common Name is the
user name and its Organizations are the groups, if a trusted CA signed it), the bearer-token
authenticators (service-account tokens, bootstrap tokens) and the union that tries each in
turn and adds ``system:authenticated`` to whoever succeeds. Anonymous requests become
``system:anonymous`` in group ``system:unauthenticated`` when anonymous auth is enabled, as it
is by default.

A bearer token that does not authenticate is ``401 Unauthorized`` (message ``Unauthorized``),
never a fall-back to anonymous: the union authenticator answers anonymous only to a request
that carries no credentials (``request/bearertoken``: an invalid token is an error, and
``filters.WithAuthentication`` answers ``Unauthorized`` for it), on every path.

Most components' certificates are records naming their issuer, and "signed by a trusted CA"
means the issuer is the cluster CA. A certificate the model really issued (a kubelet's, after
TLS bootstrapping) carries its PEM, and is verified as ``request/x509`` verifies one: signed by
the cluster CA and valid now, by virtual time. What the authenticator *derives* from either is
exactly what kube-apiserver derives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.api.request import (
    CLUSTER_CA,
    BearerToken,
    ClientCertificate,
    Credentials,
    UserInfo,
)
from k8sbook.core import pki
from k8sbook.core.clock import Clock
from k8sbook.core.status import unauthorized

__all__ = ["CLUSTER_CA", "LOOPBACK_USER", "Authenticator", "BearerToken", "ClientCertificate",
           "Credentials", "InvalidToken", "PeerConnections", "TokenAuthenticator", "UserInfo", "component_certificate", "node_certificate",
           "service_account_user"]

#: The apiserver's own loopback identity (a member of system:masters): what kube-apiserver's
#: loopback client authenticates as when it calls itself.
LOOPBACK_USER = UserInfo("system:apiserver", ("system:masters", "system:authenticated"))

class InvalidToken(Exception):
    """A token an authenticator owns but refuses; the message is what upstream logs."""


#: a bearer-token authenticator (``authenticator.Token``): the user and the audiences the token
#: is good for, ``None`` when the token is not its kind, :class:`InvalidToken` when refused
TokenAuthenticator = Callable[[str, tuple[str, ...]],
                              "tuple[UserInfo, tuple[str, ...]] | None"]


@dataclass
class Authenticator:
    """The union authenticator kube-apiserver builds from its flags."""

    trusted_cas: tuple[str, ...] = (CLUSTER_CA,)
    anonymous: bool = True
    #: static tokens (``--token-auth-file``; ``k8sbook serve`` puts its admin token here)
    tokens: dict[str, UserInfo] = field(default_factory=dict)
    #: the other bearer-token authenticators, tried in turn (service-account JWTs,
    #: bootstrap tokens)
    token_authenticators: list[TokenAuthenticator] = field(default_factory=list)
    #: why the last credential was refused (upstream logs it; the client only sees 401)
    last_failure: str = ""
    #: the apiserver's clock, against which certificates' validity is checked
    clock: Clock | None = None

    def add_token(self, token: str, user: UserInfo) -> None:
        self.tokens[token] = user

    def revoke_token(self, token: str) -> None:
        self.tokens.pop(token, None)

    def authenticate_token(self, token: str, audiences: tuple[str, ...] = ()) -> \
            tuple[UserInfo, tuple[str, ...]]:
        """``union.unionAuthTokenHandler`` behind ``bearertoken``: the first authenticator
        that knows the token wins; if none does, 401 with the errors of those that refused
        it (``invalid bearer token`` when nobody even recognised it)."""
        static = self.tokens.get(token)
        if static is not None:
            return static, audiences
        errors: list[str] = []
        for authenticator in self.token_authenticators:
            try:
                found = authenticator(token, audiences)
            except InvalidToken as err:
                errors.append(str(err))
                continue
            if found is not None:
                return found
        self.last_failure = (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
                             ) if errors else "invalid bearer token"
        raise unauthorized()

    def _verify_certificate(self, pem: bytes) -> UserInfo:
        """``x509.Authenticator``: the chain must verify to ``--client-ca-file`` (the
        cluster CA) at the current (virtual) time; then CN is the user, O the groups.
        (``cryptography`` is imported here: only a request with a real certificate needs it.)"""
        from cryptography import x509

        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            self.last_failure = "x509: malformed certificate"
            raise unauthorized() from None
        failure = pki.verify(cert, pki.ca(), self.clock.now()) if self.clock else ""
        if failure:
            self.last_failure = failure
            raise unauthorized()
        cn, orgs = pki.subject_of(cert)
        return UserInfo(cn, orgs)

    def authenticate(self, creds: Credentials) -> UserInfo:
        user: UserInfo | None = None
        if isinstance(creds, ClientCertificate) and creds.pem:
            user = self._verify_certificate(creds.pem)
        elif isinstance(creds, ClientCertificate):
            if creds.issuer not in self.trusted_cas:
                raise unauthorized()
            user = UserInfo(creds.common_name, tuple(creds.organizations))
        elif isinstance(creds, BearerToken):
            user = self.authenticate_token(creds.token)[0]
        elif creds is None:
            if not self.anonymous:
                raise unauthorized()
            return UserInfo("system:anonymous", ("system:unauthenticated",))
        if user is None:
            raise unauthorized()
        groups = user.groups if "system:authenticated" in user.groups else (
            *user.groups, "system:authenticated")
        return UserInfo(user.name, groups, user.uid, user.extra)


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    """The identity a service-account token carries (``serviceaccount.UserInfo``)."""
    return UserInfo(f"system:serviceaccount:{namespace}:{name}",
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"), uid)


def node_certificate(node: str) -> ClientCertificate:
    """The kubelet's client certificate: CN ``system:node:<name>``, O ``system:nodes``."""
    return ClientCertificate(f"system:node:{node}", ("system:nodes",))


def component_certificate(user: str, groups: tuple[str, ...] = ()) -> ClientCertificate:
    """kubeadm's certificates for the scheduler (``system:kube-scheduler``) and friends."""
    return ClientCertificate(user, groups)


class PeerConnections:
    """What the apiserver knows of the TLS connections its open watches travel on: the
    client certificate each connection's handshake presented (``r.TLS.PeerCertificates[0]``,
    fixed for the connection's life). A client that gets a new certificate is seen with it
    only on connections it opens afterwards."""

    def __init__(self) -> None:
        self._open: list[tuple[Any, str, Credentials]] = []

    def add(self, conn: Any, req: Any) -> None:
        if len(self._open) > 64:
            self._open = [e for e in self._open if not e[0].closed]
        self._open.append((conn, req.resource, req.credentials))

    def of(self, instance: str) -> list[dict[str, str]]:
        """The open watch connections of ``instance``, sorted: the resource watched and,
        for a real certificate, its subject, serial number (hex) and ``notAfter``."""
        out = []
        for conn, resource, creds in self._open:
            if conn.closed or conn.src != instance:
                continue
            row = {"resource": resource, "user": "", "serial": "", "notAfter": ""}
            if isinstance(creds, ClientCertificate):
                row["user"] = creds.common_name
                if creds.pem:
                    from cryptography import x509  # here: only a real certificate needs it

                    cert = x509.load_pem_x509_certificate(creds.pem)
                    row["serial"] = format(cert.serial_number, "x")
                    row["notAfter"] = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            elif isinstance(creds, BearerToken):
                row["user"] = "(bearer token)"
            out.append(row)
        return sorted(out, key=lambda r: (r["resource"], r["serial"]))
