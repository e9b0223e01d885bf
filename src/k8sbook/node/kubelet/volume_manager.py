"""The volume manager: the pod's volumes are set up before its sandbox starts.

Mirrors ``pkg/kubelet/volumemanager`` (``WaitForAttachAndMount``) with two volume plugins
(v1.35.0):

* CSI persistent volumes (``pkg/volume/csi``): the kubelet *stages* a volume once per node
  (``NodeStageVolume`` to the global mount, if the driver has ``STAGE_UNSTAGE_VOLUME``) and
  *publishes* it into each pod (``NodePublishVolume``), each a call over the driver's socket
  (:mod:`k8sbook.node.csi`); when the pod goes, it unpublishes and, when no other pod on the
  node uses the volume, unstages it. The claim is taken as bound when ``spec.volumeName`` is
  set.
* the projected service-account token (``pkg/volume/projected`` with ``pkg/kubelet/token``):
  the token of a TokenRequest bound to the pod, written with the pod's namespace into
  ``/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~projected/kube-api-access/`` and mounted
  at ``/var/run/secrets/kubernetes.io/serviceaccount``. It is set up again at every sync, so
  the token manager's refresh reaches the file the container reads.

* projected volumes (``pkg/volume/projected``): each source written into
  ``/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~projected/<volume>/`` and bind-mounted
  where the containers' ``volumeMounts`` say: a ``serviceAccountToken`` (a TokenRequest bound
  to the pod, with the source's ``expirationSeconds`` and ``audience``, through the token
  manager), a ``configMap`` (read from the apiserver: the Node authorizer lets a kubelet read
  the ConfigMaps its pods reference; a missing one that is not ``optional`` fails the mount
  with ``configmap "kube-root-ca.crt" not found``) and a ``downwardAPI`` item of the pod's
  ``metadata``. This is how the ServiceAccount admission plugin's ``kube-api-access-<random>``
  volume (``token``, ``ca.crt``, ``namespace``) reaches
  ``/var/run/secrets/kubernetes.io/serviceaccount``.

Simplified: where the ServiceAccount admission plugin is off (the model's default,
``Cluster(service_account_admission=False)``), a pod has no such volume; the kubelet then
mounts a token for every pod that does not opt out (``automountServiceAccountToken:
false``) as ``kube-api-access``, with ``token`` and ``namespace`` only, and starts a pod whose
ServiceAccount does not exist without it (asking again after ``syncFrequency``). No other
volume types.
"""

from __future__ import annotations

from typing import Any

from k8sbook.client.events import EventRecorder
from k8sbook.client.network import Network
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError
from k8sbook.node.cri import RPCError
from k8sbook.node.csi import CSIClient, publish_path, staging_path
from k8sbook.node.kubelet.config import SYNC_FREQUENCY
from k8sbook.node.kubelet.kubelet_pods import pod_dir
from k8sbook.node.kubelet.types import PodRecord
from k8sbook.node.token_manager import TokenManager, token_request

Obj = dict[str, Any]
TOKEN_VOLUME = "kube-api-access"


class _MountError(Exception):
    pass


