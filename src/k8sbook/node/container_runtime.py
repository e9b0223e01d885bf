"""A containerd-like container runtime: pod sandboxes, images, containers, processes.

Mirrors containerd's CRI plugin (``containerd/containerd`` v2.1, ``internal/cri``) as the
kubelet sees it through the CRI (see :mod:`k8sbook.node.cri`). Its CRI server listens on
``Address.unix(node, "/run/containerd/containerd.sock")``; its streaming server (what
``Exec`` and ``PortForward`` answer URLs on: containerd's ``stream_server_address =
"127.0.0.1"``) listens on the node's loopback (:func:`loopback`).

* ``RunPodSandbox`` creates a network namespace attached by the CNI plugin, the sandbox's
  files and its ``pause`` container (:mod:`k8sbook.node.containerd_sandbox`). Every container
  of the pod joins that namespace, which is why the containers of one pod share one IP address
  and reach each other on ``localhost``.
* ``CreateContainer`` mounts the sandbox's ``/etc/hostname`` and ``/etc/resolv.conf`` into
  the container, plus the kubelet's mounts (``/etc/hosts``, volumes such as the
  service-account token), and sets ``PATH``, ``HOSTNAME`` and the kubelet's ``envs``.
* Containers are run by the OCI runtime (``runc``, driven by ``containerd-shim-runc-v2``;
  path ``container-runtime->oci-runtime``: ``create``, ``start``, ``kill``, ``delete``,
  ``exec``). ``exec`` runs the command in the container (:mod:`k8sbook.node.shell`): its
  output is what the container's files and environment hold.
* Images are pulled from a registry (:mod:`k8sbook.node.containerd_images`).

Simplified: pulls and starts take no virtual time; a container's main process runs a tiny
"program" read from its command line (a shell script runs when it starts and exits with its
code after its ``sleep`` s; anything else runs until stopped) and serves HTTP on its
``containerPort`` s, answering 200 while healthy and 503 when a test makes it unhealthy
(:meth:`ContainerRuntime.set_healthy`; :mod:`k8sbook.node.workload`); on SIGTERM, code 0.

This module is the runtime service (containers, and the CRI server that dispatches every
call); the plugin's other parts are modules of their own, as in containerd: records in
:mod:`~k8sbook.node.containerd_store`, then ``containerd_images``, ``_sandbox``, ``_streaming``,
``_attach``. It is over 400 lines because the CRI server's dispatch table and one method per
CRI call stay in one place, as in containerd's ``internal/cri/server``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k8sbook.client.network import Address, Network
from k8sbook.core.clock import Clock
from k8sbook.core.ids import IdGenerator
from k8sbook.node import shell
from k8sbook.node.containerd_attach import attach, attach_session, start_main_shell
from k8sbook.node.containerd_images import ImageService, Registry, normalize_image
from k8sbook.node.containerd_sandbox import SANDBOX_IMAGE, SandboxController
from k8sbook.node.containerd_store import (
    CONTAINER_CREATED,
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    RUNTIME_VERSION,
    SANDBOX_NOTREADY,
    SANDBOX_READY,
    SANDBOXES_DIR,
    Container,
    Sandbox,
    new_id,
)
from k8sbook.node.containerd_streaming import (
    STREAM_PORT,
    STREAM_PROTOCOL,
    StreamServer,
    StreamSession,
    exec_session,
    loopback,
)
from k8sbook.node.cri import CRI_SOCKET, PROTOCOL, CRIRequest, RPCError
from k8sbook.node.runc import exec_runc
from k8sbook.node.tty import Terminal
from k8sbook.node.workload import dial_from, listen, main_process, program_of, unlisten

__all__ = [  # the names other modules import from here (some are the parts' names)
    "CONTAINER_CREATED", "CONTAINER_EXITED", "CONTAINER_RUNNING", "RUNTIME_VERSION",
    "SANDBOX_IMAGE", "SANDBOX_NOTREADY", "SANDBOX_READY", "STREAM_PORT", "STREAM_PROTOCOL",
    "Container", "ContainerProcess", "ContainerRuntime", "RPCError", "Registry", "Sandbox",
    "loopback", "normalize_image", "program_of",
]

#: the ``PATH`` of the model's images (Debian's and BusyBox's default)
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ContainerProcess:
    """A process in a running container, as a workload's code sees its world: its files,
    its environment, its pod's IP and node (what :func:`~k8sbook.client.in_cluster.in_cluster_client`
    runs in)."""

    instance: str
    node: str
    pod_ip: str
    env: dict[str, str]
    runtime: ContainerRuntime
    container_id: str

    def read_file(self, path: str) -> str | None:
        return self.runtime.read_file(self.container_id, path)


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
        self.image_service = ImageService(registry if registry is not None else Registry(),
                                          self._id)
        self.sandbox_controller = SandboxController(
            self.instance, node, network, clock, ids, self._id, self.filesystem,
            self.image_service, self._oci, cni_type)
        self.stream_server = StreamServer(ids, self._exec, self._port_forward,
                                          lambda cid, stdin: attach(self, cid, stdin),
                                          self._open_session)
        self.registry = self.image_service.registry
        self.images = self.image_service.images  # normalized ref -> image id
        self.sandboxes: dict[str, Sandbox] = self.sandbox_controller.sandboxes
        self.containers: dict[str, Container] = {}

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
        self.network.listen(self.stream_address, self.instance, self.stream_server.serve,
                            protocol=STREAM_PROTOCOL)
        return self

    def stop(self) -> None:
        self.network.close(self.cri_address)
        self.network.close(self.stream_address)

    def _id(self) -> str:
        return new_id(self.ids)  # sandboxes, containers and images share the generator

    def _oci(self, verb: str, cid: str, *, bundle: shell.Process | None = None,
             argv: list[str] | None = None, signal: str = "", stdin: str = "",
             interactive: bool = False,
             winsize: Callable[[], tuple[int, int]] | None = None) -> Any:
        """Execute ``runc <verb> <id>``."""
        return exec_runc(self.network, self.instance, self.node, verb, cid, bundle=bundle,
                         argv=argv, signal=signal, stdin=stdin, interactive=interactive,
                         winsize=winsize)

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
            "Attach": lambda: self.streaming_url("attach", m["container_id"]),
            "PortForward": lambda: self.streaming_url("portforward", m["pod_sandbox_id"],
                                                      m["port"]),
        }
        if req.method not in handlers:
            raise RPCError("Unimplemented", f"unknown method {req.method}")
        return handlers[req.method]()

    # -- images and sandboxes: the image service and the sandbox controller -------------
    def image_status(self, image: str) -> dict[str, Any] | None:
        return self.image_service.image_status(image)

    def pull_image(self, image: str) -> str:
        return self.image_service.pull_image(image)

    def run_pod_sandbox(self, config: dict[str, Any]) -> str:
        return self.sandbox_controller.run(config)

    def _sandbox(self, sid: str) -> Sandbox:
        return self.sandbox_controller.get(sid)

    def stop_pod_sandbox(self, sid: str) -> None:
        self._sandbox(sid)
        for c in self._in(sid):
            if c.state == CONTAINER_RUNNING:
                self._exit(c, 137, "Error", signal="SIGKILL")
        self.sandbox_controller.stop(sid)

    def remove_pod_sandbox(self, sid: str) -> None:
        if sid not in self.sandboxes:
            return  # removing twice is not an error
        self.stop_pod_sandbox(sid)
        for c in self._in(sid):
            self.remove_container(c.id)
        self.sandbox_controller.remove(sid)

    def pod_sandbox_status(self, sid: str) -> dict[str, Any]:
        return self.sandbox_controller.status(sid)

    def list_pod_sandbox(self) -> list[dict[str, Any]]:
        return self.sandbox_controller.list()

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
        if not self.image_service.has_image(image):
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
            if sb.log_directory and config.get("logPath") else "",
            tty=bool(config.get("tty")), stdin=bool(config.get("stdin")),
            stdin_once=bool(config.get("stdinOnce")))
        if c.tty:
            c.terminal = Terminal()
        def dial(host: str, port: int, path: str) -> tuple[int | None, str]:
            return dial_from(self.network, self.node, sb, host, port, path)
        disk = self.filesystem
        c.process = shell.Process(lambda p: c.read(disk, p), c.env, sb.hostname, dial,
                                  lambda p, t: c.write(disk, p, t), lambda: c.paths(disk))
        self._oci("create", cid, bundle=c.process)
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
        self.log_line(c, f"{c.name}: started (attempt {c.attempt})")
        self._listen(c)
        seconds, code, output = main_process(c.command, c.process)
        for line in output.splitlines():
            self.log_line(c, line)
        if c.stdin:  # a shell reading stdin that the kubelet left open (``stdin: true``)
            start_main_shell(self, c)
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
        self.log_line(c, f"{c.name}: exited with code {code}")

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
                "image": {"image": c.image}, "imageRef": self.image_service.image_ref(c.image)}

    def list_containers(self) -> list[dict[str, Any]]:
        return [{"id": c.id, "podSandboxId": c.sandbox_id, "state": c.state,
                 "metadata": {"name": c.name, "attempt": c.attempt}}
                for c in sorted(self.containers.values(), key=lambda c: (c.created_at, c.id))]

    # -- what runs inside ----------------------------------------------------------------
    def read_file(self, cid: str, path: str) -> str | None:
        """A file as the container sees it: through its mounts, from the node's disk."""
        c = self.containers.get(cid)
        return c.read(self.filesystem, path) if c is not None else None

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
        out = self._exec(cid, cmd)
        return out.exit_code, out.output

    def _exec(self, cid: str, cmd: list[str], stdin: str = "",
              winsize: Callable[[], tuple[int, int]] | None = None) -> shell.Result:
        """``runc exec`` of ``cmd`` with ``stdin`` (ExecSync and streaming exec sessions);
        ``winsize``: on a terminal of that size."""
        self._running(cid)
        return self._oci("exec", cid, argv=cmd, stdin=stdin, winsize=winsize)

    def _open_session(self, kind: str, cid: str, cmd: list[str],
                      opts: dict[str, Any]) -> StreamSession:
        """An interactive exec or attach session (:class:`StreamSession`)."""
        if kind == "attach":
            return attach_session(self, cid, bool(opts.get("stdin")))
        c = self._running(cid)
        return exec_session(cmd, opts, start=lambda winsize: self._oci(
            "exec", cid, argv=cmd, interactive=True, winsize=winsize),
            run=lambda data, winsize: self._exec(cid, cmd, data, winsize),
            running=lambda: c.state == CONTAINER_RUNNING)

    def streaming_url(self, kind: str, target: str, arg: Any = None) -> str:
        """A one-time URL on the runtime's streaming server (CRI ``Exec``/``PortForward``)."""
        if kind in ("exec", "attach"):
            self._running(target)
        else:
            self._sandbox(target)
        return self.stream_server.url(kind, target, arg)

    def _port_forward(self, sid: str, port: int, path: str = "/") -> tuple[int | None, str]:
        return dial_from(self.network, self.node, self._sandbox(sid), "localhost", port, path,
                         src=self.instance)

    def log_line(self, c: Container, line: str) -> None:
        """The shim copies the container's output into its log file on the node's disk."""
        c.add_log(line, self.clock.now())
        if c.log_file:
            self.filesystem[c.log_file] = c.log_text(self.clock.nano_timestamp)

    def logs(self, cid: str) -> list[str]:
        return list(self._container(cid).logs)

    # -- the network as applications see it ----------------------------------------------
    def _listen(self, c: Container) -> None:
        """The container's program listens on its ports (:func:`k8sbook.node.workload.
        listen`); a port already taken makes it exit with an error."""
        sb = self.sandboxes.get(c.sandbox_id)
        if sb is None or not sb.ip:
            return
        err = listen(self.network, c, sb)
        if err is not None:
            self.log_line(c, f"{c.name}: {err}")
            self._exit(c, 1, "Error")

    def _unlisten(self, c: Container) -> None:
        sb = self.sandboxes.get(c.sandbox_id)
        if sb is not None and sb.ip:
            unlisten(self.network, c, sb)

    def set_healthy(self, namespace: str, pod: str, healthy: bool,
                    container: str | None = None) -> None:
        """Make the application of a pod's running container(s) answer 200 or 503."""
        for sb in self.sandboxes.values():
            if (sb.namespace, sb.name) == (namespace, pod):
                for c in self._in(sb.id):
                    if container is None or c.name == container:
                        c.healthy = healthy

    def http_get(self, ip: str, port: int) -> int | None:
        """Deprecated shim for ``apiserver/pod_proxy.py``: the status ``ip:port`` answers."""
        for sb in self.sandboxes.values():
            if sb.ip == ip and sb.state == SANDBOX_READY:
                for c in self._in(sb.id):
                    if c.state == CONTAINER_RUNNING and port in c.ports:
                        return 200 if c.healthy else 503
                return None
        return None
