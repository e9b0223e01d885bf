"""pods/proxy (kube-apiserver->pod) and TokenRequest + in-cluster clients (pod->kube-apiserver)."""

from __future__ import annotations

import pytest
from kubernetes_validate import validate

from k8sbook.api import objects
from k8sbook.api.request import Request
from k8sbook.apiserver.pod_proxy import PROXY_PROTOCOL, pod_proxy, split_scheme_name_port
from k8sbook.apiserver.token import EXPIRATION_EXTENSION_SECONDS
from k8sbook.client.in_cluster import in_cluster_client
from k8sbook.client.network import Address, DialError, Translation
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.node.token_manager import TOKEN_PATH, mount_service_account_token, token_request
from k8sbook.textbook.scenarios import run
from tests.helpers import status_error


@pytest.fixture
def setup():
    cluster = Cluster(0)
    kubelet = cluster.add_kubelet("node-a").start()
    cluster.run_for(1)
    adm = cluster.admin()
    adm.create({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "reader", "namespace": "default"}})
    adm.create(objects.pod("web", node_name="node-a", serviceAccountName="reader",
                           containers=[objects.container("app", "nginx:1.27", ports=[8080])]))
    adm.create(objects.pod("queued"))
    adm.create(objects.pod("elsewhere", node_name="node-b", serviceAccountName="reader"))
    cluster.run_for(2)
    return cluster, kubelet, adm


_code = status_error


def test_split_scheme_name_port():
    assert split_scheme_name_port("web") == ("", "web", "")
    assert split_scheme_name_port("web:8080") == ("", "web", "8080")
    assert split_scheme_name_port("https:web:8443") == ("https", "web", "8443")
    assert split_scheme_name_port("ftp:web:21") is None
    assert split_scheme_name_port("a:b:c:d") is None


def test_proxy_dials_the_pod_ip_and_relays(setup):
    cluster, kubelet, adm = setup
    assert pod_proxy(adm, "default", "web", "/healthz") == 200
    kubelet.set_app_healthy("default", "web", False)
    assert pod_proxy(adm, "default", "web", "/healthz") == 503
    msgs = cluster.trace.filter(path="kube-apiserver->pod")
    ip = adm.get("pods", "web", "default")["status"]["podIP"]
    assert [m.resource for m in msgs] == [f"http://{ip}:8080/healthz"] * 2
    assert {m.protocol for m in msgs} == {PROXY_PROTOCOL}
    assert not cluster.trace.filter(path="kube-apiserver->kubelet")


def test_proxy_refusals_leave_the_store_unchanged(setup):
    cluster, _, adm = setup
    rev = cluster.apiserver.storage.revision
    assert _code(lambda: pod_proxy(adm, "default", "ghost")) == (404, 'pods "ghost" not found')
    assert _code(lambda: pod_proxy(adm, "default", "queued")) == (400, "address not allowed")
    code, msg = _code(lambda: pod_proxy(adm, "default", "web", port=9090))
    assert code == 503 and msg.startswith("error trying to reach service: dial tcp ")
    code, msg = _code(lambda: pod_proxy(cluster.client("kube-scheduler"), "default", "web"))
    assert code == 403
    assert msg == ('pods "web" is forbidden: User "system:kube-scheduler" cannot get resource '
                   '"pods/proxy" in API group "" in the namespace "default"')
    bad = cluster.admin().send(Request("get", "pods", "", "default", "ftp:web:21", "proxy"))
    assert bad.code == 400
    assert cluster.apiserver.storage.revision == rev


def _process(cluster, kubelet, pod="web"):
    runtime = cluster.components["machine/node-a"].runtime
    return runtime.process(kubelet.container_id("default", pod, "app"))


def _dnat_service_vip(cluster):
    """A stand-in for kube-proxy's rules on node-a: 10.96.0.1:443 -> the apiserver."""
    vip = Address.tcp("10.96.0.1", 443)

    def translate(source_ip, address):
        if address == vip:
            return Translation(cluster.apiserver.address, f"DNAT to {cluster.apiserver.address}")
        return Translation(address)
    cluster.network.set_translator("node-a", translate)


def test_kubelet_mounts_a_token_bound_to_the_pod(setup):
    cluster, kubelet, _ = setup
    (req,) = [m for m in cluster.trace.filter(resource="serviceaccounts/token")
              if m.name == "default/reader"]
    assert (req.src, req.path, req.result) == ("kubelet/node-a", "kubelet->kube-apiserver",
                                               "201")
    process = _process(cluster, kubelet)
    token = process.read_file(TOKEN_PATH)
    claims = cluster.apiserver.tokens.claims(token)
    assert claims["exp"] - claims["iat"] == EXPIRATION_EXTENSION_SECONDS
    assert claims["kubernetes.io"]["warnafter"] - claims["iat"] == 3607
    assert claims["kubernetes.io"]["pod"]["name"] == "web"
    assert claims["kubernetes.io"]["node"]["name"] == "node-a"
    out = mount_service_account_token(kubelet, "default", "web")  # cached: no new request
    validate(out, "1.35.0", strict=True)
    assert out["spec"]["expirationSeconds"] == 3607 and out["status"]["token"] == token
    assert len(cluster.trace.filter(resource="serviceaccounts/token")) == 1


