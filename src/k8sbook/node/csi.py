"""A CSI node plugin, and the kubelet's calls to it over a Unix socket.

Mirrors the Container Storage Interface's Node service (``container-storage-interface/spec``,
``csi.proto``: ``NodeGetInfo``, ``NodeGetCapabilities``, ``NodeStageVolume``,
``NodePublishVolume``, ``NodeUnpublishVolume``, ``NodeUnstageVolume``) and the kubelet's CSI
volume plugin (``pkg/volume/csi``). A driver's node plugin runs on every node (usually a
DaemonSet) and listens on ``/var/lib/kubelet/plugins/<driver>/csi.sock``; it announces itself
through the kubelet's plugin registration (the ``node-driver-registrar`` sidecar puts a socket
in ``/var/lib/kubelet/plugins_registry/``, the kubelet calls ``GetInfo`` on it, then
``NodeGetInfo`` on the driver). For a persistent volume the kubelet first *stages* it once per
node (``NodeStageVolume`` to a global mount under
``/var/lib/kubelet/plugins/kubernetes.io/csi/<driver>/<hash>/globalmount``, if the driver has the
``STAGE_UNSTAGE_VOLUME`` capability), then *publishes* it into each pod that uses it
(``NodePublishVolume`` to ``/var/lib/kubelet/pods/<pod uid>/volumes/kubernetes.io~csi/<pv>/mount``).

The plugin listens on that socket (:meth:`CSINodePlugin.install`:
``Address.unix(node, "/var/lib/kubelet/plugins/<driver>/csi.sock")``) and the kubelet's
:class:`CSIClient` dials it for every call; the network records each call on the path
``kubelet->csi-node-plugin`` with the gRPC code it ended with. Simplified: no real mounts; the
plugin records what is staged and published; a failure can be injected with
:meth:`CSINodePlugin.fail_next`; plugin registration is :meth:`Kubelet.register_csi_driver`
with the driver's name (the model has no registration socket).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from k8sbook.client.network import Address, DialError, Network
from k8sbook.node.cri import RPCError, rpc_error, rpc_result

PROTOCOL = "gRPC (CSI) on unix:///var/lib/kubelet/plugins/{driver}/csi.sock"


def socket_path(driver: str) -> str:
    return f"/var/lib/kubelet/plugins/{driver}/csi.sock"


@dataclass(frozen=True)
class CSIRequest:
    method: str
    message: dict[str, Any]


class CSINodePlugin:
    """The node plugin of one CSI driver on one node."""

    def __init__(self, driver: str, node: str, network: Network,
                 stage_unstage: bool = True) -> None:
        self.driver = driver
        self.node = node
        self.network = network
        self.stage_unstage = stage_unstage
        self.staged: dict[str, str] = {}  # volume handle -> staging path
        self.published: dict[str, str] = {}  # target path -> volume handle
        self._fail: tuple[str, str, str] | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{socket_path(self.driver)}"

    @property
    def instance(self) -> str:
        return f"csi-node-plugin/{self.node}"

    def install(self) -> CSINodePlugin:
        """The node plugin starts (its DaemonSet pod): it listens on its socket."""
        self.network.listen(Address.unix(self.node, socket_path(self.driver)), self.instance,
                            self.handle, protocol=PROTOCOL.format(driver=self.driver))
        return self

    def handle(self, req: CSIRequest) -> Any:
        m = req.message
        calls: dict[str, Any] = {
            "NodeGetInfo": self.node_get_info,
            "NodeGetCapabilities": self.node_get_capabilities,
            "NodeStageVolume": lambda: self.node_stage_volume(m["volume_id"],
                                                              m["staging_target_path"]),
            "NodePublishVolume": lambda: self.node_publish_volume(
                m["volume_id"], m["target_path"], m.get("staging_target_path")),
            "NodeUnpublishVolume": lambda: self.node_unpublish_volume(m["volume_id"],
                                                                      m["target_path"]),
            "NodeUnstageVolume": lambda: self.node_unstage_volume(m["volume_id"],
                                                                  m["staging_target_path"]),
        }
        if req.method not in calls:
            raise RPCError("Unimplemented", f"unknown method {req.method}")
        return calls[req.method]()

    def fail_next(self, method: str, code: str, message: str) -> None:
        """Make the next call of ``method`` fail with gRPC ``code`` and ``message``."""
        self._fail = (method, code, message)

    def _check(self, method: str) -> None:
        if self._fail and self._fail[0] == method:
            _, code, message = self._fail
            self._fail = None
            raise RPCError(code, message)

    def node_get_info(self) -> dict[str, Any]:
        return {"node_id": self.node, "max_volumes_per_node": 0}

    def node_get_capabilities(self) -> list[str]:
        return ["STAGE_UNSTAGE_VOLUME"] if self.stage_unstage else []

    def node_stage_volume(self, volume_id: str, staging_path: str) -> None:
        self._check("NodeStageVolume")
        self.staged[volume_id] = staging_path

    def node_publish_volume(self, volume_id: str, target_path: str,
                            staging_path: str | None) -> None:
        self._check("NodePublishVolume")
        if self.stage_unstage and volume_id not in self.staged:
            raise RPCError("FailedPrecondition", f"volume {volume_id} is not staged")
        self.published[target_path] = volume_id

    def node_unpublish_volume(self, volume_id: str, target_path: str) -> None:
        self.published.pop(target_path, None)

    def node_unstage_volume(self, volume_id: str, staging_path: str) -> None:
        self.staged.pop(volume_id, None)


class CSIClient:
    """The kubelet's gRPC client for one driver's node plugin (``pkg/volume/csi``'s
    ``csiDriverClient``): every call is a dial to the driver's socket on this node."""

    def __init__(self, instance: str, network: Network, node: str, driver: str) -> None:
        self.instance = instance
        self.network = network
        self.driver = driver
        self.address = Address.unix(node, socket_path(driver))

    def _call(self, method: str, what: str = "", **message: Any) -> Any:
        try:
            return self.network.dial(self.instance, self.address, CSIRequest(method, message),
                                     protocol=PROTOCOL.format(driver=self.driver),
                                     verb=method, resource=what, result=rpc_result,
                                     error=rpc_error)
        except DialError as err:
            raise RPCError("Unavailable", 'connection error: desc = "transport: Error while '
                           f'dialing: {err}"') from None

    def node_get_info(self) -> dict[str, Any]:
        return self._call("NodeGetInfo")

    def node_get_capabilities(self) -> list[str]:
        return self._call("NodeGetCapabilities")

    def node_stage_volume(self, volume_id: str, staging_path: str) -> None:
        self._call("NodeStageVolume", volume_id, volume_id=volume_id,
                   staging_target_path=staging_path)

    def node_publish_volume(self, volume_id: str, target_path: str,
                            staging_path: str | None) -> None:
        self._call("NodePublishVolume", volume_id, volume_id=volume_id,
                   target_path=target_path, staging_target_path=staging_path)

    def node_unpublish_volume(self, volume_id: str, target_path: str) -> None:
        self._call("NodeUnpublishVolume", volume_id, volume_id=volume_id,
                   target_path=target_path)

    def node_unstage_volume(self, volume_id: str, staging_path: str) -> None:
        self._call("NodeUnstageVolume", volume_id, volume_id=volume_id,
                   staging_target_path=staging_path)


def staging_path(driver: str, volume_handle: str) -> str:
    """The per-node global mount (the kubelet names it by a SHA-256 of the volume handle)."""
    digest = hashlib.sha256(volume_handle.encode()).hexdigest()
    return f"/var/lib/kubelet/plugins/kubernetes.io/csi/{driver}/{digest}/globalmount"


def publish_path(pod_uid: str, pv_name: str) -> str:
    return f"/var/lib/kubelet/pods/{pod_uid}/volumes/kubernetes.io~csi/{pv_name}/mount"
