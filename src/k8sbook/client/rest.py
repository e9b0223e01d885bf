"""A component's connection to kube-apiserver: typed-ish verbs, dialled through the network.

Mirrors the role of ``k8s.io/client-go/rest`` and ``k8s.io/client-go/dynamic``: a client
knows who it is (its credentials: a client certificate or a token) and where the apiserver is
(the ``server`` of its kubeconfig, or ``https://$KUBERNETES_SERVICE_HOST:443`` in a pod), sends
one request per call, and turns a failed response into an error carrying the ``Status``.
Every request is dialled through :class:`k8sbook.client.network.Network`, which records it on
the path ``<component>->kube-apiserver`` (the component opens the connection; the apiserver
never calls these components); a watch keeps its connection open and the network records each
event the apiserver pushes on it. A dial that fails raises
:class:`~k8sbook.client.address.DialError` (``dial tcp 192.168.0.2:6443: connect: connection
refused``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.api.patch import MERGE
from k8sbook.api.request import Credentials, Impersonation, Request, Response, WatchStream
from k8sbook.api.resources import ResourceType, by_kind, lookup
from k8sbook.client.network import Address, Connection, DialError, Network
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError
from k8sbook.core.trace import component_of

PROTOCOL = "HTTPS"
WATCH_PROTOCOL = "HTTPS (watch stream)"
#: kube-apiserver's secure port as kubeadm configures it (``--secure-port=6443``)
API_PORT = 6443

__all__ = ["API_PORT", "PROTOCOL", "WATCH_PROTOCOL", "Client", "DialError", "Watch", "object_key"]


class Watch:
    """The client's end of a watch: stop it, and tell whether the network broke it."""

    def __init__(self, stream: WatchStream, connection: Connection) -> None:
        self.stream = stream
        self.connection = connection

    @property
    def stopped(self) -> bool:
        return self.stream.stopped

    @property
    def broken(self) -> bool:
        """The connection was cut by a network fault (not closed by either end)."""
        return self.connection.broken

    def stop(self) -> None:
        self.stream.stop()


def object_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


