"""Per-kind behaviour of the apiserver: defaults, create and update preparation.

Mirrors the defaulting functions of ``pkg/apis/*/v1/defaults.go`` (applied when a request is
decoded) and the ``rest.RESTCreateStrategy`` / ``RESTUpdateStrategy`` hooks of
``pkg/registry/*/strategy.go``: ``PrepareForCreate`` (status reset, generation 1),
``PrepareForUpdate`` (an update of the main resource cannot change status, an update of the
``status`` subresource cannot change spec; spec changes bump ``metadata.generation``).
Only the defaults the model's readers will meet are here; each is the real default.
"""

from __future__ import annotations

import base64
import ipaddress
import random
from typing import Any

from k8sbook.api import decoding, fieldvalidation, validation
from k8sbook.api.request import Request, UserInfo
from k8sbook.api.resources import ResourceType
from k8sbook.apiserver import certificates
from k8sbook.core.status import bad_request, invalid

SERVICE_CIDR = "10.96.0.0/12"  # kubeadm's default --service-cluster-ip-range
NODE_PORT_RANGE = (30000, 32767)  # --service-node-port-range default

#: kinds with a ``status`` subresource: the main resource's updates keep the old status
HAS_STATUS = {"Pod", "Node", "Service", "Namespace", "ReplicaSet", "Deployment",
              "PodDisruptionBudget", "Ingress", "StatefulSet", "DaemonSet", "Job", "CronJob"}

#: the labels ``jobStrategy`` puts on a Job's pod template and selects by (``batch/v1``
#: ``ControllerUidLabel``, ``JobNameLabel`` and their legacy unprefixed forms)
JOB_LABELS = ("batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name",
              "controller-uid", "job-name")


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


