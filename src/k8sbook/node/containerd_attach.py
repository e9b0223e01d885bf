"""``Attach``: a client's streams joined to a container's main process.

Mirrors containerd's CRI ``Attach`` (``internal/cri/server/container_attach.go``): the
streaming server connects the client's stdin, stdout and stderr to the I/O of the container's
*main* process, the one ``CreateContainer`` started (unlike ``Exec``, which starts another
process through runc). It needs ``stdin: true`` in the container's spec for input (what
``kubectl run -i`` sets). Its output also goes to the container's log file, as all of the main
process's output does.

In the model a main process that is a shell reading its script from stdin (``sh``,
``/bin/sh``, ``ash``, ``bash`` with no ``-c``: ``kubectl run -it --image=busybox -- sh``) runs
what the client writes, and when stdin is closed the shell exits and so does the container
(``Completed``, or ``Error`` with the script's exit code). An interactive attach
(:func:`attach_session`) feeds that shell line by line as the client types: the shell is the
container's own, kept between attaches, and with ``tty: true`` in the container's spec its
stdin and stdout are the container's pseudo-terminal (containerd takes ``tty`` from the
container's config, not from the request); the prompt it printed when the container started
went to the log before anyone attached, which is why ``kubectl run -it`` says "If you don't
see a command prompt, try pressing enter." When a client closes its stdin, the container's
stdin is closed too only if its spec says ``stdinOnce`` (as ``kubectl run -i`` sets it): then
the shell reads the end of its input and exits; otherwise the client just detaches and the
shell waits for the next one. Simplified: any other main program (``sleep``, an
application) writes nothing the model knows of, so an attach to it ends at once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from k8sbook.node import shell
from k8sbook.node.containerd_store import CONTAINER_RUNNING
from k8sbook.node.containerd_streaming import StreamSession, exit_status
from k8sbook.node.cri import RPCError

#: whether the main process is a shell that reads its script from stdin
reads_stdin = shell.reads_script


def attach(runtime: Any, cid: str, stdin: str) -> shell.Result:
    """Join a client to container ``cid``'s main process (a
    :class:`~k8sbook.node.container_runtime.ContainerRuntime`'s container) with all of
    ``stdin`` at once, then close it: :func:`attach_session`, written to and read whole."""
    session = attach_session(runtime, cid, True)
    session.start()
    session.write(stdin.encode("utf-8", "surrogateescape"))
    session.close_stdin()
    chunks = [(ch, data.decode("utf-8", "surrogateescape")) for ch, data in session.read()]
    c = runtime.containers[cid]
    code = c.main_shell.exit_code if c.main_shell is not None else 0
    return shell.Result(code or 0, "".join(t for _, t in chunks),
                        stdout="".join(t for ch, t in chunks if ch == 1),
                        stderr="".join(t for ch, t in chunks if ch == 2))


def start_main_shell(runtime: Any, c: Any) -> None:
    """The main process of container ``c`` is a shell reading stdin: it starts (on the
    container's terminal with ``tty``, where it prints its prompt, which goes to the log)."""
    if c.main_shell is not None or not reads_stdin(c.command):
        return
    proc = dataclasses.replace(c.process, winsize=c.terminal.winsize if c.tty else None)
    c.main_shell = shell.Interactive(proc, interactive=c.tty)
    for _fd, text in c.main_shell.take():
        runtime.log_line(c, text)


def attach_session(runtime: Any, cid: str, stdin: bool) -> StreamSession:
    """An interactive attach to container ``cid``'s main process (see the module's
    docstring): its main shell, made when the first client attaches, fed as input arrives;
    when it exits, so does the container."""
    c = runtime.containers.get(cid)
    if c is None or c.state != CONTAINER_RUNNING:
        raise RPCError("Unknown", f"container {cid} is not running")

    def ended(code: int) -> dict[str, Any]:
        return exit_status([], 0)  # ServeAttach: Success when the streams end
    if not reads_stdin(c.command):
        return StreamSession(tty=c.tty, stdin=stdin, reads=False, shell=None,
                             run=lambda data: shell.Result(0, ""), ended=ended,
                             terminal=c.terminal,
                             running=lambda: c.state == CONTAINER_RUNNING, killed=0)
    start_main_shell(runtime, c)

    def log(text: str) -> None:
        for line in text.splitlines():
            runtime.log_line(c, line)

    def exited(code: int) -> None:
        runtime.kill(cid, code, "Completed" if code == 0 else "Error")
    return StreamSession(tty=c.tty, stdin=stdin, reads=True, shell=c.main_shell,
                         run=lambda data: shell.Result(0, ""), ended=ended, on_exit=exited,
                         terminal=c.terminal, log=log,
                         running=lambda: c.state == CONTAINER_RUNNING, killed=0,
                         detach_on_close=not c.stdin_once)
