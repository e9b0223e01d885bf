"""The composition root (k8sbook.cluster): the highly available topology next to the default
one-node control plane."""

from __future__ import annotations

import pytest

from k8sbook.cluster import LOAD_BALANCER, Cluster
from k8sbook.storage.etcd import MemoryEtcd


def test_one_control_plane_node_is_what_it_was() -> None:
    cluster = Cluster(0)
    assert cluster.apiservers == [cluster.apiserver]
    assert cluster.etcd_cluster is None and cluster.load_balancer is None
    assert str(cluster.admin().server) == "192.168.0.2:6443"
    assert cluster.apiserver.instance == "kube-apiserver"


def test_three_control_plane_nodes_stacked_behind_a_load_balancer() -> None:
    cluster = Cluster(0, control_plane_nodes=3)
    assert cluster.etcd_cluster is not None and cluster.etcd_cluster.leader() is not None
    assert [a.instance for a in cluster.apiservers] == [
        "kube-apiserver/cp-1", "kube-apiserver/cp-2", "kube-apiserver/cp-3"]
    assert cluster.admin().server == LOAD_BALANCER
    assert cluster.apiservers[1].storage.endpoints[0] == \
        cluster.etcd_cluster.members["cp-2"].client_address  # its local member first
    pod = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x",
                                                                  "namespace": "default"}}
    cluster.admin().create(pod)
    sa = cluster.service_account_client("coredns/c", "kube-system", "coredns")
    for apiserver in cluster.apiservers:  # each apiserver knows the token
        assert apiserver.authn.authenticate(sa.credentials).name == \
            "system:serviceaccount:kube-system:coredns"


def test_an_etcd_and_several_control_plane_nodes_do_not_mix() -> None:
    with pytest.raises(ValueError, match="runs its own etcd cluster"):
        Cluster(0, etcd=lambda clock: MemoryEtcd(clock), control_plane_nodes=3)
