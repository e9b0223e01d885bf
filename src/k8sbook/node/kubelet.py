"""The kubelet: the node agent that pulls its work from kube-apiserver and runs it.

Mirrors ``pkg/kubelet`` of Kubernetes v1.35, trimmed to what the book needs:

* **Registration** (``kubelet_node_status.go``, ``registerWithAPIServer``): the kubelet creates
  its Node, authenticating as ``system:node:<name>`` in group ``system:nodes``; the Node
  authorizer and the NodeRestriction admission plugin (:mod:`k8sbook.apiserver.node_authorizer`) let it
  touch only its own Node, its own Lease and the pods bound to it.
* **Heartbeats**: the node lease controller (``pkg/kubelet/nodelease``,
  ``component-helpers/apimachinery/lease``) renews the Lease ``kube-node-lease/<node>`` every
  10 s (a quarter of ``leaseDurationSeconds`` = 40 s); the node status loop computes the
  NodeStatus every ``nodeStatusUpdateFrequency`` (10 s) and writes it only when it changed or
  when ``nodeStatusReportFrequency`` (5 min) has passed since the last write.
* **Pods**: an informer on ``pods`` with the field selector ``spec.nodeName=<node>``; each pod
  is synced (``syncPod`` and ``kuberuntime_manager.go`` ``SyncPod``) through the CRI
  (:mod:`k8sbook.node.cri`): sandbox, images (with the image back-off), containers (with the
  crash-loop back-off), and its status is written to the ``pods/status`` subresource by the
  status manager (``pkg/kubelet/status``), with the conditions ``PodReadyToStartContainers``,
  ``Initialized``, ``Ready``, ``ContainersReady`` and ``PodScheduled``.
* **PLEG** (``pkg/kubelet/pleg/generic.go``): every second the kubelet relists sandboxes and
  containers, and a change (a container started or died) re-syncs the pod.
* **Probes** (``pkg/kubelet/prober``): HTTP readiness and liveness probes from the kubelet to
  the pod's IP (path ``kubelet->pod``).
* **Graceful deletion**: a pod with a ``deletionTimestamp`` is stopped (StopContainer with the
  grace period, then StopPodSandbox), its final status written, and the kubelet then deletes it
  with ``gracePeriodSeconds=0`` (and a UID precondition), which removes it from etcd.
* **The kubelet's own server** on port 10250 (:class:`KubeletServer`): what kube-apiserver
  calls for ``pods/log``, ``pods/exec`` and ``pods/portforward``, and what metrics-server
  scrapes (``/metrics/resource``, :meth:`Kubelet.resource_metrics`).

Simplified: no admission of pods by resources, no eviction manager, no init containers, no
startup probes, no volumes other than CSI persistent volumes (:mod:`k8sbook.node.csi`; the claim is
taken as bound when ``spec.volumeName`` is set), no static pods, no container garbage
collection beyond removing a deleted pod's containers; pod workers are one work queue with one
pending wake-up per pod; pod status is written as a JSON merge patch (the real status manager
sends a strategic merge patch with the same content); the node's pod CIDR comes from
:func:`allocate_pod_cidr` (standing in for the node IPAM controller); the back-off requeue
jitter is drawn from a seeded generator.
"""

from __future__ import annotations

import copy
import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any

from k8sbook.apiserver.authentication import CLUSTER_CA, BearerToken, ClientCertificate
from k8sbook.client.events import EventRecorder
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import Address, DialError
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.core.status import StatusError
from k8sbook.node.cni import BridgePlugin
from k8sbook.node.container_runtime import (
    CONTAINER_EXITED,
    CONTAINER_RUNNING,
    RUNTIME_VERSION,
    SANDBOX_READY,
    ContainerRuntime,
    RPCError,
    normalize_image,
)
from k8sbook.node.cri import CRIClient
from k8sbook.node.csi import CSIClient, CSINodePlugin, publish_path, staging_path

KUBELET_VERSION = "v1.35.0"
KUBELET_PORT = 10250
NODE_LEASE_NAMESPACE = "kube-node-lease"
#: ``nodeLeaseDurationSeconds`` (KubeletConfiguration default)
LEASE_DURATION = 40
#: the lease controller renews every quarter of the duration (``renewIntervalFraction``)
LEASE_RENEW_INTERVAL = LEASE_DURATION * 0.25
#: ``nodeStatusUpdateFrequency`` and ``nodeStatusReportFrequency`` defaults
NODE_STATUS_UPDATE_FREQUENCY = 10.0
NODE_STATUS_REPORT_FREQUENCY = 300.0
#: the generic PLEG's relist period
PLEG_RELIST_PERIOD = 1.0
#: ``--sync-frequency``: every pod is re-synced at least this often
SYNC_FREQUENCY = 60.0
#: ``backOffPeriod`` in kubelet.go: the first step of the image and crash-loop back-offs, and
#: how long a pod worker waits after a failed sync (with jitter factor 0.5)
BACKOFF_PERIOD = 10.0
#: ``MaxContainerBackOff`` (``pkg/kubelet/container``): both back-offs stop doubling here
MAX_CONTAINER_BACKOFF = 300.0
#: kubeadm's ``networking.podSubnet`` example (flannel's default); each node gets a /24
CLUSTER_CIDR = "10.244.0.0/16"
#: the model's usage for containers without requests (see ``Kubelet.resource_metrics``)
MODEL_IDLE_CPU = 0.001
MODEL_IDLE_MEMORY = 8 * 2**20
NODE_CIDR_MASK = 24


def allocate_pod_cidr(cluster: Any, node: str) -> str:
    """The next free /24 of :data:`CLUSTER_CIDR`, in the order nodes appear.

    Stands in for kube-controller-manager's node IPAM controller (``--allocate-node-cidrs``
    with the range allocator), which gives each new Node the next unused ``spec.podCIDR``
    after the Node registers; the model registers the Node with it already set.
    """
    cidrs: dict[str, str] = cluster.components.setdefault("pod-cidrs", {})
    if node not in cidrs:
        net = ipaddress.ip_network(CLUSTER_CIDR)
        subnets = net.subnets(new_prefix=NODE_CIDR_MASK)
        used = set(cidrs.values())
        cidrs[node] = next(str(s) for s in subnets if str(s) not in used)
    return cidrs[node]


