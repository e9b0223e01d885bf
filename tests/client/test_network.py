"""The network fabric: listen, dial, the trace it records, and the faults injected there."""

from __future__ import annotations

import pytest

from k8sbook.client.network import Address, DialError, Network, Translation
from k8sbook.core.clock import Clock
from k8sbook.core.trace import COUNTS, Trace

A = Address.tcp("10.0.0.1", 8080)


@pytest.fixture
def net() -> Network:
    return Network(Clock(), Trace())


def echo(req: object) -> str:
    return f"echo {req}"


def test_dial_reaches_the_listener_and_records_one_message(net: Network) -> None:
    net.listen(A, "pod/web", echo)
    assert net.dial("kubelet/node-a", A, "hi", protocol="HTTP", verb="GET") == "echo hi"
    [m] = net.trace.messages
    assert (m.src, m.dst, m.path, m.result) == ("kubelet/node-a", "pod/web", "kubelet->pod",
                                                "echo hi")


def test_the_message_is_recorded_before_the_handler_runs(net: Network) -> None:
    """Nested calls made while serving appear after the request that caused them."""
    inner = Address.tcp("10.0.0.2", 2379)
    net.listen(inner, "etcd", echo)
    net.listen(A, "kube-apiserver", lambda req: net.dial("kube-apiserver", inner, req,
                                                         protocol="gRPC", verb="Range"))
    net.dial("kubectl", A, "x", protocol="HTTPS", verb="GET")
    assert [m.path for m in net.trace.messages] == ["kubectl->kube-apiserver",
                                                    "kube-apiserver->etcd"]
    assert net.trace.messages[0].result == "echo x"


def test_nothing_listening_is_refused_in_gos_words(net: Network) -> None:
    with pytest.raises(DialError) as err:
        net.dial("kubectl", A, None, protocol="HTTPS", verb="GET")
    assert str(err.value) == "dial tcp 10.0.0.1:8080: connect: connection refused"
    assert net.trace.messages[-1].result == "connection refused"


def test_a_closed_listener_is_refused_and_still_named(net: Network) -> None:
    net.listen(A, "etcd", echo)
    net.close(A)
    with pytest.raises(DialError):
        net.dial("kube-apiserver", A, None, protocol="gRPC", verb="Txn")
    m = net.trace.messages[-1]
    assert (m.dst, m.path, m.result) == ("etcd", "kube-apiserver->etcd", "connection refused")


def test_address_in_use(net: Network) -> None:
    net.listen(A, "pod/a", echo)
    with pytest.raises(OSError, match="bind: address already in use"):
        net.listen(A, "pod/b", echo)


def test_unix_and_exec_addresses(net: Network) -> None:
    sock = Address.unix("node-a", "/run/containerd/containerd.sock")
    with pytest.raises(DialError) as err:
        net.dial("kubelet/node-a", sock, None, protocol="gRPC", verb="Version")
    assert str(err.value) == ("dial unix /run/containerd/containerd.sock: connect: no such file "
                              "or directory")
    other_node = Address.unix("node-b", "/run/containerd/containerd.sock")
    net.listen(other_node, "container-runtime/node-b", echo)
    with pytest.raises(DialError):  # a socket on another node is not this node's
        net.dial("kubelet/node-a", sock, None, protocol="gRPC", verb="Version")
    with pytest.raises(DialError, match="fork/exec /opt/cni/bin/bridge"):
        net.dial("container-runtime/node-a", Address.exec("node-a", "/opt/cni/bin/bridge"),
                 None, protocol="exec", verb="ADD")


def test_host_names_resolve_through_the_host_table(net: Network) -> None:
    net.listen(Address.tcp("192.168.0.10", 10250), "kubelet/node-a", echo)
    with pytest.raises(DialError, match="lookup node-a: no such host"):
        net.dial("kube-apiserver", Address.tcp("node-a", 10250), None, protocol="HTTPS",
                 verb="GET")
    net.add_host("node-a", "192.168.0.10")
    assert net.dial("kube-apiserver", Address.tcp("node-a", 10250), 1, protocol="HTTPS",
                    verb="GET") == "echo 1"


def test_isolation_and_partitions_time_out_and_heal(net: Network) -> None:
    net.listen(A, "kube-apiserver", echo)
    net.isolate("kube-scheduler")
    with pytest.raises(DialError, match="i/o timeout"):
        net.dial("kube-scheduler", A, None, protocol="HTTPS", verb="GET")
    net.dial("kubectl", A, None, protocol="HTTPS", verb="GET")  # others are unaffected
    net.rejoin("kube-scheduler")
    net.dial("kube-scheduler", A, None, protocol="HTTPS", verb="GET")
    net.partition("kubelet/node-a", "kube-apiserver")
    with pytest.raises(DialError):
        net.dial("kubelet/node-a", A, None, protocol="HTTPS", verb="GET")
    net.dial("kubelet/node-b", A, None, protocol="HTTPS", verb="GET")
    net.heal()
    net.dial("kubelet/node-a", A, None, protocol="HTTPS", verb="GET")


