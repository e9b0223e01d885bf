"""Scenarios of the Service networking part: chapters 9 (Services), 10 (cluster DNS) and 11
(Ingress).

Every run builds a two-node cluster with real kubelets (:mod:`k8sbook.node.kubelet`), the
EndpointSlice controller and one kube-proxy per node, then plays the chapter's story. The
helpers here are public so that the chapters and the tests can look at the same objects the
scenario produced (they are also kept in ``result.facts``).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from k8sbook.addons import dns as kdns
from k8sbook.addons import ingress as king
from k8sbook.api.request import Request
from k8sbook.apiserver.server import LOOPBACK_USER
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers import endpointslice
from k8sbook.core.status import StatusError
from k8sbook.node.kube_proxy import KubeProxy, walk_iptables, walk_nftables
from k8sbook.node.kubelet import CLUSTER_CIDR, Kubelet, http_probe
from k8sbook.textbook.scenarios import ScenarioResult, scenario

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
    coredns: dict[str, kdns.CoreDNS] = field(default_factory=dict)

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
    """What kube-apiserver's endpoint reconciler writes for the ``kubernetes`` Service: one
    endpoint per apiserver, port ``https`` 6443."""
    es = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
          "metadata": {"name": "kubernetes", "namespace": "default",
                       "labels": {"kubernetes.io/service-name": "kubernetes"}},
          "addressType": "IPv4",
          "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
          "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}
    cluster.apiserver.handle(Request("create", "endpointslices", "discovery.k8s.io", "default",
                                     body=es, user=LOOPBACK_USER))


def start_network(seed: int = 0, nodes: tuple[str, ...] = NODES) -> Net:
    """Nodes with kubelets and kube-proxies, plus the EndpointSlice controller."""
    cluster = Cluster(seed)
    kubelets = {n: cluster.add_kubelet(n).start() for n in nodes}
    kubernetes_endpointslice(cluster)
    esc = endpointslice.start(cluster)
    proxies = {n: KubeProxy(cluster, n, node_ip=kubelets[n].address,
                            cluster_cidr=CLUSTER_CIDR).start() for n in nodes}
    cluster.settle(2.0)
    return Net(cluster, kubelets, esc, proxies)


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


# -- chapter 9 ------------------------------------------------------------------------------
CH9 = "09-services"


@scenario("services", "A Service, its EndpointSlices, kube-proxy's rules and packets "
          "through them", CH9)
def services(seed: int = 0) -> ScenarioResult:
    """A NodePort Service ``web`` over three ready pods (a fourth matches its selector but
    names its port ``web`` instead of ``http``) and a Service ``ghost`` that selects nothing;
    a client pod connects to both; then ``web-2`` turns unready and leaves the rules."""
    net = start_network(seed)
    cluster, admin = net.cluster, net.cluster.admin()
    mark = cluster.trace.mark()
    admin.create(service("web", selector={"app": "web"}, type_="NodePort",
                         ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    admin.create(service("ghost", selector={"app": "ghost"},
                         ports=[{"name": "http", "port": 80, "targetPort": 8080}]))
    placement = {"web-0": "node-a", "web-1": "node-b", "web-2": "node-a", "web-3": "node-b"}
    for name, node in placement.items():
        admin.create(app_pod(name, node, labels={"app": "web"},
                             port_name="web" if name == "web-3" else "http"))
    admin.create(client_pod())
    took = wait_until(cluster, lambda: pods_ready(net, [*placement, "client"]))
    cluster.settle(2.0)
    web = admin.get("services", "web", "default")
    ghost = admin.get("services", "ghost", "default")
    ip, node_port = web["spec"]["clusterIP"], web["spec"]["ports"][0]["nodePort"]
    client = net.pod("client")
    proxy_a, proxy_b = net.proxies["node-a"], net.proxies["node-b"]
    slices_before = slice_summary(net, "web")
    rules_before = proxy_a.iptables_save
    nft_before = proxy_a.nft_ruleset
    first = [proxy_a.connect(client, ip, 80, seed=seed * 100 + i) for i in range(3)]
    spread_before = spread(rules_before, src=client["status"]["podIP"], dst=ip, dport=80,
                           n=600, seed=seed, local_ips=[proxy_a.node_ip])
    refused = proxy_a.connect(client, ghost["spec"]["clusterIP"], 80, seed=seed)
    nodeport = walk_iptables(proxy_b.iptables_save, src="192.168.0.100", dst=proxy_b.node_ip,
                             dport=node_port, local_ips=[proxy_b.node_ip], seed=seed)
    nft_walk = walk_nftables(nft_before, src=client["status"]["podIP"], dst=ip, dport=80,
                             local_ips=[proxy_a.node_ip], seed=seed)
    nft_refused = walk_nftables(nft_before, src=client["status"]["podIP"],
                                dst=ghost["spec"]["clusterIP"], dport=80,
                                local_ips=[proxy_a.node_ip], seed=seed)
    # web-2's application starts failing its readiness probe
    t_unhealthy = cluster.clock.now()
    victim = net.pod("web-2")
    net.kubelet_of(victim).set_app_healthy("default", "web-2", False)
    took_unready = wait_until(cluster, lambda: not is_ready(net.pod("web-2")), timeout=120)
    wait_until(cluster, lambda: victim["status"]["podIP"] not in proxy_a.iptables_save,
               timeout=10)
    t_rules = cluster.clock.now()
    cluster.settle(1.0)
    rules_after = proxy_a.iptables_save
    after = proxy_a.connect(client, ip, 80, seed=seed)
    spread_after = spread(rules_after, src=client["status"]["podIP"], dst=ip, dport=80, n=600,
                          seed=seed, local_ips=[proxy_a.node_ip])
    messages = cluster.trace.since(mark)
    pods = {p: net.pod(p) for p in [*placement, "client"]}
    facts = {
        "cluster_ip": ip, "node_port": node_port, "ghost_ip": ghost["spec"]["clusterIP"],
        "pod_ips": {p: pods[p]["status"]["podIP"] for p in sorted(pods)},
        "ready_after": took, "slices_before": slices_before,
        "slices_after": slice_summary(net, "web"), "ghost_slices": slice_summary(net, "ghost"),
        "iptables_before": rules_before, "iptables_after": rules_after,
        "nftables_before": nft_before,
        "first_connections": [w.verdict for w in first],
        "first_walk": first[0].steps, "spread_before": spread_before,
        "spread_after": spread_after, "refused": refused.verdict,
        "refused_walk": refused.steps, "nodeport_walk": nodeport.steps,
        "nodeport_verdict": nodeport.verdict, "nodeport_masquerade": nodeport.packet.masquerade,
        "nft_walk": nft_walk.steps, "nft_verdict": nft_walk.verdict,
        "nft_refused_walk": nft_refused.steps, "nft_refused": nft_refused.verdict,
        "unready_after": took_unready, "rules_updated_after": round(t_rules - t_unhealthy, 6),
        "after_connection": after.verdict,
        "proxy_syncs": {n: p.syncs for n, p in sorted(net.proxies.items())},
        "endpointslice_log": net.endpointslices.log,
    }
    cluster.components["net"] = net
    return ScenarioResult("services", cluster, messages, facts)


# -- chapter 10 -----------------------------------------------------------------------------
CH10 = "10-cluster-dns"


def kube_dns_service(cluster_ip: str = kdns.kubeadm_cluster_dns()) -> Obj:
    """kubeadm's ``kube-dns`` Service, in front of the CoreDNS pods."""
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system",
                         "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                    "kubernetes.io/name": "CoreDNS"}},
            "spec": {"clusterIP": cluster_ip, "selector": {"k8s-app": "kube-dns"},
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP",
                                "targetPort": 53},
                               {"name": "metrics", "port": 9153, "protocol": "TCP",
                                "targetPort": 9153}]}}


