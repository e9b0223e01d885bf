"""Registration, the NodeStatus and the node Lease: how a kubelet shows it is alive.

Mirrors ``pkg/kubelet/kubelet_node_status.go`` (``registerWithAPIServer``, ``syncNodeStatus``,
``nodeStatusHasChanged``), the status setters of ``pkg/kubelet/nodestatus`` and the lease
controller of ``pkg/kubelet/nodelease`` (``component-helpers/apimachinery/lease``), v1.35.0:

* the kubelet creates its Node, authenticating as ``system:node:<name>`` in group
  ``system:nodes`` (the Node authorizer and NodeRestriction let it touch only its own Node,
  its own Lease and the pods bound to it);
* the lease controller renews ``kube-node-lease/<node>`` every 10 s (a quarter of
  ``leaseDurationSeconds`` = 40 s), creating it the first time, owned by the Node;
* the status loop computes the NodeStatus every ``nodeStatusUpdateFrequency`` (10 s) and
  writes it only when it changed or when ``nodeStatusReportFrequency`` (5 min) has passed.

Simplified: ``status.images`` lists the images the kubelet learned of from its own CRI calls
(the real image manager lists them with ``ListImages``), so the sandbox image is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError
from k8sbook.node.container_runtime import RUNTIME_VERSION
from k8sbook.node.kubelet.config import (
    KUBELET_PORT,
    KUBELET_VERSION,
    LEASE_DURATION,
    NODE_LEASE_NAMESPACE,
    NODE_STATUS_REPORT_FREQUENCY,
)


class NodeHost(Protocol):
    """What the status setters read of the kubelet (upstream, ``defaultNodeStatusFuncs``
    closes over the same fields of the ``Kubelet``): its node's name, addresses, capacity,
    labels, pod CIDR, machine and boot ids, the images it knows, the Node it sees and the
    status it last wrote."""

    node_name: str
    address: str
    pod_cidr: str
    capacity: dict[str, str]
    labels: dict[str, str]
    machine_id: str
    boot_id: str
    images: set[str]
    running: bool
    clock: Clock
    node_informer: SharedIndexInformer
    status_sync: NodeStatusSync

    def node_status(self, heartbeat: str | None = None) -> dict[str, Any]: ...


def node_status(k: NodeHost, heartbeat: str | None = None) -> dict[str, Any]:
    """The setters: capacity, conditions, addresses, daemon endpoints, node info, images."""
    now = heartbeat or k.clock.timestamp()
    current = k.node_informer.get(k.node_name) if k.running else None
    since = ((current or {}).get("status") or k.status_sync.last or {}).get("conditions")

    def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
        old = next((c for c in since or [] if c["type"] == type_), None)
        since_t = now if old is None or old["status"] != status else old["lastTransitionTime"]
        return {"type": type_, "status": status, "lastHeartbeatTime": now,
                "lastTransitionTime": since_t,
                "reason": reason, "message": message}
    return {
        "capacity": dict(k.capacity), "allocatable": dict(k.capacity),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                 "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                 "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID",
                 "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": k.address},
                      {"type": "Hostname", "address": k.node_name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {"machineID": k.machine_id, "systemUUID": k.machine_id,
                     "bootID": k.boot_id, "kernelVersion": "6.8.0",
                     "osImage": "Debian GNU/Linux 12 (bookworm)",
                     "containerRuntimeVersion": f"containerd://{RUNTIME_VERSION}",
                     "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                     "operatingSystem": "linux", "architecture": "amd64"},
        "images": [{"names": [ref], "sizeBytes": 0} for ref in sorted(k.images)],
    }


def node_object(k: NodeHost) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": k.node_name, "labels": dict(k.labels),
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"podCIDR": k.pod_cidr, "podCIDRs": [k.pod_cidr]},
            "status": k.node_status()}


def _strip_times(status: dict[str, Any]) -> dict[str, Any]:
    """The status without its conditions' ``lastHeartbeatTime``, for comparing: a new top
    level and new conditions, the rest shared with ``status`` (nothing here changes it)."""
    out = dict(status)
    if "conditions" in out:
        out["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                             for c in out["conditions"]]
    return out


class NodeStatusSync:
    """``registerWithAPIServer`` and ``syncNodeStatus``: it receives the API client, the
    clock, the node's name and informer, and the kubelet's ``node_object`` and
    ``node_status`` (which a kubelet with ``--cloud-provider=external`` changes)."""

    def __init__(self, *, client: Client, clock: Clock, node_name: str,
                 node_informer: SharedIndexInformer,
                 node_object: Callable[[], dict[str, Any]],
                 node_status: Callable[[], dict[str, Any]]) -> None:
        self.client = client
        self.clock = clock
        self.node_name = node_name
        self.node_informer = node_informer
        self.node_object = node_object
        self.node_status = node_status
        self.last: dict[str, Any] | None = None
        self.last_report = -1e9
        #: ``nodeStatusReportFrequency`` (KubeletConfiguration): 5 min by default; set it to
        #: 10 s and the kubelet writes its status on every sync, as before KEP-589
        self.report_frequency = NODE_STATUS_REPORT_FREQUENCY

    def register(self) -> None:
        try:
            self.client.create(self.node_object())
        except StatusError as err:
            if err.reason != "AlreadyExists":
                raise

    def sync(self) -> None:
        """Every 10 s; write only if the status differs from the Node the kubelet sees in
        the API (``nodeStatusHasChanged``) or every 5 min."""
        status = self.node_status()
        now = self.clock.now()
        current = self.node_informer.get(self.node_name)
        seen = (current or {}).get("status") or self.last
        if seen is not None and self.last is not None and \
                _strip_times(status) == _strip_times({key: seen.get(key) for key in status}) \
                and now - self.last_report < self.report_frequency:
            return
        self.client.patch("nodes", self.node_name, {"status": status}, subresource="status")
        self.last, self.last_report = status, now


class NodeLeaseController:
    """``nodelease.controller``: create the Lease once, then UPDATE its renewTime. Like
    ``NewController(clock, client, holderIdentity, ...)`` it receives the clock, the API
    client and the node's name, and the node informer (for the Lease's owner)."""

    def __init__(self, *, client: Client, clock: Clock, node_name: str,
                 node_informer: SharedIndexInformer) -> None:
        self.client = client
        self.clock = clock
        self.node_name = node_name
        self.node_informer = node_informer
        self.lease: dict[str, Any] | None = None

    def renew(self) -> None:
        now = self.clock.micro_timestamp()
        if self.lease is None:
            try:
                self.lease = self.client.get("leases", self.node_name, NODE_LEASE_NAMESPACE)
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
                self.lease = self.client.create(body)
                return
        # the Lease last seen with a new renewTime: a new top level and spec, the rest shared
        # with the last response (the apiserver decodes a copy of what it is sent)
        lease = {**self.lease, "spec": {**self.lease["spec"], "renewTime": now}}
        try:
            self.lease = self.client.update(lease)
        except StatusError:
            self.lease = None  # conflict or gone: read it again next time
            raise