class VolumeManager:
    """``volumeManager``: like ``NewVolumeManager(..., kubeClient, volumePluginMgr, ...,
    recorder, ...)`` it receives the API client, what its plugins use (the network to reach
    CSI sockets, the token manager, the node's disk under ``root_dir``), the clock, the
    recorder and the pod records."""

    def __init__(self, *, instance: str, node_name: str, network: Network, client: Client,
                 clock: Clock, recorder: EventRecorder, tokens: TokenManager,
                 filesystem: dict[str, str], root_dir: str,
                 records: dict[str, PodRecord]) -> None:
        self.instance = instance
        self.node_name = node_name
        self.network = network
        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.tokens = tokens
        self.filesystem = filesystem
        self.root_dir = root_dir
        self.records = records
        self.csi: dict[str, CSIClient] = {}
        #: volume handles staged on this node (the actual state of the world's device mounts)
        self.staged: set[str] = set()

    def register_csi_driver(self, driver: str) -> None:
        """Plugin registration: the kubelet learns the driver's socket and asks NodeGetInfo."""
        client = CSIClient(self.instance, self.network, self.node_name, driver)
        client.node_get_info()
        self.csi[driver] = client

    # -- the service-account token ---------------------------------------------------------
    def token_dir(self, uid: str) -> str:
        return f"{pod_dir(self.root_dir, uid)}/volumes/kubernetes.io~projected/{TOKEN_VOLUME}"

    def mount_service_account_token(self, pod: Obj) -> Obj:
        """Get the pod's token (cached unless due for a refresh) and write the volume."""
        meta = pod["metadata"]
        tr = token_request(pod)
        out = self.tokens.get_service_account_token(meta["namespace"], tr["metadata"]["name"], tr)
        d = self.token_dir(meta["uid"])
        self.filesystem[f"{d}/token"] = out["status"]["token"]
        self.filesystem[f"{d}/namespace"] = meta["namespace"]
        rec = self.records.get(f"{meta['namespace']}/{meta['name']}")
        if rec is not None and rec.uid == meta["uid"]:
            rec.token_dir = d
        return out

    def projected_dir(self, uid: str, volume: str) -> str:
        return f"{pod_dir(self.root_dir, uid)}/volumes/kubernetes.io~projected/{volume}"

    def _projected_files(self, pod: Obj, volume: Obj) -> dict[str, str]:
        """The files of a projected volume, source by source (``projectedVolumeMounter``'s
        ``collectData``); raises :class:`_MountError` or :class:`StatusError`."""
        meta = pod["metadata"]
        files: dict[str, str] = {}
        for src in volume["projected"].get("sources") or []:
            if "serviceAccountToken" in src:
                sat = src["serviceAccountToken"]
                audience = sat.get("audience")
                tr = token_request(pod, sat.get("expirationSeconds", 3600),
                                   [audience] if audience else None)
                try:
                    out = self.tokens.get_service_account_token(
                        meta["namespace"], tr["metadata"]["name"], tr)
                except StatusError as err:
                    raise _MountError(f"failed to fetch token: {err.status.get('message', '')}"
                                      ) from None
                files[sat["path"]] = out["status"]["token"]
            elif "configMap" in src:
                ref = src["configMap"]
                try:
                    data = self.client.get("configmaps", ref["name"],
                                           meta["namespace"]).get("data") or {}
                except StatusError as err:
                    if err.code == 404 and ref.get("optional"):
                        continue
                    if err.code == 404:
                        raise _MountError(f'configmap "{ref["name"]}" not found') from None
                    raise
                for item in ref.get("items") or [{"key": k, "path": k} for k in sorted(data)]:
                    if item["key"] not in data:
                        if ref.get("optional"):
                            continue
                        raise _MountError("configmap references non-existent config key: "
                                          f"{item['key']}")
                    files[item["path"]] = data[item["key"]]
            elif "downwardAPI" in src:
                for item in src["downwardAPI"].get("items") or []:
                    path = (item.get("fieldRef") or {}).get("fieldPath", "")
                    field = path.removeprefix("metadata.")
                    if path.startswith("metadata.") and field in ("name", "namespace", "uid"):
                        files[item["path"]] = str(meta.get(field, ""))
        return files

    def _mount_projected(self, pod: Obj, rec: PodRecord) -> bool:
        """Set up each projected volume again (tokens refresh through the token manager);
        False (and a FailedMount event) when one cannot be."""
        for v in pod["spec"].get("volumes") or []:
            if "projected" not in v:
                continue
            try:
                files = self._projected_files(pod, v)
            except (_MountError, StatusError) as err:
                msg = str(err) if not isinstance(err, StatusError) else err.status["message"]
                self.recorder.event(pod, "Warning", "FailedMount",
                                    f'MountVolume.SetUp failed for volume "{v["name"]}" : {msg}')
                return False
            d = self.projected_dir(rec.uid, v["name"])
            for path, text in files.items():
                self.filesystem[f"{d}/{path}"] = text
            rec.projected[v["name"]] = d
        return True

    def _mount_token(self, pod: Obj, rec: PodRecord) -> bool:
        if pod["spec"].get("automountServiceAccountToken") is False:
            return True
        now = self.clock.now()
        if rec.token_missing_at is not None and now - rec.token_missing_at < SYNC_FREQUENCY:
            return True
        try:
            self.mount_service_account_token(pod)
        except StatusError as err:
            if err.code == 404:  # no such ServiceAccount: see the module's docstring
                rec.token_missing_at = now
                return True
            self.recorder.event(pod, "Warning", "FailedMount",
                                f'MountVolume.SetUp failed for volume "{TOKEN_VOLUME}" : failed '
                                f"to fetch token: {err.status.get('message', '')}")
            return False
        rec.token_missing_at = None
        return True

    # -- CSI -------------------------------------------------------------------------------
    def mount_volumes(self, pod: Obj, rec: PodRecord) -> bool:
        """Set up every volume of the pod; False (and a FailedMount event) on failure."""
        ns = pod["metadata"]["namespace"]
        for v in pod["spec"].get("volumes", []):
            claim = (v.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim or v["name"] in rec.mounted:
                continue
            try:
                pvc = self.client.get("persistentvolumeclaims", claim, ns)
                pv_name = pvc.get("spec", {}).get("volumeName")
                if not pv_name:
                    raise _MountError(f'PVC {ns}/{claim} is not bound')
                pv = self.client.get("persistentvolumes", pv_name)
                csi = pv.get("spec", {}).get("csi") or {}
                driver = csi.get("driver", "")
                client = self.csi.get(driver)
                if client is None:
                    raise _MountError(f"kubernetes.io/csi: mounter.SetUpAt failed to get CSI "
                                      f"client: driver name {csi.get('driver')} not found in "
                                      "the list of registered CSI drivers")
                handle = csi["volumeHandle"]
                stage = staging_path(driver, handle)
                if "STAGE_UNSTAGE_VOLUME" in client.node_get_capabilities():
                    if handle not in self.staged:
                        client.node_stage_volume(handle, stage)
                        self.staged.add(handle)
                else:
                    stage = ""
                target = publish_path(rec.uid, pv_name)
                client.node_publish_volume(handle, target, stage or None)
            except (_MountError, RPCError, StatusError) as err:
                msg = str(err) if not isinstance(err, StatusError) else err.status["message"]
                self.recorder.event(pod, "Warning", "FailedMount",
                                    f'MountVolume.SetUp failed for volume "{v["name"]}" : {msg}')
                return False
            rec.mounted[v["name"]] = (driver, handle, target)
        if not self._mount_projected(pod, rec):
            return False
        if any("serviceAccountToken" in src for v in pod["spec"].get("volumes") or []
               for src in (v.get("projected") or {}).get("sources") or []):
            return True  # the admission plugin's kube-api-access-* volume
        return self._mount_token(pod, rec)

    def unmount_volumes(self, rec: PodRecord) -> None:
        for name in sorted(rec.mounted):
            driver, handle, target = rec.mounted.pop(name)
            client = self.csi[driver]
            client.node_unpublish_volume(handle, target)
            still_used = any(h == handle for r in self.records.values() if r is not rec
                             for _, h, _ in r.mounted.values())
            if not still_used and handle in self.staged:
                client.node_unstage_volume(handle, staging_path(driver, handle))
                self.staged.discard(handle)

    def forget(self, rec: PodRecord) -> None:
        """The pod is gone: its token and its directory go too."""
        self.tokens.delete_service_account_token(rec.uid)
        prefix = pod_dir(self.root_dir, rec.uid) + "/"
        for path in [p for p in self.filesystem if p.startswith(prefix)]:
            del self.filesystem[path]
        rec.token_dir = ""
        rec.projected.clear()
