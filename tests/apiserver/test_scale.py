"""The ``/scale`` subresource (``pkg/registry/apps/deployment/storage`` ``ScaleREST``)."""

import pytest

from k8sbook.api.request import Request
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from tests.helpers import snapshot


def deployment(name: str = "web", replicas: int = 2) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}


def scale_req(verb: str, body=None, content_type="application/json", **params) -> Request:
    return Request(verb, "deployments", "apps", "default", "web", "scale", body=body,
                   params=params, content_type=content_type)


def test_get_patch_and_update_scale():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    created = admin.create(deployment())
    scale = admin.request(scale_req("get"))
    assert scale == {"kind": "Scale", "apiVersion": "autoscaling/v1",
                     "metadata": {"name": "web", "namespace": "default",
                                  "uid": created["metadata"]["uid"],
                                  "resourceVersion": created["metadata"]["resourceVersion"],
                                  "creationTimestamp": created["metadata"]["creationTimestamp"]},
                     "spec": {"replicas": 2}, "status": {"replicas": 0, "selector": "app=web"}}
    out = admin.request(scale_req("patch", {"spec": {"replicas": 5}},
                                  "application/merge-patch+json", fieldManager="kubectl"))
    held = admin.get("deployments", "web", "default")
    assert out["spec"]["replicas"] == held["spec"]["replicas"] == 5
    assert held["metadata"]["generation"] == 2
    entry = [e for e in held["metadata"]["managedFields"] if e.get("subresource") == "scale"]
    assert entry == [{"apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                      "fieldsV1": {"f:spec": {"f:replicas": {}}}, "manager": "kubectl",
                      "operation": "Update", "subresource": "scale",
                      "time": cluster.clock.timestamp()}]
    out["spec"]["replicas"] = 1
    assert admin.request(scale_req("update", out))["spec"]["replicas"] == 1


def test_scale_refusals_leave_the_store_unchanged():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    admin.create(deployment())
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        admin.request(scale_req("patch", {"spec": {"replicas": -1}},
                                "application/merge-patch+json"))
    assert (err.value.code, err.value.status["message"]) == (
        422, ('Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: must be '
             'greater than or equal to 0'))
    stale = admin.request(scale_req("get"))
    stale["metadata"]["resourceVersion"] = "1"
    with pytest.raises(StatusError) as err:
        admin.request(scale_req("update", stale))
    assert err.value.code == 409
    with pytest.raises(StatusError) as err:
        admin.request(Request("get", "deployments", "apps", "default", "nope", "scale"))
    assert err.value.status["message"] == 'deployments.apps "nope" not found'
    assert snapshot(cluster) == before


def test_replicasets_scale_too():
    admin = Cluster(seed=1).admin()
    admin.create({**deployment("rs", 1), "kind": "ReplicaSet"})
    out = admin.request(Request("patch", "replicasets", "apps", "default", "rs", "scale",
                                body={"spec": {"replicas": 3}},
                                content_type="application/merge-patch+json"))
    assert out["spec"]["replicas"] == 3
