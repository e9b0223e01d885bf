"""The kubeconfig ``k8sbook serve`` writes, the real kubectl run against it, and how to read
kubectl's requests on the model's trace.

Mirrors kubeadm's ``admin.conf`` (``cmd/kubeadm/app/phases/kubeconfig``): cluster
``kubernetes`` with the cluster CA, user ``kubernetes-admin`` with a client certificate (CN
``kubernetes-admin``, O ``kubeadm:cluster-admins``), context ``kubernetes-admin@kubernetes``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from k8sbook.core.trace import Message
from k8sbook.serve.certs import PKI


def kubeconfig(server: str, pki: PKI, namespace: str = "default") -> dict[str, Any]:
    """kubeadm's ``admin.conf`` for ``server``."""
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "kubernetes", "cluster": {
                "server": server,
                "certificate-authority-data": b64(pki.ca.cert_pem)}}],
            "users": [{"name": "kubernetes-admin", "user": {
                "client-certificate-data": b64(pki.admin.cert_pem),
                "client-key-data": b64(pki.admin.key_pem)}}],
            "contexts": [{"name": "kubernetes-admin@kubernetes",
                          "context": {"cluster": "kubernetes", "user": "kubernetes-admin",
                                      "namespace": namespace}}],
            "current-context": "kubernetes-admin@kubernetes"}


def write_kubeconfig(config: dict[str, Any], path: str | Path) -> Path:
    """Write a kubeconfig (JSON, which is YAML too) readable only by its owner."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(config, indent=2) + "\n")
    p.chmod(0o600)
    return p


def kubectl(kubeconfig: str | Path, *args: str, stdin: str | None = None,
            timeout: float = 30) -> str:
    """Run the real ``kubectl`` against a kubeconfig; return what it printed (stdout, then
    stderr), as a reader would see it in a terminal."""
    binary = shutil.which("kubectl")
    if binary is None:
        raise FileNotFoundError("kubectl is not on PATH")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)
    return (proc.stdout + proc.stderr).rstrip("\n")


def ticking(advance: Callable[[float], None], seconds: float, step: float = 0.5,
            pause: float = 0.05) -> Callable[[], None]:
    """A ``during`` for :func:`kubectl_while`: move virtual time on by ``seconds`` in steps of
    ``step``, pausing between steps so that kubectl sees each state as it comes."""
    def run() -> None:
        done = 0.0
        while done < seconds:
            advance(step)
            done += step
            time.sleep(pause)
    return run


def kubectl_while(kubeconfig: str | Path, *args: str, during: Callable[[], None],
                  settle: float = 1.0, timeout: float = 30, stop: bool = False,
                  stdin: str | None = None) -> str:
    """Start the real ``kubectl`` (a command that keeps running, such as ``logs -f`` or
    ``port-forward``) with ``stdin`` written and closed, wait ``settle`` seconds for it to
    connect, call ``during()`` (advance virtual time, connect to a forwarded port), then
    (``stop``: after stopping it, as ^C does) return what it printed once it ends."""
    binary = shutil.which("kubectl")
    if binary is None:
        raise FileNotFoundError("kubectl is not on PATH")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    with subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                          text=True, env=env) as proc:
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
            proc.stdin = None  # written and closed: communicate() has nothing more to send
        time.sleep(settle)
        try:
            during()
        finally:
            if stop:
                proc.terminate()
        out, err = proc.communicate(timeout=timeout)
    return (out + err).rstrip("\n")


def kubectl_terminal(kubeconfig: str | Path, *args: str, keys: list[tuple[str, str]],
                     rows: int = 24, cols: int = 80, during: Callable[[], None] | None = None,
                     timeout: float = 30) -> tuple[str, int]:
    r"""Run the real ``kubectl`` on a pseudo-terminal of ``rows`` x ``cols`` (the standard
    library's :mod:`pty`), as in a learner's terminal (``exec -it``, ``run -it``,
    ``attach -it``): for each ``(wait, type)`` of ``keys``, wait until the screen shows
    ``wait`` (a prompt), then type ``type`` (``\r`` is the Enter key, ``\x04`` ^D,
    ``\x03`` ^C); ``during()`` runs meanwhile in a thread (to move virtual time while kubectl
    waits for a pod). With ``-t`` a key is typed only once kubectl has put the terminal in
    raw mode (before, the terminal itself would echo it). Returns what the terminal showed
    (its ``\r\n`` as ``\n``) and kubectl's exit code, once it has ended."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import threading

    binary = shutil.which("kubectl")
    if binary is None:
        raise FileNotFoundError("kubectl is not on PATH")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen([binary, *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True)
    os.close(slave)
    mover = threading.Thread(target=during, daemon=True) if during is not None else None
    if mover is not None:
        mover.start()
    screen, seen, pending = b"", 0, list(keys)
    deadline = time.monotonic() + timeout
    tty = bool({"-t", "-it", "-ti", "--tty", "--tty=true"} & set(args))

    def raw() -> bool:  # with -t kubectl puts the terminal in raw mode before it streams
        return not tty or not termios.tcgetattr(master)[3] & termios.ICANON
    try:
        while time.monotonic() < deadline:
            if pending and pending[0][0].encode() in screen[seen:] and raw():
                wait, typed = pending.pop(0)
                seen = screen.index(wait.encode(), seen) + len(wait.encode())
                os.write(master, typed.encode())
                continue
            if select.select([master], [], [], 0.05)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: kubectl has exited and closed the terminal
                    data = b""
                if not data:
                    break
                screen += data
    finally:
        code = proc.wait(timeout=timeout)
        os.close(master)
        if mover is not None:
            mover.join(timeout)
    return screen.decode("utf-8", "replace").replace("\r\n", "\n"), code


def with_etcd_calls(messages: list[Message], src: str = "kubectl") -> list[Message]:
    """The requests ``src`` sent, each followed by the etcd calls kube-apiserver made to
    serve it (recorded right after the request, as the apiserver is single-threaded)."""
    out: list[Message] = []
    following = False
    for m in messages:
        if m.src == src:
            following = True
            out.append(m)
        elif following and (m.src, m.dst) == ("kube-apiserver", "etcd"):
            out.append(m)
        else:
            following = False
    return out
