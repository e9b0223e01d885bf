"""The kubelet's own HTTPS server on port 10250.

Mirrors ``pkg/kubelet/server`` (``server.go``, ``auth.go``) and the streaming half of the CRI
(``k8s.io/kubelet/pkg/cri/streaming``), v1.35.0. What kube-apiserver calls for ``pods/log``
(``/containerLogs``), ``pods/exec`` (``/exec``), ``pods/attach`` (``/attach``) and
``pods/portforward`` (``/portForward``),
and what metrics-server scrapes (``/metrics/resource``).

For ``exec`` and ``portForward`` the kubelet asks the runtime for a streaming URL over the CRI
(``Exec``, ``PortForward``), then connects to the runtime's streaming server on the node's
loopback and relays the stream (path ``kubelet->container-runtime``, protocol
``HTTP streaming (SPDY/WebSocket)``): the output and exit code come from the command the
runtime ran in the container.

:meth:`KubeletServer.handle` answers ``(HTTP status, body)``; for ``/exec`` the body is
``{"text": <stdout and stderr>, "exitCode": <int>, "stdout", "stderr", "error": <Status>}``
(status 200 whatever the exit code: kubectl learns a non-zero code from the ``Status`` on the
stream's error channel; what the caller wrote on stdin is the request body's ``stdin``), or
for an interactive session (the body ``{"session": {"stdin": .., "tty": ..}}``)
``{"session": <the runtime's StreamSession>}``, whose streams the kubelet relays as they flow,
as its streaming proxy does,
for ``/containerLogs``
``{"text": ...}`` (and ``"follow"``, a callable that gives later lines, when following), for ``/portForward`` ``{"text": "Forwarding from ..."}``, and for errors
``{"message": ...}``. :meth:`KubeletServer.serve_http` is the same as an
:class:`~k8sbook.client.http.HTTPResponse` (the handler on port 10250).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from k8sbook.api.request import CLUSTER_CA, BearerToken, ClientCertificate
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import DialError, Network
from k8sbook.client.rest import Client
from k8sbook.core.clock import Clock
from k8sbook.node.container_runtime import CONTAINER_RUNNING, STREAM_PROTOCOL, loopback
from k8sbook.node.cri import CRIClient, RPCError
from k8sbook.node.kubelet import logs
from k8sbook.node.kubelet.types import PodRecord


class HostInterface(Protocol):
    """What the server needs of the kubelet (upstream's ``server.HostInterface``, which the
    ``Kubelet`` implements): whether it runs, its client and clock (authentication and
    authorization), its CRI client and network (exec and port-forward streams), its pods'
    records and logs, and its resource metrics."""

    node_name: str
    instance: str
    running: bool
    clock: Clock
    client: Client
    network: Network
    cri: CRIClient

    def record(self, namespace: str, name: str) -> PodRecord | None: ...

    def read_container_log(self, rec: PodRecord, container: str,
                           attempt: int | None = None) -> str: ...

    def resource_metrics(self) -> str: ...


class KubeletServer:
    """The kubelet's own HTTPS server on port 10250 (``pkg/kubelet/server``).

    A caller must present a client certificate signed by the cluster CA (``--client-ca-file``;
    kubeadm's KubeletConfiguration turns anonymous access off) or a bearer token the apiserver
    vouches for in a TokenReview (``authentication.webhook``, cached ``cacheTTL`` = 2 min), and
    is authorized by asking the apiserver a ``SubjectAccessReview`` (authorization mode
    ``Webhook``): ``/containerLogs``, ``/exec`` and ``/portForward`` all map to the
    ``nodes/proxy`` subresource (``/metrics/*`` to ``nodes/metrics``), with verb ``get`` for
    GET and ``create`` for POST. Answers are cached (5 min when allowed, 30 s when
    not: ``cacheAuthorizedTTL`` / ``cacheUnauthorizedTTL``). The serving certificate is the
    kubelet's self-signed one unless serving-certificate bootstrap is configured.
    """

    CACHE_AUTHORIZED_TTL = 300.0
    CACHE_UNAUTHORIZED_TTL = 30.0
    #: ``authentication.webhook.cacheTTL`` (KubeletConfiguration default 2m)
    TOKEN_CACHE_TTL = 120.0

    def __init__(self, host: HostInterface) -> None:
        self.kubelet = host
        self.serving_cert_issuer = f"{host.node_name}-ca"  # self-signed at start-up
        self._cache: dict[tuple[str, tuple[str, ...], str], tuple[bool, float]] = {}
        self._token_cache: dict[str, tuple[tuple[str, tuple[str, ...]] | None, float]] = {}

    def reachable(self) -> bool:
        """Whether the kubelet process serves (for ``apiserver/kubelet_client.py`` until it
        dials port 10250 itself; whether the network lets a caller through is the network's
        business, not the kubelet's)."""
        return self.kubelet.running

    def _authenticate_token(self, token: str) -> tuple[str, tuple[str, ...]] | None:
        """Webhook token authentication: a TokenReview, cached ``cacheTTL`` (2 min)."""
        now = self.kubelet.clock.now()
        hit = self._token_cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                  "metadata": {}, "spec": {"token": token}}
        status = self.kubelet.client.create(review).get("status", {})
        who = None
        if status.get("authenticated"):
            u = status.get("user", {})
            who = (u.get("username", ""), tuple(u.get("groups", [])))
        self._token_cache[token] = (who, now + self.TOKEN_CACHE_TTL)
        return who

    def _authorize(self, user: str, groups: tuple[str, ...], verb: str,
                   subresource: str = "proxy") -> bool:
        key = (user, groups, verb + "/" + subresource)
        now = self.kubelet.clock.now()
        if key in self._cache and self._cache[key][1] > now:
            return self._cache[key][0]
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "metadata": {},
               "spec": {"user": user, "groups": list(groups),
                        "resourceAttributes": {"verb": verb, "resource": "nodes",
                                               "subresource": subresource,
                                               "name": self.kubelet.node_name}}}
        allowed = bool(self.kubelet.client.create(sar)["status"].get("allowed"))
        ttl = self.CACHE_AUTHORIZED_TTL if allowed else self.CACHE_UNAUTHORIZED_TTL
        self._cache[key] = (allowed, now + ttl)
        return allowed

    def serve_http(self, req: HTTPRequest) -> HTTPResponse:
        """The handler the kubelet listens with on port 10250."""
        code, body = self.handle(req.method, req.path, req.credentials, req.params,
                                 body=req.body)
        return HTTPResponse(code, body)

    def handle(self, method: str, path: str, credentials: Any,
               params: dict[str, Any], body: Any = None) -> tuple[int, dict[str, Any]]:
        """Serve one request; returns (HTTP status, body)."""
        if isinstance(credentials, BearerToken):
            who = self._authenticate_token(credentials.token)
            if who is None:
                return 401, {"message": "Unauthorized"}
            user, groups = who
        elif isinstance(credentials, ClientCertificate) and credentials.issuer == CLUSTER_CA:
            user = credentials.common_name
            groups = (*credentials.organizations, "system:authenticated")
        else:
            return 401, {"message": "Unauthorized"}
        verb = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}[method]
        bare = path.split("?", 1)[0]
        # pkg/kubelet/server/auth.go: /metrics/* is nodes/metrics, /stats/* nodes/stats ...
        sub = "metrics" if bare == "/metrics" or bare.startswith("/metrics/") else "proxy"
        if not self._authorize(user, groups, verb, sub):
            # ``InstallAuthFilter`` (v1.35): the subresources it tried, as Go prints a slice,
            # written as plain text (``WriteErrorString``) by a format that ends in a newline
            return 403, {"message": f"Forbidden (user={user}, verb={verb}, resource=nodes, "
                                    f"subresource(s)=[{sub}])\n"}
        if bare == "/metrics/resource":
            return 200, {"text": self.kubelet.resource_metrics()}
        parts = bare.strip("/").split("/")
        if len(parts) < 3:
            return 404, {"message": "404 page not found"}
        action, ns, pod = parts[0], parts[1], parts[2]
        k = self.kubelet
        rec = k.record(ns, pod)
        if rec is None:
            return 404, {"message": f'pod "{pod}" not found'}
        if action == "portForward":
            port = int(params.get("ports", 80))
            data = body.get("data", "") if isinstance(body, dict) else ""
            try:
                url = k.cri.port_forward(rec.sandbox_id, port)
                resp = self._stream(url, {"data": str(data)})
            except (RPCError, DialError) as err:
                return 500, {"message": str(err)}
            if resp.status != 101:
                return 500, {"message": f"error forwarding port {port} to pod {rec.uid}: "
                                        f"{resp.body['message']}"}
            return 200, {"text": f"Forwarding from 127.0.0.1:{port} -> {port}: "
                                 f"HTTP {resp.body['status']}", "data": resp.body["data"]}
        if len(parts) < 4:
            return 404, {"message": "404 page not found"}
        container = parts[3]
        cid = rec.container_ids.get(container)
        if cid is None:
            return 404, {"message": f'container "{container}" in pod "{pod}" is not available'}
        if action == "containerLogs":
            return self._container_logs(rec, pod, container, cid, params)
        if action not in ("exec", "attach"):
            return 404, {"message": "404 page not found"}
        # getExecRequestParams: the command is the URL's ``command`` values, decoded
        query = parse_qs(urlsplit(path).query, keep_blank_values=True)
        cmd = query.get("command") or []
        interactive = isinstance(body, dict) and isinstance(body.get("session"), dict)
        try:
            url = k.cri.exec(cid, cmd) if action == "exec" else k.cri.attach(cid)
            stdin = body.get("stdin", "") if isinstance(body, dict) else ""
            resp = self._stream(url, {"session": body["session"]} if interactive
                                else {"stdin": str(stdin)})
        except (RPCError, DialError) as err:
            return 500, {"message": str(err)}
        if resp.status != 101:
            return 500, {"message": resp.body["message"]}
        b = resp.body
        if interactive:  # the streams stay open: the session relays them as they flow
            return 200, {"session": b["session"]}
        return 200, {"text": b["output"], "exitCode": b["exitCode"], "stdout": b["stdout"],
                     "stderr": b["stderr"], "error": b["error"]}

    def _container_logs(self, rec: PodRecord, pod: str, container: str, cid: str,
                        params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The kubelet reads the log file the runtime writes under /var/log/pods itself
        (:mod:`k8sbook.node.kubelet.logs`); with ``follow`` the body's ``follow`` gives what
        is written later, until the container stops."""
        k = self.kubelet
        attempt = rec.attempts.get(container, 0)
        previous = str(params.get("previous", "")).lower() in ("1", "true")
        if previous:
            if attempt == 0:
                return 400, {"message": logs.previous_not_found(container, pod)}
            attempt -= 1

        def running() -> bool:
            try:
                return bool(k.cri.container_status(cid)["state"] == CONTAINER_RUNNING)
            except RPCError:
                return False
        opts = logs.LogOptions.from_params(params, k.clock)
        reader = logs.LogReader(lambda: k.read_container_log(rec, container, attempt), opts,
                                running, k.clock)
        body: dict[str, Any] = {"text": reader.read()}
        if opts.follow and not previous:
            body["follow"] = reader.more
        return 200, body

    def _stream(self, url: str, streams: dict[str, Any] | None = None) -> HTTPResponse:
        """Connect to the runtime's streaming server (on the node's loopback) and relay."""
        k = self.kubelet
        rest = url.split("://", 1)[1]
        hostport, path = rest.split("/", 1)
        port = int(hostport.rsplit(":", 1)[1])
        resp: HTTPResponse = k.network.dial(
            k.instance, loopback(k.node_name, port), HTTPRequest("POST", "/" + path, body=streams),
            protocol=STREAM_PROTOCOL, verb="POST", resource=url, result=_stream_result)
        return resp


def _stream_result(resp: HTTPResponse) -> str:
    if resp.status != 101:
        return str(resp.status)
    body = resp.body or {}
    if "exitCode" in body:
        return f"101 Switching Protocols, exit code {body['exitCode']}"
    if "session" in body:
        return "101 Switching Protocols (streaming)"
    return "101 Switching Protocols"
