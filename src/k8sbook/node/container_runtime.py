"""A containerd-like container runtime: pod sandboxes, images, containers, processes.

Mirrors containerd's CRI plugin (``containerd/containerd``, ``internal/cri``) as the kubelet
sees it through the CRI (see :mod:`k8sbook.node.cri`):

* ``RunPodSandbox`` creates a network namespace, has the CNI plugin attach it (path
  ``container-runtime->cni-plugin``, :mod:`k8sbook.node.cni`) and starts the sandbox's ``pause``
  container in it. Every container of the pod then joins that namespace, which is why the
  containers of one pod share one IP address and reach each other on ``localhost``. If the
  CNI plugin fails, the sandbox is torn down again and the call fails with
  ``failed to setup network for sandbox``.
* Containers are started through the OCI runtime (``runc``, driven by
  ``containerd-shim-runc-v2``; path ``container-runtime->oci-runtime``: ``create``, ``start``,
  ``kill``, ``delete``).
* Images are pulled from a registry (:class:`Registry`); pulling one that does not exist fails
  with gRPC ``NotFound`` and containerd's message.

Simplified: pulls and starts take no virtual time; a container runs a tiny "program" read
from its command line (``sleep N``, ``exit N``, ``sleep N; exit M``; anything else runs until
stopped) and serves HTTP on its ``containerPort`` s, answering 200 while healthy and 503 when a
test makes it unhealthy (:meth:`ContainerRuntime.set_healthy`). Applications exit with code 0
on SIGTERM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from k8sbook.client.http import HTTPResponse
from k8sbook.client.network import Address, Network
from k8sbook.core.clock import Clock, Timer
from k8sbook.core.ids import IdGenerator
from k8sbook.core.trace import Trace
from k8sbook.node.cni import BridgePlugin, CNIError

SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"
RUNTIME_VERSION = "2.1.0"
OCI_PROTOCOL = "exec runc (containerd-shim-runc-v2)"

# CRI enums (runtime/v1 api.proto)
SANDBOX_READY, SANDBOX_NOTREADY = "SANDBOX_READY", "SANDBOX_NOTREADY"
CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED = \
    "CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED"


class RPCError(Exception):
    """A CRI call's gRPC error: ``rpc error: code = <code> desc = <desc>``."""

    def __init__(self, code: str, desc: str) -> None:
        super().__init__(f"rpc error: code = {code} desc = {desc}")
        self.code = code
        self.desc = desc


def normalize_image(image: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx:latest``, as containerd's reference parser."""
    name, tag = image, "latest"
    if "@" in name:
        return name
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag}"


@dataclass
class Registry:
    """The image registries the node can reach: every image exists unless marked missing."""

    missing: set[str] = field(default_factory=set)

    def has(self, image: str) -> bool:
        return normalize_image(image) not in {normalize_image(i) for i in self.missing}


@dataclass
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


@dataclass
class Container:
    id: str
    sandbox_id: str
    name: str
    image: str
    attempt: int
    command: list[str]
    ports: list[int]
    state: str = CONTAINER_CREATED
    created_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int = 0
    reason: str = ""
    healthy: bool = True
    timer: Timer | None = None
    logs: list[str] = field(default_factory=list)


_PROGRAM = re.compile(r"^\s*(?:sleep\s+(\d+(?:\.\d+)?)\s*(?:;|&&)?\s*)?(?:exit\s+(\d+))?\s*$")


def program_of(command: list[str]) -> tuple[float | None, int]:
    """How long the container's program runs and how it exits: (seconds or None, code)."""
    text = command[-1] if command and command[:2] in (["sh", "-c"], ["/bin/sh", "-c"]) \
        else " ".join(command)
    m = _PROGRAM.match(text)
    if not command or not m or (m.group(1) is None and m.group(2) is None):
        return None, 0
    if m.group(2) is None:  # "sleep N" alone: exits 0 after N seconds
        return float(m.group(1)), 0
    return float(m.group(1) or 0), int(m.group(2))


