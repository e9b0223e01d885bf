"""The Endpoints controller: Services + Pods in, one Endpoints object per Service out.

Mirrors ``pkg/controller/endpoint`` (``endpoints_controller.go``; the subsets are packed as
``pkg/api/v1/endpoints`` ``RepackSubsets`` does, the trigger time as
``staging/src/k8s.io/endpointslice/util/trigger_time_tracker.go`` computes it). It is the
controller EndpointSlices (KEP-752) were made to replace: the Endpoints API is deprecated
since v1.33 (KEP-4974), yet kube-controller-manager still starts the controller by default in
v1.35 (``newEndpointsControllerDescriptor``: name ``endpoints-controller``, alias
``endpoint`` for ``--controllers``; service account ``endpoint-controller``).

Informers on Services, Pods and Endpoints turn a change into a Service key on a rate-limited
work queue; ``syncService`` then writes, for a Service with a selector (not ExternalName):

* one Endpoints object named after the Service, in its namespace, with the Service's labels
  (plus ``service.kubernetes.io/headless`` when it has no cluster IP) and no ownerReference
  (a deleted Service's Endpoints are deleted by the controller itself);
* ``subsets``: the selected Pods that have an IP and are not terminal (and, unless
  ``publishNotReadyAddresses``, not terminating), each address with ``ip``, ``nodeName``,
  ``targetRef`` (and ``hostname`` when the Pod's ``subdomain`` names the Service), under
  ``addresses`` when the Pod is Ready (or the Service publishes not-ready addresses) and
  ``notReadyAddresses`` otherwise; addresses that offer the same ports share a subset;
* at most 1000 addresses (``maxCapacity``): beyond that the ready addresses are kept first,
  shared among the subsets in proportion, and the object is annotated
  ``endpoints.kubernetes.io/over-capacity: truncated``;
* ``endpoints.kubernetes.io/last-change-trigger-time``: the earliest change that caused this
  write (the Service's creation for a new Service, else the Ready transitions of Pods that
  changed since the last sync); a sync with no such change clears it.

The ``endpointslicemirroring`` controller is not modelled: it mirrors only Endpoints whose
Service has no selector (custom Endpoints), never the ones this controller writes.

Simplified: one worker (``--concurrent-endpoint-syncs`` is 5), no batch period
(``--endpoint-updates-batch-period`` defaults to 0 anyway), IPv4 only, no stale-informer
tracking, and subsets and ports are ordered by their ports and addresses instead of by the md5
of their Go representation (``SortSubsets``), so two equal sets of subsets still compare
equal.
"""

from __future__ import annotations

import math
from typing import Any

from k8sbook.client.informer import SharedIndexInformer, final_state, meta_namespace_key
from k8sbook.client.rest import Client
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.controlplane.controllers import Obj, is_pod_ready
from k8sbook.controlplane.controllers.endpointslice import (
    LABEL_HEADLESS,
    find_port,
    labels_match_selector,
    should_pod_be_in_endpoints,
)
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError

NAME = "endpoint-controller"
#: ``maxCapacity``: the most addresses one Endpoints object holds
MAX_CAPACITY = 1000
ANNOTATION_OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
ANNOTATION_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
TRUNCATED = "truncated"


def _address_sort_key(addr: Obj) -> tuple[bytes, str]:
    """``LessEndpointAddress``: by IP (as bytes), then the target Pod's UID."""
    return addr["ip"].encode(), (addr.get("targetRef") or {}).get("uid", "")


#: ``RepackSubsets``' sentinel port for subsets without ports
_NO_PORT = ("", -1, "", "")


def _port_tuple(port: Obj) -> tuple[str, int, str, str]:
    return (port.get("name", ""), port["port"], port.get("protocol", "TCP"),
            port.get("appProtocol", ""))


def repack_subsets(subsets: list[Obj]) -> list[Obj]:
    """``RepackSubsets``: expand to (address, port, ready) and pack again, one subset per set
    of addresses that offer the same ports; an address not ready on a port stays not ready."""
    addresses: dict[tuple[str, str], Obj] = {}
    per_port: dict[tuple[str, int, str, str], dict[tuple[str, str], bool]] = {}
    ports_of: dict[tuple[str, int, str, str], Obj] = {}
    for subset in subsets:
        # a subset without ports (a headless Service with none) is kept under a sentinel
        for port in subset.get("ports") or [None]:
            key_p = _port_tuple(port) if port is not None else _NO_PORT
            if port is not None:
                ports_of[key_p] = port
            for is_ready, field in ((True, "addresses"), (False, "notReadyAddresses")):
                for addr in subset.get(field) or []:
                    key_a = (addr["ip"], (addr.get("targetRef") or {}).get("uid", ""))
                    addresses.setdefault(key_a, addr)
                    seen = per_port.setdefault(key_p, {})
                    if seen.get(key_a, True):
                        seen[key_a] = is_ready
    groups: dict[tuple[tuple[tuple[str, str], bool], ...], list[Obj]] = {}
    for key_p in sorted(per_port):
        members = tuple(sorted(per_port[key_p].items()))
        group = groups.setdefault(members, [])
        if key_p != _NO_PORT:
            group.append(ports_of[key_p])
    out = []
    for members, ports in groups.items():
        ready = sorted((addresses[a] for a, r in members if r), key=_address_sort_key)
        not_ready = sorted((addresses[a] for a, r in members if not r), key=_address_sort_key)
        packed: Obj = {}
        if ready:
            packed["addresses"] = ready
        if not_ready:
            packed["notReadyAddresses"] = not_ready
        if ports:
            packed["ports"] = ports
        out.append(packed)
    return sorted(out, key=lambda s: [_port_tuple(p) for p in s.get("ports", [])])


