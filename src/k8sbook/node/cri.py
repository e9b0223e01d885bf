"""The kubelet's CRI client: gRPC calls to the container runtime over its Unix socket.

Mirrors the Container Runtime Interface, ``k8s.io/cri-api/pkg/apis/runtime/v1`` (services
``RuntimeService`` and ``ImageService``), and the kubelet's remote client
(``k8s.io/cri-client/pkg``, v1.35.0). The kubelet dials the runtime's socket, by default
``unix:///run/containerd/containerd.sock`` (``--container-runtime-endpoint``), and calls
``RunPodSandbox``, ``PullImage``, ``CreateContainer``, ``StartContainer``, ``StopContainer``,
``RemoveContainer``, ``StopPodSandbox``, ``RemovePodSandbox``, the status calls, the two
list calls the PLEG relists with, and ``Exec``/``PortForward``, which answer a URL on the
runtime's streaming server.

Every call is one dial through the network (:mod:`k8sbook.client.network`) to
``Address.unix(node, "/run/containerd/containerd.sock")``, where the runtime's CRI server
listens; the trace shows it on the path ``kubelet->container-runtime`` with its gRPC method
name and its result (``OK`` or the gRPC status code). A failed call raises
:class:`RPCError`, whose text is what the kubelet puts in events and container statuses
(``rpc error: code = NotFound desc = ...``). A socket nobody listens on is gRPC
``Unavailable`` with grpc-go's ``connection error`` text.

Simplified: requests and responses are dicts shaped like the protobuf messages, trimmed to the
fields the kubelet model reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k8sbook.client.network import Address, DialError, Network

CRI_SOCKET = "/run/containerd/containerd.sock"
ENDPOINT = f"unix://{CRI_SOCKET}"
PROTOCOL = f"gRPC (CRI v1) on {ENDPOINT}"
RUNTIME_SERVICE = "runtime.v1.RuntimeService"
IMAGE_SERVICE = "runtime.v1.ImageService"


class RPCError(Exception):
    """A gRPC error status: ``rpc error: code = <code> desc = <desc>``."""

    def __init__(self, code: str, desc: str) -> None:
        super().__init__(f"rpc error: code = {code} desc = {desc}")
        self.code = code
        self.desc = desc


def rpc_result(_: Any) -> str:
    return "OK"


def rpc_error(exc: Exception) -> str:
    return exc.code if isinstance(exc, RPCError) else "Unknown"


@dataclass(frozen=True)
class CRIRequest:
    """One unary call: the method name and its request message."""

    method: str
    message: dict[str, Any]


class CRIClient:
    """``RemoteRuntimeService`` + ``RemoteImageService`` for one kubelet."""

    def __init__(self, instance: str, network: Network, node: str,
                 socket: str = CRI_SOCKET) -> None:
        self.instance = instance
        self.network = network
        self.address = Address.unix(node, socket)

    def call(self, method: str, what: str = "", **message: Any) -> Any:
        try:
            return self.network.dial(self.instance, self.address, CRIRequest(method, message),
                                     protocol=PROTOCOL, verb=method, resource=what,
                                     result=rpc_result, error=rpc_error)
        except DialError as err:
            raise RPCError("Unavailable", 'connection error: desc = "transport: Error while '
                           f'dialing: {err}"') from None

    # -- ImageService ----------------------------------------------------------------------
    def image_status(self, image: str) -> dict[str, Any] | None:
        return self.call("ImageStatus", image, image=image)

    def pull_image(self, image: str) -> str:
        return self.call("PullImage", image, image=image)

    # -- RuntimeService: sandboxes ---------------------------------------------------------
    def run_pod_sandbox(self, config: dict[str, Any]) -> str:
        meta = config["metadata"]
        return self.call("RunPodSandbox", f"{meta['namespace']}/{meta['name']}",
                         config=config)

    def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.call("StopPodSandbox", sandbox_id[:13], pod_sandbox_id=sandbox_id)

    def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.call("RemovePodSandbox", sandbox_id[:13], pod_sandbox_id=sandbox_id)

    def pod_sandbox_status(self, sandbox_id: str) -> dict[str, Any]:
        return self.call("PodSandboxStatus", sandbox_id[:13], pod_sandbox_id=sandbox_id)

    def list_pod_sandbox(self) -> list[dict[str, Any]]:
        return self.call("ListPodSandbox")

    # -- RuntimeService: containers --------------------------------------------------------
    def create_container(self, sandbox_id: str, config: dict[str, Any]) -> str:
        return self.call("CreateContainer", config["metadata"]["name"],
                         pod_sandbox_id=sandbox_id, config=config)

    def start_container(self, container_id: str) -> None:
        self.call("StartContainer", container_id[:13], container_id=container_id)

    def stop_container(self, container_id: str, timeout: int) -> None:
        self.call("StopContainer", container_id[:13], container_id=container_id,
                  timeout=timeout)

    def remove_container(self, container_id: str) -> None:
        self.call("RemoveContainer", container_id[:13], container_id=container_id)

    def container_status(self, container_id: str) -> dict[str, Any]:
        return self.call("ContainerStatus", container_id[:13], container_id=container_id)

    def list_containers(self) -> list[dict[str, Any]]:
        return self.call("ListContainers")

    def exec_sync(self, container_id: str, cmd: list[str]) -> tuple[int, str]:
        return self.call("ExecSync", container_id[:13], container_id=container_id, cmd=cmd)

    # -- RuntimeService: streaming ---------------------------------------------------------
    def exec(self, container_id: str, cmd: list[str]) -> str:
        """``Exec``: the runtime answers a URL on its streaming server, not the output."""
        return self.call("Exec", container_id[:13], container_id=container_id, cmd=cmd)

    def attach(self, container_id: str) -> str:
        """``Attach``: a URL on the streaming server joined to the main process."""
        return self.call("Attach", container_id[:13], container_id=container_id)

    def port_forward(self, sandbox_id: str, port: int) -> str:
        return self.call("PortForward", sandbox_id[:13], pod_sandbox_id=sandbox_id,
                         port=port)
