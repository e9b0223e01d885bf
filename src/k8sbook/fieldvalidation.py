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
Simplified, said out loud: duplicate JSON fields are not detected, and wrong types are left to
the model's validation (a real apiserver fails them while decoding).
"""

from __future__ import annotations

import functools
import re
from typing import Any

#: The schema release to check against (the release the model follows).
SCHEMA_VERSION = "1.35.0"
DIRECTIVES = ("Strict", "Warn", "Ignore")


@functools.cache
def _validator(api_version: str, kind: str) -> Any:
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    versions = [v for v in utils.all_versions()
                if utils.major_minor(v) <= utils.major_minor(SCHEMA_VERSION)]
    folder = f"kubernetes-json-schema/v{versions[-1]}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group_version}.json",
                                       SCHEMA_VERSION)
    except FileNotFoundError:
        return None
    defs = utils.schema_contents(f"{folder}/_definitions.json", SCHEMA_VERSION)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _path(parts: Any, field: str) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return f"{out}.{field}" if out else field


def unknown_fields(obj: dict[str, Any]) -> list[str]:
    """The paths of the fields of ``obj`` its kind's schema does not declare, sorted."""
    validator = _validator(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if validator is None:
        return []
    found: set[str] = set()

    def visit(errors: Any) -> None:
        for err in errors:
            if err.validator == "additionalProperties" and isinstance(err.instance, dict):
                known = set(err.schema.get("properties", {}))
                for key in err.instance:
                    if key not in known:
                        found.add(_path(err.absolute_path, key))
            visit(err.context or [])
    visit(validator.iter_errors(obj))
    return sorted(found)


def strict_message(fields: list[str]) -> str:
    return "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in fields)
