"""Chapter 11, "Cluster DNS": resolv.conf from the kubelet, lookups through kube-dns to CoreDNS.

Two CoreDNS pods behind the ``kube-dns`` Service listen on their pod IPs, UDP 53. The client
pod's stub resolver (:class:`k8sbook.addons.dns.resolver.StubResolver`) reads the container's
``/etc/resolv.conf`` and dials ``10.96.0.10:53`` from the pod via its node, so kube-proxy's
rules pick the CoreDNS pod; the fabric records every datagram on ``pod->coredns``. The
scenario neither records nor picks a server.
"""

from __future__ import annotations

from typing import Any, cast

from k8sbook.addons import dns as kdns
from k8sbook.apiserver.kubelet_client import pod_exec
from k8sbook.textbook.scenarios import ScenarioResult, scenario
from k8sbook.textbook.scenarios.networking.common import (
    COREDNS_IMAGE,
    Net,
    Obj,
    app_pod,
    client_pod,
    pods_ready,
    service,
    start_network,
    wait_until,
)

CH11 = "11-cluster-dns"


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
        net.coredns[pod["status"]["podIP"]] = cluster.add_coredns(name, pod["status"]["podIP"])
    cluster.settle(2.0)
    return names


def read_resolv_conf(net: Net, pod: Obj) -> str:
    """``kubectl exec <pod> -- cat /etc/resolv.conf``: the file the runtime wrote into the
    container from the DNSConfig the kubelet gave it in ``RunPodSandbox``."""
    meta = pod["metadata"]
    text: str = pod_exec(net.cluster.admin(), meta["namespace"], meta["name"],
                         ["cat", "/etc/resolv.conf"])
    return text


def pod_resolver(net: Net, pod: Obj, resolv_conf_text: str) -> kdns.StubResolver:
    """The resolver library inside ``pod``, reading ``resolv_conf_text``."""
    return kdns.StubResolver(net.cluster.network, pod["metadata"]["name"],
                             pod["status"]["podIP"], pod["spec"]["nodeName"],
                             resolv_conf_text, id_source=net.cluster.ids.random)


def new_client(result: ScenarioResult, name: str, **spec: Any) -> kdns.StubResolver:
    """Chapter 11's exercises: in the cluster of a :func:`cluster_dns` run, create a client
    pod ``name`` on node-a (``spec`` adds pod fields such as ``dnsConfig``), wait until it
    runs, and return its resolver, reading the resolv.conf the kubelet wrote for it."""
    net = cast(Net, result.cluster.components["net"])
    pod = client_pod(name)
    pod["spec"].update(spec)
    net.cluster.admin().create(pod)
    wait_until(net.cluster, lambda: pods_ready(net, [name]))
    created = net.pod(name)
    return pod_resolver(net, created, read_resolv_conf(net, created))


def malformed_query(seed: int = 0) -> bytes:
    """A query whose header promises two questions but carries one."""
    q = kdns.dns.message.make_query("web.default.svc.cluster.local.", "A")
    q.id = 4242 + seed
    wire = bytearray(q.to_wire())
    wire[4:6] = (2).to_bytes(2, "big")  # QDCOUNT = 2
    return bytes(wire)


@scenario("cluster-dns", "resolv.conf from the kubelet, lookups through kube-dns to CoreDNS",
          CH11)
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
    conf = read_resolv_conf(net, client)
    resolver = pod_resolver(net, client, conf)
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
    reply = resolver.exchange(bad, resolver.cfg.servers[0])
    bad_reply = kdns.dns.message.from_wire(reply) if reply else None
    bad_server = [m for m in cluster.trace.since(mark) if m.path == "pod->coredns"][-1].dst
    retry = coredns_down(net, resolver, coredns_pods[0])
    messages = cluster.trace.since(mark)
    facts = {
        "coredns_pods": coredns_pods, "kube_dns_ip": kdns.kubeadm_cluster_dns(),
        "resolv_conf": conf,
        "resolver_options": {"ndots": kdns.ndots(resolver.cfg),
                             "timeout": kdns.timeout(resolver.cfg),
                             "attempts": kdns.attempts(resolver.cfg)},
        "web_ip": web_ip, "db_ips": sorted(net.pod(f"db-{i}", "data")["status"]["podIP"]
                                           for i in range(2)),
        "lookups": {k: [(a.qname, a.rcode, a.answers) for a in v.attempts]
                    for k, v in lookups.items()},
        "direct": {k: (a.qname, a.rcode, a.answers) for k, a in direct.items()},
        "malformed": {"id": int.from_bytes(bad[:2], "big"),
                      "reply_id": bad_reply.id if bad_reply else None,
                      "rcode": kdns.dns.rcode.to_text(bad_reply.rcode()) if bad_reply else "",
                      "server": bad_server},
        "retry": retry,
        "coredns_resources": sorted({m.resource for m in messages
                                     if m.path == "coredns->kube-apiserver"
                                     and m.verb in ("LIST", "WATCH")}),
    }
    cluster.components["net"] = net
    return ScenarioResult("cluster-dns", cluster, messages, facts)



def coredns_down(net: Net, resolver: kdns.StubResolver, pod_name: str,
                 tries: int = 20) -> Obj:
    """CoreDNS pod ``pod_name`` is cut off the network (its pod stays Ready, so its endpoint
    stays in the rules): a query DNATed to it gets no answer, and the resolver sends it again
    after its timeout; the retry is DNATed afresh. Returns the first lookup whose retry
    reached the other CoreDNS pod: its datagrams, where each went, what the resolver waited
    (``lookups_before``: how many lookups before it got no answer at all or were answered
    at once)."""
    cluster = net.cluster
    victim = f"coredns/{pod_name}"
    cluster.network.isolate(victim)
    out: Obj = {"isolated": victim}
    try:
        for i in range(tries):
            mark = cluster.trace.mark()
            lookup = resolver.lookup("web.default.svc.cluster.local.")
            sends = lookup.attempts[-1].sends
            if len(sends) > 1 and sends[-1].outcome == "answer":
                sent = [m for m in cluster.trace.since(mark) if m.path == "pod->coredns"]
                out.update({"lookups_before": i, "sends": [(s.outcome, s.waited) for s in sends],
                            "datagrams": [(m.dst, m.result) for m in sent],
                            "waited": lookup.waited, "rcode": lookup.attempts[-1].rcode,
                            "answer": lookup.answer})
                break
    finally:
        cluster.network.rejoin(victim)
    return out


def dns_story(result: ScenarioResult) -> list[Any]:
    """Chapter 11's sequence: CoreDNS's watches, then the client's queries."""
    watches = [m for m in result.messages if m.src.startswith("coredns/")
               and m.src.endswith(result.facts["coredns_pods"][0]) and m.verb in ("LIST",
                                                                                   "WATCH")]
    return watches + [m for m in result.messages if m.path == "pod->coredns"]