def _default_job_spec(spec: dict[str, Any]) -> None:
    """``SetDefaults_Job`` (``pkg/apis/batch/v1/defaults.go``)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    # with backoffLimitPerIndex the Job-wide limit is math.MaxInt32
    spec.setdefault("backoffLimit", 2147483647 if spec.get("backoffLimitPerIndex") is not None
                    else 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy",
                    "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
        for pattern in rule.get("onPodConditions") or []:
            pattern.setdefault("status", "True")
    default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))


def generate_job_selector(rt: ResourceType, obj: dict[str, Any]) -> None:
    """``generateSelector`` of the Job strategy (run in ``Validate``, once the uid is set):
    unless ``spec.manualSelector``, the template gets the Job's uid and name as labels and
    the selector selects that uid."""
    if rt.kind != "Job" or obj.get("spec", {}).get("manualSelector"):
        return
    spec, meta = obj["spec"], obj["metadata"]
    labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
    for key in JOB_LABELS:
        labels[key] = meta["uid"] if key.endswith("controller-uid") else meta["name"]
    spec.setdefault("selector", {}).setdefault("matchLabels", {})[JOB_LABELS[0]] = meta["uid"]


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
    elif kind == "StatefulSet" and spec is not None:
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                           "rollingUpdate": {"partition": 0}})
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("persistentVolumeClaimRetentionPolicy", {
            "whenDeleted": "Retain", "whenScaled": "Retain"})
        _default_template(obj)
    elif kind == "DaemonSet" and spec is not None:
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": 1, "maxSurge": 0}})
        spec.setdefault("revisionHistoryLimit", 10)
        _default_template(obj)
    elif kind == "Job" and spec is not None:
        _default_job_spec(spec)
    elif kind == "CronJob" and spec is not None:
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        _default_job_spec(spec.setdefault("jobTemplate", {}).setdefault("spec", {}))
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        merge_string_data(obj)
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


def prepare_for_create(rt: ResourceType, obj: dict[str, Any],
                       user: UserInfo | None = None) -> None:
    """``PrepareForCreate``: what a client may not set on create is reset."""
    meta = obj["metadata"]
    if rt.kind == "CertificateSigningRequest":
        certificates.prepare_for_create(obj, user)
    for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(k, None)
    if rt.tracks_generation:
        meta["generation"] = 1
    if rt.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": pod_qos_class(obj.get("spec", {}))}
    elif rt.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif rt.kind in ("Service", "Ingress"):  # a value struct: serialised even when empty
        obj["status"] = {"loadBalancer": {}}
    elif rt.kind == "Node":
        pass  # "Nodes allow *all* fields, including status, to be set on create"
    elif rt.kind in HAS_STATUS:
        obj["status"] = zero_status(rt.api_version, rt.kind)


def zero_status(api_version: str, kind: str) -> dict[str, Any]:
    """The status ``PrepareForCreate`` leaves (``obj.Status = apps.ReplicaSetStatus{}``): the Go
    zero value, whose fields without ``omitempty`` serialise as 0, ``""`` or false. Those are
    the fields the official OpenAPI schema lists as ``required`` (a ReplicaSet's
    ``{"replicas": 0}``, a PodDisruptionBudget's four counters); clients whose models insist
    on them (the official Python client) deserialise what the server answers."""
    schema = fieldvalidation.kind_schema({"apiVersion": api_version, "kind": kind}) or {}
    status = (schema.get("properties") or {}).get("status")
    if not status:
        return {}
    _, status = fieldvalidation.resolve(status)
    zero = {"integer": 0, "string": "", "boolean": False, "number": 0}
    out: dict[str, Any] = {}
    for name in status.get("required") or []:
        kind_of = (status.get("properties") or {}).get(name, {}).get("type")
        if isinstance(kind_of, list):
            kind_of = next((t for t in kind_of if t != "null"), None)
        if kind_of in zero:
            out[name] = zero[kind_of]
    return out


def merge_string_data(secret: dict[str, Any]) -> None:
    """``Convert_v1_Secret_To_core_Secret``: each ``stringData`` entry overwrites ``data`` with
    its value base64-encoded, and ``stringData`` (write-only) is not kept."""
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = secret.get("data")
        if not isinstance(data, dict):
            data = secret["data"] = {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def prepare_for_update(rt: ResourceType, new: dict[str, Any], old: dict[str, Any],
                       subresource: str, now: str = "") -> None:
    """``PrepareForUpdate``: keep what this endpoint may not change; bump generation."""
    meta, old_meta = new["metadata"], old["metadata"]
    for k in ("finalizers", "ownerReferences"):  # ``omitempty``: an emptied list is no field
        if meta.get(k) == []:
            del meta[k]
    for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
              "generation", "namespace", "name"):
        if k in old_meta:
            meta[k] = old_meta[k]
        else:
            meta.pop(k, None)
    if rt.kind == "CertificateSigningRequest":
        certificates.prepare_for_update(new, old, subresource, now)
        return
    if subresource == "status":
        for k, v in old.items():
            if k not in ("status", "metadata"):
                new[k] = decoding.copy_json(v)  # the stored object: JSON types only
        for k in list(new):
            if k not in old and k not in ("status", "metadata"):
                del new[k]
        annotations = meta.get("annotations")
        new["metadata"] = {**decoding.copy_json(old_meta), "resourceVersion":
                           meta.get("resourceVersion", old_meta.get("resourceVersion"))}
        if rt.kind == "Deployment":
            # deploymentStatusStrategy resets only spec and labels: the controller records
            # ``deployment.kubernetes.io/revision`` with its status update
            if annotations:
                new["metadata"]["annotations"] = annotations
            else:
                new["metadata"].pop("annotations", None)
        return
    if rt.kind == "Namespace" and subresource != "finalize":
        # namespaceStrategy: only the ``finalize`` subresource changes spec.finalizers
        new.setdefault("spec", {})["finalizers"] = list(old.get("spec", {}).get("finalizers",
                                                                                []))
        if not new["spec"]["finalizers"]:
            del new["spec"]["finalizers"]
    if rt.kind in HAS_STATUS:
        if "status" in old:
            new["status"] = decoding.copy_value(old["status"])
        else:
            new.pop("status", None)
    if rt.tracks_generation and new.get("spec") != old.get("spec"):
        meta["generation"] = old_meta.get("generation", 0) + 1


#: ``metav1.FinalizerOrphanDependents`` and ``metav1.FinalizerDeleteDependents``
ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"


def deletion_finalizers(meta: dict[str, Any], opts: dict[str, Any]) -> list[str] | None:
    """``deletionFinalizersForGarbageCollection`` (``registry/generic/registry/store.go``):
    the object's finalizers with ``orphan`` or ``foregroundDeletion`` for the DELETE's
    ``propagationPolicy`` (``Background``, the default for the model's kinds, adds none and
    lets the garbage collector find the dependents once the owner is gone), or None if they
    do not change. An unknown policy never gets here: :mod:`~k8sbook.apiserver.options`
    refuses it with a 422 first (``ValidateDeleteOptions``)."""
    policy = opts.get("propagationPolicy")
    if policy is None and opts.get("orphanDependents") is not None:
        policy = "Orphan" if opts["orphanDependents"] in (True, "true") else "Background"
    if policy is None:
        return None
    if policy not in ("Foreground", "Background", "Orphan"):
        return None  # refused before any of this by options.validate (ValidateDeleteOptions)
    old = list(meta.get("finalizers") or [])
    new = [f for f in old if f not in (ORPHAN, FOREGROUND)]
    new += {"Orphan": [ORPHAN], "Foreground": [FOREGROUND], "Background": []}[policy]
    return new if set(new) != set(old) else None


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


def allocate_service(ips: IPAllocator, obj: dict[str, Any]) -> list[str]:
    """A Service's cluster IP and node ports, on create; the addresses allocated."""
    spec = obj["spec"]
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
        if spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
        return []
    ip = ips.allocate(spec.get("clusterIP"))
    if ip is None:
        raise invalid("Service", "", obj["metadata"]["name"], [validation.invalid(
            "spec.clusterIPs", [spec.get("clusterIP")], "failed to allocate IP "
            f"{spec.get('clusterIP')}: provided IP is already allocated")])
    spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        for p in spec.get("ports", []):
            port = ips.allocate_port(p.get("nodePort"))
            if port is None:
                ips.release(ip)
                raise invalid("Service", "", obj["metadata"]["name"], [validation.invalid(
                    "spec.ports[0].nodePort", p.get("nodePort"),
                    "provided port is already allocated")])
            p["nodePort"] = port
    return [ip]


def keep_allocations(new: dict[str, Any], old: dict[str, Any]) -> None:
    """ClusterIPs are immutable once allocated; an update that omits them keeps them."""
    for k in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if k in old.get("spec", {}) and k not in new.get("spec", {}):
            new["spec"][k] = old["spec"][k]


def check_patched_identity(rt: ResourceType, req: Request, obj: dict[str, Any],
                            old: dict[str, Any]) -> None:
    """A patch may not move the object: ``checkName`` (``handlers/rest.go``) answers 400 for
    another name or namespace; ``ValidateObjectMetaUpdate`` 422 for another uid (an absent
    uid is the old one: ``rest.BeforeUpdate``)."""
    meta = obj["metadata"]
    if meta.get("name") != req.name:
        raise bad_request(f"the name of the object ({meta.get('name') or ''}) does not match "
                          f"the name on the URL ({req.name})")
    if rt.namespaced and meta.get("namespace") and meta["namespace"] != req.namespace:
        raise bad_request(f"the namespace of the object ({meta['namespace']}) does not match "
                          f"the namespace on the request ({req.namespace})")
    uid = old["metadata"].get("uid")
    if meta.get("uid") and meta["uid"] != uid:
        raise invalid(rt.kind, rt.group, req.name, [validation.invalid(
            "metadata.uid", meta["uid"], "field is immutable")])
    meta.setdefault("uid", uid)
