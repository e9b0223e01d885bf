"""Server-side printing: the ``Table`` kube-apiserver returns when kubectl asks for one.

Mirrors ``pkg/printers/internalversion`` (the column handlers ``printPod``, ``printNode``,
``printDeployment``, ``printReplicaSet``, ``printService``, ``printNamespace``) and
``k8s.io/apimachinery/pkg/apis/meta/v1`` ``Table``: ``kubectl get`` sends
``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``, and the apiserver answers with column
definitions (``priority`` 1 columns are the extra ones of ``-o wide``) and one row of cells per
object, each carrying the object's metadata (``PartialObjectMetadata``, or the whole object
with ``?includeObject=Object``). AGE is computed by the server from *its* clock: here the
model's virtual clock, rendered like ``duration.HumanDuration``.

Simplified, said out loud: the pod STATUS column covers phases, waiting/terminated container
reasons and Terminating, not every init-container case of ``printPod``; kinds without a
printer of their own here get NAME and AGE (the real apiserver has printers for them too, for
example ConfigMap's DATA column).
"""

from __future__ import annotations

from typing import Any

from k8sbook.core.clock import Clock

Obj = dict[str, Any]


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "",
         description: str = "") -> Obj:
    return {"name": name, "type": kind, "format": fmt, "description": description,
            "priority": priority}


NAME = _col("Name", fmt="name", description="Name must be unique within a namespace.")
AGE = _col("Age", description="CreationTimestamp is a timestamp representing the server time "
           "when this object was created.")


def _none(value: Any) -> str:
    return str(value) if value not in (None, "") else "<none>"


