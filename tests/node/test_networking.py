"""Service networking: the EndpointSlice controller, kube-proxy's rules and the packet walk,
cluster DNS (kubelet resolv.conf, CoreDNS over real DNS messages) and the ingress controller."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.reversename
import pytest

from k8sbook.addons import dns as kdns
from k8sbook.addons import ingress as king
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers import endpointslice
from k8sbook.core.status import StatusError
from k8sbook.node import kube_proxy as kp
from k8sbook.textbook.scenarios import networking as net
from k8sbook.textbook.scenarios import run

kubernetes_validate = pytest.importorskip("kubernetes_validate")


# -- helpers ---------------------------------------------------------------------------------
def ready_pod(admin, name, ip, *, labels, port_name="http", node="node-a", ready=True,
              namespace="default", **spec):
    """Create a pod and write its status as a kubelet would (test set-up as admin)."""
    admin.create(net.app_pod(name, node, labels=labels, port_name=port_name,
                             namespace=namespace, **spec))
    pod = admin.get("pods", name, namespace)
    pod["status"].update({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                          "conditions": [{"type": "Ready",
                                          "status": "True" if ready else "False"}]})
    return admin.update_status(pod)


def slices(cluster, service, namespace="default"):
    return sorted((s for s in cluster.admin().list("endpointslices", namespace)["items"]
                   if s["metadata"]["labels"].get("kubernetes.io/service-name") == service),
                  key=lambda s: s["metadata"]["name"])


@pytest.fixture
def esc_cluster():
    cluster = Cluster(3)
    ctrl = endpointslice.start(cluster)
    cluster.settle(1)
    return cluster, ctrl


# -- EndpointSlice controller ----------------------------------------------------------------
def test_endpointslice_shape_and_conditions(esc_cluster):
    cluster, _ctrl = esc_cluster
    admin = cluster.admin()
    svc = admin.create(net.service("web", selector={"app": "web"},
                                   ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    ready_pod(admin, "web-1", "10.244.0.3", labels={"app": "web"}, ready=False)
    cluster.settle(1)
    [es] = slices(cluster, "web")
    meta = es["metadata"]
    assert meta["generateName"] == "web-" and meta["name"].startswith("web-")
    assert meta["labels"] == {"kubernetes.io/service-name": "web",
                              "endpointslice.kubernetes.io/managed-by":
                                  "endpointslice-controller.k8s.io"}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                        "uid": svc["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert es["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    conds = {e["targetRef"]["name"]: e["conditions"] for e in es["endpoints"]}
    assert conds == {"web-0": {"ready": True, "serving": True, "terminating": False},
                     "web-1": {"ready": False, "serving": False, "terminating": False}}
    kubernetes_validate.validate(es, "1.35.0", strict=True)
    # the controller writes as its service account
    writes = [m for m in cluster.trace if m.verb == "CREATE" and m.resource == "endpointslices"]
    assert writes and {m.src for m in writes} == {"kube-controller-manager"}


def test_terminating_pod_is_serving_and_terminating(esc_cluster):
    cluster, _ = esc_cluster
    admin = cluster.admin()
    admin.create(net.service("web", selector={"app": "web"},
                             ports=[{"name": "http", "port": 80, "targetPort": 8080}]))
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    admin.delete("pods", "web-0", "default")  # bound to a node: graceful, 30 s
    cluster.settle(1)
    [es] = slices(cluster, "web")
    assert es["endpoints"][0]["conditions"] == {"ready": False, "serving": True,
                                                "terminating": True}


def test_max_endpoints_per_slice():
    cluster = Cluster(1)
    endpointslice.start(cluster, max_endpoints_per_slice=2)
    cluster.settle(1)
    admin = cluster.admin()
    admin.create(net.service("web", selector={"app": "web"},
                             ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    for i in range(5):
        ready_pod(admin, f"web-{i}", f"10.244.0.{i + 2}", labels={"app": "web"})
    cluster.settle(1)
    assert sorted(len(s["endpoints"]) for s in slices(cluster, "web")) == [1, 2, 2]
    with pytest.raises(ValueError):
        endpointslice.start(Cluster(1), max_endpoints_per_slice=1001)


def test_default_max_endpoints_is_100():
    assert endpointslice.DEFAULT_MAX_ENDPOINTS_PER_SLICE == 100


def test_named_target_port_missing_excludes_the_endpoint_from_that_port(esc_cluster):
    cluster, _ = esc_cluster
    admin = cluster.admin()
    admin.create(net.service("web", selector={"app": "web"},
                             ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    ready_pod(admin, "good", "10.244.0.2", labels={"app": "web"})
    ready_pod(admin, "odd", "10.244.0.3", labels={"app": "web"}, port_name="web")
    cluster.settle(1)
    by_ports = {tuple(p["name"] for p in s["ports"]): [e["targetRef"]["name"]
                                                       for e in s["endpoints"]]
                for s in slices(cluster, "web")}
    assert by_ports == {("http",): ["good"], (): ["odd"]}
    ports, eps = kp.service_ports(admin.list("services", "default")["items"]), \
        kp.endpoints_by_port(admin.list("endpointslices", "default")["items"])
    assert [str(e) for e in eps[("default/web:http", "TCP")]] == ["10.244.0.2:8080"]
    assert "default/web:http" in [p.spn for p in ports]


def test_selector_matching_nothing_gets_a_placeholder(esc_cluster):
    cluster, _ = esc_cluster
    cluster.admin().create(net.service("ghost", selector={"app": "ghost"},
                                       ports=[{"name": "http", "port": 80}]))
    cluster.settle(1)
    [es] = slices(cluster, "ghost")
    assert es["endpoints"] == [] and es["ports"] == []


def test_service_without_selector_is_left_alone(esc_cluster):
    cluster, _ = esc_cluster
    cluster.admin().create(net.service("manual", selector=None,
                                       ports=[{"name": "http", "port": 80}]))
    cluster.settle(1)
    assert slices(cluster, "manual") == []


# -- kube-proxy rules ------------------------------------------------------------------------
UPSTREAM_PORTS = [kp.ServicePort("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80),
                  kp.ServicePort("ns4", "svc4", "p80", "TCP", "172.30.0.44", 80, 3004),
                  kp.ServicePort("ns6", "svc6", "p80", "TCP", "172.30.0.46", 80)]
UPSTREAM_EPS = {("ns1/svc1:p80", "TCP"): [kp.Endpoint("10.180.0.1", 80, True, True, False)],
                ("ns4/svc4:p80", "TCP"): [kp.Endpoint("10.180.0.4", 80, True, True, False),
                                          kp.Endpoint("10.180.0.5", 80, True, True, False)]}


def test_chain_names_match_upstream():
    # values from pkg/proxy/iptables/proxier_test.go and pkg/proxy/nftables/proxier_test.go
    assert kp.service_chain("ns1/svc1:p80", "tcp") == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert kp.endpoint_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80") == \
        "KUBE-SEP-SXIVWICOYRO3J4NJ"
    assert kp.external_chain("ns4/svc4:p80", "tcp") == "KUBE-EXT-4SW47YFZTEDKD3PK"
    assert kp.hash_and_truncate("ns1/svc1/tcp/p80") == "ULMVA6XW-ns1/svc1/tcp/p80"
    assert kp.hash_and_truncate("ns4/svc4/tcp/p80__10.180.0.4/80").startswith("UNZV3OEC-")


def test_iptables_rules_match_upstream_lines():
    text = kp.render_iptables(UPSTREAM_PORTS, UPSTREAM_EPS, cluster_cidr="10.0.0.0/8")
    for line in [
        ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp '
        '-d 172.30.0.41/32 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O'),
        ('-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp '
        '-p tcp -d 172.30.0.41/32 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ'),
        ('-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" '
        '-m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC'),
        ('-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" '
        '-j KUBE-SEP-C6EBXVWJJZMIWKLZ'),
        ("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp "
        "-j DNAT --to-destination 10.180.0.1:80"),
        ('-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp '
        '-d 172.30.0.46/32 --dport 80 -j REJECT'),
        ('-A KUBE-EXT-4SW47YFZTEDKD3PK -m comment --comment "masquerade traffic for '
        'ns4/svc4:p80 external destinations" -j KUBE-MARK-MASQ'),
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
    ]:
        assert line in text.splitlines(), line
    nft = kp.render_nftables(UPSTREAM_PORTS, UPSTREAM_EPS, cluster_cidr="10.0.0.0/8",
                             service_cidr="172.30.0.0/16", node_ips=["192.168.0.2"])
    for line in [
        ("add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap "
        "{ 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto "
        "endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }"),
        ("add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto "
        "service-ULMVA6XW-ns1/svc1/tcp/p80 }"),
        ('add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment '
        '"ns6/svc6:p80" : goto reject-chain }'),
    ]:
        assert line in nft.splitlines(), line


def test_probabilities_one_over_n():
    eps = [kp.Endpoint(f"10.0.0.{i}", 80, True, True, False) for i in range(1, 5)]
    text = kp.render_iptables(UPSTREAM_PORTS[:1], {("ns1/svc1:p80", "TCP"): eps},
                              cluster_cidr="10.0.0.0/8")
    probs = [line.split("--probability ")[1].split()[0] for line in text.splitlines()
             if "--probability" in line]
    assert probs == ["0.2500000000", "0.3333333333", "0.5000000000"]


def test_walk_is_deterministic_and_spreads():
    text = kp.render_iptables(UPSTREAM_PORTS, UPSTREAM_EPS, cluster_cidr="10.0.0.0/8")
    a = net.spread(text, src="10.0.0.2", dst="172.30.0.44", dport=80, n=400, seed=7,
                   local_ips=["192.168.0.2"])
    b = net.spread(text, src="10.0.0.2", dst="172.30.0.44", dport=80, n=400, seed=7,
                   local_ips=["192.168.0.2"])
    assert a == b and set(a) == {"10.180.0.4:80", "10.180.0.5:80"}
    assert all(150 < n < 250 for n in a.values())


def test_no_endpoints_is_rejected_and_nodeport_masquerades():
    text = kp.render_iptables(UPSTREAM_PORTS, UPSTREAM_EPS, cluster_cidr="10.0.0.0/8")
    w = kp.walk_iptables(text, src="10.0.0.2", dst="172.30.0.46", dport=80,
                         local_ips=["192.168.0.2"])
    assert w.refused and w.steps[-1].endswith("-j REJECT")
    w = kp.walk_iptables(text, src="203.0.113.9", dst="192.168.0.2", dport=3004,
                         local_ips=["192.168.0.2"])
    assert w.verdict.startswith("DNAT 10.180.0.") and w.packet.masquerade
    # a pod talking to a ClusterIP is not masqueraded; a wrong port goes nowhere
    w = kp.walk_iptables(text, src="10.0.0.2", dst="172.30.0.41", dport=80)
    assert w.verdict == "DNAT 10.180.0.1:80" and not w.packet.masquerade
    assert kp.walk_iptables(text, src="10.0.0.2", dst="172.30.0.41", dport=81).verdict == \
        "ACCEPT"


def test_terminating_endpoints_used_only_when_none_ready():
    t = kp.Endpoint("10.0.0.1", 80, False, True, True)
    r = kp.Endpoint("10.0.0.2", 80, True, True, False)
    assert kp.usable_endpoints([t, r]) == [r]
    assert kp.usable_endpoints([t]) == [t]
    assert kp.usable_endpoints([kp.Endpoint("10.0.0.3", 80, False, False, False)]) == []


def test_kube_proxy_identity_is_read_only():
    cluster = Cluster(0)
    proxy = kp.KubeProxy(cluster, "node-a", node_ip="192.168.0.10").start()
    cluster.settle(1)
    with pytest.raises(StatusError) as err:
        proxy.client.create(net.service("x", selector={"a": "b"},
                                        ports=[{"name": "http", "port": 80}]))
    assert err.value.code == 403
    assert {m.path for m in cluster.trace.filter(involving="kube-proxy")} == \
        {"kube-proxy->kube-apiserver"}


# -- the services scenario -------------------------------------------------------------------
@pytest.fixture(scope="module")
def services_run():
    return run("services")


def test_services_scenario(services_run):
    f = services_run.facts
    assert f["refused"] == "REJECT"
    assert set(f["spread_before"]) == {f"{f['pod_ips'][p]}:8080"
                                       for p in ("web-0", "web-1", "web-2")}
    assert set(f["spread_after"]) == {f"{f['pod_ips'][p]}:8080" for p in ("web-0", "web-1")}
    assert f["pod_ips"]["web-3"] not in f["iptables_before"]  # its port is named "web"
    assert f["nodeport_masquerade"] and f["nodeport_verdict"].startswith("DNAT")
    paths = services_run.paths()
    assert "pod->pod" in paths and "kube-proxy->kube-apiserver" in paths
    assert not any(p.startswith("kube-proxy->") and p != "kube-proxy->kube-apiserver"
                   for p in paths)
    refused = [m for m in services_run.messages if m.path == "pod->pod" and "refused" in
               m.result]
    assert len(refused) == 1


def test_services_scenario_is_deterministic(services_run):
    again = run("services")
    assert again.facts["spread_before"] == services_run.facts["spread_before"]
    assert again.to_dict()["messages"] == services_run.to_dict()["messages"]


# -- DNS: the kubelet's resolv.conf ----------------------------------------------------------
def _pod(ns="default", **spec):
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


HOST = kdns.DNSConfig(["192.168.0.1"], ["corp.example"], ["edns0"])


def test_resolv_conf_cluster_first():
    assert kdns.resolv_conf(_pod("shop"), "10.96.0.10") == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")
    cfg = kdns.dns_config(_pod(), ["10.96.0.10"], host=HOST)
    assert cfg.searches[-1] == "corp.example" and cfg.options == ["ndots:5"]


def test_resolv_conf_by_policy():
    host_net = _pod(hostNetwork=True, dnsPolicy="ClusterFirst")
    assert kdns.dns_config(host_net, ["10.96.0.10"], host=HOST) == HOST
    with_net = _pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert kdns.dns_config(with_net, ["10.96.0.10"], host=HOST).servers == ["10.96.0.10"]
    assert kdns.dns_config(_pod(dnsPolicy="Default"), ["10.96.0.10"], host=HOST) == HOST
    none = _pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.1.1.1"],
                                             "searches": ["a.example"],
                                             "options": [{"name": "ndots", "value": "2"}]})
    assert kdns.resolv_conf(none, "10.96.0.10") == (
        "search a.example\nnameserver 1.1.1.1\noptions ndots:2\n")
    # no clusterDNS configured: the kubelet falls back to Default
    assert kdns.dns_config(_pod(), [], host=HOST) == HOST


def test_kubeadm_dns_ip_and_search_order():
    assert kdns.kubeadm_cluster_dns() == "10.96.0.10"
    cfg = kdns.parse_resolv_conf(kdns.resolv_conf(_pod(), "10.96.0.10"))
    assert kdns.candidates("web", cfg) == ["web.default.svc.cluster.local.",
                                           "web.svc.cluster.local.", "web.cluster.local.",
                                           "web."]
    assert kdns.candidates("web.", cfg) == ["web."]
    assert kdns.candidates("a.b.c.d.e.f", cfg)[0] == "a.b.c.d.e.f."


# -- DNS: CoreDNS ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def coredns():
    cluster = Cluster(5)
    ctrl = endpointslice.start(cluster)
    admin = cluster.admin()
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "data"}})
    admin.create(net.service("web", selector={"app": "web"},
                             ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    admin.create(net.service("db", namespace="data", selector={"app": "db"}, cluster_ip="None",
                             ports=[{"name": "pg", "port": 5432, "targetPort": "pg"}]))
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    for i in range(3):
        ready_pod(admin, f"db-{i}", f"10.244.1.{i + 2}", labels={"app": "db"}, port_name="pg",
                  namespace="data", hostname=f"db-{i}", subdomain="db")
    server = kdns.CoreDNS(cluster, "coredns-test", "10.244.9.9").start()
    cluster.settle(2)
    assert ctrl.queue.errors == []
    return cluster, server


def ask(server, name, qtype="A"):
    q = dns.message.make_query(name, qtype)
    return dns.message.from_wire(server.handle(q.to_wire()))


def test_coredns_a_records(coredns):
    cluster, server = coredns
    web_ip = cluster.admin().get("services", "web", "default")["spec"]["clusterIP"]
    r = ask(server, "web.default.svc.cluster.local.")
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA
    assert [(rr.ttl, [i.address for i in rr]) for rr in r.answer] == [(5, [web_ip])]
    r = ask(server, "db.data.svc.cluster.local.")
    assert sorted(i.address for i in r.answer[0]) == ["10.244.1.2", "10.244.1.3",
                                                      "10.244.1.4"]
    r = ask(server, "db-1.db.data.svc.cluster.local.")
    assert [i.address for i in r.answer[0]] == ["10.244.1.3"]


def test_coredns_srv_ptr_aaaa(coredns):
    cluster, server = coredns
    web_ip = cluster.admin().get("services", "web", "default")["spec"]["clusterIP"]
    r = ask(server, "_http._tcp.web.default.svc.cluster.local.", "SRV")
    assert [str(i) for i in r.answer[0]] == ["0 100 80 web.default.svc.cluster.local."]
    r = ask(server, "_pg._tcp.db.data.svc.cluster.local.", "SRV")
    assert sorted(str(i) for i in r.answer[0]) == [
        f"0 33 8080 db-{i}.db.data.svc.cluster.local." for i in range(3)]
    r = ask(server, dns.reversename.from_address(web_ip).to_text(), "PTR")
    assert [str(i) for i in r.answer[0]] == ["web.default.svc.cluster.local."]
    r = ask(server, dns.reversename.from_address("10.244.1.2").to_text(), "PTR")
    assert [str(i) for i in r.answer[0]] == ["db-0.db.data.svc.cluster.local."]
    r = ask(server, "web.default.svc.cluster.local.", "AAAA")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == [] and r.authority


def test_coredns_nxdomain_has_soa(coredns):
    _, server = coredns
    r = ask(server, "nosuch.default.svc.cluster.local.")
    assert r.rcode() == dns.rcode.NXDOMAIN
    soa = r.authority[0]
    assert soa.name.to_text() == "cluster.local." and \
        str(soa[0]).startswith("ns.dns.cluster.local. hostmaster.cluster.local. ")
    assert ask(server, "data.svc.cluster.local.").rcode() == dns.rcode.NOERROR  # namespace
    assert ask(server, "nope.svc.cluster.local.").rcode() == dns.rcode.NXDOMAIN


def test_coredns_malformed_queries(coredns):
    _, server = coredns
    good = dns.message.make_query("web.default.svc.cluster.local.", "A")
    good.id = 777
    wire = bytearray(good.to_wire())
    wire[4:6] = (2).to_bytes(2, "big")  # two questions announced
    r = dns.message.from_wire(server.handle(bytes(wire)))
    assert r.id == 777 and r.rcode() == dns.rcode.FORMERR and r.flags & dns.flags.QR
    truncated = good.to_wire()[:-3]  # the question is cut short
    r = dns.message.from_wire(server.handle(truncated))
    assert r.rcode() == dns.rcode.FORMERR
    assert server.handle(b"\x01\x02\x03") is None  # shorter than a header: dropped
    response = dns.message.make_response(good)
    assert server.handle(response.to_wire()) is None  # a response is ignored
    update = bytearray(good.to_wire())
    update[2] = (update[2] & 0x87) | (5 << 3)  # opcode UPDATE
    assert dns.message.from_wire(server.handle(bytes(update))).rcode() == dns.rcode.NOTIMP


def test_coredns_identity_and_watches(coredns):
    cluster, server = coredns
    msgs = cluster.trace.filter(src="coredns")
    assert {m.path for m in msgs} == {"coredns->kube-apiserver"}
    assert {m.resource for m in msgs if m.verb in ("LIST", "WATCH")} == {
        "services", "endpointslices", "namespaces"}
    with pytest.raises(StatusError) as err:
        server.client.list("secrets", "default")
    assert err.value.code == 403


def test_cluster_dns_scenario():
    r = run("cluster-dns")
    f = r.facts
    assert f["lookups"]["web"][0][:2] == ("web.default.svc.cluster.local.", "NOERROR")
    assert [a[1] for a in f["lookups"]["db.data"]] == ["NXDOMAIN", "NOERROR"]
    assert [a[1] for a in f["lookups"]["nosuch"]] == ["NXDOMAIN"] * 4
    assert f["malformed"]["rcode"] == "FORMERR"
    assert {"pod->coredns", "coredns->kube-apiserver"} <= set(r.paths())


# -- Ingress ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rule,host,ok", [
    ("foo.bar.com", "foo.bar.com", True), ("foo.bar.com", "bar.foo.com", False),
    ("*.foo.com", "bar.foo.com", True), ("*.foo.com", "baz.bar.foo.com", False),
    ("*.foo.com", "foo.com", False), ("", "anything.example", True),
    ("foo.bar.com", "foo.bar.com:8080", True)])
def test_host_matching(rule, host, ok):
    assert king.host_matches(rule, host) is ok


# the examples table of https://kubernetes.io/docs/concepts/services-networking/ingress/
@pytest.mark.parametrize("ptype,path,request_path,ok", [
    ("Prefix", "/", "/anything", True), ("Exact", "/foo", "/foo", True),
    ("Exact", "/foo", "/bar", False), ("Exact", "/foo", "/foo/", False),
    ("Exact", "/foo/", "/foo", False), ("Prefix", "/foo", "/foo", True),
    ("Prefix", "/foo", "/foo/", True), ("Prefix", "/foo/", "/foo", True),
    ("Prefix", "/aaa/bb", "/aaa/bbb", False), ("Prefix", "/aaa/bbb", "/aaa/bbb", True),
    ("Prefix", "/aaa/bbb/", "/aaa/bbb", True), ("Prefix", "/aaa/bbb", "/aaa/bbb/", True),
    ("Prefix", "/aaa/bbb", "/aaa/bbb/ccc", True), ("Prefix", "/aaa/bbb", "/aaa/bbbxyz", False),
])
def test_path_matching(ptype, path, request_path, ok):
    assert king.path_matches(ptype, path, request_path) is ok


def test_longest_match_then_exact_wins():
    ing = {"metadata": {"name": "i", "namespace": "default"}, "spec": {"rules": [{"http": {
        "paths": [{"path": "/", "pathType": "Prefix", "backend": net.backend("a", 80)},
                  {"path": "/aaa", "pathType": "Prefix", "backend": net.backend("b", 80)},
                  {"path": "/aaa/bbb", "pathType": "Prefix", "backend": net.backend("c", 80)},
                  {"path": "/aaa/bbb", "pathType": "Exact", "backend": net.backend("d", 80)},
                  ]}}]}}
    pick = lambda p: king.match([ing], "x", p).backend["service"]["name"]
    assert [pick("/"), pick("/aaa/ccc"), pick("/aaa/bbb/ccc"), pick("/aaa/bbb")] == \
        ["a", "b", "c", "d"]


def test_invalid_path_type_is_422_and_store_unchanged():
    cluster = Cluster(2)
    admin = cluster.admin()
    before = admin.list("ingresses", "default")
    with pytest.raises(StatusError) as err:
        admin.create(net.bad_ingress())
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert err.value.status["details"]["causes"] == [{
        "reason": "FieldValueNotSupported",
        "message": 'Unsupported value: "Regex": supported values: "Exact", '
                   '"ImplementationSpecific", "Prefix"',
        "field": "spec.rules[0].http.paths[0].pathType"}]
    missing = net.shop_ingress()
    del missing["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    with pytest.raises(StatusError) as err:
        admin.create(missing)
    assert err.value.status["details"]["causes"][0]["message"] == \
        "Required value: pathType must be specified"
    after = admin.list("ingresses", "default")
    assert after["items"] == before["items"] == []
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_ingress_scenario():
    r = run("ingress")
    f = r.facts
    by_req = {x["request"]: x for x in f["results"]}
    assert by_req["http://shop.example.com/api/orders"]["service"] == "default/api:http"
    assert by_req["http://shop.example.com/apiary"]["service"] == "default/web:http"
    assert by_req["http://shop.example.com/api/health"]["rule"].endswith("Exact /api/health")
    assert by_req["http://shop.example.com/api/health/"]["rule"].endswith("Prefix /api")
    assert by_req["https://shop.example.com/api"]["certificate"] == "secret default/shop-tls"
    assert by_req["http://docs.example.com/guide"]["status"] == 503  # docs has no pods
    assert by_req["http://a.b.example.com/guide"]["rule"] == "(default backend)"
    assert by_req["http://example.com/"]["status"] == 200  # fallback's defaultBackend
    assert f["rejected"]["code"] == 422 and f["stored_ingresses"] == ["fallback", "shop"]
    assert f["etcd_revision_after_bad"] == f["etcd_revision_before_bad"]
    assert f["shop_status"] == {"loadBalancer": {"ingress": [{"ip": "192.168.0.10"}]}}
    assert f["controller_resources"] == ["endpointslices", "ingressclasses", "ingresses",
                                         "secrets", "services"]
    pod_ips = {m.dst for m in r.messages if m.path == "ingress-controller->pod"}
    assert pod_ips and all(d.startswith("pod/") for d in pod_ips)
    assert "kube-proxy" not in {m.src for m in r.messages if m.path.endswith("->pod")}


def test_ingress_class_filtering():
    cluster = Cluster(4)
    king.install(cluster)
    ctrl = king.IngressController(cluster, address="192.168.0.10").start()
    cluster.settle(1)
    other = net.fallback_ingress()
    other["spec"]["ingressClassName"] = "other"
    unset = net.fallback_ingress()
    unset["metadata"]["name"] = "unset"
    del unset["spec"]["ingressClassName"]
    cluster.admin().create(other)
    cluster.admin().create(unset)
    cluster.settle(1)
    assert ctrl.mine() == []  # not our class; no class and ours is not the default


@pytest.mark.parametrize("path,message", [
    ("/a//b", "must not contain '//'"), ("/a/../b", "must not contain '/../'"),
    ("/a%2Fb", "must not contain '%2F'"), ("/a/.", "cannot end with '/.'"),
    ("relative", "must be an absolute path")])
def test_ingress_path_validation(path, message):
    ing = net.fallback_ingress()
    ing["spec"]["rules"] = [{"http": {"paths": [
        {"path": path, "pathType": "Prefix", "backend": net.backend("web", 80)}]}}]
    with pytest.raises(StatusError) as err:
        Cluster(0).admin().create(ing)
    causes = err.value.status["details"]["causes"]
    assert any(c["field"] == "spec.rules[0].http.paths[0].path" and
               c["message"] == f'Invalid value: "{path}": {message}' for c in causes)


def test_nftables_walk():
    nft = kp.render_nftables(UPSTREAM_PORTS, UPSTREAM_EPS, cluster_cidr="10.0.0.0/8",
                             service_cidr="172.30.0.0/16", node_ips=["192.168.0.2"])
    walk = lambda dst, port, src="10.0.0.2", seed=0: kp.walk_nftables(
        nft, src=src, dst=dst, dport=port, local_ips=["192.168.0.2"], seed=seed)
    assert walk("172.30.0.41", 80).verdict == "DNAT 10.180.0.1:80"
    assert {walk("172.30.0.44", 80, seed=s).verdict for s in range(20)} == {
        "DNAT 10.180.0.4:80", "DNAT 10.180.0.5:80"}
    assert walk("172.30.0.46", 80).verdict == "REJECT"  # no endpoints
    assert walk("172.30.0.41", 81).verdict == "REJECT"  # a ClusterIP's unused port
    assert walk("172.30.0.99", 80).verdict == "DROP"  # an unallocated ClusterIP
    np = walk("192.168.0.2", 3004, src="203.0.113.9")
    assert np.verdict.startswith("DNAT 10.180.0.") and np.packet.masquerade


def test_kube_proxy_nftables_mode_connects_through_nft_rules():
    cluster = Cluster(0)
    esc = endpointslice.start(cluster)
    proxy = kp.KubeProxy(cluster, "node-a", node_ip="192.168.0.10", mode="nftables").start()
    admin = cluster.admin()
    svc = admin.create(net.service("web", selector={"app": "web"},
                                   ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    client = ready_pod(admin, "client", "10.244.0.9", labels={"app": "client"})
    cluster.settle(3)
    assert esc.queue.errors == []
    walk = proxy.connect(client, svc["spec"]["clusterIP"], 80)
    assert walk.verdict == "DNAT 10.244.0.2:8080"
    assert any("numgen random mod 1" in step for step in walk.steps)
    with pytest.raises(ValueError):
        kp.KubeProxy(cluster, "node-b", node_ip="192.168.0.11", mode="ipvs")


def test_coredns_notimp_keeps_opcode(coredns):
    _, server = coredns
    q = dns.message.make_query("web.default.svc.cluster.local.", "A")
    wire = bytearray(q.to_wire())
    wire[2] = (wire[2] & 0x87) | (5 << 3)  # opcode UPDATE
    r = dns.message.from_wire(server.handle(bytes(wire)))
    assert r.rcode() == dns.rcode.NOTIMP and r.opcode() == 5
