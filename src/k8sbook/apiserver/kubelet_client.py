"""The one path the apiserver opens towards a node: kube-apiserver -> kubelet on port 10250.

Mirrors three pieces of kube-apiserver:

* the pod ``log``, ``exec``, ``attach`` and ``portforward`` subresources (``pkg/registry/core/pod/rest``:
  ``LogREST``, ``ExecREST``, ``PortForwardREST``): they store nothing; they find the node the
  pod is bound to and return a *location* on that node's kubelet, which the apiserver then
  connects to and streams back;
* the apiserver's kubelet client (``pkg/kubelet/client``, flags ``--kubelet-client-certificate``,
  ``--kubelet-preferred-address-types`` with default order Hostname, InternalDNS, InternalIP,
  ExternalDNS, ExternalIP, and ``--kubelet-certificate-authority``). It authenticates to the
  kubelet with kubeadm's ``apiserver-kubelet-client`` certificate (CN
  ``kube-apiserver-kubelet-client``), which kubeadm binds to the ``system:kubelet-api-admin``
  role (ClusterRoleBinding ``kubeadm:apiserver-kubelet-client``, since the patch releases
  v1.33.12, v1.34.8, v1.35.5 and v1.36.1, kubernetes#138957; before them the certificate carried
  O ``kubeadm:cluster-admins``). It checks the kubelet's
  *serving* certificate only if ``--kubelet-certificate-authority`` is set; kubeadm does not
  set it, so by default the connection is encrypted but the kubelet is not verified;
* ``SubjectAccessReview`` (``pkg/registry/authorization/subjectaccessreview``): what the
  kubelet's webhook authorizer sends back to the apiserver to ask whether the caller may use
  ``nodes/proxy``. It is evaluated by the apiserver's authorizers and never stored.

The apiserver reaches the kubelet only through the network (``k8sbook.client.network``): it
dials the address the Node advertises (a ``Hostname`` resolves through the network's host
table, as the control plane's DNS would) with an :class:`~k8sbook.client.http.HTTPRequest`,
verifies the serving certificate's issuer only when ``certificate_authority`` is set, and
maps a failed dial to a ``500`` with Go's error and no reason (``Get "https://node-a:10250/...": dial tcp
192.168.0.3:10250: connect: connection refused``). An error the kubelet answers with (its
bodies are plain text) becomes, for ``log``, what ``GenericHttpResponseChecker`` makes of it
(:func:`response_check`: a 403 keeps the kubelet's text, newline and all, followed by
`` ( pods/log <pod>)``). The model installs these handlers in the
apiserver with :func:`install`; the kubelet side is :class:`k8sbook.node.kubelet.server.KubeletServer`
listening on (node IP, 10250).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from k8sbook.api.request import Request, Response
from k8sbook.api.resources import ResourceType
from k8sbook.apiserver.authentication import ClientCertificate, UserInfo
from k8sbook.apiserver.authorization import Attributes
from k8sbook.client.http import HTTPRequest, HTTPResponse
from k8sbook.client.network import Address, DialError, Network
from k8sbook.core.status import (
    StatusError,
    bad_request,
    generic_server_response,
    internal_error,
    not_found,
    unknown_error,
)

KUBELET_CLIENT_CERT = ClientCertificate("kube-apiserver-kubelet-client")
#: ``--kubelet-preferred-address-types`` default order
PREFERRED_ADDRESS_TYPES = ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP")
PROTOCOL = "HTTPS (client cert kube-apiserver-kubelet-client)"
#: ``--kubelet-timeout`` default (``KubeletClientConfig.HTTPTimeout``, 5 s)
KUBELET_TIMEOUT = 5.0
#: ``PodExecOptions`` fields and the kubelet's query parameters for them
#: (``api.ExecStdinParam`` ``input``, ``ExecStdoutParam`` ``output``, ``ExecStderrParam``
#: ``error``, ``ExecTTYParam`` ``tty``)
STREAM_PARAMS = (("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty"))


def stream_query(subresource: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """``streamParams`` then ``params.Encode()`` (``pkg/registry/core/pod/strategy.go``,
    ``ExecLocation``/``AttachLocation``): ``stdin``, ``stdout``, ``stderr`` and ``tty`` become
    ``input``, ``output``, ``error`` and ``tty`` ``=1``, each exec argument a ``command``;
    Go's ``url.Values.Encode`` sorts by key and keeps each key's values in order, and
    :func:`urllib.parse.urlencode` escapes them as its ``QueryEscape`` does (a space as
    ``+``, ``/``, ``&``, ``?`` and non-ASCII bytes as ``%XX``)."""
    query = [(kubelet, "1") for opt, kubelet in STREAM_PARAMS
             if str(params.get(opt, "")).lower() in ("1", "true")]
    if subresource == "exec":
        cmd = params.get("command") or []
        query += [("command", str(c)) for c in ([cmd] if isinstance(cmd, str) else cmd)]
    return sorted(query, key=lambda kv: kv[0])  # stable: a key's values stay in order


def _url_op(method: str) -> str:
    """``net/http``'s ``urlErrorOp``: ``GET`` -> ``Get``, ``POST`` -> ``Post``."""
    return method[:1] + method[1:].lower()


