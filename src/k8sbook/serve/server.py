"""``k8sbook serve``: the model's kube-apiserver over HTTPS, for kubectl and client libraries.

Mirrors ``k8s.io/apiserver/pkg/endpoints``: the REST mapping from an HTTP method and a URL
(``/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}``,
``/apis/{group}/{version}/...``; ``RequestInfoFactory`` in ``endpoints/request``) to a verb
(GET on an object is ``get``, on a collection ``list``, with ``?watch=true`` or under the old
``/watch/`` prefix ``watch``; POST ``create``; PUT ``update``; PATCH ``patch``; DELETE
``delete``), the discovery documents clients read first (``/api``, ``/apis``, the
``APIResourceList`` of each group version, ``/version``), the health endpoints (``/healthz``,
``/livez``, ``/readyz``), watch streams as newline-delimited JSON ``WatchEvent`` objects over a
chunked response (``endpoints/handlers/watch.go``), server-side ``Table`` printing for
``kubectl get`` (:mod:`k8sbook.serve.printers`), and every failure as a ``Status`` with its HTTP
code. Request bodies may come with a ``Content-Length`` or chunked (``Transfer-Encoding:
chunked``); the query's ``dryRun``, ``fieldManager``, ``force``, ``limit``, ``continue`` and the
``DeleteOptions`` (``propagationPolicy``, ``gracePeriodSeconds``, ``preconditions``) reach the
apiserver, which serves server-side apply, dry run, pagination, ``deletecollection`` and
``/scale`` as upstream does (:mod:`k8sbook.apiserver.fieldmanager`, ``.dryrun``,
``.pagination``, ``.collection``, ``.scale``). The handler itself is the model's :meth:`k8sbook.apiserver.server.APIServer.handle`.

A :class:`ModelServer` runs one :class:`k8sbook.cluster.Cluster` whose virtual time follows
the wall clock (a loop thread advances ``cluster.clock``), or stands still until
:meth:`ModelServer.advance` is called (``realtime=False``, for deterministic pages). The model
stays single-threaded: the loop and every HTTP handler take one lock around any model call.

Transport and identity: HTTPS on 127.0.0.1 (a real kube-apiserver serves HTTPS only), with
certificates made as kubeadm makes them (:mod:`k8sbook.serve.certs`). The kubeconfig holds
kubeadm's ``admin.conf`` identity: CN ``kubernetes-admin``, O ``kubeadm:cluster-admins``.
(client-go sends a kubeconfig's credentials only over TLS: over ``http://`` kubectl is always
``system:anonymous``.) A bearer token (:attr:`ModelServer.token`) works too, for ``curl``.

Different from a real kube-apiserver, said out loud:

- the apiserver runs the ServiceAccount admission plugin as kubeadm's does
  (``service_account_admission``; by default on when the components run, since without a
  controller manager nothing makes the ``default`` accounts it requires): pods get
  ``serviceAccountName: default`` and the ``kube-api-access-*`` volume the kubelets mount;
- loopback only; ``/openapi/v2`` is JSON only (406 for protobuf; v3 carries the official
  schemas). Bodies are JSON, YAML or protobuf; answers as ``Accept`` negotiates, YAML as JSON;
- timestamps come from the model's clock; ``k8sbook serve`` (``wall_clock=True``) starts it
  at the wall clock's instant, so ages kubectl computes itself read right; otherwise it starts
  at its epoch (2026-01-01T00:00:00Z), as in the chapters, for deterministic pages.

The front end is not part of the apiserver: it hands each request to the model's apiserver
*through the model's network*, dialling ``192.168.0.2:6443`` as ``kubectl`` (User-Agent
kubectl) or ``http-client``, so the trace shows ``kubectl->kube-apiserver`` and network faults
apply. A watch's events travel on a network connection (and are recorded) before the HTTP
stream gets them; a cut connection ends it. A dial the network refuses is answered ``503``
with the dial error (the HTTP server has already accepted the TCP connection).

Split as upstream is: :mod:`~k8sbook.serve.routing` (the REST mapping), ``discovery``,
``watch``, ``logs`` (``pods/log``, ``-f``), ``streams`` (exec and cp over WebSocket),
``spdy_exec`` (exec and attach over SPDY/3.1),
``portforward`` and ``spdy`` (SPDY/3.1 in a WebSocket), ``aggregated`` (kube-aggregator's
discovery and proxy), ``kubeconfig``. It runs :data:`~k8sbook.serve.components.COMPONENT_MODULES`
(kubelets, scheduler, controller manager, the add-ons of ``serve/addons.py``).
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from k8sbook.api.request import Request, Response
from k8sbook.api.resources import ResourceType, by_plural
from k8sbook.apiserver.authentication import UserInfo
from k8sbook.cluster import Cluster
from k8sbook.core.clock import EPOCH, Clock
from k8sbook.core.status import StatusError, status_object
from k8sbook.serve import aggregated, certs, logs, negotiation, printers, spdy_exec, streams
from k8sbook.serve import watch as watching
from k8sbook.serve.components import (
    COMPONENT_MODULES,
    DEFAULT_NODES,
    attach_components,
    register_component,
    serves_logs,
)
from k8sbook.serve.discovery import (
    ALL_CATEGORY,
    KUBERNETES_VERSION,
    NOT_FOUND,
    SUBRESOURCES,
    api_group,
    api_group_list,
    api_resource_list,
    group_versions,
    openapi_document,
    openapi_v3,
    openapi_v3_root,
    version_info,
)
from k8sbook.serve.http import Handler, TLSServer, drain, read_chunked, send, send_json
from k8sbook.serve.kubeconfig import kubeconfig as admin_kubeconfig
from k8sbook.serve.kubeconfig import kubectl, with_etcd_calls, write_kubeconfig
from k8sbook.serve.model_client import authorize_path, call, client_of, open_watch
from k8sbook.serve.routing import Route, decode_request, parse_path, wants_table
from k8sbook.serve.signals import stop_on_signals

__all__ = ["ADMIN", "ALL_CATEGORY", "COMPONENT_MODULES", "DEFAULT_NODES", "KUBERNETES_VERSION",
           "SUBRESOURCES", "ModelServer", "Route", "api_group", "api_group_list",
           "api_resource_list", "attach_components", "group_versions", "kubectl",
           "openapi_v3", "openapi_v3_root", "parse_path", "register_component", "serve_forever",
           "serves_logs", "version_info", "wants_table", "with_etcd_calls"]

#: kubeadm's admin identity (``admin.conf``), which the kubeconfig's token maps to.
ADMIN = UserInfo("kubernetes-admin", ("kubeadm:cluster-admins",))

class ModelServer:
    """A model cluster served over HTTP on the loopback interface."""

    def __init__(self, cluster: Cluster | None = None, *, seed: int = 0,
                 host: str = "127.0.0.1", port: int = 0, realtime: bool = True,
                 nodes: tuple[str, ...] | list[str] = DEFAULT_NODES,
                 components: bool = True, tick: float = 0.02, wall_clock: bool = False,
                 service_account_admission: bool | None = None) -> None:
        start = max(time.time() - EPOCH.timestamp(), 0.0) if wall_clock else 0.0
        admission = components if service_account_admission is None \
            else service_account_admission
        self.cluster = cluster if cluster is not None else Cluster(
            seed, clock=Clock(start), service_account_admission=admission)
        self.lock = threading.RLock()
        self.realtime = realtime
        self.tick = tick
        self.nodes = list(nodes)
        self.token = secrets.token_hex(16)
        self.cluster.apiserver.authn.add_token(self.token, ADMIN)
        self.attached = attach_components(self.cluster, self.nodes) if components else []
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.pki = certs.make_pki()
        self._httpd = TLSServer((host, port), Handler, certs.tls_context(self.pki))
        self._httpd.daemon_threads = True
        self._httpd.model = self  # type: ignore[attr-defined]
        self.requests = 0

    # -- life cycle ------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> Self:
        serve = threading.Thread(target=self._httpd.serve_forever, name="k8sbook-http",
                                 kwargs={"poll_interval": 0.1}, daemon=True)
        serve.start()
        self._threads.append(serve)
        if self.realtime:
            loop = threading.Thread(target=self._follow_wall_clock, name="k8sbook-clock",
                                    daemon=True)
            loop.start()
            self._threads.append(loop)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self.lock:
            for cache in self.cluster.apiserver.caches.values():
                cache.stop_all()
            self._flush()
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _follow_wall_clock(self) -> None:
        clock, last = self.cluster.clock, time.monotonic()
        while not self._stopping.wait(self.tick):  # wall time passed is virtual time passed
            with self.lock:  # (after an advance() too: the two never wait for each other)
                now = time.monotonic()
                clock.run_until(clock.now() + (now - last))
                last = now

    def _flush(self) -> None:
        """Run what is due now (watch deliveries a request caused), without moving time."""
        clock = self.cluster.clock
        clock.run_until(clock.now())

    def advance(self, seconds: float) -> None:
        """Move virtual time on by ``seconds`` (for ``realtime=False``)."""
        with self.lock:
            self.cluster.clock.run_for(seconds)

    @contextlib.contextmanager
    def model(self) -> Iterator[Cluster]:
        """Hold the lock and look at the model (tests compare clients' views with it)."""
        with self.lock:
            yield self.cluster

    # -- kubeconfig ------------------------------------------------------------------------
    def kubeconfig(self) -> dict[str, Any]:
        """kubeadm's ``admin.conf`` for this server: cluster ``kubernetes`` with the CA, user
        ``kubernetes-admin`` with its client certificate and key."""
        return admin_kubeconfig(self.url, self.pki)

    def write_kubeconfig(self, path: str | Path) -> Path:
        """Write the kubeconfig (JSON, which is YAML too) readable only by its owner."""
        return write_kubeconfig(self.kubeconfig(), path)

    # -- serving ---------------------------------------------------------------------------
    def serve(self, h: Handler) -> None:
        """Serve one HTTP request; any failure is answered as a Status."""
        self.requests += 1
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        h.body_length = length
        try:
            # always drain the body; a chunked one (``Transfer-Encoding: chunked``) by chunks
            chunked = "chunked" in (h.headers.get("Transfer-Encoding") or "").lower()
            h.raw_body = read_chunked(h) if chunked else drain(h, length)
            self._serve(h)
        except StatusError as err:
            send_json(h, err.code, err.status)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        except Exception as err:  # noqa: BLE001 - a bug must not stop the server
            msg = f"{type(err).__name__}: {err}"
            send_json(h, 500, status_object(500, "InternalError",
                                                  f"Internal error occurred: {msg}",
                                                  causes=[{"message": msg}]))

    def _serve(self, h: Handler) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path.rstrip("/") or "/"
        if not isinstance(parse_path(path), Route):  # a non-resource request
            with self.lock:
                authorize_path(self.cluster, h, url.path or "/")
        if path in ("/healthz", "/livez", "/readyz"):
            return send(h, 200, b"ok", "text/plain; charset=utf-8")
        if path == "/version":
            return send_json(h, 200, version_info())
        if path == "/":
            paths = ["/api", "/api/v1", "/apis", *sorted({f"/apis/{g}" for g, _ in
                                                         group_versions()}),
                     *[f"/apis/{g}/{v}" for g, v in group_versions()],
                     "/healthz", "/livez", "/readyz", "/version"]
            return send_json(h, 200, {"paths": sorted(paths)})
        if path.startswith("/openapi/"):
            return send(h, 200, openapi_document(path, h.headers.get("Accept", "")),
                        "application/json")
        route = parse_path(path)
        if route is None or path == "/apis":  # kube-aggregator's handlers come first
            return aggregated.serve(h, path, route, self.cluster, self.lock, self._stream_call(h))
        if isinstance(route, dict):
            if h.command != "GET":
                raise StatusError(status_object(405, "MethodNotAllowed",
                                                "the server does not allow this method on the "
                                                "requested resource"))
            if "__discovery__" in route:
                group, version = route["__discovery__"]
                with self.lock:
                    logs = serves_logs(self.cluster)
                route = api_resource_list(group, version, logs=logs)
            return send_json(h, 200, route)
        try:
            return self._serve_resource(h, route, query)
        except StatusError as err:  # in the media type the client negotiated
            return negotiation.send_object(h, err.code, err.status)

    def _serve_resource(self, h: Handler, route: Route, query: dict[str, str]) -> None:
        rt = route.rt
        if route.subresource in ("exec", "attach", "portforward"):
            if route.subresource != "portforward" and spdy_exec.is_spdy(h):  # no WebSocket
                return spdy_exec.serve(h, route, self._stream_call(h), streams.exec_request,
                                       self.lock)
            if not streams.is_upgrade(h):
                return streams.refuse(h, route, self._stream_call(h))
            return streams.serve(h, route, self._stream_call(h), self.lock)
        req, warnings = decode_request(h, route, query, serves_subresource=self._serves_subresource,
                                       current=self._current,
                                       dry_run_values=parse_qs(urlsplit(h.path).query).get(
                                           "dryRun"))
        verb = req.verb
        table = wants_table(h.headers.get("Accept", ""))
        if route.subresource == "log" and verb == "get":
            return self._serve_log(h, req)
        if verb == "watch":
            return self._serve_watch(h, req, table, query.get("includeObject", "Metadata"))
        with self.lock:
            resp = call(self.cluster, client_of(h.headers.get("User-Agent", "")), req)
            self._flush()
            body_out = resp.body
            if table and resp.ok and verb in ("get", "list") and not route.subresource \
                    and body_out is not None:
                items = body_out["items"] if verb == "list" else [body_out]
                rv = body_out.get("metadata", {}).get("resourceVersion", "")
                body_out = printers.table(rt.kind, items, self.cluster.clock,
                                          resource_version=rv if verb == "list" else "",
                                          include_object=query.get("includeObject",
                                                                   "Metadata"),
                                          list_meta=body_out.get("metadata")
                                          if verb == "list" else None)
        negotiation.send_object(h, resp.code, body_out or {}, warnings if resp.ok else [],
                                as_json=table and resp.ok)

    def _stream_call(self, h: Handler) -> streams.Call:
        """How :mod:`k8sbook.serve.streams` sends its request to the model."""
        src = client_of(h.headers.get("User-Agent", ""))

        def send(req: Request, result: Callable[[Response], str]) -> Response:
            with self.lock:
                resp = call(self.cluster, src, req, result)
                self._flush()
            return resp
        return send

    def _current(self, req: Request) -> dict[str, Any] | None:
        """The object a patch applies to (for the field check), read under the lock."""
        if req.verb != "patch":
            return None
        with self.lock:
            rt = by_plural(req.group, req.resource)
            return self.cluster.apiserver.storage.get(rt.key(req.namespace, req.name)) \
                if rt is not None else None

    def _serves_subresource(self, rt: ResourceType, sub: str) -> bool:
        """Subresources the model implements: its own and those installed as handlers."""
        if sub in ("status", "binding", "eviction"):
            return sub in rt.subresources
        with self.lock:
            return (rt.plural, sub) in getattr(self.cluster.apiserver, "handlers", {})

    def _serve_log(self, h: Handler, req: Request) -> None:
        """``pods/log`` through the apiserver to the kubelet (:mod:`k8sbook.serve.logs`)."""
        with self.lock:
            if not serves_logs(self.cluster):
                raise StatusError(NOT_FOUND)

        def send(req: Request) -> Response:
            return self._stream_call(h)(req, Response.result)
        logs.serve(h, req, send, self.lock, self._stopping, self.tick)

    def _serve_watch(self, h: Handler, req: Request, table: bool, include: str) -> None:
        rt = by_plural(req.group, req.resource)
        proto = not table and rt is not None and \
            negotiation.watch_is_protobuf(h, rt.api_version, rt.kind)
        events: queue.Queue[watching.Event] = queue.Queue()
        with self.lock:
            conn, resp = open_watch(self.cluster, client_of(h.headers.get("User-Agent", "")), req, events)
            self._flush()
        if not resp.ok or resp.watch is None:
            return negotiation.send_object(h, resp.code, resp.body or {})
        kind = req_kind(req)

        def render(event: dict[str, Any], first: bool) -> dict[str, Any]:
            with self.lock:
                obj = printers.table(kind, [event["object"]], self.cluster.clock,
                                     include_object=include, headers=first)
            return {"type": event["type"], "object": obj}
        try:
            watching.stream(h, events, self._stopping, render if table else None,
                            protobuf_kind=(rt.api_version, rt.kind) if proto and rt else None)
        finally:
            with self.lock:
                resp.watch.stop()
                conn.close()
                self._flush()

def req_kind(req: Request) -> str:
    rt = by_plural(req.group, req.resource)
    return rt.kind if rt is not None else ""


def serve_forever(port: int = 0, kubeconfig: str | Path = "k8sbook.kubeconfig",
                  seed: int = 0, out: Callable[[str], None] | None = None) -> None:
    """``k8sbook serve``: start, write the kubeconfig, print how to use it, run until ^C."""
    say: Callable[[str], None] = out or (lambda line: print(line, flush=True))
    stop_on_signals()
    server = None
    try:  # ^C at any point from here on stops it the same way
        server = ModelServer(seed=seed, port=port, wall_clock=True).start()
        path = server.write_kubeconfig(kubeconfig).resolve()
        say(f"k8sbook: the model's kube-apiserver is serving on {server.url} (loopback only; "
            f"components: {', '.join(server.attached) or 'none yet'})")
        say(f"KUBECONFIG={path} kubectl get nodes")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        say("k8sbook: stopping")
    finally:
        if server is not None:
            server.stop()
