"""The PLEG notices a dead container at its next relist (pkg/kubelet/pleg)."""

from tests.node.conftest import run_pod


def test_relist_notices_a_killed_container_within_a_second(node_a):
    c, k = node_a
    run_pod(c)
    c.clock.run_until(10.3)
    k.runtime.kill(k.container_id("default", "web", "app"), 137, "OOMKilled")
    m = c.trace.mark()
    c.run_for(2)
    msgs = c.trace.since(m)
    noticed = next(x.t for x in msgs if x.verb == "ContainerStatus")
    assert noticed == 11.0
    restarted = next(x.t for x in msgs if x.verb == "StartContainer")
    assert restarted == noticed
    cs = c.admin().get("pods", "web", "default")["status"]["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["reason"] == "OOMKilled" and cs["restartCount"] == 1