def truncate_endpoints(subsets: list[Obj]) -> bool:
    """``truncateEndpoints``: keep at most :data:`MAX_CAPACITY` addresses, ready ones first,
    each subset keeping its share (rounded up); True if anything was cut."""
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if ready + not_ready <= MAX_CAPACITY:
        return False
    truncate_ready = ready > MAX_CAPACITY
    most, total = (MAX_CAPACITY, ready) if truncate_ready else (MAX_CAPACITY - ready, not_ready)
    can_add = most
    for subset in subsets:
        field = "addresses" if truncate_ready else "notReadyAddresses"
        have = subset.get(field) or []
        share = min(math.ceil(len(have) / total * most), can_add)
        subset[field] = have[:share]
        if truncate_ready:
            subset.pop("notReadyAddresses", None)
        can_add -= len(subset[field])
    for subset in subsets:
        for field in ("addresses", "notReadyAddresses"):
            if field in subset and not subset[field]:
                del subset[field]  # an empty list is omitted on the wire
    return True


def _ready_transition(pod: Obj, clock: Clock) -> float | None:
    """``getPodTriggerTime``: the Ready condition's lastTransitionTime."""
    for cond in pod.get("status", {}).get("conditions", []) or []:
        if cond.get("type") == "Ready" and cond.get("lastTransitionTime"):
            return clock.parse(cond["lastTransitionTime"])
    return None


