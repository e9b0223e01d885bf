"""Node lifecycle + taint eviction: a silent node goes Unknown, is tainted, loses its pods."""

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controller_manager import KubeControllerManager
from k8sbook.controlplane.controllers.node_lifecycle import NODE_MONITOR_GRACE_PERIOD
from k8sbook.node.kubelet import Kubelet


def setup() -> tuple[Cluster, KubeControllerManager, Kubelet]:
    c = Cluster(0)
    kcm = c.add_controller_manager(controllers=("nodelifecycle", "tainteviction"))
    kcm.start()
    k = c.add_kubelet("node-a").start()
    c.add_kubelet("node-b").start()  # alone, node-a would put the cluster in full disruption
    c.run_for(20)
    c.admin().create(objects.pod("web", node_name="node-a"))
    c.run_for(40)
    return c, kcm, k


def test_silent_node_unknown_tainted_and_pod_evicted_after_300s():
    c, kcm, k = setup()
    assert NODE_MONITOR_GRACE_PERIOD == 50
    k.stop()  # the kubelet process dies at t=60: no more lease renewals
    c.run_for(500)
    nl, te = kcm.controllers["nodelifecycle"], kcm.controllers["tainteviction"]
    unknown_at = next(t for t, _, what in nl.log if what == "Ready=Unknown")
    assert 60 + 50 < unknown_at <= 60 + 50 + 10  # grace period + up to two monitor periods
    adm = c.admin()
    node = adm.get("nodes", "node-a")
    assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} == {
        ("node.kubernetes.io/unreachable", "NoSchedule"),
        ("node.kubernetes.io/unreachable", "NoExecute")}
    assert all(x["status"] == "Unknown" and x["reason"] == "NodeStatusUnknown"
               for x in node["status"]["conditions"])
    evicted_at = te.log[0][0]
    assert evicted_at == unknown_at + 300
    pod = adm.get("pods", "web", "default")  # deletion requested; no kubelet to confirm it
    assert pod["metadata"]["deletionTimestamp"]
    conds = {x["type"]: x for x in pod["status"]["conditions"]}
    assert conds["Ready"]["status"] == "False"
    assert conds["DisruptionTarget"]["reason"] == "DeletionByTaintManager"


def test_node_that_comes_back_is_untainted_and_pod_survives():
    c, kcm, _ = setup()
    c.network.isolate("kubelet/node-a")
    c.run_for(120)
    c.network.rejoin("kubelet/node-a")
    c.run_for(60)
    adm = c.admin()
    node = adm.get("nodes", "node-a")
    assert not node["spec"].get("taints")
    ready = next(x for x in node["status"]["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "True"
    pod = adm.get("pods", "web", "default")
    assert not pod["metadata"].get("deletionTimestamp")
    assert kcm.controllers["tainteviction"].scheduled == {}
