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
exit code 3`` (containerd's ``streamRuntime.Exec`` wraps a non-zero code so). An *interactive* session (the request body ``{"session": {"stdin": ..., "tty": ...}}``, what
the apiserver's stream translator opens for a WebSocket client) answers ``101`` with a
:class:`StreamSession` instead, whose streams flow as the client writes: a shell that reads
its script from stdin (``sh``; for ``attach``, the container's main ``sh``) is started at once
(``runc exec`` of a live process) and runs each line as it arrives; a command that reads stdin
until its end (``cat``, ``tar x``) runs when stdin ends; any other command runs at once. With
``tty`` the process's stdin, stdout and stderr are a pseudo-terminal
(:mod:`k8sbook.node.tty`): what the client types is echoed and edited there, ^C interrupts,
^D at the start of a line ends the input, stdout and stderr come back merged on stdout, and
``resize`` sets the window size (the resize stream, ``ResizePty``). A port-forward
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
from k8sbook.node.shell import Interactive, Result, reads_script, reads_stdin
from k8sbook.node.tty import Terminal
from k8sbook.node.workload import request_path, response_bytes

STDOUT, STDERR = 1, 2


class StreamSession:
    """The streams of one interactive exec or attach session (``remotecommand``'s
    ``streamProtocolHandler`` on the runtime's side). ``shell`` is the live process when it is
    a shell reading stdin; otherwise ``run(stdin)`` runs the command (at once, or when stdin
    ends if it reads it). ``ended(code)`` gives the error stream's Status; ``on_exit(code)``
    is told when a shell exits (an attached main process ends its container), ``log(text)``
    of what the process writes (an attached main process's output goes to its log too).
    Nothing runs before :meth:`start`, so that a resize the client sent first applies."""

    def __init__(self, *, tty: bool, stdin: bool, reads: bool, shell: Interactive | None,
                 run: Callable[[str], Result], ended: Callable[[int], dict[str, Any]],
                 on_exit: Callable[[int], None] | None = None,
                 terminal: Terminal | None = None,
                 log: Callable[[str], None] | None = None,
                 running: Callable[[], bool] | None = None, killed: int = 137,
                 detach_on_close: bool = False) -> None:
        self.tty, self.stdin, self.reads = tty, stdin, reads
        self.detach_on_close = detach_on_close
        #: whether the container still runs; when it stops, so does the process (its status
        #: then is ``ended(killed)``: 137, SIGKILL, for an exec'd process)
        self.running, self.killed = running, killed
        self.terminal = (terminal or Terminal()) if tty else None
        self.shell, self.run, self.ended, self.on_exit, self.log = shell, run, ended, on_exit, log
        self.out: list[tuple[int, bytes]] = []
        self.buffer: list[str] = []  # stdin of a command that reads it to its end
        #: the error stream's ``Status`` once the process has ended (None while it runs)
        self.status: dict[str, Any] | None = None
        self.started = False

    def start(self) -> None:
        """The process's first output (a shell's prompt), or the whole run of a command that
        does not wait for stdin."""
        if self.started:
            return
        self.started = True
        if self.shell is not None:
            self._drain()
        elif not (self.stdin and self.reads):
            self._finish(self.run(""))

    @property
    def done(self) -> bool:
        return self.status is not None

    def _emit(self, channel: int, text: str) -> None:
        if not text:
            return
        if self.log is not None:
            self.log(text)
        if self.terminal is not None:
            channel, text = STDOUT, self.terminal.output(text)
        self.out.append((channel, text.encode("utf-8", "surrogateescape")))

    def _drain(self) -> None:
        assert self.shell is not None
        for fd, text in self.shell.take():
            self._emit(fd, text)
        if self.shell.exit_code is not None and self.status is None:
            code = self.shell.exit_code
            self.status = self.ended(code)
            if self.on_exit is not None:
                self.on_exit(code)

    def _finish(self, result: Result) -> None:
        self._emit(STDOUT, result.stdout)
        self._emit(STDERR, result.stderr)
        self.status = self.ended(result.exit_code)

    def _deliver(self, text: str, eof: bool = False, intr: bool = False) -> None:
        self.start()
        if self.done:
            return
        if self.shell is not None:
            if intr:
                self.shell.interrupt()
            else:
                self.shell.feed(text)
                if eof:
                    self.shell.eof()
            self._drain()
        elif intr:
            self.status = self.ended(130)  # SIGINT ends the command
        else:
            self.buffer.append(text)
            if eof:
                self._finish(self.run("".join(self.buffer)))

    def write(self, data: bytes) -> None:
        """What the client wrote on stdin."""
        text = data.decode("utf-8", "surrogateescape")
        if self.terminal is None:
            self._deliver(text)
            return
        echo, events = self.terminal.input(text)
        if echo and not self.done:
            self.out.append((STDOUT, echo.encode("utf-8", "surrogateescape")))
        for event in events:
            self._deliver(event.text, eof=event.kind == "eof", intr=event.kind == "intr")

    def close_stdin(self) -> None:
        """The client closed stdin (v5's close message, or the connection ended). With
        ``detach_on_close`` (an attach to a container without ``stdinOnce``) the process's
        stdin stays open: the client only detaches, and the session ends."""
        if self.detach_on_close:
            if self.status is None:
                self.status = self.ended(0)
            return
        if self.terminal is not None:
            self._deliver("".join(self.terminal.line), eof=True)
            self.terminal.line.clear()
        else:
            self._deliver("", eof=True)

    def resize(self, width: int, height: int) -> None:
        """``ResizePty``: the client's terminal size (ignored without a terminal)."""
        if self.terminal is not None:
            self.terminal.resize(width, height)

    def read(self) -> list[tuple[int, bytes]]:
        """What the process wrote since the last read: (channel, bytes) pairs."""
        if self.status is None and self.running is not None and not self.running():
            self.status = self.ended(self.killed)
        out, self.out = self.out, []
        return out

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
                 attach: Callable[[str, str], Result] | None = None,
                 open_session: Callable[[str, str, list[str], dict[str, Any]],
                                        StreamSession] | None = None) -> None:
        self.ids = ids
        self.exec = exec
        self.port_forward = port_forward
        #: ``attach(container_id, stdin)``: the client joins the main process
        self.attach = attach
        #: ``open_session(kind, container_id, cmd, {"stdin": .., "tty": ..})``
        self.open_session = open_session
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
        if kind in ("exec", "attach") and isinstance(req.body, dict) and \
                isinstance(req.body.get("session"), dict) and self.open_session is not None:
            try:
                live = self.open_session(kind, target, list(arg or []), req.body["session"])
            except RPCError as err:
                return HTTPResponse(500, {"message": str(err)})
            return HTTPResponse(101, {"session": live})
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


def exec_session(cmd: list[str], opts: dict[str, Any], *,
                 start: Callable[[Callable[[], tuple[int, int]] | None], Interactive],
                 run: Callable[[str, Callable[[], tuple[int, int]] | None], Result],
                 running: Callable[[], bool] | None = None) -> StreamSession:
    """An interactive exec session of ``cmd`` (``opts``: the client's ``stdin`` and
    ``tty``): a shell reading stdin is ``start(winsize)``-ed as a live process, any other
    command is ``run(stdin, winsize)`` (``runc exec``)."""
    tty, stdin = bool(opts.get("tty")), bool(opts.get("stdin"))
    terminal = Terminal()
    winsize = terminal.winsize if tty else None

    def ended(code: int) -> dict[str, Any]:
        return exit_status(cmd, code)
    if stdin and reads_script(cmd):
        return StreamSession(tty=tty, stdin=True, reads=True, shell=start(winsize),
                             run=lambda data: Result(0, ""), ended=ended, terminal=terminal,
                             running=running)
    return StreamSession(tty=tty, stdin=stdin, reads=reads_stdin(cmd), shell=None,
                         run=lambda data: run(data, winsize), ended=ended, terminal=terminal,
                         running=running)