def coredns_pod(node: str) -> Obj:
    """A CoreDNS pod as its Deployment's template makes it (created directly here)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "coredns-", "namespace": "kube-system",
                         "labels": {"k8s-app": "kube-dns"}},
            "spec": {"nodeName": node, "dnsPolicy": "Default",
                     "serviceAccountName": "coredns",
                     "containers": [{"name": "coredns", "image": COREDNS_IMAGE,
                                     "args": ["-conf", "/etc/coredns/Corefile"],
                                     "ports": [{"name": "dns", "containerPort": 53,
                                                "protocol": "UDP"},
                                               {"name": "dns-tcp", "containerPort": 53,
                                                "protocol": "TCP"},
                                               {"name": "metrics", "containerPort": 9153,
                                                "protocol": "TCP"}]}]}}


def start_dns(net: Net) -> list[str]:
    """Create kube-dns and two CoreDNS pods, wait for them, start the CoreDNS processes."""
    cluster, admin = net.cluster, net.cluster.admin()
    admin.create(kube_dns_service())
    names = [admin.create(coredns_pod(n))["metadata"]["name"] for n in sorted(net.kubelets)]
    wait_until(cluster, lambda: pods_ready(net, names, "kube-system"))
    for name in names:
        pod = net.pod(name, "kube-system")
        net.coredns[pod["status"]["podIP"]] = kdns.CoreDNS(cluster, name,
                                                           pod["status"]["podIP"]).start()
    cluster.settle(2.0)
    return names


def pod_resolver(net: Net, pod: Obj, *, seed: int = 0) -> kdns.StubResolver:
    """The resolver inside ``pod``: its resolv.conf, and UDP through the node's rules."""
    cluster = net.cluster
    conf = kdns.resolv_conf(pod, kdns.kubeadm_cluster_dns())
    proxy = net.proxy_of(pod)
    rng = random.Random(seed)

    def send(wire: bytes, server: str) -> tuple[bytes | None, str]:
        walk = walk_iptables(proxy.iptables_save, src=pod["status"]["podIP"], dst=server,
                             dport=53, proto="udp", local_ips=[proxy.node_ip], rng=rng)
        target_ip = walk.destination.rsplit(":", 1)[0]
        server_proc = net.coredns.get(target_ip)
        src = f"pod/{pod['metadata']['name']}"
        if walk.refused or server_proc is None:
            cluster.trace.record(cluster.clock.now(), src, "coredns", "pod->coredns",
                                 "DNS/UDP", "QUERY", _describe(wire), "", "no answer")
            return None, ""
        reply = server_proc.handle(wire)
        cluster.trace.record(cluster.clock.now(), src, server_proc.instance, "pod->coredns",
                             "DNS/UDP", "QUERY", _describe(wire), "",
                             _describe_reply(reply))
        return reply, server_proc.instance

    return kdns.StubResolver(pod, conf, send, id_source=cluster.ids.random)