def _age(obj: Obj, clock: Clock) -> str:
    stamp = obj.get("metadata", {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    return human_duration(clock.now() - Clock.parse(stamp))


def _pod_columns() -> list[Obj]:
    return [NAME, _col("Ready", description="The aggregate readiness state of this pod for "
                       "accepting traffic."),
            _col("Status", description="The aggregate status of the containers in this pod."),
            _col("Restarts", description="The number of times the containers in this pod "
                 "have been restarted and when the last container in this pod has restarted."),
            AGE,
            _col("IP", priority=1, description="IP address assigned to the pod"),
            _col("Node", priority=1, description="Name of the node where the pod is running"),
            _col("Nominated Node", priority=1, description="Name of the node where the pod "
                 "is nominated to run"),
            _col("Readiness Gates", priority=1, description="Readiness gates of the pod")]


def _pod_row(pod: Obj, clock: Clock) -> list[Any]:
    spec, status = pod.get("spec", {}), pod.get("status", {})
    reason = status.get("reason") or status.get("phase") or "Unknown"
    restarts, ready = 0, 0
    for cs in reversed(status.get("containerStatuses") or []):
        restarts += int(cs.get("restartCount", 0))
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
        elif "running" in state and cs.get("ready"):
            ready += 1
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"
    gates = spec.get("readinessGates") or []
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    gates_cell = "<none>" if not gates else \
        f"{sum(1 for g in gates if conds.get(g.get('conditionType')) == 'True')}/{len(gates)}"
    return [pod["metadata"]["name"], f"{ready}/{len(spec.get('containers') or [])}", reason,
            str(restarts), _age(pod, clock), _none(status.get("podIP")),
            _none(spec.get("nodeName")), _none(status.get("nominatedNodeName")), gates_cell]


def _node_columns() -> list[Obj]:
    return [NAME, _col("Status", description="The status of the node"),
            _col("Roles", description="The roles of the node"), AGE,
            _col("Version", description="Kubelet Version reported by the node."),
            _col("Internal-IP", priority=1, description="List of internal IPs in the node."),
            _col("External-IP", priority=1, description="List of external IPs in the node."),
            _col("OS-Image", priority=1, description="OS Image reported by the node from "
                 "/etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            _col("Kernel-Version", priority=1, description="Kernel Version reported by the "
                 "node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            _col("Container-Runtime", priority=1, description="Container runtime version "
                 "reported by the node through runtime remote API (e.g. containerd://1.4.2).")]


def _node_row(node: Obj, clock: Clock) -> list[Any]:
    status = node.get("status", {})
    ready = next((c.get("status") for c in status.get("conditions") or []
                  if c.get("type") == "Ready"), None)
    state = {"True": "Ready", "False": "NotReady"}.get(str(ready), "Unknown")
    if node.get("spec", {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node.get("metadata", {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels
                   if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1])
    if labels.get("kubernetes.io/role"):
        roles = sorted({*roles, labels["kubernetes.io/role"]})
    addrs = status.get("addresses") or []
    info = status.get("nodeInfo") or {}

    def ip(kind: str) -> str:
        return _none(next((a.get("address") for a in addrs if a.get("type") == kind), None))
    return [node["metadata"]["name"], state, ",".join(roles) or "<none>", _age(node, clock),
            info.get("kubeletVersion", ""), ip("InternalIP"), ip("ExternalIP"),
            _none(info.get("osImage")), _none(info.get("kernelVersion")),
            _none(info.get("containerRuntimeVersion"))]


def _selector(sel: Obj | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        vals = ",".join(e.get("values") or [])
        op = e.get("operator")
        if op == "Exists":
            parts.append(e["key"])
        elif op == "DoesNotExist":
            parts.append(f"!{e['key']}")
        else:
            parts.append(f"{e['key']} {op.lower()} ({vals})")
    return ",".join(parts) or "<none>"


def _images(obj: Obj) -> tuple[str, str]:
    cs = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


_WORKLOAD_WIDE = [_col("Containers", priority=1, description="Names of each container in the "
                       "template."),
                  _col("Images", priority=1, description="Images referenced by each container "
                       "in the template."),
                  _col("Selector", priority=1, description="Label selector for pods.")]


def _deployment_row(d: Obj, clock: Clock) -> list[Any]:
    st = d.get("status", {})
    names, images = _images(d)
    ready = f"{st.get('readyReplicas', 0)}/{d.get('spec', {}).get('replicas', 0)}"
    return [d["metadata"]["name"], ready, st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0), _age(d, clock), names, images,
            _selector(d.get("spec", {}).get("selector"))]


def _replicaset_row(rs: Obj, clock: Clock) -> list[Any]:
    st = rs.get("status", {})
    names, images = _images(rs)
    return [rs["metadata"]["name"], rs.get("spec", {}).get("replicas", 0),
            st.get("replicas", 0), st.get("readyReplicas", 0), _age(rs, clock), names, images,
            _selector(rs.get("spec", {}).get("selector"))]


def _service_row(svc: Obj, clock: Clock) -> list[Any]:
    spec = svc.get("spec", {})
    kind = spec.get("type", "ClusterIP")
    ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress") or []
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress) \
        or ",".join(spec.get("externalIPs") or [])
    if kind == "ExternalName":
        external = spec.get("externalName", "")
    elif not external:
        external = "<pending>" if kind == "LoadBalancer" else "<none>"
    ports = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}"
        if p.get("nodePort"):
            text += f":{p['nodePort']}"
        ports.append(f"{text}/{p.get('protocol', 'TCP')}")
    sel = spec.get("selector") or {}
    return [svc["metadata"]["name"], kind, _none(spec.get("clusterIP")), external,
            ",".join(ports) or "<none>", _age(svc, clock),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"]


PRINTERS: dict[str, tuple[list[Obj], Any]] = {
    "Pod": (_pod_columns(), _pod_row),
    "Node": (_node_columns(), _node_row),
    "Deployment": ([NAME, _col("Ready", description="Number of the pod with ready state"),
                    _col("Up-to-date", "integer", description="Total number of non-terminated "
                         "pods targeted by this deployment that have the desired template "
                         "spec."),
                    _col("Available", "integer", description="Total number of available pods "
                         "(ready for at least minReadySeconds) targeted by this deployment."),
                    AGE, *_WORKLOAD_WIDE], _deployment_row),
    "ReplicaSet": ([NAME, _col("Desired", "integer", description="Replicas is the number of "
                               "desired replicas."),
                    _col("Current", "integer", description="Replicas is the most recently "
                         "observed number of replicas."),
                    _col("Ready", "integer", description="The number of ready replicas for "
                         "this replica set."), AGE, *_WORKLOAD_WIDE], _replicaset_row),
    "Service": ([NAME, _col("Type", description="The type of the service."),
                 _col("Cluster-IP", description="The IP address of the service."),
                 _col("External-IP", description="The external IP address of the service."),
                 _col("Port(s)", description="The ports of the service."), AGE,
                 _col("Selector", priority=1, description="Route service traffic to pods with "
                      "label keys and values matching this selector.")], _service_row),
    "Namespace": ([NAME, _col("Status", description="The status of the namespace"), AGE],
                  lambda ns, clock: [ns["metadata"]["name"],
                                     ns.get("status", {}).get("phase", ""), _age(ns, clock)]),
}


def _default_row(obj: Obj, clock: Clock) -> list[Any]:
    return [obj["metadata"]["name"], _age(obj, clock)]


def partial_metadata(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def table(kind: str, objects: list[Obj], clock: Clock, *, resource_version: str = "",
          include_object: str = "Metadata", headers: bool = True) -> Obj:
    """The ``meta.k8s.io/v1`` Table for ``objects`` of ``kind``."""
    columns, row = PRINTERS.get(kind, ([NAME, AGE], _default_row))
    rows = []
    for obj in objects:
        r: Obj = {"cells": row(obj, clock)}
        if include_object == "Object":
            r["object"] = obj
        elif include_object != "None":
            r["object"] = partial_metadata(obj)
        rows.append(r)
    out: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": resource_version} if resource_version else {},
                "columnDefinitions": columns if headers else [], "rows": rows}
    return out
