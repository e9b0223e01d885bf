"""The bridge + host-local CNI plugin, executed through the network as a runtime does."""

import pytest

from k8sbook.client.network import DialError, Network
from k8sbook.core.clock import Clock
from k8sbook.core.trace import Trace
from k8sbook.node.cni import BridgePlugin, CNIError, CNIRequest, exec_plugin


def plugin(cidr: str = "10.244.3.0/29") -> BridgePlugin:
    return BridgePlugin("node-d", cidr, Network(Clock(), Trace())).install()


def add(p: BridgePlugin, cid: str) -> str:
    out = exec_plugin(p.network, "container-runtime/node-d", "node-d", "bridge",
                      CNIRequest("ADD", cid, f"/var/run/netns/{cid}"))
    return out["ips"][0]["address"]


def delete(p: BridgePlugin, cid: str) -> str:
    return exec_plugin(p.network, "container-runtime/node-d", "node-d", "bridge",
                       CNIRequest("DEL", cid, f"/var/run/netns/{cid}"))


def test_allocates_from_dot_two_in_order_and_does_not_reuse_at_once():
    p = plugin()
    assert [add(p, f"c{i}") for i in range(3)] == ["10.244.3.2/29", "10.244.3.3/29",
                                                   "10.244.3.4/29"]
    assert add(p, "c0") == "10.244.3.2/29"  # idempotent
    assert delete(p, "c0") == "released 10.244.3.2"
    assert delete(p, "c0") == "nothing to release"  # DEL twice is not an error
    assert add(p, "c3") == "10.244.3.5/29"
    assert add(p, "c4") == "10.244.3.6/29"
    assert add(p, "c5") == "10.244.3.2/29"  # wrapped


def test_exhaustion_and_injected_failure_allocate_nothing():
    p = plugin("10.244.3.0/30")  # .1 gateway, .2 the only pod address
    add(p, "a")
    with pytest.raises(CNIError) as err:
        add(p, "b")
    assert "no IP addresses available" in err.value.msg
    p.fail_add("boom")
    with pytest.raises(CNIError):
        add(p, "c")
    assert p.allocations == {"a": "10.244.3.2"}
    trace = p.network.trace
    assert [(m.verb, m.result) for m in trace] == [
        ("ADD", "10.244.3.2"), ("ADD", f"error: {err.value.msg}"), ("ADD", "error: boom")]
    assert {m.path for m in trace} == {"container-runtime->cni-plugin"}


def test_not_installed_is_no_such_file():
    p = BridgePlugin("node-d", "10.244.3.0/29", Network(Clock(), Trace()))
    with pytest.raises(DialError) as err:
        add(p, "a")
    assert str(err.value) == "fork/exec /opt/cni/bin/bridge: no such file or directory"


def test_config_names_bridge_and_host_local():
    cfg = plugin().config
    assert cfg["plugins"][0]["type"] == "bridge"
    assert cfg["plugins"][0]["ipam"]["type"] == "host-local"