def node_address(cluster: Any, node: str) -> str:
    """A stable InternalIP for the node: 192.168.0.10, .11 ... in the order nodes appear."""
    addrs: dict[str, str] = cluster.components.setdefault("node-addresses", {})
    if node not in addrs:
        addrs[node] = f"192.168.0.{10 + len(addrs)}"
    return addrs[node]


def http_probe(port: int, path: str = "/healthz", *, period: int = 10, failure_threshold: int = 3,
               initial_delay: int = 0) -> dict[str, Any]:
    """A ``readinessProbe``/``livenessProbe`` value (``httpGet``) for a container spec."""
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"},
            "periodSeconds": period, "failureThreshold": failure_threshold,
            "successThreshold": 1, "timeoutSeconds": 1, "initialDelaySeconds": initial_delay}


class Backoff:
    """``k8s.io/client-go/util/flowcontrol.Backoff``: per-id exponential back-off."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.entries: dict[str, tuple[float, float]] = {}  # id -> (backoff, lastUpdate)

    def get(self, key: str) -> float:
        return self.entries.get(key, (0.0, 0.0))[0]

    def next(self, key: str, now: float) -> float:
        entry = self.entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:  # hasExpired
            backoff = self.initial
        else:
            backoff = min(entry[0] * 2, self.maximum)
        self.entries[key] = (backoff, now)
        return backoff

    def in_backoff_since(self, key: str, event_time: float, now: float) -> bool:
        """``IsInBackOffSince``: less than the back-off has passed since ``event_time``."""
        entry = self.entries.get(key)
        if entry is None or event_time - entry[1] > 2 * self.maximum:
            return False
        return now - event_time < entry[0]

    def in_backoff_since_update(self, key: str, now: float) -> bool:
        """``IsInBackOffSinceUpdate``: less than the back-off has passed since the last
        ``next``."""
        entry = self.entries.get(key)
        if entry is None or now - entry[1] > 2 * self.maximum:
            return False
        return now - entry[1] < entry[0]


@dataclass
class ProbeState:
    kind: str  # readiness | liveness
    container: str
    spec: dict[str, Any]
    result: bool
    successes: int = 0
    failures: int = 0


@dataclass
class PodRecord:
    """What the kubelet knows about one pod: its pod cache entry plus sync bookkeeping."""

    uid: str
    key: str
    sandbox_id: str = ""
    sandbox_attempt: int = -1
    sandbox: dict[str, Any] | None = None
    #: container name -> id of its newest container, and that container's status (cache)
    container_ids: dict[str, str] = field(default_factory=dict)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    probes: dict[tuple[str, str], ProbeState] = field(default_factory=dict)
    start_time: str = ""
    last_status: dict[str, Any] | None = None
    terminated: bool = False
    sandbox_error: str = ""
    #: volume name -> (driver, volume handle, target path) of published CSI volumes
    mounted: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: files the kubelet wrote into the pod's volumes, by path (the projected service-account
    #: token, see :func:`k8sbook.node.token_manager.mount_service_account_token`)
    files: dict[str, str] = field(default_factory=dict)


class Kubelet:
    """One node's kubelet. ``Kubelet(cluster, "node-a").start()``."""

    def __init__(self, cluster: Any, node_name: str, *, pod_cidr: str | None = None,
                 runtime: ContainerRuntime | None = None, cpu: str = "4", memory: str = "8Gi",
                 pods: str = "110", labels: dict[str, str] | None = None) -> None:
        self.cluster = cluster
        self.node_name = node_name
        self.instance = f"kubelet/{node_name}"
        self.clock = cluster.clock
        self.trace = cluster.trace
        self.client: Client = cluster.client(self.instance)
        self.pod_cidr = pod_cidr or allocate_pod_cidr(cluster, node_name)
        self.address = node_address(cluster, node_name)
        if runtime is None:
            cni = BridgePlugin(node_name, self.pod_cidr, cluster.clock, cluster.trace)
            runtime = ContainerRuntime(node_name, cluster.clock, cluster.ids, cluster.trace, cni,
                                       network=cluster.network)
        self.runtime = runtime
        self.cri = CRIClient(self.instance, runtime, cluster.clock, cluster.trace)
        self.recorder = EventRecorder(self.client, "kubelet", node_name)
        self.capacity = {"cpu": cpu, "memory": memory, "pods": pods}
        self.labels = {"kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", **(labels or {})}
        self.image_backoff = Backoff(BACKOFF_PERIOD, MAX_CONTAINER_BACKOFF)
        self.crash_backoff = Backoff(BACKOFF_PERIOD, MAX_CONTAINER_BACKOFF)
        self.records: dict[str, PodRecord] = {}  # pod key -> record
        self.queue = RateLimitingQueue(cluster.clock, f"kubelet/{node_name} pod workers")
        self._rand = random.Random(f"{cluster.seed}/{node_name}")
        #: one pending timer per periodic loop (lease, node status, PLEG, each probe)
        self._timers: dict[str, Any] = {}
        self._requeue_timers: dict[str, Any] = {}
        self._relisted: dict[str, str] = {}  # sandbox/container id -> state at last relist
        self._lease: dict[str, Any] | None = None
        self._last_node_status: dict[str, Any] | None = None
        self._last_report = -1e9
        self._boot_id = cluster.ids.uid()
        self._machine_id = cluster.ids.uid().replace("-", "")
        self.running = False
        self.pod_informer = SharedIndexInformer(self.client, "pods",
                                                field_selector=f"spec.nodeName={node_name}")
        self.node_informer = SharedIndexInformer(self.client, "nodes",
                                                 field_selector=f"metadata.name={node_name}")
        self.csi: dict[str, CSIClient] = {}
        self.server = KubeletServer(self)
        cluster.components[self.instance] = self

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> Kubelet:
        """Register the Node, start the lease, status, PLEG loops and the pod informer."""
        self.running = True
        net = self.cluster.network
        net.add_host(self.node_name, self.address)  # the machine's DNS record
        self.server_address = Address.tcp(self.address, KUBELET_PORT)
        net.listen(self.server_address, self.instance, self.server.serve_http,
                   protocol="HTTPS", certificate=self.server.serving_cert_issuer)
        self._register()
        self.node_informer.run()
        self.pod_informer.add_event_handler(
            on_add=lambda p: self._enqueue(p),
            on_update=self._on_pod_update,
            on_delete=lambda p: self._enqueue(getattr(p, "obj", p)))
        self.pod_informer.run()
        self.queue.run_worker(self._sync)
        self._every(LEASE_RENEW_INTERVAL, self._renew_lease, "node lease", first=0.0)
        self._every(NODE_STATUS_UPDATE_FREQUENCY, self._sync_node_status, "node status",
                    first=0.0)
        self._every(PLEG_RELIST_PERIOD, self._relist, "PLEG relist", first=PLEG_RELIST_PERIOD)
        return self

    def stop(self) -> None:
        """The kubelet process stops: loops, watches and probes end; containers keep running."""
        self.running = False
        self.cluster.network.close(Address.tcp(self.address, KUBELET_PORT))
        for t in [*self._timers.values(), *self._requeue_timers.values()]:
            t.cancel()
        self._timers.clear()
        self._requeue_timers.clear()
        self.pod_informer.stop()
        self.node_informer.stop()
        self.queue.shut_down()

    def _every(self, period: float, fn: Any, label: str, first: float) -> None:
        def tick() -> None:
            if not self.running:
                return
            try:
                fn()
            except (DialError, StatusError):
                pass  # the real loops log the error and try again next period
            self._timers[label] = self.clock.call_later(period, tick, f"{self.instance} {label}")
        self._timers[label] = self.clock.call_later(first, tick, f"{self.instance} {label}")

    # -- registration, lease and node status -----------------------------------------------
    def node_object(self) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": dict(self.labels),
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]},
                "status": self.node_status()}

    def node_status(self, heartbeat: str | None = None) -> dict[str, Any]:
        now = heartbeat or self.clock.timestamp()
        current = self.node_informer.get(self.node_name) if self.running else None
        since = ((current or {}).get("status") or self._last_node_status or {}).get(
            "conditions")

        def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
            old = next((c for c in since or [] if c["type"] == type_), None)
            changed = old is None or old["status"] != status
            return {"type": type_, "status": status, "lastHeartbeatTime": now,
                    "lastTransitionTime": now if changed else old["lastTransitionTime"],
                    "reason": reason, "message": message}
        return {
            "capacity": dict(self.capacity), "allocatable": dict(self.capacity),
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                     "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID",
                     "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": self.address},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "nodeInfo": {"machineID": self._machine_id, "systemUUID": self._machine_id,
                         "bootID": self._boot_id, "kernelVersion": "6.8.0",
                         "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "containerRuntimeVersion": f"containerd://{RUNTIME_VERSION}",
                         "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"},
            "images": [{"names": [ref], "sizeBytes": 0}
                       for ref in sorted(self.runtime.images)],
        }

    def _register(self) -> None:
        try:
            self.client.create(self.node_object())
        except StatusError as err:
            if err.reason != "AlreadyExists":
                raise

    @staticmethod
    def _strip_times(status: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(status)
        for c in out.get("conditions", []):
            c.pop("lastHeartbeatTime", None)
        return out

    def _sync_node_status(self) -> None:
        """``syncNodeStatus``: every 10 s; write only if the status differs from the Node the
        kubelet sees in the API (``nodeStatusHasChanged``) or every 5 min."""
        status = self.node_status()
        now = self.clock.now()
        current = self.node_informer.get(self.node_name)
        seen = (current or {}).get("status") or self._last_node_status
        if seen is not None and self._last_node_status is not None and \
                self._strip_times(status) == self._strip_times(
                    {k: seen.get(k) for k in status}) and \
                now - self._last_report < NODE_STATUS_REPORT_FREQUENCY:
            return
        self.client.patch("nodes", self.node_name, {"status": status}, subresource="status")
        self._last_node_status, self._last_report = status, now

    def _renew_lease(self) -> None:
        """The node lease controller: create the Lease once, then UPDATE its renewTime."""
        now = self.clock.micro_timestamp()
        if self._lease is None:
            try:
                self._lease = self.client.get("leases", self.node_name, NODE_LEASE_NAMESPACE)
            except StatusError as err:
                if err.code != 404:
                    raise
                node = self.node_informer.get(self.node_name)
                owner = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                          "uid": node["metadata"]["uid"]}] if node else []
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.node_name, "namespace": NODE_LEASE_NAMESPACE,
                                     "ownerReferences": owner},
                        "spec": {"holderIdentity": self.node_name,
                                 "leaseDurationSeconds": LEASE_DURATION, "renewTime": now}}
                self._lease = self.client.create(body)
                return
        lease = copy.deepcopy(self._lease)
        lease["spec"]["renewTime"] = now
        try:
            self._lease = self.client.update(lease)
        except StatusError:
            self._lease = None  # conflict or gone: read it again next time
            raise

    # -- pod workers -----------------------------------------------------------------------
    def _on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """The pod config source passes on only changes that matter to the kubelet
        (``checkAndUpdatePod``): spec, labels, annotations, deletion; not status writes."""
        def relevant(p: dict[str, Any]) -> tuple[Any, ...]:
            m = p["metadata"]
            return (p.get("spec"), m.get("labels"), m.get("annotations"),
                    m.get("deletionTimestamp"), m.get("deletionGracePeriodSeconds"), m["uid"])
        if relevant(old) != relevant(new):
            self._enqueue(new)

    def _enqueue(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self.queue.add(f"{meta['namespace']}/{meta['name']}")

    def _requeue(self, key: str, delay: float) -> None:
        """The pod workers' work queue keeps one wake-up time per pod: a new one replaces
        the old (``podWorkers``' ``workQueue.Enqueue``)."""
        old = self._requeue_timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._requeue_timers[key] = self.clock.call_later(
            delay, lambda: self.queue.add(key), f"{self.instance} pod worker {key}")

    def _jittered_backoff(self) -> float:
        """``wait.Jitter(backOffPeriod, 0.5)``."""
        return BACKOFF_PERIOD * (1 + 0.5 * self._rand.random())

    def _sync(self, key: Any) -> None:
        if not self.running:
            return
        pod = self.pod_informer.get(key)
        rec = self.records.get(key)
        if pod is None:
            if rec is not None:
                self._remove_pod(rec)
            return
        uid = pod["metadata"]["uid"]
        if rec is None or rec.uid != uid:
            if rec is not None:
                self._remove_pod(rec)
            rec = self.records[key] = PodRecord(uid, key, start_time=self.clock.timestamp())
        try:
            if pod["metadata"].get("deletionTimestamp"):
                self._terminate(pod, rec)
                return
            if rec.terminated or pod["status"].get("phase") in ("Succeeded", "Failed"):
                return
            failed = self._sync_pod(pod, rec)
            self._write_status(pod, rec)
        except DialError:
            failed = True
        if failed:
            self._requeue(key, self._jittered_backoff())
        else:
            self._requeue(key, SYNC_FREQUENCY)

    # -- volumes (the volume manager's WaitForAttachAndMount, CSI only) --------------------
    def register_csi_driver(self, plugin: CSINodePlugin) -> None:
        """Plugin registration: the kubelet learns the driver's socket and asks NodeGetInfo."""
        client = CSIClient(self.instance, plugin)
        client.node_get_info()
        self.csi[plugin.driver] = client

    def _mount_volumes(self, pod: dict[str, Any], rec: PodRecord) -> bool:
        """Stage and publish every CSI persistent volume of the pod; False on failure."""
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
                client = self.csi.get(csi.get("driver", ""))
                if client is None:
                    raise _MountError(f"kubernetes.io/csi: mounter.SetUpAt failed to get CSI "
                                      f"client: driver name {csi.get('driver')} not found in "
                                      "the list of registered CSI drivers")
                handle = csi["volumeHandle"]
                stage = staging_path(client.plugin.driver, handle)
                if "STAGE_UNSTAGE_VOLUME" in client.node_get_capabilities():
                    client.node_stage_volume(handle, stage)
                else:
                    stage = ""
                target = publish_path(rec.uid, pv_name)
                client.node_publish_volume(handle, target, stage or None)
            except (_MountError, RPCError, StatusError) as err:
                msg = str(err) if not isinstance(err, StatusError) else err.status["message"]
                self.recorder.event(pod, "Warning", "FailedMount",
                                    f'MountVolume.SetUp failed for volume "{v["name"]}" : {msg}')
                return False
            rec.mounted[v["name"]] = (client.plugin.driver, handle, target)
        return True

    def _unmount_volumes(self, rec: PodRecord) -> None:
        for name in sorted(rec.mounted):
            driver, handle, target = rec.mounted.pop(name)
            client = self.csi[driver]
            client.node_unpublish_volume(handle, target)
            still_used = any(h == handle for r in self.records.values() if r is not rec
                             for _, h, _ in r.mounted.values())
            if not still_used and handle in client.plugin.staged:
                client.node_unstage_volume(handle, staging_path(driver, handle))

    def _sync_pod(self, pod: dict[str, Any], rec: PodRecord) -> bool:
        """``SyncPod``: returns True when something failed and the pod must be retried."""
        meta, spec = pod["metadata"], pod["spec"]
        if not self._mount_volumes(pod, rec):
            return True
        sandbox_ready = rec.sandbox_id and (rec.sandbox is None or
                                            rec.sandbox.get("state") == SANDBOX_READY)
        if not sandbox_ready:
            if rec.sandbox_id:  # the old sandbox died: kill what is left, start over
                self._kill_sandbox(rec)
            attempt = rec.sandbox_attempt + 1
            config = {"metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                   "uid": meta["uid"], "attempt": attempt},
                      "hostname": meta["name"], "logDirectory":
                      f"/var/log/pods/{meta['namespace']}_{meta['name']}_{meta['uid']}"}
            try:
                rec.sandbox_id = self.cri.run_pod_sandbox(config)
            except RPCError as err:
                rec.sandbox_error = str(err)
                self.recorder.event(pod, "Warning", "FailedCreatePodSandBox",
                                    f"Failed to create pod sandbox: {err}")
                return True
            rec.sandbox_error = ""
            rec.sandbox_attempt = attempt
            rec.sandbox = self.cri.pod_sandbox_status(rec.sandbox_id)
            rec.container_ids.clear()
            rec.containers.clear()
        failed = False
        for c in spec["containers"]:
            name = c["name"]
            cid = rec.container_ids.get(name)
            if cid is None:
                failed |= not self._start_container(pod, rec, c, attempt=0)
                continue
            status = rec.containers.get(name)
            if status is None or status["id"] != cid:
                continue  # started, not yet seen by the PLEG
            if status["state"] == CONTAINER_RUNNING:
                probe = rec.probes.get(("liveness", name))
                if probe is not None and not probe.result:
                    self.recorder.event(pod, "Normal", "Killing",
                                        f"Container {name} failed liveness probe, will be "
                                        "restarted")
                    self.cri.stop_container(cid, spec.get("terminationGracePeriodSeconds", 30))
                    probe.result, probe.failures = True, 0
                continue
            if status["state"] != CONTAINER_EXITED:
                continue
            policy = spec.get("restartPolicy", "Always")
            if policy == "Never" or (policy == "OnFailure" and status["exitCode"] == 0):
                continue
            failed |= not self._restart_container(pod, rec, c, status)
        return failed

    def _backoff_key(self, pod: dict[str, Any], c: dict[str, Any]) -> str:
        meta = pod["metadata"]
        return f"{meta['name']}_{meta['namespace']}_{meta['uid']}_{c['name']}"

    def _restart_container(self, pod: dict[str, Any], rec: PodRecord, c: dict[str, Any],
                           status: dict[str, Any]) -> bool:
        """``doBackOff`` then start the next attempt; False while in CrashLoopBackOff."""
        key = self._backoff_key(pod, c)
        now = self.clock.now()
        meta = pod["metadata"]
        if self.crash_backoff.in_backoff_since(key, status["finishedAt"], now):
            delay = int(self.crash_backoff.get(key))
            msg = (f"back-off {_duration(delay)} restarting failed container={c['name']} "
                   f"pod={meta['name']}_{meta['namespace']}({meta['uid']})")
            rec.waiting[c["name"]] = ("CrashLoopBackOff", msg)
            self.recorder.event(pod, "Warning", "BackOff",
                                f"Back-off restarting failed container {c['name']} in pod "
                                f"{meta['name']}_{meta['namespace']}({meta['uid']})")
            return False
        self.crash_backoff.next(key, now)
        return self._start_container(pod, rec, c, attempt=status["metadata"]["attempt"] + 1)

    def _ensure_image(self, pod: dict[str, Any], rec: PodRecord, c: dict[str, Any]) -> bool:
        """The image manager's ``EnsureImageExists`` with its per-image back-off."""
        image, name = c["image"], c["name"]
        policy = c.get("imagePullPolicy", "IfNotPresent")
        if policy != "Always" and self.cri.image_status(image) is not None:
            self.recorder.event(pod, "Normal", "Pulled",
                                f'Container image "{image}" already present on machine')
            return True
        if policy == "Never":
            msg = (f'Container image "{image}" is not present with pull policy of Never')
            rec.waiting[name] = ("ErrImageNeverPull", msg)
            self.recorder.event(pod, "Warning", "ErrImageNeverPull", msg)
            return False
        key = f"{rec.uid}_{normalize_image(image)}"
        now = self.clock.now()
        if self.image_backoff.in_backoff_since_update(key, now):
            msg = f'Back-off pulling image "{image}"'
            rec.waiting[name] = ("ImagePullBackOff", msg)
            self.recorder.event(pod, "Normal", "BackOff", msg)
            self.recorder.event(pod, "Warning", "Failed", "Error: ImagePullBackOff")
            return False
        self.recorder.event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        try:
            self.cri.pull_image(image)
        except RPCError as err:
            self.image_backoff.next(key, now)
            msg = f'Failed to pull image "{image}": {err}'
            rec.waiting[name] = ("ErrImagePull", str(err))
            self.recorder.event(pod, "Warning", "Failed", msg)
            self.recorder.event(pod, "Warning", "Failed", "Error: ErrImagePull")
            return False
        self.recorder.event(pod, "Normal", "Pulled",
                            f'Successfully pulled image "{image}" in 0s (0s including waiting)')
        return True

    def _start_container(self, pod: dict[str, Any], rec: PodRecord, c: dict[str, Any],
                         attempt: int) -> bool:
        """``startContainer``: image, CreateContainer, StartContainer."""
        name = c["name"]
        if not self._ensure_image(pod, rec, c):
            return False
        config = {"metadata": {"name": name, "attempt": attempt},
                  "image": {"image": c["image"]}, "command": c.get("command", []),
                  "args": c.get("args", []),
                  "ports": [p["containerPort"] for p in c.get("ports", [])],
                  "logPath": f"{name}/{attempt}.log"}
        try:
            cid = self.cri.create_container(rec.sandbox_id, config)
        except RPCError as err:
            rec.waiting[name] = ("CreateContainerError", str(err))
            self.recorder.event(pod, "Warning", "Failed", f"Error: {err}")
            return False
        self.recorder.event(pod, "Normal", "Created", f"Created container: {name}")
        try:
            self.cri.start_container(cid)
        except RPCError as err:
            rec.waiting[name] = ("RunContainerError", str(err))
            self.recorder.event(pod, "Warning", "Failed", f"Error: {err}")
            return False
        self.recorder.event(pod, "Normal", "Started", f"Started container {name}")
        old = rec.containers.get(name)
        if old is not None:
            rec.previous[name] = old
        rec.container_ids[name] = cid
        rec.attempts[name] = attempt
        rec.waiting.pop(name, None)
        for kind in ("readiness", "liveness"):
            probe = c.get(f"{kind}Probe")
            if probe:
                state = ProbeState(kind, name, probe, result=(kind == "liveness"))
                rec.probes[(kind, name)] = state
                self._start_probe(pod, rec, state, cid)
        return True

    # -- deletion --------------------------------------------------------------------------
    def _kill_sandbox(self, rec: PodRecord) -> None:
        for cid in sorted(rec.container_ids.values()):
            status = rec.containers.get(next(n for n, i in rec.container_ids.items()
                                             if i == cid))
            if status is None or status.get("state") != CONTAINER_EXITED:
                self.cri.stop_container(cid, 0)
        if rec.sandbox_id:
            self.cri.stop_pod_sandbox(rec.sandbox_id)

    def _terminate(self, pod: dict[str, Any], rec: PodRecord) -> None:
        """A pod being deleted: stop containers (grace period), the sandbox, then delete."""
        meta = pod["metadata"]
        if not rec.terminated:
            grace = int(meta.get("deletionGracePeriodSeconds", 30))
            for name, cid in sorted(rec.container_ids.items()):
                if self.runtime.containers.get(cid) and \
                        self.runtime.containers[cid].state == CONTAINER_RUNNING:
                    self.recorder.event(pod, "Normal", "Killing",
                                        f"Stopping container {name}")
                    self.cri.stop_container(cid, grace)
            if rec.sandbox_id:
                self.cri.stop_pod_sandbox(rec.sandbox_id)
            self._unmount_volumes(rec)
            rec.terminated = True
            self._refresh(rec)
        self._write_status(pod, rec)
        self.client.delete("pods", meta["name"], meta["namespace"], gracePeriodSeconds=0,
                           preconditions={"uid": meta["uid"]})

    def _remove_pod(self, rec: PodRecord) -> None:
        """The pod is gone from the API: remove its containers and sandbox (the GC's job)."""
        self.records.pop(rec.key, None)
        for slot in [k for k in self._timers if k.startswith(f"probe {rec.uid} ")]:
            self._timers.pop(slot).cancel()
        if rec.sandbox_id and rec.sandbox_id in self.runtime.sandboxes:
            for cid in sorted(c.id for c in self.runtime.containers.values()
                              if c.sandbox_id == rec.sandbox_id):
                self.cri.remove_container(cid)
            self.cri.remove_pod_sandbox(rec.sandbox_id)

    # -- PLEG ------------------------------------------------------------------------------
    def _relist(self) -> None:
        """The generic PLEG: list sandboxes and containers, diff, refresh changed pods."""
        sandboxes = self.cri.list_pod_sandbox()
        containers = self.cri.list_containers()
        now_state = {s["id"]: s["state"] for s in sandboxes}
        now_state.update({c["id"]: c["state"] for c in containers})
        owner = {s["id"]: s["metadata"]["uid"] for s in sandboxes}
        for c in containers:
            owner[c["id"]] = owner.get(c["podSandboxId"], "")
        changed = {owner.get(i, "") for i in set(now_state) | set(self._relisted)
                   if now_state.get(i) != self._relisted.get(i)}
        self._relisted = now_state
        for rec in sorted(self.records.values(), key=lambda r: r.key):
            if rec.uid in changed:
                self._refresh(rec)
                self.queue.add(rec.key)

    def _refresh(self, rec: PodRecord) -> None:
        """``GetPodStatus``: the sandbox's and each newest container's status, via the CRI."""
        if rec.sandbox_id and rec.sandbox_id in self.runtime.sandboxes:
            rec.sandbox = self.cri.pod_sandbox_status(rec.sandbox_id)
        for name, cid in sorted(rec.container_ids.items()):
            if cid in self.runtime.containers:
                rec.containers[name] = self.cri.container_status(cid)

    # -- probes ----------------------------------------------------------------------------
    def _start_probe(self, pod: dict[str, Any], rec: PodRecord, state: ProbeState,
                     cid: str) -> None:
        period = float(state.spec.get("periodSeconds", 10))
        slot = f"probe {rec.uid} {state.container} {state.kind}"

        def tick() -> None:
            if not self.running or rec.container_ids.get(state.container) != cid or \
                    self.records.get(rec.key) is not rec:
                return
            c = self.runtime.containers.get(cid)
            if c is None or c.state != CONTAINER_RUNNING:
                return
            if self.clock.now() - c.started_at >= state.spec.get("initialDelaySeconds", 0):
                self._probe(pod, rec, state)
            self._timers[slot] = self.clock.call_later(period, tick, slot)
        old = self._timers.get(slot)
        if old is not None:
            old.cancel()  # a restarted container gets a fresh prober worker
        self._timers[slot] = self.clock.call_later(period if state.spec.get(
            "initialDelaySeconds", 0) else 0.0, tick, slot)

    def _probe(self, pod: dict[str, Any], rec: PodRecord, state: ProbeState) -> None:
        http = state.spec.get("httpGet") or {}
        ip = (rec.sandbox or {}).get("network", {}).get("ip", "")
        port = int(http.get("port", 80))
        path = http.get("path", "/")
        code = self.runtime.http_get(ip, port)
        result = "connection refused" if code is None else str(code)
        self.trace.record(self.clock.now(), self.instance, f"pod/{pod['metadata']['name']}",
                          "kubelet->pod", "HTTP", "GET", f"http://{ip}:{port}{path}", "",
                          f"{result} ({state.kind} probe)")
        ok = code is not None and 200 <= code < 400
        if ok:
            state.successes, state.failures = state.successes + 1, 0
        else:
            state.failures, state.successes = state.failures + 1, 0
            why = (f"Get \"http://{ip}:{port}{path}\": dial tcp {ip}:{port}: connect: "
                   "connection refused") if code is None else \
                f"HTTP probe failed with statuscode: {code}"
            self.recorder.event(pod, "Warning", "Unhealthy",
                                f"{state.kind.capitalize()} probe failed: {why}")
        new = state.result
        if ok and state.successes >= state.spec.get("successThreshold", 1):
            new = True
        if not ok and state.failures >= state.spec.get("failureThreshold", 3):
            new = False
        if new != state.result:
            state.result = new
            self.queue.add(rec.key)

    def set_app_healthy(self, namespace: str, pod: str, healthy: bool,
                        container: str | None = None) -> None:
        """Make a pod's application answer its probes with 200 (healthy) or 503.

        Its readiness (and liveness) probes pick the change up at their next periods: a
        readiness probe turns the pod unready after ``failureThreshold`` failures."""
        self.runtime.set_healthy(namespace, pod, healthy, container)

    # -- status manager --------------------------------------------------------------------
    def _container_ready(self, rec: PodRecord, name: str, running: bool) -> bool:
        probe = rec.probes.get(("readiness", name))
        return running and (probe is None or probe.result)

    def api_status(self, pod: dict[str, Any], rec: PodRecord) -> dict[str, Any]:
        """``generateAPIPodStatus``: the PodStatus the kubelet reports for ``pod``."""
        spec = pod["spec"]
        statuses, running, waiting, stopped, succeeded = [], 0, 0, 0, 0
        ts = self.clock.timestamp
        for c in spec["containers"]:
            name = c["name"]
            cid = rec.container_ids.get(name)
            cs = rec.containers.get(name)
            if cs is not None and cs["id"] != cid:
                cs = None  # newest container not yet seen by the PLEG
            prev = rec.previous.get(name)
            out: dict[str, Any] = {"name": name, "image": c["image"], "imageID": "",
                                   "ready": False, "restartCount": 0, "started": False}

            def terminated(s: dict[str, Any]) -> dict[str, Any]:
                return {"terminated": {"exitCode": s["exitCode"], "reason": s["reason"],
                                       "startedAt": ts(s["startedAt"]),
                                       "finishedAt": ts(s["finishedAt"]),
                                       "containerID": f"containerd://{s['id']}"}}
            out["restartCount"] = rec.attempts.get(name, 0)
            if cs is not None:
                out["imageID"] = cs["imageRef"]
                out["containerID"] = f"containerd://{cs['id']}"
                out["restartCount"] = cs["metadata"]["attempt"]
            if cs is not None and cs["state"] == CONTAINER_RUNNING:
                out["state"] = {"running": {"startedAt": ts(cs["startedAt"])}}
                out["started"] = True
                out["ready"] = self._container_ready(rec, name, True)
                running += 1
                if prev is not None:
                    out["lastState"] = terminated(prev)
            elif cs is not None and cs["state"] == CONTAINER_EXITED:
                if name in rec.waiting and not rec.terminated:
                    reason, msg = rec.waiting[name]
                    out["state"] = {"waiting": {"reason": reason, "message": msg}}
                    out["lastState"] = terminated(cs)
                    stopped += 1
                else:
                    out["state"] = terminated(cs)
                    stopped += 1
                    succeeded += cs["exitCode"] == 0
            else:
                reason, msg = rec.waiting.get(name, ("ContainerCreating", ""))
                out["state"] = {"waiting": {"reason": reason, **({"message": msg} if msg
                                                                  else {})}}
                if prev is not None:
                    out["lastState"] = terminated(prev)
                    stopped += 1
                else:
                    waiting += 1
            statuses.append(out)
        n = len(spec["containers"])
        if waiting:
            phase = "Pending"
        elif running:
            phase = "Running"
        elif stopped == n and (rec.terminated or spec.get("restartPolicy") == "Never" or
                               (spec.get("restartPolicy") == "OnFailure" and succeeded == n)):
            phase = "Succeeded" if succeeded == n else "Failed"
        elif stopped:
            phase = "Running"  # every container is restarting
        else:
            phase = "Pending"
        sandbox_ok = bool(rec.sandbox and rec.sandbox.get("state") == SANDBOX_READY
                          and not rec.terminated)
        unready = [s["name"] for s in statuses if not s["ready"]]
        ready = not unready and phase == "Running"
        msg = f"containers with unready status: [{' '.join(unready)}]"
        old = {c["type"]: c for c in (rec.last_status or {}).get("conditions", [])}

        def cond(type_: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
            status = "True" if ok else "False"
            prev_c = old.get(type_)
            when = prev_c["lastTransitionTime"] if prev_c and prev_c["status"] == status \
                else ts()
            out = {"type": type_, "status": status, "lastProbeTime": None,
                   "lastTransitionTime": when}
            if reason:
                out["reason"] = reason
            if message:
                out["message"] = message
            return out
        done = phase in ("Succeeded", "Failed")
        conditions = [
            cond("PodReadyToStartContainers", sandbox_ok),
            cond("Initialized", True, "PodCompleted" if done else ""),
            cond("Ready", ready, "" if ready else ("PodCompleted" if done
                                                   else "ContainersNotReady"),
                 "" if ready or done else msg),
            cond("ContainersReady", ready, "" if ready else ("PodCompleted" if done
                                                             else "ContainersNotReady"),
                 "" if ready or done else msg),
            cond("PodScheduled", True),
        ]
        ip = (rec.sandbox or {}).get("network", {}).get("ip", "") if sandbox_ok else ""
        status: dict[str, Any] = {
            "phase": phase, "conditions": conditions, "hostIP": self.address,
            "hostIPs": [{"ip": self.address}], "startTime": rec.start_time,
            "containerStatuses": statuses,
        }
        if ip:
            status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
        elif (pod.get("status") or {}).get("podIP"):
            keep = pod["status"]
            status["podIP"], status["podIPs"] = keep["podIP"], keep.get("podIPs")
        return status

    def _write_status(self, pod: dict[str, Any], rec: PodRecord) -> None:
        status = self.api_status(pod, rec)
        if status == rec.last_status:
            return
        meta = pod["metadata"]
        try:
            self.client.patch("pods", meta["name"], {"metadata": {"uid": meta["uid"]},
                                                     "status": status},
                              meta["namespace"], subresource="status")
        except StatusError as err:
            if err.code == 404:
                return
            raise
        rec.last_status = status

    # -- helpers for chapters and tests ----------------------------------------------------
    def resource_metrics(self) -> str:
        """The body of ``GET /metrics/resource``: Prometheus text, one sample per container.

        The metric names, labels and millisecond timestamps are the kubelet's
        (``pkg/kubelet/metrics/collectors/resource_metrics.go``); the *numbers* are the
        model's, not measured: a running container burns CPU at the rate of its
        ``resources.requests.cpu`` (1m without one) since it started, and its working set
        is its ``resources.requests.memory`` (8 MiB without one).
        """
        from k8sbook.controlplane.scheduler.framework import parse_quantity
        from k8sbook.core.clock import EPOCH
        now = self.clock.now()
        stamp = int((EPOCH.timestamp() + now) * 1000)
        cpu_lines: list[str] = []
        mem_lines: list[str] = []
        for key in sorted(self.records):
            rec = self.records[key]
            pod = self.pod_informer.get(key)
            if pod is None or rec.terminated:
                continue
            ns, name = key.split("/", 1)
            specs = {c["name"]: c for c in pod["spec"].get("containers", [])}
            for cname in sorted(rec.container_ids):
                c = self.runtime.containers.get(rec.container_ids[cname])
                if c is None or c.state != CONTAINER_RUNNING or cname not in specs:
                    continue
                req = (specs[cname].get("resources") or {}).get("requests") or {}
                rate = parse_quantity(req["cpu"]) if "cpu" in req else MODEL_IDLE_CPU
                mem = int(parse_quantity(req["memory"])) if "memory" in req \
                    else MODEL_IDLE_MEMORY
                labels = f'container="{cname}",namespace="{ns}",pod="{name}"'
                cpu_lines.append(f"container_cpu_usage_seconds_total{{{labels}}} "
                                 f"{rate * (now - c.started_at):g} {stamp}")
                mem_lines.append(f"container_memory_working_set_bytes{{{labels}}} "
                                 f"{mem} {stamp}")
        return "\n".join([
            ("# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed "
             "by the container in core-seconds"),
            "# TYPE container_cpu_usage_seconds_total counter", *cpu_lines,
            ("# HELP container_memory_working_set_bytes [STABLE] Current working set of the "
             "container in bytes"),
            "# TYPE container_memory_working_set_bytes gauge", *mem_lines]) + "\n"

    def record(self, namespace: str, name: str) -> PodRecord | None:
        return self.records.get(f"{namespace}/{name}")

    def container_id(self, namespace: str, pod: str, container: str) -> str:
        rec = self.record(namespace, pod)
        if rec is None or container not in rec.container_ids:
            raise KeyError(f"no container {container!r} of pod {namespace}/{pod} on "
                           f"{self.node_name}")
        return rec.container_ids[container]


class _MountError(Exception):
    pass


def _duration(seconds: int) -> str:
    """Go's ``time.Duration.String`` for whole seconds: 10s, 1m20s, 5m0s."""
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60}s"


class KubeletServer:
    """The kubelet's own HTTPS server on port 10250 (``pkg/kubelet/server``).

    A caller must present a client certificate signed by the cluster CA (``--client-ca-file``;
    kubeadm's KubeletConfiguration turns anonymous access off) or a bearer token the apiserver
    vouches for in a TokenReview (``authentication.webhook``, cached ``cacheTTL`` = 2 min), and
    is authorized by asking the apiserver a ``SubjectAccessReview`` (authorization mode
    ``Webhook``): ``/containerLogs``, ``/exec`` and ``/portForward`` all map to the
    ``nodes/proxy`` subresource (``/metrics/*`` to ``nodes/metrics``), with verb ``get`` for
    GET and ``create`` for POST. Answers are cached (5 min when allowed, 30 s when
    not: ``cacheAuthorizedTTL`` / ``cacheUnauthorizedTTL``). The serving certificate is the
    kubelet's self-signed one unless serving-certificate bootstrap is configured.
    """

    CACHE_AUTHORIZED_TTL = 300.0
    CACHE_UNAUTHORIZED_TTL = 30.0
    #: ``authentication.webhook.cacheTTL`` (KubeletConfiguration default 2m)
    TOKEN_CACHE_TTL = 120.0

    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self.serving_cert_issuer = f"{kubelet.node_name}-ca"  # self-signed at start-up
        self._cache: dict[tuple[str, tuple[str, ...], str], tuple[bool, float]] = {}
        self._token_cache: dict[str, tuple[tuple[str, tuple[str, ...]] | None, float]] = {}

    def reachable(self) -> bool:
        k = self.kubelet
        return k.running and not k.cluster.network.is_isolated(k.instance)

    def _authenticate_token(self, token: str) -> tuple[str, tuple[str, ...]] | None:
        """Webhook token authentication: a TokenReview, cached ``cacheTTL`` (2 min)."""
        now = self.kubelet.clock.now()
        hit = self._token_cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "metadata": {}, "spec": {"token": token}}
        status = self.kubelet.client.create(review).get("status", {})
        who = None
        if status.get("authenticated"):
            u = status.get("user", {})
            who = (u.get("username", ""), tuple(u.get("groups", [])))
        self._token_cache[token] = (who, now + self.TOKEN_CACHE_TTL)
        return who

    def _authorize(self, user: str, groups: tuple[str, ...], verb: str,
                   subresource: str = "proxy") -> bool:
        key = (user, groups, verb + "/" + subresource)
        now = self.kubelet.clock.now()
        if key in self._cache and self._cache[key][1] > now:
            return self._cache[key][0]
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "metadata": {},
               "spec": {"user": user, "groups": list(groups),
                        "resourceAttributes": {"verb": verb, "resource": "nodes",
                                               "subresource": subresource,
                                               "name": self.kubelet.node_name}}}
        allowed = bool(self.kubelet.client.create(sar)["status"].get("allowed"))
        ttl = self.CACHE_AUTHORIZED_TTL if allowed else self.CACHE_UNAUTHORIZED_TTL
        self._cache[key] = (allowed, now + ttl)
        return allowed

    def serve_http(self, req: HTTPRequest) -> HTTPResponse:
        """The handler the kubelet listens with on port 10250."""
        code, body = self.handle(req.method, req.path, req.credentials, req.params)
        return HTTPResponse(code, body)

    def handle(self, method: str, path: str, credentials: Any,
               params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Serve one request; returns (HTTP status, body)."""
        if isinstance(credentials, BearerToken):
            who = self._authenticate_token(credentials.token)
            if who is None:
                return 401, {"message": "Unauthorized"}
            user, groups = who
        elif isinstance(credentials, ClientCertificate) and credentials.issuer == CLUSTER_CA:
            user = credentials.common_name
            groups = (*credentials.organizations, "system:authenticated")
        else:
            return 401, {"message": "Unauthorized"}
        verb = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}[method]
        bare = path.split("?", 1)[0]
        # pkg/kubelet/server/auth.go: /metrics/* is nodes/metrics, /stats/* nodes/stats ...
        sub = "metrics" if bare == "/metrics" or bare.startswith("/metrics/") else "proxy"
        if not self._authorize(user, groups, verb, sub):
            return 403, {"message": f"Forbidden (user={user}, verb={verb}, resource=nodes, "
                                    f"subresource={sub})"}
        if bare == "/metrics/resource":
            return 200, {"text": self.kubelet.resource_metrics()}
        parts = path.split("?", 1)[0].strip("/").split("/")
        action, ns, pod = parts[0], parts[1], parts[2]
        k = self.kubelet
        rec = k.record(ns, pod)
        if rec is None:
            return 404, {"message": f'pod "{pod}" not found'}
        if action == "portForward":
            port = int(params.get("ports", 80))
            url = k.cri.port_forward(rec.sandbox_id, port)
            ok = k.runtime.http_get((rec.sandbox or {}).get("network", {}).get("ip", ""), port)
            k.trace.record(k.clock.now(), k.instance, k.runtime.instance,
                           "kubelet->container-runtime", "HTTP streaming (SPDY/WebSocket)",
                           "POST", url, "", "200" if ok else "connection refused")
            if ok is None:
                return 500, {"message": f"error forwarding port {port} to pod {rec.uid}: "
                                        "connection refused"}
            return 200, {"text": f"Forwarding from 127.0.0.1:{port} -> {port}: HTTP {ok}"}
        container = parts[3]
        cid = rec.container_ids.get(container)
        if cid is None:
            return 404, {"message": f'container "{container}" in pod "{pod}" is not available'}
        if action == "containerLogs":
            # the kubelet reads the log file the runtime writes under /var/log/pods itself
            return 200, {"text": "\n".join(k.runtime.logs(cid)) + "\n"}
        cmd = list(params.get("command") or [])
        try:
            url = k.cri.exec(cid, cmd)
        except RPCError as err:
            return 500, {"message": str(err)}
        k.trace.record(k.clock.now(), k.instance, k.runtime.instance,
                       "kubelet->container-runtime", "HTTP streaming (SPDY/WebSocket)",
                       "POST", url, "", "101 Switching Protocols")
        _, out = k.runtime.exec_sync(cid, cmd)
        return 200, {"text": out}
