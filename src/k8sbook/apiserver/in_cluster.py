"""The apiserver and the workloads: ``pods/proxy`` one way, service-account tokens the other.

Two paths of the catalog meet here.

``kube-apiserver->pod`` mirrors the ``proxy`` subresource of Pods
(``pkg/registry/core/pod/rest/subresources.go``, ``ProxyREST``) and its ``ResourceLocation``
(``pkg/registry/core/pod/strategy.go``): the request names ``<pod>``, ``<pod>:<port>`` or
``<scheme>:<pod>:<port>``; without a port the first ``containerPort`` of the pod is used; the
pod's first IP must be a global unicast address (otherwise ``400 BadRequest`` "address not
allowed"). The apiserver dials that address itself, in plain HTTP unless the scheme says
``https`` (and then without checking the pod's certificate), and relays the answer; a failed
dial is ``503 ServiceUnavailable`` "error trying to reach service: ..." (``proxy.Transport`` in
``apimachinery/pkg/util/proxy``).

``pod->kube-apiserver`` mirrors ``TokenRequest`` (the ``token`` subresource of
ServiceAccounts, ``pkg/registry/core/serviceaccount/storage/token.go``), what the kubelet's
projected ``serviceAccountToken`` volume asks for (``pkg/kubelet/token``, the
``kube-api-access-*`` volume: 3607 s, bound to the pod), and what client-go's
``rest.InClusterConfig`` does with the mounted token.

Simplified: a token is an opaque random string that the apiserver's token table maps to the
service account's identity (no signed JWT, no ``iss``/``aud``/``exp`` claims checked at
authentication); the binding to the pod and the expiry are recorded in :attr:`TokenREST.issued`
but not enforced when the token is used. The pod's application answers an HTTP request with a
status code only (200 while healthy, 503 when a test makes it unhealthy), no body.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from k8sbook.api import validation
from k8sbook.api.request import Request, Response
from k8sbook.api.resources import ResourceType, by_plural
from k8sbook.apiserver.authentication import BearerToken, UserInfo, service_account_user
from k8sbook.client.rest import Client
from k8sbook.core.status import (
    StatusError,
    bad_request,
    conflict,
    invalid,
    method_not_supported,
    not_found,
    service_unavailable,
)

#: the trace's protocol for the apiserver's proxied requests to a pod
PROXY_PROTOCOL = "HTTP (no TLS, no client auth)"
#: with an ``https:`` scheme in the name: encrypted, but the pod's certificate is not checked
PROXY_PROTOCOL_TLS = "HTTPS (no certificate check, no client auth)"
#: kubeadm: ``--service-account-issuer=https://kubernetes.default.svc.<dnsDomain>``; with no
#: ``--api-audiences`` the apiserver's audiences default to the issuer
API_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)
#: ``TokenRequestSpec.expirationSeconds`` default (``SetDefaults_TokenRequestSpec``)
DEFAULT_EXPIRATION_SECONDS = 3600
#: ``serviceaccount.WarnOnlyBoundTokenExpirationSeconds``: what the ServiceAccount admission
#: plugin puts in the ``kube-api-access-*`` projected volume
WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS = 60 * 60 + 7
#: ``serviceaccount.ExpirationExtensionSeconds``: the lifetime such a token really gets while
#: ``--service-account-extend-token-expiration`` is true (the default)
EXPIRATION_EXTENSION_SECONDS = 24 * 365 * 60 * 60
#: where the kubelet mounts the token in every container (``kube-api-access-*`` volume)
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


# -- pods/proxy ---------------------------------------------------------------------------
def split_scheme_name_port(id_: str) -> tuple[str, str, str] | None:
    """``utilnet.SplitSchemeNamePort``: ``name``, ``name:port`` or ``scheme:name:port``."""
    parts = id_.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        return None
    if not name or scheme not in ("", "http", "https"):
        return None
    return scheme, name, port


def resource_location(pod: dict[str, Any], scheme: str, port: str) -> tuple[str, str, str]:
    """``pod.ResourceLocation``: (scheme, ip, port) to dial, or ``400 address not allowed``."""
    if not port:
        for c in pod["spec"].get("containers", []):
            if c.get("ports"):
                port = str(c["ports"][0]["containerPort"])
                break
    ips = (pod.get("status") or {}).get("podIPs") or []
    ip = ips[0].get("ip", "") if ips else ""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        addr = None
    # Go's ``IP.IsGlobalUnicast``: private ranges count; loopback, link-local, multicast,
    # unspecified and the IPv4 broadcast address do not
    if addr is None or addr.is_loopback or addr.is_link_local or addr.is_multicast or \
            addr.is_unspecified or str(addr) == "255.255.255.255":
        raise bad_request("address not allowed")
    return scheme or "http", ip, port


class ProxyREST:
    """``GET /api/v1/namespaces/{ns}/pods/{name}[:{port}]/proxy/{path}``."""

    def __init__(self, apiserver: Any) -> None:
        self.apiserver = apiserver

    def _runtime_for(self, ip: str) -> Any:
        """The pod network routes ``ip`` to the node whose pod CIDR contains it."""
        for server in self.apiserver.kubelet_client.servers.values():
            kubelet = server.kubelet
            if ipaddress.ip_address(ip) in ipaddress.ip_network(kubelet.pod_cidr):
                return kubelet.runtime
        return None

    def connect(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        api = self.apiserver
        parsed = split_scheme_name_port(req.name)
        if parsed is None:
            raise bad_request(f'invalid pod request "{req.name}"')
        scheme, name, port = parsed
        pod = api.storage.get(rt.key(req.namespace, name))
        if pod is None:
            raise not_found("pods", "", name)
        scheme, ip, port = resource_location(pod, scheme, port)
        path = str(req.params.get("path", "/")) or "/"
        if not path.startswith("/"):
            path = "/" + path
        host = f"{ip}:{port}" if port else ip
        url = f"{scheme}://{host}{path}"
        method = {"get": "GET", "create": "POST", "update": "PUT", "patch": "PATCH",
                  "delete": "DELETE"}.get(req.verb, req.verb.upper())
        msg = api.trace.record(api.clock.now(), "kube-apiserver", f"pod/{name}",
                               "kube-apiserver->pod",
                               PROXY_PROTOCOL if scheme == "http" else PROXY_PROTOCOL_TLS,
                               method, url, "", "")
        runtime = self._runtime_for(ip)
        code = runtime.http_get(ip, int(port or (443 if scheme == "https" else 80))) \
            if runtime is not None else None
        if code is None:
            api.trace.complete(msg, "connection refused")
            raise service_unavailable(f"error trying to reach service: dial tcp {host}: "
                                      "connect: connection refused")
        api.trace.complete(msg, str(code))
        return Response(code, {"code": code, "url": url})


def pod_proxy(client: Client, namespace: str, pod: str, path: str = "/",
              port: int | None = None) -> int:
    """``kubectl get --raw /api/v1/namespaces/<ns>/pods/<pod>[:<port>]/proxy<path>``.

    Returns the HTTP status code the pod answered, relayed by the apiserver; raises
    :class:`StatusError` when the apiserver itself refuses (403, 404, 400, 503)."""
    name = f"{pod}:{port}" if port is not None else pod
    resp = client.send(Request("get", "pods", "", namespace, name, "proxy",
                               params={"path": path}))
    body = resp.body or {}
    if body.get("kind") == "Status":
        raise StatusError(body)
    return resp.code


# -- serviceaccounts/token (TokenRequest) -------------------------------------------------
@dataclass(frozen=True)
class IssuedToken:
    """What the model remembers of a token (a real one carries this as signed JWT claims)."""

    service_account: str  # namespace/name
    audiences: tuple[str, ...]
    bound_kind: str
    bound_name: str
    bound_uid: str
    issued_at: float
    expires_at: float  # the token's real lifetime (``exp``)
    warn_after: float | None  # set when the lifetime was extended


class TokenREST:
    """``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token``."""

    def __init__(self, apiserver: Any, *, extend_expiration: bool = True) -> None:
        self.apiserver = apiserver
        #: ``--service-account-extend-token-expiration`` (default true)
        self.extend_expiration = extend_expiration
        self.issued: dict[str, IssuedToken] = {}

    def create(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        api = self.apiserver
        if req.verb != "create":
            raise method_not_supported("serviceaccounts/token", "", req.verb)
        body = req.body if isinstance(req.body, dict) else None
        if body is None or body.get("kind") != "TokenRequest" or \
                body.get("apiVersion") != "authentication.k8s.io/v1":
            raise bad_request("the body of a token request must be an authentication.k8s.io/v1 "
                              "TokenRequest")
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != req.name:
            raise invalid("TokenRequest", "authentication.k8s.io", req.name, [validation.invalid(
                "metadata.name", meta["name"], "must match the service account name if "
                "specified")])
        api._admit("CREATE", rt, req, user, body, None)  # NodeRestriction
        sa = api.storage.get(rt.key(req.namespace, req.name))
        if sa is None:
            raise not_found("serviceaccounts", "", req.name)
        spec = dict(body.get("spec") or {})
        audiences = tuple(spec.get("audiences") or API_AUDIENCES)
        exp = spec.get("expirationSeconds", DEFAULT_EXPIRATION_SECONDS)
        if not isinstance(exp, int) or exp < 600:
            raise invalid("TokenRequest", "authentication.k8s.io", "", [validation.invalid(
                "spec.expirationSeconds", exp, "may not specify a duration less than 10 "
                "minutes")])
        if exp > 1 << 32:
            raise invalid("TokenRequest", "authentication.k8s.io", "", [validation.invalid(
                "spec.expirationSeconds", exp, "may not specify a duration larger than 2^32 "
                "seconds")])
        ref = spec.get("boundObjectRef") or None
        bound: dict[str, Any] | None = None
        extra: list[tuple[str, str]] = []
        if ref is not None:
            kind = ref.get("kind", "")
            plural = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}.get(kind)
            if ref.get("apiVersion") != "v1" or plural is None:
                raise bad_request(f"cannot bind token to object of type "
                                  f"{ref.get('apiVersion')}, Kind={kind}")
            brt = by_plural("", plural)
            assert brt is not None
            bound = api.storage.get(brt.key(req.namespace if brt.namespaced else "",
                                            ref.get("name", "")))
            if bound is None:
                raise not_found(plural, "", ref.get("name", ""))
            if kind == "Pod":
                if bound["spec"].get("serviceAccountName", "default") != req.name:
                    raise bad_request(f'cannot bind token for serviceaccount "{req.name}" to '
                                      "pod running with different serviceaccount name.")
                extra = [("authentication.kubernetes.io/pod-name", bound["metadata"]["name"]),
                         ("authentication.kubernetes.io/pod-uid", bound["metadata"]["uid"])]
                if bound["spec"].get("nodeName"):
                    extra.insert(0, ("authentication.kubernetes.io/node-name",
                                     bound["spec"]["nodeName"]))
            if ref.get("uid") and ref["uid"] != bound["metadata"]["uid"]:
                raise conflict(kind, "", ref.get("name", ""),
                               f"the UID in the bound object reference ({ref['uid']}) does not "
                               "match the UID in record. The object might have been deleted "
                               "and then recreated")
        now = api.clock.now()
        lifetime, warn_after = exp, None
        if self.extend_expiration and bound is not None and ref and ref.get("kind") == "Pod" \
                and exp == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS \
                and set(audiences) <= set(API_AUDIENCES):
            lifetime, warn_after = EXPIRATION_EXTENSION_SECONDS, now + exp
        token = "model-sa-token." + api.ids.uid().replace("-", "")
        ns, name = req.namespace, req.name
        sa_user = service_account_user(ns, name, sa["metadata"]["uid"])
        api.authn.add_token(token, UserInfo(sa_user.name, sa_user.groups, sa_user.uid,
                                            tuple(extra)))
        self.issued[token] = IssuedToken(
            f"{ns}/{name}", audiences, (ref or {}).get("kind", ""), (ref or {}).get("name", ""),
            (bound or {}).get("metadata", {}).get("uid", ""), now, now + lifetime, warn_after)
        spec.update({"audiences": list(audiences), "expirationSeconds": exp})
        out = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "metadata": {"name": name, "namespace": ns,
                            "creationTimestamp": api.clock.timestamp(now)},
               "spec": spec,
               # the status reports the requested lifetime, even when the real one is extended
               "status": {"token": token,
                          "expirationTimestamp": api.clock.timestamp(now + exp)}}
        return Response(201, out)


@dataclass
class Installed:
    proxy: ProxyREST
    tokens: TokenREST


def install(apiserver: Any) -> Installed:
    """Register ``pods/proxy`` and ``serviceaccounts/token`` with ``apiserver.handlers``."""
    proxy, tokens = ProxyREST(apiserver), TokenREST(apiserver)
    apiserver.handlers[("pods", "proxy")] = proxy.connect
    apiserver.handlers[("serviceaccounts", "token")] = tokens.create
    return Installed(proxy, tokens)


# -- the kubelet's side and the workload's side -------------------------------------------
def token_request(pod: dict[str, Any],
                  expiration_seconds: int = WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS,
                  audiences: list[str] | None = None) -> dict[str, Any]:
    """The TokenRequest the kubelet sends for a pod's projected service-account token."""
    spec: dict[str, Any] = {"expirationSeconds": expiration_seconds,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                               "name": pod["metadata"]["name"],
                                               "uid": pod["metadata"]["uid"]}}
    if audiences:
        spec["audiences"] = audiences
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": {"name": pod["spec"].get("serviceAccountName", "default"),
                         "namespace": pod["metadata"]["namespace"]},
            "spec": spec}


