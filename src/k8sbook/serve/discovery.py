"""Discovery and OpenAPI documents of the model's kube-apiserver, as ``k8sbook serve`` serves them.

Mirrors ``k8s.io/apiserver/pkg/endpoints/discovery`` (``/api``, ``/apis``, the ``APIGroup`` of a
group and the ``APIResourceList`` of each group version, with short names, categories and
subresources), ``/version`` (``k8s.io/apimachinery/pkg/version.Info``) and the OpenAPI v3
handler of ``k8s.io/kube-openapi/pkg/handler3`` (``/openapi/v3`` lists each group version's
document under a ``serverRelativeURL`` carrying its hash). The documents carry paths,
operations and the kinds' schemas (:mod:`k8sbook.serve.openapi`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from k8sbook.api.resources import RESOURCES, ResourceType
from k8sbook.core.status import StatusError, status_object
from k8sbook.serve import openapi

#: The release the model follows (its objects validate against this release's schema).
KUBERNETES_VERSION = "v1.35.0"
#: The categories kubectl expands ``kubectl get all`` to (``categories: ["all"]``).
ALL_CATEGORY = {"pods", "services", "deployments", "replicasets"}
#: Subresources whose handlers the model's apiserver implements, with their discovery data:
#: (kind, group, version, verbs). ``log`` is listed when the apiserver can serve it.
SUBRESOURCES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "status": ("", "", "", ("get", "patch", "update")),
    "binding": ("Binding", "", "", ("create",)),
    "eviction": ("Eviction", "policy", "v1", ("create",)),
    "log": ("Pod", "", "", ("get",)),
    "scale": ("Scale", "autoscaling", "v1", ("get", "patch", "update")),
    # the connect subresources (``pkg/registry/core/pod/rest``): their options kinds
    "exec": ("PodExecOptions", "", "", ("create", "get")),
    "attach": ("PodAttachOptions", "", "", ("create", "get")),
    "portforward": ("PodPortForwardOptions", "", "", ("create", "get")),
}
#: served only where the apiserver has its path to the kubelets (the kubelet client)
KUBELET_SUBRESOURCES = ("log", "exec", "attach", "portforward")
#: 404 for a path the server does not serve
NOT_FOUND = status_object(404, "NotFound", "the server could not find the requested resource")


def group_versions() -> list[tuple[str, str]]:
    return sorted({(rt.group, rt.version) for rt in RESOURCES if rt.group})


def api_resource_list(group: str, version: str, *, logs: bool = False) -> dict[str, Any]:
    """``APIResourceList`` for one group version (``/api/v1``, ``/apis/apps/v1`` ...)."""
    resources: list[dict[str, Any]] = []
    for rt in RESOURCES:
        if rt.group != group or rt.version != version:
            continue
        entry: dict[str, Any] = {"name": rt.plural, "singularName": rt.kind.lower(),
                                 "namespaced": rt.namespaced, "kind": rt.kind,
                                 "verbs": sorted(rt.verbs)}
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.plural in ALL_CATEGORY:
            entry["categories"] = ["all"]
        resources.append(entry)
        for sub in rt.subresources:
            if sub not in SUBRESOURCES or (sub in KUBELET_SUBRESOURCES and not logs):
                continue
            kind, sgroup, sversion, verbs = SUBRESOURCES[sub]
            sub_entry: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "",
                                         "namespaced": rt.namespaced, "kind": kind or rt.kind,
                                         "verbs": list(verbs)}
            if sgroup:
                sub_entry.update(group=sgroup, version=sversion)
            resources.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}


def api_group(group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in group_versions()
                if g == group]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    groups = sorted({g for g, _ in group_versions()})
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [{k: v for k, v in api_group(g).items() if k not in ("kind", "apiVersion")}
                       for g in groups]}


def version_info() -> dict[str, str]:
    major, minor, _ = KUBERNETES_VERSION.lstrip("v").split(".")
    return {"major": major, "minor": minor, "gitVersion": f"{KUBERNETES_VERSION}-k8sbook",
            "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "",
            "compiler": "k8sbook", "platform": "python"}


def openapi_v3_root() -> dict[str, Any]:
    """``/openapi/v3``: where each group version's document is (``serverRelativeURL``)."""
    paths = {}
    for group, version in [("", "v1"), *group_versions()]:
        key = f"apis/{group}/{version}" if group else f"api/{version}"
        digest = _digest(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}


@functools.cache
def _digest(group: str, version: str) -> str:
    doc = json.dumps(openapi_v3(group, version), sort_keys=True).encode()
    return hashlib.sha512(doc).hexdigest().upper()


def openapi_v3(group: str, version: str) -> dict[str, Any]:
    """A group version's OpenAPI v3 document: paths and operations, and the schemas of its
    kinds (:mod:`k8sbook.serve.openapi`)."""
    field_validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"},
                        "description": "Ignore, Warn or Strict: what to do with unknown "
                        "fields in the request body."}
    paths: dict[str, Any] = {}
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    for rt in RESOURCES:
        if rt.group != group or rt.version != version:
            continue
        gvk = {"group": group, "version": version, "kind": rt.kind}
        base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced \
            else f"{prefix}/{rt.plural}"

        def op(action: str, *, validates: bool = False, _gvk: dict[str, str] = gvk,
               _rt: ResourceType = rt) -> dict[str, Any]:
            out: dict[str, Any] = {"operationId": f"{action}{_rt.kind}",
                                   "x-kubernetes-action": action,
                                   "x-kubernetes-group-version-kind": _gvk,
                                   "responses": {"200": {"description": "OK"}}}
            if validates:
                out["parameters"] = [field_validation]
            return out
        paths[base] = {"get": op("list"), "post": op("post", validates=True)}
        paths[f"{base}/{{name}}"] = {"get": op("get"), "put": op("put", validates=True),
                                     "patch": op("patch", validates=True),
                                     "delete": op("delete")}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
            "paths": paths, "components": {"schemas": openapi.schemas_v3(group, version)}}


def openapi_document(path: str, accept: str) -> bytes:
    """The JSON body of ``/openapi/v2``, ``/openapi/v3`` or ``/openapi/v3/{api|apis/G}/V``;
    404 for any other path, 406 for the protobuf form of v2."""
    if path == "/openapi/v2":
        if openapi.wants_v2_protobuf_only(accept):
            raise StatusError(status_object(406, "NotAcceptable", "only the following media "
                                            "types are accepted: application/json"))
        return openapi.openapi_v2(KUBERNETES_VERSION)
    if path == "/openapi/v3":
        return json.dumps(openapi_v3_root()).encode()
    rest = path[len("/openapi/v3/"):].split("/") if path.startswith("/openapi/v3/") else []
    gv = ("", rest[1]) if rest[:1] == ["api"] and len(rest) == 2 else \
        (rest[1], rest[2]) if rest[:1] == ["apis"] and len(rest) == 3 else None
    if gv is None or (gv != ("", "v1") and gv not in group_versions()):
        raise StatusError(NOT_FOUND)
    return json.dumps(openapi_v3(*gv)).encode()
