"""managedFields and server-side apply (``managedfields/internal``, structured-merge-diff)."""

import pytest

from k8sbook.api.request import Request
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from tests.helpers import snapshot

APPLY = "application/apply-patch+yaml"


def cm(data: dict, **meta) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default", **meta}, "data": data}


def apply(admin, body, manager, **params):
    return admin.request(Request("patch", "configmaps", "", "default", "c", body=body,
                                 content_type=APPLY,
                                 params={"fieldManager": manager, **params}))


def fields(obj, manager):
    return [e["fieldsV1"] for e in obj["metadata"]["managedFields"] if e["manager"] == manager]


def test_every_write_records_its_manager():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    made = admin.request(Request("create", "configmaps", "", "default", body=cm({"a": "1"}),
                                 params={"fieldManager": "kubectl-create"}))
    assert made["metadata"]["managedFields"] == [{
        "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:a": {}}},
        "manager": "kubectl-create", "operation": "Update", "time": cluster.clock.timestamp()}]
    cluster.clock.run_for(60)
    out = admin.patch("configmaps", "c", {"data": {"b": "2"}}, "default")
    # the in-model client's manager is its component's name (client-go's User-Agent)
    assert fields(out, "kubectl") == [{"f:data": {"f:b": {}}}]
    assert fields(out, "kubectl-create") == [{"f:data": {".": {}, "f:a": {}}}]
    same = admin.patch("configmaps", "c", {"data": {"b": "2"}}, "default")
    assert same["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]


def test_apply_creates_then_conflicts_then_forces():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    made = apply(admin, cm({"a": "1"}), "alice")
    assert made["metadata"]["managedFields"][0]["operation"] == "Apply"
    assert fields(made, "alice") == [{"f:data": {"f:a": {}}}]
    admin.patch("configmaps", "c", {"data": {"a": "2"}}, "default")
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        apply(admin, cm({"a": "3"}), "alice")
    assert err.value.code == 409 and err.value.reason == "Conflict"
    assert err.value.status["message"] == ('Apply failed with 1 conflict: conflict with '
                                           '"kubectl" using v1: .data.a')
    assert err.value.status["details"]["causes"] == [{
        "reason": "FieldManagerConflict", "message": 'conflict with "kubectl" using v1',
        "field": ".data.a"}]
    assert snapshot(cluster) == before
    forced = apply(admin, cm({"a": "3"}), "alice", force=True)
    assert forced["data"] == {"a": "3"}
    assert fields(forced, "kubectl") == []  # it lost its only field, so its entry is gone


def test_apply_prunes_what_it_stopped_setting():
    admin = Cluster(seed=1).admin()
    apply(admin, cm({"a": "1", "b": "2"}), "alice")
    apply(admin, cm({"c": "3"}), "bob")
    out = apply(admin, cm({"a": "1"}), "alice")
    assert out["data"] == {"a": "1", "c": "3"}


def test_apply_needs_a_field_manager_and_its_kind():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        apply(admin, cm({"a": "1"}), "")
    assert (err.value.code, err.value.status["message"]) == (
        422, ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
             'required for apply patch'))
    with pytest.raises(StatusError) as err:
        apply(admin, {**cm({}), "apiVersion": "v2"}, "alice")
    assert err.value.status["message"] == ("Incorrect version specified in apply patch. "
                                           "Specified patch version: v2, expected: v1")
    with pytest.raises(StatusError) as err:
        apply(admin, {**cm({}), "metadata": {"name": "c", "managedFields": []}}, "alice")
    assert err.value.status["message"] == "metadata.managedFields must be nil"
    assert snapshot(cluster) == before


def test_list_map_items_merge_by_key():
    admin = Cluster(seed=1).admin()
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "a", "image": "x:1"}]}}}}
    req = Request("patch", "deployments", "apps", "default", "web", body=dep,
                  content_type=APPLY, params={"fieldManager": "one"})
    admin.request(req)
    side = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y:1"}]}}}}
    out = admin.request(Request("patch", "deployments", "apps", "default", "web", body=side,
                                content_type=APPLY, params={"fieldManager": "two"}))
    names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
    assert names == ["a", "b"]
    two = fields(out, "two")[0]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert two == {'k:{"name":"b"}': {".": {}, "f:image": {}, "f:name": {}}}


def test_undeclared_fields_fail_the_apply_as_upstream_does():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        apply(admin, {**cm({"a": "1"}), "bogus": 1}, "alice")
    # upstream's field manager returns a plain error here: 500 with no reason
    assert (err.value.code, "reason" in err.value.status) == (500, False)
    assert err.value.status["message"] == ("failed to create typed patch object (default/c; "
                                           "/v1, Kind=ConfigMap): .bogus: field not declared "
                                           "in schema")
    assert snapshot(cluster) == before
