"""The aggregation layer: kube-apiserver proxying whole API groups to other API servers.

Mirrors ``k8s.io/kube-aggregator``, which runs inside kube-apiserver in front of its own
handlers:

* **APIService** (``apiregistration.k8s.io/v1``, cluster-scoped, kept in etcd under
  ``/registry/apiregistration.k8s.io/apiservices``): ``v1beta1.metrics.k8s.io`` says "group
  ``metrics.k8s.io`` version ``v1beta1`` is served by Service ``kube-system/metrics-server``
  on port 443 (the default port of a service reference)".
* **The proxy handler** (``pkg/apiserver/handler_proxy.go``): a request for
  ``/apis/<group>/<version>/...`` of a registered group has already been authenticated and
  authorized by kube-apiserver's handler chain; the handler then opens an HTTPS connection to
  the Service, presenting the front-proxy client certificate (``--proxy-client-cert-file``;
  kubeadm's ``front-proxy-client``, signed by ``front-proxy-ca``) and naming the user in the
  request headers ``X-Remote-User`` and ``X-Remote-Group`` (kubeadm's
  ``--requestheader-username-headers`` / ``--requestheader-group-headers``). An APIService
  whose ``Available`` condition is not True gets ``503`` and the body ``service unavailable``.
* **The availability controller** (``pkg/controllers/status``): probes each service-backed
  APIService with a discovery GET and sets ``Available`` (reason ``Passed``, message ``all
  checks passed``; or ``False`` with ``FailedDiscoveryCheck``).

Simplified: no local APIServices (the real apiserver registers one per built-in group version,
``v1.``, ``v1.apps`` ...; here built-in groups are served directly); one version per group; the
Service is resolved to the registered backend directly (``--enable-aggregator-routing``
picks an endpoint the same way); no TLS, so ``insecureSkipTLSVerify``/``caBundle`` are not
checked; the availability controller runs on a fixed model period rather than on Service,
Endpoints and resync events; discovery documents of aggregated groups are not merged.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

from k8sbook.api.request import Request, Response
from k8sbook.apiserver.authentication import ClientCertificate
from k8sbook.apiserver.authorization import Attributes
from k8sbook.apiserver.server import LOOPBACK_USER
from k8sbook.core.status import StatusError, forbidden, status_object

#: kubeadm's front-proxy CA and the client certificate kube-apiserver presents with it
FRONT_PROXY_CA = "front-proxy-ca"
PROXY_CLIENT_CERT = ClientCertificate("front-proxy-client", (), issuer=FRONT_PROXY_CA)
#: kubeadm's ``--requestheader-*`` flags
USERNAME_HEADER = "X-Remote-User"
GROUP_HEADER = "X-Remote-Group"
EXTRA_HEADERS_PREFIX = "X-Remote-Extra-"
ALLOWED_NAMES = ("front-proxy-client",)
#: how often the model's availability controller probes (a model choice, see the docstring)
AVAILABILITY_PERIOD = 10.0
PROTOCOL = "HTTPS (front-proxy client cert, X-Remote-User/X-Remote-Group)"


class Backend(Protocol):
    """An aggregated API server as the proxy reaches it through its Service."""

    instance: str

    def reachable(self) -> bool: ...

    def serve(self, method: str, path: str, credentials: Any, headers: dict[str, Any],
              params: dict[str, Any]) -> tuple[int, dict[str, Any]]: ...


def apiservice(group: str, version: str, namespace: str, service: str, port: int = 443, *,
               group_priority_minimum: int = 100, version_priority: int = 100,
               insecure_skip_tls_verify: bool = True) -> dict[str, Any]:
    """An APIService like metrics-server's manifest registers (``v1beta1.metrics.k8s.io``)."""
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{version}.{group}"},
            "spec": {"group": group, "version": version,
                     "service": {"namespace": namespace, "name": service, "port": port},
                     "insecureSkipTLSVerify": insecure_skip_tls_verify,
                     "groupPriorityMinimum": group_priority_minimum,
                     "versionPriority": version_priority}}


def service_unavailable(verb: str, group_resource: str, body: str) -> dict[str, Any]:
    """The Status a client sees for the proxy's plain-text 503.

    The aggregator writes ``body`` as text (``http.Error``); client-go turns a non-Status
    error body into this Status (``NewGenericServerResponse``), which is what kubectl prints.
    """
    return status_object(503, "ServiceUnavailable",
                         "the server is currently unable to handle the request "
                         f"({verb} {group_resource})",
                         causes=[{"reason": "UnexpectedServerResponse", "message": body}])


def path_of(req: Request, version: str) -> str:
    """The URL path of an aggregated request (what the proxy forwards unchanged)."""
    path = f"/apis/{req.group}/{version}"
    if req.namespace:
        path += f"/namespaces/{req.namespace}"
    path += f"/{req.resource}"
    if req.name:
        path += f"/{req.name}"
    return path


