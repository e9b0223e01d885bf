"""The Deployment controller (``pkg/controller/deployment``) and kubectl's client-side
rollout commands (``k8s.io/kubectl/pkg/polymorphichelpers``)."""

from __future__ import annotations

import kubernetes_validate
import pytest

from k8sbook.cluster import Cluster


def deployment(replicas: int = 4, image: str = "nginx:1.27", **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}},
                     **spec}}


@pytest.fixture
def cluster():
    c = Cluster(0)
    c.add_kubelet("node-a").start()
    c.add_scheduler().start()
    c.add_controller_manager(controllers=("replicaset", "deployment")).start()
    c.run_for(3)
    return c


def set_image(c: Cluster, image: str) -> None:
    c.admin().patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": image}]}}}}, "default")


def replicasets_by_name(c: Cluster) -> dict[str, dict]:
    return {rs["metadata"]["name"]: rs for rs in
            c.admin().list("replicasets", "default")["items"]}


def _events(c: Cluster) -> list[str]:
    return [e["message"] for e in sorted(c.admin().list("events", "default")["items"],
                                         key=lambda e: int(e["metadata"]["resourceVersion"]))
            if e["reason"] == "ScalingReplicaSet"]


def test_a_deployment_owns_a_hashed_replicaset_and_reports_complete(cluster):
    adm = cluster.admin()
    adm.create(deployment())
    cluster.run_for(10)
    [(name, rs)] = replicasets_by_name(cluster).items()
    h = rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"]
    assert name == f"web-{h}" and rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == h
    assert rs["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "4",
        "deployment.kubernetes.io/max-replicas": "5"}
    ref = rs["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["controller"], ref["blockOwnerDeletion"]) == \
        ("Deployment", True, True)
    d = adm.get("deployments", "web", "default")
    st = d["status"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"],
            st["availableReplicas"], st["unavailableReplicas"], st["observedGeneration"]) == \
        (4, 4, 4, 4, 0, 1)
    conds = {c["type"]: (c["status"], c["reason"], c["message"]) for c in st["conditions"]}
    assert conds == {
        "Available": ("True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        "Progressing": ("True", "NewReplicaSetAvailable",
                        f'ReplicaSet "{name}" has successfully progressed.')}
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    kubernetes_validate.validate(d, "1.35.0", strict=True)
    kubernetes_validate.validate(rs, "1.35.0", strict=True)


def test_a_rolling_update_stays_within_the_surge(cluster):
    """New pods are added only while all ReplicaSets' sizes stay within replicas + maxSurge;
    old ones shrink as new ones become available (the events replay the steps)."""
    adm = cluster.admin()
    adm.create(deployment())
    cluster.run_for(10)
    set_image(cluster, "nginx:1.28")
    cluster.run_for(30)
    sizes: dict[str, int] = {}
    steps = []
    for message in _events(cluster):
        words = message.split()  # Scaled up replica set NAME from A to B
        sizes[words[4]] = int(words[-1])
        steps.append((words[1], sum(sizes.values())))
    assert max(total for _, total in steps) == 5  # 4 + maxSurge (25 % of 4, rounded up)
    assert [w for w, _ in steps].count("down") >= 2  # the old set shrank in steps
    rss = replicasets_by_name(cluster)
    assert sorted(rs["spec"]["replicas"] for rs in rss.values()) == [0, 4]
    new = next(rs for rs in rss.values() if rs["spec"]["replicas"] == 4)
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    d = adm.get("deployments", "web", "default")
    assert d["status"]["updatedReplicas"] == 4 and d["status"]["observedGeneration"] == 2


def test_a_rollout_that_cannot_progress_exceeds_its_deadline(cluster):
    adm = cluster.admin()
    adm.create(deployment(2, image="nginx:1.27", progressDeadlineSeconds=30))
    cluster.run_for(8)
    adm.patch("deployments", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "exit 1"]}]}}}},
        "default")  # crashes, so never ready
    cluster.run_for(60)
    d = adm.get("deployments", "web", "default")
    cond = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert cond["message"].endswith("has timed out progressing.")


