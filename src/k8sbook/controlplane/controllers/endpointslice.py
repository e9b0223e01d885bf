"""The EndpointSlice controller: Services + Pods in, EndpointSlices out.

Mirrors ``pkg/controller/endpointslice`` (``endpointslice_controller.go`` and the reconciler
in ``staging/src/k8s.io/endpointslice/reconciler.go``). Informers on Services, Pods and the
EndpointSlices the controller manages turn every change into a Service key on a rate-limited
work queue; ``syncService`` then compares the Pods the Service's selector picks with the
slices that exist, and creates, updates or deletes slices until they agree.

What it writes is what the real controller writes:

* one slice per set of endpoint ports (a Pod whose container lacks a named ``targetPort`` has
  a different port set, so it lands in a slice without that port: traffic for that port never
  reaches it);
* at most ``max_endpoints_per_slice`` endpoints per slice (``--max-endpoints-per-slice``,
  default 100);
* labels ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
  endpointslice-controller.k8s.io`` (plus the Service's own labels, and
  ``service.kubernetes.io/headless`` for a headless Service), ``generateName: <service>-``,
  and an ownerReference to the Service (``controller: true``, ``blockOwnerDeletion: true``);
* per endpoint: the Pod IP, ``conditions`` ``ready`` (serving and not terminating),
  ``serving`` (the Pod's Ready condition) and ``terminating`` (``deletionTimestamp`` set),
  ``nodeName``, ``targetRef`` to the Pod, and ``hostname`` when the Pod's ``subdomain`` names
  the Service;
* an empty placeholder slice when a Service selects nothing.

The reconciler minimises churn as upstream's does (``reconcileByPortMapping``): an endpoint
stays in the slice that holds it, so one Pod's change rewrites one slice; new endpoints fill
the slices already being rewritten, then the fullest unchanged slice that fits them all, then
new slices (upstream's ``PopAny`` picks any endpoint; the model takes them in Pod-name order).

Simplified: no ``zone`` or ``hints`` (no Node informer), IPv4 only, no
``endpoints.kubernetes.io/last-change-trigger-time`` annotation. A
deleted Service's slices are left to the garbage collector (through the ownerReference), as in
Kubernetes.
"""

from __future__ import annotations

from typing import Any

from k8sbook.client.informer import (
    DeletedFinalStateUnknown,
    SharedIndexInformer,
    meta_namespace_key,
)
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.controlplane.controllers import Obj, is_pod_ready

NAME = "endpointslice-controller"
#: ``discovery.LabelManagedBy`` value the controller sets (``ControllerName``)
MANAGED_BY = "endpointslice-controller.k8s.io"
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_HEADLESS = "service.kubernetes.io/headless"
#: ``--max-endpoints-per-slice`` default (the flag accepts 1 to 1000)
DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100


def _obj(o: Any) -> Obj:
    return o.obj if isinstance(o, DeletedFinalStateUnknown) else o


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """``podutil.FindPort``: a numeric targetPort is used as is; a named one must match a
    container port with that name and protocol, else the Pod has no such port (None)."""
    target = service_port.get("targetPort", service_port.get("port"))
    protocol = service_port.get("protocol", "TCP")
    if isinstance(target, int):
        return target
    for c in pod.get("spec", {}).get("containers", []):
        for p in c.get("ports", []) or []:
            if p.get("name") == target and p.get("protocol", "TCP") == protocol:
                return int(p["containerPort"])
    return None


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    """``getEndpointPorts``: the Service's ports this Pod actually has, in Service order."""
    out = []
    for sp in service["spec"].get("ports", []) or []:
        number = find_port(pod, sp)
        if number is None:
            continue  # the real controller logs "Failed to find port for service" and skips
        out.append({"name": sp.get("name", ""), "port": number,
                    "protocol": sp.get("protocol", "TCP")})
    return out


