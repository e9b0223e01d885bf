"""Per-kind behaviour of the apiserver: defaults, create and update preparation.

Mirrors the defaulting functions of ``pkg/apis/*/v1/defaults.go`` (applied when a request is
decoded) and the ``rest.RESTCreateStrategy`` / ``RESTUpdateStrategy`` hooks of
``pkg/registry/*/strategy.go``: ``PrepareForCreate`` (status reset, generation 1),
``PrepareForUpdate`` (an update of the main resource cannot change status, an update of the
``status`` subresource cannot change spec; spec changes bump ``metadata.generation``).
Only the defaults the model's readers will meet are here; each is the real default.
"""

from __future__ import annotations

import copy
import ipaddress
import random
from typing import Any

from k8sbook.api.resources import ResourceType

SERVICE_CIDR = "10.96.0.0/12"  # kubeadm's default --service-cluster-ip-range
NODE_PORT_RANGE = (30000, 32767)  # --service-node-port-range default

#: kinds with a ``status`` subresource: the main resource's updates keep the old status
HAS_STATUS = {"Pod", "Node", "Service", "Namespace", "ReplicaSet", "Deployment",
              "PodDisruptionBudget", "Ingress"}


def _image_pull_policy(image: str) -> str:
    """``SetDefaults_Container``: Always for ``:latest`` or no tag, else IfNotPresent."""
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.split(":", 1)[1] if ":" in name else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        if c.get("image"):
            c.setdefault("imagePullPolicy", _image_pull_policy(c["image"]))
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports", []):
            p.setdefault("protocol", "TCP")


def _default_template(obj: dict[str, Any]) -> None:
    tmpl = obj.setdefault("spec", {}).setdefault("template", {})
    default_pod_spec(tmpl.setdefault("spec", {}))


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    """Fill in what the API's defaulting would fill in on decode."""
    spec = obj.get("spec")
    if kind == "Pod":
        default_pod_spec(obj.setdefault("spec", {}))
    elif kind == "Service" and spec is not None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        for p in spec.get("ports", []):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
    elif kind in ("ReplicaSet", "Deployment"):
        obj.setdefault("spec", {}).setdefault("replicas", 1)
        _default_template(obj)
        if kind == "Deployment":
            s = obj["spec"]
            s.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {
                "maxUnavailable": "25%", "maxSurge": "25%"}})
            s.setdefault("revisionHistoryLimit", 10)
            s.setdefault("progressDeadlineSeconds", 600)
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif kind == "PriorityClass":
        obj.setdefault("preemptionPolicy", "PreemptLowerPriority")
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")


def pod_qos_class(spec: dict[str, Any]) -> str:
    """``qos.GetPodQOS``: Guaranteed, Burstable or BestEffort from the containers' resources."""
    containers = spec.get("containers", []) + spec.get("initContainers", [])
    requests = [c.get("resources", {}).get("requests", {}) for c in containers]
    limits = [c.get("resources", {}).get("limits", {}) for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    guaranteed = all(
        lim.get(r) and (req.get(r, lim.get(r)) == lim.get(r))
        for req, lim in zip(requests, limits, strict=True) for r in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def prepare_for_create(rt: ResourceType, obj: dict[str, Any]) -> None:
    """``PrepareForCreate``: what a client may not set on create is reset."""
    meta = obj["metadata"]
    for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(k, None)
    if rt.tracks_generation:
        meta["generation"] = 1
    if rt.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": pod_qos_class(obj.get("spec", {}))}
    elif rt.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif rt.kind == "Service":
        obj["status"] = {"loadBalancer": {}}
    elif rt.kind == "Node":
        pass  # "Nodes allow *all* fields, including status, to be set on create"
    elif rt.kind in HAS_STATUS:
        obj["status"] = {}


def prepare_for_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any],
                       subresource: str) -> None:
    """``PrepareForUpdate``: keep what this endpoint may not change; bump generation."""
    meta, old_meta = new["metadata"], old["metadata"]
    for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
              "generation", "namespace", "name"):
        if k in old_meta:
            meta[k] = old_meta[k]
        else:
            meta.pop(k, None)
    if subresource == "status":
        for k, v in old.items():
            if k not in ("status", "metadata"):
                new[k] = copy.deepcopy(v)
        for k in list(new):
            if k not in old and k not in ("status", "metadata"):
                del new[k]
        new["metadata"] = {**copy.deepcopy(old_meta), "resourceVersion":
                           meta.get("resourceVersion", old_meta.get("resourceVersion"))}
        return
    if rt.kind in HAS_STATUS:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if rt.tracks_generation and new.get("spec") != old.get("spec"):
        meta["generation"] = old_meta.get("generation", 0) + 1


class IPAllocator:
    """Service ClusterIPs from the service CIDR, and NodePorts: seeded-random, no reuse.

    Mirrors ``pkg/registry/core/service/ipallocator`` and ``portallocator``: the first address
    of the range belongs to the ``kubernetes`` Service; others are drawn at random.
    """

    def __init__(self, seed: int = 0, cidr: str = SERVICE_CIDR) -> None:
        self.net = ipaddress.ip_network(cidr)
        self._rand = random.Random(seed)
        self.used: set[str] = set()
        self.ports: set[int] = set()

    def allocate(self, wanted: str | None = None) -> str | None:
        """An address, or None if ``wanted`` is taken or outside the range."""
        if wanted:
            if wanted in self.used or ipaddress.ip_address(wanted) not in self.net:
                return None
            self.used.add(wanted)
            return wanted
        size = self.net.num_addresses
        while True:
            ip = str(self.net.network_address + self._rand.randrange(1, size - 1))
            if ip not in self.used:
                self.used.add(ip)
                return ip

    def release(self, ip: str) -> None:
        self.used.discard(ip)

    def allocate_port(self, wanted: int | None = None) -> int | None:
        lo, hi = NODE_PORT_RANGE
        if wanted:
            if wanted in self.ports or not lo <= wanted <= hi:
                return None
            self.ports.add(wanted)
            return wanted
        while True:
            port = self._rand.randint(lo, hi)
            if port not in self.ports:
                self.ports.add(port)
                return port


def node_name_trigger(obj: dict[str, Any]) -> str:
    """``pod.NodeNameTriggerFunc`` (``pkg/registry/core/pod/strategy.go``): a pod's
    ``spec.nodeName``, the value the watch cache files kubelets' watches under."""
    return obj.get("spec", {}).get("nodeName", "") or ""


#: the watch cache's indexed trigger per resource (``TriggerFunc`` in the registry's
#: ``StoreOptions``): only pods have one upstream, on ``spec.nodeName``
TRIGGERS = {"pods": ("spec.nodeName", node_name_trigger)}


def trigger_value(field: str, selector: list[tuple[str, str, str]]) -> str | None:
    """The value a parsed field selector requires for ``field`` (``RequiresExactMatch``),
    or None if it allows more than one."""
    for name, op, value in selector:
        if name == field and op == "=":
            return value
    return None

