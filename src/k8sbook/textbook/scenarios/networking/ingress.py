"""Chapter 12, "Ingress": an ingress controller routes by host and path straight to pods.

A client outside the cluster dials the controller's address (:80, :443); the controller
(:class:`k8sbook.addons.ingress.IngressController`) matches the Ingress rules, picks a ready
endpoint of the backend Service from its EndpointSlices, dials the pod and relays its answer.
Both hops go through the network fabric (``client->ingress-controller``,
``ingress-controller->pod``), which records them.
"""

from __future__ import annotations

from typing import Any

from k8sbook.addons import ingress as king
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address
from k8sbook.core.status import StatusError
from k8sbook.textbook.scenarios import ScenarioResult, scenario
from k8sbook.textbook.scenarios.networking.common import (
    NODES,
    Net,
    Obj,
    app_pod,
    pods_ready,
    service,
    start_network,
    wait_until,
)

CH12 = "12-ingress"


def tls_secret(name: str, namespace: str = "default") -> Obj:
    """A ``kubernetes.io/tls`` Secret (the key and certificate are placeholders)."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": "Q0VSVElGSUNBVEU=", "tls.key": "S0VZ"}}


def backend(svc: str, port: int | str) -> Obj:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"service": {"name": svc, "port": ref}}


def shop_ingress() -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "shop", "namespace": "default"},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                     "rules": [
                         {"host": "shop.example.com", "http": {"paths": [
                             {"path": "/", "pathType": "Prefix", "backend": backend("web", 80)},
                             {"path": "/api", "pathType": "Prefix",
                              "backend": backend("api", "http")},
                             {"path": "/api/health", "pathType": "Exact",
                              "backend": backend("web", 80)}]}},
                         {"host": "*.example.com", "http": {"paths": [
                             {"path": "/", "pathType": "Prefix",
                              "backend": backend("docs", 80)}]}}]}}


def fallback_ingress() -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "fallback", "namespace": "default"},
            "spec": {"ingressClassName": "nginx", "defaultBackend": backend("web", 80)}}


def bad_ingress() -> Obj:
    ing = shop_ingress()
    ing["metadata"]["name"] = "bad"
    ing["spec"]["rules"][0]["http"]["paths"][0]["pathType"] = "Regex"
    return ing


REQUESTS = [
    ("http", "shop.example.com", "/"),
    ("http", "shop.example.com", "/cart"),
    ("http", "shop.example.com", "/api/orders"),
    ("http", "shop.example.com", "/apiary"),
    ("http", "shop.example.com", "/api/health"),
    ("http", "shop.example.com", "/api/health/"),
    ("https", "shop.example.com", "/api"),
    ("http", "docs.example.com", "/guide"),
    ("http", "a.b.example.com", "/guide"),
    ("http", "example.com", "/"),
]


def curl(net: Net, controller: king.IngressController, scheme: str, host: str,
         path: str) -> Obj:
    """A client outside the cluster sends ``GET <scheme>://<host><path>`` to the controller's
    address (port 80 or 443); what it got back, and the controller's access-log line."""
    port = king.HTTPS_PORT if scheme == "https" else king.HTTP_PORT
    resp: HTTPResponse = net.cluster.network.dial(
        "client", Address.tcp(controller.address, port),
        HTTPRequest("GET", path, (("Host", host),)), protocol=scheme.upper(), verb="GET",
        resource=f"{scheme}://{host}{path}", result=lambda r: r.result())
    r = controller.log[-1]
    return {"request": f"{scheme}://{host}{path}", "status": resp.status, "body": resp.body,
            "rule": f"{r.match.host or '*'} {r.match.path_type} {r.match.path}"
            if r.match else "(default backend)",
            "service": r.service, "endpoint": r.endpoint, "pod": r.pod,
            "upstream_status": list(r.upstream_status), "certificate": r.certificate}


