"""Serving a watch over HTTP: newline-delimited JSON ``WatchEvent`` objects in a chunked
response.

Mirrors ``k8s.io/apiserver/pkg/endpoints/handlers/watch.go`` (``WatchServer.ServeHTTP``): a
``200`` with ``Transfer-Encoding: chunked``, one JSON event per chunk, flushed as it comes; the
stream ends when the apiserver's watcher ends (a ``timeoutSeconds``, a compaction, a fault
that cuts the connection) or the client goes away, and then the watcher is stopped. With
``Accept: ...;as=Table`` each object is printed as a one-row ``Table``, column definitions in
the first event only (``endpoints/handlers/response.go``). When the client negotiated
protobuf, the stream is ``application/vnd.kubernetes.protobuf;stream=watch``: length-prefixed
``WatchEvent`` frames (:func:`k8sbook.api.protobuf.watch_frame`).
"""

from __future__ import annotations

import json
import queue
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

from k8sbook.api import protobuf

#: one event from the apiserver, or ``None`` when the stream ends
Event = dict[str, Any] | None


def peer_closed(conn: socket.socket) -> bool:
    """True once the client has gone away (readable, and reading gives end-of-file)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return False
        return conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def stream(h: Any, events: queue.Queue[Event], stopping: threading.Event,
           render: Callable[[dict[str, Any], bool], dict[str, Any]] | None = None,
           protobuf_kind: tuple[str, str] | None = None) -> None:
    """Write ``events`` to the HTTP handler ``h`` as a chunked stream until the watch ends,
    the server stops or the client hangs up. ``render(event, first)`` may rewrite an event
    (server-side printing); ``protobuf_kind`` (apiVersion, kind) streams protobuf frames, an
    object without its own ``apiVersion``/``kind`` given the resource's."""
    h.send_response(200)
    h.send_header("Content-Type", protobuf.WATCH_CONTENT_TYPE if protobuf_kind
                  else "application/json")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    h.close_connection = True
    first = True
    try:
        while True:
            try:
                event = events.get(timeout=0.25)
            except queue.Empty:
                if stopping.is_set() or peer_closed(h.connection):
                    break
                continue
            if event is None:
                break
            if render is not None and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                event = render(event, first)
                first = False
            if protobuf_kind is not None:
                obj = event.get("object") or {}
                if "kind" not in obj:
                    obj = {"apiVersion": protobuf_kind[0], "kind": protobuf_kind[1], **obj}
                line = protobuf.watch_frame({"type": event["type"], "object": obj})
            else:
                line = json.dumps(event).encode() + b"\n"
            h.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            h.wfile.flush()
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
    except (BrokenPipeError, ConnectionResetError, OSError):
        pass
