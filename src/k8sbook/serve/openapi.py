"""The OpenAPI documents of ``k8sbook serve``: ``/openapi/v2`` and the schemas of ``/openapi/v3``.

Mirrors ``k8s.io/kube-openapi/pkg/handler`` (``/openapi/v2``: one Swagger 2.0 document,
``definitions`` named ``io.k8s.api.core.v1.Pod`` ...) and ``pkg/handler3`` (one OpenAPI 3.0
document per group version, ``components.schemas``), whose schemas kube-apiserver generates
from the Go types (``openapi-gen``). The model does not generate them: it converts the official
schemas of the release it follows, which ``kubernetes-validate`` ships as JSON Schema
(:func:`k8sbook.api.fieldvalidation.definitions`), back into OpenAPI:

- ``"type": ["string", "null"]`` becomes ``"type": "string"``; ``"$ref": "#/$defs/X"``
  becomes ``#/definitions/X`` (v2) or ``#/components/schemas/X`` (v3), in v3 wrapped in
  ``allOf`` when it has a description beside it, as kube-openapi writes it;
- the ``enum`` the JSON Schema adds to each kind's ``apiVersion`` and ``kind`` is dropped, and
  so is strictness (``additionalProperties: false``);
- in v2, ``IntOrString`` is ``{"type": "string", "format": "int-or-string"}`` and ``Quantity``
  ``{"type": "string"}`` (in v3 they stay ``oneOf`` their two types).

Every ``x-kubernetes-*`` extension stays: ``x-kubernetes-group-version-kind`` is how
``kubectl explain`` finds a kind's schema, and ``x-kubernetes-patch-merge-key`` and
``-patch-strategy`` are what ``kubectl apply`` builds its strategic merge patch from. A group
version's document holds the schemas its kinds reach (their lists, ``Status``,
``DeleteOptions`` and ``WatchEvent`` too). Different from kube-apiserver, said out loud:
``/openapi/v2`` is served as JSON only; a client that accepts only the protobuf form
(``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``, client-go's
``OpenAPISchema``) gets ``406``; kubectl 1.32 and newer read ``/openapi/v3``.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from k8sbook.api.fieldvalidation import definitions
from k8sbook.api.resources import RESOURCES

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
#: the schema every group version's document also carries (request and response bodies)
COMMON = (f"{META}.Status", f"{META}.DeleteOptions", f"{META}.WatchEvent")
#: the v2 forms kube-openapi gives the two types that JSON Schema writes as ``oneOf``
V2_FORMS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string",
                                                        "format": "int-or-string"},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
}
#: the media type of the protobuf form of ``/openapi/v2``
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


def convert(schema: Any, *, v3: bool, top: str = "") -> Any:
    """One JSON Schema (or part of one) as OpenAPI v2 or v3."""
    if isinstance(schema, list):
        return [convert(s, v3=v3) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if not v3 and top in V2_FORMS:
        return dict(V2_FORMS[top])
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "additionalProperties" and value is False:
            continue
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            value = types[0] if len(types) == 1 else types
        elif key == "$ref":
            name = str(value).rsplit("/", 1)[-1]
            value = f"#/components/schemas/{name}" if v3 else f"#/definitions/{name}"
        elif key == "properties":
            value = {name: convert({k: v for k, v in prop.items()
                                    if not (k == "enum" and name in ("apiVersion", "kind")
                                            and "x-kubernetes-group-version-kind" in schema)},
                                   v3=v3)
                     for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "oneOf", "anyOf", "allOf", "not"):
            value = convert(value, v3=v3)
        out[key] = value
    if v3 and "$ref" in out and len(out) > 1:  # OpenAPI 3.0 ignores a $ref's siblings
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _refs(schema: Any, found: set[str]) -> None:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref":
                name = str(value).rsplit("/", 1)[-1]
                if name not in found:
                    found.add(name)
                    _refs(definitions().get(name, {}), found)
            else:
                _refs(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _refs(value, found)


def _kind_names(group: str, version: str) -> set[str]:
    """The definitions of a group version's served kinds and their lists."""
    kinds = {rt.kind for rt in RESOURCES if (rt.group, rt.version) == (group, version)}
    kinds |= {f"{k}List" for k in kinds}
    out = set()
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) in \
                    {(group, version, k) for k in kinds}:
                out.add(name)
    return out


@functools.cache
def schema_names(group: str, version: str) -> tuple[str, ...]:
    """Every definition a group version's kinds reach, sorted."""
    found = _kind_names(group, version) | set(COMMON)
    for name in sorted(found):
        _refs(definitions().get(name, {}), found)
    return tuple(sorted(n for n in found if n in definitions()))


@functools.cache
def _schemas_v3(group: str, version: str) -> str:
    return json.dumps({n: convert(definitions()[n], v3=True, top=n)
                       for n in schema_names(group, version)}, sort_keys=True)


def schemas_v3(group: str, version: str) -> dict[str, Any]:
    """``components.schemas`` of a group version's OpenAPI v3 document (a fresh copy)."""
    schemas: dict[str, Any] = json.loads(_schemas_v3(group, version))
    return schemas


@functools.cache
def _v2(version: str) -> bytes:
    names: set[str] = set()
    paths: dict[str, Any] = {}
    for group, gv in sorted({(rt.group, rt.version) for rt in RESOURCES}):
        names |= set(schema_names(group, gv))
    for rt in RESOURCES:
        prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced \
            else f"{prefix}/{rt.plural}"
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        paths[base] = {verb: {"operationId": f"{action}{rt.kind}",
                              "x-kubernetes-action": action,
                              "x-kubernetes-group-version-kind": gvk,
                              "responses": {"200": {"description": "OK"}}}
                       for verb, action in (("get", "list"), ("post", "post"))
                       if (action == "list" and "list" in rt.verbs) or
                       (action == "post" and "create" in rt.verbs)}
    doc = {"swagger": "2.0", "info": {"title": "Kubernetes", "version": version},
           "paths": paths,
           "definitions": {n: convert(definitions()[n], v3=False, top=n) for n in sorted(names)}}
    return json.dumps(doc, sort_keys=True).encode()


def openapi_v2(version: str) -> bytes:
    """``/openapi/v2`` as JSON: every served kind's schema under ``definitions``."""
    return _v2(version)


def wants_v2_protobuf_only(accept: str) -> bool:
    """Whether ``Accept`` names only the protobuf form of ``/openapi/v2``."""
    kinds = [c.split(";")[0].strip().lower() for c in accept.split(",") if c.strip()]
    return bool(kinds) and all(k == V2_PROTOBUF for k in kinds)