def mount_service_account_token(kubelet: Any, namespace: str, pod_name: str) -> dict[str, Any]:
    """What the kubelet does for the pod's ``kube-api-access-*`` volume: get the pod from
    its informer cache, request a token for the pod's ServiceAccount, bound to the pod, and
    keep it with the pod's runtime state (the file at :data:`TOKEN_PATH`).

    Returns the TokenRequest the apiserver answered; raises :class:`StatusError` if refused."""
    pod = kubelet.pod_informer.indexer.get_by_key(f"{namespace}/{pod_name}")
    if pod is None:
        raise not_found("pods", "", pod_name)
    body = token_request(pod)
    sa = body["metadata"]["name"]
    out = kubelet.client.request(Request("create", "serviceaccounts", "", namespace, sa,
                                         "token", body=body))
    rec = kubelet.record(namespace, pod_name)
    if rec is not None:
        rec.files[TOKEN_PATH] = out["status"]["token"]
    return out


def in_cluster_client(cluster: Any, kubelet: Any, namespace: str, pod_name: str) -> Client:
    """``rest.InClusterConfig()`` in the pod's container: the mounted token as a bearer
    token, for the Service ``kubernetes`` (``KUBERNETES_SERVICE_HOST``:``_PORT``)."""
    rec = kubelet.record(namespace, pod_name)
    token = rec.files.get(TOKEN_PATH) if rec is not None else None
    if not token:
        raise FileNotFoundError(f"open {TOKEN_PATH}: no such file or directory")
    return cluster.client(f"pod/{namespace}/{pod_name}", BearerToken(token))
