"""Server-side table columns for the kinds beyond pods, nodes, workloads' basics and services.

Mirrors the rest of ``AddHandlers`` in ``pkg/printers/internalversion/printers.go`` (v1.35):
the column definitions and the ``print<Kind>`` functions for Events, Secrets, ConfigMaps,
ServiceAccounts, PodDisruptionBudgets, Ingresses, IngressClasses, RoleBindings,
ClusterRoleBindings, Leases, EndpointSlices, PriorityClasses, webhook configurations,
PersistentVolumes and their claims, Jobs, CronJobs, DaemonSets and StatefulSets; the default
table of ``k8s.io/apiserver/pkg/registry/rest/table.go`` (``Name`` and ``Created At``, an
RFC 3339 time) for kinds with no printer (Roles, ClusterRoles); and kube-aggregator's
APIService table (``Name``, ``Service``, ``Available``, ``Age``). The server prints every
column, wide ones included (``GenerateOptions{Wide: true}`` in the table convertor), and
kubectl hides the ``priority`` 1 columns unless ``-o wide``. Column descriptions that
upstream takes from a type's ``SwaggerDoc`` are read from the same text in the official
OpenAPI schema.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from k8sbook.api import eventsv1, fieldvalidation
from k8sbook.core.clock import Clock
from k8sbook.serve.columns import (
    AGE,
    NAME,
    age,
    col,
    containers_and_images,
    human_duration,
    label_selector,
)

Obj = dict[str, Any]
Row = Callable[[Obj, Clock], list[Any]]


@functools.cache
def doc(api_version: str, kind: str, path: str) -> str:
    """``<Type>{}.SwaggerDoc()[field]``: a field's description in the official schema."""
    schema = fieldvalidation.kind_schema({"apiVersion": api_version, "kind": kind}) or {}
    for part in path.split("."):
        schema = fieldvalidation.resolve((schema.get("properties") or {}).get(part) or {})[1]
    return str(schema.get("description", ""))


def since(stamp: str | None, clock: Clock) -> str:
    """``translateTimestampSince`` / ``translateMicroTimestampSince``."""
    if not stamp:
        return "<unknown>"
    return human_duration(clock.now() - Clock.parse(stamp))


def _template(obj: Obj, *path: str) -> tuple[str, str]:
    inner = obj
    for p in path:
        inner = (inner.get(p) or {}) if isinstance(inner, dict) else {}
    return containers_and_images({"spec": {"template": inner}})


_WIDE = [col("Containers", priority=1, description="Names of each container in the template."),
         col("Images", priority=1, description="Images referenced by each container in the "
             "template.")]


def _event_row(ev: Obj, clock: Clock) -> list[Any]:
    if ev.get("apiVersion") == eventsv1.API_VERSION:
        ev = eventsv1.to_core(ev)
    first = since(ev.get("firstTimestamp"), clock) if ev.get("firstTimestamp") else \
        since(ev.get("eventTime"), clock)
    last = since(ev.get("lastTimestamp"), clock) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    if ev.get("series"):
        last = since(ev["series"].get("lastObservedTime"), clock)
        count = ev["series"].get("count", 0)
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    obj = ev.get("involvedObject") or {}
    target = str(obj.get("kind", "")).lower()
    if obj.get("name"):
        target += f"/{obj['name']}"
    src = ev.get("source") or {}
    component = src.get("component") or ev.get("reportingComponent") or ""
    instance = src.get("host") or ev.get("reportingInstance") or ""
    source = f"{component}, {instance}" if instance else component
    return [last, ev.get("type", ""), ev.get("reason", ""), target, obj.get("fieldPath", ""),
            source, str(ev.get("message", "")).strip(), first, int(count),
            ev["metadata"]["name"]]


def _int_or_string(value: Any) -> str:
    return "N/A" if value is None else str(value)


