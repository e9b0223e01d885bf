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
from urllib.parse import unquote

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs

from k8sbook.api import decoding, protobuf
from k8sbook.api.request import Impersonation
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

def impersonation(h: Handler) -> Impersonation | None:
    """The ``Impersonate-*`` headers (``buildImpersonationRequests``): the user, each group,
    the uid, and each value of each ``Impersonate-Extra-<key>`` (the key lower-cased and
    percent-decoded); ``None`` if there are none."""
    user = h.headers.get("Impersonate-User", "")
    groups = tuple(h.headers.get_all("Impersonate-Group") or ())
    uid = h.headers.get("Impersonate-Uid", "")
    prefix = "impersonate-extra-"
    extra = tuple((unquote(k[len(prefix):].lower()), v) for k, v in h.headers.items()
                  if k.lower().startswith(prefix))
    if not (user or groups or uid or extra):
        return None
    return Impersonation(user, groups, uid, extra)


#: ``pkg/server/config.go``: ``MaxRequestBodyBytes: int64(3 * 1024 * 1024)``, the limit
#: ``limitedReadBody`` (``endpoints/handlers/rest.go``) applies to create, update, patch and
#: delete bodies
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
#: what the serializer of the built-in types offers (``SupportedMediaTypes``; CBOR is behind
#: a disabled feature gate in v1.35); the model decodes JSON and protobuf
#: (:mod:`k8sbook.api.protobuf`), and refuses YAML bodies
BODY_MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
#: ``endpoints/installer.go``: the patch types a PATCH may carry
PATCH_MEDIA_TYPES = ("application/json-patch+json", "application/merge-patch+json",
                     "application/strategic-merge-patch+json", "application/apply-patch+yaml")


def unsupported(accepted: tuple[str, ...]) -> StatusError:
    """``negotiation.NewUnsupportedMediaTypeError``: 415 with the accepted types."""
    return StatusError(status_object(
        415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
        f"accepted media types include: {', '.join(accepted)}"))


def read_body(h: Handler, kind: str = "", api_version: str = "") -> Any:
    """The body, decoded: 413 past :data:`MAX_REQUEST_BODY_BYTES`
    (``Request entity too large: limit is 3145728``), 415 for a media type the handler does
    not take (``mime.ParseMediaType``, then a lookup of the exact type), 400 for what
    :func:`k8sbook.api.decoding.parse_json` refuses, and for a protobuf body that does not
    decode (``transformDecodeError``: "``K`` in version ``V`` cannot be handled as a ``kind``"
    when the envelope names a kind, else "the object provided is unrecognized (must be of type
    ``kind``)" with the body's first 30 bytes in hex); a kind with no protobuf form
    (``api_version``/``kind``) takes JSON and YAML only, as a custom resource does."""
    raw = h.raw_body
    if len(raw) > MAX_REQUEST_BODY_BYTES or h.body_length > MAX_REQUEST_BODY_BYTES:
        raise StatusError(status_object(413, "RequestEntityTooLarge", "Request entity too "
                                        f"large: limit is {MAX_REQUEST_BODY_BYTES}"))
    if not raw:
        return None
    ctype = (h.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
    if h.command == "PATCH":
        if ctype not in PATCH_MEDIA_TYPES:
            raise unsupported(PATCH_MEDIA_TYPES)
    elif ctype == protobuf.CONTENT_TYPE:
        if api_version and not protobuf.supports(api_version, kind):
            raise unsupported(BODY_MEDIA_TYPES[:2])
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as err:
            if err.kind:
                raise bad_request(f'{err.kind} in version "{err.version}" cannot be handled as '
                                  f"a {kind}: {err}") from None
            summary = raw[:30].hex() + (" ..." if len(raw) > 30 else "")  # ``summarizeData``
            raise bad_request(f"the object provided is unrecognized (must be of type {kind}): "
                              f"{err} ({summary})") from None
    elif ctype != "application/json":
        raise unsupported(BODY_MEDIA_TYPES)
    if ctype == "application/apply-patch+yaml" and not raw.lstrip().startswith(b"{"):
        return _yaml(raw)  # an applied configuration is YAML (kubectl sends JSON, also YAML)
    return decoding.parse_json(raw)


def _yaml(raw: bytes) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise StatusError(status_object(400, "BadRequest", f"error decoding YAML: {err}")) \
            from None


def drain(h: Handler, length: int) -> bytes:
    """Read the body; past the limit, read and drop it in chunks (the connection stays
    usable) and keep nothing."""
    if length <= 0:
        return b""
    if length <= MAX_REQUEST_BODY_BYTES:
        return h.rfile.read(length)
    while length > 0:
        chunk = h.rfile.read(min(length, 1 << 16))
        if not chunk:
            break
        length -= len(chunk)
    return b""


def read_chunked(h: Handler) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (RFC 9112 section 7.1: hex size lines, each chunk
    and its CRLF, a zero-size last chunk, trailer lines until an empty line), as Go's
    ``net/http`` reads it for the apiserver. Past :data:`MAX_REQUEST_BODY_BYTES` the rest is
    read and dropped and ``body_length`` records the size, so :func:`read_body` answers 413."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = h.rfile.readline(1 << 16)
        try:
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        except ValueError:
            raise StatusError(status_object(400, "BadRequest", "invalid chunked body")) from None
        if size == 0:
            while h.rfile.readline(1 << 16).strip():
                pass  # trailers
            break
        chunk = h.rfile.read(size)
        h.rfile.readline(1 << 16)  # the CRLF after the chunk
        total += len(chunk)
        if total <= MAX_REQUEST_BODY_BYTES:
            parts.append(chunk)
    h.body_length = total
    return b"".join(parts) if total <= MAX_REQUEST_BODY_BYTES else b""


def send(h: Handler, code: int, data: bytes, ctype: str,
          warnings: list[str] | None = None, retry_after: int | None = None) -> None:
    h.send_response(code)
    h.send_header("Content-Type", ctype)
    if retry_after is not None:  # APF's 429 (``tooManyRequests``) sets Retry-After
        h.send_header("Retry-After", str(retry_after))
    for w in warnings or []:  # RFC 7234 warn-code 299, agent "-", as the apiserver sends
        h.send_header("Warning", "299 - " + json.dumps(w))
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(data)

def send_json(h: Handler, code: int, body: dict[str, Any],
               warnings: list[str] | None = None) -> None:
    retry = (body.get("details") or {}).get("retryAfterSeconds") if code == 429 else None
    send(h, code, json.dumps(body).encode(), "application/json", warnings, retry)




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
    #: the Content-Length the client announced (a body past the limit is not kept)
    body_length = 0

    def _dispatch(self) -> None:
        self.server.model.serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the model has a trace; the HTTP access log is noise
