"""kube-proxy: the rules it writes, the packet walk, and the node translator in the fabric."""

from __future__ import annotations

import pytest

from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError, Translation
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.node import kube_proxy as kp
from k8sbook.textbook.scenarios import networking as net
from k8sbook.textbook.scenarios import run
from tests.helpers import ready_pod

kubernetes_validate = pytest.importorskip("kubernetes_validate")


# -- helpers ---------------------------------------------------------------------------------


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
    proxy = cluster.add_kube_proxy("node-a", node_ip="192.168.0.10")
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
    refused = [m for m in services_run.messages if m.src == "pod/client" and "refused" in
               m.result]
    assert len(refused) == 1 and refused[0].dst == f"{f['ghost_ip']}:80"
    assert f["refused_error"] == f"dial tcp {f['ghost_ip']}:80: connect: connection refused"
    # each reply is the hostname of the pod the rules DNATed the connection to
    assert f["first_replies"] == [f"200 {p}" for p in f["first_backends"]]
    assert {r.split()[1] for r in f["after_replies"]} <= {"web-0", "web-1"}
    hops = [m for m in services_run.messages if m.src == "pod/client" and m.path == "pod->pod"]
    assert [m.dst for m in hops[:3]] == [f"pod/{p}" for p in f["first_backends"]]
    assert all(m.result.startswith("DNAT to ") for m in hops)


# the services run's determinism (its messages included): tests/textbook/test_scenarios_schema.py



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
    esc = net.start_endpointslices(cluster)
    proxy = cluster.add_kube_proxy("node-a", node_ip="192.168.0.10", mode="nftables")
    admin = cluster.admin()
    svc = admin.create(net.service("web", selector={"app": "web"},
                                   ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    client = ready_pod(admin, "client", "10.244.0.9", labels={"app": "client"})
    cluster.settle(3)
    assert esc.queue.errors == []
    out = proxy.translate(client["status"]["podIP"], Address.tcp(svc["spec"]["clusterIP"], 80))
    assert out == Translation(Address.tcp("10.244.0.2", 8080), "DNAT to 10.244.0.2:8080")
    walk = proxy.walks[-1]
    assert walk.verdict == "DNAT 10.244.0.2:8080"
    assert any("numgen random mod 1" in step for step in walk.steps)
    with pytest.raises(ValueError):
        cluster.add_kube_proxy("node-b", node_ip="192.168.0.11", mode="ipvs")


# -- the node's rules in the fabric ------------------------------------------------------------
class _Backend:
    """A pod's application on the fabric: answers with its name."""

    def __init__(self, network, ip, port, name):
        network.listen(Address.tcp(ip, port), f"pod/{name}",
                       lambda req: HTTPResponse(200, name), protocol="HTTP")


@pytest.fixture
def fabric():
    cluster = Cluster(6)
    net.kubernetes_endpointslice(cluster)
    esc = net.start_endpointslices(cluster)
    proxy = cluster.add_kube_proxy("node-a", node_ip="192.168.0.10")
    admin = cluster.admin()
    svc = admin.create(net.service("web", selector={"app": "web"},
                                   ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    ghost = admin.create(net.service("ghost", selector={"app": "ghost"},
                                     ports=[{"name": "http", "port": 80, "targetPort": 8080}]))
    for i in range(2):
        ready_pod(admin, f"web-{i}", f"10.244.0.{i + 2}", labels={"app": "web"})
        _Backend(cluster.network, f"10.244.0.{i + 2}", 8080, f"web-{i}")
    cluster.settle(3)
    assert esc.queue.errors == []
    return cluster, proxy, svc["spec"]["clusterIP"], ghost["spec"]["clusterIP"]


def _dial(cluster, ip, port, via="node-a"):
    return cluster.network.dial("pod/client", Address.tcp(ip, port), HTTPRequest("GET", "/"),
                                protocol="HTTP", verb="GET", resource=f"{ip}:{port}",
                                result=lambda r: r.result(), via=via, source_ip="10.244.0.9")


def test_service_vip_is_dnated_by_the_node_rules_and_the_backend_answers(fabric):
    cluster, proxy, vip, _ = fabric
    mark = cluster.trace.mark()
    answers = {_dial(cluster, vip, 80).body for _ in range(20)}
    assert answers == {"web-0", "web-1"}  # the statistic rules spread them
    msgs = cluster.trace.since(mark)
    assert {m.path for m in msgs} == {"pod->pod"}  # recorded by the fabric, not kube-proxy
    assert all(m.result.startswith("DNAT to 10.244.0.") and m.result.endswith(", 200")
               for m in msgs)
    assert len(proxy.walks) == 20


def test_without_the_translator_the_vip_is_refused(fabric):
    cluster, proxy, vip, _ = fabric
    proxy.uninstall()
    with pytest.raises(DialError) as err:
        _dial(cluster, vip, 80)
    assert err.value.kind == "refused"  # nothing listens on a ClusterIP
    proxy.install()
    assert _dial(cluster, vip, 80).status == 200
    # a dial that does not leave through node-a does not see its rules
    with pytest.raises(DialError):
        _dial(cluster, vip, 80, via="node-b")


def test_service_without_endpoints_is_rejected_by_the_rules(fabric):
    cluster, proxy, _, ghost = fabric
    mark = cluster.trace.mark()
    with pytest.raises(DialError) as err:
        _dial(cluster, ghost, 80)
    assert err.value.kind == "rejected"
    assert str(err.value) == f"dial tcp {ghost}:80: connect: connection refused"
    assert proxy.walks[-1].verdict == "REJECT"
    [msg] = cluster.trace.since(mark)
    assert msg.result == "connection refused (REJECT)"


def test_kubernetes_service_is_dnated_to_the_apiserver(fabric):
    cluster, proxy, _, _ = fabric
    out = proxy.translate("10.244.0.9", Address.tcp("10.96.0.1", 443))
    assert out.address == Address.tcp("192.168.0.2", 6443)
    assert out.address == cluster.apiserver.address
    assert out.note == "DNAT to 192.168.0.2:6443"
    # from outside the cluster CIDR (the node itself) the connection is masqueraded
    assert proxy.translate("192.168.0.10", Address.tcp("10.96.0.1", 443)).note == \
        "DNAT to 192.168.0.2:6443, masqueraded"
