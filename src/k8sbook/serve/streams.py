"""Streaming subresources over WebSocket: ``pods/exec`` as kubectl 1.30 and newer speaks it.

Mirrors the apiserver's side of KEP-4006 ("Transition from SPDY to WebSockets"): kubectl's
``exec`` (and ``cp``, which is ``tar`` over exec) opens a WebSocket (``GET`` with
``Upgrade: websocket``, RFC 6455) asking for the sub-protocol ``v5.channel.k8s.io`` (kubectl
1.32 and 1.37; the official Python client offers ``v5.channel.k8s.io,v4.channel.k8s.io``); the
apiserver picks the first offered one it supports
(``k8s.io/apimachinery/pkg/util/httpstream/wsstream``), answers ``101 Switching Protocols``
and relays the streams to the kubelet (``StreamTranslatorProxy``, feature gate
``TranslateStreamCloseWebsocketRequests``, on by default since 1.30). On the socket each
binary message starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error (a ``Status``
in JSON when the command ends, ``remotecommand``'s v4 protocol), 4 terminal resize; v5 adds
the close message ``[255, channel]`` with which the client half-closes stdin at EOF
(``k8s.io/apimachinery/pkg/util/remotecommand``: ``StreamProtocolV5Name``). kubectl turns a
``Failure`` with reason ``NonZeroExitCode`` into its own exit code
(``command terminated with exit code 3``).

The WebSocket framing is :mod:`wsproto`'s (a maintained sans-I/O implementation of RFC 6455:
masking, fragmentation, control frames, the closing handshake); this module only maps the
channels. A session without stdin or a terminal reaches the model as one request on the
model's network (``kubectl->kube-apiserver``, then ``kube-apiserver->kubelet`` and
``kubelet->container-runtime``), answered with the command's stdout, stderr and Status; if it
fails before any stream (no such pod, container or permission) the client gets the HTTP error
before the upgrade, as upstream does. A session with stdin (``exec -i``, ``attach -i``,
``run -i``) or a terminal (``-t``) is upgraded first; the same chain of requests then opens
the runtime's live session (:class:`k8sbook.node.containerd_streaming.StreamSession`), and
its streams flow both ways as they are written: each stdin message reaches the process at
once (a shell runs each line as it arrives, with its prompt and the terminal's echo under
``-t``), the output is sent as soon as the process writes it, a resize message (channel 4,
JSON ``{"Width": columns, "Height": rows}``, which kubectl sends first and on every
``SIGWINCH``) sets the terminal's size, the close message ends stdin, and the Status goes on
the error channel when the process ends (``exit 3``: kubectl exits 3). An error opening it
goes on the error channel. Simplified: once opened, the session's frames cross the model's
network without a trace message each (as the lines of ``logs -f``); the opening requests
are on the trace. The WebSocket ``GET`` is authorized as ``create`` on ``pods/exec`` (upstream
1.35 authorizes ``get`` and then, with ``AuthorizePodWebsocketUpgradeCreatePermission`` on by
default, ``create`` as well). ``pods/attach`` (``kubectl attach``, ``kubectl run -i``) is the
same protocol, joined to the container's main process (:mod:`k8sbook.node.containerd_attach`).
Port-forward (``SPDY/3.1+portforward.k8s.io``) is :mod:`k8sbook.serve.portforward`; exec and
attach for clients without WebSockets (``Upgrade: SPDY/3.1``) are :mod:`k8sbook.serve.spdy_exec`.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import generate_accept_token

from k8sbook.api.request import Request, Response
from k8sbook.core.status import StatusError, bad_request, status_object
from k8sbook.serve import portforward
from k8sbook.serve.http import Handler, credentials, impersonation
from k8sbook.serve.routing import Route

#: the sub-protocols the model's apiserver speaks for exec, most preferred first
CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
#: how long to wait for the client's part of the closing handshake
CLOSE_TIMEOUT = 5.0
#: how often an open session is looked at for output (seconds of wall time)
TICK = 0.02
#: how long a terminal session waits for the client's first resize before its process starts
FIRST_RESIZE = 0.5

#: ``call(request, result)``: send a request to the model's apiserver (under the lock)
Call = Callable[[Request, Callable[[Response], str]], Response]


def is_upgrade(h: Handler) -> bool:
    """``Connection: Upgrade`` with ``Upgrade: websocket``."""
    return "websocket" in h.headers.get("Upgrade", "").lower() and \
        "upgrade" in h.headers.get("Connection", "").lower()


def offered(h: Handler) -> list[str]:
    return [p.strip() for v in h.headers.get_all("Sec-WebSocket-Protocol") or []
            for p in v.split(",") if p.strip()]


def _flag(query: dict[str, list[str]], name: str, default: bool = False) -> bool:
    values = query.get(name)
    return default if not values else values[-1].lower() in ("1", "true")


def exec_request(h: Handler, route: Route, query: dict[str, list[str]]) -> Request:
    """The model request for ``pods/exec`` or ``pods/attach`` (``PodExecOptions``,
    ``PodAttachOptions`` from the query)."""
    params: dict[str, Any] = {}
    if route.subresource == "exec":
        params["command"] = list(query.get("command", []))
        if not params["command"]:
            raise bad_request("you must specify at least 1 command")
    if query.get("container"):
        params["container"] = query["container"][-1]
    for opt in ("stdin", "stdout", "stderr", "tty"):
        params[opt] = _flag(query, opt)
    return Request("create", "pods", "", route.namespace, route.name, route.subresource,
                   params=params, credentials=credentials(h), impersonate=impersonation(h))


def refuse(h: Handler, route: Route, call: Call) -> None:
    """A request for exec or port-forward that is not an upgrade the model serves (a plain
    POST; port-forward over bare SPDY, kubectl's fallback there): the apiserver checks the
    location first (no such pod or container), then answers ``400 Upgrade request
    required``."""
    query = parse_qs(urlsplit(h.path).query, keep_blank_values=True)
    if route.subresource in ("exec", "attach"):
        req = exec_request(h, route, query)
    elif route.subresource == "portforward":
        req = Request("create", "pods", "", route.namespace, route.name, "portforward",
                      params={"ports": ",".join(query.get("ports", []))},
                      credentials=credentials(h), impersonate=impersonation(h))
    else:
        raise bad_request("Upgrade request required")
    req.body = {"upgrade": h.headers.get("Upgrade", "")}
    resp = call(req, Response.result)
    raise StatusError(resp.body if not resp.ok and isinstance(resp.body, dict) else
                      status_object(400, "BadRequest", "Upgrade request required"))


def _result(protocol: str) -> Callable[[Response], str]:
    def result(resp: Response) -> str:
        if not resp.ok:
            return Response.result(resp)
        body = resp.body if isinstance(resp.body, dict) else {}
        if "session" in body:
            return f"101 Switching Protocols ({protocol}), streaming"
        return f"101 Switching Protocols ({protocol}), exit code {body.get('exitCode', 0)}"
    return result


def serve(h: Handler, route: Route, call: Call, lock: Any = None) -> None:
    """Serve a WebSocket upgrade of ``pods/exec``; errors before the upgrade raise
    :class:`StatusError` (the caller answers them)."""
    if route.subresource == "portforward":
        return portforward.serve(h, route, call, offered(h),
                                 h.headers.get("Sec-WebSocket-Key", ""), _switch, _events)
    if route.subresource not in ("exec", "attach"):
        raise bad_request("Upgrade request required")
    protocol = next((p for p in offered(h) if p in CHANNEL_PROTOCOLS), None)
    if protocol is None:
        raise StatusError(status_object(
            400, "BadRequest", f"requested protocol(s) are not supported: {offered(h)}; "
                               f"supports {list(CHANNEL_PROTOCOLS)}"))
    key = h.headers.get("Sec-WebSocket-Key", "")
    if not key:
        raise bad_request("missing Sec-WebSocket-Key")
    query = parse_qs(urlsplit(h.path).query, keep_blank_values=True)
    req = exec_request(h, route, query)
    params = req.params
    if params["stdin"] or params["tty"]:
        return _interactive(h, key, protocol, req, call, lock or threading.RLock())
    resp = call(req, _result(protocol))  # nothing to wait for: fail before the upgrade
    if not resp.ok:
        raise StatusError(resp.body)
    _switch(h, key, protocol)
    ws = Connection(ConnectionType.SERVER)
    body = resp.body if isinstance(resp.body, dict) else {}
    if resp.ok:
        if params["stdout"] and body.get("stdout"):
            _send(h, ws, STDOUT, body["stdout"].encode("utf-8", "surrogateescape"))
        if params["stderr"] and not params["tty"] and body.get("stderr"):
            _send(h, ws, STDERR, body["stderr"].encode("utf-8", "surrogateescape"))
        status = body.get("error") or {"metadata": {}, "status": "Success"}
    else:
        status = body
    _send(h, ws, ERROR, json.dumps(status).encode())
    _close(h, ws)


def _switch(h: Handler, key: str, protocol: str) -> None:
    h.send_response(101, "Switching Protocols")
    h.send_header("Upgrade", "websocket")
    h.send_header("Connection", "Upgrade")
    h.send_header("Sec-WebSocket-Accept", generate_accept_token(key.encode()).decode())
    h.send_header("Sec-WebSocket-Protocol", protocol)
    h.end_headers()
    h.wfile.flush()
    h.close_connection = True


def _send(h: Handler, ws: Connection, channel: int, data: bytes) -> None:
    h.wfile.write(ws.send(BytesMessage(data=bytes([channel]) + data)))
    h.wfile.flush()


def _events(h: Handler, ws: Connection, wlock: Any = None) -> Any:
    """The client's WebSocket events, whole messages only, until it goes away (``wlock``:
    held while the connection's state changes or a reply is written)."""
    guard = wlock if wlock is not None else threading.Lock()
    parts: list[bytes] = []
    while True:
        data = h.rfile.read1(65536)
        with guard:
            ws.receive_data(data or None)
            events = list(ws.events())
            for event in events:
                if isinstance(event, Ping) or (isinstance(event, CloseConnection) and
                                               ws.state == ConnectionState.REMOTE_CLOSING):
                    h.wfile.write(ws.send(event.response()))
                    h.wfile.flush()
        for event in events:
            if isinstance(event, BytesMessage | TextMessage):
                chunk = event.data.encode() if isinstance(event.data, str) else bytes(event.data)
                parts.append(chunk)
                if event.message_finished:
                    yield b"".join(parts)
                    parts = []
            elif isinstance(event, CloseConnection):
                yield None
                return
        if not data:
            yield None
            return


def _interactive(h: Handler, key: str, protocol: str, req: Request, call: Call,
                 lock: Any) -> None:
    """Upgrade, open the runtime's live session, then relay: a reader thread takes the
    client's messages off the socket, this one hands them to the session under the model's
    lock and writes what the process wrote, until it ends or the client goes away."""
    params = req.params
    _switch(h, key, protocol)
    ws = Connection(ConnectionType.SERVER)
    wlock = threading.Lock()  # the reader answers pings while this thread writes
    req.body = {"session": {"stdin": params["stdin"], "tty": params["tty"]}}
    resp = call(req, _result(protocol))
    session = (resp.body or {}).get("session") if resp.ok and isinstance(resp.body, dict) \
        else None
    if session is None:
        with wlock:
            _send(h, ws, ERROR, json.dumps(resp.body if not resp.ok else
                                           {"metadata": {}, "status": "Success"}).encode())
        return _close(h, ws)
    inbox: queue.Queue[bytes | None] = queue.Queue()
    reader = threading.Thread(target=_pump_in, args=(h, ws, wlock, inbox), daemon=True,
                              name="k8sbook-stdin")
    reader.start()
    v5 = protocol.startswith("v5")
    wait_resize = time.monotonic() + FIRST_RESIZE if params["tty"] else 0.0
    gone = False
    try:
        while True:
            try:
                message: bytes | None = inbox.get(timeout=TICK)
            except queue.Empty:
                message = b""
            with lock:
                if message is None:  # the client went away: its stdin ends with it
                    gone = True
                    session.close_stdin()
                elif message:
                    channel, data = message[0], message[1:]
                    if channel == STDIN and params["stdin"]:
                        session.write(data)
                    elif channel == CLOSE and v5 and data[:1] == bytes([STDIN]):
                        session.close_stdin()
                    elif channel == RESIZE:
                        size = json.loads(data or b"{}")
                        session.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
                        wait_resize = 0.0
                if not session.started and time.monotonic() >= wait_resize:
                    session.start()
                out, status = session.read(), session.status
            with wlock:
                for channel, data in out:
                    if (channel == STDOUT and params["stdout"]) or \
                            (channel == STDERR and params["stderr"]):
                        _send(h, ws, channel, data)
                if status is not None:
                    _send(h, ws, ERROR, json.dumps(status).encode())
            if status is not None or gone:
                break
    except (OSError, ValueError):
        return
    if not gone:
        _close(h, ws, reader)


def _pump_in(h: Handler, ws: Connection, wlock: threading.Lock,
             inbox: queue.Queue[bytes | None]) -> None:
    """The client's messages, whole, into ``inbox``; None when it goes away."""
    try:
        for message in _events(h, ws, wlock):
            inbox.put(message)
            if message is None:
                return
    except (OSError, ValueError):
        inbox.put(None)


def _close(h: Handler, ws: Connection, reader: threading.Thread | None = None) -> None:
    """The closing handshake: send Close (1000), wait a moment for the client's (read by
    ``reader`` when a reader thread owns the socket)."""
    try:
        if ws.state == ConnectionState.OPEN:
            h.wfile.write(ws.send(CloseConnection(code=1000)))
            h.wfile.flush()
        if reader is not None:
            reader.join(CLOSE_TIMEOUT)
            return
        h.connection.settimeout(CLOSE_TIMEOUT)
        for message in _events(h, ws):
            if message is None:
                break
    except (OSError, ValueError):
        pass
