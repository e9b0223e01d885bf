"""The kubelet's CRI client: gRPC calls to the container runtime over a Unix socket.

Mirrors the Container Runtime Interface, ``k8s.io/cri-api/pkg/apis/runtime/v1`` (services
``RuntimeService`` and ``ImageService``), and the kubelet's remote client
(``k8s.io/cri-client/pkg``). The kubelet dials the runtime's socket, by default
``unix:///run/containerd/containerd.sock`` (``--container-runtime-endpoint``), and calls
``RunPodSandbox``, ``PullImage``, ``CreateContainer``, ``StartContainer``, ``StopContainer``,
``RemoveContainer``, ``StopPodSandbox``, ``RemovePodSandbox``, the status calls, and the two
list calls the PLEG relists with.

Every call is recorded on the trace on the path ``kubelet->container-runtime`` with its gRPC
method name and its result (``OK`` or the gRPC status code); a failed call raises
:class:`~k8sbook.node.container_runtime.RPCError`, whose text is what the kubelet puts in events
and container statuses (``rpc error: code = NotFound desc = ...``).

Simplified: requests and responses are dicts shaped like the protobuf messages, trimmed to the
fields the kubelet model reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from k8sbook.core.clock import Clock
from k8sbook.core.trace import Trace
from k8sbook.node.container_runtime import ContainerRuntime, RPCError

ENDPOINT = "unix:///run/containerd/containerd.sock"
PROTOCOL = f"gRPC (CRI v1) on {ENDPOINT}"
RUNTIME_SERVICE = "runtime.v1.RuntimeService"
IMAGE_SERVICE = "runtime.v1.ImageService"

T = TypeVar("T")


class CRIClient:
    """``RemoteRuntimeService`` + ``RemoteImageService`` for one kubelet."""

    def __init__(self, kubelet: str, runtime: ContainerRuntime, clock: Clock,
                 trace: Trace) -> None:
        self.kubelet = kubelet
        self.runtime = runtime
        self.clock = clock
        self.trace = trace

    def _call(self, method: str, what: str, fn: Callable[[], T]) -> T:
        msg = self.trace.record(self.clock.now(), self.kubelet, self.runtime.instance,
                                "kubelet->container-runtime", PROTOCOL, method, what, "", "")
        try:
            out = fn()
        except RPCError as err:
            self.trace.complete(msg, err.code)
            raise
        self.trace.complete(msg, "OK")
        return out

    # -- ImageService ----------------------------------------------------------------------
    def image_status(self, image: str) -> dict[str, Any] | None:
        return self._call("ImageStatus", image, lambda: self.runtime.image_status(image))

    def pull_image(self, image: str) -> str:
        return self._call("PullImage", image, lambda: self.runtime.pull_image(image))

    # -- RuntimeService: sandboxes ---------------------------------------------------------
    def run_pod_sandbox(self, config: dict[str, Any]) -> str:
        meta = config["metadata"]
        return self._call("RunPodSandbox", f"{meta['namespace']}/{meta['name']}",
                          lambda: self.runtime.run_pod_sandbox(config))

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self._call("StopPodSandbox", sandbox_id[:13],
                   lambda: self.runtime.stop_pod_sandbox(sandbox_id))

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self._call("RemovePodSandbox", sandbox_id[:13],
                   lambda: self.runtime.remove_pod_sandbox(sandbox_id))

    def pod_sandbox_status(self, sandbox_id: str) -> dict[str, Any]:
        return self._call("PodSandboxStatus", sandbox_id[:13],
                          lambda: self.runtime.pod_sandbox_status(sandbox_id))

    def list_pod_sandbox(self) -> list[dict[str, Any]]:
        return self._call("ListPodSandbox", "", self.runtime.list_pod_sandbox)

    # -- RuntimeService: containers --------------------------------------------------------
    def create_container(self, sandbox_id: str, config: dict[str, Any]) -> str:
        return self._call("CreateContainer", config["metadata"]["name"],
                          lambda: self.runtime.create_container(sandbox_id, config))

    def start_container(self, container_id: str) -> None:
        self._call("StartContainer", container_id[:13],
                   lambda: self.runtime.start_container(container_id))

    def stop_container(self, container_id: str, timeout: int) -> None:
        self._call("StopContainer", container_id[:13],
                   lambda: self.runtime.stop_container(container_id, timeout))

    def remove_container(self, container_id: str) -> None:
        self._call("RemoveContainer", container_id[:13],
                   lambda: self.runtime.remove_container(container_id))

    def container_status(self, container_id: str) -> dict[str, Any]:
        return self._call("ContainerStatus", container_id[:13],
                          lambda: self.runtime.container_status(container_id))

    def list_containers(self) -> list[dict[str, Any]]:
        return self._call("ListContainers", "", self.runtime.list_containers)

    def exec_sync(self, container_id: str, cmd: list[str]) -> tuple[int, str]:
        return self._call("ExecSync", container_id[:13],
                          lambda: self.runtime.exec_sync(container_id, cmd))

    # -- RuntimeService: streaming ---------------------------------------------------------
    def exec(self, container_id: str, cmd: list[str]) -> str:
        """``Exec``: the runtime answers a URL on its streaming server, not the output."""
        return self._call("Exec", container_id[:13],
                          lambda: self.runtime.streaming_url("exec", container_id))

    def port_forward(self, sandbox_id: str, port: int) -> str:
        return self._call("PortForward", sandbox_id[:13],
                          lambda: self.runtime.streaming_url("portforward", sandbox_id))
