"""The aggregation layer, metrics-server and the kubelet's /metrics/resource (chapter 12)."""

from __future__ import annotations

from typing import Any

import pytest

from k8sbook.addons.metrics_server import (
    GROUP,
    VERSION,
    cpu_quantity,
    go_duration,
    memory_quantity,
    parse_resource_metrics,
)
from k8sbook.api.request import Request
from k8sbook.apiserver.aggregator import FRONT_PROXY_CA, PROXY_CLIENT_CERT, apiservice
from k8sbook.apiserver.authentication import BearerToken, ClientCertificate
from k8sbook.apiserver.server import LOOPBACK_USER
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address
from k8sbook.core.status import StatusError
from k8sbook.node.kubelet import KUBELET_PORT
from k8sbook.textbook import scenarios
from k8sbook.textbook.scenarios.metrics import TOP_PATH, build, kubectl_top_pods
from tests.helpers import snapshot
from tests.k8s_schema import validate


@pytest.fixture(scope="module")
def top() -> scenarios.ScenarioResult:
    return scenarios.run("metrics-kubectl-top")


def _ready():  # type: ignore[no-untyped-def]
    cluster, server, kubelets = build()
    cluster.run_for(server.metric_resolution + 1)
    return cluster, server, kubelets


def test_kubectl_top_pods_shape_and_paths(top: scenarios.ScenarioResult) -> None:
    f = top.facts
    assert f["pods"] == ["api", "idle", "web", "worker"]
    assert f["usage"]["worker"] == {"cpu": "500m", "memory": "128Mi"}
    assert f["usage"]["idle"] == {"cpu": "1m", "memory": "8Mi"}
    item = f["first_item"]
    assert item["kind"] == "PodMetrics" and item["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert set(item) == {"kind", "apiVersion", "metadata", "timestamp", "window", "containers"}
    assert item["window"] == "15s"
    assert f["items_after_first_scrape"] == 0  # a rate needs two samples
    assert f["scrape_times"] == [0.0, 15.0]
    assert f["top_paths"] == ["kube-apiserver->metrics-server", "kubectl->kube-apiserver",
                              "metrics-server->kube-apiserver"]
    assert f["kubelet_reviews"] == ["CREATE subjectaccessreviews", "CREATE tokenreviews"]
    assert f["apiservice"] == {"status": "True", "reason": "Passed"}
    assert f["proxied_to"] == [TOP_PATH]
    assert f["availability_probes"] >= 1
    proxied = [m for m in top.messages if m.path == "kube-apiserver->metrics-server"
               and m.resource == TOP_PATH]
    assert len(proxied) == 2  # the early and the final kubectl top (jane never got there)
    assert {(m.dst, m.result) for m in proxied} == {("metrics-server/metrics-server-0", "200")}
    assert f["endpoint"].endswith(":10250")
    assert set(top.paths()) >= {"metrics-server->kubelet", "metrics-server->kube-apiserver",
                                "kube-apiserver->metrics-server"}


def test_apiservice_validates_and_is_stored_under_its_key() -> None:
    cluster, _, _ = build()
    obj = cluster.admin().get("apiservices", "v1beta1.metrics.k8s.io")
    validate(obj)
    validate(apiservice("metrics.k8s.io", "v1beta1", "kube-system", "metrics-server"))
    keys = [kv.key for kv in cluster.etcd.range("/registry/apiregistration.k8s.io/",
                                                "/registry/apiregistration.k8s.io0").kvs]
    assert keys == ["/registry/apiregistration.k8s.io/apiservices/v1beta1.metrics.k8s.io"]


def test_unauthorized_user_is_rejected_before_the_proxy() -> None:
    cluster, _, _ = _ready()
    before = snapshot(cluster)
    mark = cluster.trace.mark()
    jane = cluster.client("kubectl", ClientCertificate("jane"))
    with pytest.raises(StatusError) as err:
        kubectl_top_pods(jane)
    assert err.value.code == 403 and err.value.reason == "Forbidden"
    assert not [m for m in cluster.trace.since(mark)
                if m.path == "kube-apiserver->metrics-server"]
    assert snapshot(cluster) == before


def test_metrics_server_authorizes_with_a_subject_access_review() -> None:
    cluster, server, _ = _ready()
    before = snapshot(cluster)
    mark = cluster.trace.mark()
    code, body = server.serve("GET", TOP_PATH, PROXY_CLIENT_CERT,
                              {"X-Remote-User": "jane", "X-Remote-Group": ["dev"]}, {})
    assert code == 403 and body["reason"] == "Forbidden"
    assert 'User "jane" cannot list resource "pods" in API group "metrics.k8s.io"' in \
        body["message"]
    sars = [m for m in cluster.trace.since(mark) if m.resource == "subjectaccessreviews"]
    assert [m.path for m in sars] == ["metrics-server->kube-apiserver"]
    # the same request as a user the headers name and RBAC allows
    code, body = server.serve("GET", TOP_PATH, PROXY_CLIENT_CERT,
                              {"X-Remote-User": "kubernetes-admin",
                               "X-Remote-Group": ["kubeadm:cluster-admins"]}, {})
    assert code == 200 and body["kind"] == "PodMetricsList"
    assert snapshot(cluster) == before  # reviews are evaluated, never stored


def test_headers_are_trusted_only_from_the_front_proxy() -> None:
    _, server, _ = _ready()
    headers = {"X-Remote-User": "kubernetes-admin", "X-Remote-Group": ["kubeadm:cluster-admins"]}
    # a cluster-CA certificate: the headers are ignored, the user is the certificate's CN
    code, body = server.serve("GET", TOP_PATH, ClientCertificate("mallory"), headers, {})
    assert code == 403 and 'User "mallory"' in body["message"]
    # a front-proxy-CA certificate with a name not in --requestheader-allowed-names
    code, _ = server.serve("GET", TOP_PATH, ClientCertificate("other", issuer=FRONT_PROXY_CA),
                           headers, {})
    assert code == 401
    code, _ = server.serve("GET", TOP_PATH, BearerToken("nope"), headers, {})
    assert code == 401


def test_unknown_group_is_404_and_unknown_pod_is_not_found() -> None:
    cluster, _, _ = _ready()
    before = snapshot(cluster)
    resp = cluster.apiserver.handle(Request("list", "widgets", "example.com", "default",
                                            user=LOOPBACK_USER))
    assert resp.code == 404 and resp.body["reason"] == "NotFound"
    resp = cluster.apiserver.handle(Request("get", "pods", GROUP, "default", "nope",
                                            user=LOOPBACK_USER))
    assert resp.code == 404 and resp.body["message"] == 'podmetrics.metrics.k8s.io "nope" not found'
    assert snapshot(cluster) == before


def test_server_down_is_503_and_the_apiservice_turns_unavailable() -> None:
    result = scenarios.run("metrics-server-down")
    f = result.facts
    assert f["items_before"] == 4
    assert f["while_dialing"].startswith("503 ServiceUnavailable: the server is currently "
                                         "unable to handle the request")
    assert f["dial_cause"].endswith("connect: connection refused")
    assert f["status"]["details"]["causes"] == [{"reason": "UnexpectedServerResponse",
                                                 "message": "service unavailable"}]
    assert f["apiservice"] == {"status": "False", "reason": "FailedDiscoveryCheck"}
    assert f["proxied_after_down"] == ["connection refused"]
    assert f["probes_after_down"] and \
        all(r == "connection refused" for _, r in f["probes_after_down"])


def test_failed_request_leaves_the_store_unchanged() -> None:
    cluster, server, _ = _ready()
    server.stop()
    before = snapshot(cluster)
    with pytest.raises(StatusError) as err:
        kubectl_top_pods(cluster.admin())
    assert err.value.code == 503
    assert snapshot(cluster) == before


def test_kubelet_metrics_resource_needs_a_valid_token_and_nodes_metrics() -> None:
    cluster, server, _ = _ready()
    address = Address.tcp(cluster.network.lookup("node-a") or "", KUBELET_PORT)

    def get(credentials: Any) -> HTTPResponse:
        resp: HTTPResponse = cluster.network.dial(
            "pod/x", address, HTTPRequest("GET", "/metrics/resource", credentials=credentials),
            protocol="HTTPS", verb="GET", resource="/metrics/resource")
        return resp

    assert get(BearerToken("forged")).status == 401
    other = cluster.service_account_client("pod/x", "default", "nosy")
    resp = get(other.credentials)
    assert resp.status == 403 and "subresource(s)=[metrics]" in resp.body["message"]
    resp = get(server.token)
    assert resp.status == 200
    body = resp.body
    parsed = parse_resource_metrics(body["text"])
    assert sorted(parsed) == [("default", "api", "app"), ("default", "web", "app"),
                              ("kube-system", "metrics-server-0", "metrics-server")]
    assert "# TYPE container_cpu_usage_seconds_total counter" in body["text"]


def test_token_review_rejects_an_empty_token() -> None:
    cluster, server, _ = build()
    with pytest.raises(StatusError) as err:
        cluster.admin().create({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                "spec": {"token": ""}})
    assert err.value.code == 400
    assert err.value.status["message"] == "token is required for TokenReview in authentication"
    ok = cluster.admin().create({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                 "spec": {"token": getattr(server.token, "token", "")}})
    assert ok["status"]["authenticated"] is True
    assert ok["status"]["user"]["username"] == "system:serviceaccount:kube-system:metrics-server"


def test_scrape_dials_each_kubelet_and_records_a_closed_port() -> None:
    cluster, server, kubelets = _ready()
    node = cluster.admin().get("nodes", "node-b")
    address = server.kubelet_address(node)
    internal = next(a["address"] for a in node["status"]["addresses"]
                    if a["type"] == "InternalIP")
    assert address == Address.tcp(internal, KUBELET_PORT)  # InternalIP first, node's port
    mark = cluster.trace.mark()
    cluster.network.close(address)  # node-b's kubelet stops listening
    server.scrape()
    scrapes = {node: code for _, node, code in server.scrapes[-2:]}
    assert scrapes == {"node-a": "200",
                       "node-b": f"dial tcp {address}: connect: connection refused"}
    msgs = [m for m in cluster.trace.since(mark) if m.path == "metrics-server->kubelet"]
    assert [(m.dst, m.result) for m in msgs] == [("kubelet/node-a", "200"),
                                                 ("kubelet/node-b", "connection refused")]
    assert kubelets["node-b"].running  # only its listener is gone


def test_aggregator_dials_the_endpoint_through_the_fabric() -> None:
    cluster, server, _ = _ready()
    cluster.network.isolate(server.instance)
    with pytest.raises(StatusError) as err:
        kubectl_top_pods(cluster.admin())
    assert err.value.code == 503
    assert err.value.status["details"]["causes"][0]["message"] == \
        f"dial tcp {server.address}: i/o timeout"
    cluster.network.rejoin(server.instance)
    assert len(kubectl_top_pods(cluster.admin())["items"]) == 4
    # the Service's endpoint is what the aggregator resolves (not a reference to the server)
    ref = {"namespace": "kube-system", "name": "metrics-server", "port": 443}
    assert cluster.apiserver.aggregator.endpoints(ref) == [server.address]


def test_quantities_and_durations() -> None:
    assert cpu_quantity(250_000_000) == "250m"
    assert cpu_quantity(1_000_000_000) == "1"
    assert cpu_quantity(1_500_000_000) == "1500m"
    assert cpu_quantity(1234) == "1234n"
    assert memory_quantity(64 * 2**20) == "64Mi"
    assert memory_quantity(1536 * 2**10) == "1536Ki"
    assert memory_quantity(1000) == "1000"
    assert go_duration(15) == "15s" and go_duration(60) == "1m0s"


def _verify_with(cluster: Any, bundle: str) -> None:
    """Turn ``insecureSkipTLSVerify`` off and give the APIService ``bundle``."""
    cluster.admin().patch("apiservices", f"{VERSION}.{GROUP}",
                          {"spec": {"insecureSkipTLSVerify": False, "caBundle": bundle}},
                          content_type="application/merge-patch+json")


def test_the_self_signed_serving_certificate_is_why_the_manifest_skips_verification() -> None:
    cluster, server, _ = _ready()
    assert server.serving_ca.startswith("localhost-ca@")
    assert cluster.admin().get("apiservices", f"{VERSION}.{GROUP}")["spec"][
        "insecureSkipTLSVerify"] is True
    assert kubectl_top_pods(cluster.admin())


def test_a_ca_bundle_that_does_not_vouch_for_the_callee_is_a_503() -> None:
    from k8sbook.core import pki

    cluster, server, _ = _ready()
    _verify_with(cluster, pki.bundle("ca"))  # the cluster CA did not sign metrics-server's
    before = len(server.scrapes)
    with pytest.raises(StatusError) as err:
        kubectl_top_pods(cluster.admin())
    assert err.value.code == 503
    assert err.value.status["details"]["causes"] == [
        {"reason": "UnexpectedServerResponse",
         "message": "tls: failed to verify certificate: x509: certificate signed by unknown "
                    "authority"}]
    cluster.run_for(11)  # the availability check fails the same way
    cond = cluster.admin().get("apiservices", f"{VERSION}.{GROUP}")["status"]["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "FailedDiscoveryCheck")
    assert cond["message"].endswith("x509: certificate signed by unknown authority")
    assert len(server.scrapes) >= before  # metrics-server itself keeps working


def test_a_ca_bundle_with_the_callee_s_ca_is_trusted() -> None:
    from k8sbook.core import pki

    cluster, server, _ = _ready()
    _verify_with(cluster, pki.bundle("ca", server.serving_ca))
    assert kubectl_top_pods(cluster.admin())
