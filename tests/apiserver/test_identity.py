"""kube-apiserver identity Leases (k8sbook.apiserver.identity) in a three-node control plane."""

from __future__ import annotations

import re

import pytest

from k8sbook.apiserver.identity import IDENTITY_LABEL, LEASE_DURATION_SECONDS, apiserver_id
from k8sbook.cluster import Cluster

kubernetes_validate = pytest.importorskip("kubernetes_validate")


def test_the_id_is_a_base32_hash_of_the_hostname() -> None:
    ids = {apiserver_id(h) for h in ("cp-1", "cp-2", "cp-3")}
    assert len(ids) == 3
    assert all(re.fullmatch(r"apiserver-[a-z2-7]{26}", i) for i in ids)
    assert apiserver_id("cp-1") == apiserver_id("cp-1")


def test_each_apiserver_keeps_its_lease_renewed_and_the_dead_ones_are_collected() -> None:
    cluster = Cluster(0, control_plane_nodes=3)
    admin = cluster.admin()
    leases = admin.list("leases", "kube-system", labelSelector=f"{IDENTITY_LABEL}=kube-apiserver")
    items = leases["items"]
    assert sorted(lease["metadata"]["name"] for lease in items) == sorted(
        apiserver_id(h) for h in ("cp-1", "cp-2", "cp-3"))
    for lease in items:
        kubernetes_validate.validate(lease, "1.35.0", strict=True)
        name = lease["metadata"]["name"]
        assert lease["spec"]["holderIdentity"].startswith(name + "_")
        assert lease["spec"]["leaseDurationSeconds"] == LEASE_DURATION_SECONDS
    dead = cluster.apiservers[2]
    dead.stop()
    cluster.run_for(20)
    renewed = {lease["metadata"]["labels"]["kubernetes.io/hostname"]: lease["spec"]["renewTime"]
               for lease in admin.list("leases", "kube-system")["items"]
               if IDENTITY_LABEL in lease["metadata"].get("labels", {})}
    assert renewed["cp-3"] < renewed["cp-1"] == renewed["cp-2"]
    identity = cluster.apiservers[0].identity
    assert identity is not None
    assert identity.collect() == []  # cp-3's lease is stale but not expired (3600 s)
    stale = admin.get("leases", apiserver_id("cp-3"), "kube-system")
    stale["spec"]["leaseDurationSeconds"] = 5  # as if an hour had passed
    admin.update(stale)
    assert identity.collect() == [apiserver_id("cp-3")]
    names = {lease["metadata"]["name"] for lease in admin.list("leases", "kube-system")["items"]}
    assert apiserver_id("cp-3") not in names and apiserver_id("cp-1") in names
