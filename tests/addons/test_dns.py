"""Cluster DNS: the kubelet's resolv.conf, CoreDNS over real DNS messages, the pod's resolver."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.reversename
import pytest

from k8sbook.addons import dns as kdns
from k8sbook.client.network import Address
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.node.dns import resolv_conf
from k8sbook.textbook.scenarios import networking as net
from k8sbook.textbook.scenarios import run
from tests.helpers import ready_pod

kubernetes_validate = pytest.importorskip("kubernetes_validate")


# -- helpers ---------------------------------------------------------------------------------


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
    ctrl = net.start_endpointslices(cluster)
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
    server = cluster.add_coredns("coredns-test", "10.244.9.9")
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


@pytest.fixture(scope="module")
def dns_run():
    return run("cluster-dns")


def test_cluster_dns_scenario(dns_run):
    r = dns_run
    f = r.facts
    assert f["lookups"]["web"][0][:2] == ("web.default.svc.cluster.local.", "NOERROR")
    assert [a[1] for a in f["lookups"]["db.data"]] == ["NXDOMAIN", "NOERROR"]
    assert [a[1] for a in f["lookups"]["nosuch"]] == ["NXDOMAIN"] * 4
    assert f["malformed"]["rcode"] == "FORMERR"
    assert {"pod->coredns", "coredns->kube-apiserver"} <= set(r.paths())
    queries = [m for m in r.messages if m.path == "pod->coredns"]
    # every datagram went to the kube-dns VIP and the node's rules picked a CoreDNS pod
    assert {m.dst for m in queries} == {f"coredns/{p}" for p in f["coredns_pods"]}
    assert all(m.src == "pod/client" and m.result.startswith("DNAT to ") for m in queries)


def test_cluster_dns_retry_goes_to_the_other_coredns(dns_run):
    f = dns_run.facts
    retry = f["retry"]
    isolated = retry["isolated"]
    assert retry["sends"] == [("no answer", float(f["resolver_options"]["timeout"])),
                              ("answer", 0.0)]
    assert retry["datagrams"][0][0] == isolated and "i/o timeout" in retry["datagrams"][0][1]
    assert retry["datagrams"][1][0] != isolated and retry["rcode"] == "NOERROR"
    assert retry["answer"] == [f"web.default.svc.cluster.local. 5 IN A {f['web_ip']}"]


def test_cluster_dns_resolv_conf_is_the_containers(dns_run):
    """The text exec reads from the container is what the kubelet's DNS policy gives."""
    f = dns_run.facts
    client = {"metadata": {"name": "client", "namespace": "default"}, "spec": {}}
    assert f["resolv_conf"] == resolv_conf(client, kdns.kubeadm_cluster_dns())


# -- the pod's resolver ----------------------------------------------------------------------
def _resolver(cluster, conf):
    return kdns.StubResolver(cluster.network, "client", "10.244.0.9", "node-a", conf,
                             id_source=cluster.ids.random)


def test_coredns_listens_on_udp_53(coredns):
    cluster, server = coredns
    assert cluster.network.listener(Address.udp("10.244.9.9", 53)).owner == server.instance
    res = _resolver(cluster, "nameserver 10.244.9.9\n")
    got = res.lookup("web.default.svc.cluster.local.")
    assert got.found and got.attempts[0].sends == [kdns.Send("10.244.9.9", "answer")]


def test_resolver_timeout_and_attempts(coredns):
    cluster, _ = coredns
    address = Address.udp("10.244.9.9", 53)
    cluster.network.drop(address)
    try:
        default = _resolver(cluster, "nameserver 10.244.9.9\n").query("web.default.svc.cluster.local.")
        assert default.rcode == "TIMEOUT" and default.waited == 10.0  # 2 attempts x 5 s
        tuned = _resolver(cluster, "nameserver 10.244.9.9\noptions timeout:1 attempts:3\n")
        got = tuned.lookup("web")
        assert len(got.attempts) == 1  # a query nobody answered ends the search
        assert [s.outcome for s in got.attempts[0].sends] == ["no answer"] * 3
        assert got.waited == 3.0
        # two nameservers: the second answers (send_dg waits timeout << 1 / 2 for it)
        cluster.network.drop(address, False)
        cluster.network.drop(Address.udp("10.244.9.8", 53))
        two = _resolver(cluster, "nameserver 10.244.9.8\nnameserver 10.244.9.9\n")
        got = two.query("web.default.svc.cluster.local.")
        assert [(s.server, s.outcome) for s in got.sends] == [("10.244.9.8", "no answer"),
                                                            ("10.244.9.9", "answer")]
        assert got.rcode == "NOERROR"
    finally:
        cluster.network.drop(address, False)
        cluster.network.drop(Address.udp("10.244.9.8", 53), False)


def test_resolver_refused_goes_on_at_once(coredns):
    cluster, _ = coredns
    server_address = Address.udp("10.244.9.7", 53)  # nothing listens there
    res = _resolver(cluster, "nameserver 10.244.9.7\nnameserver 10.244.9.9\n")
    got = res.query("web.default.svc.cluster.local.")
    assert [s.outcome for s in got.sends] == ["refused", "answer"] and got.waited == 0
    assert cluster.network.listener(server_address) is None



def test_coredns_notimp_keeps_opcode(coredns):
    _, server = coredns
    q = dns.message.make_query("web.default.svc.cluster.local.", "A")
    wire = bytearray(q.to_wire())
    wire[2] = (wire[2] & 0x87) | (5 << 3)  # opcode UPDATE
    r = dns.message.from_wire(server.handle(bytes(wire)))
    assert r.rcode() == dns.rcode.NOTIMP and r.opcode() == 5