def should_pod_be_in_endpoints(pod: Obj, *, include_terminating: bool = True) -> bool:
    """``ShouldPodBeInEndpoints(pod, includeTerminating)``: it has an IP and is not finished
    (a Pod with restartPolicy Always never counts as finished), and, unless
    ``include_terminating`` (the EndpointSlice controller's choice; the Endpoints controller
    passes the Service's ``publishNotReadyAddresses``), it is not being deleted."""
    status = pod.get("status", {})
    if not status.get("podIP"):
        return False
    if not include_terminating and pod["metadata"].get("deletionTimestamp"):
        return False
    policy = pod.get("spec", {}).get("restartPolicy", "Always")
    if policy == "Never":
        return status.get("phase") not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return status.get("phase") != "Succeeded"
    return True


def pod_to_endpoint(pod: Obj, service: Obj) -> Obj:
    """``podToEndpoint``: address, conditions, nodeName, targetRef (and hostname)."""
    meta = pod["metadata"]
    terminating = bool(meta.get("deletionTimestamp"))
    serving = is_pod_ready(pod)
    if service["spec"].get("publishNotReadyAddresses"):
        serving = True
    ep: Obj = {"addresses": [pod["status"]["podIP"]],
               "conditions": {"ready": serving and not terminating, "serving": serving,
                              "terminating": terminating}}
    spec = pod.get("spec", {})
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        ep["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        ep["nodeName"] = spec["nodeName"]
    ep["targetRef"] = {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"],
                       "uid": meta.get("uid", "")}
    return ep


def _endpoint_key(ep: Obj) -> tuple[Any, ...]:
    """``endpointHash``: what makes an endpoint the same one (its addresses, hostname and
    target), whatever its conditions."""
    ref = ep.get("targetRef") or {}
    return (tuple(ep.get("addresses") or []), ep.get("hostname", ""),
            ref.get("namespace", ""), ref.get("name", ""))


def _port_key(ports: list[Obj]) -> str:
    return ",".join(f"{p['name']}/{p['protocol']}/{p['port']}" for p in ports)


class EndpointSliceController:
    """Run it with :meth:`run` after the informers are started."""

    def __init__(self, client: Client, service_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer, slice_informer: SharedIndexInformer, *,
                 max_endpoints_per_slice: int = DEFAULT_MAX_ENDPOINTS_PER_SLICE) -> None:
        if not 1 <= max_endpoints_per_slice <= 1000:
            raise ValueError("--max-endpoints-per-slice must be between 1 and 1000")
        self.client = client
        self.services = service_informer
        self.pods = pod_informer
        self.slices = slice_informer
        self.max_endpoints_per_slice = max_endpoints_per_slice
        self.queue = RateLimitingQueue(client.clock, "endpointslice")
        #: (time, service key, what it did), for chapters and tests
        self.log: list[tuple[float, str, str]] = []
        service_informer.add_event_handler(self._enqueue, lambda old, new: self._enqueue(new),
                                           self._enqueue)
        pod_informer.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        slice_informer.add_event_handler(self._slice_changed,
                                         lambda old, new: self._slice_changed(new),
                                         self._slice_changed)

    def run(self) -> None:
        self.queue.run_worker(self.sync_service)

    # -- event handlers ----------------------------------------------------------------
    def _enqueue(self, svc: Any) -> None:
        self.queue.add(meta_namespace_key(_obj(svc)))

    def _services_for(self, pod: Obj) -> set[str]:
        """``GetPodServiceMemberships``: Services in the Pod's namespace selecting it."""
        ns = pod["metadata"].get("namespace", "")
        out = set()
        for svc in self.services.lister(ns):
            selector = svc["spec"].get("selector")
            if selector and labels_match_selector(selector, pod):
                out.add(meta_namespace_key(svc))
        return out

    def _pod_added(self, pod: Obj) -> None:
        for key in sorted(self._services_for(pod)):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        for key in sorted(self._services_for(old) | self._services_for(new)):
            self.queue.add(key)

    def _pod_deleted(self, pod: Any) -> None:
        self._pod_added(_obj(pod))

    def _slice_changed(self, es: Any) -> None:
        labels = _obj(es)["metadata"].get("labels") or {}
        if labels.get(LABEL_MANAGED_BY) == MANAGED_BY and labels.get(LABEL_SERVICE_NAME):
            ns = _obj(es)["metadata"]["namespace"]
            self.queue.add(f"{ns}/{labels[LABEL_SERVICE_NAME]}")

    # -- the sync ----------------------------------------------------------------------
    def _note(self, key: str, what: str) -> None:
        self.log.append((round(self.client.clock.now(), 6), key, what))

    def existing_slices(self, namespace: str, name: str) -> list[Obj]:
        return [es for es in self.slices.lister(namespace)
                if (es["metadata"].get("labels") or {}).get(LABEL_SERVICE_NAME) == name
                and (es["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGED_BY]

    def desired(self, service: Obj) -> dict[str, tuple[list[Obj], list[Obj]]]:
        """port-set key -> (ports, endpoints sorted by Pod name), for the selected Pods."""
        ns = service["metadata"]["namespace"]
        selector = service["spec"]["selector"]
        out: dict[str, tuple[list[Obj], list[Obj]]] = {}
        for pod in self.pods.lister(ns):
            if not labels_match_selector(selector, pod):
                continue
            if not should_pod_be_in_endpoints(pod):
                continue
            ports = endpoint_ports(service, pod)
            key = _port_key(ports)
            out.setdefault(key, (ports, []))[1].append(pod_to_endpoint(pod, service))
        return out

    def new_slice(self, service: Obj, ports: list[Obj], endpoints: list[Obj]) -> Obj:
        meta = service["metadata"]
        labels = dict(meta.get("labels") or {})
        labels[LABEL_SERVICE_NAME] = meta["name"]
        labels[LABEL_MANAGED_BY] = MANAGED_BY
        if service["spec"].get("clusterIP") == "None":
            labels[LABEL_HEADLESS] = ""
        owner = {"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                 "uid": meta.get("uid", ""), "controller": True, "blockOwnerDeletion": True}
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                             "labels": labels, "ownerReferences": [owner]},
                "addressType": "IPv4", "endpoints": endpoints, "ports": ports}

    def sync_service(self, key: Any) -> None:
        ns, name = str(key).split("/", 1)
        service = self.services.get(key)
        if service is None:
            self._note(key, "service gone: its slices are left to the garbage collector")
            return
        if service["spec"].get("selector") is None:
            return  # no selector: slices are the user's to manage
        desired = self.desired(service)
        existing = sorted(self.existing_slices(ns, name), key=lambda s: s["metadata"]["name"])
        by_ports: dict[str, list[Obj]] = {}
        for s in existing:
            by_ports.setdefault(_port_key(s.get("ports") or []), []).append(s)
        to_create: list[tuple[list[Obj], list[Obj]]] = []
        to_update: list[tuple[Obj, list[Obj], list[Obj]]] = []
        to_delete: list[Obj] = []
        for pkey in sorted(desired):
            ports, eps = desired[pkey]
            eps = sorted(eps, key=lambda e: e["targetRef"]["name"])
            creates, updates, deletes = self.reconcile_port_mapping(by_ports.pop(pkey, []),
                                                                    ports, eps)
            to_create += creates
            to_update += updates
            to_delete += deletes
        to_delete += [s for pkey in sorted(by_ports) for s in by_ports[pkey]]
        if len(existing) == len(to_delete) and not to_create:
            # a Service that selects nothing keeps one empty placeholder slice
            placeholder = [s for s in to_delete if not s.get("endpoints") and not s.get("ports")]
            if len(to_delete) == 1 and placeholder:
                to_delete = []
            else:
                to_create.append(([], []))
        # finalize(): a slice that would be deleted is updated into one that would be created
        while to_create and to_delete:
            ports, eps = to_create.pop(0)
            to_update.append((to_delete.pop(0), ports, eps))
        for current, ports, eps in to_update:
            self._update(key, current, ports, eps)
        for ports, eps in to_create:
            created = self.client.create(self.new_slice(service, ports, eps))
            self._note(key, f"create {created['metadata']['name']} ({len(eps)} endpoints)")
        for s in to_delete:
            self._delete(key, s)

    def reconcile_port_mapping(self, existing: list[Obj], ports: list[Obj],
                               desired: list[Obj]) -> tuple[list[tuple[list[Obj], list[Obj]]],
                                                            list[tuple[Obj, list[Obj],
                                                                       list[Obj]]],
                                                            list[Obj]]:
        """``reconcileByPortMapping``: keep each desired endpoint in the slice that holds it
        (rewriting only slices whose endpoints changed or left), fill the slices already
        being updated, then the fullest unchanged slice that fits the rest, then new slices.
        Returns (slices to create, slices to update, slices to delete)."""
        wanted = {_endpoint_key(e): e for e in desired}
        updates: dict[str, tuple[Obj, list[Obj]]] = {}
        unchanged: list[Obj] = []
        deletes: list[Obj] = []
        for current in existing:
            kept, changed = [], False
            for ep in current.get("endpoints") or []:
                got = wanted.pop(_endpoint_key(ep), None)
                if got is not None:
                    kept.append(got)
                    changed = changed or got != ep
            if changed or len(kept) != len(current.get("endpoints") or []):
                if kept:
                    updates[current["metadata"]["name"]] = (current, kept)
                else:
                    deletes.append(current)
            else:
                unchanged.append(current)
        left = [wanted[k] for k in sorted(wanted, key=lambda k: wanted[k]["targetRef"]["name"])]
        # 2. fill the slices being updated, fullest first
        for name_ in sorted(updates, key=lambda n: (-len(updates[n][1]), n)):
            eps = updates[name_][1]
            while left and len(eps) < self.max_endpoints_per_slice:
                eps.append(left.pop(0))
        # 3. the rest: into the fullest unchanged slice with room, else into new slices
        creates: list[tuple[list[Obj], list[Obj]]] = []
        while left:
            fill = None
            if len(left) < self.max_endpoints_per_slice:
                fits = [s for s in unchanged if len(s.get("endpoints") or []) + len(left)
                        <= self.max_endpoints_per_slice]
                if fits:
                    fill = max(fits, key=lambda s: (len(s.get("endpoints") or []),
                                                    s["metadata"]["name"]))
            if fill is None:
                chunk = left[:self.max_endpoints_per_slice]
                left = left[self.max_endpoints_per_slice:]
                creates.append((ports, chunk))
            else:
                unchanged.remove(fill)
                updates[fill["metadata"]["name"]] = (fill, list(fill.get("endpoints") or [])
                                                     + left)
                left = []
        return (creates, [(s, ports, eps) for s, eps in
                          (updates[n] for n in sorted(updates))], deletes)

    def _update(self, key: str, current: Obj, ports: list[Obj], eps: list[Obj]) -> None:
        if (current.get("endpoints") or []) == eps and (current.get("ports") or []) == ports:
            return
        self.client.update(dict(current, endpoints=eps, ports=ports))
        self._note(key, f"update {current['metadata']['name']} ({len(eps)} endpoints)")

    def _delete(self, key: str, es: Obj) -> None:
        self.client.delete("endpointslices", es["metadata"]["name"], es["metadata"]["namespace"])
        self._note(key, f"delete {es['metadata']['name']}")


def labels_match_selector(selector: dict[str, str], obj: Obj) -> bool:
    """A Service selector is equality-based: every key=value must be on the object."""
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def start(client: Client, shared: Client, *,
          max_endpoints_per_slice: int = DEFAULT_MAX_ENDPOINTS_PER_SLICE) -> \
        EndpointSliceController:
    """Start the controller as kube-controller-manager runs it: the shared informers list and
    watch with ``shared`` (kube-controller-manager's own client, ``system:kube-controller-
    manager``); the controller writes with ``client``, the credentials of the service account
    ``kube-system:endpointslice-controller`` (``--use-service-account-credentials``), bound to
    the ClusterRole ``system:controller:endpointslice-controller`` (which has no ``watch`` on
    EndpointSlices: the shared informers do the watching). With a cluster::

        endpointslice.start(cluster.service_account_client("kube-controller-manager",
                                                           "kube-system", endpointslice.NAME),
                            cluster.client("kube-controller-manager"))
    """
    informers = [SharedIndexInformer(shared, r)
                 for r in ("services", "pods", "endpointslices")]
    ctrl = EndpointSliceController(client, *informers,
                                   max_endpoints_per_slice=max_endpoints_per_slice)
    for inf in informers:
        inf.run()
    ctrl.run()
    return ctrl