class KubeletClient:
    """The apiserver's side of the connection: it finds the kubelet by the Node's addresses
    and dials it on the network, as ``pkg/kubelet/client`` does; it keeps no list of
    kubelets."""

    def __init__(self, apiserver: Any) -> None:
        self.apiserver = apiserver
        self.network: Network = apiserver.network
        #: ``--kubelet-certificate-authority`` (kubeadm leaves it unset): when set, the
        #: kubelet's serving certificate must be issued by it
        self.certificate_authority: str | None = None
        #: ``--kubelet-preferred-address-types``
        self.preferred_address_types: tuple[str, ...] = PREFERRED_ADDRESS_TYPES

    def location(self, node: dict[str, Any]) -> tuple[str, int]:
        """``NodeConnectionInfoGetter.GetConnectionInfo``: the first address of the first
        preferred type (``nodeutil.GetPreferredNodeAddress``) and the kubelet's port from
        ``status.daemonEndpoints.kubeletEndpoint``."""
        status = node.get("status", {})
        addresses = status.get("addresses", [])
        port = status.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port", 10250)
        for kind in self.preferred_address_types:
            for a in addresses:
                if a.get("type") == kind:
                    return a["address"], port
        raise bad_request(f"no preferred addresses found; known addresses: {addresses}")

    def connect(self, rt: ResourceType, req: Request, user: UserInfo) -> Response:
        """``pods/log`` (GET), ``pods/exec`` and ``pods/portforward`` (POST, "create")."""
        api = self.apiserver
        pod = api.storage.get(rt.key(req.namespace, req.name))
        if pod is None:
            raise not_found("pods", "", req.name)
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            raise bad_request(f"pod {req.name} does not have a host assigned")
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = req.params.get("container") or (containers[0] if len(containers) == 1
                                                   else "")
        if req.subresource != "portforward" and not container:
            raise bad_request(f"a container name must be specified for pod {req.name}, choose "
                              f"one of: [{' '.join(containers)}]")
        if container and container not in containers:
            raise bad_request(f"container {container} is not valid for pod {req.name}")
        node = api.cached("nodes", "", node_name)
        if node is None:
            raise not_found("nodes", "", node_name)
        host, port = self.location(node)
        if isinstance(req.body, dict) and "upgrade" in req.body and \
                str(req.body["upgrade"]).lower() != "websocket":
            # UpgradeAwareHandler(upgradeRequired=true): a request that is not an upgrade is
            # refused after the location checks; the front end serves exec and attach over
            # WebSocket and SPDY and port-forward over WebSocket only, so
            # a bare SPDY port-forward (kubectl's fallback) is refused the same way
            raise bad_request("Upgrade request required")
        ns, name = req.namespace, req.name
        if req.subresource == "log":
            method, path = "GET", f"/containerLogs/{ns}/{name}/{container}"
            label = path
        elif req.subresource in ("exec", "attach"):
            query = stream_query(req.subresource, req.params)
            method = "POST"
            path = f"/{req.subresource}/{ns}/{name}/{container}" + \
                (f"?{urlencode(query)}" if query else "")
            # the trace shows the query decoded, as a reader reads it
            label = path.split("?", 1)[0] + ("?" + "&".join(f"{k}={v}" for k, v in query)
                                             if query else "")
        else:
            method, path = "POST", f"/portForward/{ns}/{name}"
            label = path
        url = f"https://{host}:{port}{path}"
        streams: dict[str, Any] | None = None  # what the client wrote on the streams
        if isinstance(req.body, dict) and req.subresource in ("exec", "attach") and \
                isinstance(req.body.get("session"), dict):
            streams = {"session": dict(req.body["session"])}  # an interactive session
        elif isinstance(req.body, dict) and req.subresource in ("exec", "attach"):
            streams = {"stdin": str(req.body.get("stdin", ""))}
        elif isinstance(req.body, dict) and req.subresource == "portforward":
            streams = {"data": str(req.body.get("data", ""))}
        request = HTTPRequest(method, path, credentials=KUBELET_CLIENT_CERT,
                              params=dict(req.params), body=streams)
        try:
            # a Hostname address resolves through the network's host table, as the control
            # plane's DNS would resolve it
            # through the egress selector: directly, or through the Konnectivity tunnel
            resp: HTTPResponse = self.apiserver.egress.dial(
                Address.tcp(host, port), request, protocol=PROTOCOL, verb=method,
                resource=label, result=HTTPResponse.result, timeout=KUBELET_TIMEOUT,
                verify=self.certificate_authority)
        except DialError as err:
            # not an API error: ``ErrorToAPIStatus`` makes it a 500 with the error's own text
            raise unknown_error(f'{_url_op(method)} "{url}": {err}') from None
        body = resp.body if isinstance(resp.body, dict) else {"text": str(resp.body or "")}
        if resp.status >= 400:
            text = str(body.get("message", ""))  # the kubelet's plain-text error body
            if req.subresource == "log":
                raise response_check(resp.status, "pods/log", name, text)
            # simplified: the upgrade paths (exec, attach, port-forward) keep the kubelet's
            # code; client-go's upgrading round trippers read a non-Status body trimmed
            # (``strings.TrimSpace``)
            raise StatusError({"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Failure", "code": resp.status,
                               "reason": {400: "BadRequest", 401: "Unauthorized",
                                          403: "Forbidden", 404: "NotFound"}.get(
                                   resp.status, "InternalError"),
                               "message": text.strip()})
        return Response(200, body)


