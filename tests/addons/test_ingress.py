"""The ingress controller: matching, class filtering, validation, proxying."""

from __future__ import annotations

import pytest

from k8sbook.addons import ingress as king
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import networking as net
from k8sbook.textbook.scenarios import run
from tests.helpers import ready_pod

kubernetes_validate = pytest.importorskip("kubernetes_validate")


# -- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rule,host,ok", [
    ("foo.bar.com", "foo.bar.com", True), ("foo.bar.com", "bar.foo.com", False),
    ("*.foo.com", "bar.foo.com", True), ("*.foo.com", "baz.bar.foo.com", False),
    ("*.foo.com", "foo.com", False), ("", "anything.example", True),
    ("foo.bar.com", "foo.bar.com:8080", True)])
def test_host_matching(rule, host, ok):
    assert king.host_matches(rule, host) is ok


# the examples table of https://kubernetes.io/docs/concepts/services-networking/ingress/
@pytest.mark.parametrize("ptype,path,request_path,ok", [
    ("Prefix", "/", "/anything", True), ("Exact", "/foo", "/foo", True),
    ("Exact", "/foo", "/bar", False), ("Exact", "/foo", "/foo/", False),
    ("Exact", "/foo/", "/foo", False), ("Prefix", "/foo", "/foo", True),
    ("Prefix", "/foo", "/foo/", True), ("Prefix", "/foo/", "/foo", True),
    ("Prefix", "/aaa/bb", "/aaa/bbb", False), ("Prefix", "/aaa/bbb", "/aaa/bbb", True),
    ("Prefix", "/aaa/bbb/", "/aaa/bbb", True), ("Prefix", "/aaa/bbb", "/aaa/bbb/", True),
    ("Prefix", "/aaa/bbb", "/aaa/bbb/ccc", True), ("Prefix", "/aaa/bbb", "/aaa/bbbxyz", False),
])
def test_path_matching(ptype, path, request_path, ok):
    assert king.path_matches(ptype, path, request_path) is ok


def test_longest_match_then_exact_wins():
    ing = {"metadata": {"name": "i", "namespace": "default"}, "spec": {"rules": [{"http": {
        "paths": [{"path": "/", "pathType": "Prefix", "backend": net.backend("a", 80)},
                  {"path": "/aaa", "pathType": "Prefix", "backend": net.backend("b", 80)},
                  {"path": "/aaa/bbb", "pathType": "Prefix", "backend": net.backend("c", 80)},
                  {"path": "/aaa/bbb", "pathType": "Exact", "backend": net.backend("d", 80)},
                  ]}}]}}
    pick = lambda p: king.match([ing], "x", p).backend["service"]["name"]
    assert [pick("/"), pick("/aaa/ccc"), pick("/aaa/bbb/ccc"), pick("/aaa/bbb")] == \
        ["a", "b", "c", "d"]


def test_invalid_path_type_is_422_and_store_unchanged():
    cluster = Cluster(2)
    admin = cluster.admin()
    before = admin.list("ingresses", "default")
    with pytest.raises(StatusError) as err:
        admin.create(net.bad_ingress())
    assert err.value.code == 422 and err.value.reason == "Invalid"
    assert err.value.status["details"]["causes"] == [{
        "reason": "FieldValueNotSupported",
        "message": 'Unsupported value: "Regex": supported values: "Exact", '
                   '"ImplementationSpecific", "Prefix"',
        "field": "spec.rules[0].http.paths[0].pathType"}]
    missing = net.shop_ingress()
    del missing["spec"]["rules"][0]["http"]["paths"][0]["pathType"]
    with pytest.raises(StatusError) as err:
        admin.create(missing)
    assert err.value.status["details"]["causes"][0]["message"] == \
        "Required value: pathType must be specified"
    after = admin.list("ingresses", "default")
    assert after["items"] == before["items"] == []
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_ingress_scenario():
    r = run("ingress")
    f = r.facts
    by_req = {x["request"]: x for x in f["results"]}
    assert by_req["http://shop.example.com/api/orders"]["service"] == "default/api:http"
    assert by_req["http://shop.example.com/apiary"]["service"] == "default/web:http"
    assert by_req["http://shop.example.com/api/health"]["rule"].endswith("Exact /api/health")
    assert by_req["http://shop.example.com/api/health/"]["rule"].endswith("Prefix /api")
    assert by_req["https://shop.example.com/api"]["certificate"] == "secret default/shop-tls"
    assert by_req["http://docs.example.com/guide"]["status"] == 503  # docs has no pods
    assert by_req["http://a.b.example.com/guide"]["rule"] == "(default backend)"
    assert by_req["http://example.com/"]["status"] == 200  # fallback's defaultBackend
    assert f["rejected"]["code"] == 422 and f["stored_ingresses"] == ["fallback", "shop"]
    assert f["etcd_revision_after_bad"] == f["etcd_revision_before_bad"]
    assert f["shop_status"] == {"loadBalancer": {"ingress": [{"ip": "192.168.0.10"}]}}
    assert f["controller_resources"] == ["endpointslices", "ingressclasses", "ingresses",
                                         "secrets", "services"]
    pod_ips = {m.dst for m in r.messages if m.path == "ingress-controller->pod"}
    assert pod_ips and all(d.startswith("pod/") for d in pod_ips)
    assert "kube-proxy" not in {m.src for m in r.messages if m.path.endswith("->pod")}
    # the answer is the pod's own (its hostname), relayed with its status
    for x in f["results"]:
        if x["status"] == 200:
            assert x["body"] == x["pod"] and x["upstream_status"] == ["200"]
    client_hops = [m for m in r.messages if m.path == "client->ingress-controller"]
    assert len(client_hops) == len(f["results"]) + len(f["failures"])
    by_case = {}
    for x in f["failures"]:
        by_case.setdefault(x["case"], []).append(x)
    [both_refuse] = by_case["both refuse"]
    assert both_refuse["status"] == 502 and both_refuse["upstream_status"] == ["502", "502"]
    [slow] = by_case["both answer after 75 s"]
    assert slow["status"] == 504 and slow["upstream_status"] == ["504", "504"]
    assert 75 > f["timeouts"]["proxy-read-timeout"]
    one = [x for k, v in by_case.items() if k.endswith(" refuses") for x in v]
    assert [x["upstream_status"] for x in one] in ([["200"], ["502", "200"]],
                                                   [["502", "200"], ["200"]])
    assert all(x["status"] == 200 for x in one)
    relayed = by_case["web-0's application answers 503"]
    assert {(x["status"], x["body"]) for x in relayed} == {(503, "web-0"), (200, "web-1")}