def _pdb_row(pdb: Obj, clock: Clock) -> list[Any]:
    spec = pdb.get("spec") or {}
    return [pdb["metadata"]["name"], _int_or_string(spec.get("minAvailable")),
            _int_or_string(spec.get("maxUnavailable")),
            int((pdb.get("status") or {}).get("disruptionsAllowed", 0)), age(pdb, clock)]


def _ingress_row(ing: Obj, clock: Clock) -> list[Any]:
    spec = ing.get("spec") or {}
    rules = spec.get("rules") or []
    hosts = [r["host"] for r in rules[:3] if r.get("host")]
    text = ",".join(hosts) or "*"
    if len(rules) > 3:
        text += f" + {len(rules) - 3} more..."
    lb = (ing.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    address = ",".join(sorted({i.get("ip") or i.get("hostname", "") for i in lb} - {""}))
    return [ing["metadata"]["name"], spec.get("ingressClassName") or "<none>", text, address,
            "80, 443" if spec.get("tls") else "80", age(ing, clock)]


def _ingress_class_row(ic: Obj, clock: Clock) -> list[Any]:
    spec = ic.get("spec") or {}
    params = spec.get("parameters")
    text = "<none>"
    if params:
        text = params.get("kind", "") + (f".{params['apiGroup']}" if params.get("apiGroup")
                                         else "") + f"/{params.get('name', '')}"
    return [ic["metadata"]["name"], spec.get("controller", ""), text, age(ic, clock)]


def _binding_row(rb: Obj, clock: Clock) -> list[Any]:
    """``printRoleBinding`` with ``SubjectsStrings``."""
    users, groups, sas = [], [], []
    for s in rb.get("subjects") or []:
        if s.get("kind") == "User":
            users.append(s.get("name", ""))
        elif s.get("kind") == "Group":
            groups.append(s.get("name", ""))
        elif s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}:{s.get('name', '')}")
    ref = rb.get("roleRef") or {}
    return [rb["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}",
            age(rb, clock), ", ".join(users), ", ".join(groups), ", ".join(sas)]


def _slice_row(es: Obj, clock: Clock) -> list[Any]:
    """``printEndpointSlice`` with ``formatDiscoveryPorts``/``formatDiscoveryEndpoints``."""
    ports = [str(p["port"]) for p in es.get("ports") or [] if p.get("port") is not None]
    addrs = [a for e in es.get("endpoints") or [] for a in e.get("addresses") or []]

    def most(items: list[str]) -> str:
        if not items:
            return "<unset>"
        return ",".join(items[:3]) + (f" + {len(items) - 3} more..." if len(items) > 3 else "")
    return [es["metadata"]["name"], es.get("addressType", ""), most(ports), most(addrs),
            age(es, clock)]


def _job_row(job: Obj, clock: Clock) -> list[Any]:
    spec, st = job.get("spec") or {}, job.get("status") or {}
    done = st.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{done}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{done}/1 of {spec['parallelism']}"
    else:
        completions = f"{done}/1"
    duration = ""
    if st.get("startTime"):
        end = Clock.parse(st["completionTime"]) if st.get("completionTime") else clock.now()
        duration = human_duration(end - Clock.parse(st["startTime"]))
    conds = {c.get("type") for c in st.get("conditions") or [] if c.get("status") == "True"}
    status = next((s for s, c in (("Complete", "Complete"), ("Failed", "Failed"),
                                  ("Suspended", "Suspended"), ("FailureTarget", "FailureTarget"))
                   if c in conds), "Running")
    names, images = _template(job, "spec", "template")
    return [job["metadata"]["name"], status, completions, duration, age(job, clock), names,
            images, label_selector(spec.get("selector"))]


def _cronjob_row(cj: Obj, clock: Clock) -> list[Any]:
    spec, st = cj.get("spec") or {}, cj.get("status") or {}
    suspend = spec.get("suspend")
    names, images = _template(cj, "spec", "jobTemplate", "spec", "template")
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return [cj["metadata"]["name"], spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            "<unset>" if suspend is None else ("True" if suspend else "False"),
            len(st.get("active") or []),
            since(st["lastScheduleTime"], clock) if st.get("lastScheduleTime") else "<none>",
            age(cj, clock), names, images, label_selector(job_spec.get("selector"))]


def _daemonset_row(ds: Obj, clock: Clock) -> list[Any]:
    st = ds.get("status") or {}
    tmpl = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted((tmpl.get("nodeSelector") or {}).items()))
    names, images = _template(ds, "spec", "template")
    return [ds["metadata"]["name"], st.get("desiredNumberScheduled", 0),
            st.get("currentNumberScheduled", 0), st.get("numberReady", 0),
            st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            selector or "<none>", age(ds, clock), names, images,
            label_selector((ds.get("spec") or {}).get("selector"))]


