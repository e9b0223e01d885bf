"""Server-side field validation: ``?fieldValidation=Strict|Warn|Ignore`` on writes.

Mirrors the apiserver's strict decoding (KEP-2885, "Server Side Unknown Field Validation", GA
in v1.27): when a create, update or patch carries ``fieldValidation=Strict``, a field the
kind's schema does not know fails the request with ``400 BadRequest`` and the message
``strict decoding error: unknown field "spec.foo"``; with ``Warn`` the request succeeds and
each unknown field comes back as an HTTP ``Warning`` header; with ``Ignore`` (the API's
default) unknown fields are dropped silently. kubectl 1.32 sends ``Strict`` by default
(``--validate=strict``) once the server's OpenAPI v3 document says it supports the parameter.

Which fields are known comes from the official schemas that ``kubernetes-validate`` ships
(generated from the upstream OpenAPI), in their strict form (``additionalProperties: false``).
The package keeps a copy of that release's definitions file (``data/definitions-v1.35.0-local-
strict.json.gz``, the same bytes, compressed; a test compares them), read when
``kubernetes-validate`` is not installed: its ``[serve]`` and ``[test]`` extras install it, a
plain ``pip install`` and the browser edition do not, and field sets (:mod:`k8sbook.api.fieldpath`,
hence ``managedFields`` and the bytes they take in etcd) must not depend on which.
Simplified, said out loud: duplicate JSON fields are not detected, and wrong types are left to
the model's validation (a real apiserver fails them while decoding).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
from pathlib import Path
from typing import Any

#: The schema release to check against (the release the model follows).
SCHEMA_VERSION = "1.35.0"
DIRECTIVES = ("Strict", "Warn", "Ignore")
#: the copy of kubernetes-validate's definitions of SCHEMA_VERSION that the package carries
BUNDLED = Path(__file__).parent / "data" / f"definitions-v{SCHEMA_VERSION}-local-strict.json.gz"


@functools.cache
def _definitions() -> dict[str, Any]:
    """The strict schema definitions, read from kubernetes-validate's data files (without
    importing the package, whose JSON Schema validator is slow to import and not needed), or
    from the package's own copy of them when kubernetes-validate is not installed."""
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)), "kubernetes-json-schema",
                    f"v{SCHEMA_VERSION}-local-strict", "_definitions.json")
        if root.exists():
            return json.loads(root.read_text())["$defs"]
    return bundled_definitions()


def bundled_definitions() -> dict[str, Any]:
    """The definitions of the package's copy (:data:`BUNDLED`)."""
    defs: dict[str, Any] = json.loads(gzip.decompress(BUNDLED.read_bytes()))["$defs"]
    return defs


def definitions() -> dict[str, Any]:
    """The official schema definitions (JSON Schema, ``$defs``), strict form. The OpenAPI documents of ``k8sbook serve`` are
    made from them too (:mod:`k8sbook.serve.openapi`)."""
    return _definitions()


@functools.cache
def _kinds() -> dict[tuple[str, str, str], str]:
    out = {}
    for name, schema in _definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            out[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return out


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = _definitions()[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _walk(value: Any, schema: dict[str, Any], path: str, found: list[str]) -> None:
    schema = _resolve(schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            here = f"{path}.{key}" if path else key
            if props is not None and key in props:
                _walk(item, props[key], here, found)
            elif isinstance(extra, dict):
                _walk(item, extra, here, found)
            elif props is not None or extra is False:
                found.append(here)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(item, schema["items"], f"{path}[{i}]", found)


def kind_schema(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of ``obj``'s kind (from its ``apiVersion`` and ``kind``), or ``None``."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    name = _kinds().get((group, version, str(obj.get("kind", ""))))
    return None if name is None else _definitions()[name]


def resolve(schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A schema with its ``$ref`` followed: (the definition's name or "", the schema)."""
    name = ""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = _definitions()[name]
    return name, schema


def unknown_fields(obj: dict[str, Any]) -> list[str]:
    """The paths of the fields of ``obj`` its kind's schema does not declare, sorted."""
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    name = _kinds().get((group, version, str(obj.get("kind", ""))))
    if name is None:
        return []
    found: list[str] = []
    _walk(obj, _definitions()[name], "", found)
    return sorted(found)


def strict_message(fields: list[str]) -> str:
    return "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in fields)
