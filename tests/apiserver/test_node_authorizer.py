"""Node authorizer + NodeRestriction: a kubelet touches only its own node and pods."""

import pytest

from k8sbook.api import objects
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from tests.helpers import snapshot


@pytest.fixture()
def two_nodes() -> Cluster:
    c = Cluster(0)
    c.add_kubelet("node-a").start()
    c.add_kubelet("node-b").start()
    c.run_for(1)
    adm = c.admin()
    pod = objects.pod("web", node_name="node-a")
    pod["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "web-config"}}]
    adm.create(pod)
    adm.create(objects.configmap("web-config", data={"k": "v"}))
    adm.create(objects.configmap("other", data={"k": "v"}))
    c.run_for(2)
    return c


def refused(fn) -> tuple[int, str]:
    with pytest.raises(StatusError) as err:
        fn()
    return err.value.code, err.value.status["message"]


def test_own_objects_allowed(two_nodes: Cluster):
    ka = two_nodes.client("kubelet/node-a")
    assert ka.get("nodes", "node-a")["metadata"]["name"] == "node-a"
    assert ka.get("pods", "web", "default")
    assert ka.get("configmaps", "web-config", "default")["data"] == {"k": "v"}
    assert ka.get("leases", "node-a", "kube-node-lease")
    items = ka.list("pods", fieldSelector="spec.nodeName=node-a")["items"]
    assert [p["metadata"]["name"] for p in items] == ["web"]


@pytest.mark.parametrize("call, code, message", [
    (lambda k: k.get("pods", "web", "default"), 403,
     'pods "web" is forbidden: User "system:node:node-b" cannot get resource "pods"'),
    (lambda k: k.list("pods"), 403, "can only list/watch pods with spec.nodeName field selector"),
    (lambda k: k.list("pods", fieldSelector="spec.nodeName=node-a"), 403,
     "can only list/watch pods with spec.nodeName field selector"),
    (lambda k: k.get("nodes", "node-a"), 403,
     "node 'node-b' cannot read 'node-a', only its own Node object"),
    (lambda k: k.list("nodes"), 403, "node 'node-b' cannot read all nodes, only its own Node"),
    (lambda k: k.patch("nodes", "node-a", {"metadata": {"labels": {"x": "y"}}}), 403,
     'nodes "node-a" is forbidden: node "node-b" is not allowed to modify node "node-a"'),
    (lambda k: k.patch("nodes", "node-a", {"status": {}}, subresource="status"), 403,
     'node "node-b" is not allowed to modify node "node-a"'),
    (lambda k: k.patch("pods", "web", {"status": {"phase": "Failed"}}, "default",
                       subresource="status"), 403,
     'node "node-b" can only update pod status for pods with spec.nodeName set to itself'),
    (lambda k: k.delete("pods", "web", "default"), 403,
     'node "node-b" can only delete pods with spec.nodeName set to itself'),
    (lambda k: k.create(objects.pod("sneaky", node_name="node-b")), 403,
     'annotation, node "node-b" can only create mirror pods'),
    (lambda k: k.get("configmaps", "web-config", "default"), 403,
     "no relationship found between node 'node-b' and this object"),
    (lambda k: k.get("leases", "node-a", "kube-node-lease"), 403,
     "can only access node lease with the same name as the requesting node"),
    (lambda k: k.list("namespaces"), 403, 'cannot list resource "namespaces"'),
])
def test_other_nodes_objects_refused_and_nothing_written(two_nodes: Cluster, call, code,
                                                         message):
    before = snapshot(two_nodes)
    got_code, got_message = refused(lambda: call(two_nodes.client("kubelet/node-b")))
    assert got_code == code and message in got_message
    assert snapshot(two_nodes) == before


def test_node_cannot_read_unreferenced_configmap_even_on_its_own_node(two_nodes: Cluster):
    ka = two_nodes.client("kubelet/node-a")
    code, _ = refused(lambda: ka.get("configmaps", "other", "default"))
    assert code == 403


def test_restricted_labels(two_nodes: Cluster):
    ka = two_nodes.client("kubelet/node-a")
    code, msg = refused(lambda: ka.patch(
        "nodes", "node-a", {"metadata": {"labels": {"node-restriction.kubernetes.io/x": "1"}}}))
    assert code == 403 and "is not allowed to modify labels: node-restriction.kubernetes.io/x" \
        in msg
    ka.patch("nodes", "node-a", {"metadata": {"labels": {"team": "blue"}}})


def test_subject_access_review_is_evaluated_not_stored(two_nodes: Cluster):
    ka = two_nodes.client("kubelet/node-a")
    sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "metadata": {}, "spec": {"user": "kube-apiserver-kubelet-client",
                                    "resourceAttributes": {"verb": "get", "resource": "nodes",
                                                           "subresource": "proxy",
                                                           "name": "node-a"}}}
    before = snapshot(two_nodes)
    assert ka.create(sar)["status"]["allowed"] is True
    sar["spec"]["user"] = "mallory"
    assert ka.create(sar)["status"]["allowed"] is False
    assert snapshot(two_nodes) == before
