"""SyncPod: the kubelet's DNS config reaches the container's /etc/resolv.conf."""

from k8sbook.node.dns import DNSConfig, format_resolv_conf
from k8sbook.node.kubelet import CLUSTER_DNS
from tests.node.conftest import exec_in, run_pod


def test_resolv_conf_is_what_the_kubelet_built(node_a):
    c, k = node_a
    pod = run_pod(c)
    text = exec_in(c, "web", ["cat", "/etc/resolv.conf"])["text"]
    assert CLUSTER_DNS == "10.96.0.10" and k.cluster_domain == "cluster.local"
    assert text == format_resolv_conf(k.pod_dns_config(pod)) == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")
    sandbox = [m for m in c.trace.filter(verb="RunPodSandbox")]
    assert len(sandbox) == 1


def test_a_different_builder_changes_the_container_file(node_a, monkeypatch):
    c, k = node_a
    monkeypatch.setattr(k, "pod_dns_config",
                        lambda pod: DNSConfig(["1.2.3.4"], ["example.test"], []))
    run_pod(c)
    assert exec_in(c, "web", ["cat", "/etc/resolv.conf"])["text"] == \
        "search example.test\nnameserver 1.2.3.4\n"


def test_dns_policy_default_uses_the_nodes_resolver(node_a):
    c, k = node_a
    run_pod(c, dnsPolicy="Default")
    assert exec_in(c, "web", ["cat", "/etc/resolv.conf"])["text"] == \
        k.filesystem["/etc/resolv.conf"]
