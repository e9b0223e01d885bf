"""The ReplicaSet controller (``pkg/controller/replicaset``) and the API's checks of
ReplicaSets."""

from __future__ import annotations

import pytest

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import run
from tests.helpers import snapshot


def _status(fn) -> dict:
    with pytest.raises(StatusError) as err:
        fn()
    return err.value.status


def test_replicaset_controller_creates_and_deletes_owned_pods():
    facts = run("controllers-replicaset").facts
    assert len(facts["pods_after_create"]) == 3 and len(facts["pods_after_scale_down"]) == 1
    assert set(facts["pods_after_scale_down"]) < set(facts["pods_after_create"])
    ref = facts["owner_reference"]
    assert (ref["kind"], ref["name"], ref["controller"], ref["blockOwnerDeletion"]) == \
        ("ReplicaSet", "web", True, True)
    assert facts["generate_name"] == "web-"
    assert facts["pod_node"] == [""]  # nobody scheduled them: that is not the controller's job
    assert facts["rs_status"]["replicas"] == 1
    assert facts["rs_status"]["observedGeneration"] == facts["rs_generation"] == 2
    assert [e[1] for e in facts["events"]].count("SuccessfulCreate") == 3
    assert [e[1] for e in facts["events"]].count("SuccessfulDelete") == 2
    assert facts["informer_identity"] == "system:kube-controller-manager"
    assert facts["controller_identity"] == \
        "system:serviceaccount:kube-system:replicaset-controller"


def test_replicaset_is_level_triggered_a_deleted_pod_is_replaced():
    cluster = Cluster(0)
    cluster.add_controller_manager().start()
    cluster.run_for(3)
    admin = cluster.admin()
    admin.create(objects.replicaset("web", replicas=2))
    cluster.run_for(2)
    victim = admin.list("pods", "default")["items"][0]["metadata"]["name"]
    admin.delete("pods", victim, "default")
    cluster.run_for(2)
    names = [p["metadata"]["name"] for p in admin.list("pods", "default")["items"]]
    assert len(names) == 2 and victim not in names


def test_negative_replicas_is_invalid_and_stores_nothing():
    cluster = Cluster(0)
    before = snapshot(cluster)
    rs = objects.replicaset("web", replicas=-1)
    st = _status(lambda: cluster.admin().create(rs))
    assert (st["code"], st["reason"]) == (422, "Invalid")
    assert "spec.replicas" in st["message"] and "must be greater than or equal to 0" in \
        st["message"]
    assert snapshot(cluster) == before


def test_selector_not_matching_template_is_invalid_and_stores_nothing():
    cluster = Cluster(0)
    before = snapshot(cluster)
    rs = objects.replicaset("web")
    rs["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    st = _status(lambda: cluster.admin().create(rs))
    assert (st["code"], st["reason"]) == (422, "Invalid")
    assert "`selector` does not match template `labels`" in st["message"]
    assert snapshot(cluster) == before


def test_pod_from_template_copies_what_the_caller_may_change():
    """``GetPodFromTemplate``: labels, annotations and a deep copy of the spec; changing the
    pod leaves the ReplicaSet (an informer's shared object) as it was."""
    import copy

    from k8sbook.controlplane.controllers import pod_from_template
    rs = objects.replicaset("web", replicas=2)
    rs["metadata"]["uid"] = "rs-uid"
    rs["spec"]["template"]["metadata"]["annotations"] = {"a": "1"}
    before = copy.deepcopy(rs)
    pod = pod_from_template(rs, "apps/v1", "ReplicaSet")
    assert pod["spec"] == rs["spec"]["template"]["spec"]
    assert pod["metadata"]["labels"] == rs["spec"]["template"]["metadata"]["labels"]
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "rs-uid"
    pod["spec"]["containers"][0]["image"] = "changed"
    pod["metadata"]["labels"]["x"] = "y"
    pod["metadata"]["annotations"]["a"] = "2"
    assert rs == before
