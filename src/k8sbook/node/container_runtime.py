"""A containerd-like container runtime: pod sandboxes, images, containers, processes.

Mirrors containerd's CRI plugin (``containerd/containerd`` v2.1, ``internal/cri``) as the
kubelet sees it through the CRI (see :mod:`k8sbook.node.cri`). Its CRI server listens on
``Address.unix(node, "/run/containerd/containerd.sock")``; its streaming server (what
``Exec`` and ``PortForward`` answer URLs on: containerd's ``stream_server_address =
"127.0.0.1"``) listens on the node's loopback (:func:`loopback`).

* ``RunPodSandbox`` creates a network namespace, executes the CNI plugin to attach it (path
  ``container-runtime->cni-plugin``, :mod:`k8sbook.node.cni`), writes the sandbox's
  ``hostname`` and ``resolv.conf`` (from the ``DNSConfig`` the kubelet sent; the node's own
  ``/etc/resolv.conf`` when it sent none) under
  ``/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/<id>/``, and starts the sandbox's
  ``pause`` container. Every container of the pod joins that namespace, which is why the
  containers of one pod share one IP address and reach each other on ``localhost``. If the
  CNI plugin fails, the sandbox is torn down again and the call fails with ``failed to setup
  network for sandbox``.
* ``CreateContainer`` mounts the sandbox's ``/etc/hostname`` and ``/etc/resolv.conf`` into
  the container, plus the kubelet's mounts (``/etc/hosts``, volumes such as the
  service-account token), and sets ``PATH``, ``HOSTNAME`` and the kubelet's ``envs``.
* Containers are run by the OCI runtime (``runc``, driven by ``containerd-shim-runc-v2``;
  path ``container-runtime->oci-runtime``: ``create``, ``start``, ``kill``, ``delete``,
  ``exec``). ``exec`` runs the command in the container (:mod:`k8sbook.node.shell`): its
  output is what the container's files and environment hold.
* Images are pulled from a registry (:class:`Registry`); pulling one that does not exist fails
  with gRPC ``NotFound`` and containerd's message.

Simplified: pulls and starts take no virtual time; a container's main process runs a tiny
"program" read from its command line (``sleep N``, ``exit N``, ``sleep N; exit M``; anything
else runs until stopped) and serves HTTP on its ``containerPort`` s, answering 200 while
healthy and 503 when a test makes it unhealthy (:meth:`ContainerRuntime.set_healthy`).
Applications exit with code 0 on SIGTERM.

This module is over 400 lines because containerd's CRI service is one service (sandboxes,
containers, images and streaming share its state); the OCI runtime, the CNI plugin and the
shell are in their own modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError, Network
from k8sbook.core.clock import Clock, Timer
from k8sbook.core.ids import IdGenerator
from k8sbook.node import shell
from k8sbook.node.cni import CNIError, CNIRequest, exec_plugin
from k8sbook.node.cri import CRI_SOCKET, PROTOCOL, CRIRequest, RPCError
from k8sbook.node.dns import DNSConfig, format_resolv_conf
from k8sbook.node.runc import OCI_PROTOCOL, RUNC_PATH, OCIRequest, oci_result

__all__ = [
    "CONTAINER_CREATED",
    "CONTAINER_EXITED",
    "CONTAINER_RUNNING",
    "SANDBOX_NOTREADY",
    "SANDBOX_READY",
    "ContainerProcess",
    "ContainerRuntime",
    "RPCError",
    "Registry",
    "loopback",
    "normalize_image",
    "program_of",
]

SANDBOX_IMAGE = "registry.k8s.io/pause:3.10"
RUNTIME_VERSION = "2.1.0"
#: containerd's ``stream_server_port`` is 0 (any free port); the model fixes one
STREAM_PORT = 10010
STREAM_PROTOCOL = "HTTP streaming (SPDY/WebSocket)"
SANDBOXES_DIR = "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes"
#: the ``PATH`` of the model's images (Debian's and BusyBox's default)
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# CRI enums (runtime/v1 api.proto)
SANDBOX_READY, SANDBOX_NOTREADY = "SANDBOX_READY", "SANDBOX_NOTREADY"
CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED = \
    "CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED"


def loopback(node: str, port: int) -> Address:
    """``127.0.0.1:<port>`` on ``node``: only processes on that node reach it. (The address
    carries the node in its ``path`` so that two nodes' loopbacks are two addresses.)"""
    return Address("127.0.0.1", port, "tcp", node)


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
    log_directory: str = ""


@dataclass
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


@dataclass(frozen=True)
class ContainerProcess:
    """A process in a running container, as a workload's code sees its world: its files,
    its environment, its pod's IP and node (what :func:`k8sbook.client.in_cluster.
    in_cluster_client` runs in)."""

    instance: str
    node: str
    pod_ip: str
    env: dict[str, str]
    runtime: ContainerRuntime
    container_id: str

    def read_file(self, path: str) -> str | None:
        return self.runtime.read_file(self.container_id, path)


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
    """One node's containerd. It reaches its CNI plugin and runc only by executing them
    (dials to their ``exec`` addresses); ``filesystem`` is the node's disk, shared with the
    kubelet (volumes the kubelet writes are bind-mounted from it)."""

    def __init__(self, node: str, network: Network, clock: Clock, ids: IdGenerator, *,
                 filesystem: dict[str, str] | None = None, registry: Registry | None = None,
                 cni_type: str = "bridge") -> None:
        self.node = node
        self.network = network
        self.clock = clock
        self.ids = ids
        self.filesystem = filesystem if filesystem is not None else {}
        self.cni_type = cni_type
        self.registry = registry if registry is not None else Registry()
        self.images: dict[str, str] = {}  # normalized ref -> image id
        self.sandboxes: dict[str, Sandbox] = {}
        self.containers: dict[str, Container] = {}
        #: one-time streaming sessions: token -> (kind, target id, command or port)
        self._sessions: dict[str, tuple[str, str, Any]] = {}

    @property
    def instance(self) -> str:
        return f"container-runtime/{self.node}"

    @property
    def cri_address(self) -> Address:
        return Address.unix(self.node, CRI_SOCKET)

    @property
    def stream_address(self) -> Address:
        return loopback(self.node, STREAM_PORT)

    def start(self) -> ContainerRuntime:
        """containerd starts: its CRI socket and its streaming server listen."""
        self.network.listen(self.cri_address, self.instance, self.serve_cri,
                            protocol=PROTOCOL)
        self.network.listen(self.stream_address, self.instance, self.serve_stream,
                            protocol=STREAM_PROTOCOL)
        return self

    def stop(self) -> None:
        self.network.close(self.cri_address)
        self.network.close(self.stream_address)

    def _id(self) -> str:
        return self.ids.uid().replace("-", "") + self.ids.uid().replace("-", "")[:32]

    def _oci(self, verb: str, cid: str, *, bundle: shell.Process | None = None,
             argv: list[str] | None = None, signal: str = "") -> Any:
        """Execute ``runc <verb> <id>``."""
        return self.network.dial(self.instance, Address.exec(self.node, RUNC_PATH),
                                 OCIRequest(verb, cid, bundle, tuple(argv or ()), signal),
                                 protocol=OCI_PROTOCOL, verb=verb, resource=cid[:13],
                                 result=oci_result)

    # -- the CRI server ------------------------------------------------------------------
    def serve_cri(self, req: CRIRequest) -> Any:
        """The gRPC server on the CRI socket: one method per call; errors are RPCError."""
        m = req.message
        handlers: dict[str, Any] = {
            "ImageStatus": lambda: self.image_status(m["image"]),
            "PullImage": lambda: self.pull_image(m["image"]),
            "RunPodSandbox": lambda: self.run_pod_sandbox(m["config"]),
            "StopPodSandbox": lambda: self.stop_pod_sandbox(m["pod_sandbox_id"]),
            "RemovePodSandbox": lambda: self.remove_pod_sandbox(m["pod_sandbox_id"]),
            "PodSandboxStatus": lambda: self.pod_sandbox_status(m["pod_sandbox_id"]),
            "ListPodSandbox": self.list_pod_sandbox,
            "CreateContainer": lambda: self.create_container(m["pod_sandbox_id"],
                                                             m["config"]),
            "StartContainer": lambda: self.start_container(m["container_id"]),
            "StopContainer": lambda: self.stop_container(m["container_id"],
                                                         m.get("timeout", 30)),
            "RemoveContainer": lambda: self.remove_container(m["container_id"]),
            "ContainerStatus": lambda: self.container_status(m["container_id"]),
            "ListContainers": self.list_containers,
            "ExecSync": lambda: self.exec_sync(m["container_id"], m["cmd"]),
            "Exec": lambda: self.streaming_url("exec", m["container_id"], m["cmd"]),
            "PortForward": lambda: self.streaming_url("portforward", m["pod_sandbox_id"],
                                                      m["port"]),
        }
        if req.method not in handlers:
            raise RPCError("Unimplemented", f"unknown method {req.method}")
        return handlers[req.method]()

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
            result = exec_plugin(self.network, self.instance, self.node, self.cni_type,
                                 CNIRequest("ADD", sid, netns))
        except (CNIError, DialError) as err:
            # containerd's deferred clean-up: the namespace goes, nothing is left behind
            msg = err.msg if isinstance(err, CNIError) else str(err)
            raise RPCError("Unknown", f'failed to setup network for sandbox "{sid}": '
                                           f'plugin type="{self.cni_type}" name="'
                                           f'k8s-pod-network" failed (add): {msg}') from None
        ip = result["ips"][0]["address"].split("/")[0]
        hostname = config.get("hostname", meta["name"])
        root = f"{SANDBOXES_DIR}/{sid}"
        self.filesystem[f"{root}/hostname"] = hostname + "\n"
        dns = config.get("dnsConfig")
        self.filesystem[f"{root}/resolv.conf"] = format_resolv_conf(DNSConfig(
            list(dns.get("servers", [])), list(dns.get("searches", [])),
            list(dns.get("options", [])))) if dns else \
            self.filesystem.get("/etc/resolv.conf", "")
        pause = shell.Process(files=lambda _: None, hostname=hostname)
        self._oci("create", sid, bundle=pause)
        self._oci("start", sid)
        self.sandboxes[sid] = Sandbox(sid, meta["name"], meta["namespace"], meta["uid"],
                                      meta.get("attempt", 0), netns, ip, SANDBOX_READY,
                                      self.clock.now(), hostname,
                                      config.get("logDirectory", ""))
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
            self._oci("kill", sid, signal="SIGKILL")
            try:
                exec_plugin(self.network, self.instance, self.node, self.cni_type,
                            CNIRequest("DEL", sid, sb.netns))
            except (CNIError, DialError):
                pass  # containerd logs it; the namespace is removed anyway
            sb.state = SANDBOX_NOTREADY

    def remove_pod_sandbox(self, sid: str) -> None:
        if sid not in self.sandboxes:
            return  # removing twice is not an error
        self.stop_pod_sandbox(sid)
        for c in self._in(sid):
            self.remove_container(c.id)
        self._oci("delete", sid)
        for name in ("hostname", "resolv.conf"):
            self.filesystem.pop(f"{SANDBOXES_DIR}/{sid}/{name}", None)
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
        root = f"{SANDBOXES_DIR}/{sid}"
        mounts = list(config.get("mounts", []))
        taken = {m["containerPath"] for m in mounts}
        # containerd's sandbox files, unless the kubelet mounts something there itself
        mounts += [{"containerPath": path, "hostPath": f"{root}/{name}", "readonly": False}
                   for path, name in (("/etc/hostname", "hostname"),
                                      ("/etc/resolv.conf", "resolv.conf")) if path not in taken]
        env = {"PATH": IMAGE_PATH, "HOSTNAME": sb.hostname}
        env.update({e["key"]: e["value"] for e in config.get("envs", [])})
        c = self.containers[cid] = Container(
            cid, sid, meta["name"], image, meta.get("attempt", 0),
            list(config.get("command", [])) + list(config.get("args", [])),
            list(config.get("ports", [])), env, mounts, created_at=self.clock.now(),
            log_file=f"{sb.log_directory}/{config['logPath']}"
            if sb.log_directory and config.get("logPath") else "")
        def files(path: str) -> str | None:
            return self.read_file(cid, path)

        def dial(host: str, port: int, path: str) -> tuple[int | None, str]:
            return self._dial_from(sb, host, port, path)
        self._oci("create", cid, bundle=shell.Process(files=files, env=c.env,
                                                      hostname=sb.hostname, dial=dial))
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
        self._log(c, f"{c.name}: started (attempt {c.attempt})")
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
            self._oci("kill", c.id, signal=signal)
        c.state, c.exit_code, c.reason = CONTAINER_EXITED, code, reason
        c.finished_at = self.clock.now()
        self._unlisten(c)
        self._log(c, f"{c.name}: exited with code {code}")

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

    # -- what runs inside ----------------------------------------------------------------
    def read_file(self, cid: str, path: str) -> str | None:
        """A file as the container sees it: through its mounts, from the node's disk."""
        c = self.containers.get(cid)
        if c is None:
            return None
        for m in sorted(c.mounts, key=lambda m: -len(m["containerPath"])):
            inside = m["containerPath"].rstrip("/")
            if path == inside or path.startswith(inside + "/"):
                return self.filesystem.get(m["hostPath"].rstrip("/") + path[len(inside):])
        return None  # the model's images hold no other files

    def process(self, cid: str) -> ContainerProcess:
        """A process started in container ``cid`` (for code that runs in the container)."""
        c = self._container(cid)
        sb = self.sandboxes[c.sandbox_id]
        return ContainerProcess(f"pod/{sb.namespace}/{sb.name}", self.node, sb.ip,
                                dict(c.env), self, cid)

    def _running(self, cid: str) -> Container:
        c = self._container(cid)
        if c.state != CONTAINER_RUNNING:
            raise RPCError("Unknown", f"container {cid} is not running")
        return c

    def exec_sync(self, cid: str, cmd: list[str]) -> tuple[int, str]:
        """``ExecSync``: run ``cmd`` in the container through runc; (exit code, output)."""
        self._running(cid)
        out: shell.Result = self._oci("exec", cid, argv=cmd)
        return out.exit_code, out.output

    def streaming_url(self, kind: str, target: str, arg: Any = None) -> str:
        """A one-time URL on the runtime's streaming server (CRI ``Exec``/``PortForward``)."""
        if kind == "exec":
            self._running(target)
        else:
            self._sandbox(target)
        token = self.ids.suffix(8)
        self._sessions[token] = (kind, target, arg)
        return f"http://127.0.0.1:{STREAM_PORT}/{kind}/{token}"

    def serve_stream(self, req: HTTPRequest) -> HTTPResponse:
        """The streaming server: ``/exec/<token>`` runs the command through runc and
        streams back its output and exit code; ``/portforward/<token>`` connects to the
        port inside the sandbox's network namespace."""
        token = req.path.rstrip("/").rsplit("/", 1)[-1]
        session = self._sessions.pop(token, None)
        if session is None:
            return HTTPResponse(404, {"message": "unknown or expired session"})
        kind, target, arg = session
        if kind == "exec":
            try:
                code, output = self.exec_sync(target, list(arg or []))
            except RPCError as err:
                return HTTPResponse(500, {"message": str(err)})
            return HTTPResponse(101, {"output": output, "exitCode": code})
        sb = self._sandbox(target)
        status, _ = self._dial_from(sb, "localhost", int(arg), "/",
                                    src=self.instance)
        if status is None:
            return HTTPResponse(500, {"message": f"failed to connect to localhost:{arg} "
                                                 f"inside namespace \"{sb.id[:13]}\": "
                                                 "connection refused"})
        return HTTPResponse(101, {"status": status})

    def _dial_from(self, sb: Sandbox, host: str, port: int, path: str, *,
                   src: str = "") -> tuple[int | None, str]:
        """A connection opened inside the sandbox's network namespace (``localhost`` is the
        pod's own IP: the namespace's loopback)."""
        if host in ("localhost", "127.0.0.1"):
            host = sb.ip
        try:
            resp = self.network.dial(src or f"pod/{sb.namespace}/{sb.name}",
                                     Address.tcp(host, port), HTTPRequest("GET", path),
                                     protocol="HTTP", verb="GET",
                                     resource=f"http://{host}:{port}{path}",
                                     result=HTTPResponse.result, via=self.node,
                                     source_ip=sb.ip)
        except DialError:
            return None, ""
        return resp.status, str(resp.body or "")

    def _log(self, c: Container, line: str) -> None:
        """The shim copies the container's output into its log file on the node's disk."""
        c.logs.append(line)
        if c.log_file:
            self.filesystem[c.log_file] = "\n".join(c.logs) + "\n"

    def logs(self, cid: str) -> list[str]:
        return list(self._container(cid).logs)

    # -- the network as applications see it ----------------------------------------------
    def _listen(self, c: Container) -> None:
        """The container's program listens on each of its ports, on its pod's IP.

        The model's application answers every HTTP request as agnhost's ``serve-hostname``
        does: ``200`` with the pod's hostname, or ``503`` when the chapter made it unhealthy.
        """
        sb = self.sandboxes.get(c.sandbox_id)
        if sb is None or not sb.ip:
            return
        for port in sorted(set(c.ports)):  # a port given for TCP and UDP is one TCP socket
            try:
                self.network.listen(Address.tcp(sb.ip, port), f"pod/{sb.name}",
                                    partial(self._app, c, sb),
                                    protocol="HTTP")
            except OSError as err:  # two containers of one pod on one port
                self._log(c, f"{c.name}: {err}")
                self._exit(c, 1, "Error")
                return

    def _unlisten(self, c: Container) -> None:
        sb = self.sandboxes.get(c.sandbox_id)
        if sb is None or not sb.ip:
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

    def http_get(self, ip: str, port: int) -> int | None:
        """Deprecated shim for ``apiserver/pod_proxy.py`` until it dials the pod itself: the
        status the application on ``ip:port`` answers, or None if nothing listens there.
        Nothing in the node layer calls it."""
        for sb in self.sandboxes.values():
            if sb.ip == ip and sb.state == SANDBOX_READY:
                for c in self._in(sb.id):
                    if c.state == CONTAINER_RUNNING and port in c.ports:
                        return 200 if c.healthy else 503
                return None
        return None
