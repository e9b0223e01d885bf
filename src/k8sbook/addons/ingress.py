"""An ingress controller: Ingress rules in, HTTP requests routed straight to pod endpoints.

Kubernetes ships no ingress controller; this one behaves like the common ones (ingress-nginx,
``k8s.io/ingress-nginx``) on the points the Ingress API defines
(``k8s.io/api/networking/v1`` and https://kubernetes.io/docs/concepts/services-networking/ingress/):

* it handles an Ingress whose ``spec.ingressClassName`` names an IngressClass with its
  ``spec.controller``, or, with no class set, when its class is the default one (annotation
  ``ingressclass.kubernetes.io/is-default-class: "true"``);
* hosts: a precise host matches the ``Host`` header exactly; a wildcard ``*.foo.com`` matches
  exactly one more label (``bar.foo.com``, not ``baz.bar.foo.com`` nor ``foo.com``); a rule
  without a host matches every request. Rules with a precise host are tried before wildcard
  ones, and those before rules without a host (as nginx picks server names);
* paths: ``Exact`` matches the whole path, case-sensitively; ``Prefix`` matches element by
  element split on ``/`` (``/foo`` matches ``/foo`` and ``/foo/bar``, not ``/foobar``; a
  trailing slash is ignored); ``ImplementationSpecific`` is treated as ``Prefix``. The longest
  matching path wins; on a tie ``Exact`` beats ``Prefix``;
* no rule matches: the Ingress's ``spec.defaultBackend``, else the controller's own default
  backend, which answers 404;
* the backend is a Service port (by number or name), but requests go to the addresses of its
  ready endpoints, read from EndpointSlices (ingress-nginx's Lua balancer, ``load-balance:
  round_robin``): not through the ClusterIP, so kube-proxy's rules are not on this path;
* proxying (``k8s.io/ingress-nginx``'s ConfigMap defaults,
  https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/configmap/):
  the controller listens on its address, ports 80 and 443, dials the chosen endpoint and
  relays the pod's answer, status and body. A refused or failed connection is an ``error``
  and a connection that is not made within ``proxy-connect-timeout`` (5 s), or not answered
  within ``proxy-read-timeout`` (60 s), is a ``timeout``; both go to the next endpoint
  (``proxy-next-upstream: error timeout``, at most ``proxy-next-upstream-tries: 3``
  endpoints in all). When every try failed nginx answers ``502 Bad Gateway`` (the last try
  was an error) or ``504 Gateway Timeout`` (it timed out). A backend Service with no ready
  endpoint (or no such Service) gets ``503 Service Temporarily Unavailable``; an answer the
  pod gives, a 503 included, is relayed as it is. Each request goes to the access log
  (:attr:`IngressController.log`: ``$proxy_upstream_name``, ``$upstream_addr``,
  ``$upstream_status``);
* TLS: for ``https``, the Secret named in ``spec.tls`` for the host (type
  ``kubernetes.io/tls``) provides the certificate; a missing Secret means the controller's
  self-signed "Kubernetes Ingress Controller Fake Certificate".

It lists and watches Ingress, IngressClass, Service, EndpointSlice and Secret objects as its
service account (``ingress-nginx/ingress-nginx``, with the ClusterRole its Helm chart
installs) and writes the address it serves on into ``status.loadBalancer.ingress``.
Simplified: no annotations (rewrites, canaries ...), no regex paths, one replica, no leader
election, no TLS passthrough, no keep-alive to upstreams, no ``proxy-next-upstream-timeout``;
HTTP/1.1 only; the model's clock does not move during a request (an upstream's latency is
compared with the timeouts, not waited for).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.informer import SharedIndexInformer
from k8sbook.client.network import Address, DialError, Network
from k8sbook.client.rest import Client

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CONTROLLER_NAME = "k8s.io/ingress-nginx"
NAMESPACE = "ingress-nginx"
FAKE_CERTIFICATE = "Kubernetes Ingress Controller Fake Certificate"
HTTP_PORT, HTTPS_PORT = 80, 443
#: ingress-nginx's ConfigMap defaults
PROXY_CONNECT_TIMEOUT = 5.0
PROXY_READ_TIMEOUT = 60.0
PROXY_NEXT_UPSTREAM = ("error", "timeout")
PROXY_NEXT_UPSTREAM_TRIES = 3
#: nginx's reason phrases for what the controller answers itself
REASONS = {404: "Not Found", 502: "Bad Gateway",
           503: "Service Temporarily Unavailable", 504: "Gateway Timeout"}

#: The ClusterRole the ingress-nginx chart installs, abridged to what this model uses.
CLUSTER_ROLE_RULES = [
    {"apiGroups": [""], "resources": ["configmaps", "endpoints", "nodes", "pods", "secrets",
                                      "namespaces"], "verbs": ["list", "watch"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses/status"],
     "verbs": ["update"]},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingressclasses"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
     "verbs": ["list", "watch", "get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


# -- matching, as the Ingress API defines it -----------------------------------------------
def host_matches(rule_host: str, host: str) -> bool:
    host = host.split(":", 1)[0].lower()
    if not rule_host:
        return True
    if rule_host.startswith("*."):
        suffix = rule_host[1:]  # ".foo.com"
        head = host[: -len(suffix)] if host.endswith(suffix) else ""
        return bool(head) and "." not in head
    return host == rule_host


def _elements(path: str) -> list[str]:
    return [e for e in path.split("/") if e]


def path_matches(path_type: str, rule_path: str, request_path: str) -> bool:
    if path_type == "Exact":
        return request_path == rule_path
    # Prefix, and ImplementationSpecific treated as Prefix
    want = _elements(rule_path)
    return _elements(request_path)[: len(want)] == want


def host_rank(rule_host: str) -> int:
    """0 for a precise host, 1 for a wildcard, 2 for no host."""
    return 2 if not rule_host else 1 if rule_host.startswith("*.") else 0


@dataclass(frozen=True)
class Match:
    ingress: str  # namespace/name
    host: str
    path: str
    path_type: str
    backend: Obj  # the IngressBackend


def match(ingresses: list[Obj], host: str, path: str) -> Match | None:
    """The rule path that serves ``host`` + ``path`` among ``ingresses``, or None."""
    best: tuple[tuple[int, int, int], Match] | None = None
    for ing in ingresses:
        key = f"{ing['metadata']['namespace']}/{ing['metadata']['name']}"
        for rule in ing.get("spec", {}).get("rules") or []:
            rhost = rule.get("host", "")
            if not host_matches(rhost, host):
                continue
            for p in (rule.get("http") or {}).get("paths") or []:
                ptype, ppath = p.get("pathType", "Prefix"), p.get("path", "/")
                if not path_matches(ptype, ppath, path):
                    continue
                # precise host first; then the longest path; then Exact over Prefix
                score = (-host_rank(rhost), len(ppath.rstrip("/") or "/"),
                         1 if ptype == "Exact" else 0)
                cand = Match(key, rhost, ppath, ptype, p["backend"])
                if best is None or score > best[0]:
                    best = (score, cand)
    return best[1] if best else None


# -- the controller ------------------------------------------------------------------------
@dataclass
class Routed:
    """One request as the controller's access log has it."""

    host: str
    path: str
    status: int
    match: Match | None
    service: str = ""  # namespace/name:port (``$proxy_upstream_name`` names it ns-name-port)
    endpoint: str = ""  # ip:port that answered, or the last one tried (``$upstream_addr``)
    pod: str = ""
    certificate: str = ""
    #: ``$upstream_status``: one entry per endpoint tried (a status, or 502/504 for a failure)
    upstream_status: list[str] = field(default_factory=list)
    body: Any = None
    #: the ready endpoints (ip:port, pod) the backend had
    endpoints: list[tuple[str, str]] = field(default_factory=list)


