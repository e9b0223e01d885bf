"""The aggregation layer, metrics-server and the kubelet's /metrics/resource (chapter 12)."""

from __future__ import annotations

import pytest

from k8sbook.addons.metrics_server import (
    GROUP,
    cpu_quantity,
    go_duration,
    memory_quantity,
    parse_resource_metrics,
)
from k8sbook.api.request import Request
from k8sbook.apiserver.aggregator import FRONT_PROXY_CA, PROXY_CLIENT_CERT, apiservice
from k8sbook.apiserver.authentication import BearerToken, ClientCertificate
from k8sbook.apiserver.server import LOOPBACK_USER
from k8sbook.core.status import StatusError
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
    kubelet_server = cluster.components["kubelet/node-a"].server
    code, _ = kubelet_server.handle("GET", "/metrics/resource", BearerToken("forged"), {})
    assert code == 401
    other = cluster.service_account_client("pod/x", "default", "nosy")
    code, body = kubelet_server.handle("GET", "/metrics/resource", other.credentials, {})
    assert code == 403 and "subresource=metrics" in body["message"]
    code, body = kubelet_server.handle("GET", "/metrics/resource", server.token, {})
    assert code == 200
    parsed = parse_resource_metrics(body["text"])
    assert sorted(parsed) == [("default", "api", "app"), ("default", "web", "app")]
    assert "# TYPE container_cpu_usage_seconds_total counter" in body["text"]


def test_token_review_rejects_an_empty_token() -> None:
    cluster, server, _ = build()
    with pytest.raises(StatusError) as err:
        cluster.admin().create({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                "spec": {"token": ""}})
    assert err.value.code == 400
    assert err.value.status["message"] == "token is required for TokenReview in authentication"
    ok = cluster.admin().create({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                 "spec": {"token": server.token.token}})
    assert ok["status"]["authenticated"] is True
    assert ok["status"]["user"]["username"] == "system:serviceaccount:kube-system:metrics-server"


def test_quantities_and_durations() -> None:
    assert cpu_quantity(250_000_000) == "250m"
    assert cpu_quantity(1_000_000_000) == "1"
    assert cpu_quantity(1_500_000_000) == "1500m"
    assert cpu_quantity(1234) == "1234n"
    assert memory_quantity(64 * 2**20) == "64Mi"
    assert memory_quantity(1536 * 2**10) == "1536Ki"
    assert memory_quantity(1000) == "1000"
    assert go_duration(15) == "15s" and go_duration(60) == "1m0s"