def _describe(wire: bytes) -> str:
    try:
        m = kdns.dns.message.from_wire(wire)
        q = m.question[0]
        return f"{q.name} {kdns.dns.rdatatype.to_text(q.rdtype)}"
    except Exception:  # noqa: BLE001 - a malformed query has no question to show
        return f"({len(wire)} bytes, malformed)"


def _describe_reply(reply: bytes | None) -> str:
    if reply is None:
        return "no reply"
    m = kdns.dns.message.from_wire(reply)
    n = sum(len(rr) for rr in m.answer)
    return f"{kdns.dns.rcode.to_text(m.rcode())}, {n} answer{'s' if n != 1 else ''}"


def malformed_query(seed: int = 0) -> bytes:
    """A query whose header promises two questions but carries one."""
    q = kdns.dns.message.make_query("web.default.svc.cluster.local.", "A")
    q.id = 4242 + seed
    wire = bytearray(q.to_wire())
    wire[4:6] = (2).to_bytes(2, "big")  # QDCOUNT = 2
    return bytes(wire)


@scenario("cluster-dns", "resolv.conf from the kubelet, lookups through kube-dns to CoreDNS",
          CH10)
def cluster_dns(seed: int = 0) -> ScenarioResult:
    """CoreDNS behind the ``kube-dns`` Service; a Service ``web`` and a headless Service
    ``db`` in namespace ``data``; a client pod resolves short and full names, SRV and PTR
    records, a name that does not exist, and sends one malformed query."""
    net = start_network(seed)
    cluster, admin = net.cluster, net.cluster.admin()
    mark = cluster.trace.mark()
    coredns_pods = start_dns(net)
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "data"}})
    admin.create(service("web", selector={"app": "web"},
                         ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    admin.create(service("db", namespace="data", selector={"app": "db"}, cluster_ip="None",
                         ports=[{"name": "postgres", "port": 5432, "targetPort": "postgres"}]))
    admin.create(app_pod("web-0", "node-b", labels={"app": "web"}))
    for i, node in enumerate(("node-a", "node-b")):
        admin.create(app_pod(f"db-{i}", node, labels={"app": "db"}, port_name="postgres",
                             port=5432, namespace="data", hostname=f"db-{i}", subdomain="db"))
    admin.create(client_pod())
    wait_until(cluster, lambda: pods_ready(net, ["web-0", "client"]) and
               pods_ready(net, ["db-0", "db-1"], "data"))
    cluster.settle(2.0)
    client = net.pod("client")
    resolver = pod_resolver(net, client, seed=seed)
    web_ip = admin.get("services", "web", "default")["spec"]["clusterIP"]
    db0_ip = net.pod("db-0", "data")["status"]["podIP"]
    lookups = {
        "web": resolver.lookup("web"),
        "db.data": resolver.lookup("db.data"),
        "db-0.db.data": resolver.lookup("db-0.db.data"),
        "nosuch": resolver.lookup("nosuch"),
        "web.default.svc.cluster.local AAAA": resolver.lookup(
            "web.default.svc.cluster.local", "AAAA"),
    }
    direct = {
        "SRV web": resolver.query("_http._tcp.web.default.svc.cluster.local.", "SRV"),
        "SRV db": resolver.query("_postgres._tcp.db.data.svc.cluster.local.", "SRV"),
        "PTR web": resolver.query(kdns.dns.reversename.from_address(web_ip).to_text(), "PTR"),
        "PTR db-0": resolver.query(kdns.dns.reversename.from_address(db0_ip).to_text(), "PTR"),
    }
    bad = malformed_query(seed)
    reply, server = resolver.send(bad, resolver.cfg.servers[0])
    bad_reply = kdns.dns.message.from_wire(reply) if reply else None
    messages = cluster.trace.since(mark)
    facts = {
        "coredns_pods": coredns_pods, "kube_dns_ip": kdns.kubeadm_cluster_dns(),
        "resolv_conf": kdns.resolv_conf(client, kdns.kubeadm_cluster_dns()),
        "web_ip": web_ip, "db_ips": sorted(net.pod(f"db-{i}", "data")["status"]["podIP"]
                                           for i in range(2)),
        "lookups": {k: [(a.qname, a.rcode, a.answers) for a in v.attempts]
                    for k, v in lookups.items()},
        "direct": {k: (a.qname, a.rcode, a.answers) for k, a in direct.items()},
        "malformed": {"id": int.from_bytes(bad[:2], "big"),
                      "reply_id": bad_reply.id if bad_reply else None,
                      "rcode": kdns.dns.rcode.to_text(bad_reply.rcode()) if bad_reply else "",
                      "server": server},
        "coredns_resources": sorted({m.resource for m in messages
                                     if m.path == "coredns->kube-apiserver"
                                     and m.verb in ("LIST", "WATCH")}),
    }
    cluster.components["net"] = net
    return ScenarioResult("cluster-dns", cluster, messages, facts)


# -- chapter 11 -----------------------------------------------------------------------------
CH11 = "11-ingress"


def tls_secret(name: str, namespace: str = "default") -> Obj:
    """A ``kubernetes.io/tls`` Secret (the key and certificate are placeholders)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": "Q0VSVElGSUNBVEU=", "tls.key": "S0VZ"}}


def backend(svc: str, port: int | str) -> Obj:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"service": {"name": svc, "port": ref}}


def shop_ingress() -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "shop", "namespace": "default"},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                     "rules": [
                         {"host": "shop.example.com", "http": {"paths": [
                             {"path": "/", "pathType": "Prefix", "backend": backend("web", 80)},
                             {"path": "/api", "pathType": "Prefix",
                              "backend": backend("api", "http")},
                             {"path": "/api/health", "pathType": "Exact",
                              "backend": backend("web", 80)}]}},
                         {"host": "*.example.com", "http": {"paths": [
                             {"path": "/", "pathType": "Prefix",
                              "backend": backend("docs", 80)}]}}]}}


def fallback_ingress() -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "fallback", "namespace": "default"},
            "spec": {"ingressClassName": "nginx", "defaultBackend": backend("web", 80)}}


def bad_ingress() -> Obj:
    ing = shop_ingress()
    ing["metadata"]["name"] = "bad"
    ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Regex"
    return ing


REQUESTS = [
    ("http", "shop.example.com", "/"),
    ("http", "shop.example.com", "/cart"),
    ("http", "shop.example.com", "/api/orders"),
    ("http", "shop.example.com", "/apiary"),
    ("http", "shop.example.com", "/api/health"),
    ("http", "shop.example.com", "/api/health/"),
    ("https", "shop.example.com", "/api"),
    ("http", "docs.example.com", "/guide"),
    ("http", "a.b.example.com", "/guide"),
    ("http", "example.com", "/"),
]


@scenario("ingress", "An ingress controller routes by host and path straight to pod "
          "endpoints", CH11)
def ingress(seed: int = 0) -> ScenarioResult:
    """ingress-nginx-like controller, Services ``web``, ``api`` and ``docs`` (the last with no
    ready pod), an Ingress ``shop`` with Exact and Prefix paths, a wildcard host and TLS, an
    Ingress ``fallback`` with a default backend, and an Ingress with pathType ``Regex``."""
    net = start_network(seed)
    cluster, admin = net.cluster, net.cluster.admin()
    mark = cluster.trace.mark()
    king.install(cluster)
    controller = king.IngressController(cluster, address=net.kubelets["node-a"].address).start()
    for name in ("web", "api", "docs"):
        admin.create(service(name, selector={"app": name},
                             ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    pods = ["web-0", "web-1", "api-0", "api-1"]
    for i, name in enumerate(pods):
        admin.create(app_pod(name, NODES[i % 2], labels={"app": name.split("-")[0]}))
    admin.create(tls_secret("shop-tls"))
    admin.create(shop_ingress())
    admin.create(fallback_ingress())
    before = cluster.etcd.revision if hasattr(cluster.etcd, "revision") else None
    try:
        admin.create(bad_ingress())
        rejected: Obj = {}
    except StatusError as err:
        rejected = {"code": err.code, "reason": err.reason,
                    "causes": [(c["field"], c["message"])
                               for c in err.status.get("details", {}).get("causes", [])]}
    after = cluster.etcd.revision if hasattr(cluster.etcd, "revision") else None
    stored = [i["metadata"]["name"] for i in admin.list("ingresses", "default")["items"]]
    wait_until(cluster, lambda: pods_ready(net, pods))
    cluster.settle(2.0)
    results = []
    for scheme, host, path in REQUESTS:
        r = controller.request(host, path, scheme)
        results.append({"request": f"{scheme}://{host}{path}", "status": r.status,
                        "rule": f"{r.match.host or '*'} {r.match.path_type} {r.match.path}"
                        if r.match else "(default backend)",
                        "service": r.service, "endpoint": r.endpoint, "pod": r.pod,
                        "certificate": r.certificate})
    messages = cluster.trace.since(mark)
    shop = admin.get("ingresses", "shop", "default")
    facts = {
        "results": results, "rejected": rejected, "stored_ingresses": stored,
        "etcd_revision_before_bad": before, "etcd_revision_after_bad": after,
        "shop_status": shop.get("status", {}),
        "controller_resources": sorted({m.resource for m in messages
                                        if m.path == "ingress-controller->kube-apiserver"
                                        and m.verb in ("LIST", "WATCH")}),
    }
    cluster.components["net"] = net
    cluster.components["ingress-controller"] = controller
    return ScenarioResult("ingress", cluster, messages, facts)


# -- what the chapters draw -----------------------------------------------------------------
def paths_graph(result: ScenarioResult, title: str = "") -> Any:
    """The paths a run used, as a communication graph labelled with message counts."""
    from k8sbook.textbook import catalog, figures

    counts = result.cluster.trace.path_counts(result.messages)
    edges = []
    for pid, n in counts.items():
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


def service_story(result: ScenarioResult) -> list[Any]:
    """Chapter 9's sequence: the Service is created, the controller writes its slices,
    kube-proxy on node-a hears of them, then the kernel carries connections."""
    msgs = [m for m in result.messages
            if (m.src == "kubectl" and m.verb == "CREATE" and m.resource == "services"
                and m.name == "default/web")
            or (m.dst == "kube-controller-manager" and m.resource in ("services",)
                and m.name == "default/web")
            or (m.src == "kube-controller-manager" and m.resource == "endpointslices"
                and m.verb in ("CREATE", "UPDATE") and m.name in ("default",)
                and m.verb == "CREATE")
            or (m.src == "kube-controller-manager" and m.resource == "endpointslices"
                and m.verb == "UPDATE" and "web" in m.name)
            or (m.dst == "kube-proxy/node-a" and m.resource in ("services", "endpointslices")
                and "web" in m.name)
            or (m.path == "pod->pod")]
    return msgs[:12] + [m for m in msgs[12:] if m.path == "pod->pod"]


def unready_story(result: ScenarioResult) -> list[Any]:
    """Chapter 9's second sequence: web-2 fails its probes and leaves the rules."""
    t0 = next(m.t for m in result.messages if m.path == "kubelet->pod" and "web-2" in m.dst
              and "503" in m.result)
    return [m for m in result.messages if m.t >= t0 and (
        (m.path == "kubelet->pod" and m.dst == "pod/web-2")
        or (m.src.startswith("kubelet/") and m.resource == "pods/status" and "web-2" in m.name)
        or (m.dst == "kube-controller-manager" and m.resource == "pods" and "web-2" in m.name)
        or (m.src == "kube-controller-manager" and m.resource == "endpointslices"
            and m.verb == "UPDATE")
        or (m.dst == "kube-proxy/node-a" and m.resource == "endpointslices")
        or m.path == "pod->pod")]


def dns_story(result: ScenarioResult) -> list[Any]:
    """Chapter 10's sequence: CoreDNS's watches, then the client's queries."""
    watches = [m for m in result.messages if m.src.startswith("coredns/")
               and m.src.endswith(result.facts["coredns_pods"][0]) and m.verb in ("LIST",
                                                                                   "WATCH")]
    return watches + [m for m in result.messages if m.path == "pod->coredns"]


def ingress_story(result: ScenarioResult) -> list[Any]:
    """Chapter 11's sequence: the controller's lists and watches, then the requests."""
    return [m for m in result.messages if m.path == "ingress-controller->kube-apiserver"
            and m.verb in ("LIST", "WATCH", "UPDATE")] + \
        [m for m in result.messages if m.path == "ingress-controller->pod"]


def nft_excerpt(ruleset: str, services: tuple[str, ...]) -> str:
    """The table's dispatch rules and the sections of the named Services (``ns/name``)."""
    lines = ruleset.splitlines()
    out = [line for line in lines if line.startswith(("add table", ("add rule ip kube-proxy "
                                                      "services "), ("add rule ip kube-proxy "
                                                      "nat-prerouting"), ("add rule ip kube-proxy "
                                                      "reject-chain")))]
    keep = False
    for line in lines:
        if line.startswith("# "):
            keep = line[2:] in services
        if keep:
            out.append(line)
    return "\n".join(out)
