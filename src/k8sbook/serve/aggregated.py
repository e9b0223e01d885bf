"""Aggregated API groups over HTTPS: what kube-aggregator adds to discovery and proxies.

Mirrors ``k8s.io/kube-aggregator``'s HTTP side (``pkg/apiserver/handler_apis.go``,
``handler_proxy.go``): ``/apis`` lists the groups of every APIService next to the built-in
ones (``apisHandler``), ``/apis/<group>`` is the group's ``APIGroup`` (``apiGroupHandler``),
and any path under ``/apis/<group>/<version>`` goes to the model's kube-apiserver, whose
aggregator (:mod:`k8sbook.apiserver.aggregator`) authorizes it and proxies it to the Service
behind the APIService (metrics-server for ``metrics.k8s.io``: ``kubectl top``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from k8sbook.api.request import Request, Response
from k8sbook.cluster import Cluster
from k8sbook.core.status import StatusError
from k8sbook.serve.discovery import NOT_FOUND
from k8sbook.serve.http import Handler, credentials, impersonation, send_json


def apiservices(cluster: Cluster) -> list[dict[str, Any]]:
    """The APIServices backed by a Service (the aggregated ones), by group and version."""
    return sorted((s for s in cluster.apiserver.cached_objects("apiservices")
                   if (s.get("spec") or {}).get("service")),
                  key=lambda s: (s["spec"]["group"], s["spec"]["version"]))


def api_group(cluster: Cluster, group: str) -> dict[str, Any] | None:
    versions = [{"groupVersion": f"{group}/{s['spec']['version']}",
                 "version": s["spec"]["version"]}
                for s in apiservices(cluster) if s["spec"]["group"] == group]
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def merge_groups(cluster: Cluster, group_list: dict[str, Any]) -> dict[str, Any]:
    """``/apis`` with the aggregated groups after the built-in ones."""
    known = {g["name"] for g in group_list.get("groups", [])}
    extra = sorted({s["spec"]["group"] for s in apiservices(cluster)} - known)
    groups = [{k: v for k, v in (api_group(cluster, g) or {}).items()
               if k not in ("kind", "apiVersion")} for g in extra]
    return {**group_list, "groups": [*group_list.get("groups", []), *groups]}


def request_of(h: Handler, parts: list[str]) -> Request:
    """``/apis/<group>/<version>[/namespaces/<ns>]/<resource>[/<name>]`` as a request."""
    group, rest = parts[1], parts[3:]
    namespace = ""
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    verb = "get" if name or not resource else "list"
    if h.command != "GET":
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}.get(h.command, verb)
    query = {k: v[-1] for k, v in parse_qs(urlsplit(h.path).query).items()}
    params: dict[str, Any] = {k: query[k] for k in ("labelSelector", "fieldSelector")
                              if k in query}
    return Request(verb, resource, group, namespace, name, params=params,
                   credentials=credentials(h), impersonate=impersonation(h))


def serve(h: Handler, path: str, route: Any, cluster: Cluster, lock: threading.RLock,
          call: Callable[[Request, Callable[[Response], str]], Response]) -> None:
    """Serve ``path`` if an APIService claims it (or ``/apis``); else 404."""
    parts = [p for p in path.split("/") if p]
    with lock:
        if parts == ["apis"]:
            return send_json(h, 200, merge_groups(cluster, route))
        group = parts[1] if parts[:1] == ["apis"] and len(parts) >= 2 else None
        doc = api_group(cluster, group) if group else None
    if doc is None:
        raise StatusError(NOT_FOUND)
    if len(parts) == 2:
        return send_json(h, 200, doc)
    if parts[2] not in {v["version"] for v in doc["versions"]}:
        raise StatusError(NOT_FOUND)
    resp = call(request_of(h, parts), Response.result)
    send_json(h, resp.code, resp.body if isinstance(resp.body, dict) else {})
