"""Server-side printing: the ``Table`` kube-apiserver returns when kubectl asks for one.

Mirrors ``pkg/printers/internalversion`` (the column handlers ``printPod``, ``printNode``,
``printDeployment``, ``printReplicaSet``, ``printControllerRevision``, ``printService``,
``printNamespace``) and
``k8s.io/apimachinery/pkg/apis/meta/v1`` ``Table``: ``kubectl get`` sends
``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``, and the apiserver answers with column
definitions (``priority`` 1 columns are the extra ones of ``-o wide``) and one row of cells per
object, each carrying the object's metadata (``PartialObjectMetadata``, or the whole object
with ``?includeObject=Object``). AGE is computed by the server from *its* clock: here the
model's virtual clock, rendered like ``duration.HumanDuration``.

Simplified, said out loud: the pod STATUS column covers phases, waiting/terminated container
reasons and Terminating, not every init-container case of ``printPod``. The other kinds'
handlers are in :mod:`k8sbook.serve.printer_handlers`, the shared cells in
:mod:`k8sbook.serve.columns`; a kind with no handler gets the apiserver's default table
(``Name``, ``Created At``).
"""

from __future__ import annotations

from typing import Any

from k8sbook.core.clock import Clock
from k8sbook.serve.columns import (
    AGE,
    NAME,
    age,
    col,
    containers_and_images,
    human_duration,
    label_selector,
    none,
)
from k8sbook.serve.printer_handlers import CREATED_AT, created_at, doc, handlers

Obj = dict[str, Any]
__all__ = ["PRINTERS", "human_duration", "partial_metadata", "table"]


def _pod_columns() -> list[Obj]:
    return [NAME, col("Ready", description="The aggregate readiness state of this pod for "
                       "accepting traffic."),
            col("Status", description="The aggregate status of the containers in this pod."),
            col("Restarts", description="The number of times the containers in this pod "
                 "have been restarted and when the last container in this pod has restarted."),
            AGE,
            col("IP", priority=1, description="IP address assigned to the pod"),
            col("Node", priority=1, description="Name of the node where the pod is running"),
            col("Nominated Node", priority=1, description="Name of the node where the pod "
                 "is nominated to run"),
            col("Readiness Gates", priority=1, description="Readiness gates of the pod")]


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
            str(restarts), age(pod, clock), none(status.get("podIP")),
            none(spec.get("nodeName")), none(status.get("nominatedNodeName")), gates_cell]


def _node_columns() -> list[Obj]:
    return [NAME, col("Status", description="The status of the node"),
            col("Roles", description="The roles of the node"), AGE,
            col("Version", description="Kubelet Version reported by the node."),
            col("Internal-IP", priority=1, description="List of internal IPs in the node."),
            col("External-IP", priority=1, description="List of external IPs in the node."),
            col("OS-Image", priority=1, description="OS Image reported by the node from "
                 "/etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            col("Kernel-Version", priority=1, description="Kernel Version reported by the "
                 "node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            col("Container-Runtime", priority=1, description="Container runtime version "
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
        return none(next((a.get("address") for a in addrs if a.get("type") == kind), None))
    return [node["metadata"]["name"], state, ",".join(roles) or "<none>", age(node, clock),
            info.get("kubeletVersion", ""), ip("InternalIP"), ip("ExternalIP"),
            none(info.get("osImage")), none(info.get("kernelVersion")),
            none(info.get("containerRuntimeVersion"))]


_WORKLOAD_WIDE = [col("Containers", priority=1, description="Names of each container in the "
                       "template."),
                  col("Images", priority=1, description="Images referenced by each container "
                       "in the template."),
                  col("Selector", priority=1, description="Label selector for pods.")]


def _deployment_row(d: Obj, clock: Clock) -> list[Any]:
    st = d.get("status", {})
    names, images = containers_and_images(d)
    ready = f"{st.get('readyReplicas', 0)}/{d.get('spec', {}).get('replicas', 0)}"
    return [d["metadata"]["name"], ready, st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0), age(d, clock), names, images,
            label_selector(d.get("spec", {}).get("selector"))]


def _replicaset_row(rs: Obj, clock: Clock) -> list[Any]:
    st = rs.get("status", {})
    names, images = containers_and_images(rs)
    return [rs["metadata"]["name"], rs.get("spec", {}).get("replicas", 0),
            st.get("replicas", 0), st.get("readyReplicas", 0), age(rs, clock), names, images,
            label_selector(rs.get("spec", {}).get("selector"))]


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
    return [svc["metadata"]["name"], kind, none(spec.get("clusterIP")), external,
            ",".join(ports) or "<none>", age(svc, clock),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) or "<none>"]


