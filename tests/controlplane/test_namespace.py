"""The namespace controller (``pkg/controller/namespace``)."""

from __future__ import annotations

import kubernetes_validate

from k8sbook.api import objects
from k8sbook.cluster import Cluster


def _cluster(*controllers: str) -> Cluster:
    c = Cluster(0)
    c.add_controller_manager(controllers=controllers).start()
    c.run_for(3)
    return c


def test_deleting_a_namespace_deletes_its_content_then_the_namespace():
    c = _cluster("namespace")
    adm = c.admin()
    adm.create(objects.namespace("team"))
    adm.create(objects.configmap("settings", "team"))
    adm.create(objects.pod("web", "team"))
    ns = adm.delete("namespaces", "team")
    assert ns["status"]["phase"] == "Terminating" and ns["spec"]["finalizers"] == ["kubernetes"]
    c.run_for(5)
    assert "team" not in [n["metadata"]["name"] for n in adm.list("namespaces")["items"]]
    assert adm.list("configmaps", "team")["items"] == [] and \
        adm.list("pods", "team")["items"] == []
    sent = [(m.verb, m.resource) for m in c.trace.filter(path="kube-controller-manager->"
                                                              "kube-apiserver")
            if m.verb in ("DELETE", "UPDATE")]
    assert ("DELETE", "pods") in sent and ("DELETE", "configmaps") in sent
    assert ("UPDATE", "namespaces/finalize") in sent


def test_content_held_by_a_finalizer_keeps_the_namespace_terminating_with_conditions():
    c = _cluster("namespace")
    adm = c.admin()
    adm.create(objects.namespace("team"))
    cm = objects.configmap("held", "team")
    cm["metadata"]["finalizers"] = ["example.com/hold"]
    adm.create(cm)
    adm.delete("namespaces", "team")
    c.run_for(5)
    ns = adm.get("namespaces", "team")
    conds = {x["type"]: (x["status"], x["reason"], x["message"])
             for x in ns["status"]["conditions"]}
    assert conds["NamespaceContentRemaining"] == (
        "True", "SomeResourcesRemain",
        "Some resources are remaining: configmaps. has 1 resource instances")
    assert conds["NamespaceFinalizersRemaining"] == (
        "True", "SomeFinalizersRemain", ("Some content in the namespace has finalizers "
        "remaining: example.com/hold in 1 resource instances"))
    assert conds["NamespaceDeletionContentFailure"][:2] == ("False", "ContentDeleted")
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    kubernetes_validate.validate(ns, "1.35.0", strict=True)
    adm.patch("configmaps", "held", {"metadata": {"finalizers": None}}, "team")
    c.run_for(20)
    assert "team" not in [n["metadata"]["name"] for n in adm.list("namespaces")["items"]]


def test_a_plain_update_cannot_drop_the_kubernetes_finalizer():
    c = _cluster()
    adm = c.admin()
    ns = adm.create(objects.namespace("team"))
    ns["spec"]["finalizers"] = []
    assert adm.update(ns)["spec"]["finalizers"] == ["kubernetes"]
    ns = adm.delete("namespaces", "team")
    c.run_for(30)  # no namespace controller: it stays Terminating
    assert adm.get("namespaces", "team")["status"]["phase"] == "Terminating"
