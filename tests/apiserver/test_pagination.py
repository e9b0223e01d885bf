"""``limit`` and ``continue`` (``storage/continue.go``, ``etcd3/store.go`` ``GetList``)."""

import base64
import json

import pytest

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.apiserver import pagination
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError


def page(admin, **params):
    return admin.request(Request("list", "configmaps", "", "default", params=params))


def test_pages_follow_each_other_at_one_revision():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    for name in ("a", "b", "c", "d", "e"):
        admin.create(objects.configmap(name))
    first = page(admin, limit=2)
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 3
    token = first["metadata"]["continue"]
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert raw == {"v": "meta.k8s.io/v1", "rv": int(first["metadata"]["resourceVersion"]),
                   "start": "b\x00"}
    admin.create(objects.configmap("bb"))  # after the first page: not in this list
    second = page(admin, limit=2, **{"continue": token})
    assert [i["metadata"]["name"] for i in second["items"]] == ["c", "d"]
    last = page(admin, limit=2, **{"continue": second["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in last["items"]] == ["e"]
    assert "continue" not in last["metadata"]
    assert last["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


def test_a_compacted_token_is_410_with_a_fresh_token():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    for name in ("a", "b", "c"):
        admin.create(objects.configmap(name))
    token = page(admin, limit=1)["metadata"]["continue"]
    admin.create(objects.configmap("z"))
    cluster.apiserver.compact()
    with pytest.raises(StatusError) as err:
        page(admin, limit=1, **{"continue": token})
    assert (err.value.code, err.value.reason) == (410, "Expired")
    assert err.value.status["message"] == pagination.CONTINUE_EXPIRED
    fresh = err.value.status["metadata"]["continue"]
    assert pagination.decode_continue(fresh, "/registry/configmaps/default/") == (
        "/registry/configmaps/default/a\x00", -1)
    rest = page(admin, **{"continue": fresh})
    assert [i["metadata"]["name"] for i in rest["items"]] == ["b", "c", "z"]


def test_bad_tokens_are_400():
    admin = Cluster(seed=1).admin()
    for token in ("!!!", base64.urlsafe_b64encode(b'{"v":"x","rv":1,"start":"a"}').decode()):
        with pytest.raises(StatusError) as err:
            page(admin, limit=1, **{"continue": token})
        assert err.value.code == 400
    escape = pagination.encode_continue("/registry/configmaps/default/../../secrets/x",
                                        "/registry/configmaps/default/", 5)
    with pytest.raises(StatusError) as err:
        page(admin, **{"continue": escape})
    assert err.value.status["message"].startswith("continue key is not valid")


def test_where_a_limited_list_is_served():
    cluster = Cluster(seed=1)
    admin = cluster.admin()
    for name in ("a", "b", "c"):
        admin.create(objects.configmap(name))
    old = page(admin)["metadata"]["resourceVersion"]
    admin.create(objects.configmap("d"))
    # resourceVersion=0: the watch cache answers, and a limit is ignored (no pagination)
    cached = page(admin, limit=1, resourceVersion="0")
    assert len(cached["items"]) == 4 and "continue" not in cached["metadata"]
    # a limit with a resourceVersion is the legacy exact read: from etcd at that revision
    exact = page(admin, limit=10, resourceVersion=old)
    assert [i["metadata"]["name"] for i in exact["items"]] == ["a", "b", "c"]
    assert exact["metadata"]["resourceVersion"] == old
