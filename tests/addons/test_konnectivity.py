"""Konnectivity: the agent dials out, so the apiserver reaches a node it cannot dial."""

import pytest

from k8sbook.addons.konnectivity import AGENT_PORT, AUDIENCE, KonnectivityAgent
from k8sbook.api import objects
from k8sbook.apiserver.kubelet_client import pod_exec, pod_logs
from k8sbook.client.network import Address
from k8sbook.cluster import Cluster
from tests.helpers import status_error


@pytest.fixture()
def c() -> Cluster:
    cluster = Cluster(0)
    cluster.add_kubelet("node-a").start()
    cluster.run_for(2)
    cluster.admin().create(objects.pod("web", node_name="node-a"))
    cluster.run_for(5)
    return cluster


def logs(c: Cluster):
    return status_error(lambda: pod_logs(c.admin(), "default", "web"))


def test_firewalled_node_is_unreachable_without_the_tunnel(c: Cluster):
    c.network.firewall("kube-apiserver", "kubelet")
    code, message = logs(c)
    assert code == 500 and message.endswith("dial tcp 192.168.0.10:10250: i/o timeout")
    c.run_for(30)  # the node's own connections to the apiserver are not affected
    lease = c.admin().get("leases", "node-a", "kube-node-lease")
    assert lease["spec"]["renewTime"].startswith("2026-01-01T00:00:3")


def test_logs_and_exec_travel_through_the_agents_tunnel(c: Cluster):
    mark = c.trace.mark()
    server = c.add_konnectivity()
    c.run_for(1)
    assert sorted(server.backends) == ["konnectivity-agent/node-a"]
    setup = {(m.path, m.verb, m.resource) for m in c.trace.since(mark)}
    assert ("konnectivity-agent->konnectivity-server", "CONNECT", "agent tunnel") in setup
    assert ("konnectivity-server->kube-apiserver", "CREATE", "tokenreviews") in setup
    c.network.firewall("kube-apiserver", "kubelet")
    mark = c.trace.mark()
    assert pod_logs(c.admin(), "default", "web") == "app: started (attempt 0)\n"
    assert pod_exec(c.admin(), "default", "web", ["echo", "hi"]) == "hi\n"
    paths = [m.path for m in c.trace.since(mark) if m.dst != "etcd"]
    assert "kube-apiserver->konnectivity-server" in paths
    assert "konnectivity-agent->kubelet" in paths
    assert "kube-apiserver->kubelet" not in paths
    tunnel = [m.verb for m in c.trace.since(mark)
              if m.path == "konnectivity-agent->konnectivity-server"]
    assert tunnel == ["DIAL_REQ", "DIAL_RSP", "DIAL_REQ", "DIAL_RSP"]


def test_agent_with_a_token_for_another_audience_is_refused(c: Cluster):
    server = c.add_konnectivity(nodes=[])
    sa = c.admin().get("serviceaccounts", "konnectivity-agent", "kube-system")
    wrong = c.apiserver.tokens.issue(sa, expiration_seconds=3600)  # the apiserver's audience
    agent = KonnectivityAgent("konnectivity-agent/node-a", c.network, c.clock, node="node-a",
                              node_ip="192.168.0.10", token=wrong,
                              server=Address.tcp("192.168.0.2", AGENT_PORT)).start()
    assert server.backends == {}
    assert server.log == [
        ('agent konnectivity-agent/node-a: lookup failed: token audiences '
        '["https://kubernetes.default.svc.cluster.local"] is invalid for the target '
        f'audiences ["{AUDIENCE}"]')]
    agent.stop()
    code, message = logs(c)
    assert code == 500 and message.endswith(": No agent available")


def test_agent_reconnects_after_its_connection_breaks(c: Cluster):
    server = c.add_konnectivity()
    c.run_for(1)
    c.network.partition("konnectivity-agent/node-a", "konnectivity-server")
    assert server.backends == {}
    c.network.firewall("kube-apiserver", "kubelet")
    assert logs(c)[1].endswith("No agent available")
    c.network.heal("konnectivity-agent/node-a", "konnectivity-server")
    c.run_for(6)  # --sync-interval: the agent dials again
    assert sorted(server.backends) == ["konnectivity-agent/node-a"]
    assert pod_logs(c.admin(), "default", "web") == "app: started (attempt 0)\n"



def test_pods_proxy_goes_through_the_tunnel_too():
    from k8sbook.apiserver.pod_proxy import pod_proxy_get
    from k8sbook.client.http import HTTPResponse
    from tests.helpers import node_with_pod
    cluster, _, adm = node_with_pod(8080)
    cluster.add_konnectivity()
    cluster.run_for(1)
    mark = cluster.trace.mark()
    assert pod_proxy_get(adm, "default", "web", "/") == HTTPResponse(200, "web")
    paths = {m.path for m in cluster.trace.since(mark)}
    assert "kube-apiserver->konnectivity-server" in paths and "konnectivity-agent->pod" in paths
    assert "kube-apiserver->pod" not in paths