def upstream_failures(net: Net, controller: king.IngressController) -> list[Obj]:
    """What ingress-nginx answers when the upstream misbehaves (``/api`` has two pods):
    one pod refuses (the next one answers), both refuse (502), both answer after 75 s
    (past ``proxy-read-timeout``: 504), and a pod whose application answers 503 before its
    readiness probe has failed (relayed as is)."""
    network = net.cluster.network
    api = sorted(ep for ep, _ in controller.route("shop.example.com", "/api").endpoints)
    addrs = [Address.tcp(ep.rsplit(":", 1)[0], int(ep.rsplit(":", 1)[1])) for ep in api]
    out = []

    def run(case: str, path: str = "/api/orders") -> None:
        got = curl(net, controller, "http", "shop.example.com", path)
        out.append({"case": case, **{k: got[k] for k in ("status", "body", "endpoint",
                                                         "upstream_status")}})

    network.refuse(addrs[0])
    for _ in range(2):  # round robin: one of the two starts with the refusing pod
        run(f"{api[0]} refuses")
    network.refuse(addrs[1])
    run("both refuse")
    for a in addrs:
        network.refuse(a, False)
        network.set_latency(a, 75.0)
    run("both answer after 75 s")
    for a in addrs:
        network.set_latency(a, 0)
    web0 = net.pod("web-0")
    net.kubelet_of(web0).set_app_healthy("default", "web-0", False)
    for _ in range(2):
        run("web-0's application answers 503", "/")
    net.kubelet_of(web0).set_app_healthy("default", "web-0", True)
    return out


@scenario("ingress", "An ingress controller routes by host and path straight to pod "
          "endpoints", CH12)
def ingress(seed: int = 0) -> ScenarioResult:
    """ingress-nginx-like controller, Services ``web``, ``api`` and ``docs`` (the last with no
    ready pod), an Ingress ``shop`` with Exact and Prefix paths, a wildcard host and TLS, an
    Ingress ``fallback`` with a default backend, and an Ingress with pathType ``Regex``."""
    net = start_network(seed)
    cluster, admin = net.cluster, net.cluster.admin()
    mark = cluster.trace.mark()
    king.install(admin)
    controller = cluster.add_ingress_controller(address=net.kubelets["node-a"].address)
    for name in ("web", "api", "docs"):
        admin.create(service(name, selector={"app": name},
                             ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    pods = ["web-0", "web-1", "api-0", "api-1"]
    for i, name in enumerate(pods):
        admin.create(app_pod(name, NODES[i % 2], labels={"app": name.split("-")[0]}))
    admin.create(tls_secret("shop-tls"))
    admin.create(shop_ingress())
    admin.create(fallback_ingress())
    before = cluster.etcd.revision if hasattr(cluster.etcd, "revision") else None
    try:
        admin.create(bad_ingress())
        rejected: Obj = {}
    except StatusError as err:
        rejected = {"code": err.code, "reason": err.reason,
                    "causes": [(c["field"], c["message"])
                               for c in err.status.get("details", {}).get("causes", [])]}
    after = cluster.etcd.revision if hasattr(cluster.etcd, "revision") else None
    stored = [i["metadata"]["name"] for i in admin.list("ingresses", "default")["items"]]
    wait_until(cluster, lambda: pods_ready(net, pods))
    cluster.settle(2.0)
    results = [curl(net, controller, scheme, host, path) for scheme, host, path in REQUESTS]
    failures = upstream_failures(net, controller)
    messages = cluster.trace.since(mark)
    shop = admin.get("ingresses", "shop", "default")
    facts = {
        "results": results, "failures": failures, "rejected": rejected,
        "address": controller.address,
        "timeouts": {"proxy-connect-timeout": controller.proxy_connect_timeout,
                     "proxy-read-timeout": controller.proxy_read_timeout,
                     "proxy-next-upstream-tries": controller.proxy_next_upstream_tries}, "stored_ingresses": stored,
        "etcd_revision_before_bad": before, "etcd_revision_after_bad": after,
        "shop_status": shop.get("status", {}),
        "controller_resources": sorted({m.resource for m in messages
                                        if m.path == "ingress-controller->kube-apiserver"
                                        and m.verb in ("LIST", "WATCH")}),
    }
    cluster.components["net"] = net
    cluster.components["ingress-controller"] = controller
    return ScenarioResult("ingress", cluster, messages, facts)



def ingress_story(result: ScenarioResult, limit: int = 12) -> list[Any]:
    """Chapter 12's sequence: the controller's lists and watches, then the first requests:
    client -> controller, controller -> pod."""
    return [m for m in result.messages if m.path == "ingress-controller->kube-apiserver"
            and m.verb in ("LIST", "WATCH", "UPDATE")] + \
        [m for m in result.messages if m.path in ("client->ingress-controller",
                                                   "ingress-controller->pod")][:limit]
