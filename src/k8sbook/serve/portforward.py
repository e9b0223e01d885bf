"""``kubectl port-forward`` over WebSocket: SPDY/3.1 streams tunnelled in WebSocket messages.

Mirrors the apiserver's side of port-forward over WebSockets (KEP-4006, feature gate
``PortForwardWebsockets``, beta and on by default since 1.31; kubectl tries it first since
1.31): kubectl opens a WebSocket on ``pods/<name>/portforward`` asking for the sub-protocol
``SPDY/3.1+portforward.k8s.io`` (``k8s.io/apimachinery/pkg/util/portforward``:
``WebsocketsSPDYTunnelingPortForwardV1``) and then speaks SPDY/3.1 inside the binary messages
(client-go's ``TunnelingConnection``), which the apiserver hands on to the kubelet's
``portforward.k8s.io`` server. For each local connection kubectl creates two SPDY streams
with the headers ``streamType`` (``error``, then ``data``), ``port`` and ``requestID``
(``client-go/tools/portforward``); the server answers each with ``SYN_REPLY``, copies the
data stream to the pod's port and back, ends the data stream with ``FIN`` when the
application has answered, and ends the error stream with ``FIN`` (after an error's text, if
the port could not be reached). Pings are answered.

The framing is :mod:`k8sbook.serve.spdy`; the WebSocket is :mod:`wsproto`'s, as for exec
(:mod:`k8sbook.serve.streams`). Each forwarded connection reaches the model as one request
on the model's network (``kubectl->kube-apiserver``, ``kube-apiserver->kubelet``,
``kubelet->container-runtime``, and the runtime's connection to the port inside the pod):
the bytes kubectl sent, once they hold a whole HTTP request head or the stream is closed, and
back the bytes the application wrote. Simplified: the model's applications speak HTTP only
(one request per connection); other protocols get no answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage

from k8sbook.api.request import Request, Response
from k8sbook.core.status import StatusError, bad_request, status_object
from k8sbook.serve import spdy
from k8sbook.serve.http import Handler, credentials, impersonation
from k8sbook.serve.routing import Route

#: ``portforward.WebsocketsSPDYTunnelingPortForwardV1``
PROTOCOL = "SPDY/3.1+portforward.k8s.io"
ENCODING, ERRORS = "utf-8", "surrogateescape"


@dataclass
class _Stream:
    kind: str
    port: str
    request: str
    data: bytes = b""
    fin: bool = False
    answered: bool = False


def _result(resp: Response) -> str:
    if not resp.ok:
        return Response.result(resp)
    return f"101 Switching Protocols ({PROTOCOL})"


def serve(h: Handler, route: Route, call: Callable[[Request, Callable[[Response], str]],
                                                   Response],
          offered: list[str], key: str, switch: Callable[[Handler, str, str], None],
          events: Callable[[Handler, Connection], Any]) -> None:
    """Serve one port-forward WebSocket until kubectl closes it."""
    if PROTOCOL not in offered:
        raise StatusError(status_object(
            400, "BadRequest", f"requested protocol(s) are not supported: {offered}; "
                               f"supports {[PROTOCOL]}"))
    if not key:
        raise bad_request("missing Sec-WebSocket-Key")
    switch(h, key, PROTOCOL)
    ws = Connection(ConnectionType.SERVER)
    framer = spdy.Framer()
    streams: dict[int, _Stream] = {}

    def send(data: bytes) -> None:
        h.wfile.write(ws.send(BytesMessage(data=data)))
        h.wfile.flush()

    for message in events(h, ws):
        if message is None:
            break
        for frame in framer.feed(message):
            if frame.control and frame.type == spdy.SYN_STREAM:
                hd = frame.headers
                streams[frame.stream] = _Stream(hd.get("streamtype", ""), hd.get("port", ""),
                                                hd.get("requestid", ""))
                send(framer.syn_reply(frame.stream))
            elif frame.control and frame.type == spdy.PING:
                send(framer.ping(frame.value))
            elif frame.control and frame.type == spdy.RST_STREAM:
                streams.pop(frame.stream, None)
            elif frame.control and frame.type == spdy.GOAWAY:
                return
            elif not frame.control and frame.stream in streams:
                s = streams[frame.stream]
                s.data += frame.data
                s.fin = s.fin or bool(frame.flags & spdy.FLAG_FIN)
        for sid, s in sorted(streams.items()):
            if s.kind == "data" and not s.answered and (s.fin or b"\r\n\r\n" in s.data):
                s.answered = True
                _forward(h, route, call, send, framer, sid, s, streams)


def _forward(h: Handler, route: Route, call: Callable[[Request, Callable[[Response], str]],
                                                      Response],
             send: Callable[[bytes], None], framer: spdy.Framer, sid: int, s: _Stream,
             streams: dict[int, _Stream]) -> None:
    """One forwarded connection: the model answers; the answer goes back on the data
    stream, an error on the error stream of the same request."""
    req = Request("create", "pods", "", route.namespace, route.name, "portforward",
                  params={"ports": s.port}, credentials=credentials(h),
                  impersonate=impersonation(h),
                  body={"upgrade": "websocket", "data": s.data.decode(ENCODING, ERRORS)})
    resp = call(req, _result)
    error_id = next((i for i, e in streams.items()
                     if e.kind == "error" and e.request == s.request), None)
    body = resp.body if isinstance(resp.body, dict) else {}
    if resp.ok:
        send(framer.data(sid, str(body.get("data", "")).encode(ENCODING, ERRORS), fin=True))
        if error_id is not None:
            send(framer.data(error_id, b"", fin=True))
    else:
        send(framer.data(sid, b"", fin=True))
        if error_id is not None:
            send(framer.data(error_id, str(body.get("message", "")).encode(), fin=True))