def test_refuse_drop_down_and_latency(net: Network) -> None:
    net.listen(A, "webhook", echo)
    net.refuse(A)
    with pytest.raises(DialError, match="connection refused"):
        net.dial("kube-apiserver", A, None, protocol="HTTPS", verb="POST")
    net.refuse(A, False)
    net.drop(A)
    with pytest.raises(DialError, match="i/o timeout"):
        net.dial("kube-apiserver", A, None, protocol="HTTPS", verb="POST")
    net.drop(A, False)
    net.set_down("10.0.0.1")
    with pytest.raises(DialError, match="i/o timeout"):
        net.dial("kube-apiserver", A, None, protocol="HTTPS", verb="POST")
    net.set_down("10.0.0.1", False)
    net.set_latency(A, 12.0)
    with pytest.raises(DialError, match="i/o timeout"):
        net.dial("kube-apiserver", A, None, protocol="HTTPS", verb="POST", timeout=10.0)
    assert net.dial("kube-apiserver", A, 1, protocol="HTTPS", verb="POST",
                    timeout=30.0) == "echo 1"
    assert net.trace.messages[-1].result == "echo 1, +12s"


def test_a_handler_error_completes_the_message_and_propagates(net: Network) -> None:
    def boom(req: object) -> None:
        raise ValueError("Unavailable")

    net.listen(A, "csi-node-plugin/node-a", boom)
    with pytest.raises(ValueError):
        net.dial("kubelet/node-a", A, None, protocol="gRPC", verb="NodeStageVolume",
                 error=lambda e: f"rpc error: {e}")
    assert net.trace.messages[-1].result == "rpc error: Unavailable"


def test_the_translator_of_the_node_rewrites_the_destination(net: Network) -> None:
    backend = Address.tcp("10.244.1.5", 8080)
    net.listen(backend, "pod/web-1", echo)
    vip = Address.tcp("10.96.0.20", 80)

    def rules(source_ip: str, address: Address) -> Translation:
        if address == vip:
            return Translation(backend, f"DNAT to {backend}")
        return Translation(address)

    net.set_translator("node-a", rules)
    with pytest.raises(DialError):  # without via, no rules apply: nothing listens on the VIP
        net.dial("pod/client", vip, None, protocol="HTTP", verb="GET")
    assert net.dial("pod/client", vip, 7, protocol="HTTP", verb="GET", via="node-a",
                    source_ip="10.244.0.3") == "echo 7"
    m = net.trace.messages[-1]
    assert (m.dst, m.path, m.result) == ("pod/web-1", "pod->pod",
                                         "DNAT to 10.244.1.5:8080, echo 7")


def test_streams_carry_events_and_break_with_the_network(net: Network) -> None:
    broken: list[bool] = []
    net.listen(A, "kube-apiserver", lambda req_conn: "200")
    conn, _reply = net.open("kube-scheduler", A, "watch", protocol="HTTPS", verb="WATCH",
                           stream_protocol="HTTPS (watch stream)")
    conn.on_break = lambda: broken.append(True)
    conn.deliver("ADDED", "pods", "default/web", "5")
    m = net.trace.messages[-1]
    assert (m.src, m.dst, m.path, m.protocol) == ("kube-apiserver", "kube-scheduler",
                                                  "kube-scheduler->kube-apiserver",
                                                  "HTTPS (watch stream)")
    assert net.connections("kube-scheduler") == [conn]
    net.isolate("kube-scheduler")
    assert broken == [True] and conn.broken and net.connections("kube-scheduler") == []


def test_a_bidirectional_stream_records_both_directions_and_can_be_cut(net: Network) -> None:
    net.listen(A, "konnectivity-server", lambda req_conn: "stream")
    conn, _ = net.open("konnectivity-agent/node-a", A, None, protocol="gRPC", verb="POST")
    broken: list[bool] = []
    conn.on_break = lambda: broken.append(True)
    conn.send("DIAL_RSP")
    conn.deliver("DATA")
    up, down = net.trace.messages[-2:]
    assert (up.src, up.dst) == ("konnectivity-agent/node-a", "konnectivity-server")
    assert (down.src, down.dst) == ("konnectivity-server", "konnectivity-agent/node-a")
    assert up.path == down.path == "konnectivity-agent->konnectivity-server"
    net.cut_after("konnectivity-agent->konnectivity-server", "DATA", count=2)
    conn.deliver("DATA")
    assert not conn.closed
    conn.send("DATA")  # the second: recorded, then the connection breaks
    assert net.trace.messages[-1].verb == "DATA" and conn.broken and broken == [True]


