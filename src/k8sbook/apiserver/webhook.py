"""Admission webhooks: kube-apiserver calling out to a server you run.

Mirrors ``k8s.io/apiserver/pkg/admission/plugin/webhook`` (the ``MutatingAdmissionWebhook``
and ``ValidatingAdmissionWebhook`` plugins and their dispatchers) and the
``admissionregistration.k8s.io/v1`` configuration objects: for every webhook whose ``rules``
match the request (operation, API group, version, resource, scope) and whose
``namespaceSelector``/``objectSelector`` match, the apiserver POSTs an ``AdmissionReview``
(``admission.k8s.io/v1``) to the webhook's Service over HTTPS and waits at most
``timeoutSeconds`` (default 10, at most 30). A denial becomes the webhook's ``Status``
(403 Forbidden unless it says otherwise) with the message "admission webhook "<name>" denied
the request: ...". A webhook that cannot be called fails the request with a 500 when its
``failurePolicy`` is ``Fail`` (the default) and is skipped when it is ``Ignore``. Mutating
webhooks answer with a base64 JSON patch, applied to the object before validation.

The apiserver reaches the webhook only through the network (``k8sbook.client.network``), as
``k8s.io/apiserver/pkg/util/webhook`` (``ClientManager.HookClient``) does:

* ``clientConfig.service``: the URL names ``https://<name>.<namespace>.svc:<port><path>``, but
  the dialer asks the apiserver's *service resolver* for the address, which by default
  (``--enable-aggregator-routing=false``) is the Service's cluster IP and port
  (``proxy.ResolveCluster``); a missing Service fails the call with ``service "<name>" not
  found``, a port the Service does not have with ``no service port <n> found for service
  "<name>"``;
* ``clientConfig.url``: its host is dialled as it is (resolved through the network's host
  table, as DNS would), port 443 unless the URL names one.

The request waits at most ``timeoutSeconds``: an answer that takes longer (``set_latency`` on
the webhook's address) or a dial that gets no answer is ``context deadline exceeded``; nothing
listening is ``dial tcp <ip>:<port>: connect: connection refused``. Errors are worded as the
upstream ``ErrCallingWebhook`` (``failed calling webhook "<name>": failed to call webhook:
Post "<url>": ...``). A webhook that is down is a fault of the network (its listener closed,
:meth:`WebhookServer.stop`, or latency past the timeout), not a flag on the server. Trace
messages travel on ``kube-apiserver->webhook``.

**The webhook's serving certificate** is verified against ``clientConfig.caBundle``, as the
client ``ClientManager`` builds for a hook does (``CAData`` of its ``rest.Config``): a
:class:`WebhookServer` says which authority signed its certificate (``certificate``, the CN of
that CA), and the apiserver's dial trusts only the authorities whose certificates are in the
bundle (read with ``cryptography``: :func:`k8sbook.core.pki.bundle_subjects`). Another
issuer fails the call with Go's ``crypto/tls`` text (``tls: failed to verify certificate:
x509: certificate signed by unknown authority``), which ``failurePolicy`` then handles like
any failed call. Simplified: a hook with no ``caBundle`` is called without verification;
upstream verifies it against the apiserver host's system roots, which no certificate of the
model chains to, so a book run that names no bundle keeps the old behaviour.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from k8sbook.api.patch import json_patch
from k8sbook.api.selectors import selector_matches
from k8sbook.apiserver.admission import AdmissionAttributes
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError, Network, Verify
from k8sbook.core.status import StatusError, bad_request, internal_error, status_object

PATH = "kube-apiserver->webhook"
PROTOCOL = "HTTPS (AdmissionReview v1)"
DEFAULT_TIMEOUT = 10

Review = dict[str, Any]
Handler = Callable[[Review], dict[str, Any]]
#: ``ServiceResolver.ResolveEndpoint(namespace, name, port) -> (host, port)``; raises
#: :class:`ResolveError` with the resolver's message
ServiceResolver = Callable[[str, str, int], tuple[str, int]]


class ResolveError(Exception):
    """The service resolver could not give an address (its Go error text)."""


@dataclass
class WebhookServer:
    """A webhook backend: ``handler(request) -> response`` (the AdmissionReview's parts).

    It answers on the network once :meth:`serve` binds it to an address, and stops answering
    when :meth:`stop` closes that listener."""

    name: str  # e.g. "policy.example.svc" (the name its serving certificate carries)
    handler: Handler
    received: list[Review] = field(default_factory=list)
    #: the CN of the CA that signed its serving certificate (what a caBundle must hold)
    certificate: str | None = None
    address: Address | None = None
    _network: Network | None = field(default=None, repr=False)

    def serve(self, network: Network, address: Address) -> WebhookServer:
        """Listen on ``address`` (the Service's cluster IP and port, or the URL's host)."""
        self._network, self.address = network, address
        network.listen(address, f"webhook/{self.name}", self.serve_http, protocol="HTTPS",
                       certificate=self.certificate)
        return self

    def stop(self) -> None:
        """The webhook process stops: its listener closes and new dials are refused."""
        if self._network is not None and self.address is not None:
            self._network.close(self.address)

    def serve_http(self, req: HTTPRequest) -> HTTPResponse:
        """``POST <path>`` with an ``AdmissionReview``: answer one with its ``response``."""
        review = req.body if isinstance(req.body, dict) else {}
        request = review.get("request") or {}
        self.received.append(request)
        response = self.handler(copy.deepcopy(request))
        return HTTPResponse(200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                  "response": response})


def serve_behind_service(server: WebhookServer, client: Any, network: Network, namespace: str,
                         name: str, port: int = 443) -> WebhookServer:
    """Run ``server`` behind Service ``namespace/name``: create the namespace if needed and a
    ClusterIP Service with ``port``, then listen on the cluster IP the apiserver allocated
    (what the apiserver's service resolver will give for it)."""
    try:
        client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    except StatusError as err:
        if err.code != 409:
            raise
    svc = client.create({"apiVersion": "v1", "kind": "Service",
                         "metadata": {"name": name, "namespace": namespace},
                         "spec": {"ports": [{"name": "https", "port": port,
                                             "targetPort": port}]}})
    return server.serve(network, Address.tcp(svc["spec"]["clusterIP"], port))


def cluster_ip_resolver(get_service: Callable[[str, str], dict[str, Any] | None]
                        ) -> ServiceResolver:
    """``NewClusterIPServiceResolver`` / ``proxy.ResolveCluster``: the Service's cluster IP
    and the port asked for, if the Service has it."""
    def resolve(namespace: str, name: str, port: int) -> tuple[str, int]:
        svc = get_service(namespace, name)
        if svc is None:
            raise ResolveError(f'service "{name}" not found')
        spec = svc.get("spec") or {}
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            return spec.get("externalName", ""), port
        if kind == "ClusterIP" and spec.get("clusterIP") == "None":
            raise ResolveError('cannot route to service with ClusterIP "None"')
        if kind not in ("ClusterIP", "NodePort", "LoadBalancer"):
            raise ResolveError(f'unsupported service type "{kind}"')
        if not any(p.get("port") == port for p in spec.get("ports") or []):
            raise ResolveError(f'no service port {port} found for service "{name}"')
        return spec["clusterIP"], port
    return resolve


def _rule_matches(rule: dict[str, Any], attrs: AdmissionAttributes, version: str) -> bool:
    def has(values: list[str] | None, want: str) -> bool:
        if not values:
            return False
        return "*" in values or want in values

    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    scope = rule.get("scope", "*")
    namespaced = bool(attrs.namespace)
    return (has(rule.get("operations"), attrs.operation)
            and has(rule.get("apiGroups"), attrs.api_group)
            and has(rule.get("apiVersions"), version)
            and (has(rule.get("resources"), resource)
                 or (bool(attrs.subresource)
                     and has(rule.get("resources"), f"*/{attrs.subresource}")))
            and (scope == "*" or (scope == "Namespaced") == namespaced))


class AdmissionWebhookPlugin:
    """The two webhook admission plugins in one class; ``mutating`` picks which."""

    def __init__(self, mutating: bool, list_objects: Callable[[str], list[dict[str, Any]]],
                 get_namespace: Callable[[str], dict[str, Any] | None],
                 resolve_service: ServiceResolver, network: Network,
                 uid: Callable[[], str]) -> None:
        self.mutating = mutating
        self.name = "MutatingAdmissionWebhook" if mutating else "ValidatingAdmissionWebhook"
        self._list = list_objects
        self._namespace = get_namespace
        self._resolve = resolve_service
        self.network = network
        self._uid = uid

    def _configs(self) -> list[dict[str, Any]]:
        plural = ("mutatingwebhookconfigurations" if self.mutating
                  else "validatingwebhookconfigurations")
        return self._list(plural)

    def _applies(self, hook: dict[str, Any], attrs: AdmissionAttributes, version: str) -> bool:
        if not any(_rule_matches(r, attrs, version) for r in hook.get("rules") or []):
            return False
        obj = attrs.obj or attrs.old_obj or {}
        if hook.get("objectSelector") and not selector_matches(
                hook["objectSelector"], obj.get("metadata", {}).get("labels")):
            return False
        if hook.get("namespaceSelector") and attrs.namespace:
            ns = self._namespace(attrs.namespace) or {}
            if not selector_matches(hook["namespaceSelector"],
                                    ns.get("metadata", {}).get("labels")):
                return False
        return True

    # the admission chain calls admit() on mutating plugins and validate() on validating ones
    def admit(self, attrs: AdmissionAttributes) -> None:
        self._dispatch(attrs)

    def validate(self, attrs: AdmissionAttributes) -> None:
        self._dispatch(attrs)

    def _dispatch(self, attrs: AdmissionAttributes) -> None:
        version = (attrs.obj or attrs.old_obj or {}).get("apiVersion", "v1").split("/")[-1]
        for config in self._configs():
            for hook in config.get("webhooks") or []:
                if self._applies(hook, attrs, version):
                    if attrs.dry_run and hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
                        # ``webhookerrors.NewDryRunUnsupportedErr``
                        raise bad_request(f'admission webhook "{hook["name"]}" does not '
                                          "support dry run")
                    self._call(hook, attrs, version)

    def _target(self, config: dict[str, Any], timeout: int) -> tuple[str, str, Address]:
        """(URL, server name, address to dial) for a ``clientConfig``."""
        svc = config.get("service")
        if svc:
            port = int(svc.get("port") or 443)
            host = f"{svc.get('name')}.{svc.get('namespace')}.svc"
            url = f"https://{host}:{port}{svc.get('path') or '/'}?timeout={timeout}s"
            try:
                ip, ip_port = self._resolve(svc.get("namespace", ""), svc.get("name", ""), port)
            except ResolveError as err:
                raise _CallError(f'Post "{url}": {err}') from None
            return url, host, Address.tcp(ip, ip_port)
        raw = config.get("url") or ""
        if not raw:
            raise _CallError("webhook configuration must have either service or URL", False)
        parts = urlsplit(raw)
        host = parts.hostname or ""
        port = parts.port or 443
        # validation forbids a query in the URL; the client adds only ``timeout``
        url = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}?timeout={timeout}s"
        return url, host, Address.tcp(host, port)

    def _call(self, hook: dict[str, Any], attrs: AdmissionAttributes, version: str) -> None:
        name = hook["name"]
        timeout = hook.get("timeoutSeconds", DEFAULT_TIMEOUT)
        request = {
            "uid": self._uid(),
            "kind": {"group": attrs.api_group, "version": version, "kind": attrs.kind},
            "resource": {"group": attrs.api_group, "version": version,
                         "resource": attrs.resource},
            "subResource": attrs.subresource or None,
            "name": attrs.name, "namespace": attrs.namespace or None,
            "operation": attrs.operation,
            "userInfo": attrs.user.to_dict(),
            "object": attrs.obj, "oldObject": attrs.old_obj,
            "dryRun": attrs.dry_run,
        }
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": json.loads(json.dumps(request))}
        try:
            client_config = hook.get("clientConfig") or {}
            url, host, address = self._target(client_config, timeout)
            parts = urlsplit(url)
            try:
                resp: HTTPResponse = self.network.dial(
                    "kube-apiserver", address,
                    HTTPRequest("POST", f"{parts.path or '/'}?{parts.query}",
                                (("Content-Type", "application/json"),), review),
                    protocol=PROTOCOL, verb="POST", resource=host, name=name,
                    result=_review_result, timeout=timeout,
                    verify=trusting(client_config.get("caBundle") or ""))
            except DialError as err:
                # the request's context ends after timeoutSeconds: a dial or an answer that
                # does not come in time is the context's error, not the dialer's
                detail = "context deadline exceeded" if err.kind == "timeout" else str(err)
                raise _CallError(f'Post "{url}": {detail}') from None
            body = resp.body if isinstance(resp.body, dict) else {}
            if not resp.ok:
                raise _CallError(f"the server responded with the status code {resp.status} "
                                 "but did not return more information")
            if not isinstance(body.get("response"), dict):
                raise _CallError("Webhook response was absent", False)
        except _CallError as err:
            if hook.get("failurePolicy", "Fail") == "Ignore":
                return
            reason = f"failed to call webhook: {err}" if err.call else str(err)
            raise internal_error(f'failed calling webhook "{name}": {reason}') from None
        response = body["response"]
        allowed = bool(response.get("allowed"))
        if not allowed:
            result = dict(response.get("status") or {})
            code = result.get("code") or 403
            detail = result.get("message") or result.get("reason") or ""
            denied = f'admission webhook "{name}" denied the request'
            message = f"{denied}: {detail}" if detail else f"{denied} without explanation"
            raise StatusError(status_object(code, result.get("reason", "Forbidden" if code == 403
                                                             else ""), message,
                                            name=attrs.name or "Unknown", group=attrs.api_group,
                                            kind=attrs.resource))
        if self.mutating and response.get("patch") and attrs.obj is not None:
            ops = json.loads(base64.b64decode(response["patch"]))
            patched = json_patch(attrs.obj, ops)
            attrs.obj.clear()
            attrs.obj.update(patched)


def trusting(ca_bundle: str) -> Verify | None:
    """How a dial verifies a serving certificate against ``ca_bundle``: trust the issuers
    whose certificates the bundle holds; ``None`` (no verification) for an empty bundle."""
    if not ca_bundle:
        return None
    from k8sbook.core import pki

    roots = set(pki.bundle_subjects(ca_bundle))
    return lambda issuer: issuer in roots


class _CallError(Exception):
    """A webhook that could not be called (``ErrCallingWebhook``'s reason)."""

    def __init__(self, message: str, call: bool = True) -> None:
        super().__init__(message)
        #: the failure happened calling the webhook (``failed to call webhook: ...``)
        self.call = call


def _review_result(resp: HTTPResponse) -> str:
    body = resp.body if isinstance(resp.body, dict) else {}
    answer = body.get("response") or {}
    if not resp.ok:
        return str(resp.status)
    return "allowed" if answer.get("allowed") else "denied"


@dataclass
class Webhooks:
    """The two webhook plugins the apiserver runs, and how they find webhooks."""

    mutating: AdmissionWebhookPlugin
    validating: AdmissionWebhookPlugin
    resolve_service: ServiceResolver


def install(apiserver: Any) -> Webhooks:
    """Add both webhook plugins to an apiserver's admission chain, as kube-apiserver enables
    them by default (mutating last among mutating plugins, validating last among validating
    ones), with the default cluster-IP service resolver over the apiserver's Service cache."""
    resolver = cluster_ip_resolver(lambda ns, name: apiserver.cached("services", ns, name))
    common = {"list_objects": apiserver.cached_objects,
              "get_namespace": lambda ns: apiserver.cached("namespaces", "", ns),
              "resolve_service": resolver, "network": apiserver.network,
              "uid": apiserver.ids.uid}
    hooks = Webhooks(AdmissionWebhookPlugin(True, **common),
                     AdmissionWebhookPlugin(False, **common), resolver)
    apiserver.admission.mutating.append(hooks.mutating)
    apiserver.admission.validating.append(hooks.validating)
    return hooks
