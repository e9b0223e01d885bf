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
  The Service is resolved to one ready endpoint of its EndpointSlices, picked at random
  (``ResolveEndpoint`` in ``k8s.io/apiserver/pkg/util/proxy``, what
  ``--enable-aggregator-routing`` selects), and dialled through the network; a Service
  without a ready endpoint gets ``503 service unavailable``, and a failed dial ``503`` with
  the dial error as the body (the proxy's ``responder``).
* **The callee's serving certificate**: unless the APIService sets
  ``insecureSkipTLSVerify`` (metrics-server's manifest does, since it serves a self-signed
  certificate), both dials verify it against ``spec.caBundle`` (the proxy transport's and the
  availability check's TLS configuration, ``CAData``); a certificate no CA of the bundle
  signed fails the handshake with ``tls: failed to verify certificate: x509: certificate
  signed by unknown authority``, a 503 from the proxy and ``FailedDiscoveryCheck`` from the
  availability controller (``controllers/status/remote``'s ``BuildTransportConfig`` serves
  both). An empty bundle trusts nothing the model has (upstream: the host's system roots);
  so does one that is not PEM (upstream cannot build the transport and answers 500).
* **The availability controller** (``pkg/controllers/status``): for each service-backed
  APIService, checks that the Service exists (``ServiceNotFound``) and has a ready endpoint
  on the referenced port (``MissingEndpoints``), then GETs the group version's discovery
  document through the same proxy dial, as ``system:kube-aggregator`` in
  ``system:masters``, and sets ``Available`` (reason ``Passed``, message ``all checks
  passed``; or ``False`` with ``FailedDiscoveryCheck``).

Simplified: no local APIServices (the real apiserver registers one per built-in group version,
``v1.``, ``v1.apps`` ...; here built-in groups are served directly); one version per group;
endpoint routing always (kubeadm leaves ``--enable-aggregator-routing`` off, so the real
proxy dials the ClusterIP and the control-plane node's kube-proxy rules pick the endpoint;
the model's control-plane node runs no kube-proxy); the availability controller runs on a
fixed model period rather than on Service, Endpoints and resync events; discovery documents
of aggregated groups are not merged.
"""

from __future__ import annotations

import copy
import random
from typing import Any, Protocol

from k8sbook.api.request import Request, Response
from k8sbook.apiserver.authentication import LOOPBACK_USER, Authenticator, ClientCertificate
from k8sbook.apiserver.authorization import Attributes, UnionAuthorizer
from k8sbook.apiserver.egress_selector import EgressSelector
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError, Network, Verify
from k8sbook.core.clock import Clock
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
#: who the availability check says it is (``remote_available_controller.go``)
AVAILABILITY_USER, AVAILABILITY_GROUPS = "system:kube-aggregator", ("system:masters",)
#: the discovery check's timeout
DISCOVERY_TIMEOUT = 5.0


class Unresolved(Exception):
    """The APIService's Service has no usable endpoint: (reason, message) for its condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def apiservice(group: str, version: str, namespace: str, service: str, port: int = 443, *,
               group_priority_minimum: int = 100, version_priority: int = 100,
               insecure_skip_tls_verify: bool = True, ca_bundle: str = "") -> dict[str, Any]:
    """An APIService like metrics-server's manifest registers (``v1beta1.metrics.k8s.io``);
    ``ca_bundle`` (base64 PEM) with ``insecure_skip_tls_verify=False`` to verify the callee."""
    extra = {"caBundle": ca_bundle} if ca_bundle else {}
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{version}.{group}"},
            "spec": {"group": group, "version": version,
                     "service": {"namespace": namespace, "name": service, "port": port},
                     "insecureSkipTLSVerify": insecure_skip_tls_verify, **extra,
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


class Host(Protocol):
    """What kube-aggregator uses of the kube-apiserver it runs in (an
    :class:`~k8sbook.apiserver.server.APIServer`): its clock and network, its authenticator
    and authorizer, its egress selector, its watch cache and its handler chain (to write
    APIService status)."""

    @property
    def clock(self) -> Clock: ...
    @property
    def network(self) -> Network: ...
    @property
    def egress(self) -> EgressSelector: ...
    @property
    def authn(self) -> Authenticator: ...
    @property
    def authz(self) -> UnionAuthorizer: ...

    def cached_objects(self, plural: str, group: str | None = None) -> list[dict[str, Any]]: ...

    def handle(self, req: Request) -> Response: ...


class Aggregator:
    """kube-aggregator inside the model's kube-apiserver."""

    def __init__(self, apiserver: Host) -> None:
        self.apiserver = apiserver
        self._rng = random.Random(f"{getattr(apiserver, 'seed', 0)}/aggregator")
        self._timer: Any = None

    # -- wiring ----------------------------------------------------------------------------
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

    def _service(self, ref: dict[str, Any]) -> dict[str, Any] | None:
        for svc in self.apiserver.cached_objects("services"):
            if (svc["metadata"].get("namespace"), svc["metadata"]["name"]) == \
                    (ref["namespace"], ref["name"]):
                return svc
        return None

    def endpoints(self, ref: dict[str, Any]) -> list[Address]:
        """The ready endpoints of the Service port an APIService names (``ResolveEndpoint``:
        the Service's port with that number, its EndpointSlices' port of the same name)."""
        svc = self._service(ref)
        if svc is None:
            raise Unresolved("ServiceNotFound", f"service/{ref['name']} in "
                                                f"\"{ref['namespace']}\" is not present")
        port = ref.get("port", 443)
        sp = next((p for p in svc["spec"].get("ports", []) if p.get("port") == port), None)
        name = (sp or {}).get("name", "")
        out = set()
        for es in self.apiserver.cached_objects("endpointslices", "discovery.k8s.io"):
            labels = es["metadata"].get("labels") or {}
            if es["metadata"].get("namespace") != ref["namespace"] or \
                    labels.get("kubernetes.io/service-name") != ref["name"]:
                continue
            for p in es.get("ports") or []:
                if sp is None or (p.get("name") or "") != name:
                    continue
                for ep in es.get("endpoints") or []:
                    if (ep.get("conditions") or {}).get("ready", True):
                        out.add(Address.tcp(ep["addresses"][0], int(p["port"])))
        if not out:
            raise Unresolved("MissingEndpoints", f"endpoints for service/{ref['name']} in "
                                                 f"\"{ref['namespace']}\" have no addresses "
                                                 f"with port name \"{name}\"")
        return sorted(out)

    def resolve(self, ref: dict[str, Any]) -> Address:
        """One ready endpoint, picked at random (seeded)."""
        return self._rng.choice(self.endpoints(ref))

    @staticmethod
    def available(svc: dict[str, Any]) -> bool:
        return any(c.get("type") == "Available" and c.get("status") == "True"
                   for c in svc.get("status", {}).get("conditions", []))

    @staticmethod
    def verifier(svc: dict[str, Any]) -> Verify | None:
        """How the dials check the callee's serving certificate: not at all with
        ``insecureSkipTLSVerify``, else against the roots of ``caBundle``."""
        spec = svc.get("spec") or {}
        if spec.get("insecureSkipTLSVerify"):
            return None
        bundle = spec.get("caBundle") or ""
        if not bundle:
            return lambda _issuer: False
        from k8sbook.core import pki

        roots = set(pki.bundle_subjects(bundle))
        return lambda issuer: issuer in roots

    def _dial(self, target: Address, path: str, user: str, groups: tuple[str, ...],
              params: dict[str, Any] | None = None,
              timeout: float | None = None, verify: Verify | None = None) -> HTTPResponse:
        headers = ((USERNAME_HEADER, user), *((GROUP_HEADER, g) for g in groups))
        req = HTTPRequest("GET", path, headers, credentials=PROXY_CLIENT_CERT,
                          params=dict(params or {}))
        resp: HTTPResponse = self.apiserver.egress.dial(  # directly, or through Konnectivity
            target, req, protocol=PROTOCOL, verb="GET", resource=path,
            result=lambda r: r.result(), timeout=timeout, verify=verify)
        return resp

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
            try:
                target = self.resolve(svc["spec"]["service"])
            except Unresolved as err:
                raise StatusError(service_unavailable(http_verb, group_resource,
                                                      "service unavailable")) from err
            path = path_of(req, svc["spec"]["version"])
            try:
                resp = self._dial(target, path, user.name, tuple(user.groups), req.params,
                                  verify=self.verifier(svc))
            except DialError as err:
                # the proxy's responder writes the error text with a 503
                raise StatusError(service_unavailable(http_verb, group_resource,
                                                      str(err))) from err
            return Response(resp.status, resp.body)
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
            path = f"/apis/{svc['spec']['group']}/{svc['spec']['version']}"
            cond = {"type": "Available", "status": "True", "reason": "Passed",
                    "message": "all checks passed"}
            try:
                target = self.resolve(ref)
                url = f"https://{target}{path}"
                resp = self._dial(target, path, AVAILABILITY_USER, AVAILABILITY_GROUPS,
                                  timeout=DISCOVERY_TIMEOUT, verify=self.verifier(svc))
                if not resp.ok:
                    cond = {"type": "Available", "status": "False",
                            "reason": "FailedDiscoveryCheck",
                            "message": f"failing or missing response from {url}: bad status "
                                       f"from {url}: {resp.status}"}
            except Unresolved as err:
                cond = {"type": "Available", "status": "False", "reason": err.reason,
                        "message": str(err)}
            except DialError as err:
                cond = {"type": "Available", "status": "False",
                        "reason": "FailedDiscoveryCheck",
                        "message": f"failing or missing response from {url}: Get \"{url}\": "
                                   f"{err}"}
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


def install(apiserver: Host) -> Aggregator:
    return Aggregator(apiserver)