def test_tcp_connect_fails_as_a_dial_would_and_records_nothing(net: Network) -> None:
    with pytest.raises(DialError, match="connect: connection refused"):
        net.tcp_connect("konnectivity-agent/node-a", A)
    net.listen(A, "kubelet/node-a", echo)
    net.tcp_connect("konnectivity-agent/node-a", A)
    assert net.trace.messages == []


def test_a_tls_listener_without_a_certificate_fails_every_handshake(net: Network) -> None:
    net.listen(A, "kubelet/node-a", echo, protocol="HTTPS", certificate="")
    for verify in (None, "kubernetes"):
        with pytest.raises(DialError, match="^remote error: tls: internal error$"):
            net.dial("kube-apiserver", A, "GET", protocol="HTTPS", verb="GET", verify=verify)


def test_cost_per_message_does_not_grow_with_listeners() -> None:
    """The fabric's work per dial is dictionary lookups: 10,000 idle listeners and open
    connections elsewhere do not add to the count of handler calls or records per dial."""
    net = Network(Clock(), Trace())
    for i in range(10_000):
        net.listen(Address.tcp(f"10.1.{i // 250}.{i % 250}", 80), f"pod/p{i}", echo)
    net.listen(A, "kube-apiserver", echo)
    before = len(net.trace)
    for _ in range(100):
        net.dial("kubectl", A, None, protocol="HTTPS", verb="GET")
    assert len(net.trace) - before == 100


def test_firewall_drops_new_connections_one_way_only(net: Network) -> None:
    node = Address.tcp("10.0.0.10", 10250)
    apiserver = Address.tcp("10.0.0.2", 6443)
    net.listen(node, "kubelet/node-a", echo)
    net.listen(apiserver, "kube-apiserver", echo)
    net.firewall("kube-apiserver", "kubelet")
    with pytest.raises(DialError) as err:
        net.dial("kube-apiserver", node, "logs", protocol="HTTPS", verb="GET")
    assert str(err.value) == "dial tcp 10.0.0.10:10250: i/o timeout"
    # the node still dials out, and an agent on the node still reaches its kubelet
    assert net.dial("kubelet/node-a", apiserver, "watch", protocol="HTTPS", verb="GET")
    assert net.dial("konnectivity-agent/node-a", node, "logs", protocol="HTTPS", verb="GET")
    net.firewall("kube-apiserver", "kubelet", on=False)
    assert net.dial("kube-apiserver", node, "logs", protocol="HTTPS", verb="GET")


def test_a_listener_that_requires_client_certificates_checks_the_issuer(net: Network) -> None:
    addr = Address.tcp("10.0.0.9", 2379)
    net.listen(addr, "etcd", echo, protocol="gRPC", certificate="etcd-ca", client_ca="etcd-ca")
    assert net.dial("kube-apiserver", addr, "x", protocol="gRPC", verb="Range",
                    verify="etcd-ca", client_certificate="etcd-ca") == "echo x"
    with pytest.raises(DialError) as err:
        net.dial("kube-apiserver", addr, "x", protocol="gRPC", verb="Range",
                 client_certificate="kubernetes")
    assert (err.value.kind, str(err.value)) == (
        "tls", "remote error: tls: unknown certificate authority")
    with pytest.raises(DialError, match="remote error: tls: certificate required"):
        net.dial("kube-apiserver", addr, "x", protocol="gRPC", verb="Range")
    assert [m.result for m in net.trace.messages][-2:] == [
        "remote error: tls: unknown certificate authority",
        "remote error: tls: certificate required"]


def test_at_the_counts_level_no_result_text_is_made() -> None:
    """A message's result is text for the trace: when the trace only counts, the fabric does
    not make it (and the reply's bytes are still counted)."""
    net = Network(Clock(), Trace(COUNTS))
    net.listen(A, "kube-apiserver", lambda req: {"kind": "Pod"})
    made: list[object] = []
    reply = net.dial("kubectl", A, {"a": 1}, protocol="HTTPS", verb="GET", resource="pods",
                     result=lambda r: made.append(r) or "200")
    assert reply == {"kind": "Pod"} and made == []
    assert net.trace.tallies == {("kubectl->kube-apiserver", "GET", "pods"):
                                 [1, len('{"a":1}') + len('{"kind":"Pod"}')]}
