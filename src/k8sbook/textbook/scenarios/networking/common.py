"""What every scenario of the Service networking part starts from (chapters 9, 10 and 11).

Every run builds a two-node cluster with real kubelets (:mod:`k8sbook.node.kubelet`), the
EndpointSlice controller (:mod:`k8sbook.controlplane.controllers.endpointslice`) and one
kube-proxy per node (:mod:`k8sbook.node.kube_proxy`), whose rules the network fabric applies to
every connection leaving a node. The helpers are public so that the chapters and the tests can
look at the same objects the scenario produced (they are also kept in ``result.facts``).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from k8sbook.addons.dns import CoreDNS
from k8sbook.apiserver import reconcilers
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers import endpointslice
from k8sbook.core.trace import Message
from k8sbook.node.kube_proxy import KubeProxy, walk_iptables
from k8sbook.node.kubelet import CLUSTER_CIDR, Kubelet, http_probe
from k8sbook.textbook.scenarios import ScenarioResult

Obj = dict[str, Any]
NODES = ("node-a", "node-b")
#: the control-plane node's address, where kube-apiserver listens on 6443
CONTROL_PLANE_IP = "192.168.0.2"
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.13.1"


@dataclass
class Net:
    """A running cluster with its node components."""

    cluster: Cluster
    kubelets: dict[str, Kubelet]
    endpointslices: endpointslice.EndpointSliceController
    proxies: dict[str, KubeProxy]
    coredns: dict[str, CoreDNS] = field(default_factory=dict)

    def kubelet_of(self, pod: Obj) -> Kubelet:
        return self.kubelets[pod["spec"]["nodeName"]]

    def proxy_of(self, pod: Obj) -> KubeProxy:
        return self.proxies[pod["spec"]["nodeName"]]

    def pod(self, name: str, namespace: str = "default") -> Obj:
        """The pod as stored (read from the apiserver's watch cache, so nothing is traced)."""
        for p in self.cluster.apiserver.cached_objects("pods"):
            if (p["metadata"]["namespace"], p["metadata"]["name"]) == (namespace, name):
                return p
        raise KeyError(f"no pod {namespace}/{name}")


def kubernetes_endpointslice(cluster: Cluster, ip: str = CONTROL_PLANE_IP) -> None:
    """What kube-apiserver's endpoint reconciler writes for the ``kubernetes`` Service, by its
    own code (:func:`k8sbook.apiserver.reconcilers.sync`, one round): the ``Endpoints`` and
    the EndpointSlice, one endpoint per apiserver, port ``https`` 6443. A one-apiserver model
    cluster runs no reconciler (see :mod:`k8sbook.apiserver.reconcilers`)."""
    reconcilers.sync(cluster.apiserver.handle, [ip])



def start_endpointslices(cluster: Cluster) -> endpointslice.EndpointSliceController:
    """The EndpointSlice controller as kube-controller-manager runs it."""
    return endpointslice.start(
        cluster.service_account_client("kube-controller-manager", "kube-system",
                                       endpointslice.NAME),
        cluster.client("kube-controller-manager"))


def start_network(seed: int = 0, nodes: tuple[str, ...] = NODES) -> Net:
    """Nodes with kubelets and kube-proxies, plus the EndpointSlice controller."""
    cluster = Cluster(seed)
    kubelets = {n: cluster.add_kubelet(n).start() for n in nodes}
    kubernetes_endpointslice(cluster)
    esc = start_endpointslices(cluster)
    proxies = {n: cluster.add_kube_proxy(n, node_ip=kubelets[n].address,
                                         cluster_cidr=CLUSTER_CIDR) for n in nodes}
    cluster.settle(2.0)
    return Net(cluster, kubelets, esc, proxies)


def pod_get(net: Net, pod: Obj, host: str, port: int, path: str = "/") -> \
        HTTPResponse | DialError:
    """The application in ``pod`` opens a connection to ``host:port`` and sends ``GET path``:
    the packet leaves the pod's node through its netfilter rules, the fabric records it.
    Returns the answer, or the dial error the application got."""
    try:
        reply: HTTPResponse = net.cluster.network.dial(
            f"pod/{pod['metadata']['name']}", Address.tcp(host, port),
            HTTPRequest("GET", path, (("Host", f"{host}:{port}"),)), protocol="HTTP",
            verb="GET", resource=f"{host}:{port}", result=lambda r: r.result(),
            via=pod["spec"]["nodeName"], source_ip=pod["status"]["podIP"])
    except DialError as err:
        return err
    return reply

def app_pod(name: str, node: str, *, labels: dict[str, str], port_name: str = "http",
            port: int = 8080, namespace: str = "default", image: str = "nginx:1.27",
            **spec: Any) -> Obj:
    """A web server pod with a named port and an HTTP readiness probe on it."""
    container = {"name": "app", "image": image,
                 "ports": [{"name": port_name, "containerPort": port}],
                 "readinessProbe": http_probe(port, "/")}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"nodeName": node, "containers": [container], **spec}}


