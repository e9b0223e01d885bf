"""A component's connection to kube-apiserver: typed-ish verbs, traced, and able to fail.

Mirrors the role of ``k8s.io/client-go/rest`` and ``k8s.io/client-go/dynamic``: a client
knows who it is (its credentials: a client certificate or a token), sends one request per
call, and turns a failed response into an error carrying the ``Status``. Every request and
every watch event it receives is recorded on the trace, on the path
``<component>->kube-apiserver`` (the component opens the connection; the apiserver never
calls these components).

The :class:`Network` decides whether a connection can be made: a test or a chapter can cut
one component off from the apiserver (its open watches break, new requests are refused) and
heal it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.api.patch import MERGE
from k8sbook.api.resources import ResourceType, by_kind, lookup
from k8sbook.apiserver.authentication import Credentials
from k8sbook.apiserver.server import APIServer, Request, Response
from k8sbook.core.clock import Clock
from k8sbook.core.status import StatusError
from k8sbook.core.trace import Message, Trace, component_of
from k8sbook.storage.cacher import Watcher

PROTOCOL = "HTTPS"
WATCH_PROTOCOL = "HTTPS (watch stream)"


class ConnectionRefused(Exception):
    """The TCP connection could not be made (``dial tcp ...: connect: connection refused``)."""


class Network:
    """Which instances can reach the apiserver right now, and their open watch streams."""

    def __init__(self) -> None:
        self.cut: set[str] = set()
        self._streams: dict[str, list[Watcher]] = {}

    def reachable(self, instance: str) -> bool:
        return instance not in self.cut and component_of(instance) not in self.cut

    def disconnect(self, instance: str) -> None:
        """Cut ``instance`` (or a whole component) off: its watch streams break at once."""
        self.cut.add(instance)
        for inst, streams in self._streams.items():
            if inst == instance or component_of(inst) == instance:
                for w in streams:
                    w.stop()
                streams.clear()

    def reconnect(self, instance: str) -> None:
        self.cut.discard(instance)

    def track(self, instance: str, watcher: Watcher) -> None:
        streams = self._streams.setdefault(instance, [])
        streams[:] = [w for w in streams if not w.stopped]
        streams.append(watcher)


def object_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


class Client:
    """One component instance's API client."""

    def __init__(self, apiserver: APIServer, instance: str, credentials: Credentials, *,
                 network: Network, trace: Trace, clock: Clock) -> None:
        self.apiserver = apiserver
        self.instance = instance
        self.credentials = credentials
        self.network = network
        self.trace = trace
        self.clock = clock

    @property
    def component(self) -> str:
        return component_of(self.instance)

    @property
    def path(self) -> str:
        return f"{self.component}->kube-apiserver"

    # -- plumbing --------------------------------------------------------------------------
    @staticmethod
    def resource(resource: str) -> ResourceType:
        rt = lookup(resource)
        if rt is None:
            raise StatusError({"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Failure", "code": 404, "reason": "NotFound",
                               "message": "the server could not find the requested resource"})
        return rt

    def _record(self, verb: str, res: str, name: str, result: str) -> Message | None:
        return self.trace.record(self.clock.now(), self.instance, "kube-apiserver", self.path,
                                 PROTOCOL, verb, res, name, result)

    def send(self, req: Request,
             on_event: Callable[[dict[str, Any] | None], None] | None = None) -> Response:
        """Send a request and return the raw response (errors are not raised)."""
        res = req.resource + (f"/{req.subresource}" if req.subresource else "")
        name = req.name
        if not name and isinstance(req.body, dict):
            name = (req.body.get("metadata") or {}).get("name", "")
        name = object_key(req.namespace, name) if name else req.namespace
        verb = req.verb.upper()
        if not self.network.reachable(self.instance):
            self._record(verb, res, name, "connection refused")
            raise ConnectionRefused(f"dial tcp kube-apiserver:6443: connect: connection "
                                    f"refused ({self.instance})")
        req.credentials = self.credentials
        msg = self._record(verb, res, name, "")
        resp = self.apiserver.handle(req, on_event)
        result = str(resp.code)
        if not resp.ok and resp.body and resp.body.get("reason"):
            result += f" {resp.body['reason']}"
        self.trace.complete(msg, result)
        return resp

    def request(self, req: Request,
                on_event: Callable[[dict[str, Any] | None], None] | None = None) -> Any:
        """Send a request; return the body, or raise :class:`StatusError`."""
        resp = self.send(req, on_event)
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
              namespace: str = "", **params: Any) -> Watcher:
        """Open a watch; ``handler`` gets each event dict, then ``None`` when it ends."""
        rt = self.resource(resource)

        def on_event(event: dict[str, Any] | None) -> None:
            if event is None:
                self.trace.record(self.clock.now(), "kube-apiserver", self.instance, self.path,
                                  WATCH_PROTOCOL, "CLOSED", rt.plural, "", "")
            else:
                obj = event.get("object") or {}
                meta = obj.get("metadata", {})
                name = object_key(meta.get("namespace", ""), meta.get("name", "")) \
                    if meta.get("name") else ""
                result = meta.get("resourceVersion", "") if event["type"] != "ERROR" else \
                    f"{obj.get('code')} {obj.get('reason')}"
                self.trace.record(self.clock.now(), "kube-apiserver", self.instance, self.path,
                                  WATCH_PROTOCOL, event["type"], rt.plural, name, result)
            handler(event)

        watcher = self.request(Request("watch", rt.plural, rt.group, namespace, params=params),
                               on_event)
        self.network.track(self.instance, watcher)
        return watcher

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
