"""A throwaway etcd member on loopback, for the real-etcd notebook and differential tests.

Kubernetes has no such package; kubeadm runs etcd as a static pod (``etcd --data-dir
/var/lib/etcd --listen-client-urls https://127.0.0.1:2379,...``). This starts the ``etcd``
binary with its data in a temporary directory and plain HTTP on two free ports (client and
peer), and makes Linux stop it if this process dies (``prctl(PR_SET_PDEATHSIG)``).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Any, Self

from k8sbook.core.clock import Clock
from k8sbook.storage.etcd_client import RealEtcd


def etcd_binary() -> str | None:
    """Where the ``etcd`` binary is, or None: ``$K8SBOOK_ETCD_BINARY`` if set (set it empty to
    pretend there is none), else ``etcd`` on the ``PATH``, else Debian's /usr/bin/etcd."""
    if "K8SBOOK_ETCD_BINARY" in os.environ:
        candidates = [os.environ["K8SBOOK_ETCD_BINARY"]]
    else:
        candidates = [shutil.which("etcd") or "", "/usr/bin/etcd"]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM etcd if its parent dies, so that a killed
    test run or notebook kernel leaves no etcd behind (``prctl(PR_SET_PDEATHSIG)``)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EtcdServer:
    """One etcd member on loopback, with its data in a temporary directory.

    ``start()`` picks two free ports (client and peer, both on 127.0.0.1) the first time and
    keeps them, so ``stop()`` then ``start()`` is a restart of the same member with the same
    data; ``reset()`` starts over with an empty data directory (revision 1); ``close()`` stops
    it and deletes the directory. :meth:`store` connects a :class:`RealEtcd` to it.
    """

    def __init__(self, binary: str | None = None, name: str = "k8sbook",
                 workdir: str | None = None) -> None:
        found = binary or etcd_binary()
        if found is None:
            raise FileNotFoundError(
                "no etcd binary found: install one (Debian: apt-get install etcd-server) or set "
                "K8SBOOK_ETCD_BINARY")
        self.binary = found
        self.name = name
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) \
            else None
        self.workdir = workdir or tempfile.mkdtemp(prefix="k8sbook-etcd-", dir=base)
        os.makedirs(self.workdir, exist_ok=True)
        #: ``--initial-cluster`` (``name=peerURL,...``); None: this member alone
        self.initial_cluster: str | None = None
        self.client_port = _free_port()
        self.peer_port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._atexit = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def data_dir(self) -> str:
        return os.path.join(self.workdir, "data")

    def start(self, timeout: float = 15.0, wait: bool = True) -> Self:
        if self.process is not None and self.process.poll() is None:
            return self
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [self.binary, "--name", self.name, "--data-dir", self.data_dir,
                "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", self.initial_cluster or f"{self.name}={peer}",
                "--initial-cluster-state", "new", "--log-level", "warn",
                # one member on loopback: short raft timers, so that after a restart it elects
                # itself leader in a tenth of a second instead of a second or two
                "--heartbeat-interval", "10", "--election-timeout", "100"]
        with open(os.path.join(self.workdir, "etcd.log"), "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent)  # noqa: PLW1509
        if not self._atexit:
            atexit.register(self.close)
            self._atexit = True
        return self.wait_healthy(timeout) if wait else self

    def wait_healthy(self, timeout: float = 15.0) -> Self:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}; see "
                                   f"{self.workdir}/etcd.log")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"etcd did not become healthy within {timeout:.0f}s")

    def healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=1.0)
            conn.request("GET", "/health")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def stop(self) -> None:
        """Stop etcd (SIGTERM, then SIGKILL after 5 s); its data stays for a restart."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the member dies at once (a stop with SIGTERM lets a leader hand its
        leadership to a peer first, ``TransferLeadership``)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> EtcdServer:
        self.stop()
        return self.start()

    def reset(self) -> EtcdServer:
        """Stop, wipe the data directory, start again: a fresh etcd at revision 1."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.start()

    def store(self, clock: Clock) -> RealEtcd:
        return RealEtcd(self.endpoint, clock)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class EtcdServers:
    """Three (or five) etcd members on loopback forming one cluster, each a :class:`EtcdServer`
    (its own ports and data directory), started together (a member becomes healthy only once a
    quorum has started). ``endpoint``, ``store``, ``stop``/``start``/``restart``/``reset`` act on
    the whole cluster, as :class:`EtcdServer` does on one member; :attr:`members` by name."""

    def __init__(self, size: int = 3, binary: str | None = None) -> None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) \
            else None
        self.workdir = tempfile.mkdtemp(prefix="k8sbook-etcd-cluster-", dir=base)
        self.members = {f"cp-{i}": EtcdServer(binary, f"cp-{i}",
                                              os.path.join(self.workdir, f"cp-{i}"))
                        for i in range(1, size + 1)}
        initial = ",".join(f"{n}=http://127.0.0.1:{m.peer_port}" for n, m in self.members.items())
        for member in self.members.values():
            member.initial_cluster = initial

    @property
    def endpoint(self) -> str:
        """The first member's client URL (what a one-endpoint client dials)."""
        return next(iter(self.members.values())).endpoint

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members.values()]

    @property
    def client_port(self) -> int:
        return next(iter(self.members.values())).client_port

    def start(self, timeout: float = 20.0) -> Self:
        running = [m for m in self.members.values() if m.process is not None]
        waiting = [m.start(wait=False) for m in self.members.values() if m not in running]
        for member in waiting:
            member.wait_healthy(timeout)
        return self

    def stop(self) -> None:
        for member in self.members.values():
            member.stop()

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def reset(self) -> Self:
        """Every member stopped, its data wiped, all started again: a new cluster."""
        self.stop()
        for member in self.members.values():
            shutil.rmtree(member.data_dir, ignore_errors=True)
        return self.start()

    def status(self, name: str) -> dict[str, str]:
        """``Maintenance.Status`` of one member (``header.member_id``, ``leader``, ``raftTerm``)."""
        member = self.members[name]
        conn = http.client.HTTPConnection("127.0.0.1", member.client_port, timeout=2.0)
        conn.request("POST", "/v3/maintenance/status", body="{}")
        out: dict[str, Any] = json.loads(conn.getresponse().read())
        conn.close()
        return {"member_id": out["header"]["member_id"], "leader": out.get("leader", ""),
                "raft_term": out.get("raftTerm", "")}

    def leader(self) -> str | None:
        """The name of the member that says it leads, or None."""
        for name, member in self.members.items():
            if member.process is None:
                continue
            try:
                st = self.status(name)
            except OSError:
                continue
            if st["member_id"] == st["leader"]:
                return name
        return None

    def store(self, clock: Clock) -> RealEtcd:
        return RealEtcd(self.endpoint, clock)

    def close(self) -> None:
        for member in self.members.values():
            member.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