def _statefulset_row(ss: Obj, clock: Clock) -> list[Any]:
    names, images = _template(ss, "spec", "template")
    ready = f"{(ss.get('status') or {}).get('readyReplicas', 0)}/" \
            f"{(ss.get('spec') or {}).get('replicas', 0)}"
    return [ss["metadata"]["name"], ready, age(ss, clock), names, images]


def _modes(modes: list[str] | None) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
             "ReadWriteOncePod": "RWOP"}
    return ",".join(short[m] for m in short if m in (modes or []))


def _pv_row(pv: Obj, clock: Clock) -> list[Any]:
    spec = pv.get("spec") or {}
    ref = spec.get("claimRef")
    phase = "Terminating" if pv["metadata"].get("deletionTimestamp") else \
        (pv.get("status") or {}).get("phase", "")
    return [pv["metadata"]["name"], (spec.get("capacity") or {}).get("storage", "0"),
            _modes(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
            phase, f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else "",
            spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>",
            (pv.get("status") or {}).get("reason", ""), age(pv, clock),
            spec.get("volumeMode") or "<unset>"]


def _pvc_row(pvc: Obj, clock: Clock) -> list[Any]:
    spec, st = pvc.get("spec") or {}, pvc.get("status") or {}
    phase = "Terminating" if pvc["metadata"].get("deletionTimestamp") else st.get("phase", "")
    bound = bool(spec.get("volumeName"))
    return [pvc["metadata"]["name"], phase, spec.get("volumeName", ""),
            (st.get("capacity") or {}).get("storage", "") if bound else "",
            _modes(st.get("accessModes")) if bound else "", spec.get("storageClassName", ""),
            spec.get("volumeAttributesClassName") or "<unset>", age(pvc, clock),
            spec.get("volumeMode") or "<unset>"]


def _apiservice_row(svc: Obj, clock: Clock) -> list[Any]:
    spec = svc.get("spec") or {}
    ref = spec.get("service")
    target = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else "Local"
    cond = next((c for c in (svc.get("status") or {}).get("conditions") or []
                 if c.get("type") == "Available"), None)
    available = "Unknown" if cond is None else (
        "True" if cond.get("status") == "True" else f"{cond.get('status')} "
                                                    f"({cond.get('reason', '')})")
    return [svc["metadata"]["name"], target, available, age(svc, clock)]


def _named(*cells: Callable[[Obj], Any]) -> Row:
    def row(obj: Obj, clock: Clock) -> list[Any]:
        return [obj["metadata"]["name"], *(c(obj) for c in cells), age(obj, clock)]
    return row


def created_at(obj: Obj, clock: Clock) -> list[Any]:
    return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp", "")]


CREATED_AT = col("Created At", "date", description=AGE["description"])
_BINDING = [NAME, col("Role", description="RoleRef references a Role in the current namespace "
                      "or a ClusterRole in the global namespace. If the RoleRef cannot be "
                      "resolved, the Authorizer must return an error. This field is "
                      "immutable."), AGE]


def _binding_columns(what: str) -> list[Obj]:
    return [*_BINDING, *(col(c, priority=1, description=f"{c} in the {what}")
                         for c in ("Users", "Groups", "ServiceAccounts"))]


def _event_columns() -> list[Obj]:
    def d(f: str) -> str:
        return doc("v1", "Event", f)
    return [col("Last Seen", description=d("lastTimestamp")), col("Type", description=d("type")),
            col("Reason", description=d("reason")),
            col("Object", description=d("involvedObject")),
            col("Subobject", priority=1, description=d("involvedObject.fieldPath")),
            col("Source", priority=1, description=d("source")),
            col("Message", description=d("message")),
            col("First Seen", priority=1, description=d("firstTimestamp")),
            col("Count", priority=1, description=d("count")),
            {**NAME, "priority": 1}]


def handlers() -> dict[str, tuple[list[Obj], Row]]:
    """kind -> (column definitions, row function), as ``AddHandlers`` registers them."""
    apps, batch = "apps/v1", "batch/v1"
    return {
        "Event": (_event_columns(), _event_row),
        "Secret": ([NAME, col("Type", description=doc("v1", "Secret", "type")),
                    col("Data", description=doc("v1", "Secret", "data")), AGE],
                   _named(lambda o: o.get("type", ""), lambda o: len(o.get("data") or {}))),
        "ConfigMap": ([NAME, col("Data", description=doc("v1", "ConfigMap", "data")), AGE],
                      _named(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
        "ServiceAccount": ([NAME, col("Secrets", description=doc("v1", "ServiceAccount",
                                                                 "secrets")), AGE],
                           _named(lambda o: len(o.get("secrets") or []))),
        "PodDisruptionBudget": ([NAME, col("Min Available", description="The minimum number of "
                                           "pods that must be available."),
                                 col("Max Unavailable", description="The maximum number of pods "
                                     "that may be unavailable."),
                                 col("Allowed Disruptions", "integer", description="Calculated "
                                     "number of pods that may be disrupted at this time."), AGE],
                                _pdb_row),
        "Ingress": ([NAME, col("Class", description="The name of the IngressClass resource that "
                               "should be used for additional configuration"),
                     col("Hosts", description="Hosts that incoming requests are matched against "
                         "before the ingress rule"),
                     col("Address", description="Address is a list containing ingress points for "
                         "the load-balancer"),
                     col("Ports", description="Ports of TLS configurations that open"), AGE],
                    _ingress_row),
        "IngressClass": ([NAME, col("Controller", description="Controller that is responsible "
                                    "for handling this class"),
                          col("Parameters", description="A reference to a resource with "
                              "additional parameters"), AGE], _ingress_class_row),
        "RoleBinding": (_binding_columns("roleBinding"), _binding_row),
        "ClusterRoleBinding": (_binding_columns("clusterRoleBinding"), _binding_row),
        "Role": ([NAME, CREATED_AT], created_at),
        "ClusterRole": ([NAME, CREATED_AT], created_at),
        "Lease": ([NAME, col("Holder", description=doc("coordination.k8s.io/v1", "Lease",
                                                       "spec.holderIdentity")), AGE],
                  _named(lambda o: (o.get("spec") or {}).get("holderIdentity") or "")),
        "EndpointSlice": ([NAME, *(col(c, description=doc("discovery.k8s.io/v1", "EndpointSlice",
                                                          f)) for c, f in (
            ("AddressType", "addressType"), ("Ports", "ports"), ("Endpoints", "endpoints"))), AGE],
            _slice_row),
        "PriorityClass": ([NAME, col("Value", "integer", description=doc(
            "scheduling.k8s.io/v1", "PriorityClass", "value")),
            col("Global-Default", "boolean", description=doc("scheduling.k8s.io/v1",
                                                             "PriorityClass", "globalDefault")),
            AGE, col("PreemptionPolicy", description=doc("scheduling.k8s.io/v1", "PriorityClass",
                                                         "preemptionPolicy"))],
            lambda o, clock: [o["metadata"]["name"], o.get("value", 0),
                              bool(o.get("globalDefault", False)), age(o, clock),
                              o.get("preemptionPolicy") or "<unset>"]),
        "ValidatingWebhookConfiguration": (
            [NAME, col("Webhooks", "integer", description="Webhooks indicates the number of "
                       "webhooks registered in this configuration"), AGE],
            _named(lambda o: len(o.get("webhooks") or []))),
        "MutatingWebhookConfiguration": (
            [NAME, col("Webhooks", "integer", description="Webhooks indicates the number of "
                       "webhooks registered in this configuration"), AGE],
            _named(lambda o: len(o.get("webhooks") or []))),
        "PersistentVolume": ([NAME, *(col(c, description=d) for c, d in (
            ("Capacity", doc("v1", "PersistentVolume", "spec.capacity")),
            ("Access Modes", doc("v1", "PersistentVolume", "spec.accessModes")),
            ("Reclaim Policy", doc("v1", "PersistentVolume", "spec.persistentVolumeReclaimPolicy")),
            ("Status", doc("v1", "PersistentVolume", "status.phase")),
            ("Claim", doc("v1", "PersistentVolume", "spec.claimRef")),
            ("StorageClass", "StorageClass of the pv"),
            ("VolumeAttributesClass", "VolumeAttributesClass of the pv"),
            ("Reason", doc("v1", "PersistentVolume", "status.reason")))), AGE,
            col("VolumeMode", priority=1, description=doc("v1", "PersistentVolume",
                                                          "spec.volumeMode"))], _pv_row),
        "PersistentVolumeClaim": ([NAME, *(col(c, description=d) for c, d in (
            ("Status", doc("v1", "PersistentVolumeClaim", "status.phase")),
            ("Volume", doc("v1", "PersistentVolumeClaim", "spec.volumeName")),
            ("Capacity", doc("v1", "PersistentVolumeClaim", "status.capacity")),
            ("Access Modes", doc("v1", "PersistentVolumeClaim", "status.accessModes")),
            ("StorageClass", "StorageClass of the pvc"),
            ("VolumeAttributesClass", "VolumeAttributesClass of the pvc"))), AGE,
            col("VolumeMode", priority=1, description=doc("v1", "PersistentVolumeClaim",
                                                          "spec.volumeMode"))], _pvc_row),
        "Job": ([NAME, col("Status", description="Status of the job."),
                 col("Completions", description=doc(batch, "Job", "status.succeeded")),
                 col("Duration", description="Time required to complete the job."), AGE, *_WIDE,
                 col("Selector", priority=1, description=doc(batch, "Job", "spec.selector"))],
                _job_row),
        "CronJob": ([NAME, *(col(c, t, description=doc(batch, "CronJob", f)) for c, t, f in (
            ("Schedule", "string", "spec.schedule"), ("Timezone", "string", "spec.timeZone"),
            ("Suspend", "boolean", "spec.suspend"), ("Active", "integer", "status.active"),
            ("Last Schedule", "string", "status.lastScheduleTime"))), AGE, *_WIDE,
            col("Selector", priority=1, description=doc(batch, "Job", "spec.selector"))],
            _cronjob_row),
        "DaemonSet": ([NAME, *(col(c, "integer", description=doc(apps, "DaemonSet", f))
                               for c, f in (("Desired", "status.desiredNumberScheduled"),
                                            ("Current", "status.currentNumberScheduled"),
                                            ("Ready", "status.numberReady"),
                                            ("Up-to-date", "status.updatedNumberScheduled"),
                                            ("Available", "status.numberAvailable"))),
                       col("Node Selector", description=doc("v1", "Pod", "spec.nodeSelector")),
                       AGE, *_WIDE, col("Selector", priority=1, description=doc(
                           apps, "DaemonSet", "spec.selector"))], _daemonset_row),
        "StatefulSet": ([NAME, col("Ready", description="Number of the pod with ready state"),
                         AGE, *_WIDE], _statefulset_row),
        "APIService": ([NAME, col("Service"), col("Available"), AGE], _apiservice_row),
    }


__all__ = ["CREATED_AT", "created_at", "doc", "handlers", "since"]
