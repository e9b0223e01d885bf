"""How ``k8sbook serve``'s HTTPS front end reaches the model's kube-apiserver: over the model's
network (:mod:`k8sbook.client.network`), as any client of the model does.

A request is dialled to the apiserver's address (``192.168.0.2:6443``) as ``kubectl`` (by its
User-Agent) or ``http-client``; a watch opens a network connection, each event the apiserver
pushes is recorded on it before the front end writes it to the HTTP stream, and a fault that
cuts the connection ends the stream. A dial the network refuses or drops becomes a ``503``
with the dial error: the front end has already accepted the real TCP connection and can no
longer refuse it.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from k8sbook.api.request import Request, Response
from k8sbook.client.network import Connection, DialError
from k8sbook.client.rest import PROTOCOL, WATCH_PROTOCOL, Client, object_key
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError, status_object
from k8sbook.serve.http import Handler, credentials, impersonation
from k8sbook.serve.watch import Event

#: who the model's network says sent a request that came over HTTPS: kubectl (recognised by
#: its User-Agent) or any other HTTP client (client libraries, curl)
KUBECTL, HTTP_CLIENT = "kubectl", "http-client"


def client_of(user_agent: str) -> str:
    """``kubectl`` for kubectl's User-Agent, ``http-client`` for any other client."""
    return KUBECTL if user_agent.startswith("kubectl") else HTTP_CLIENT

def authorize_path(cluster: Cluster, h: Handler, path: str) -> None:
    """The apiserver's authentication, impersonation and authorization of a non-resource
    request (``/healthz``, ``/api`` ...), in process: these paths are served by the front end,
    and the check is not a message on the model's network."""
    req = Request(h.command.lower() if h.command != "HEAD" else "get", "",
                  credentials=credentials(h), impersonate=impersonation(h))
    cluster.apiserver.authorize_path(req, path, req.verb)

def call(cluster: Cluster, src: str, req: Request,
         result: Callable[[Response], str] = Response.result) -> Response:
    """Send ``req`` to the model's kube-apiserver over the model's network (the lock is
    held); a failed dial becomes a ``503`` Status with the dial error. ``result`` is how
    the trace shows the answer."""
    verb, res, name = Client.describe(req)
    try:
        resp: Response = cluster.network.dial(
            src, cluster.apiserver.address, req, protocol=PROTOCOL,
            verb=verb, resource=res, name=name, result=result)
    except DialError as err:
        raise _unreachable(err) from None
    return resp

def open_watch(cluster: Cluster, src: str, req: Request, events: queue.Queue[Event]
               ) -> tuple[Connection, Response]:
    """Open a watch on the model's network: each event is recorded on the connection,
    then queued for the HTTP stream; a cut connection ends the stream."""
    verb, res, name = Client.describe(req)
    box: list[Connection] = []

    def on_event(event: dict[str, Any] | None) -> None:
        conn = box[0] if box else None
        if conn is not None and not conn.closed:
            if event is None:
                conn.deliver("CLOSED", req.resource)
            else:
                obj = event.get("object") or {}
                meta = obj.get("metadata", {})
                key = object_key(meta.get("namespace", ""), meta.get("name", "")) \
                    if meta.get("name") else ""
                result = meta.get("resourceVersion", "") if event["type"] != "ERROR" \
                    else f"{obj.get('code')} {obj.get('reason')}"
                conn.deliver(event["type"], req.resource, key, result)
        events.put(event)

    try:
        conn, resp = cluster.network.open(
            src, cluster.apiserver.address, (req, on_event),
            protocol=PROTOCOL, verb=verb, resource=res, name=name, result=Response.result,
            stream_protocol=WATCH_PROTOCOL, on_open=box.append)
    except DialError as err:
        raise _unreachable(err) from None
    if resp.watch is None:
        conn.close()
    else:
        watcher = resp.watch

        def cut() -> None:
            watcher.stop()
            events.put(None)
        conn.on_break = cut
    return conn, resp


def _unreachable(err: DialError) -> StatusError:
    """The model's network did not let the request reach the apiserver."""
    return StatusError(status_object(503, "ServiceUnavailable", str(err)))
