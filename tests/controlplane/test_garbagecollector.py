"""The garbage collector (``pkg/controller/garbagecollector``) and the apiserver's deletion
finalizers for ``propagationPolicy`` (``registry/generic/registry/store.go``)."""

from __future__ import annotations

import pytest

from k8sbook.api import objects
from k8sbook.api.resources import RESOURCES
from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers.garbagecollector import deletable_resources
from k8sbook.core.status import StatusError
from tests.helpers import snapshot


@pytest.fixture
def cluster():
    c = Cluster(0)
    c.add_controller_manager(controllers=("replicaset", "garbagecollector")).start()
    c.run_for(3)
    return c


def _names(c: Cluster, resource: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in c.admin().list(resource, "default")["items"])


def _gc(c: Cluster):
    return c.components["kube-controller-manager/cp-1"].controllers["garbagecollector"]


def test_it_watches_every_deletable_resource_but_events(cluster):
    watched = deletable_resources()
    assert "events" not in watched and {"pods", "replicasets", "configmaps"} <= set(watched)
    assert "tokenreviews" not in watched  # create-only: nothing to collect
    assert len(watched) == sum(1 for rt in RESOURCES if {"delete", "list", "watch"} <=
                               set(rt.verbs)) - 1
    opened = {m.resource for m in cluster.trace.filter(verb="WATCH")
              if m.src.startswith("kube-controller-manager")}
    assert opened == set(watched)  # one watch per resource, shared with the RS controller
    assert len(_gc(cluster).informers) == len(watched)


def test_background_deletion_removes_the_dependents_after_the_owner(cluster):
    adm = cluster.admin()
    adm.create(objects.replicaset("web", replicas=2))
    cluster.run_for(2)
    assert len(_names(cluster, "pods")) == 2
    adm.delete("replicasets", "web", "default")
    assert _names(cluster, "replicasets") == []  # the owner goes at once
    cluster.run_for(3)
    assert _names(cluster, "pods") == []
    assert [a for _, a, _ in _gc(cluster).log] == ["delete (Background)"] * 2


def test_foreground_deletion_waits_for_blocking_dependents(cluster):
    adm = cluster.admin()
    adm.create(objects.replicaset("web", replicas=2))
    cluster.run_for(2)
    rs = adm.delete("replicasets", "web", "default", propagationPolicy="Foreground")
    assert rs["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert rs["metadata"]["deletionTimestamp"]
    cluster.run_for(3)
    assert _names(cluster, "pods") == [] and _names(cluster, "replicasets") == []
    actions = [a for _, a, _ in _gc(cluster).log]
    assert actions[-1] == "remove finalizer foregroundDeletion"
    assert actions.count("delete (Background)") == 2


def test_orphan_deletion_keeps_the_dependents_without_the_reference(cluster):
    adm = cluster.admin()
    adm.create(objects.replicaset("web", replicas=2))
    cluster.run_for(2)
    rs = adm.delete("replicasets", "web", "default", propagationPolicy="Orphan")
    assert rs["metadata"]["finalizers"] == ["orphan"]
    cluster.run_for(3)
    assert _names(cluster, "replicasets") == []
    pods = adm.list("pods", "default")["items"]
    assert len(pods) == 2 and not any("ownerReferences" in p["metadata"] for p in pods)


def test_a_dependent_with_one_owner_left_only_loses_the_dangling_reference(cluster):
    adm = cluster.admin()
    a = adm.create(objects.configmap("a"))
    b = adm.create(objects.configmap("b"))
    refs = [{"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"]} for o in (a, b)]
    dep = objects.configmap("dep")
    dep["metadata"]["ownerReferences"] = refs
    adm.create(dep)
    cluster.run_for(1)
    adm.delete("configmaps", "a", "default")
    cluster.run_for(2)
    left = adm.get("configmaps", "dep", "default")["metadata"]["ownerReferences"]
    assert [r["name"] for r in left] == ["b"]
    adm.delete("configmaps", "b", "default")
    cluster.run_for(2)
    assert "dep" not in _names(cluster, "configmaps")


def test_an_owner_that_never_existed_makes_its_dependent_garbage(cluster):
    adm = cluster.admin()
    dep = objects.configmap("dep")
    dep["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap",
                                           "name": "ghost", "uid": "no-such-uid"}]
    adm.create(dep)
    cluster.run_for(2)
    assert "dep" not in _names(cluster, "configmaps")


def test_an_unknown_propagation_policy_is_invalid_and_stores_nothing(cluster):
    adm = cluster.admin()
    adm.create(objects.configmap("a"))
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        adm.delete("configmaps", "a", "default", propagationPolicy="Sideways")
    st = err.value.status
    assert (st["code"], st["reason"]) == (422, "Invalid")
    assert 'propagationPolicy: Unsupported value: "Sideways"' in st["message"]
    assert snapshot(cluster) == before


def test_an_owner_of_a_kind_the_server_does_not_serve_is_not_taken_for_gone(cluster):
    adm = cluster.admin()
    dep = objects.configmap("dep")
    dep["metadata"]["ownerReferences"] = [{"apiVersion": "example.com/v1", "kind": "Widget",
                                           "name": "w", "uid": "some-uid"}]
    adm.create(dep)
    cluster.run_for(2)
    assert "dep" in _names(cluster, "configmaps")
