"""The load balancer in front of several kube-apiservers (k8sbook.client.loadbalancer)."""

from __future__ import annotations

import pytest

from k8sbook.client.address import Address
from k8sbook.client.loadbalancer import FALL, INTER, LoadBalancer
from k8sbook.client.network import DialError, Network
from k8sbook.core.clock import Clock
from k8sbook.core.trace import Trace

VIP = Address.tcp("192.168.0.100", 6443)
BACKENDS = [Address.tcp(f"192.168.0.{i}", 6443) for i in (2, 3)]


def setup() -> tuple[Network, LoadBalancer]:
    clock = Clock()
    net = Network(clock, Trace())
    for i, b in enumerate(BACKENDS, 1):
        net.listen(b, f"kube-apiserver/cp-{i}", lambda req, i=i: f"cp-{i}")
    return net, LoadBalancer(net, clock, VIP, BACKENDS)


def ask(net: Network, who: str) -> str:
    return str(net.dial(who, VIP, None, protocol="HTTPS", verb="GET"))


def test_connections_go_round_robin_and_stay_where_they_are() -> None:
    net, lb = setup()
    assert [ask(net, "a"), ask(net, "b"), ask(net, "a"), ask(net, "b")] == \
        ["cp-1", "cp-2", "cp-1", "cp-2"]
    assert [(src, str(b)) for _t, src, b in lb.connections] == [
        ("a", "192.168.0.2:6443"), ("b", "192.168.0.3:6443")]
    assert net.trace.messages[0].path == "a->kube-apiserver"
    assert net.trace.messages[0].dst == "kube-apiserver/cp-1"


def test_a_dead_backend_is_marked_down_after_two_failed_checks() -> None:
    net, lb = setup()
    ask(net, "a")
    net.close(BACKENDS[0])
    with pytest.raises(DialError, match="connection refused"):
        for who in ("a", "b", "c"):  # round robin still picks the dead one now and then
            ask(net, who)
    lb.clock.run_for(INTER * FALL)
    assert lb.transitions == [(INTER * FALL, BACKENDS[0], "DOWN")]
    assert {ask(net, w) for w in ("d", "e", "f")} == {"cp-2"}
