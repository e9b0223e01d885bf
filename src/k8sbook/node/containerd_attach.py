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
(``Completed``, or ``Error`` with the script's exit code). Simplified: any other main program
(``sleep``, an application) writes nothing the model knows of, so an attach to it ends at once.
"""

from __future__ import annotations

from typing import Any

from k8sbook.node import shell
from k8sbook.node.containerd_store import CONTAINER_RUNNING
from k8sbook.node.cri import RPCError

SHELLS = ("sh", "ash", "bash")


def reads_stdin(command: list[str]) -> bool:
    """Whether the main process is a shell that reads its script from stdin."""
    return bool(command) and command[0].rsplit("/", 1)[-1] in SHELLS and "-c" not in command


def attach(runtime: Any, cid: str, stdin: str) -> shell.Result:
    """Join a client to container ``cid``'s main process (a
    :class:`~k8sbook.node.container_runtime.ContainerRuntime`'s container)."""
    c = runtime.containers.get(cid)
    if c is None or c.state != CONTAINER_RUNNING:
        raise RPCError("Unknown", f"container {cid} is not running")
    if not reads_stdin(c.command):
        return shell.Result(0, "")
    disk, sb = runtime.filesystem, runtime.sandboxes[c.sandbox_id]
    proc = shell.Process(lambda p: c.read(disk, p), dict(c.env), sb.hostname, None,
                         lambda p, t: c.write(disk, p, t), lambda: c.paths(disk))
    out = shell.run(list(c.command), proc, stdin)
    for line in out.output.splitlines():
        runtime.log_line(c, line)
    runtime.kill(cid, out.exit_code, "Completed" if out.exit_code == 0 else "Error")
    return out