def client_pod(name: str = "client", node: str = "node-a", namespace: str = "default") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"nodeName": node, "containers": [{
                "name": "shell", "image": "busybox:1.36", "command": ["sleep", "infinity"]}]}}


def service(name: str, *, selector: dict[str, str] | None, ports: list[Obj],
            namespace: str = "default", type_: str = "ClusterIP",
            cluster_ip: str | None = None) -> Obj:
    spec: Obj = {"type": type_, "ports": ports}
    if selector is not None:
        spec["selector"] = selector
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []) or [])


def wait_until(cluster: Cluster, check: Any, timeout: float = 60.0, step: float = 0.5) -> float:
    """Advance virtual time until ``check()`` holds; return the time it took."""
    start = cluster.clock.now()
    while not check():
        if cluster.clock.now() - start > timeout:
            raise TimeoutError("the model did not get there in time")
        cluster.settle(step)
    return round(cluster.clock.now() - start, 6)


def pods_ready(net: Net, names: list[str], namespace: str = "default") -> bool:
    """Are these pods Ready? (read from the apiserver's cache: no request is traced)"""
    pods = {p["metadata"]["name"]: p for p in net.cluster.apiserver.cached_objects("pods")
            if p["metadata"]["namespace"] == namespace}
    return all(n in pods and is_ready(pods[n]) for n in names)


def slice_summary(net: Net, service_name: str, namespace: str = "default") -> list[Obj]:
    """The Service's EndpointSlices as an operator would read them, sorted by their ports."""
    out = []
    for es in net.cluster.apiserver.cached_objects("endpointslices", "discovery.k8s.io"):
        labels = es["metadata"].get("labels") or {}
        if es["metadata"]["namespace"] != namespace or \
                labels.get("kubernetes.io/service-name") != service_name:
            continue
        out.append({
            "name": es["metadata"]["name"],
            "ports": [f"{p.get('name', '')}/{p.get('protocol')}/{p.get('port')}"
                      for p in es.get("ports") or []],
            "endpoints": [
                f"{e['targetRef']['name']} {e['addresses'][0]} "
                f"ready={e['conditions']['ready']} serving={e['conditions']['serving']} "
                f"terminating={e['conditions']['terminating']}"
                for e in es.get("endpoints") or []]})
    return sorted(out, key=lambda s: (s["ports"], s["name"]))


def spread(rules: str, *, src: str, dst: str, dport: int, n: int, seed: int,
           local_ips: list[str], proto: str = "tcp") -> dict[str, int]:
    """Where ``n`` new connections land, with one seeded generator for all of them."""
    rng = random.Random(seed)
    counts = Counter(walk_iptables(rules, src=src, dst=dst, dport=dport, proto=proto,
                                   local_ips=local_ips, rng=rng).destination
                     for _ in range(n))
    return dict(sorted(counts.items()))



# -- what the chapters draw -----------------------------------------------------------------
def paths_graph(result: ScenarioResult, title: str = "") -> Any:
    """The catalogued paths a run used, as a communication graph labelled with message
    counts (a connection refused by a REJECT rule names no component, so it is left out)."""
    from k8sbook.textbook import catalog, figures

    known = {p.id for p in catalog.paths()}
    counts = result.cluster.trace.path_counts(result.messages)
    edges = []
    for pid, n in counts.items():
        if pid not in known:
            continue
        a, b = pid.split("->")
        plane = catalog.path(pid).plane
        edges.append((a, b, {"label": str(n), "colour": figures.PLANE_COLOURS[plane],
                             "style": "--" if plane == "data" else "-"}))
    return figures.communication_graph(edges, title)


def select(messages: list[Any], *, srcs: tuple[str, ...] = (), verbs: tuple[str, ...] = (),
           resources: tuple[str, ...] = (), paths: tuple[str, ...] = (),
           names: tuple[str, ...] = (), limit: int = 40) -> list[Any]:
    """Messages whose path is in ``paths``, or whose source starts with one of ``srcs`` and
    whose verb and resource are listed (and name contains one of ``names``, if given)."""
    out = []
    for m in messages:
        by_path = m.path in paths
        by_src = any(m.src.startswith(s) or m.dst.startswith(s) for s in srcs) and \
            (not verbs or m.verb in verbs) and (not resources or m.resource in resources) and \
            (not names or any(n in m.name for n in names))
        if by_path or by_src:
            out.append(m)
    return out[:limit]



def last_walk(proxy: KubeProxy) -> Any:
    """The packet walk of the newest connection through ``proxy``'s rules."""
    return proxy.walks[-1]


__all__ = ["CLUSTER_CIDR", "CONTROL_PLANE_IP", "COREDNS_IMAGE", "NODES", "Message", "Net",
           "app_pod", "client_pod", "is_ready", "kubernetes_endpointslice", "last_walk",
           "paths_graph", "pod_get", "pods_ready", "select", "service", "slice_summary",
           "spread", "start_endpointslices", "start_network", "wait_until", "walk_iptables"]