class Aggregator:
    """kube-aggregator inside the model's kube-apiserver."""

    def __init__(self, apiserver: Any) -> None:
        self.apiserver = apiserver
        #: "namespace/name" of a Service -> the aggregated server behind it
        self.backends: dict[str, Backend] = {}
        self._timer: Any = None

    # -- wiring ----------------------------------------------------------------------------
    def register_backend(self, namespace: str, service: str, backend: Backend) -> None:
        """Stand-in for Service -> Endpoints resolution: ``backend`` serves that Service."""
        self.backends[f"{namespace}/{service}"] = backend

    def start_availability_controller(self) -> None:
        """Probe every service-backed APIService now and every :data:`AVAILABILITY_PERIOD`."""
        if self._timer is not None:
            return
        clock = self.apiserver.clock

        def tick() -> None:
            self.check_availability()
            self._timer = clock.call_later(AVAILABILITY_PERIOD, tick,
                                           "aggregator availability")
        self._timer = clock.call_soon(tick, "aggregator availability")

    # -- lookups ---------------------------------------------------------------------------
    def apiservice_for(self, group: str) -> dict[str, Any] | None:
        """The APIService registered for ``group`` (highest versionPriority, then name)."""
        found = [a for a in self.apiserver.cached_objects("apiservices",
                                                          "apiregistration.k8s.io")
                 if a.get("spec", {}).get("group") == group]
        found.sort(key=lambda a: (-a["spec"].get("versionPriority", 0), a["metadata"]["name"]))
        return found[0] if found else None

    def service_address(self, ref: dict[str, Any]) -> str:
        """``<clusterIP>:<port>`` of the Service an APIService names (its DNS name if absent)."""
        port = ref.get("port", 443)
        svc = self.apiserver.cached("services", ref["namespace"], ref["name"])
        ip = (svc or {}).get("spec", {}).get("clusterIP")
        return f"{ip}:{port}" if ip else f"{ref['name']}.{ref['namespace']}.svc:{port}"

    @staticmethod
    def available(svc: dict[str, Any]) -> bool:
        return any(c.get("type") == "Available" and c.get("status") == "True"
                   for c in svc.get("status", {}).get("conditions", []))

    # -- the proxy handler -----------------------------------------------------------------
    def proxy(self, req: Request) -> Response | None:
        """Serve ``req`` if an APIService claims its group; ``None`` means "not mine"."""
        svc = self.apiservice_for(req.group)
        if svc is None or not svc["spec"].get("service"):
            return None
        api = self.apiserver
        try:
            user = req.user or api.authn.authenticate(req.credentials)
            attrs = Attributes(user, req.verb, req.group, req.resource, req.subresource,
                               req.namespace, req.name)
            decision, reason = api.authz.authorize(attrs)
            if decision != "allow":
                detail = attrs.describe() + (f": {reason}" if reason else "")
                raise forbidden(req.resource, req.group, req.name, detail)
            group_resource = f"{req.resource}.{req.group}"
            http_verb = "get"  # client-go names the HTTP method in the message
            if not self.available(svc):
                raise StatusError(service_unavailable(http_verb, group_resource,
                                                      "service unavailable"))
            ref = svc["spec"]["service"]
            backend = self.backends.get(f"{ref['namespace']}/{ref['name']}")
            version = svc["spec"]["version"]
            path = path_of(req, version)
            target = backend.instance if backend is not None else ref["name"]
            msg = api.trace.record(api.clock.now(), "kube-apiserver", target,
                                   f"kube-apiserver->{target.split('/')[0]}",
                                   PROTOCOL, "GET", path, "", "")
            if backend is None or not backend.reachable():
                # the dial fails; the proxy's responder writes the error text with a 503
                api.trace.complete(msg, "connection refused")
                err = f"dial tcp {self.service_address(ref)}: connect: connection refused"
                raise StatusError(service_unavailable(http_verb, group_resource, err))
            headers = {USERNAME_HEADER: user.name, GROUP_HEADER: list(user.groups)}
            code, body = backend.serve("GET", path, PROXY_CLIENT_CERT, headers, dict(req.params))
            api.trace.complete(msg, str(code))
            return Response(code, body)
        except StatusError as err:
            return Response(err.code, err.status)

    # -- the availability controller -------------------------------------------------------
    def check_availability(self) -> None:
        """One pass of the AvailableConditionController over service-backed APIServices."""
        api = self.apiserver
        for svc in api.cached_objects("apiservices", "apiregistration.k8s.io"):
            ref = svc.get("spec", {}).get("service")
            if not ref:
                continue
            url = (f"https://{self.service_address(ref)}/apis/"
                   f"{svc['spec']['group']}/{svc['spec']['version']}")
            backend = self.backends.get(f"{ref['namespace']}/{ref['name']}")
            if backend is not None and backend.reachable():
                cond = {"type": "Available", "status": "True", "reason": "Passed",
                        "message": "all checks passed"}
            else:
                cond = {"type": "Available", "status": "False",
                        "reason": "FailedDiscoveryCheck",
                        "message": f"failing or missing response from {url}: Get \"{url}\": "
                                   f"dial tcp {self.service_address(ref)}: connect: "
                                   "connection refused"}
            old = [c for c in svc.get("status", {}).get("conditions", [])
                   if c.get("type") == "Available"]
            if old and all(old[0].get(k) == cond[k] for k in ("status", "reason", "message")):
                continue
            cond["lastTransitionTime"] = api.clock.timestamp() if not old or \
                old[0].get("status") != cond["status"] else old[0].get("lastTransitionTime")
            new = copy.deepcopy(svc)
            new.setdefault("status", {})["conditions"] = [cond]
            api.handle(Request("update", "apiservices", "apiregistration.k8s.io", "",
                               svc["metadata"]["name"], "status", body=new,
                               user=LOOPBACK_USER))


def install(apiserver: Any) -> Aggregator:
    return Aggregator(apiserver)


def aggregator_of(cluster: Any) -> Aggregator:
    agg: Aggregator = cluster.apiserver.aggregator
    return agg
