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


def _revisions(adm, ns: str = "default") -> list[dict]:
    return sorted(adm.list("controllerrevisions", ns)["items"], key=lambda r: r["revision"])


def test_each_template_is_a_controller_revision_and_pods_carry_its_hash():
    c = _cluster()
    adm = c.admin()
    ds = adm.create(daemonset())
    c.run_for(5)
    [rev] = _revisions(adm)
    h = rev["metadata"]["labels"]["controller-revision-hash"]
    assert rev["metadata"]["name"] == f"agent-{h}"
    assert rev["revision"] == 1
    assert rev["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
        "uid": ds["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert rev["metadata"]["labels"]["app"] == "agent"  # the template's labels, for kubectl
    assert rev["data"]["spec"]["template"]["$patch"] == "replace"
    assert rev["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    kubernetes_validate.validate(rev, "1.35.0", strict=True)
    for pod in adm.list("pods", "default")["items"]:
        assert pod["metadata"]["labels"]["controller-revision-hash"] == h
    # a new template is revision 2; going back to the first renumbers it 3, no new object
    adm.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "busybox:1.37"}]}}}}, "default")
    c.run_for(60)
    assert [r["revision"] for r in _revisions(adm)] == [1, 2]
    adm.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "busybox:1.36"}]}}}}, "default")
    c.run_for(60)
    revs = _revisions(adm)
    assert [(r["metadata"]["name"], r["revision"]) for r in revs][-1] == (f"agent-{h}", 3)
    assert len(revs) == 2
    assert {p["metadata"]["labels"]["controller-revision-hash"]
            for p in adm.list("pods", "default")["items"]} == {h}


def test_revision_history_limit_keeps_only_the_newest_old_revisions():
    c = _cluster()
    adm = c.admin()
    adm.create({**daemonset(), "spec": {**daemonset()["spec"], "revisionHistoryLimit": 1}})
    c.run_for(5)
    for tag in ("1.37", "1.38", "1.39"):
        adm.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": f"busybox:{tag}"}]}}}}, "default")
        c.run_for(60)
    revs = _revisions(adm)
    assert [r["revision"] for r in revs] == [3, 4]  # the current one and one old one
    assert revs[-1]["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "busybox:1.39"


def test_max_surge_starts_the_new_pod_before_the_old_one_goes():
    c = _cluster()
    adm = c.admin()
    ds = daemonset()
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 0}}
    adm.create(ds)
    c.run_for(5)
    adm.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "busybox:1.37"}]}}}}, "default")
    c.run_for(120)
    writes = [m.verb for m in c.trace.filter(resource="pods")
              if m.verb in ("CREATE", "DELETE") and m.src.startswith("kube-controller")]
    assert writes[3:] == ["CREATE", "DELETE"] * 3  # surge: the new pod first, node by node
    st = adm.get("daemonsets", "agent", "default")["status"]
    assert (st["updatedNumberScheduled"], st["numberAvailable"]) == (3, 3)
    assert "numberUnavailable" not in st


def test_max_unavailable_as_a_percentage_rounds_up_and_on_delete_waits():
    c = _cluster()
    adm = c.admin()
    ds = daemonset()
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate",
                                    "rollingUpdate": {"maxUnavailable": "50%"}}
    adm.create(ds)
    c.run_for(5)
    adm.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "busybox:1.37"}]}}}}, "default")
    c.run_for(0.5)
    first = [m.name for m in c.trace.filter(verb="DELETE", resource="pods")
             if m.src.startswith("kube-controller")]
    assert len(first) == 2  # 50 % of 3 nodes, rounded up
    adm.patch("daemonsets", "agent", {"spec": {"updateStrategy": {
        "type": "OnDelete", "rollingUpdate": None}}}, "default")
    c.run_for(30)
    adm.patch("daemonsets", "agent", {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "busybox:1.38"}]}}}}, "default")
    c.run_for(60)
    images = sorted(p["spec"]["containers"][0]["image"]
                    for p in adm.list("pods", "default")["items"])
    assert "busybox:1.38" not in images  # OnDelete: nothing replaced until deleted
