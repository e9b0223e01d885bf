"""``deletecollection`` and what DELETE answers (``registry/generic/registry/store.go``)."""

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.cluster import Cluster


def test_deletecollection_deletes_what_the_selector_lists():
    admin = Cluster(seed=1).admin()
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        cm = objects.configmap(name)
        cm["metadata"]["labels"] = {"tier": tier}
        admin.create(cm)
    out = admin.request(Request("deletecollection", "configmaps", "", "default",
                                params={"labelSelector": "tier=web"}))
    assert out["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in out["items"]] == ["a", "b"]
    left = [i["metadata"]["name"] for i in admin.list("configmaps", "default")["items"]]
    assert "c" in left and "a" not in left and "b" not in left


def test_delete_answers_a_status_or_the_object_as_the_registry_says():
    admin = Cluster(seed=1).admin()
    cm = admin.create(objects.configmap("c"))
    out = admin.delete("configmaps", "c", "default")
    assert out == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                   "details": {"name": "c", "kind": "configmaps",
                               "uid": cm["metadata"]["uid"]}}
    admin.create(objects.pod("p"))
    assert admin.delete("pods", "p", "default")["kind"] == "Pod"  # ReturnDeletedObject


def test_a_pending_delete_asked_with_orphan_dependents_false_is_202():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    cm = objects.configmap("held")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    admin.create(cm)
    resp = cluster.apiserver.handle(Request("delete", "configmaps", "", "default", "held",
                                            params={"orphanDependents": False},
                                            user=cluster.apiserver.authn.authenticate(
                                                admin.credentials)))
    assert resp.code == 202 and resp.body["metadata"]["deletionTimestamp"]
