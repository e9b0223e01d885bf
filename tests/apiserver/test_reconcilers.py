"""The lease endpoint reconciler (k8sbook.apiserver.reconcilers): the kubernetes Service's
endpoints list exactly the live kube-apiservers."""

from __future__ import annotations

import pytest

from k8sbook.apiserver.reconcilers import BASE_KEY, INTERVAL, TTL
from k8sbook.cluster import Cluster

kubernetes_validate = pytest.importorskip("kubernetes_validate")


def endpoints(cluster: Cluster) -> list[str]:
    slice_ = cluster.admin().get("endpointslices", "kubernetes", "default")
    kubernetes_validate.validate(slice_, "1.35.0", strict=True)
    return sorted(a for e in slice_["endpoints"] for a in e["addresses"])


def test_the_endpoints_follow_the_live_apiservers() -> None:
    cluster = Cluster(0, control_plane_nodes=3)
    assert endpoints(cluster) == ["192.168.0.2", "192.168.0.3", "192.168.0.4"]
    keys = [kv.key for kv in cluster.etcd.range(BASE_KEY, BASE_KEY + "\xff").kvs]
    assert keys == [BASE_KEY + ip for ip in ("192.168.0.2", "192.168.0.3", "192.168.0.4")]
    assert all(kv.lease for kv in cluster.etcd.range(BASE_KEY, BASE_KEY + "\xff").kvs)
    cluster.apiservers[1].stop()
    cluster.run_for(INTERVAL)
    assert "192.168.0.3" in endpoints(cluster)  # its key has not expired yet
    cluster.run_for(TTL + INTERVAL)
    assert endpoints(cluster) == ["192.168.0.2", "192.168.0.4"]


def test_one_apiserver_leaves_the_endpoints_alone() -> None:
    cluster = Cluster(0)
    assert cluster.apiserver.endpoint_reconciler is None
    assert cluster.admin().list("endpointslices", "default")["items"] == []


def _endpoints_object(cluster: Cluster) -> dict:
    ep = cluster.admin().get("endpoints", "kubernetes", "default")
    kubernetes_validate.validate(ep, "1.35.0", strict=True)
    return ep


def test_the_reconciler_writes_the_endpoints_and_mirrors_them_into_the_slice() -> None:
    """``EndpointsAdapter``: the ``Endpoints`` object first (labelled
    ``endpointslice.kubernetes.io/skip-mirror``, so the mirroring controller leaves it), then
    the EndpointSlice made from it (labelled ``kubernetes.io/service-name``)."""
    cluster = Cluster(0, control_plane_nodes=3)
    ep = _endpoints_object(cluster)
    assert ep["metadata"]["labels"] == {"endpointslice.kubernetes.io/skip-mirror": "true"}
    assert ep["subsets"] == [{"addresses": [{"ip": "192.168.0.2"}, {"ip": "192.168.0.3"},
                                            {"ip": "192.168.0.4"}],
                              "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}]
    slice_ = cluster.admin().get("endpointslices", "kubernetes", "default")
    assert slice_["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
    assert slice_["ports"] == [{"name": "https", "port": 6443, "protocol": "TCP"}]
    assert int(ep["metadata"]["resourceVersion"]) < int(slice_["metadata"]["resourceVersion"])
    cluster.apiservers[1].stop()
    cluster.run_for(TTL + 2 * INTERVAL)
    assert [a["ip"] for a in _endpoints_object(cluster)["subsets"][0]["addresses"]] == [
        "192.168.0.2", "192.168.0.4"]
    assert endpoints(cluster) == ["192.168.0.2", "192.168.0.4"]


def test_a_steady_round_writes_nothing() -> None:
    cluster = Cluster(0, control_plane_nodes=3)
    cluster.run_for(INTERVAL)
    before = {kind: cluster.admin().get(kind, "kubernetes", "default")["metadata"][
        "resourceVersion"] for kind in ("endpoints", "endpointslices")}
    cluster.run_for(3 * INTERVAL)
    after = {kind: cluster.admin().get(kind, "kubernetes", "default")["metadata"][
        "resourceVersion"] for kind in ("endpoints", "endpointslices")}
    assert before == after