# -- proxying --------------------------------------------------------------------------------
class _App:
    """An application on the fabric with a switchable answer."""

    def __init__(self, network, ip, name):
        self.status = 200
        self.address = Address.tcp(ip, 8080)
        network.listen(self.address, f"pod/{name}",
                       lambda req: HTTPResponse(self.status, name), protocol="HTTP")


@pytest.fixture
def proxying():
    cluster = Cluster(8)
    net.start_endpointslices(cluster)
    admin = cluster.admin()
    king.install(admin)
    ctrl = cluster.add_ingress_controller(address="192.168.0.10")
    admin.create(net.service("web", selector={"app": "web"},
                             ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    ready_pod(admin, "web-0", "10.244.0.2", labels={"app": "web"})
    app = _App(cluster.network, "10.244.0.2", "web-0")
    admin.create(net.fallback_ingress())
    cluster.settle(3)
    return cluster, ctrl, app


def _get(cluster, port=80, host="shop.example.com"):
    return cluster.network.dial("client", Address.tcp("192.168.0.10", port),
                                HTTPRequest("GET", "/", (("Host", host),)), protocol="HTTP",
                                verb="GET", resource=host, result=lambda r: r.result())


def test_ingress_relays_the_pods_answer(proxying):
    cluster, ctrl, app = proxying
    assert (_get(cluster).status, _get(cluster).body) == (200, "web-0")
    app.status = 503  # the application fails; its endpoint is still ready
    assert _get(cluster).status == 503 and ctrl.log[-1].upstream_status == ["503"]
    assert _get(cluster, 443).status == 503  # the https listener too


def test_ingress_closed_port_is_502(proxying):
    cluster, ctrl, app = proxying
    cluster.network.close(app.address)
    resp = _get(cluster)
    assert resp.status == 502 and ctrl.log[-1].upstream_status == ["502"]
    msgs = [m for m in cluster.trace.messages if m.path == "ingress-controller->pod"]
    assert msgs[-1].result == "connection refused"


def test_ingress_slow_or_dropped_upstream_is_504(proxying):
    cluster, ctrl, app = proxying
    cluster.network.set_latency(app.address, ctrl.proxy_read_timeout - 1)
    assert _get(cluster).status == 200  # slow, but within proxy-read-timeout
    cluster.network.set_latency(app.address, ctrl.proxy_read_timeout)
    assert _get(cluster).status == 504
    cluster.network.set_latency(app.address, 0)
    cluster.network.drop(app.address)  # no SYN-ACK: proxy-connect-timeout
    assert _get(cluster).status == 504


def test_ingress_no_ready_endpoint_is_503(proxying):
    cluster, ctrl, _ = proxying
    pod = cluster.admin().get("pods", "web-0", "default")
    pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    cluster.admin().update_status(pod)
    cluster.settle(2)
    resp = _get(cluster)
    assert resp.status == 503 and ctrl.log[-1].upstream_status == []
    assert not [m for m in cluster.trace.messages if m.path == "ingress-controller->pod"
                and m.t >= cluster.clock.now()]
    ctrl.stop()
    with pytest.raises(DialError):
        _get(cluster)


def test_ingress_class_filtering():
    cluster = Cluster(4)
    king.install(cluster.admin())
    ctrl = cluster.add_ingress_controller(address="192.168.0.10")
    cluster.settle(1)
    other = net.fallback_ingress()
    other["spec"]["ingressClassName"] = "other"
    unset = net.fallback_ingress()
    unset["metadata"]["name"] = "unset"
    del unset["spec"]["ingressClassName"]
    cluster.admin().create(other)
    cluster.admin().create(unset)
    cluster.settle(1)
    assert ctrl.mine() == []  # not our class; no class and ours is not the default


@pytest.mark.parametrize("path,message", [
    ("/a//b", "must not contain '//'"), ("/a/../b", "must not contain '/../'"),
    ("/a%2Fb", "must not contain '%2F'"), ("/a/.", "cannot end with '/.'"),
    ("relative", "must be an absolute path")])
def test_ingress_path_validation(path, message):
    ing = net.fallback_ingress()
    ing["spec"]["rules"] = [{"http": {"paths": [
        {"path": path, "pathType": "Prefix", "backend": net.backend("web", 80)}]}}]
    with pytest.raises(StatusError) as err:
        Cluster(0).admin().create(ing)
    causes = err.value.status["details"]["causes"]
    assert any(c["field"] == "spec.rules[0].http.paths[0].path" and
               c["message"] == f'Invalid value: "{path}": {message}' for c in causes)
