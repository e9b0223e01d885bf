"""``kube-apiserver->pod``: the ``proxy`` subresource of Pods.

Mirrors ``ProxyREST`` (``pkg/registry/core/pod/rest/subresources.go``) and its
``ResourceLocation`` (``pkg/registry/core/pod/strategy.go``): the request names ``<pod>``,
``<pod>:<port>`` or ``<scheme>:<pod>:<port>``; without a port the first ``containerPort`` of
the pod is used; the pod's first IP must be a global unicast address (otherwise
``400 BadRequest`` "address not allowed"). The apiserver dials that address itself, in plain
HTTP unless the scheme says ``https`` (and then without checking the pod's certificate), and
relays the answer; a failed dial is ``503 ServiceUnavailable`` "error trying to reach service:
..." (``proxy.Transport`` in ``apimachinery/pkg/util/proxy``).

In the model the apiserver dials (pod IP, port) on the network (``k8sbook.client.network``)
with an :class:`~k8sbook.client.http.HTTPRequest` and relays the :class:`HTTPResponse` of
whatever listens there (the pod's container), status and body; it does not look into
kubelets or runtimes.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from k8sbook.api.request import Request, Response, UserInfo
from k8sbook.api.resources import ResourceType
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError, Network
from k8sbook.client.rest import Client
from k8sbook.core.status import StatusError, bad_request, not_found, service_unavailable

#: the trace's protocol for the apiserver's proxied requests to a pod
PROXY_PROTOCOL = "HTTP (no TLS, no client auth)"
#: with an ``https:`` scheme in the name: encrypted, but the pod's certificate is not checked
PROXY_PROTOCOL_TLS = "HTTPS (no certificate check, no client auth)"


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
        self.network: Network = apiserver.network

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
        params = {k: v for k, v in req.params.items() if k != "path"}
        address = Address.tcp(ip, int(port or (443 if scheme == "https" else 80)))
        try:
            # the pod network routes the pod IP; whatever listens there answers (through
            # the egress selector: directly, or down a Konnectivity tunnel)
            resp: HTTPResponse = self.apiserver.egress.dial(
                address, HTTPRequest(method, path, body=req.body, params=params),
                protocol=PROXY_PROTOCOL if scheme == "http" else PROXY_PROTOCOL_TLS,
                verb=method, resource=url, result=HTTPResponse.result)
        except DialError as err:
            raise service_unavailable(f"error trying to reach service: {err}") from None
        # the pod's answer is relayed as it came: its status and its body
        return Response(resp.status, resp.body)


def pod_proxy_get(client: Client, namespace: str, pod: str, path: str = "/",
                  port: int | None = None) -> HTTPResponse:
    """``kubectl get --raw /api/v1/namespaces/<ns>/pods/<pod>[:<port>]/proxy<path>``: the
    pod's answer (status and body) as the apiserver relays it; raises :class:`StatusError`
    when the apiserver itself refuses (403, 404, 400, 503)."""
    name = f"{pod}:{port}" if port is not None else pod
    resp = client.send(Request("get", "pods", "", namespace, name, "proxy",
                               params={"path": path}))
    if isinstance(resp.body, dict) and resp.body.get("kind") == "Status":
        raise StatusError(resp.body)
    return HTTPResponse(resp.code, resp.body)


def pod_proxy(client: Client, namespace: str, pod: str, path: str = "/",
              port: int | None = None) -> int:
    """Like :func:`pod_proxy_get`, but only the HTTP status code the pod answered."""
    return pod_proxy_get(client, namespace, pod, path, port).status


def install(apiserver: Any) -> ProxyREST:
    """Register ``pods/proxy`` with ``apiserver.handlers``."""
    proxy = ProxyREST(apiserver)
    apiserver.handlers[("pods", "proxy")] = proxy.connect
    return proxy
