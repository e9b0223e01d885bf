"""The DaemonSet controller (``pkg/controller/daemon``)."""

from __future__ import annotations

import kubernetes_validate

from k8sbook.cluster import Cluster


def daemonset(**template_spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "busybox:1.36"}],
                         **template_spec}}}}


def _cluster() -> Cluster:
    c = Cluster(0)
    for n in ("node-a", "node-b", "node-c"):
        c.add_kubelet(n).start()
    c.add_scheduler().start()
    c.add_controller_manager(controllers=("daemonset",)).start()
    c.run_for(3)
    return c


def test_one_pod_per_node_placed_by_the_scheduler_through_node_affinity():
    c = _cluster()
    adm = c.admin()
    adm.create(daemonset())
    c.run_for(5)
    pods = adm.list("pods", "default")["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["node-a", "node-b", "node-c"]
    for p in pods:
        [term] = p["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert term == {"matchFields": [{"key": "metadata.name", "operator": "In",
                                         "values": [p["spec"]["nodeName"]]}]}
        keys = {(t["key"], t["effect"]) for t in p["spec"]["tolerations"]}
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
        assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
    binds = [m for m in c.trace.filter(verb="CREATE", resource="pods/binding")]
    assert {m.src for m in binds} == {"kube-scheduler/cp-1"}  # not the controller
    ds = adm.get("daemonsets", "agent", "default")
    st = ds["status"]
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberReady"],
            st["numberMisscheduled"]) == (3, 3, 3, 0)
    kubernetes_validate.validate(ds, "1.35.0", strict=True)
    kubernetes_validate.validate(pods[0], "1.35.0", strict=True)


def test_a_node_selector_limits_the_nodes_and_a_deleted_pod_comes_back():
    c = _cluster()
    adm = c.admin()
    adm.create(daemonset(nodeSelector={"kubernetes.io/hostname": "node-b"}))
    c.run_for(5)
    [pod] = adm.list("pods", "default")["items"]
    assert pod["spec"]["nodeName"] == "node-b"
    adm.delete("pods", pod["metadata"]["name"], "default", gracePeriodSeconds=0)
    c.run_for(5)
    [again] = adm.list("pods", "default")["items"]
    assert again["metadata"]["name"] != pod["metadata"]["name"]
    assert adm.get("daemonsets", "agent", "default")["status"]["desiredNumberScheduled"] == 1


def test_a_new_template_rolls_node_by_node():
    c = _cluster()
    adm = c.admin()
    adm.create(daemonset())
    c.run_for(5)
    adm.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "busybox:1.37"}]}}}}, "default")
    c.run_for(120)
    writes = [m.verb for m in c.trace.filter(resource="pods")
              if m.verb in ("CREATE", "DELETE") and m.src.startswith("kube-controller")]
    assert writes[3:] == ["DELETE", "CREATE"] * 3  # maxUnavailable 1: one node at a time
    pods = adm.list("pods", "default")["items"]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:1.37"}
    assert len(pods) == 3
    st = adm.get("daemonsets", "agent", "default")["status"]
    assert st["updatedNumberScheduled"] == st["numberReady"] == 3


def test_a_node_tainted_noschedule_gets_no_daemon_pod_unless_tolerated():
    c = _cluster()
    adm = c.admin()
    adm.patch("nodes", "node-c", {"spec": {"taints": [
        {"key": "example.com/dedicated", "value": "gpu", "effect": "NoSchedule"}]}})
    adm.create(daemonset())
    c.run_for(5)
    assert sorted(p["spec"]["nodeName"] for p in adm.list("pods", "default")["items"]) == \
        ["node-a", "node-b"]
    adm.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"tolerations": [
        {"key": "example.com/dedicated", "operator": "Exists"}]}}}}, "default")
    c.run_for(30)
    assert sorted(p["spec"]["nodeName"] for p in adm.list("pods", "default")["items"]) == \
        ["node-a", "node-b", "node-c"]
