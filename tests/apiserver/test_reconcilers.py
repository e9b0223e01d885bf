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
