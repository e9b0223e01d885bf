"""kube-apiserver -> kubelet (apiserver/kubelet_client.py): the pod connect subresources dial
the Node's address on the network."""

from __future__ import annotations

import pytest

from k8sbook.api import objects
from k8sbook.apiserver.kubelet_client import pod_exec, pod_logs
from k8sbook.client.network import Address
from k8sbook.core.status import StatusError
from k8sbook.node.kubelet import KUBELET_PORT
from tests.helpers import node_with_pod, snapshot, status_error


@pytest.fixture
def setup():
    return node_with_pod(80)


_error = status_error


def test_logs_dial_the_hostname_resolved_by_the_network(setup):
    cluster, kubelet, adm = setup
    mark = cluster.trace.mark()
    assert "started" in pod_logs(adm, "default", "web")
    (msg,) = [m for m in cluster.trace.since(mark) if m.path == "kube-apiserver->kubelet"]
    assert (msg.dst, msg.verb, msg.resource, msg.result) == (
        "kubelet/node-a", "GET", "/containerLogs/default/web/app", "200")
    # the Node's first preferred address is its Hostname, which the network resolves
    assert cluster.network.lookup("node-a") == kubelet.address


def test_closed_kubelet_address_is_a_500_and_writes_nothing(setup):
    cluster, kubelet, adm = setup
    before = snapshot(cluster)
    cluster.network.close(Address.tcp(kubelet.address, KUBELET_PORT))
    assert _error(lambda: pod_logs(adm, "default", "web")) == (
        500, ('Get "https://node-a:10250/containerLogs/default/web/app": dial tcp '
             f"{kubelet.address}:10250: connect: connection refused"))
    assert _error(lambda: pod_exec(adm, "default", "web", ["ls"])) == (
        500, ('Post "https://node-a:10250/exec/default/web/app?command=ls": dial tcp '
             f"{kubelet.address}:10250: connect: connection refused"))
    assert snapshot(cluster) == before


def test_isolated_kubelet_is_an_io_timeout(setup):
    cluster, kubelet, adm = setup
    cluster.network.isolate(kubelet.instance)
    assert _error(lambda: pod_logs(adm, "default", "web")) == (
        500, ('Get "https://node-a:10250/containerLogs/default/web/app": dial tcp '
             f"{kubelet.address}:10250: i/o timeout"))


def test_unresolvable_hostname_is_no_such_host(setup):
    cluster, _kubelet, adm = setup
    cluster.network.add_host("node-a", "192.0.2.99")  # stale DNS record: nothing there
    code, message = _error(lambda: pod_logs(adm, "default", "web"))
    assert code == 500 and "dial tcp 192.0.2.99:10250: connect: connection refused" in message
    cluster.apiserver.kubelet_client.preferred_address_types = ("InternalIP",)
    assert "started" in pod_logs(adm, "default", "web")


def test_kubelet_certificate_authority_checks_the_serving_certificate(setup):
    cluster, kubelet, adm = setup
    client = cluster.apiserver.kubelet_client
    client.certificate_authority = "kubernetes"  # the kubelet's certificate is self-signed
    before = snapshot(cluster)
    mark = cluster.trace.mark()
    assert _error(lambda: pod_logs(adm, "default", "web")) == (
        500, ('Get "https://node-a:10250/containerLogs/default/web/app": tls: failed to '
             "verify certificate: x509: certificate signed by unknown authority"))
    (msg,) = [m for m in cluster.trace.since(mark) if m.path == "kube-apiserver->kubelet"]
    assert msg.result == "failed to verify certificate: x509: certificate signed by unknown " \
                         "authority"
    assert snapshot(cluster) == before
    client.certificate_authority = kubelet.server.serving_cert_issuer
    assert "started" in pod_logs(adm, "default", "web")


def test_bad_requests_never_dial(setup):
    cluster, _, adm = setup
    adm.create(objects.pod("queued"))
    mark = cluster.trace.mark()
    assert _error(lambda: pod_logs(adm, "default", "queued")) == (
        400, "pod queued does not have a host assigned")
    assert _error(lambda: pod_logs(adm, "default", "web", "nope")) == (
        400, "container nope is not valid for pod web")
    assert not [m for m in cluster.trace.since(mark) if m.path == "kube-apiserver->kubelet"]


def test_the_exec_url_is_encoded_as_params_encode_and_every_argument_survives(setup):
    """``streamLocation``'s ``params.Encode()``: keys sorted, a key's values in order, each
    escaped as Go's ``QueryEscape`` does; the kubelet decodes the same argv."""
    from k8sbook.api.request import Request
    from k8sbook.apiserver.kubelet_client import stream_query

    _, kubelet, adm = setup
    argv = ["echo", "a b", "x&y=1", "why?", "naïve 東京", "100%", "/etc/hosts"]
    query = stream_query("exec", {"command": argv, "stdin": True, "stdout": True,
                                  "tty": False, "stderr": "true"})
    assert [k for k, _ in query] == ["command"] * 7 + ["error", "input", "output"]
    seen = []
    handle = kubelet.server.handle

    def spy(method, path, *args, **kw):
        seen.append(path)
        return handle(method, path, *args, **kw)
    kubelet.server.handle = spy
    assert pod_exec(adm, "default", "web", argv) == "a b x&y=1 why? naïve 東京 100% /etc/hosts\n"
    assert seen == [("/exec/default/web/app?command=echo&command=a+b&command=x%26y%3D1"
                     "&command=why%3F&command=na%C3%AFve+%E6%9D%B1%E4%BA%AC&command=100%25"
                     "&command=%2Fetc%2Fhosts")]
    # attach has no command; flags only, sorted; no "?" without a query
    resp = adm.request(Request("create", "pods", "", "default", "web", "attach",
                               params={"stdout": True}))
    assert resp["exitCode"] == 0 and seen[-1] == "/attach/default/web/app?output=1"


def _unbind_the_apiservers_kubelet_client(cluster):
    cluster.admin().delete("clusterrolebindings", "kubeadm:apiserver-kubelet-client")
    cluster.run_for(1)


def test_a_kubelet_403_on_logs_is_relayed_as_generic_http_response_checker_makes_it(setup):
    """``pods/log`` streams through ``LocationStreamer`` with
    ``NewGenericHttpResponseChecker(pods/log, name)``: the kubelet's plain-text body is kept
    (with its newline) and ``NewGenericServerResponse`` appends ``( pods/log <name>)``."""
    cluster, _kubelet, adm = setup
    _unbind_the_apiservers_kubelet_client(cluster)
    with pytest.raises(StatusError) as err:
        pod_logs(adm, "default", "web")
    body = ("Forbidden (user=kube-apiserver-kubelet-client, verb=get, resource=nodes, "
            "subresource(s)=[proxy])\n")
    assert err.value.status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": body + " ( pods/log web)", "reason": "Forbidden", "code": 403,
        "details": {"name": "web", "kind": "pods/log"}}


def test_a_kubelet_403_on_exec_is_trimmed_as_the_upgrade_path_trims_it(setup):
    cluster, _kubelet, adm = setup
    _unbind_the_apiservers_kubelet_client(cluster)
    code, message = status_error(lambda: pod_exec(adm, "default", "web", ["true"]))
    assert (code, message) == (403, ("Forbidden (user=kube-apiserver-kubelet-client, "
                                    "verb=create, resource=nodes, subresource(s)=[proxy])"))
