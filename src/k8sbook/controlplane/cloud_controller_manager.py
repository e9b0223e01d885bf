"""cloud-controller-manager: the controllers that talk to the cloud, and only they do.

Mirrors ``k8s.io/cloud-provider`` (``app/controllermanager.go`` and ``controllers/``), which
every out-of-tree provider builds its cloud-controller-manager from, with three of its
controllers:

* **node** (``controllers/node``, the cloud node controller): a kubelet started with
  ``--cloud-provider=external`` registers its Node with the taint
  ``node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule``. The controller asks the
  cloud for the instance's metadata and fills in ``spec.providerID``, the instance-type, zone
  and region labels and ``status.addresses``, then removes the taint, so pods can land there.
* **route** (``controllers/route``): every ``--route-reconciliation-period`` (10 s) it lists
  the cloud's routes and creates one per node's ``spec.podCIDR``, then sets the node condition
  ``NetworkUnavailable=False`` (reason ``RouteCreated``).
* **service** (``controllers/service``): for a Service of ``type: LoadBalancer`` it adds the
  finalizer ``service.kubernetes.io/load-balancer-cleanup``, calls ``EnsureLoadBalancer``
  with the cluster's nodes, and writes ``status.loadBalancer.ingress``; when the Service goes,
  it deletes the load balancer and then the finalizer.

It runs only while it holds the Lease ``kube-system/cloud-controller-manager`` and
authenticates as the ServiceAccount ``kube-system/cloud-controller-manager`` (the role is the
one provider manifests install). Simplified: no node lifecycle controller (deleting Nodes
whose instance is gone), no periodic address refresh (``--node-status-update-frequency``,
5 min), no beta topology labels.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.apiserver import rbac
from k8sbook.client.events import EventRecorder
from k8sbook.client.informer import (
    DeletedFinalStateUnknown,
    SharedIndexInformer,
    meta_namespace_key,
)
from k8sbook.client.leaderelection import LeaderElector
from k8sbook.client.workqueue import RateLimitingQueue
from k8sbook.cluster import Cluster
from k8sbook.controlplane.cloud import CloudClient, CloudError, Route
from k8sbook.core.status import StatusError

UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"
LB_FINALIZER = "service.kubernetes.io/load-balancer-cleanup"
EXCLUDE_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
ROUTE_RECONCILIATION_PERIOD = 10.0
LEASE_NAMESPACE, LEASE_NAME = "kube-system", "cloud-controller-manager"

Obj = dict[str, Any]

#: what a provider's manifests install for it (k8s.io/cloud-provider's example role; the
#: needs kubernetes.io lists under "Authorization" for the cloud-controller-manager)
CLUSTER_ROLE: list[dict[str, list[str]]] = [
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch", "update"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["services"],
     "verbs": ["list", "patch", "update", "watch"]},
    {"apiGroups": [""], "resources": ["services/status"], "verbs": ["patch", "update"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create", "get"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
     "verbs": ["create", "get", "update"]},
]


def manifests() -> list[Obj]:
    """The ServiceAccount, ClusterRole and ClusterRoleBinding an operator applies."""
    return rbac.service_account_manifests("cloud-controller-manager", "kube-system",
                                          "system:cloud-controller-manager", CLUSTER_ROLE)


def load_balancer_name(svc: Obj) -> str:
    """``cloudprovider.DefaultLoadBalancerName``: "a" + the UID without dashes, 32 chars."""
    return ("a" + svc["metadata"]["uid"].replace("-", ""))[:32]


def _obj(o: Any) -> Obj:
    return o.obj if isinstance(o, DeletedFinalStateUnknown) else o


class CloudControllerManager:
    def __init__(self, cluster: Cluster, cloud: Any,
                 instance: str = "cloud-controller-manager/cp-1",
                 cluster_name: str = "kubernetes") -> None:
        self.cluster = cluster
        self.instance = instance
        self.cluster_name = cluster_name
        self.client = cluster.service_account_client(instance, "kube-system",
                                             "cloud-controller-manager")
        self.cloud = CloudClient(cloud, instance, cluster.clock, cluster.trace)
        self.recorder = EventRecorder(self.client, "service-controller")
        host = instance.split("/", 1)[1] if "/" in instance else "control-plane"
        self.elector = LeaderElector(self.client, LEASE_NAMESPACE, LEASE_NAME,
                                     f"{host}_{cluster.ids.uid()}",
                                     on_started_leading=self._run,
                                     on_stopped_leading=self.stop)
        self.node_informer = SharedIndexInformer(self.client, "nodes")
        self.service_informer = SharedIndexInformer(self.client, "services")
        self.node_queue = RateLimitingQueue(cluster.clock, "cloud-node")
        self.service_queue = RateLimitingQueue(cluster.clock, "service")
        self._timer: Any = None
        self._synced: dict[str, Any] = {}
        self.running = False
        cluster.components[instance] = self

    def start(self) -> None:
        self.elector.run()

    def stop(self) -> None:
        self.running = False
        if not self.elector.stopped:
            self.elector.stop()
        self.node_informer.stop()
        self.service_informer.stop()
        if self._timer:
            self._timer.cancel()

    def _run(self) -> None:
        self.running = True
        self.node_informer.add_event_handler(
            lambda n: self.node_queue.add(n["metadata"]["name"]),
            lambda o, n: self.node_queue.add(n["metadata"]["name"]), None)
        self.node_informer.add_event_handler(  # the service controller watches nodes too
            lambda n: self._all_lb_services(), None, lambda n: self._all_lb_services())
        self.service_informer.add_event_handler(
            lambda s: self.service_queue.add(meta_namespace_key(s)),
            lambda o, s: self.service_queue.add(meta_namespace_key(s)),
            lambda s: self.service_queue.add(meta_namespace_key(_obj(s))))
        self.node_informer.run()
        self.service_informer.run()
        self.node_queue.run_worker(self.sync_node)
        self.service_queue.run_worker(self.sync_service)
        self._timer = self.cluster.clock.call_later(ROUTE_RECONCILIATION_PERIOD,
                                                    self._route_tick, "route controller")

    # -- the cloud node controller -------------------------------------------------------
    def sync_node(self, name: Any) -> None:
        node = self.node_informer.get(name)
        if node is None:
            return
        taints = node.get("spec", {}).get("taints", []) or []
        if not any(t.get("key") == UNINITIALIZED_TAINT for t in taints):
            return
        meta = self.cloud.instance_metadata(name)
        new = copy.deepcopy(node)
        new["spec"]["providerID"] = new["spec"].get("providerID") or meta["providerID"]
        labels = new["metadata"].setdefault("labels", {})
        labels.update({"node.kubernetes.io/instance-type": meta["instanceType"],
                       "topology.kubernetes.io/zone": meta["zone"],
                       "topology.kubernetes.io/region": meta["region"]})
        new["spec"]["taints"] = [t for t in taints if t.get("key") != UNINITIALIZED_TAINT]
        if not new["spec"]["taints"]:
            del new["spec"]["taints"]
        self.client.update(new)
        # "so that users do not see any significant delay in IP addresses being filled in"
        self.client.patch("nodes", name, {"status": {"addresses": meta["nodeAddresses"]}},
                          subresource="status")

    # -- the route controller ------------------------------------------------------------
    def _route_tick(self) -> None:
        if not self.running:
            return
        try:
            self.reconcile_routes()
        except (StatusError, CloudError):
            pass
        self._timer = self.cluster.clock.call_later(ROUTE_RECONCILIATION_PERIOD,
                                                    self._route_tick, "route controller")

    def reconcile_routes(self) -> None:
        routes = {r.target_node: r for r in self.cloud.list_routes(self.cluster_name)}
        for node in self.node_informer.indexer.list():
            name, cidr = node["metadata"]["name"], node["spec"].get("podCIDR")
            if not cidr:
                continue
            if name not in routes:
                self.cloud.create_route(self.cluster_name, Route(
                    f"{self.cluster_name}-{node['metadata']['uid']}", name, cidr))
            conds = node.get("status", {}).get("conditions", []) or []
            if any(c["type"] == "NetworkUnavailable" and c["status"] == "False"
                   for c in conds):
                continue
            now = self.cluster.clock.timestamp()
            cond = {"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated",
                    "message": "RouteController created a route",
                    "lastTransitionTime": now, "lastHeartbeatTime": now}
            self.client.patch("nodes", name, {"status": {"conditions": [
                c for c in conds if c["type"] != "NetworkUnavailable"] + [cond]}},
                subresource="status")

    # -- the service controller ----------------------------------------------------------
    def _all_lb_services(self) -> None:
        for svc in self.service_informer.indexer.list():
            if svc["spec"].get("type") == "LoadBalancer":
                self.service_queue.add(meta_namespace_key(svc))

    def lb_nodes(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.node_informer.indexer.list()
                if EXCLUDE_LB_LABEL not in (n["metadata"].get("labels") or {})]

    def sync_service(self, key: Any) -> None:
        svc = self.service_informer.get(key)
        if svc is None:
            return
        meta = svc["metadata"]
        finalizers = meta.get("finalizers", []) or []
        wants_lb = svc["spec"].get("type") == "LoadBalancer" and not meta.get("deletionTimestamp")
        if not wants_lb:
            if LB_FINALIZER in finalizers:
                self.cloud.ensure_load_balancer_deleted(load_balancer_name(svc))
                new = copy.deepcopy(svc)
                new["metadata"]["finalizers"] = [f for f in finalizers if f != LB_FINALIZER]
                self.client.update(new)
            return
        if LB_FINALIZER not in finalizers:
            new = copy.deepcopy(svc)
            new["metadata"]["finalizers"] = finalizers + [LB_FINALIZER]
            self.client.update(new)
            return  # the update comes back through the informer
        wanted = (copy.deepcopy(svc["spec"]), self.lb_nodes())
        ingress_now = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress")
        if ingress_now and self._synced.get(key) == wanted:
            return  # needsUpdate: nothing the load balancer depends on has changed
        self._synced[key] = wanted
        self.recorder.event(svc, "Normal", "EnsuringLoadBalancer", "Ensuring load balancer")
        ports = [{"port": p["port"], "nodePort": p.get("nodePort"),
                  "protocol": p.get("protocol", "TCP")} for p in svc["spec"].get("ports", [])]
        lb = self.cloud.ensure_load_balancer(load_balancer_name(svc), ports, self.lb_nodes())
        ingress = [{"ip": lb.ip, "ipMode": "VIP"}]
        if (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") != ingress:
            self.client.patch("services", meta["name"],
                              {"status": {"loadBalancer": {"ingress": ingress}}},
                              meta["namespace"], subresource="status")
        self.recorder.event(svc, "Normal", "EnsuredLoadBalancer", "Ensured load balancer")


def external_cloud_provider_kubelet(cluster: Cluster, node_name: str, **kwargs: Any) -> Any:
    """A kubelet started with ``--cloud-provider=external``: it registers its Node with the
    taint ``node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule`` and, once the
    provider has set the node's addresses, keeps them ("provider set addresses should take
    precedence", ``nodestatus.NodeAddress``)."""
    from k8sbook.node.kubelet import Kubelet

    class ExternalCloudProviderKubelet(Kubelet):
        def node_object(self) -> Obj:
            node = super().node_object()
            node["spec"]["taints"] = [{"key": UNINITIALIZED_TAINT, "value": "true",
                                       "effect": "NoSchedule"}]
            return node

        def node_status(self, heartbeat: str | None = None) -> Obj:
            status = super().node_status(heartbeat)
            current = self.node_informer.get(self.node_name)
            addresses = (current or {}).get("status", {}).get("addresses")
            if addresses:
                status["addresses"] = addresses
            # the real kubelet's strategic merge patch keys conditions by type and so never
            # drops the route controller's NetworkUnavailable; keep it in the full list
            mine = {c["type"] for c in status["conditions"]}
            status["conditions"] += [c for c in (current or {}).get("status", {}).get(
                "conditions", []) if c["type"] not in mine]
            return status

    return cluster.add_kubelet(node_name, kubelet_class=ExternalCloudProviderKubelet, **kwargs)