def response_check(code: int, resource: str, name: str, body: str) -> StatusError:
    """``GenericHttpResponseChecker.Check`` (``k8s.io/apiserver/pkg/registry/generic/rest``),
    which ``pods/log`` streams through: an error from the kubelet becomes an API error with the
    body's text as it came (a 500 an internal error, a 400 a bad request, anything else
    ``NewGenericServerResponse`` for ``resource`` and ``name``)."""
    if code == 500:
        return internal_error(body)
    if code == 400:
        return bad_request(body)
    return generic_server_response(code, "", resource, "", name, body)


def subject_access_review(apiserver: Any, rt: ResourceType, req: Request,
                          user: UserInfo) -> Response:
    """``POST /apis/authorization.k8s.io/v1/subjectaccessreviews``: ask the authorizers."""
    if req.verb != "create":
        raise bad_request("subjectaccessreviews support only create")
    body = req.body if isinstance(req.body, dict) else {}
    spec = body.get("spec") or {}
    attrs_in = spec.get("resourceAttributes") or {}
    if not spec.get("user") and not spec.get("groups"):
        raise bad_request("at least one of user or group must be specified")
    subject = UserInfo(spec.get("user", ""), tuple(spec.get("groups", [])))
    attrs = Attributes(subject, attrs_in.get("verb", ""), attrs_in.get("group", ""),
                       attrs_in.get("resource", ""), attrs_in.get("subresource", ""),
                       attrs_in.get("namespace", ""), attrs_in.get("name", ""))
    decision, reason = apiserver.authz.authorize(attrs)
    status: dict[str, Any] = {"allowed": decision == "allow"}
    if decision == "deny":
        status["denied"] = False  # union authorizer: nobody allowed; not an explicit deny
    if reason:
        status["reason"] = reason
    out = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
           "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
    return Response(201, out)


