"""containerd's CRI streaming server: the one-time URLs ``Exec`` and ``PortForward`` answer.

Mirrors ``k8s.io/kubelet/pkg/cri/streaming`` as containerd's CRI plugin runs it
(``internal/cri/server/streaming.go``; ``stream_server_address = "127.0.0.1"``): a CRI
``Exec`` or ``PortForward`` call registers a session under a one-time token and returns a URL
on this server; the kubelet's client then connects to that URL, which runs the command
(through runc) or connects to the port inside the sandbox's network namespace. The server
listens on the node's loopback (:func:`loopback`); the runtime service
(:mod:`k8sbook.node.container_runtime`) supplies what a session does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address
from k8sbook.core.ids import IdGenerator
from k8sbook.node.cri import RPCError

#: containerd's ``stream_server_port`` is 0 (any free port); the model fixes one
STREAM_PORT = 10010
STREAM_PROTOCOL = "HTTP streaming (SPDY/WebSocket)"


def loopback(node: str, port: int) -> Address:
    """``127.0.0.1:<port>`` on ``node``: only processes on that node reach it. (The address
    carries the node in its ``path`` so that two nodes' loopbacks are two addresses.)"""
    return Address("127.0.0.1", port, "tcp", node)


class StreamServer:
    """The sessions of one runtime's streaming server. ``exec(container_id, cmd)`` runs a
    command ((exit code, output); raises RPCError); ``port_forward(sandbox_id, port)``
    connects inside the sandbox (the status the port answers, or None if nothing listens)."""

    def __init__(self, ids: IdGenerator, exec: Callable[[str, list[str]], tuple[int, str]],
                 port_forward: Callable[[str, int], int | None]) -> None:
        self.ids = ids
        self.exec = exec
        self.port_forward = port_forward
        #: one-time streaming sessions: token -> (kind, target id, command or port)
        self.sessions: dict[str, tuple[str, str, Any]] = {}

    def url(self, kind: str, target: str, arg: Any = None) -> str:
        """Register a session; its one-time URL."""
        token = self.ids.suffix(8)
        self.sessions[token] = (kind, target, arg)
        return f"http://127.0.0.1:{STREAM_PORT}/{kind}/{token}"

    def serve(self, req: HTTPRequest) -> HTTPResponse:
        """``/exec/<token>`` runs the command through runc and streams back its output and
        exit code; ``/portforward/<token>`` connects to the port inside the sandbox's network
        namespace."""
        token = req.path.rstrip("/").rsplit("/", 1)[-1]
        session = self.sessions.pop(token, None)
        if session is None:
            return HTTPResponse(404, {"message": "unknown or expired session"})
        kind, target, arg = session
        if kind == "exec":
            try:
                code, output = self.exec(target, list(arg or []))
            except RPCError as err:
                return HTTPResponse(500, {"message": str(err)})
            return HTTPResponse(101, {"output": output, "exitCode": code})
        status = self.port_forward(target, int(arg))
        if status is None:
            return HTTPResponse(500, {"message": f"failed to connect to localhost:{arg} "
                                                 f"inside namespace \"{target[:13]}\": "
                                                 "connection refused"})
        return HTTPResponse(101, {"status": status})
