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
