"""The HTTPS side of ``k8sbook serve``: TLS, who the caller is, bodies, writing responses.

Mirrors ``k8s.io/apiserver/pkg/server`` (``SecureServingInfo``: TLS with ``--client-ca-file``,
a client certificate optional) and the request-side authenticators of
``k8s.io/apiserver/pkg/authentication/request`` (``x509`` first, then ``bearertoken``), and the
response writers of ``endpoints/handlers/responsewriters`` (a JSON body; ``Warning: 299 -``
headers).
"""

from __future__ import annotations

import json
import socket
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from k8sbook.apiserver.authentication import BearerToken, ClientCertificate, Credentials
from k8sbook.core.status import StatusError, bad_request, status_object, unauthorized


def credentials(h: Handler) -> Credentials:
    """The x509 authenticator first (a verified client certificate), then a bearer
    token, else anonymous: the order of kube-apiserver's union authenticator."""
    peer = h.connection.getpeercert() if isinstance(h.connection, ssl.SSLSocket) else None
    if peer:
        subject: list[tuple[str, str]] = [(str(attr[0]), str(attr[1]))
                                          for rdn in peer.get("subject", ()) for attr in rdn]
        cn = next((v for k, v in subject if k == "commonName"), "")
        orgs = tuple(v for k, v in subject if k == "organizationName")
        return ClientCertificate(cn, orgs)  # the handshake verified it against the CA
    auth = h.headers.get("Authorization", "")
    if not auth:
        return None
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized()
    return BearerToken(token.strip())

def read_body(h: Handler) -> Any:
    raw = h.raw_body
    if not raw:
        return None
    ctype = (h.headers.get("Content-Type") or "application/json").split(";")[0].strip()
    if not ctype.endswith("json"):
        raise StatusError(status_object(
            415, "UnsupportedMediaType", f"the body of the request was in an unknown format "
            f"- accepted media types include: application/json (got {ctype})"))
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise bad_request(f"couldn't get version/kind; json parse error: {err}") from err



def send(h: Handler, code: int, data: bytes, ctype: str,
          warnings: list[str] | None = None) -> None:
    h.send_response(code)
    h.send_header("Content-Type", ctype)
    for w in warnings or []:  # RFC 7234 warn-code 299, agent "-", as the apiserver sends
        h.send_header("Warning", "299 - " + json.dumps(w))
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(data)

def send_json(h: Handler, code: int, body: dict[str, Any],
               warnings: list[str] | None = None) -> None:
    send(h, code, json.dumps(body).encode(), "application/json", warnings)




class TLSServer(ThreadingHTTPServer):
    """An HTTPS server whose TLS handshakes happen in the per-connection threads."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(10)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return  # not TLS, or a certificate the CA did not sign: no connection
        request.settimeout(None)
        super().finish_request(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8sbook-apiserver"
    raw_body = b""

    def _dispatch(self) -> None:
        self.server.model.serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the model has a trace; the HTTP access log is noise
