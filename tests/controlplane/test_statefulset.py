"""The StatefulSet controller (``pkg/controller/statefulset``)."""

from __future__ import annotations

import kubernetes_validate

from k8sbook.cluster import Cluster


def statefulset(replicas: int = 3, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": replicas, "serviceName": "db",
                     "selector": {"matchLabels": {"app": "db"}}, "template": {
                         "metadata": {"labels": {"app": "db"}},
                         "spec": {"containers": [{"name": "db", "image": "busybox:1.36"}]}},
                     **spec}}


def _cluster() -> Cluster:
    c = Cluster(0)
    c.add_kubelet("node-a").start()
    c.add_scheduler().start()
    c.add_controller_manager(controllers=("statefulset",)).start()
    c.run_for(3)
    return c


def _creations(c: Cluster) -> list[tuple[float, str]]:
    return [(m.t, m.name) for m in c.trace.filter(verb="CREATE", resource="pods")
            if m.src.startswith("kube-controller-manager")]


def test_ordered_ready_creates_one_pod_at_a_time_with_stable_names():
    c = _cluster()
    adm = c.admin()
    adm.create(statefulset())
    c.run_for(10)
    made = _creations(c)
    assert [n for _, n in made] == ["default/db-0", "default/db-1", "default/db-2"]
    assert made[0][0] < made[1][0] < made[2][0]  # each after the previous was ready
    pod = adm.get("pods", "db-1", "default")
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert labels["apps.kubernetes.io/pod-index"] == "1"
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("db-1", "db")
    sts = adm.get("statefulsets", "db", "default")
    assert (sts["status"]["replicas"], sts["status"]["readyReplicas"]) == (3, 3)
    kubernetes_validate.validate(sts, "1.35.0", strict=True)
    kubernetes_validate.validate(pod, "1.35.0", strict=True)


def test_claims_come_before_the_pod_and_an_unready_pod_holds_the_next_ordinal():
    c = _cluster()
    adm = c.admin()
    adm.create(statefulset(volumeClaimTemplates=[{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}}]))
    c.run_for(10)  # nothing binds the claim: db-0 cannot mount it, so it never gets ready
    pod = adm.get("pods", "db-0", "default")
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in \
        pod["spec"]["volumes"]
    assert [p["metadata"]["name"] for p in adm.list("persistentvolumeclaims", "default")[
        "items"]] == ["data-db-0"]
    assert [n for _, n in _creations(c)] == ["default/db-0"]
    claim = [e["message"] for e in adm.list("events", "default")["items"]
             if e["involvedObject"]["kind"] == "StatefulSet"]
    assert "create Claim data-db-0 Pod db-0 in StatefulSet db success" in claim


def test_scale_down_removes_the_highest_ordinal_first():
    c = _cluster()
    adm = c.admin()
    adm.create(statefulset(3))
    c.run_for(10)
    adm.patch("statefulsets", "db", {"spec": {"replicas": 1}}, "default")
    c.run_for(120)
    deletes = [m.name for m in c.trace.filter(verb="DELETE", resource="pods")
               if m.src.startswith("kube-controller-manager")]
    assert deletes == ["default/db-2", "default/db-1"]
    assert [p["metadata"]["name"] for p in adm.list("pods", "default")["items"]] == ["db-0"]


def test_a_new_template_rolls_from_the_highest_ordinal_down():
    c = _cluster()
    adm = c.admin()
    adm.create(statefulset(3))
    c.run_for(10)
    before = adm.get("statefulsets", "db", "default")["status"]["currentRevision"]
    adm.patch("statefulsets", "db", {"spec": {"template": {"spec": {"containers": [
        {"name": "db", "image": "busybox:1.37"}]}}}}, "default")
    c.run_for(200)
    deletes = [m.name for m in c.trace.filter(verb="DELETE", resource="pods")
               if m.src.startswith("kube-controller-manager")]
    assert deletes == ["default/db-2", "default/db-1", "default/db-0"]
    st = adm.get("statefulsets", "db", "default")["status"]
    assert st["updateRevision"] == st["currentRevision"] != before
    assert st["updatedReplicas"] == st["currentReplicas"] == 3
    images = {p["spec"]["containers"][0]["image"] for p in adm.list("pods", "default")["items"]}
    assert images == {"busybox:1.37"}


def _revisions(adm) -> list[dict]:
    return sorted(adm.list("controllerrevisions", "default")["items"],
                  key=lambda r: r["revision"])