def install(admin: Client, *, class_name: str = "nginx", default_class: bool = False) -> None:
    """What ``helm install ingress-nginx`` writes that the model needs, through ``admin``:
    the namespace, the ClusterRole and its binding to the service account, and the
    IngressClass."""
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    admin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                  "metadata": {"name": "ingress-nginx"}, "rules": CLUSTER_ROLE_RULES})
    admin.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                  "metadata": {"name": "ingress-nginx"},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "ingress-nginx"},
                  "subjects": [{"kind": "ServiceAccount", "name": "ingress-nginx",
                                "namespace": NAMESPACE}]})
    meta: Obj = {"name": class_name}
    if default_class:
        meta["annotations"] = {DEFAULT_CLASS_ANNOTATION: "true"}
    admin.create({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                  "metadata": meta, "spec": {"controller": CONTROLLER_NAME}})


class IngressController:
    """Build it with ``Cluster.add_ingress_controller(address=...)``, or
    ``IngressController(client, network, address="192.168.0.10").start()`` with a client of
    the service account ``ingress-nginx/ingress-nginx``."""

    def __init__(self, client: Client, network: Network, *, address: str,
                 pod_name: str = "ingress-nginx-controller",
                 controller: str = CONTROLLER_NAME,
                 proxy_connect_timeout: float = PROXY_CONNECT_TIMEOUT,
                 proxy_read_timeout: float = PROXY_READ_TIMEOUT,
                 proxy_next_upstream_tries: int = PROXY_NEXT_UPSTREAM_TRIES) -> None:
        self.client = client
        self.network = network
        self.address = address
        self.controller = controller
        self.instance = f"ingress-controller/{pod_name}"
        self.proxy_connect_timeout = proxy_connect_timeout
        self.proxy_read_timeout = proxy_read_timeout
        self.proxy_next_upstream_tries = proxy_next_upstream_tries
        self.ingresses = SharedIndexInformer(self.client, "ingresses")
        self.classes = SharedIndexInformer(self.client, "ingressclasses")
        self.services = SharedIndexInformer(self.client, "services")
        self.slices = SharedIndexInformer(self.client, "endpointslices")
        self.secrets = SharedIndexInformer(self.client, "secrets")
        self.ingresses.add_event_handler(self._ingress_changed,
                                         lambda old, new: self._ingress_changed(new))
        self._rr: dict[str, int] = {}
        #: the access log, oldest first
        self.log: list[Routed] = []

    def start(self) -> IngressController:
        for inf in (self.classes, self.ingresses, self.services, self.slices, self.secrets):
            inf.run()
        for port, scheme in ((HTTP_PORT, "http"), (HTTPS_PORT, "https")):
            self.network.listen(Address.tcp(self.address, port), self.instance,
                                functools.partial(self.serve, scheme=scheme),
                                protocol=scheme.upper())
        return self

    def stop(self) -> None:
        for port in (HTTP_PORT, HTTPS_PORT):
            self.network.close(Address.tcp(self.address, port))
        for inf in (self.classes, self.ingresses, self.services, self.slices, self.secrets):
            inf.stop()

    # -- which Ingresses are ours ---------------------------------------------------------
    def my_classes(self) -> list[Obj]:
        return [c for c in self.classes.lister()
                if c.get("spec", {}).get("controller") == self.controller]

    def handles(self, ing: Obj) -> bool:
        cls = ing.get("spec", {}).get("ingressClassName")
        mine = self.my_classes()
        if cls:
            return any(c["metadata"]["name"] == cls for c in mine)
        return any((c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION)
                   == "true" for c in mine)

    def mine(self) -> list[Obj]:
        return [i for i in self.ingresses.lister() if self.handles(i)]

    def _ingress_changed(self, ing: Obj) -> None:
        if not self.handles(ing):
            return
        want = {"loadBalancer": {"ingress": [{"ip": self.address}]}}
        if ing.get("status") != want:
            self.client.clock.call_soon(lambda: self._write_status(ing, want))

    def _write_status(self, ing: Obj, want: Obj) -> None:
        current = self.ingresses.get(f"{ing['metadata']['namespace']}/"
                                     f"{ing['metadata']['name']}")
        if current is None or current.get("status") == want:
            return
        self.client.update_status(dict(current, status=want))

    # -- serving --------------------------------------------------------------------------
    def _endpoints(self, ns: str, svc: Obj, port_ref: Obj) -> tuple[str, list[tuple[str, str]]]:
        """(service port label, [(ip:port, pod)]) for a backend's Service port."""
        ports = svc["spec"].get("ports", [])
        if "number" in port_ref:
            sp = next((p for p in ports if p["port"] == port_ref["number"]), None)
        else:
            sp = next((p for p in ports if p.get("name") == port_ref.get("name")), None)
        if sp is None:
            return "", []
        out = []
        for es in self.slices.lister(ns):
            if (es["metadata"].get("labels") or {}).get("kubernetes.io/service-name") != \
                    svc["metadata"]["name"]:
                continue
            for p in es.get("ports") or []:
                if (p.get("name") or "") != sp.get("name", "") or \
                        p.get("protocol", "TCP") != sp.get("protocol", "TCP"):
                    continue
                for ep in es.get("endpoints") or []:
                    if (ep.get("conditions") or {}).get("ready", True):
                        pod = (ep.get("targetRef") or {}).get("name", "")
                        out.append((f"{ep['addresses'][0]}:{p['port']}", pod))
        label = f"{ns}/{svc['metadata']['name']}:{sp.get('name') or sp['port']}"
        return label, sorted(out)

    def route(self, host: str, path: str, scheme: str = "http") -> Routed:
        """Which backend serves ``host`` + ``path`` and its ready endpoints (nothing is sent):
        status 404 (the default backend), 503 (no Service or no ready endpoint) or 0 (to
        be proxied)."""
        ingresses = self.mine()
        m = match(ingresses, host, path)
        backend: Obj | None = m.backend if m else None
        ns = m.ingress.split("/", 1)[0] if m else ""
        if m is None:
            for ing in ingresses:
                if ing["spec"].get("defaultBackend"):
                    backend, ns = ing["spec"]["defaultBackend"], ing["metadata"]["namespace"]
                    break
        out = Routed(host, path, 404, m)
        if scheme == "https":
            out.certificate = self._certificate(ingresses, m, host)
        if backend is None or "service" not in backend:
            return out  # the controller's default backend: 404 Not Found
        svc = self.services.get(f"{ns}/{backend['service']['name']}")
        if svc is None:
            out.status = 503
            return out
        label, eps = self._endpoints(ns, svc, backend["service"].get("port", {}))
        out.service, out.endpoints = label, eps
        out.status = 503 if not eps else 0
        return out

    def serve(self, req: HTTPRequest, scheme: str = "http") -> HTTPResponse:
        """The handler on :80 and :443: route, then proxy to one endpoint (trying the next
        on an error or a timeout) and relay its answer."""
        host = (req.header("Host") or [""])[0]
        r = self.route(host, req.path.split("?", 1)[0], scheme)
        self.log.append(r)
        if r.status:
            return HTTPResponse(r.status, REASONS[r.status])
        start = self._rr.get(r.service, 0)
        failure = 502
        for i in range(min(self.proxy_next_upstream_tries, len(r.endpoints))):
            endpoint, pod = r.endpoints[(start + i) % len(r.endpoints)]
            self._rr[r.service] = start + i + 1
            r.endpoint, r.pod = endpoint, pod
            ip, port = endpoint.rsplit(":", 1)
            upstream = HTTPRequest(req.method, req.path, (
                *req.headers, ("X-Forwarded-For", "client"), ("X-Forwarded-Host", host),
                ("X-Forwarded-Proto", scheme), ("X-Real-IP", "client")), req.body)
            try:
                reply = self.network.dial(
                    self.instance, Address.tcp(ip, int(port)), upstream, protocol="HTTP",
                    verb=req.method, resource=f"{host}{r.path}",
                    result=lambda resp: resp.result(), timeout=self.proxy_read_timeout)
            except DialError as err:
                failure = 504 if err.kind == "timeout" else 502
                r.upstream_status.append(str(failure))
                continue
            r.upstream_status.append(str(reply.status))
            r.status, r.body = reply.status, reply.body
            return HTTPResponse(reply.status, reply.body)
        r.status = failure
        return HTTPResponse(failure, REASONS[failure])

    def _certificate(self, ingresses: list[Obj], m: Match | None, host: str) -> str:
        for ing in ingresses:
            key = f"{ing['metadata']['namespace']}/{ing['metadata']['name']}"
            if m is not None and key != m.ingress:
                continue
            for tls in ing["spec"].get("tls") or []:
                if host in (tls.get("hosts") or []):
                    secret = self.secrets.get(f"{ing['metadata']['namespace']}/"
                                              f"{tls.get('secretName', '')}")
                    if secret is not None and secret.get("type") == "kubernetes.io/tls":
                        return f"secret {ing['metadata']['namespace']}/{tls['secretName']}"
        return FAKE_CERTIFICATE