class Client:
    """One component instance's API client."""

    def __init__(self, instance: str, credentials: Credentials, *, network: Network,
                 server: Address, clock: Clock, jitter: Callable[[], float] | None = None,
                 via: str | None = None, source_ip: str = "") -> None:
        self.instance = instance
        self.credentials = credentials
        self.network = network
        self.server = server
        self.clock = clock
        #: a random number in [0, 1) for client-go's jittered back-offs (seeded by the cluster)
        self.jitter: Callable[[], float] = jitter if jitter is not None else (lambda: 0.5)
        #: the node whose netfilter rules a request leaves through (a pod's client), if any
        self.via = via
        self.source_ip = source_ip
        #: who the client asks to act as (``Impersonate-*`` headers), if anyone
        self.impersonate: Impersonation | None = None
        #: the streams this client opened (``connrotation``'s tracked connections)
        self._streams: list[tuple[Connection, WatchStream]] = []
        self._streams_bound = 16

    @property
    def component(self) -> str:
        return component_of(self.instance)

    @property
    def path(self) -> str:
        return f"{self.component}->kube-apiserver"

    def impersonating(self, user: str, groups: tuple[str, ...] = (), uid: str = "",
                      extra: tuple[tuple[str, str], ...] = ()) -> Client:
        """The same client acting as ``user`` (``kubectl --as``; the apiserver checks the
        ``impersonate`` verb for each part)."""
        out = self.with_credentials(self.credentials)
        out.impersonate = Impersonation(user, tuple(groups), uid, tuple(extra))
        return out

    def with_credentials(self, credentials: Credentials) -> Client:
        """The same connection settings with another identity."""
        return Client(self.instance, credentials, network=self.network, server=self.server,
                      clock=self.clock, jitter=self.jitter, via=self.via,
                      source_ip=self.source_ip)

    # -- plumbing --------------------------------------------------------------------------
    @staticmethod
    def resource(resource: str) -> ResourceType:
        rt = lookup(resource)
        if rt is None:
            raise StatusError({"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Failure", "code": 404, "reason": "NotFound",
                               "message": "the server could not find the requested resource"})
        return rt

    @staticmethod
    def describe(req: Request) -> tuple[str, str, str]:
        """The verb, resource and object a trace shows for ``req``."""
        res = req.resource + (f"/{req.subresource}" if req.subresource else "")
        name = req.name
        if not name and isinstance(req.body, dict):
            name = (req.body.get("metadata") or {}).get("name", "")
        name = object_key(req.namespace, name) if name else req.namespace
        return req.verb.upper(), res, name

    def send(self, req: Request,
             on_event: Callable[[dict[str, Any] | None], None] | None = None,
             on_open: Callable[[Connection], None] | None = None) -> Response:
        """Send a request and return the raw response (errors are not raised)."""
        verb, res, name = self.describe(req)
        req.credentials = self.credentials
        if verb in ("CREATE", "UPDATE", "PATCH") and "fieldManager" not in req.params:
            # client-go's User-Agent starts with the binary's name, which the apiserver takes
            # as the field manager when none is given (``managerOrUserAgent``)
            req.params = {**req.params, "fieldManager": self.component}
        if req.impersonate is None:
            req.impersonate = self.impersonate
        if on_event is None:
            resp: Response = self.network.dial(
                self.instance, self.server, req, protocol=PROTOCOL, verb=verb, resource=res,
                name=name, result=Response.result, via=self.via, source_ip=self.source_ip)
            return resp
        conn, resp = self.network.open(
            self.instance, self.server, (req, on_event), protocol=PROTOCOL, verb=verb,
            resource=res, name=name, result=Response.result, stream_protocol=WATCH_PROTOCOL,
            via=self.via, source_ip=self.source_ip, on_open=on_open)
        if resp.watch is None:
            conn.close()
        else:
            conn.on_break = resp.watch.stop
            self._track(conn, resp.watch)
        return resp

    def _track(self, conn: Connection, watch: WatchStream) -> None:
        """``connrotation.Dialer``: remember the connections this client keeps open."""
        if len(self._streams) >= self._streams_bound:  # drop the closed ones now and then
            self._streams = [(c, w) for c, w in self._streams if not c.closed]
            self._streams_bound = max(16, 2 * len(self._streams))
        self._streams.append((conn, watch))

    def close_connections(self) -> int:
        """``connrotation.Dialer.CloseAll``: close every connection this client still has
        open (its watches end, their handlers get ``None``, and informers watch again);
        returns how many there were. The kubelet calls it when its client certificate
        changes."""
        live = [(c, w) for c, w in self._streams if not c.closed and not w.stopped]
        self._streams = []
        for _, watch in live:
            watch.stop()
        return len(live)

    def request(self, req: Request,
                on_event: Callable[[dict[str, Any] | None], None] | None = None,
                on_open: Callable[[Connection], None] | None = None) -> Any:
        """Send a request; return the body, or raise :class:`StatusError`."""
        resp = self.send(req, on_event, on_open)
        if not resp.ok:
            raise StatusError(resp.body or {})
        return resp.watch if resp.watch is not None else resp.body

    # -- verbs -----------------------------------------------------------------------------
    def get(self, resource: str, name: str, namespace: str = "") -> dict[str, Any]:
        rt = self.resource(resource)
        return self.request(Request("get", rt.plural, rt.group, namespace, name))

    def list(self, resource: str, namespace: str = "", **params: Any) -> dict[str, Any]:
        rt = self.resource(resource)
        return self.request(Request("list", rt.plural, rt.group, namespace, params=params))

    def create(self, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        rt = by_kind(obj.get("kind", ""))
        ns = namespace if namespace is not None else obj.get("metadata", {}).get("namespace", "")
        if rt.namespaced and not ns:
            ns = "default"
        return self.request(Request("create", rt.plural, rt.group, ns, body=obj))

    def update(self, obj: dict[str, Any], subresource: str = "") -> dict[str, Any]:
        rt = by_kind(obj.get("kind", ""))
        meta = obj.get("metadata", {})
        return self.request(Request("update", rt.plural, rt.group, meta.get("namespace", ""),
                                    meta.get("name", ""), subresource, body=obj))

    def update_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.update(obj, "status")

    def patch(self, resource: str, name: str, patch: Any, namespace: str = "", *,
              content_type: str = MERGE, subresource: str = "") -> dict[str, Any]:
        rt = self.resource(resource)
        return self.request(Request("patch", rt.plural, rt.group, namespace, name, subresource,
                                    body=patch, content_type=content_type))

    def delete(self, resource: str, name: str, namespace: str = "", **params: Any) -> \
            dict[str, Any]:
        rt = self.resource(resource)
        return self.request(Request("delete", rt.plural, rt.group, namespace, name,
                                    params=params))

    def watch(self, resource: str, handler: Callable[[dict[str, Any] | None], None],
              namespace: str = "", **params: Any) -> Watch:
        """Open a watch; ``handler`` gets each event dict, then ``None`` when it ends.

        The connection stays open: each event the apiserver pushes is recorded on it, and a
        network fault that cuts the connection ends the watch."""
        rt = self.resource(resource)
        conn_box: list[Connection] = []

        def on_event(event: dict[str, Any] | None) -> None:
            conn = conn_box[0] if conn_box else None
            if event is None:
                if conn is not None:
                    conn.deliver("CLOSED", rt.plural)
                    conn.close()
            else:
                obj = event.get("object") or {}
                meta = obj.get("metadata", {})
                name = object_key(meta.get("namespace", ""), meta.get("name", "")) \
                    if meta.get("name") else ""
                result = meta.get("resourceVersion", "") if event["type"] != "ERROR" else \
                    f"{obj.get('code')} {obj.get('reason')}"
                if conn is not None:
                    conn.deliver(event["type"], rt.plural, name, result, event)
            handler(event)

        stream: WatchStream = self.request(
            Request("watch", rt.plural, rt.group, namespace, params=params), on_event,
            conn_box.append)
        return Watch(stream, conn_box[0])

    # -- subresources ----------------------------------------------------------------------
    def bind(self, namespace: str, pod: str, node: str) -> dict[str, Any]:
        """``POST /api/v1/namespaces/{ns}/pods/{pod}/binding``: what kube-scheduler does."""
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": pod, "namespace": namespace},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        return self.request(Request("create", "pods", "", namespace, pod, "binding", body=body))

    def evict(self, namespace: str, pod: str, **delete_options: Any) -> dict[str, Any]:
        """``POST .../pods/{pod}/eviction`` (policy/v1): what ``kubectl drain`` does."""
        body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                "metadata": {"name": pod, "namespace": namespace}}
        if delete_options:
            body["deleteOptions"] = delete_options
        return self.request(Request("create", "pods", "", namespace, pod, "eviction", body=body))
