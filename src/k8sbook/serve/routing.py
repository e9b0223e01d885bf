"""How ``k8sbook serve`` maps an HTTP request to a model :class:`~k8sbook.api.request.Request`.

Mirrors ``RequestInfoFactory.NewRequestInfo`` (``k8s.io/apiserver/pkg/endpoints/request``):
``/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}`` and
``/apis/{group}/{version}/...``, the old ``/watch/`` prefix, the namespace's own subresources;
and the content negotiation of ``endpoints/handlers/negotiation`` for server-side ``Table``
printing (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``); and, as the REST
handlers of ``endpoints/handlers`` do before they call the storage, the decoding of a request
on a resource path into a verb, query parameters, ``DeleteOptions`` and the
``fieldValidation`` warnings (:func:`decode_request`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from k8sbook.api import decoding, fieldvalidation
from k8sbook.api import patch as patching
from k8sbook.api.request import Request
from k8sbook.api.resources import RESOURCES, ResourceType, by_plural
from k8sbook.core.status import StatusError, bad_request, status_object
from k8sbook.serve.discovery import NOT_FOUND, api_group, api_group_list, group_versions
from k8sbook.serve.http import Handler, credentials, impersonation, read_body

#: Query parameters passed on to the apiserver, and how to read them.
PARAMS: dict[str, Callable[[str], Any]] = {
    "resourceVersion": str, "resourceVersionMatch": str, "labelSelector": str,
    "fieldSelector": str, "timeoutSeconds": int, "gracePeriodSeconds": int,
    "allowWatchBookmarks": decoding.query_bool, "container": str, "tailLines": int,
    "follow": decoding.query_bool, "previous": decoding.query_bool,
    "timestamps": decoding.query_bool, "sinceSeconds": int, "sinceTime": str,
    "limitBytes": int, "sendInitialEvents": decoding.query_bool,
    # lists (``limit``/``continue``) and writes (``fieldManager``, ``force``, DeleteOptions)
    "limit": int, "continue": str, "fieldManager": str, "force": decoding.query_bool,
    "propagationPolicy": str, "orphanDependents": decoding.query_bool,
}
#: DeleteOptions fields a DELETE body may carry, passed on as parameters
DELETE_OPTIONS = ("gracePeriodSeconds", "preconditions", "propagationPolicy", "orphanDependents",
                  "dryRun")


class Route:
    """What ``RequestInfoFactory.NewRequestInfo`` derives from a path (resource requests)."""

    def __init__(self, rt: ResourceType, namespace: str, name: str, subresource: str,
                 watch_path: bool) -> None:
        self.rt, self.namespace, self.name = rt, namespace, name
        self.subresource, self.watch_path = subresource, watch_path


def parse_path(path: str) -> Route | dict[str, Any] | None:
    """A resource route, a discovery document, or ``None`` (404) for ``path``."""
    parts = [p for p in path.split("/") if p]
    if parts == ["api"]:
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                "serverAddress": "127.0.0.1"}]}
    if parts == ["apis"]:
        return api_group_list()
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 2:
        if parts[1] not in {g for g, _ in group_versions()}:
            return None
        if len(parts) == 2:
            return api_group(parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if (group, version) not in {(r.group, r.version) for r in RESOURCES}:
        return None
    if not rest:
        return {"__discovery__": (group, version)}
    watch_path = rest[0] == "watch"
    if watch_path:
        rest = rest[1:]
    namespace = ""
    # /namespaces/{ns}/{resource}/... except the namespace's own subresources
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = by_plural(group, rest[0])
    if rt is None or rt.version != version:
        return None
    if namespace and not rt.namespaced:
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    return Route(rt, namespace, name, sub, watch_path)


def wants_table(accept: str) -> bool:
    """``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` (first choice wins; a Table
    is JSON or YAML only: ``AllowsMediaTypeTransform``)."""
    for choice in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in choice.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io" and \
                params.get("v") in ("v1", "v1beta1") and choice.split(";")[0].strip() in (
                    "application/json", "application/yaml"):
            return True
        if choice.split(";")[0].strip() in ("application/json", "*/*", "application/*"):
            return False
    return False


def check_fields(req: Request, directive: str, current: dict[str, Any] | None) -> list[str]:
    """Unknown fields in a create, update or patch (``current``: the object a patch applies
    to): 400 if Strict, warnings if Warn (``fieldValidation``)."""
    if req.verb not in ("create", "update", "patch") or req.subresource in (
            "binding", "eviction") or not isinstance(req.body, dict | list):
        return []
    obj = req.body
    if req.verb == "patch":
        if current is None:
            return []  # the apiserver answers the 404
        try:
            obj = patching.apply_patch(current, req.body, req.content_type)
        except StatusError:
            return []  # the apiserver answers the same error
    if not isinstance(obj, dict):
        return []
    fields = fieldvalidation.unknown_fields(obj)
    if fields and directive == "Strict":
        message = fieldvalidation.strict_message(fields)
        if req.verb != "patch":  # the body failed to decode as the kind
            kind, version = obj.get("kind", ""), str(obj.get("apiVersion", "")).split("/")[-1]
            message = f'{kind} in version "{version}" cannot be handled as a {kind}: {message}'
        raise bad_request(message)
    return [f'unknown field "{f}"' for f in fields]


def decode_request(h: Handler, route: Route, query: dict[str, str], *,
                   serves_subresource: Callable[[ResourceType, str], bool],
                   current: Callable[[Request], dict[str, Any] | None],
                   dry_run_values: list[str] | None = None) -> tuple[Request, list[str]]:
    """The model request for an HTTP request on a resource path, and the field-validation
    warnings for it (``endpoints/handlers``: the verb from the method, the query parameters,
    ``DeleteOptions``, ``fieldValidation``). ``serves_subresource`` says which subresources
    the model implements; ``current`` reads the object a patch applies to;
    ``dry_run_values`` are the ``dryRun`` query values (all of them: it is a list). A request
    without ``fieldManager`` gets the User-Agent's product as its manager
    (``managerOrUserAgent``: what precedes the first ``/``, printable characters, at most
    128)."""
    rt = route.rt
    watch = route.watch_path or ("watch" in query and decoding.query_bool(query["watch"]))
    verb = {"GET": "watch" if watch else ("get" if route.name else "list"),
            "POST": "create", "PUT": "update", "PATCH": "patch",
            "DELETE": "delete" if route.name else "deletecollection"}.get(h.command)
    if verb is None:
        raise StatusError(status_object(405, "MethodNotAllowed",
                                        f"{h.command} is not supported"))
    if verb == "create" and route.name and not route.subresource:
        raise StatusError(status_object(405, "MethodNotAllowed",
                                        "the server does not allow this method on the "
                                        "requested resource"))
    if route.subresource in ("exec", "attach", "portforward"):
        # these upgrade the connection to a stream (WebSocket or SPDY); the model's HTTP
        # front end does not, and answers what the apiserver answers a plain request
        raise bad_request("Upgrade request required")
    if route.subresource and not serves_subresource(rt, route.subresource):
        raise StatusError(NOT_FOUND)  # e.g. scale or proxy: listed, but not modelled
    params: dict[str, Any] = {}
    if query.get("dryRun"):  # a list: ``dryRun=All`` (repeated values are one list)
        params["dryRun"] = dry_run_values
    for key, conv in PARAMS.items():
        if key in query and query[key] != "":
            try:
                params[key] = conv(query[key])
            except ValueError as err:
                raise bad_request(f"invalid value for {key}: {query[key]!r}") from err
    body = read_body(h, rt.kind, rt.api_version) \
        if h.command in ("POST", "PUT", "PATCH", "DELETE") else None
    if h.command == "DELETE":
        if body is not None and not isinstance(body, dict):
            raise bad_request("the body of a DELETE must be a DeleteOptions object")
        for key in DELETE_OPTIONS:
            if isinstance(body, dict) and body.get(key) is not None:
                params[key] = body[key]
        body = None
    if watch and route.name:
        # a watch of one object is a watch of the collection with metadata.name=NAME
        params["fieldSelector"] = ",".join(
            f for f in (params.get("fieldSelector", ""), f"metadata.name={route.name}") if f)
    if verb in ("create", "update", "patch") and not params.get("fieldManager") and \
            not (h.command == "PATCH" and (h.headers.get("Content-Type") or "").startswith(
                "application/apply-patch")):
        agent = (h.headers.get("User-Agent") or "").split("/")[0]
        params["fieldManager"] = "".join(c for c in agent if c.isprintable())[:128]
    req = Request(verb, rt.plural, rt.group, route.namespace,
                  "" if watch else route.name, route.subresource, body=body, params=params,
                  credentials=credentials(h), impersonate=impersonation(h),
                  content_type=(h.headers.get("Content-Type") or "application/json")
                  .split(";")[0].strip())
    directive = query.get("fieldValidation", "Ignore") or "Ignore"
    if directive not in fieldvalidation.DIRECTIVES:
        choices = ", ".join(fieldvalidation.DIRECTIVES)
        raise bad_request(f"fieldValidation must be one of {choices}, got {directive!r}")
    warnings = check_fields(req, directive, current(req)) \
        if directive != "Ignore" else []
    return req, warnings
