"""The bridge + host-local CNI plugin: allocation order, release, exhaustion, failure."""

import pytest

from k8sbook.core.clock import Clock
from k8sbook.core.trace import Trace
from k8sbook.node.cni import BridgePlugin, CNIError


def plugin(cidr: str = "10.244.3.0/29") -> BridgePlugin:
    return BridgePlugin("node-d", cidr, Clock(), Trace())


def test_allocates_from_dot_two_in_order_and_does_not_reuse_at_once():
    p = plugin()
    ips = [p.add(f"c{i}", f"/var/run/netns/n{i}")["ips"][0]["address"] for i in range(3)]
    assert ips == ["10.244.3.2/29", "10.244.3.3/29", "10.244.3.4/29"]
    assert p.add("c0", "/var/run/netns/n0")["ips"][0]["address"] == "10.244.3.2/29"  # idempotent
    p.delete("c0", "/var/run/netns/n0")
    p.delete("c0", "/var/run/netns/n0")  # DEL twice is not an error
    assert p.add("c3", "/var/run/netns/n3")["ips"][0]["address"] == "10.244.3.5/29"
    assert p.add("c4", "/var/run/netns/n4")["ips"][0]["address"] == "10.244.3.6/29"
    assert p.add("c5", "/var/run/netns/n5")["ips"][0]["address"] == "10.244.3.2/29"  # wrapped


def test_exhaustion_and_injected_failure_allocate_nothing():
    p = plugin("10.244.3.0/30")  # .1 gateway, .2 the only pod address
    p.add("a", "/n/a")
    with pytest.raises(CNIError) as err:
        p.add("b", "/n/b")
    assert "no IP addresses available" in err.value.msg
    p.fail_add("boom")
    with pytest.raises(CNIError):
        p.add("c", "/n/c")
    assert p.allocations == {"a": "10.244.3.2"}
    assert [m.verb for m in p.trace] == ["ADD", "ADD", "ADD"]
    assert {m.path for m in p.trace} == {"container-runtime->cni-plugin"}


def test_config_names_bridge_and_host_local():
    cfg = plugin().config
    assert cfg["plugins"][0]["type"] == "bridge"
    assert cfg["plugins"][0]["ipam"]["type"] == "host-local"
