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

Every call is traced on the path ``kubelet->csi-node-plugin``. Simplified: no real mounts;
the plugin records what is staged and published; a failure can be injected with
:meth:`CSINodePlugin.fail_next`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from k8sbook.core.clock import Clock
from k8sbook.core.trace import Trace
from k8sbook.node.container_runtime import RPCError

PROTOCOL = "gRPC (CSI) on unix:///var/lib/kubelet/plugins/{driver}/csi.sock"


class CSINodePlugin:
    """The node plugin of one CSI driver on one node."""

    def __init__(self, driver: str, node: str, clock: Clock, trace: Trace,
                 stage_unstage: bool = True) -> None:
        self.driver = driver
        self.node = node
        self.clock = clock
        self.trace = trace
        self.stage_unstage = stage_unstage
        self.staged: dict[str, str] = {}  # volume handle -> staging path
        self.published: dict[str, str] = {}  # target path -> volume handle
        self._fail: tuple[str, str, str] | None = None

    @property
    def endpoint(self) -> str:
        return f"unix:///var/lib/kubelet/plugins/{self.driver}/csi.sock"

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
    """The kubelet's gRPC client for one driver's node plugin, traced."""

    def __init__(self, kubelet: str, plugin: CSINodePlugin) -> None:
        self.kubelet = kubelet
        self.plugin = plugin

    def _call(self, method: str, what: str, fn: Any) -> Any:
        p = self.plugin
        msg = p.trace.record(p.clock.now(), self.kubelet, f"csi-node-plugin/{p.node}",
                             "kubelet->csi-node-plugin", PROTOCOL.format(driver=p.driver),
                             method, what, "", "")
        try:
            out = fn()
        except RPCError as err:
            p.trace.complete(msg, err.code)
            raise
        p.trace.complete(msg, "OK")
        return out

    def node_get_info(self) -> dict[str, Any]:
        return self._call("NodeGetInfo", "", self.plugin.node_get_info)

    def node_get_capabilities(self) -> list[str]:
        return self._call("NodeGetCapabilities", "", self.plugin.node_get_capabilities)

    def node_stage_volume(self, volume_id: str, staging_path: str) -> None:
        self._call("NodeStageVolume", volume_id,
                   lambda: self.plugin.node_stage_volume(volume_id, staging_path))

    def node_publish_volume(self, volume_id: str, target_path: str,
                            staging_path: str | None) -> None:
        self._call("NodePublishVolume", volume_id,
                   lambda: self.plugin.node_publish_volume(volume_id, target_path,
                                                           staging_path))

    def node_unpublish_volume(self, volume_id: str, target_path: str) -> None:
        self._call("NodeUnpublishVolume", volume_id,
                   lambda: self.plugin.node_unpublish_volume(volume_id, target_path))

    def node_unstage_volume(self, volume_id: str, staging_path: str) -> None:
        self._call("NodeUnstageVolume", volume_id,
                   lambda: self.plugin.node_unstage_volume(volume_id, staging_path))


def staging_path(driver: str, volume_handle: str) -> str:
    """The per-node global mount (the kubelet names it by a SHA-256 of the volume handle)."""
    digest = hashlib.sha256(volume_handle.encode()).hexdigest()
    return f"/var/lib/kubelet/plugins/kubernetes.io/csi/{driver}/{digest}/globalmount"


def publish_path(pod_uid: str, pv_name: str) -> str:
    return f"/var/lib/kubelet/pods/{pod_uid}/volumes/kubernetes.io~csi/{pv_name}/mount"
