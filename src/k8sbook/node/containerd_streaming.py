"""containerd's CRI streaming server: the one-time URLs ``Exec`` and ``PortForward`` answer.

Mirrors ``k8s.io/kubelet/pkg/cri/streaming`` as containerd's CRI plugin runs it
(``internal/cri/server/streaming.go``; ``stream_server_address = "127.0.0.1"``): a CRI
``Exec`` or ``PortForward`` call registers a session under a one-time token and returns a URL
on this server; the kubelet's client then connects to that URL, which runs the command
(through runc) or connects to the port inside the sandbox's network namespace. The server
listens on the node's loopback (:func:`loopback`); the runtime service
(:mod:`k8sbook.node.container_runtime`) supplies what a session does.

An exec session's streams (``remotecommand``'s ``stdin``, ``stdout``, ``stderr`` and
``error``) are the request's and the response's bodies: the request carries what the client
wrote on ``stdin`` before closing it, the ``101`` response what the command wrote on
``stdout`` and ``stderr`` and, on ``error``, the ``Status`` that ``ServeExec``
(``remotecommand/exec.go``) writes when the command ends: ``Success``, or ``Failure`` with
reason ``NonZeroExitCode``, a cause of type ``ExitCode`` whose message is the code, and the
message ``command terminated with non-zero exit code: error executing command [sh -c exit 3],
exit code 3`` (containerd's ``streamRuntime.Exec`` wraps a non-zero code so). A port-forward
session's request body carries the bytes the client sent on the forwarded connection
(``data``: an HTTP request, whose path the application answers) and the ``101`` response the
bytes the application wrote back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address
from k8sbook.core.ids import IdGenerator
from k8sbook.node.cri import RPCError
from k8sbook.node.shell import Result
from k8sbook.node.workload import request_path, response_bytes

#: ``k8s.io/apimachinery/pkg/util/remotecommand``: the error stream's reason and cause type
NON_ZERO_EXIT_CODE_REASON, EXIT_CODE_CAUSE_TYPE = "NonZeroExitCode", "ExitCode"


def exit_status(cmd: list[str], code: int) -> dict[str, Any]:
    """The ``Status`` ``ServeExec`` writes on the error stream when the command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    argv = "[" + " ".join(cmd) + "]"  # Go's %v of a []string
    return {"metadata": {}, "status": "Failure",
            "message": "command terminated with non-zero exit code: error executing command "
                       f"{argv}, exit code {code}",
            "reason": NON_ZERO_EXIT_CODE_REASON,
            "details": {"causes": [{"reason": EXIT_CODE_CAUSE_TYPE, "message": str(code)}]}}

#: containerd's ``stream_server_port`` is 0 (any free port); the model fixes one
STREAM_PORT = 10010
STREAM_PROTOCOL = "HTTP streaming (SPDY/WebSocket)"


def loopback(node: str, port: int) -> Address:
    """``127.0.0.1:<port>`` on ``node``: only processes on that node reach it. (The address
    carries the node in its ``path`` so that two nodes' loopbacks are two addresses.)"""
    return Address("127.0.0.1", port, "tcp", node)


class StreamServer:
    """The sessions of one runtime's streaming server. ``exec(container_id, cmd, stdin)`` runs
    a command (a shell :class:`Result`; raises RPCError); ``port_forward(sandbox_id, port,
    path)`` connects inside the sandbox ((status, body) the port answers, or (None, "") if
    nothing listens)."""

    def __init__(self, ids: IdGenerator, exec: Callable[[str, list[str], str], Result],
                 port_forward: Callable[[str, int, str], tuple[int | None, str]],
                 attach: Callable[[str, str], Result] | None = None) -> None:
        self.ids = ids
        self.exec = exec
        self.port_forward = port_forward
        #: ``attach(container_id, stdin)``: the client joins the main process
        self.attach = attach
        #: one-time streaming sessions: token -> (kind, target id, command or port)
        self.sessions: dict[str, tuple[str, str, Any]] = {}

    def url(self, kind: str, target: str, arg: Any = None) -> str:
        """Register a session; its one-time URL."""
        token = self.ids.suffix(8)
        self.sessions[token] = (kind, target, arg)
        return f"http://127.0.0.1:{STREAM_PORT}/{kind}/{token}"

    def serve(self, req: HTTPRequest) -> HTTPResponse:
        """``/exec/<token>`` runs the command through runc and streams back its output and
        exit code (``/attach/<token>``: the main process's, :mod:`.containerd_attach`); ``/portforward/<token>`` connects to the port inside the sandbox's network
        namespace."""
        token = req.path.rstrip("/").rsplit("/", 1)[-1]
        session = self.sessions.pop(token, None)
        if session is None:
            return HTTPResponse(404, {"message": "unknown or expired session"})
        kind, target, arg = session
        if kind in ("exec", "attach"):
            cmd = list(arg or [])
            stdin = str((req.body or {}).get("stdin", "")) if isinstance(req.body, dict) else ""
            try:
                if kind == "attach" and self.attach is not None:
                    out = self.attach(target, stdin)
                else:
                    out = self.exec(target, cmd, stdin)
            except RPCError as err:
                return HTTPResponse(500, {"message": str(err)})
            # ServeAttach writes Success when the streams end (no exit code: the process is
            # the container's own); ServeExec the command's exit status
            ended = exit_status(cmd, out.exit_code) if kind == "exec" else exit_status([], 0)
            return HTTPResponse(101, {"output": out.output, "exitCode": out.exit_code,
                                      "stdout": out.stdout, "stderr": out.stderr,
                                      "error": ended})
        raw = str((req.body or {}).get("data", "")) if isinstance(req.body, dict) else ""
        status, answer = self.port_forward(target, int(arg), request_path(raw))
        if status is None:
            return HTTPResponse(500, {"message": f"failed to connect to localhost:{arg} "
                                                 f"inside namespace \"{target[:13]}\": "
                                                 "connection refused"})
        # the bytes the application wrote back on the forwarded connection
        return HTTPResponse(101, {"status": status, "data": response_bytes(status, answer)})
