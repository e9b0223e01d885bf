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

This is the one place in this chapter's paths where the *apiserver* opens the connection:
trace messages travel on ``kube-apiserver->webhook``.

The model has no TLS: the ``caBundle`` is not checked, and the webhook "server" is an
in-process :class:`WebhookServer` registered under the Service's DNS name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8sbook.api.patch import json_patch
from k8sbook.api.selectors import selector_matches
from k8sbook.apiserver.admission import AdmissionAttributes
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError, internal_error, status_object
from k8sbook.core.trace import Trace

PATH = "kube-apiserver->webhook"
PROTOCOL = "HTTPS (AdmissionReview v1)"
DEFAULT_TIMEOUT = 10

Review = dict[str, Any]
Handler = Callable[[Review], dict[str, Any]]


@dataclass
class WebhookServer:
    """A webhook backend: ``handler(request) -> response`` (the AdmissionReview's parts)."""

    name: str  # e.g. "policy.example.svc" (the Service's DNS name)
    handler: Handler
    available: bool = True
    latency: float = 0.01  # seconds the server takes to answer
    received: list[Review] = field(default_factory=list)


class WebhookRegistry:
    """Where the apiserver finds webhook servers by Service DNS name (the model's network)."""

    def __init__(self) -> None:
        self.servers: dict[str, WebhookServer] = {}

    def register(self, server: WebhookServer) -> WebhookServer:
        self.servers[server.name] = server
        return server


def _rule_matches(rule: dict[str, Any], attrs: AdmissionAttributes, version: str) -> bool:
    def has(values: list[str] | None, want: str) -> bool:
        return bool(values) and ("*" in values or want in values)

    resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    scope = rule.get("scope", "*")
    namespaced = bool(attrs.namespace)
    return (has(rule.get("operations"), attrs.operation)
            and has(rule.get("apiGroups"), attrs.api_group)
            and has(rule.get("apiVersions"), version)
            and (has(rule.get("resources"), resource)
                 or (attrs.subresource and has(rule.get("resources"), f"*/{attrs.subresource}")))
            and (scope == "*" or (scope == "Namespaced") == namespaced))


class AdmissionWebhookPlugin:
    """The two webhook admission plugins in one class; ``mutating`` picks which."""

    def __init__(self, mutating: bool, list_objects: Callable[[str], list[dict[str, Any]]],
                 get_namespace: Callable[[str], dict[str, Any] | None], registry: WebhookRegistry,
                 clock: Clock, trace: Trace, uid: Callable[[], str]) -> None:
        self.mutating = mutating
        self.name = "MutatingAdmissionWebhook" if mutating else "ValidatingAdmissionWebhook"
        self._list = list_objects
        self._namespace = get_namespace
        self.registry = registry
        self.clock = clock
        self.trace = trace
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
                    self._call(hook, attrs, version)

    def _call(self, hook: dict[str, Any], attrs: AdmissionAttributes, version: str) -> None:
        name = hook["name"]
        svc = (hook.get("clientConfig") or {}).get("service") or {}
        host = f"{svc.get('name')}.{svc.get('namespace')}.svc"
        port = svc.get("port", 443)
        timeout = hook.get("timeoutSeconds", DEFAULT_TIMEOUT)
        url = f"https://{host}:{port}{svc.get('path', '/')}?timeout={timeout}s"
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
            "dryRun": False,
        }
        server = self.registry.servers.get(host)
        error = ""
        if server is None:
            error = f'Post "{url}": dial tcp: lookup {host}: no such host'
        elif not server.available:
            error = f'Post "{url}": dial tcp {host}:{port}: connect: connection refused'
        elif server.latency > timeout:
            error = f'Post "{url}": context deadline exceeded'
        if error:
            policy = hook.get("failurePolicy", "Fail")
            self.trace.record(self.clock.now(), "kube-apiserver", "webhook", PATH, PROTOCOL,
                              "POST", host, name, f"failed ({policy})")
            if policy == "Ignore":
                return
            raise internal_error(f'failed calling webhook "{name}": failed to call webhook: '
                                 f"{error}")
        assert server is not None
        server.received.append(request)
        response = server.handler(json.loads(json.dumps(request)))
        allowed = bool(response.get("allowed"))
        self.trace.record(self.clock.now(), "kube-apiserver", "webhook", PATH, PROTOCOL, "POST",
                          host, name, "allowed" if allowed else "denied")
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


def install(apiserver: Any) -> WebhookRegistry:
    """Add both webhook plugins to an apiserver's admission chain, as kube-apiserver enables
    them by default (mutating last among mutating plugins, validating last among validating
    ones); returns the registry where webhook servers are found."""
    registry = WebhookRegistry()
    common = {"list_objects": apiserver.cached_objects,
              "get_namespace": lambda ns: next(
                  (n for n in apiserver.cached_objects("namespaces")
                   if n["metadata"]["name"] == ns), None),
              "registry": registry, "clock": apiserver.clock, "trace": apiserver.trace,
              "uid": apiserver.ids.uid}
    apiserver.admission.mutating.append(AdmissionWebhookPlugin(True, **common))
    apiserver.admission.validating.append(AdmissionWebhookPlugin(False, **common))
    return registry