def token_review(apiserver: Any, rt: ResourceType, req: Request, user: UserInfo) -> Response:
    """``POST /apis/authentication.k8s.io/v1/tokenreviews``: run the token authenticators.

    What a kubelet (``authentication.webhook.enabled``) or an aggregated API server sends to
    learn who a bearer token belongs to (``pkg/registry/authentication/tokenreview``); the
    answer is computed and never stored. ``spec.audiences`` are the audiences the caller
    wants the token to be for (the apiserver's own when empty); ``status.audiences`` those it
    is good for, and ``status.error`` the authenticators' reason when it is refused
    (``invalid bearer token``, ``service account token has expired`` ...).
    """
    if req.verb != "create":
        raise bad_request("tokenreviews support only create")
    body = req.body if isinstance(req.body, dict) else {}
    spec = body.get("spec") or {}
    if not spec.get("token"):
        raise bad_request("token is required for TokenReview in authentication")
    wanted = tuple(spec.get("audiences") or ())
    status: dict[str, Any] = {"user": {}}
    authn = apiserver.authn
    try:
        who, auds = authn.authenticate_token(spec["token"], wanted)
        groups = who.groups if "system:authenticated" in who.groups else (
            *who.groups, "system:authenticated")
        info: dict[str, Any] = UserInfo(who.name, groups, who.uid).to_dict()
        if who.extra:
            info["extra"] = {k: [v] for k, v in who.extra}
        status.update(authenticated=True, user=info)
        if auds:
            status["audiences"] = list(auds)
    except StatusError:
        status.update(authenticated=False, error=authn.last_failure)
    out = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
           "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
    return Response(201, out)


def install(apiserver: Any) -> KubeletClient:
    """Register the pod connect subresources and SubjectAccessReview with ``apiserver``."""
    client = KubeletClient(apiserver)
    for sub in ("log", "exec", "attach", "portforward"):
        apiserver.handlers[("pods", sub)] = client.connect
    apiserver.handlers[("subjectaccessreviews", "")] = \
        lambda rt, req, user: subject_access_review(apiserver, rt, req, user)
    apiserver.handlers[("tokenreviews", "")] = \
        lambda rt, req, user: token_review(apiserver, rt, req, user)
    return client


def pod_logs(client: Any, namespace: str, pod: str, container: str = "") -> str:
    """``kubectl logs``: GET ``pods/<pod>/log`` through the apiserver."""
    params = {"container": container} if container else {}
    body = client.request(Request("get", "pods", "", namespace, pod, "log", params=params))
    return body["text"]


def pod_exec(client: Any, namespace: str, pod: str, command: list[str],
             container: str = "") -> str:
    """``kubectl exec``: POST ``pods/<pod>/exec`` (authorized as ``create``)."""
    params: dict[str, Any] = {"command": list(command)}
    if container:
        params["container"] = container
    body = client.request(Request("create", "pods", "", namespace, pod, "exec", params=params))
    return body["text"]


def pod_port_forward(client: Any, namespace: str, pod: str, port: int) -> str:
    """``kubectl port-forward``: POST ``pods/<pod>/portforward``; returns the stream's answer."""
    body = client.request(Request("create", "pods", "", namespace, pod, "portforward",
                                  params={"ports": str(port)}))
    return body["text"]
