"""Node lifecycle + taint eviction: a silent node goes Unknown, is tainted, loses its pods."""

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controller_manager import KubeControllerManager
from k8sbook.controlplane.controllers import node_lifecycle as nl
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


# -- zones and rate limits (handleDisruption, ComputeZoneState) ------------------------------


def test_compute_zone_state():
    assert nl.compute_zone_state(["True", "True"]) == (0, nl.NORMAL)
    assert nl.compute_zone_state(["Unknown", None]) == (2, nl.FULL_DISRUPTION)
    # more than two not Ready and at least 55 %: partial
    assert nl.compute_zone_state(["Unknown"] * 3 + ["True"] * 2) == (3, nl.PARTIAL_DISRUPTION)
    # two of three is 67 %, but not more than two nodes: still Normal
    assert nl.compute_zone_state(["Unknown"] * 2 + ["True"]) == (2, nl.NORMAL)
    assert nl.compute_zone_state(["Unknown"] * 5 + ["True"] * 5) == (5, nl.NORMAL)


def test_zone_key_from_topology_labels():
    node = {"metadata": {"labels": {nl.LABEL_ZONE: "zone-a", nl.LABEL_REGION: "r1"}}}
    assert nl.zone_key(node) == "r1:\x00:zone-a" and nl.zone_name(nl.zone_key(node)) == "zone-a"
    assert nl.zone_key({"metadata": {}}) == ""
    beta = {"metadata": {"labels": {nl.LABEL_ZONE: "new", nl.LABEL_BETA_ZONE: "old"}}}
    assert nl.zone_key(beta) == ":\x00:old"


def test_reduced_rate_is_zero_in_a_small_zone():
    c = Cluster(0)
    kcm = c.add_controller_manager(controllers=("nodelifecycle",))
    kcm.start()
    c.run_for(1)
    ctrl = kcm.controllers["nodelifecycle"]
    assert ctrl.reduced_qps(50) == 0.0 and ctrl.reduced_qps(51) == 0.01
    assert (ctrl.eviction_rate, ctrl.unhealthy_zone_threshold,
            ctrl.large_cluster_threshold) == (0.1, 0.55, 50)


def test_a_single_node_cluster_never_evicts():
    """Its only node down, every zone is fully disrupted: master disruption mode."""
    c = Cluster(0)
    kcm = c.add_controller_manager(controllers=("nodelifecycle", "tainteviction"))
    kcm.start()
    k = c.add_kubelet("node-a").start()
    c.run_for(20)
    c.admin().create(objects.pod("web", node_name="node-a"))
    c.run_for(40)
    k.stop()
    c.run_for(500)
    nl_ctrl = kcm.controllers["nodelifecycle"]
    assert any(what == "all nodes not Ready: no evictions" for _, _, what in nl_ctrl.log)
    node = c.admin().get("nodes", "node-a")
    assert {(t["key"], t["effect"]) for t in node["spec"]["taints"]} == {
        ("node.kubernetes.io/unreachable", "NoSchedule")}
    assert kcm.controllers["tainteviction"].log == []
    assert not c.admin().get("pods", "web", "default")["metadata"].get("deletionTimestamp")


def test_pods_of_a_node_come_from_the_node_name_index_in_scan_order():
    """``getPodsAssignedToNode``: the node lifecycle and taint eviction controllers add the
    ``spec.nodeName`` index once; it gives the pods a scan of the whole store would give,
    in the same (key) order, and follows a pod that gets bound."""
    from k8sbook.client.delta_fifo import Indexer
    from k8sbook.controlplane.controllers import (
        POD_NODE_NAME_INDEX,
        add_pod_node_name_indexer,
        pods_assigned_to_node,
    )
    indexer = Indexer()
    pods = [objects.pod(f"p{i}", node_name=f"n{i % 3}" if i % 4 else None) for i in range(12)]
    for p in reversed(pods):
        indexer.add(p)
    add_pod_node_name_indexer(indexer)
    add_pod_node_name_indexer(indexer)  # asked twice: one index
    assert list(indexer.indexers).count(POD_NODE_NAME_INDEX) == 1
    for node in ("n0", "n1", "n2", "n9"):
        scan = [p for p in indexer.list() if p["spec"].get("nodeName") == node]
        assert pods_assigned_to_node(indexer, node) == scan
    bound = {**pods[0], "spec": {**pods[0]["spec"], "nodeName": "n2"}}
    indexer.update(bound)
    assert bound in pods_assigned_to_node(indexer, "n2")