class ContainerRuntime:
    """One node's containerd, with its CNI plugin and its OCI runtime."""

    def __init__(self, node: str, clock: Clock, ids: IdGenerator, trace: Trace,
                 cni: BridgePlugin, registry: Registry | None = None, *,
                 network: Network | None = None) -> None:
        self.node = node
        #: where the applications of running containers listen on their pod's IP
        self.network = network
        self.clock = clock
        self.ids = ids
        self.trace = trace
        self.cni = cni
        self.registry = registry if registry is not None else Registry()
        self.images: dict[str, str] = {}  # normalized ref -> image id
        self.sandboxes: dict[str, Sandbox] = {}
        self.containers: dict[str, Container] = {}

    @property
    def instance(self) -> str:
        return f"container-runtime/{self.node}"

    def _id(self) -> str:
        return self.ids.uid().replace("-", "") + self.ids.uid().replace("-", "")[:32]

    def _oci(self, verb: str, cid: str, result: str = "ok") -> None:
        self.trace.record(self.clock.now(), self.instance, f"oci-runtime/{self.node}",
                          "container-runtime->oci-runtime", OCI_PROTOCOL, verb, cid[:13], "",
                          result)

    # -- images ----------------------------------------------------------------------------
    def image_status(self, image: str) -> dict[str, Any] | None:
        ref = normalize_image(image)
        if ref not in self.images:
            return None
        return {"id": self.images[ref], "repoTags": [ref]}

    def pull_image(self, image: str) -> str:
        ref = normalize_image(image)
        if not self.registry.has(image):
            raise RPCError("NotFound", f'failed to pull and unpack image "{ref}": failed '
                                            f'to resolve reference "{ref}": {ref}: not found')
        if ref not in self.images:
            self.images[ref] = "sha256:" + self._id()[:64]
        return self.images[ref]

    # -- sandboxes -------------------------------------------------------------------------
    def run_pod_sandbox(self, config: dict[str, Any]) -> str:
        meta = config["metadata"]
        sid = self._id()
        netns = f"/var/run/netns/cni-{self.ids.uid()}"
        self.pull_image(SANDBOX_IMAGE)
        try:
            result = self.cni.add(sid, netns)
        except CNIError as err:
            # containerd's deferred clean-up: the namespace goes, nothing is left behind
            raise RPCError("Unknown", f'failed to setup network for sandbox "{sid}": '
                                           f'plugin type="{self.cni.type}" name="'
                                           f'k8s-pod-network" failed (add): {err.msg}') from None
        ip = result["ips"][0]["address"].split("/")[0]
        self._oci("create", sid)
        self._oci("start", sid)
        self.sandboxes[sid] = Sandbox(sid, meta["name"], meta["namespace"], meta["uid"],
                                      meta.get("attempt", 0), netns, ip, SANDBOX_READY,
                                      self.clock.now(), config.get("hostname", meta["name"]))
        return sid

    def _sandbox(self, sid: str) -> Sandbox:
        if sid not in self.sandboxes:
            raise RPCError("NotFound", f'an error occurred when try to find sandbox "{sid}":'
                                            " not found")
        return self.sandboxes[sid]

    def stop_pod_sandbox(self, sid: str) -> None:
        sb = self._sandbox(sid)
        for c in self._in(sid):
            if c.state == CONTAINER_RUNNING:
                self._exit(c, 137, "Error", signal="SIGKILL")
        if sb.state == SANDBOX_READY:
            self._oci("kill", sid)
            self.cni.delete(sid, sb.netns)
            sb.state = SANDBOX_NOTREADY

    def remove_pod_sandbox(self, sid: str) -> None:
        if sid not in self.sandboxes:
            return  # removing twice is not an error
        self.stop_pod_sandbox(sid)
        for c in self._in(sid):
            self.remove_container(c.id)
        self._oci("delete", sid)
        del self.sandboxes[sid]

    def pod_sandbox_status(self, sid: str) -> dict[str, Any]:
        sb = self._sandbox(sid)
        return {"id": sb.id, "state": sb.state, "createdAt": sb.created_at,
                "network": {"ip": sb.ip if sb.state == SANDBOX_READY else ""},
                "metadata": {"name": sb.name, "namespace": sb.namespace, "uid": sb.uid,
                             "attempt": sb.attempt}}

    def list_pod_sandbox(self) -> list[dict[str, Any]]:
        return [{"id": s.id, "state": s.state, "metadata": {"uid": s.uid, "name": s.name,
                                                            "namespace": s.namespace}}
                for s in sorted(self.sandboxes.values(), key=lambda s: (s.created_at, s.id))]

    # -- containers ------------------------------------------------------------------------
    def _in(self, sid: str) -> list[Container]:
        return sorted((c for c in self.containers.values() if c.sandbox_id == sid),
                      key=lambda c: (c.created_at, c.id))

    def create_container(self, sid: str, config: dict[str, Any]) -> str:
        sb = self._sandbox(sid)
        if sb.state != SANDBOX_READY:
            raise RPCError("Unknown", f'failed to create containerd container: sandbox '
                                           f'"{sid}" is not running')
        image = config["image"]["image"]
        if normalize_image(image) not in self.images:
            raise RPCError("NotFound", f'failed to get image "{image}": not found')
        cid = self._id()
        meta = config["metadata"]
        self.containers[cid] = Container(
            cid, sid, meta["name"], image, meta.get("attempt", 0),
            list(config.get("command", [])) + list(config.get("args", [])),
            list(config.get("ports", [])), created_at=self.clock.now())
        self._oci("create", cid)
        return cid

    def _container(self, cid: str) -> Container:
        if cid not in self.containers:
            raise RPCError("NotFound", f'an error occurred when try to find container '
                                            f'"{cid}": not found')
        return self.containers[cid]

    def start_container(self, cid: str) -> None:
        c = self._container(cid)
        if c.state != CONTAINER_CREATED:
            raise RPCError("Unknown", f"failed to start container {cid!r}: cannot start "
                                           f"a container in state {c.state}")
        self._oci("start", cid)
        c.state, c.started_at = CONTAINER_RUNNING, self.clock.now()
        c.logs.append(f"{c.name}: started (attempt {c.attempt})")
        self._listen(c)
        seconds, code = program_of(c.command)
        if seconds is not None:
            c.timer = self.clock.call_later(
                seconds, lambda: self._exit(c, code, "Completed" if code == 0 else "Error"),
                label=f"container {c.name} exits")

    def _exit(self, c: Container, code: int, reason: str, signal: str = "") -> None:
        if c.state != CONTAINER_RUNNING:
            return
        if c.timer is not None:
            c.timer.cancel()
        if signal:
            self._oci("kill", c.id, signal)
        c.state, c.exit_code, c.reason = CONTAINER_EXITED, code, reason
        c.finished_at = self.clock.now()
        self._unlisten(c)
        c.logs.append(f"{c.name}: exited with code {code}")

    def stop_container(self, cid: str, timeout: int = 30) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; the model's programs exit on SIGTERM."""
        c = self._container(cid)
        self._exit(c, 0, "Completed", signal="SIGTERM")

    def kill(self, cid: str, exit_code: int = 137, reason: str = "Error") -> None:
        """The process dies on its own (a crash, the OOM killer): no CRI call involved."""
        self._exit(self._container(cid), exit_code, reason)

    def remove_container(self, cid: str) -> None:
        c = self.containers.get(cid)
        if c is None:
            return
        if c.state == CONTAINER_RUNNING:
            self._exit(c, 137, "Error", signal="SIGKILL")
        self._oci("delete", cid)
        del self.containers[cid]

    def container_status(self, cid: str) -> dict[str, Any]:
        c = self._container(cid)
        return {"id": c.id, "metadata": {"name": c.name, "attempt": c.attempt},
                "state": c.state, "createdAt": c.created_at, "startedAt": c.started_at,
                "finishedAt": c.finished_at, "exitCode": c.exit_code, "reason": c.reason,
                "image": {"image": c.image}, "imageRef": self.images.get(normalize_image(c.image),
                                                                        "")}

    def list_containers(self) -> list[dict[str, Any]]:
        return [{"id": c.id, "podSandboxId": c.sandbox_id, "state": c.state,
                 "metadata": {"name": c.name, "attempt": c.attempt}}
                for c in sorted(self.containers.values(), key=lambda c: (c.created_at, c.id))]

    def exec_sync(self, cid: str, cmd: list[str]) -> tuple[int, str]:
        c = self._container(cid)
        if c.state != CONTAINER_RUNNING:
            raise RPCError("Unknown", f"container {cid} is not running")
        self._oci("exec", cid)
        return 0, f"{' '.join(cmd)}: ran in {c.name}\n"

    def streaming_url(self, kind: str, target: str) -> str:
        """A one-time URL on the runtime's streaming server (CRI ``Exec``/``PortForward``)."""
        if kind == "exec":
            c = self._container(target)
            if c.state != CONTAINER_RUNNING:
                raise RPCError("Unknown", f"container {target} is not running")
        else:
            self._sandbox(target)
        token = self.ids.suffix(8)
        return f"http://127.0.0.1:10010/{kind}/{token}"

    def logs(self, cid: str) -> list[str]:
        return list(self._container(cid).logs)

    # -- the network as applications see it ----------------------------------------------
    def _listen(self, c: Container) -> None:
        """The container's program listens on each of its ports, on its pod's IP.

        The model's application answers every HTTP request as agnhost's ``serve-hostname``
        does: ``200`` with the pod's hostname, or ``503`` when the chapter made it unhealthy.
        """
        sb = self.sandboxes.get(c.sandbox_id)
        if self.network is None or sb is None or not sb.ip:
            return
        for port in sorted(set(c.ports)):  # a port given for TCP and UDP is one TCP socket
            try:
                self.network.listen(Address.tcp(sb.ip, port), f"pod/{sb.name}",
                                    lambda req, c=c, sb=sb: self._app(c, sb, req),
                                    protocol="HTTP")
            except OSError as err:  # two containers of one pod on one port
                c.logs.append(f"{c.name}: {err}")
                self._exit(c, 1, "Error")
                return

    def _unlisten(self, c: Container) -> None:
        sb = self.sandboxes.get(c.sandbox_id)
        if self.network is None or sb is None or not sb.ip:
            return
        for port in sorted(set(c.ports)):
            listener = self.network.listener(Address.tcp(sb.ip, port))
            if listener is not None and listener.owner == f"pod/{sb.name}":
                self.network.close(Address.tcp(sb.ip, port))

    @staticmethod
    def _app(c: Container, sb: Sandbox, req: Any) -> HTTPResponse:
        if c.state != CONTAINER_RUNNING:
            return HTTPResponse(502)
        return HTTPResponse(200 if c.healthy else 503, sb.hostname)

    def set_healthy(self, namespace: str, pod: str, healthy: bool,
                    container: str | None = None) -> None:
        """Make the application of a pod's running container(s) answer 200 or 503."""
        for sb in self.sandboxes.values():
            if (sb.namespace, sb.name) == (namespace, pod):
                for c in self._in(sb.id):
                    if container is None or c.name == container:
                        c.healthy = healthy

    def listener(self, sandbox_id: str, port: int) -> Container | None:
        for c in self._in(sandbox_id):
            if c.state == CONTAINER_RUNNING and port in c.ports:
                return c
        return None

    def http_get(self, ip: str, port: int) -> int | None:
        """An HTTP GET to ``ip:port`` from the node: status code, or None if refused."""
        for sb in self.sandboxes.values():
            if sb.ip == ip and sb.state == SANDBOX_READY:
                c = self.listener(sb.id, port)
                if c is None:
                    return None
                return 200 if c.healthy else 503
        return None

    def can_connect(self, from_container: str, host: str, port: int) -> bool:
        """Can a process in ``from_container`` open a TCP connection to ``host:port``?

        ``localhost`` is the container's own network namespace, i.e. its pod's sandbox."""
        src = self._container(from_container)
        if host in ("localhost", "127.0.0.1"):
            return self.listener(src.sandbox_id, port) is not None
        return self.http_get(host, port) is not None
