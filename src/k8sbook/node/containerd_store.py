"""What containerd's CRI plugin remembers: its pod sandboxes and containers, and the CRI enums.

Mirrors containerd's ``internal/cri/store`` (``store/sandbox``, ``store/container``: one
record per sandbox and per container, with its metadata and status) and the state enums of the
CRI's ``runtime/v1/api.proto``. The services that read and write these records are
:mod:`k8sbook.node.container_runtime` (the runtime service),
:mod:`k8sbook.node.containerd_sandbox` (the pod sandbox controller) and
:mod:`k8sbook.node.containerd_images` (the image service).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.core.clock import Timer
from k8sbook.core.ids import IdGenerator

RUNTIME_VERSION = "2.1.0"
SANDBOXES_DIR = "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes"

# CRI enums (runtime/v1 api.proto)
SANDBOX_READY, SANDBOX_NOTREADY = "SANDBOX_READY", "SANDBOX_NOTREADY"
CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED = \
    "CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED"


def new_id(ids: IdGenerator) -> str:
    """A fresh 64-hex-digit id, as containerd gives sandboxes, containers and images."""
    return ids.uid().replace("-", "") + ids.uid().replace("-", "")[:32]


@dataclass(slots=True)
class Sandbox:
    id: str
    name: str
    namespace: str
    uid: str
    attempt: int
    netns: str
    ip: str
    state: str
    created_at: float
    hostname: str
    log_directory: str = ""


@dataclass(slots=True)
class Container:
    id: str
    sandbox_id: str
    name: str
    image: str
    attempt: int
    command: list[str]
    ports: list[int]
    env: dict[str, str] = field(default_factory=dict)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    state: str = CONTAINER_CREATED
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    healthy: bool = True
    timer: Timer | None = None
    logs: list[str] = field(default_factory=list)
    #: the file the container's output goes to (``logDirectory``/``logPath``)
    log_file: str = ""
    #: what its processes see (the bundle ``runc create`` got: files, env, hostname, dialer)
    process: Any = None
    #: when each line of :attr:`logs` was written (virtual time)
    log_times: list[float] = field(default_factory=list)
    #: the container's writable layer (the snapshotter's upper directory): files its
    #: processes wrote outside any mount, by path
    rootfs: dict[str, str] = field(default_factory=dict)
    #: the CRI config's ``tty``, ``stdin`` and ``stdin_once``
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    #: the main process's pseudo-terminal (``tty``) and, once a client attached, the main
    #: shell reading its stdin (:mod:`k8sbook.node.containerd_attach`)
    terminal: Any = None
    main_shell: Any = None

    def add_log(self, line: str, at: float) -> None:
        self.logs.append(line)
        self.log_times.append(at)

    def log_text(self, stamp: Callable[[float], str]) -> str:
        """The log file in the CRI logging format the shim writes
        (``<RFC3339Nano> stdout F <line>``, ``k8s.io/cri-api`` logging.md)."""
        return "".join(f"{stamp(t)} stdout F {line}\n"
                       for t, line in zip(self.log_times, self.logs, strict=True))

    def host_path(self, path: str) -> str | None:
        """Where on the node's disk the container's ``path`` is: through its mounts (the
        longest mount path first), or None (the model's images hold no other files)."""
        for m in sorted(self.mounts, key=lambda m: -len(m["containerPath"])):
            inside = m["containerPath"].rstrip("/")
            if path == inside or path.startswith(inside + "/"):
                return str(m["hostPath"].rstrip("/") + path[len(inside):])
        return None

    def read(self, disk: dict[str, str], path: str) -> str | None:
        """A file as the container sees it: through a mount from the node's ``disk``, else
        from its writable layer."""
        host = self.host_path(path)
        return disk.get(host) if host is not None else self.rootfs.get(path)

    def write(self, disk: dict[str, str], path: str, text: str) -> bool:
        """Write a file: into a writable mount (on the node's disk) or the writable layer;
        False for a read-only mount."""
        for m in sorted(self.mounts, key=lambda m: -len(m["containerPath"])):
            inside = m["containerPath"].rstrip("/")
            if path == inside or path.startswith(inside + "/"):
                if m.get("readonly"):
                    return False
                disk[str(m["hostPath"].rstrip("/") + path[len(inside):])] = text
                return True
        self.rootfs[path] = text
        return True

    def paths(self, disk: dict[str, str]) -> list[str]:
        """Every file the container sees: its mounts' files and its writable layer's."""
        seen = set(self.rootfs)
        for m in self.mounts:
            host, inside = m["hostPath"].rstrip("/"), m["containerPath"].rstrip("/")
            seen.update(inside + p[len(host):] for p in disk
                        if p == host or p.startswith(host + "/"))
        return sorted(p for p in seen if self.read(disk, p) is not None)
