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
    assert ("konnectivity-agent->konnectivity-server", "POST", "/AgentService/Connect") in setup
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
    assert tunnel == ["DIAL_REQ", "DIAL_RSP", "DATA", "DATA", "CLOSE_REQ", "CLOSE_RSP"] * 2


def test_one_request_is_dial_data_close_on_both_streams(c: Cluster):
    """The packets of one ``kubectl logs``, in order, on the stream each travels."""
    c.add_konnectivity()
    c.run_for(1)
    c.network.firewall("kube-apiserver", "kubelet")
    mark = c.trace.mark()
    pod_logs(c.admin(), "default", "web")
    got = [(m.src, m.dst, m.verb, m.resource, m.name, m.result) for m in c.trace.since(mark)
           if "konnectivity" in m.path]
    apiserver, server, agent = "kube-apiserver", "konnectivity-server", \
        "konnectivity-agent/node-a"
    (dial_id,) = {m[4] for m in got if m[2] == "DIAL_REQ"}
    assert dial_id.startswith("random=")
    assert [(a, b, v) for a, b, v, *_ in got] == [
        (apiserver, server, "POST"),  # the single-use Proxy stream
        (apiserver, server, "DIAL_REQ"), (server, agent, "DIAL_REQ"),
        (agent, server, "DIAL_RSP"), (server, apiserver, "DIAL_RSP"),
        (apiserver, server, "DATA"), (server, agent, "DATA"),
        (agent, "kubelet/node-a", "GET"),  # the agent's own connection on the node
        (agent, server, "DATA"), (server, apiserver, "DATA"),
        (apiserver, server, "CLOSE_REQ"), (server, agent, "CLOSE_REQ"),
        (agent, server, "CLOSE_RSP"), (server, apiserver, "CLOSE_RSP")]
    assert got[1][3] == "node-a:10250"  # the Hostname address; the agent resolves it
    assert got[3][5] == got[4][5] == "connectID=1"
    assert got[5][3] == "GET /containerLogs/default/web/app HTTP/1.1"
    assert got[8][3] == "HTTP/1.1 200"


def test_packets_are_the_upstream_protobuf_messages():
    from k8sbook.apiserver.konnectivity_client import decode, encode, packet

    p = packet("DIAL_REQ", protocol="tcp", address="192.168.0.10:10250", random=7)
    wire = encode(p)
    # field 1 (type) is DIAL_REQ = 0, the proto3 default, so it is not written; field 2
    # (dialRequest) is length-delimited: tag 0x12
    assert wire[0] == 0x12
    back = decode(wire)
    assert back.dialRequest.address == "192.168.0.10:10250" and back.dialRequest.random == 7
    data = encode(packet("DATA", connectID=3, data=b"x"))
    assert data[:2] == bytes([0x08, 0x04])  # type = DATA (4)
    assert decode(data).data.connectID == 3


def test_a_refused_kubelet_is_the_agents_dial_error(c: Cluster):
    c.add_konnectivity()
    c.run_for(1)
    c.network.firewall("kube-apiserver", "kubelet")
    c.components["kubelet/node-a"].stop()
    mark = c.trace.mark()
    code, message = logs(c)
    assert code == 500 and message.endswith(
        ": dial tcp 192.168.0.10:10250: connect: connection refused")
    rsp = [m for m in c.trace.since(mark) if m.verb == "DIAL_RSP"]
    assert [m.result for m in rsp] == [("dial tcp 192.168.0.10:10250: connect: connection "
                                       "refused")] * 2
    assert not [m for m in c.trace.since(mark) if m.verb == "DATA"]


def test_agent_gone_mid_stream_ends_the_request_with_eof(c: Cluster):
    server = c.add_konnectivity()
    c.run_for(1)
    c.network.firewall("kube-apiserver", "kubelet")
    # the agent's stream breaks right after the server relays the request's first DATA
    c.network.cut_after("konnectivity-agent->konnectivity-server", "DATA")
    mark = c.trace.mark()
    code, message = logs(c)
    assert code == 500 and message == (
        'Get "https://node-a:10250/containerLogs/default/web/app": EOF')
    verbs = [(m.src, m.verb) for m in c.trace.since(mark) if "konnectivity" in m.path]
    assert verbs[-2:] == [("konnectivity-server", "DATA"),
                          ("konnectivity-server", "CLOSE_RSP")]
    assert not [m for m in c.trace.since(mark) if m.path == "konnectivity-agent->kubelet"]
    assert server.backends == {} and server.established == {}
    c.run_for(6)  # the agent dials again
    assert pod_logs(c.admin(), "default", "web") == "app: started (attempt 0)\n"


def test_the_kubelet_is_verified_end_to_end_through_the_tunnel(c: Cluster):
    c.add_konnectivity()
    c.run_for(1)
    c.network.firewall("kube-apiserver", "kubelet")
    c.apiserver.kubelet_client.certificate_authority = "kubernetes"  # self-signed kubelet
    code, message = logs(c)
    assert code == 500 and message.endswith(
        "tls: failed to verify certificate: x509: certificate signed by unknown authority")


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


def test_agent_gone_before_its_dial_rsp_reaches_the_server(c: Cluster):
    """No DIAL_RSP ever reaches the apiserver: it gives the dial up with DIAL_CLS."""
    server = c.add_konnectivity()
    c.run_for(1)
    c.network.firewall("kube-apiserver", "kubelet")
    c.network.cut_after("konnectivity-agent->konnectivity-server", "DIAL_RSP")
    mark = c.trace.mark()
    code, message = logs(c)
    assert code == 500 and message.endswith(": dial timeout, context")
    verbs = [(m.src, m.verb) for m in c.trace.since(mark) if "konnectivity" in m.path]
    assert verbs[-2:] == [("konnectivity-agent/node-a", "DIAL_RSP"),
                          ("kube-apiserver", "DIAL_CLS")]
    assert server.pending == {}
