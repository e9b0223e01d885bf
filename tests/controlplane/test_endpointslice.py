"""The EndpointSlice controller (pkg/controller/endpointslice): slices, conditions, ports."""

from __future__ import annotations

import pytest

from k8sbook.cluster import Cluster
from k8sbook.controlplane.controllers import endpointslice
from k8sbook.node import kube_proxy as kp
from k8sbook.textbook.scenarios import networking as net
from tests.helpers import ready_pod, slices

kubernetes_validate = pytest.importorskip("kubernetes_validate")


# -- helpers ---------------------------------------------------------------------------------


def _clients(cluster):
    return (cluster.service_account_client("kube-controller-manager", "kube-system",
                                           endpointslice.NAME),
            cluster.client("kube-controller-manager"))


# -- EndpointSlice controller ----------------------------------------------------------------
def test_endpointslice_shape_and_conditions(esc_cluster):
    cluster, _ctrl = esc_cluster
    admin = cluster.admin()
    svc = admin.create(net.service("web", selector={"app": "web"},
                                   ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    ready_pod(admin, "web-1", "10.244.0.3", labels={"app": "web"}, ready=False)
    cluster.settle(1)
    [es] = slices(cluster, "web")
    meta = es["metadata"]
    assert meta["generateName"] == "web-" and meta["name"].startswith("web-")
    assert meta["labels"] == {"kubernetes.io/service-name": "web",
                              "endpointslice.kubernetes.io/managed-by":
                                  "endpointslice-controller.k8s.io"}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                        "uid": svc["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert es["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    conds = {e["targetRef"]["name"]: e["conditions"] for e in es["endpoints"]}
    assert conds == {"web-0": {"ready": True, "serving": True, "terminating": False},
                     "web-1": {"ready": False, "serving": False, "terminating": False}}
    kubernetes_validate.validate(es, "1.35.0", strict=True)
    # the controller writes as its service account
    writes = [m for m in cluster.trace if m.verb == "CREATE" and m.resource == "endpointslices"]
    assert writes and {m.src for m in writes} == {"kube-controller-manager"}


def test_terminating_pod_is_serving_and_terminating(esc_cluster):
    cluster, _ = esc_cluster
    admin = cluster.admin()
    admin.create(net.service("web", selector={"app": "web"},
                             ports=[{"name": "http", "port": 80, "targetPort": 8080}]))
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    admin.delete("pods", "web-0", "default")  # bound to a node: graceful, 30 s
    cluster.settle(1)
    [es] = slices(cluster, "web")
    assert es["endpoints"][0]["conditions"] == {"ready": False, "serving": True,
                                                "terminating": True}


def test_max_endpoints_per_slice():
    cluster = Cluster(1)
    endpointslice.start(*_clients(cluster), max_endpoints_per_slice=2)
    cluster.settle(1)
    admin = cluster.admin()
    admin.create(net.service("web", selector={"app": "web"},
                             ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    for i in range(5):
        ready_pod(admin, f"web-{i}", f"10.244.0.{i + 2}", labels={"app": "web"})
    cluster.settle(1)
    assert sorted(len(s["endpoints"]) for s in slices(cluster, "web")) == [1, 2, 2]
    with pytest.raises(ValueError):
        endpointslice.start(*_clients(Cluster(1)), max_endpoints_per_slice=1001)


def test_default_max_endpoints_is_100():
    assert endpointslice.DEFAULT_MAX_ENDPOINTS_PER_SLICE == 100


def test_named_target_port_missing_excludes_the_endpoint_from_that_port(esc_cluster):
    cluster, _ = esc_cluster
    admin = cluster.admin()
    admin.create(net.service("web", selector={"app": "web"},
                             ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    ready_pod(admin, "good", "10.244.0.2", labels={"app": "web"})
    ready_pod(admin, "odd", "10.244.0.3", labels={"app": "web"}, port_name="web")
    cluster.settle(1)
    by_ports = {tuple(p["name"] for p in s["ports"]): [e["targetRef"]["name"]
                                                       for e in s["endpoints"]]
                for s in slices(cluster, "web")}
    assert by_ports == {("http",): ["good"], (): ["odd"]}
    ports, eps = kp.service_ports(admin.list("services", "default")["items"]), \
        kp.endpoints_by_port(admin.list("endpointslices", "default")["items"])
    assert [str(e) for e in eps[("default/web:http", "TCP")]] == ["10.244.0.2:8080"]
    assert "default/web:http" in [p.spn for p in ports]


def test_selector_matching_nothing_gets_a_placeholder(esc_cluster):
    cluster, _ = esc_cluster
    cluster.admin().create(net.service("ghost", selector={"app": "ghost"},
                                       ports=[{"name": "http", "port": 80}]))
    cluster.settle(1)
    [es] = slices(cluster, "ghost")
    assert es["endpoints"] == [] and es["ports"] == []


def test_service_without_selector_is_left_alone(esc_cluster):
    cluster, _ = esc_cluster
    cluster.admin().create(net.service("manual", selector=None,
                                       ports=[{"name": "http", "port": 80}]))
    cluster.settle(1)
    assert slices(cluster, "manual") == []


# -- kube-proxy rules ------------------------------------------------------------------------
UPSTREAM_PORTS = [kp.ServicePort("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80),
                  kp.ServicePort("ns4", "svc4", "p80", "TCP", "172.30.0.44", 80, 3004),
                  kp.ServicePort("ns6", "svc6", "p80", "TCP", "172.30.0.46", 80)]
UPSTREAM_EPS = {("ns1/svc1:p80", "TCP"): [kp.Endpoint("10.180.0.1", 80, True, True, False)],
                ("ns4/svc4:p80", "TCP"): [kp.Endpoint("10.180.0.4", 80, True, True, False),
                                          kp.Endpoint("10.180.0.5", 80, True, True, False)]}
