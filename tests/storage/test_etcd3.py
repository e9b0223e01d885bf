"""The apiserver's storage layer (storage/etcd3.py): the client port speaks mutual TLS."""

from __future__ import annotations

import pytest

from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.storage.etcd3 import ETCD_ADDRESS, ETCD_CA, Storage
from tests.helpers import snapshot


def test_the_apiserver_presents_the_etcd_ca_s_client_certificate() -> None:
    cluster = Cluster(0)
    assert cluster.apiserver.storage.certificate == ETCD_CA
    listener = cluster.network.listener(ETCD_ADDRESS)
    assert listener is not None and listener.client_ca == ETCD_CA
    assert cluster.admin().get("namespaces", "default")["metadata"]["name"] == "default"


@pytest.mark.parametrize(("issuer", "alert"), [
    ("kubernetes", "remote error: tls: unknown certificate authority"),
    (None, "remote error: tls: certificate required")])
def test_a_client_without_an_etcd_ca_certificate_fails_the_handshake(
        issuer: str | None, alert: str) -> None:
    cluster = Cluster(0)
    before = snapshot(cluster)
    impostor = Storage(cluster.network, cluster.clock, client="kube-apiserver",
                       certificate=issuer)
    mark = cluster.trace.mark()
    with pytest.raises(StatusError) as err:
        impostor.create("/registry/configmaps/default/x", {"metadata": {"name": "x"}})
    assert err.value.code == 500
    (msg,) = cluster.trace.since(mark)
    assert (msg.path, msg.result) == ("kube-apiserver->etcd", alert)
    assert snapshot(cluster) == before