def test_scaling_resizes_without_a_new_revision_and_history_is_limited(cluster):
    adm = cluster.admin()
    adm.create(deployment(2, revisionHistoryLimit=1))
    cluster.run_for(8)
    for image in ("nginx:1.28", "nginx:1.29"):
        set_image(cluster, image)
        cluster.run_for(20)
    assert len(replicasets_by_name(cluster)) == 2  # the newest and one old revision
    adm.patch("deployments", "web", {"spec": {"replicas": 3}}, "default")
    cluster.run_for(5)
    rss = sorted(replicasets_by_name(cluster).values(), key=lambda rs: -rs["spec"]["replicas"])
    assert rss[0]["spec"]["replicas"] == 3
    assert rss[0]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert rss[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_recreate_removes_every_old_pod_before_the_new_replicaset_grows(cluster):
    adm = cluster.admin()
    adm.create(deployment(2, strategy={"type": "Recreate"}))
    cluster.run_for(8)
    set_image(cluster, "nginx:1.28")
    cluster.run_for(60)
    steps = _events(cluster)
    down = max(i for i, m in enumerate(steps) if m.startswith("Scaled down"))
    up = [i for i, m in enumerate(steps) if "from 0 to 2" in m]
    assert len(up) == 2 and up[1] > down  # the second set grows after the first shrank
    assert steps[down].endswith("from 2 to 0")
    # the new pods were created only after the old ones were deleted and gone
    pod_writes = [(m.t, m.verb) for m in cluster.trace.filter(resource="pods")
                  if m.verb in ("CREATE", "DELETE") and m.src.startswith("kube-controller")]
    last_delete = max(t for t, v in pod_writes if v == "DELETE")
    assert sorted(t for t, v in pod_writes if v == "CREATE")[-2] >= last_delete
    d = adm.get("deployments", "web", "default")
    assert d["status"]["updatedReplicas"] == 2 and d["status"]["availableReplicas"] == 2


def test_proportional_scaling_as_in_the_kubernetes_docs():
    """kubernetes.io's "Proportional scaling": 10 replicas, maxSurge 3, maxUnavailable 2, an
    image that cannot be pulled (the new ReplicaSet stuck at 5, the old one at 8), then
    scaled to 15: 3 more go to the old ReplicaSet, 2 to the new one (11 and 7)."""
    from k8sbook.node.containerd_images import Registry
    c = Cluster(0)
    c.add_kubelet("node-a", registry=Registry(missing={"nginx:1.161"})).start()
    c.add_scheduler().start()
    c.add_controller_manager(controllers=("replicaset", "deployment")).start()
    c.run_for(3)
    adm = c.admin()
    adm.create(deployment(10, strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 3, "maxUnavailable": 2}}))
    c.run_for(20)
    set_image(c, "nginx:1.161")
    c.run_for(20)
    sizes = sorted((rs["spec"]["replicas"], rs["spec"]["template"]["spec"]["containers"][0][
        "image"]) for rs in replicasets_by_name(c).values())
    assert sizes == [(5, "nginx:1.161"), (8, "nginx:1.27")]
    adm.patch("deployments", "web", {"spec": {"replicas": 15}}, "default")
    c.run_for(5)
    rs = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r
          for r in replicasets_by_name(c).values()}
    assert (rs["nginx:1.27"]["spec"]["replicas"], rs["nginx:1.161"]["spec"]["replicas"]) == \
        (11, 7)
    for r in rs.values():  # both now record the Deployment's new size and ceiling
        annotations = r["metadata"]["annotations"]
        assert (annotations["deployment.kubernetes.io/desired-replicas"],
                annotations["deployment.kubernetes.io/max-replicas"]) == ("15", "18")
    scaled = [m for m in _events(c) if "from 8 to 11" in m or "from 5 to 7" in m]
    assert len(scaled) == 2 and all(m.startswith("Scaled up replica set") for m in scaled)
    d = adm.get("deployments", "web", "default")
    assert (d["status"]["replicas"], d["status"]["updatedReplicas"]) == (18, 7)
    # and back down to 10: the larger (old) one loses more, older first on ties
    adm.patch("deployments", "web", {"spec": {"replicas": 10}}, "default")
    c.run_for(5)
    rs = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r
          for r in replicasets_by_name(c).values()}
    assert (rs["nginx:1.27"]["spec"]["replicas"], rs["nginx:1.161"]["spec"]["replicas"]) == \
        (8, 5)


def test_get_proportion_rounds_half_away_from_zero_and_leftovers_go_first():
    from k8sbook.controlplane.controllers import deployment_util as du

    def rs(name: str, replicas: int, stamp: str, max_replicas: int) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": stamp, "annotations": {
            du.MAX_REPLICAS: str(max_replicas)}}, "spec": {"replicas": replicas}}
    d = deployment(3, strategy={"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 0}})
    a, b = rs("a", 1, "2026-01-01T00:00:00Z", 2), rs("b", 1, "2026-01-01T00:01:00Z", 2)
    sizes, op = du.proportional_sizes(d, [a, b])
    # 4 allowed, 2 to add: each 1 * 4 / 2 = 2 -> +1; equal sizes: the newer first
    assert op == "up" and [(r["metadata"]["name"], n) for r, n in sizes] == [("b", 2), ("a", 2)]
    assert du._round(2.5) == 3 and du._round(-2.5) == -3
