"""pods/proxy (apiserver/pod_proxy.py): the apiserver dials the pod IP and relays the pod's
own answer."""

from __future__ import annotations

import pytest

from k8sbook.apiserver.pod_proxy import pod_proxy_get
from k8sbook.client.http import HTTPResponse
from k8sbook.client.network import Address
from k8sbook.core.status import StatusError
from tests.helpers import node_with_pod


@pytest.fixture
def setup():
    cluster, kubelet, adm = node_with_pod(8080)
    return cluster, kubelet, adm, adm.get("pods", "web", "default")["status"]["podIP"]


def test_the_pods_own_body_comes_back(setup):
    _cluster, kubelet, adm, _ip = setup
    assert pod_proxy_get(adm, "default", "web", "/") == HTTPResponse(200, "web")
    kubelet.set_app_healthy("default", "web", False)
    assert pod_proxy_get(adm, "default", "web", "/") == HTTPResponse(503, "web")


def test_whatever_listens_on_the_pod_ip_answers(setup):
    """Nothing but the network decides who answers: replace the listener, the body changes."""
    cluster, _, adm, ip = setup
    cluster.network.close(Address.tcp(ip, 8080))
    cluster.network.listen(Address.tcp(ip, 8080), "pod/web",
                           lambda req: HTTPResponse(418, f"teapot at {req.path}"))
    assert pod_proxy_get(adm, "default", "web", "/brew") == HTTPResponse(418, "teapot at /brew")


def test_closed_pod_port_is_a_503_with_the_dial_error(setup):
    cluster, _, adm, ip = setup
    cluster.network.close(Address.tcp(ip, 8080))
    mark = cluster.trace.mark()
    with pytest.raises(StatusError) as err:
        pod_proxy_get(adm, "default", "web")
    assert err.value.code == 503
    assert err.value.status["message"] == (f"error trying to reach service: dial tcp {ip}:8080: "
                                           "connect: connection refused")
    (msg,) = [m for m in cluster.trace.since(mark) if m.path == "kube-apiserver->pod"]
    assert (msg.dst, msg.result) == ("pod/web", "connection refused")


def test_dropped_pod_ip_is_an_io_timeout(setup):
    cluster, _, adm, ip = setup
    cluster.network.drop(Address.tcp(ip, 8080))
    with pytest.raises(StatusError) as err:
        pod_proxy_get(adm, "default", "web")
    assert err.value.status["message"] == (f"error trying to reach service: dial tcp {ip}:8080: "
                                           "i/o timeout")