def test_in_cluster_client_uses_the_mounted_token_via_the_service_vip(setup):
    cluster, kubelet, _ = setup
    process = _process(cluster, kubelet)
    client = in_cluster_client(process, network=cluster.network, clock=cluster.clock)
    assert str(client.server) == "10.96.0.1:443"
    with pytest.raises(DialError) as err:  # no kube-proxy rules on node-a: nothing there
        client.list("pods", "default")
    assert str(err.value) == "dial tcp 10.96.0.1:443: connect: connection refused"
    _dnat_service_vip(cluster)
    user = cluster.apiserver.authn.authenticate(client.credentials)
    assert user.name == "system:serviceaccount:default:reader"
    assert dict(user.extra)["authentication.kubernetes.io/pod-name"] == "web"
    with pytest.raises(StatusError) as serr:
        client.list("secrets", "default")
    assert serr.value.code == 403
    msgs = cluster.trace.filter(src="pod/default/web")
    assert [m.path for m in msgs] == ["pod->10.96.0.1:443", "pod->kube-apiserver"]
    assert msgs[-1].result.startswith("DNAT to 192.168.0.2:6443")


def test_token_request_refusals_leave_the_store_unchanged(setup):
    cluster, kubelet, adm = setup
    rev = cluster.apiserver.storage.revision
    tokens = dict(cluster.apiserver.authn.tokens)
    other = token_request(adm.get("pods", "elsewhere", "default"))
    code, msg = _code(lambda: kubelet.client.request(Request(
        "create", "serviceaccounts", "", "default", "reader", "token", body=other)))
    assert (code, msg) == (403, ('serviceaccounts "reader" is forbidden: node requested token '
                                 "bound to a pod scheduled on a different node"))
    # a ServiceAccount no pod on node-a uses: the Node authorizer has no path to it
    mine = token_request(adm.get("pods", "web", "default"))
    code, msg = _code(lambda: kubelet.client.request(Request(
        "create", "serviceaccounts", "", "default", "default", "token", body=mine)))
    assert code == 403 and msg.endswith("no relationship found between node 'node-a' and this "
                                        "object")
    # unbound tokens are refused to nodes
    unbound = {**mine, "spec": {"expirationSeconds": 3607}}
    code, msg = _code(lambda: kubelet.client.request(Request(
        "create", "serviceaccounts", "", "default", "reader", "token", body=unbound)))
    assert (code, msg) == (403, ('serviceaccounts "reader" is forbidden: node requested token '
                                 "not bound to a pod"))
    # too short, wrong uid, missing ServiceAccount (admin, so admission does not refuse)
    short = {**mine, "spec": {**mine["spec"], "expirationSeconds": 60}}
    assert _code(lambda: adm.request(Request("create", "serviceaccounts", "", "default",
                                             "reader", "token", body=short)))[0] == 422
    stale = {**mine, "spec": {**mine["spec"], "boundObjectRef": {
        **mine["spec"]["boundObjectRef"], "uid": "00000000-0000-4000-8000-000000000000"}}}
    assert _code(lambda: adm.request(Request("create", "serviceaccounts", "", "default",
                                             "reader", "token", body=stale)))[0] == 409
    assert _code(lambda: adm.request(Request("create", "serviceaccounts", "", "default",
                                             "nobody", "token", body={**mine, "metadata": {}})))[0] == 404
    assert _code(lambda: adm.request(Request("create", "serviceaccounts", "", "default",
                                             "nobody", "token", body=mine)))[0] == 422
    assert _code(lambda: adm.request(Request("get", "serviceaccounts", "", "default",
                                             "reader", "token")))[0] == 405
    assert cluster.apiserver.storage.revision == rev
    assert cluster.apiserver.authn.tokens == tokens


def test_no_token_no_in_cluster_client(setup):
    cluster, kubelet, adm = setup
    pod = objects.pod("opted-out", node_name="node-a", serviceAccountName="reader",
                      containers=[objects.container("app", "nginx:1.27")])
    pod["spec"]["automountServiceAccountToken"] = False
    before = len(cluster.trace.filter(resource="serviceaccounts/token"))
    adm.create(pod)
    cluster.run_for(2)
    assert len(cluster.trace.filter(resource="serviceaccounts/token")) == before
    with pytest.raises(FileNotFoundError):
        in_cluster_client(_process(cluster, kubelet, "opted-out"), network=cluster.network,
                          clock=cluster.clock)


def test_scenarios_use_their_paths():
    assert run("node-apiserver-to-pod").paths() == [
        "kube-apiserver->pod", "kube-scheduler->kube-apiserver", "kubectl->kube-apiserver"]
    result = run("node-pod-to-apiserver")
    assert result.facts["route"]["verdict"] == "DNAT 192.168.0.2:6443"
    assert result.facts["token_request"]["path"] == "kubelet->kube-apiserver"
    # the pod's dial to 10.96.0.1:443 reaches the apiserver only through kube-proxy's rules
    # on node-a (installed as the network's translator); without them it is refused
    if isinstance(result.facts["listed_pods"], str):
        assert result.facts["listed_pods"].endswith("connect: connection refused")
        assert result.paths() == ["kubelet->kube-apiserver", "pod->10.96.0.1:443"]
    else:
        assert result.paths() == ["kubelet->kube-apiserver", "pod->kube-apiserver"]


def test_https_scheme_is_encrypted_but_unverified(setup):
    cluster, _, adm = setup
    assert adm.send(Request("get", "pods", "", "default", "https:web:8080", "proxy")).code == 200
    (msg,) = cluster.trace.filter(path="kube-apiserver->pod")
    assert msg.resource.startswith("https://") and "no certificate check" in msg.protocol
