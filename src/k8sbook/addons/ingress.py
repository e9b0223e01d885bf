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
  ready endpoints, read from EndpointSlices (round robin): not through the ClusterIP, so
  kube-proxy's rules are not on this path;
* TLS: for ``https``, the Secret named in ``spec.tls`` for the host (type
  ``kubernetes.io/tls``) provides the certificate; a missing Secret means the controller's
  self-signed "Kubernetes Ingress Controller Fake Certificate".

It lists and watches Ingress, IngressClass, Service, EndpointSlice and Secret objects as its
service account (``ingress-nginx/ingress-nginx``, with the ClusterRole its Helm chart
installs) and writes the address it serves on into ``status.loadBalancer.ingress``.
Simplified: no annotations (rewrites, canaries ...), no regex paths, one replica, no leader
election, no TLS passthrough; a Service with no ready endpoint gets a 503.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from k8sbook.client.informer import SharedIndexInformer

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
CONTROLLER_NAME = "k8s.io/ingress-nginx"
NAMESPACE = "ingress-nginx"
FAKE_CERTIFICATE = "Kubernetes Ingress Controller Fake Certificate"

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
    """What happened to one request."""

    host: str
    path: str
    status: int
    match: Match | None
    service: str = ""  # namespace/name:port
    endpoint: str = ""  # ip:port
    pod: str = ""
    certificate: str = ""


def install(cluster: Any, *, class_name: str = "nginx", default_class: bool = False) -> None:
    """What ``helm install ingress-nginx`` writes that the model needs: the namespace, the
    ClusterRole and its binding to the service account, and the IngressClass."""
    admin = cluster.admin()
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
    """``IngressController(cluster, address="192.168.0.2").start()``."""

    def __init__(self, cluster: Any, *, address: str, pod_name: str = "ingress-nginx-controller",
                 controller: str = CONTROLLER_NAME) -> None:

        self.cluster = cluster
        self.address = address
        self.controller = controller
        self.instance = f"ingress-controller/{pod_name}"
        self.client = cluster.service_account_client(self.instance, NAMESPACE, "ingress-nginx")
        self.ingresses = SharedIndexInformer(self.client, "ingresses")
        self.classes = SharedIndexInformer(self.client, "ingressclasses")
        self.services = SharedIndexInformer(self.client, "services")
        self.slices = SharedIndexInformer(self.client, "endpointslices")
        self.secrets = SharedIndexInformer(self.client, "secrets")
        self.ingresses.add_event_handler(self._ingress_changed,
                                         lambda old, new: self._ingress_changed(new))
        self._rr: dict[str, int] = {}

    def start(self) -> IngressController:
        for inf in (self.classes, self.ingresses, self.services, self.slices, self.secrets):
            inf.run()
        return self

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
        """Route one request (no trace); see :meth:`request`."""
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
        out.service = label
        if not eps:
            out.status = 503
            return out
        i = self._rr.get(label, 0)
        self._rr[label] = i + 1
        out.endpoint, out.pod = eps[i % len(eps)]
        out.status = 200
        return out

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

    def request(self, host: str, path: str, scheme: str = "http") -> Routed:
        """A client's request reaches the controller; it proxies it to one pod (traced on
        ``ingress-controller->pod``) or answers itself (404 or 503)."""
        r = self.route(host, path, scheme)
        if r.status == 200:
            self.cluster.trace.record(self.client.clock.now(), self.instance, f"pod/{r.pod}",
                                      "ingress-controller->pod",
                                      "HTTPS" if scheme == "https" else "HTTP", "GET",
                                      f"{host}{path}", "", f"proxied to {r.endpoint}")
        return r
