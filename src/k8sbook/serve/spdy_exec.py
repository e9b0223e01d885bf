"""exec and attach over SPDY/3.1: what a client that does not speak WebSockets uses.

Mirrors the SPDY side of ``k8s.io/apimachinery/pkg/util/httpstream/spdy`` (``upgrade.go``:
``Connection: Upgrade`` with ``Upgrade: SPDY/3.1``) and ``httpstream.Handshake`` (the client
lists ``X-Stream-Protocol-Version`` s; the first one the server supports wins, and the answer
``101 Switching Protocols`` names it), then the streams of ``remotecommand``
(``k8s.io/kubelet/pkg/cri/streaming/remotecommand/httpstream.go``): the client opens one SPDY
stream per ``streamType`` header (``error``, ``stdin``, ``stdout``, ``stderr``, ``resize``),
each answered with ``SYN_REPLY``; stdin arrives as data frames and ends with ``FIN``; the
resize stream carries ``{"Width": .., "Height": ..}`` objects one after another; the server
writes the process's output on ``stdout`` and ``stderr`` and, when it ends, the ``Status`` on
``error`` (v4 and v5 alike), then ends its streams with ``FIN``. kubectl uses this when
WebSockets are turned off (``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false``), and older clients
always; upstream's apiserver proxies such an upgrade to the kubelet as it is.

The framing is :mod:`k8sbook.serve.spdy`; the session is the runtime's, opened through the
model's apiserver and kubelet as for WebSockets (:mod:`k8sbook.serve.streams`). Simplified:
the protocols ``v5.channel.k8s.io`` and ``v4.channel.k8s.io`` only (not v1 to v3), and
``SETTINGS`` and flow control (``WINDOW_UPDATE``) are read and ignored.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from k8sbook.api.request import Request, Response
from k8sbook.core.status import StatusError, status_object
from k8sbook.serve import spdy
from k8sbook.serve.http import Handler
from k8sbook.serve.routing import Route

#: the remotecommand protocols served over SPDY, most preferred first
PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
TICK = 0.02
#: how long to wait for the client's streams (``remotecommand``'s stream creation timeout)
STREAM_TIMEOUT = 30.0
STDOUT, STDERR = 1, 2


def is_spdy(h: Handler) -> bool:
    """``Connection: Upgrade`` with ``Upgrade: SPDY/3.1``."""
    return h.headers.get("Upgrade", "").lower() == "spdy/3.1" and \
        "upgrade" in h.headers.get("Connection", "").lower()


def offered(h: Handler) -> list[str]:
    return [p.strip() for v in h.headers.get_all("X-Stream-Protocol-Version") or []
            for p in v.split(",") if p.strip()]


def serve(h: Handler, route: Route, call: Callable[[Request, Callable[[Response], str]],
                                                   Response],
          exec_request: Callable[[Handler, Route, dict[str, list[str]]], Request],
          lock: Any) -> None:
    """Serve one exec or attach over SPDY/3.1 until the process ends or the client goes."""
    protocol = next((p for p in offered(h) if p in PROTOCOLS), None)
    if protocol is None:
        raise StatusError(status_object(
            403, "Forbidden", f"unable to upgrade: unable to negotiate protocol: client "
                              f"supports {offered(h)}, server supports {list(PROTOCOLS)}"))
    req = exec_request(h, route, parse_qs(urlsplit(h.path).query, keep_blank_values=True))
    params = req.params
    req.body = {"session": {"stdin": params["stdin"], "tty": params["tty"]}}
    resp = call(req, lambda r: Response.result(r) if not r.ok else
                f"101 Switching Protocols (SPDY/3.1, {protocol}), streaming")
    session = (resp.body or {}).get("session") if resp.ok and isinstance(resp.body, dict) \
        else None
    if session is None:  # no such pod, container or permission: before the upgrade
        raise StatusError(resp.body if isinstance(resp.body, dict) and not resp.ok else
                          status_object(500, "InternalError", "no stream session"))
    h.send_response(101, "Switching Protocols")
    h.send_header("Connection", "Upgrade")
    h.send_header("Upgrade", "SPDY/3.1")
    h.send_header("X-Stream-Protocol-Version", protocol)
    h.end_headers()
    h.wfile.flush()
    h.close_connection = True
    _relay(h, session, params, lock)


def _read(h: Handler, framer: spdy.Framer, inbox: queue.Queue[spdy.Frame | None]) -> None:
    try:
        while data := h.rfile.read1(65536):
            for frame in framer.feed(data):
                inbox.put(frame)
    except (OSError, ValueError):
        pass
    inbox.put(None)


def _relay(h: Handler, session: Any, params: dict[str, Any], lock: Any) -> None:
    framer = spdy.Framer()
    inbox: queue.Queue[spdy.Frame | None] = queue.Queue()
    threading.Thread(target=_read, args=(h, framer, inbox), daemon=True,
                     name="k8sbook-spdy").start()
    wanted = {"error"} | {name for name, on in (
        ("stdin", params["stdin"]), ("stdout", params["stdout"]),
        ("stderr", params["stderr"] and not params["tty"]), ("resize", params["tty"])) if on}
    streams: dict[str, int] = {}
    kinds: dict[int, str] = {}
    resize = b""
    deadline = time.monotonic() + STREAM_TIMEOUT

    def send(data: bytes) -> None:
        h.wfile.write(data)
        h.wfile.flush()
    try:
        while True:
            try:
                frame = inbox.get(timeout=TICK)
            except queue.Empty:
                frame = spdy.Frame(True, -1, 0)
            if frame is None:
                with lock:
                    session.close_stdin()
                return
            with lock:
                if frame.control and frame.type == spdy.SYN_STREAM:
                    kind = frame.headers.get("streamtype", "")
                    streams[kind], kinds[frame.stream] = frame.stream, kind
                    send(framer.syn_reply(frame.stream))
                elif frame.control and frame.type == spdy.PING:
                    send(framer.ping(frame.value))
                elif frame.control and frame.type == spdy.GOAWAY:
                    session.close_stdin()
                    return
                elif not frame.control and kinds.get(frame.stream) == "stdin":
                    if frame.data:
                        session.write(frame.data)
                    if frame.flags & spdy.FLAG_FIN:
                        session.close_stdin()
                elif not frame.control and kinds.get(frame.stream) == "resize":
                    resize += frame.data
                    sizes, resize = _sizes(resize)
                    for width, height in sizes:
                        session.resize(width, height)
                if not wanted <= set(streams):
                    if time.monotonic() > deadline:
                        return
                    continue
                session.start()
                out, status = session.read(), session.status
            for channel, data in out:
                kind = {STDOUT: "stdout", STDERR: "stderr"}[channel]
                if kind in streams:
                    send(framer.data(streams[kind], data))
            if status is not None:
                send(framer.data(streams["error"], json.dumps(status).encode(), fin=True))
                for kind in ("stdout", "stderr"):
                    if kind in streams:
                        send(framer.data(streams[kind], b"", fin=True))
                send(framer.goaway(max(kinds)))
                return
    except (OSError, ValueError):
        return


def _sizes(buffer: bytes) -> tuple[list[tuple[int, int]], bytes]:
    """The whole ``TerminalSize`` objects at the start of ``buffer``, and what is left."""
    decoder, text, at = json.JSONDecoder(), buffer.decode(), 0
    sizes: list[tuple[int, int]] = []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        try:
            obj, end = decoder.raw_decode(text, at)
        except ValueError:
            return sizes, text[at:].encode()
        sizes.append((int(obj.get("Width", 0)), int(obj.get("Height", 0))))
        at = end
