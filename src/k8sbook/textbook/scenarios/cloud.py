"""Scenario of chapter 6, "The cloud": cloud-controller-manager initialises a node, adds a
route and provisions a load balancer, calling the cloud API through the network.

Each function is a complete, deterministic run on a fresh :class:`~k8sbook.cluster.Cluster`.
"""

from __future__ import annotations

import copy
from typing import Any

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.controlplane.cloud import CloudAPI
from k8sbook.controlplane.cloud_controller_manager import UNINITIALIZED_TAINT
from k8sbook.controlplane.cloud_controller_manager import manifests as ccm_manifests
from k8sbook.node.kubelet import Kubelet
from k8sbook.textbook.scenarios import ScenarioResult, apply, scenario, user_of

CHAPTER = "06-the-cloud"
Obj = dict[str, Any]


def external_cloud_provider_kubelet(cluster: Cluster, node_name: str, **kwargs: Any) -> Kubelet:
    """A kubelet started with ``--cloud-provider=external``: it registers its Node with the
    taint ``node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule`` and, once the
    provider has set the node's addresses, keeps them ("provider set addresses should take
    precedence", ``pkg/kubelet/nodestatus.NodeAddress``)."""

    class ExternalCloudProviderKubelet(Kubelet):
        def node_object(self) -> Obj:
            node: Obj = super().node_object()
            node["spec"]["taints"] = [{"key": UNINITIALIZED_TAINT, "value": "true",
                                       "effect": "NoSchedule"}]
            return node

        def node_status(self, heartbeat: str | None = None) -> Obj:
            status: Obj = super().node_status(heartbeat)
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


@scenario("cloud", "cloud-controller-manager initialises a node and provisions a load "
          "balancer; the apiserver never calls the cloud", CHAPTER)
def cloud(seed: int = 0, *, exclude_node_a: bool = False,
          delete_service: bool = False) -> ScenarioResult:
    """The operator launches an instance; its kubelet (``--cloud-provider=external``)
    registers a tainted Node. A pod waits (untolerated taint) until the cloud node controller
    has set providerID, labels and addresses and removed the taint; kube-scheduler then binds
    it. The route controller adds a route for the node's pod CIDR. A Service of type
    LoadBalancer gets a load balancer and ``status.loadBalancer.ingress``. The cloud API
    listens on ``api.cloud.model.example:443``; the CCM's provider dials it.

    Chapter 6's exercises add an epilogue, from ``facts["epilogue_from"]`` on: with
    ``exclude_node_a`` the administrator labels node-a
    ``node.kubernetes.io/exclude-from-external-load-balancers`` and annotates the Service;
    with ``delete_service`` the administrator deletes the Service."""
    cluster = Cluster(seed)
    api = CloudAPI()
    api.serve(cluster.network)
    apply(cluster, ccm_manifests())
    sched = cluster.add_scheduler("kube-scheduler/cp-1")
    sched.start()
    ccm = cluster.add_cloud_controller_manager("cloud-controller-manager/cp-1")
    cluster.run_for(3)
    mark = cluster.trace.mark()
    kubelet = external_cloud_provider_kubelet(cluster, "node-a")
    api.launch("node-a", kubelet.address)
    kubelet.start()
    cluster.run_for(1)
    cluster.admin().create(objects.pod("web", labels={"app": "web"}))
    cluster.run_for(2)
    registered = copy.deepcopy(cluster.admin().get("nodes", "node-a"))
    waiting = cluster.admin().get("pods", "web", "default")
    ccm.start()
    cluster.run_for(14)
    cluster.admin().create(objects.service("web", selector={"app": "web"}, type="LoadBalancer"))
    cluster.run_for(4)
    epilogue_from = cluster.clock.now()
    if exclude_node_a:
        cluster.admin().patch("nodes", "node-a", {"metadata": {"labels": {
            "node.kubernetes.io/exclude-from-external-load-balancers": "true"}}})
        cluster.admin().patch("services", "web", {"metadata": {"annotations": {
            "example.com/changed": "true"}}}, "default")
    if delete_service:
        cluster.admin().delete("services", "web", "default")
    if exclude_node_a or delete_service:
        cluster.run_for(4)
    messages = cluster.trace.since(mark)
    node = cluster.admin().get("nodes", "node-a")
    left = {o["metadata"]["name"]: o for o in cluster.admin().list("services", "default")["items"]}
    svc = left.get("web", {})  # gone after delete_service
    facts = {
        "registered_taints": registered["spec"].get("taints", []),
        "registered_addresses": registered["status"].get("addresses", []),
        "waiting_reason": next(c["message"] for c in waiting["status"]["conditions"]
                               if c["type"] == "PodScheduled"),
        "provider_id": node["spec"].get("providerID"),
        "labels": {k: v for k, v in sorted(node["metadata"]["labels"].items())
                   if k.startswith(("topology", "node.kubernetes.io"))},
        "addresses": node["status"]["addresses"],
        "taints_after": node["spec"].get("taints", []),
        "network_unavailable": next((c for c in node["status"]["conditions"]
                                     if c["type"] == "NetworkUnavailable"), None),
        "pod_node": cluster.admin().get("pods", "web", "default")["spec"].get("nodeName", ""),
        "ingress": svc.get("status", {}).get("loadBalancer", {}).get("ingress", []),
        "finalizers": svc.get("metadata", {}).get("finalizers", []),
        "epilogue_from": epilogue_from,
        "cloud_calls": [(m.verb, m.name, m.result) for m in messages if m.dst == "cloud-api"],
        "cloud_callers": sorted({m.src for m in messages if m.dst == "cloud-api"}),
        "cloud_endpoint": str(api.address),
        "routes": [(r.target_node, r.destination_cidr) for r in api.routes.values()],
        "load_balancers": {k: (v.ip, v.backends) for k, v in sorted(api.load_balancers.items())},
        "ccm_identity": user_of(cluster, ccm.client),
    }
    return ScenarioResult("cloud", cluster, messages, facts)
