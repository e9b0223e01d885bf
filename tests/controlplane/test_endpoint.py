"""The Endpoints controller (pkg/controller/endpoint): one object, subsets, the 1000 cap."""

from __future__ import annotations

import pytest

from k8sbook.cluster import Cluster
from k8sbook.controlplane.controller_manager import ALL_CONTROLLERS, CONTROLLERS
from k8sbook.controlplane.controllers import endpoint
from k8sbook.textbook.scenarios import networking as net
from tests.helpers import ready_pod

kubernetes_validate = pytest.importorskip("kubernetes_validate")


@pytest.fixture
def ep_cluster():
    cluster = Cluster(3)
    kcm = cluster.add_controller_manager(controllers=("endpoint",))
    kcm.start()
    cluster.settle(1)
    return cluster, kcm.controllers["endpoint"]


def _service(admin, **kw):
    return admin.create(net.service("web", selector={"app": "web"},
                                    ports=[{"name": "http", "port": 80, "targetPort": "http"}],
                                    **kw))


def test_registered_under_its_alias_with_its_service_account():
    assert CONTROLLERS["endpoint"][0] == "endpoint-controller"
    assert "endpoint" in ALL_CONTROLLERS


def test_one_endpoints_object_ready_and_not_ready(ep_cluster):
    cluster, ctrl = ep_cluster
    admin = cluster.admin()
    svc = _service(admin)
    ready_pod(admin, "web-1", "10.244.0.3", labels={"app": "web"})
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"}, ready=False)
    ready_pod(admin, "other", "10.244.0.9", labels={"app": "db"})
    cluster.settle(1)
    ep = admin.get("endpoints", "web", "default")
    kubernetes_validate.validate(ep, "1.35.0", strict=True)
    assert "ownerReferences" not in ep["metadata"]
    [subset] = ep["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [a["ip"] for a in subset["addresses"]] == ["10.244.0.3"]
    assert [a["targetRef"]["name"] for a in subset["notReadyAddresses"]] == ["web-0"]
    assert subset["addresses"][0]["nodeName"] == "node-a"
    # a new Service: the trigger time is its creation
    assert ep["metadata"]["annotations"] == {
        endpoint.ANNOTATION_TRIGGER_TIME: svc["metadata"]["creationTimestamp"]}
    # written by the controller's own service account
    writes = [m for m in cluster.trace if m.resource == "endpoints" and m.verb == "CREATE"]
    assert [m.result for m in writes] == ["201"]  # RBAC let endpoint-controller write
    assert ctrl.log[-1][2].startswith("create") or ctrl.log[-1][2].startswith("update")


def test_publish_not_ready_addresses_and_headless_label(ep_cluster):
    cluster, _ = ep_cluster
    admin = cluster.admin()
    _service(admin, cluster_ip="None")
    svc = admin.get("services", "web", "default")
    svc["spec"]["publishNotReadyAddresses"] = True
    admin.update(svc)
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"}, ready=False)
    cluster.settle(1)
    ep = admin.get("endpoints", "web", "default")
    assert ep["metadata"]["labels"] == {"service.kubernetes.io/headless": ""}
    assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == ["10.244.0.2"]
    assert "notReadyAddresses" not in ep["subsets"][0]


def test_service_deleted_deletes_its_endpoints(ep_cluster):
    cluster, _ = ep_cluster
    admin = cluster.admin()
    _service(admin)
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    cluster.settle(1)
    assert admin.get("endpoints", "web", "default")
    admin.delete("services", "web", "default")
    cluster.settle(1)
    assert "web" not in {e["metadata"]["name"]
                         for e in admin.list("endpoints", "default")["items"]}


def test_no_selector_means_no_endpoints_from_the_controller(ep_cluster):
    cluster, _ = ep_cluster
    admin = cluster.admin()
    admin.create(net.service("manual", selector=None, ports=[{"port": 80}]))
    cluster.settle(1)
    assert "manual" not in {e["metadata"]["name"]
                            for e in admin.list("endpoints", "default")["items"]}


def _addresses(n, ready):
    return [{"ip": f"10.0.{i // 250}.{i % 250}", "targetRef": {"kind": "Pod", "uid": f"u{i}"}}
            for i in range(n)] if ready else []


def test_truncation_keeps_ready_first_and_proportions():
    subsets = [{"addresses": _addresses(900, True),
                "notReadyAddresses": [{"ip": f"10.9.0.{i}"} for i in range(200)],
                "ports": [{"port": 80}]}]
    assert endpoint.truncate_endpoints(subsets)
    assert len(subsets[0]["addresses"]) == 900
    assert len(subsets[0]["notReadyAddresses"]) == 100
    ready_only = [{"addresses": _addresses(1500, True), "ports": [{"port": 80}]},
                  {"addresses": _addresses(500, True), "ports": [{"port": 81}]}]
    assert endpoint.truncate_endpoints(ready_only)
    assert [len(s["addresses"]) for s in ready_only] == [750, 250]
    assert not endpoint.truncate_endpoints([{"addresses": _addresses(1000, True),
                                             "ports": [{"port": 80}]}])


def test_repack_groups_addresses_by_the_ports_they_offer():
    a = {"ip": "10.0.0.2", "targetRef": {"uid": "a"}}
    b = {"ip": "10.0.0.1", "targetRef": {"uid": "b"}}
    http, dns = {"name": "http", "port": 80, "protocol": "TCP"}, \
        {"name": "dns", "port": 53, "protocol": "UDP"}
    packed = endpoint.repack_subsets([
        {"addresses": [a], "ports": [http]}, {"addresses": [a], "ports": [dns]},
        {"addresses": [b], "ports": [http]}, {"notReadyAddresses": [b], "ports": [dns]}])
    assert packed == [
        {"addresses": [a], "notReadyAddresses": [b], "ports": [dns]},
        {"addresses": [b, a], "ports": [http]}]


def test_over_capacity_annotation_when_more_than_1000_pods(ep_cluster):
    cluster, _ = ep_cluster
    admin = cluster.admin()
    _service(admin)
    for i in range(1002):
        ready_pod(admin, f"web-{i:04d}", f"10.244.{i // 250}.{i % 250 + 2}",
                  labels={"app": "web"})
    cluster.settle(2)
    ep = admin.get("endpoints", "web", "default")
    assert ep["metadata"]["annotations"][endpoint.ANNOTATION_OVER_CAPACITY] == "truncated"
    assert sum(len(s.get("addresses", [])) for s in ep["subsets"]) == 1000
    kubernetes_validate.validate(ep, "1.35.0", strict=True)


def test_headless_service_without_ports_keeps_its_addresses(ep_cluster):
    cluster, _ = ep_cluster
    admin = cluster.admin()
    svc = net.service("web", selector={"app": "web"}, ports=[], cluster_ip="None")
    svc["spec"].pop("ports", None)
    admin.create(svc)
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    ready_pod(admin, "web-1", "10.244.0.3", labels={"app": "web"})
    cluster.settle(1)
    ep = admin.get("endpoints", "web", "default")
    assert [[a["ip"] for a in s["addresses"]] for s in ep["subsets"]] == [
        ["10.244.0.2", "10.244.0.3"]]
    assert "ports" not in ep["subsets"][0]
    kubernetes_validate.validate(ep, "1.35.0", strict=True)