class EndpointsController:
    """Run it with :meth:`run` after the informers are started."""

    def __init__(self, client: Client, service_informer: SharedIndexInformer,
                 pod_informer: SharedIndexInformer,
                 endpoints_informer: SharedIndexInformer) -> None:
        self.client = client
        self.clock = client.clock
        self.services = service_informer
        self.pods = pod_informer
        self.endpoints = endpoints_informer
        self.queue = RateLimitingQueue(client.clock, "endpoint")
        #: ``TriggerTimeTracker``: service key -> (service trigger, pod name -> trigger)
        self.trigger_state: dict[str, tuple[float, dict[str, float]]] = {}
        #: (time, service key, what it did), for chapters and tests
        self.log: list[tuple[float, str, str]] = []
        service_informer.add_event_handler(self._enqueue, lambda old, new: self._enqueue(new),
                                           self._enqueue)
        pod_informer.add_event_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        endpoints_informer.add_event_handler(on_delete=self._enqueue)

    def run(self) -> None:
        self.queue.run_worker(self.sync_service)
        self.check_leftover_endpoints()

    def stop(self) -> None:
        self.queue.shut_down()

    def check_leftover_endpoints(self) -> None:
        """``checkLeftoverEndpoints``: queue every Endpoints object once at start, so one
        whose Service is gone is deleted (leader-election records excepted)."""
        for ep in sorted(self.endpoints.lister(), key=meta_namespace_key):
            if "control-plane.alpha.kubernetes.io/leader" not in \
                    (ep["metadata"].get("annotations") or {}):
                self.queue.add(meta_namespace_key(ep))

    # -- event handlers ----------------------------------------------------------------
    def _enqueue(self, obj: Any) -> None:
        self.queue.add(meta_namespace_key(final_state(obj)))

    def _services_for(self, pod: Obj) -> set[str]:
        """``GetPodServiceMemberships``."""
        ns = pod["metadata"].get("namespace", "")
        return {meta_namespace_key(svc) for svc in self.services.lister(ns)
                if svc["spec"].get("selector") and
                labels_match_selector(svc["spec"]["selector"], pod)}

    def _pod_added(self, pod: Obj) -> None:
        for key in sorted(self._services_for(pod)):
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        """``GetServicesToUpdateOnPodChange``: the Services of both versions."""
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return  # a periodic resync: nothing changed
        for key in sorted(self._services_for(old) | self._services_for(new)):
            self.queue.add(key)

    def _pod_deleted(self, pod: Any) -> None:
        self._pod_added(final_state(pod))

    # -- the sync ----------------------------------------------------------------------
    def _note(self, key: str, what: str) -> None:
        self.log.append((round(self.clock.now(), 6), key, what))

    def trigger_time(self, key: str, service: Obj, pods: list[Obj]) -> float | None:
        """``ComputeEndpointLastChangeTriggerTime``."""
        known = key in self.trigger_state
        last_service, last_pods = self.trigger_state.get(key, (float("-inf"), {}))
        earliest: float | None = None
        now_pods: dict[str, float] = {}
        for pod in pods:
            t = _ready_transition(pod, self.clock)
            if t is None:
                continue
            now_pods[pod["metadata"]["name"]] = t
            if t > last_pods.get(pod["metadata"]["name"], float("-inf")):
                earliest = t if earliest is None else min(earliest, t)
        created = self.clock.parse(service["metadata"]["creationTimestamp"])
        if created > last_service:
            earliest = created if earliest is None else min(earliest, created)
        self.trigger_state[key] = (created, now_pods)
        return earliest if known else created

    def desired_subsets(self, service: Obj, pods: list[Obj]) -> list[Obj]:
        """The subsets for the Service's Pods, packed."""
        spec = service["spec"]
        publish = bool(spec.get("publishNotReadyAddresses"))
        subsets: list[Obj] = []
        for pod in pods:
            if not should_pod_be_in_endpoints(pod, include_terminating=publish):
                continue
            meta, pspec = pod["metadata"], pod.get("spec", {})
            addr: Obj = {"ip": pod["status"]["podIP"]}
            if pspec.get("hostname") and pspec.get("subdomain") == service["metadata"]["name"]:
                addr["hostname"] = pspec["hostname"]
            addr["nodeName"] = pspec.get("nodeName", "")
            addr["targetRef"] = {"kind": "Pod", "namespace": meta["namespace"],
                                 "name": meta["name"], "uid": meta.get("uid", "")}
            field = "addresses" if publish or is_pod_ready(pod) else "notReadyAddresses"
            ports = spec.get("ports") or []
            if not ports:
                if spec.get("clusterIP") == "None":
                    subsets.append({field: [addr]})  # a headless Service needs no ports
                continue
            for sp in ports:
                number = find_port(pod, sp)
                if number is None:
                    continue  # "Failed to find port for service"
                port: Obj = {"name": sp.get("name", ""), "port": number,
                             "protocol": sp.get("protocol", "TCP")}
                if sp.get("appProtocol"):
                    port["appProtocol"] = sp["appProtocol"]
                if not port["name"]:
                    del port["name"]
                subsets.append({field: [addr], "ports": [port]})
        return repack_subsets(subsets)

    def sync_service(self, key: Any) -> None:
        ns, name = str(key).split("/", 1)
        service = self.services.get(key)
        if service is None:
            try:
                self.client.delete("endpoints", name, ns)
                self._note(key, "service gone: endpoints deleted")
            except StatusError as err:
                if err.code != 404:
                    raise
            self.trigger_state.pop(key, None)
            return
        spec = service["spec"]
        if spec.get("type") == "ExternalName" or spec.get("selector") is None:
            return  # no endpoints from this controller
        pods = sorted((p for p in self.pods.lister(ns)
                       if labels_match_selector(spec["selector"], p)),
                      key=lambda p: p["metadata"]["name"])
        trigger = self.trigger_time(key, service, pods)
        subsets = self.desired_subsets(service, pods)
        current = self.endpoints.get(key)
        labels = dict(service["metadata"].get("labels") or {})
        compare = {k: v for k, v in ((current or {}).get("metadata", {}).get("labels")
                                     or {}).items() if k != LABEL_HEADLESS}
        count = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or [])
                    for s in subsets)
        if current is not None and (current.get("subsets") or []) == subsets and \
                compare == labels and (count <= MAX_CAPACITY) == \
                (ANNOTATION_OVER_CAPACITY not in (current["metadata"].get("annotations") or {})):
            return  # "endpoints are equal, skipping update"
        annotations = dict((current or {}).get("metadata", {}).get("annotations") or {})
        if trigger is not None:
            annotations[ANNOTATION_TRIGGER_TIME] = self.clock.nano_timestamp(trigger)
        else:
            annotations.pop(ANNOTATION_TRIGGER_TIME, None)
        if truncate_endpoints(subsets):
            annotations[ANNOTATION_OVER_CAPACITY] = TRUNCATED
        else:
            annotations.pop(ANNOTATION_OVER_CAPACITY, None)
        if spec.get("clusterIP") in (None, "", "None"):
            labels[LABEL_HEADLESS] = ""
        meta: Obj = {"name": name, "namespace": ns}
        if labels:
            meta["labels"] = labels
        if annotations:
            meta["annotations"] = annotations
        body: Obj = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
        if subsets:
            body["subsets"] = subsets
        addresses = sum(len(s.get("addresses") or []) for s in subsets)
        not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
        what = f"{addresses} ready, {not_ready} not ready"
        if current is None:
            self.client.create(body)
            self._note(key, f"create ({what})")
        else:
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
            meta["uid"] = current["metadata"].get("uid", "")
            meta["creationTimestamp"] = current["metadata"].get("creationTimestamp")
            self.client.update(body)
            self._note(key, f"update ({what})")


def start(client: Client, shared: Client) -> EndpointsController:
    """Start the controller outside a controller manager: informers with ``shared``
    (kube-controller-manager's own identity), writes with ``client`` (the service account
    ``kube-system:endpoint-controller``)."""
    informers = [SharedIndexInformer(shared, r) for r in ("services", "pods", "endpoints")]
    ctrl = EndpointsController(client, *informers)
    for inf in informers:
        inf.run()
    ctrl.run()
    return ctrl