def _image(c: Cluster, tag: str) -> None:
    c.admin().patch("statefulsets", "db", {"spec": {"template": {"spec": {"containers": [
        {"name": "db", "image": f"busybox:{tag}"}]}}}}, "default")


def test_revisions_are_named_by_upstreams_hash_and_pods_name_their_revision():
    from k8sbook.controlplane.controllers import history
    c = _cluster()
    adm = c.admin()
    sts = adm.create(statefulset(2))
    c.run_for(10)
    [rev] = _revisions(adm)
    # HashControllerRevision: FNV-1 of the data's bytes, then of the collision count "0"
    data = history.go_json(rev["data"])
    h = history.safe_encode(str(history.fnv1_32(b"0", history.fnv1_32(data))))
    assert rev["metadata"]["name"] == f"db-{h}"
    assert rev["metadata"]["labels"] == {"app": "db", "controller.kubernetes.io/hash": h}
    assert rev["revision"] == 1
    assert rev["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
    kubernetes_validate.validate(rev, "1.35.0", strict=True)
    assert {p["metadata"]["labels"]["controller-revision-hash"]
            for p in adm.list("pods", "default")["items"]} == {f"db-{h}"}
    st = adm.get("statefulsets", "db", "default")["status"]
    assert st["currentRevision"] == st["updateRevision"] == f"db-{h}"


def test_a_partition_keeps_the_lower_ordinals_on_the_current_revision():
    c = _cluster()
    adm = c.admin()
    adm.create(statefulset(3, updateStrategy={"type": "RollingUpdate",
                                              "rollingUpdate": {"partition": 2}}))
    c.run_for(10)
    first = adm.get("statefulsets", "db", "default")["status"]["currentRevision"]
    _image(c, "1.37")
    c.run_for(60)
    st = adm.get("statefulsets", "db", "default")["status"]
    assert st["currentRevision"] == first != st["updateRevision"]
    assert (st["updatedReplicas"], st["currentReplicas"]) == (1, 2)
    pods = {p["metadata"]["name"]: p for p in adm.list("pods", "default")["items"]}
    assert pods["db-2"]["metadata"]["labels"]["controller-revision-hash"] == \
        st["updateRevision"]
    assert pods["db-2"]["spec"]["containers"][0]["image"] == "busybox:1.37"
    # a deleted pod below the partition comes back at the current revision, old template
    adm.delete("pods", "db-0", "default")
    c.run_for(60)
    again = adm.get("pods", "db-0", "default")
    assert again["metadata"]["labels"]["controller-revision-hash"] == first
    assert again["spec"]["containers"][0]["image"] == "busybox:1.36"
    adm.patch("statefulsets", "db", {"spec": {"updateStrategy": {
        "rollingUpdate": {"partition": 0}}}}, "default")
    c.run_for(200)
    st = adm.get("statefulsets", "db", "default")["status"]
    assert st["currentRevision"] == st["updateRevision"] != first
    assert st["currentReplicas"] == st["updatedReplicas"] == 3


def test_on_delete_replaces_only_deleted_pods_and_a_rollback_renumbers():
    c = _cluster()
    adm = c.admin()
    adm.create(statefulset(2, updateStrategy={"type": "OnDelete"}))
    c.run_for(10)
    _image(c, "1.37")
    c.run_for(60)
    images = {p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
              for p in adm.list("pods", "default")["items"]}
    assert images == {"db-0": "busybox:1.36", "db-1": "busybox:1.36"}
    adm.delete("pods", "db-1", "default")
    c.run_for(60)
    assert adm.get("pods", "db-1", "default")["spec"]["containers"][0]["image"] == \
        "busybox:1.37"
    _image(c, "1.36")  # back to the first template: its revision becomes 3
    c.run_for(30)
    assert [r["revision"] for r in _revisions(adm)] == [2, 3]
    st = adm.get("statefulsets", "db", "default")["status"]
    assert st["updateRevision"] == _revisions(adm)[-1]["metadata"]["name"]


def test_revision_history_limit_deletes_revisions_no_pod_runs():
    c = _cluster()
    adm = c.admin()
    adm.create(statefulset(1, revisionHistoryLimit=1))
    c.run_for(10)
    for tag in ("1.37", "1.38", "1.39"):
        _image(c, tag)
        c.run_for(60)
    assert [r["revision"] for r in _revisions(adm)] == [3, 4]
