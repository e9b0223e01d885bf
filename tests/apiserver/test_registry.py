"""Per-kind strategy hooks (``k8sbook.apiserver.registry``): status on create, Secret stringData."""

import base64

import kubernetes_validate

from k8sbook.api.request import Request
from k8sbook.apiserver import registry
from k8sbook.cluster import Cluster


def test_status_starts_as_the_go_zero_value():
    assert registry.zero_status("apps/v1", "ReplicaSet") == {"replicas": 0}
    assert registry.zero_status("apps/v1", "Deployment") == {}
    admin = Cluster(seed=1).admin()
    rs = admin.create({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                       "metadata": {"name": "rs", "namespace": "default"},
                       "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
                                    "containers": [{"name": "c", "image": "nginx:1.27"}]}}}})
    assert rs["status"] == {"replicas": 0}
    kubernetes_validate.validate(rs, "1.35.0", strict=True)


def test_string_data_is_merged_into_data_and_dropped():
    admin = Cluster(seed=1).admin()
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": base64.b64encode(b"old").decode(), "keep": "eA=="},
            "stringData": {"a": "new", "b": "two"}}
    made = admin.request(Request("create", "secrets", "", "default", body=body))
    assert "stringData" not in made
    assert {k: base64.b64decode(v) for k, v in made["data"].items()} == {
        "a": b"new", "b": b"two", "keep": b"x"}
    out = admin.patch("secrets", "s", {"stringData": {"c": "3"}}, "default")
    assert base64.b64decode(out["data"]["c"]) == b"3" and "stringData" not in out