def _controller_revision_row(rev: Obj, clock: Clock) -> list[Any]:
    """``printControllerRevision``: the controller as ``kind.group/name``
    (``formatResourceName`` with the kind), or ``<none>``."""
    ref = next((r for r in rev["metadata"].get("ownerReferences") or [] if r.get("controller")),
               {"kind": "", "apiVersion": "", "name": "<none>"})
    kind = f"{ref['kind']}.{ref['apiVersion'].rpartition('/')[0]}".strip(".").lower()
    return [rev["metadata"]["name"], f"{kind}/{ref['name']}" if kind else ref["name"],
            rev.get("revision", 0), age(rev, clock)]


PRINTERS: dict[str, tuple[list[Obj], Any]] = {
    "Pod": (_pod_columns(), _pod_row),
    "Node": (_node_columns(), _node_row),
    "Deployment": ([NAME, col("Ready", description="Number of the pod with ready state"),
                    col("Up-to-date", "integer", description="Total number of non-terminated "
                         "pods targeted by this deployment that have the desired template "
                         "spec."),
                    col("Available", "integer", description="Total number of available pods "
                         "(ready for at least minReadySeconds) targeted by this deployment."),
                    AGE, *_WORKLOAD_WIDE], _deployment_row),
    "ReplicaSet": ([NAME, col("Desired", "integer", description="Replicas is the number of "
                               "desired replicas."),
                    col("Current", "integer", description="Replicas is the most recently "
                         "observed number of replicas."),
                    col("Ready", "integer", description="The number of ready replicas for "
                         "this replica set."), AGE, *_WORKLOAD_WIDE], _replicaset_row),
    "ControllerRevision": ([NAME, col("Controller", description="Controller of the object"),
                            col("Revision", description=doc("apps/v1", "ControllerRevision",
                                                            "revision")), AGE],
                           _controller_revision_row),
    "Service": ([NAME, col("Type", description="The type of the service."),
                 col("Cluster-IP", description="The IP address of the service."),
                 col("External-IP", description="The external IP address of the service."),
                 col("Port(s)", description="The ports of the service."), AGE,
                 col("Selector", priority=1, description="Route service traffic to pods with "
                      "label keys and values matching this selector.")], _service_row),
    "Namespace": ([NAME, col("Status", description="The status of the namespace"), AGE],
                  lambda ns, clock: [ns["metadata"]["name"],
                                     ns.get("status", {}).get("phase", ""), age(ns, clock)]),
    **handlers(),
}


def partial_metadata(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


def table(kind: str, objects: list[Obj], clock: Clock, *, resource_version: str = "",
          include_object: str = "Metadata", headers: bool = True,
          list_meta: Obj | None = None) -> Obj:
    """The ``meta.k8s.io/v1`` Table for ``objects`` of ``kind``; a kind with no printer gets
    the default table (``Name``, ``Created At``); ``list_meta`` carries a paginated list's
    ``continue`` and ``remainingItemCount`` into the table's metadata."""
    columns, row = PRINTERS.get(kind, ([NAME, CREATED_AT], created_at))
    rows = []
    for obj in objects:
        r: Obj = {"cells": row(obj, clock)}
        if include_object == "Object":
            r["object"] = obj
        elif include_object != "None":
            r["object"] = partial_metadata(obj)
        rows.append(r)
    meta: Obj = {"resourceVersion": resource_version} if resource_version else {}
    meta.update({k: v for k, v in (list_meta or {}).items()
                 if k in ("continue", "remainingItemCount")})
    out: Obj = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "columnDefinitions": columns if headers else [], "rows": rows}
    return out
